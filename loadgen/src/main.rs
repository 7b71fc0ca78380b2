//! `loadgen [run] TARGET [flags]` and `loadgen hpa TARGET --hpa NAME ...` — see `--help` and
//! the README.
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
