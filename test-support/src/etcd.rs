//! A real etcd for tests: one member on free loopback ports with a temporary data directory,
//! killed when dropped. The `etcd` binary comes from Debian's `etcd-server` (`.ci/run` installs
//! it; `COXSWAIN_ETCD_BIN` names another). A missing binary fails the test with that advice:
//! nothing is skipped.
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a member may take to say it is ready to serve.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Etcd {
    /// The client URL, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub url: String,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
    tls: Option<Tls>,
    child: Option<Child>,
}

/// PEM files for a member that serves TLS and requires client certificates signed by `ca`.
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn etcd_bin() -> PathBuf {
    std::env::var_os("COXSWAIN_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

fn free_ports() -> anyhow::Result<(u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

impl Etcd {
    /// Start a fresh single-member etcd on free loopback ports.
    pub fn start() -> anyhow::Result<Etcd> {
        Self::start_with(None)
    }

    /// The same, serving clients over TLS with client-certificate authentication.
    pub fn start_tls(tls: Tls) -> anyhow::Result<Etcd> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<Tls>) -> anyhow::Result<Etcd> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut last = None;
        // Another process may take a port between choosing and binding it: try new ones.
        for _ in 0..3 {
            let (client_port, peer_port) = free_ports()?;
            let mut e = Etcd {
                url: format!("{scheme}://127.0.0.1:{client_port}"),
                client_port,
                peer_port,
                dir: tempfile::tempdir()?,
                tls: tls.clone(),
                child: None,
            };
            match e.spawn() {
                Ok(()) => return Ok(e),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let start_len = log.metadata()?.len() as usize;
        let mut cmd = Command::new(etcd_bin());
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.cert)
                .arg("--key-file")
                .arg(&t.key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", "test"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.url])
            .args(["--advertise-client-urls", &self.url])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "the etcd tests need the `etcd` binary on PATH (Debian: `apt-get install \
                 etcd-server`; .ci/run installs it) or COXSWAIN_ETCD_BIN: {e}"
            ),
            Err(e) => return Err(e).context("starting etcd"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            let fresh = log.get(start_len..).unwrap_or_default();
            if fresh.contains("ready to serve client requests")
                && std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_ok()
            {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    self.child = None;
                    bail!("etcd exited ({status}) before it was ready:\n{fresh}");
                }
            }
            if Instant::now() > deadline {
                self.kill9();
                bail!("etcd not ready within {READY_TIMEOUT:?}:\n{fresh}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the member and wait for it; its data stays.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill the member and start it again on the same ports with the same data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.spawn()
    }

    /// Run `etcdctl` (API v3, from Debian's etcd-client) against this member; its stdout.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.url)
            .args(args)
            .output()
            .context("running etcdctl (Debian: apt-get install etcd-client)")?;
        if !out.status.success() {
            bail!(
                "etcdctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What the member logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill9();
    }
}
