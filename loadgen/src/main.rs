//! `loadgen [run] TARGET [flags]` — see `loadgen --help` and the README.
fn main() {
    std::process::exit(loadgen::cli::main(std::env::args().collect()));
}
