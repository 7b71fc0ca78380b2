//! `--metrics-tls`: /metrics over HTTPS, scraped by a real Prometheus with the cluster CA, and
//! on a separately run component with a given or self-signed certificate.
use coxswain_test_support::Coxswain;

/// `curl -s` of `url` with `extra` flags: (exit code, body).
fn curl(extra: &[&str], url: &str) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn metrics_tls_serves_metrics_over_https_that_prometheus_scrapes_with_the_cluster_ca() {
    let c = Coxswain::start_with(&["store", "--metrics-tls"], &[]).expect("start coxswain");
    let ca = c.data_dir.join("pki/ca.crt");
    let ca = ca.to_str().expect("utf-8");
    let (code, body) = curl(&["--cacert", ca], &format!("https://{}/metrics", c.metrics));
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("# HELP coxswain_"), "{body}");
    // Not in the clear, and not to a client that does not trust the cluster CA.
    let (code, _) = curl(&[], &format!("http://{}/metrics", c.metrics));
    assert_ne!(code, 0, "plain HTTP answered");
    let (code, _) = curl(&[], &format!("https://{}/metrics", c.metrics));
    assert_ne!(code, 0, "verified without the cluster CA");

    // A real Prometheus scrapes it with tls_config.ca_file.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: coxswain\n    scheme: https\n    tls_config: {{ca_file: \"{ca}\"}}\n    static_configs: [{{targets: [\"{}\"]}}]\n",
            c.metrics
        ),
    )
    .expect("write prometheus.yml");
    let log = dir.path().join("prometheus.log");
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("prometheus (Debian's prometheus package; .ci/run installs it)");
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22coxswain%22%7D");
    let mut last = String::new();
    let r = coxswain_test_support::wait_until(
        "prometheus scraping /metrics over TLS",
        std::time::Duration::from_secs(60),
        || {
            let (_, body) = curl(&[], &query);
            last = body;
            let v: serde_json::Value = serde_json::from_str(&last).ok()?;
            (v["data"]["result"][0]["value"][1] == "1").then_some(())
        },
    );
    let _ = prom.kill();
    let _ = prom.wait();
    r.unwrap_or_else(|e| {
        panic!(
            "{e}: last answer {last}; prometheus log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
}

#[test]
fn metrics_tls_on_a_separately_run_component_with_a_given_or_self_signed_certificate() {
    use coxswain_test_support::component::{field, Component};
    let c = Coxswain::start_with(&["store"], &[]).expect("start coxswain");
    let pki = c.data_dir.join("pki");
    let (cert, key, ca) = (
        pki.join("server.crt"),
        pki.join("server.key"),
        pki.join("ca.crt"),
    );
    let url = c.url();
    // With the cluster's serving certificate: verified with the cluster CA.
    let mut given = Component::start_temp(&[
        "scheduler",
        "--server",
        &url,
        "--metrics-tls",
        "--metrics-tls-cert-file",
        cert.to_str().expect("utf-8"),
        "--metrics-tls-key-file",
        key.to_str().expect("utf-8"),
    ]);
    let line = given.ready(
        "coxswain scheduler ready",
        std::time::Duration::from_secs(60),
    );
    let metrics = field(&line, "metrics");
    let (code, body) = curl(
        &["--cacert", ca.to_str().expect("utf-8")],
        &format!("https://{metrics}/metrics"),
    );
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("# HELP "), "{body}");
    let (code, _) = curl(&[], &format!("http://{metrics}/metrics"));
    assert_ne!(code, 0, "plain HTTP answered");
    // Without files: a self-signed certificate, not one the cluster CA verifies.
    let mut own = Component::start_temp(&["scheduler", "--server", &url, "--metrics-tls"]);
    let line = own.ready(
        "coxswain scheduler ready",
        std::time::Duration::from_secs(60),
    );
    let metrics = field(&line, "metrics");
    let (code, body) = curl(&["--insecure"], &format!("https://{metrics}/metrics"));
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("# HELP "), "{body}");
    let (code, _) = curl(
        &["--cacert", ca.to_str().expect("utf-8")],
        &format!("https://{metrics}/metrics"),
    );
    assert_ne!(
        code, 0,
        "a self-signed certificate verified by the cluster CA"
    );
}
