//! A server URL with the wrong scheme is answered with the right one: `http://` against the
//! TLS listener of a default `coxswain up`, `https://` against a plain store.
use coxswain_test_support::Coxswain;

/// `coxctl --server URL get nodes` against `c`: its stderr when it fails, None when it works.
fn get_nodes(c: &Coxswain, url: &str) -> Option<String> {
    let out = c.coxctl(&["--server", url, "get", "nodes"]);
    (!out.ok).then_some(out.stderr)
}

#[test]
fn a_client_given_the_wrong_scheme_is_told_the_right_one() {
    let up = Coxswain::start_fast_up(&[]).expect("start coxswain up");
    assert!(up.url().starts_with("https://"), "{}", up.url());
    let addr = up.grpc.clone();
    let tls = format!("the server at {addr} speaks TLS: use https://{addr}");

    // coxctl, over http:// to the TLS listener: its one call would fail as an HTTP/2 protocol
    // error ("transport error") without the check.
    let err = get_nodes(&up, &format!("http://{addr}")).expect("http:// to TLS fails");
    assert!(err.contains(&tls), "{err}");
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
    assert!(!out.status.success() && err.contains(&tls), "{err}");
    // The right scheme works.
    assert_eq!(get_nodes(&up, &format!("https://{addr}")), None);
    // The metrics listener is no gRPC server: said so, not "operation was canceled".
    let m = up.metrics.clone();
    let err = get_nodes(&up, &format!("http://{m}")).expect("http:// to /metrics fails");
    assert!(
        err.contains(&format!("the server at {m} answers in HTTP/1, not gRPC")),
        "{err}"
    );

    // The reverse: https:// to a plain store.
    let plain = Coxswain::start_with(&["store"], &["--auth=false", "--in-memory"])
        .expect("start a plain store");
    let addr = plain.grpc.clone();
    let err = get_nodes(&plain, &format!("https://{addr}")).expect("https:// to plain fails");
    assert!(
        err.contains(&format!(
            "the server at {addr} speaks plain HTTP/2, not TLS: use http://{addr}"
        )),
        "{err}"
    );
    assert_eq!(get_nodes(&plain, &format!("http://{addr}")), None);
    // The agent's serving-certificate request (its own channel to the store) says so too, at
    // once rather than asking again until --serving-certificate-timeout.
    let out = std::process::Command::new(coxswain_test_support::bin("coxswain"))
        .args(["agent", "--server", &format!("https://{addr}")])
        .args([
            "--node-name",
            "n1",
            "--runtime",
            "sim",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--serving-certificate-timeout", "60s"])
        .env("COXCONFIG", &coxswain_test_support::pki().kubeconfig)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run coxswain agent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!(
                "the store did not sign this agent's serving certificate: the server at {addr} speaks plain HTTP/2, not TLS: use http://{addr}"
            )),
        "{err}"
    );
}
