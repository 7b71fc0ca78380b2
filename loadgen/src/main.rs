//! `loadgen [run] TARGET [flags]` and `loadgen hpa TARGET --hpa NAME ...` — see `--help` and
//! the README.

/// mimalloc: without keep-alive every request has a new socket, and tokio allocates each
/// socket's readiness state cache-line aligned, an allocation glibc serves slowly (its memalign
/// path, ~400 instructions, and as much to free); with mimalloc a request costs ~1,000
/// instructions less (callgrind, BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut argv: Vec<String> = std::env::args().collect();
    // The credentials of $COXCONFIG's (else ~/.coxswain/config's) current context, for https.
    if let Err(e) = coxswain_client::config::install_from(None, None) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let code = if argv.get(1).map(String::as_str) == Some("hpa") {
        argv.remove(1);
        loadgen::hpa::main(argv)
    } else {
        loadgen::cli::main(argv)
    };
    std::process::exit(code);
}
