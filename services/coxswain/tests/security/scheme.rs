//! A server URL with the wrong scheme is answered with the right one: `http://` against the
//! TLS listener of a default `coxswain up`, `https://` against a plain store.
use coxswain_test_support::Coxswain;

#[test]
fn a_client_given_the_wrong_scheme_is_told_the_right_one() {
    let up = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    assert!(up.url().starts_with("https://"), "{}", up.url());
    let addr = up.grpc.clone();

    // coxctl, over http:// to the TLS listener: its one call would fail as an HTTP/2 protocol
    // error ("transport error") without the check.
    let out = up
        .coxctl(&["--server", &format!("http://{addr}"), "get", "nodes"])
        .failure();
    assert!(
        out.stderr.contains(&format!(
            "the server at {addr} speaks TLS: use https://{addr}"
        )),
        "{}",
        out.stderr
    );
    // A component, through the same client library.
    let out = std::process::Command::new(coxswain_test_support::bin("coxswain"))
        .args(["dns", "--server", &format!("http://{addr}")])
        .args([
            "--dns-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("COXCONFIG", &coxswain_test_support::pki().kubeconfig)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run coxswain dns");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "the server at {addr} speaks TLS: use https://{addr}"
        )),
        "{err}"
    );
    // The right scheme works.
    up.coxctl(&["--server", &format!("https://{addr}"), "get", "nodes"])
        .success();

    // The reverse: https:// to a plain store.
    let plain = Coxswain::start_with(&["store"], &["--auth=false", "--in-memory"])
        .expect("start a plain store");
    let addr = plain.grpc.clone();
    let out = plain
        .coxctl(&["--server", &format!("https://{addr}"), "get", "nodes"])
        .failure();
    assert!(
        out.stderr.contains(&format!(
            "the server at {addr} speaks plain HTTP/2, not TLS: use http://{addr}"
        )),
        "{}",
        out.stderr
    );
    plain
        .coxctl(&["--server", &format!("http://{addr}"), "get", "nodes"])
        .success();
}
