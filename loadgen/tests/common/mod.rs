//! Test servers on 127.0.0.1:0 with known behaviour, and a runner for the loadgen binary.
#![allow(dead_code)]
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const BODY: &[u8] = b"hello from the test server\n";

/// An HTTP/1.1 + h2c server (hyper). Paths:
/// - `/delay/MS`: waits MS milliseconds, then 200 with [`BODY`];
/// - `/status/CODE`: answers CODE at once;
/// - `/mix`: every 10th request (by arrival) waits 100 ms, the others 10 ms.
pub struct Server {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub accepts: Arc<AtomicU64>,
    /// Requests served.
    pub hits: Arc<AtomicU64>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn server() -> Server {
    server_on(0).await
}

/// [`server`] on a given loopback port.
pub async fn server_on(port: u16) -> Server {
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = Arc::new(AtomicU64::new(0));
    let hits = Arc::new(AtomicU64::new(0));
    let (a, h) = (accepts.clone(), hits.clone());
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let h = h.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(req, h.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Server {
        addr,
        accepts,
        hits,
    }
}

async fn handle(
    req: Request<Incoming>,
    hits: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches('/').split('/');
    let (kind, arg) = (parts.next().unwrap_or(""), parts.next().unwrap_or("0"));
    let mut status = 200u16;
    match kind {
        "delay" => {
            tokio::time::sleep(Duration::from_millis(arg.parse().unwrap_or(0))).await;
        }
        "status" => status = arg.parse().unwrap_or(500),
        "mix" => {
            let ms = if n % 10 == 9 { 100 } else { 10 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        _ => {}
    }
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap())
}

/// A raw TCP server that reads a request head and answers with `reply` bytes, then closes
/// (every `every`-th connection; the others get a complete 200).
pub async fn raw_server(reply: &'static [u8], every: u64) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = 0;
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
                    match s.read(&mut buf[got..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got += k,
                    }
                }
                let out: &[u8] = if n.is_multiple_of(every) {
                    reply
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                };
                let _ = s.write_all(out).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    pub fn no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked"),
            "loadgen panicked: {}",
            self.stderr
        );
        self
    }
}

/// Runs the loadgen binary (bounded by 60 s).
pub async fn loadgen(args: &[&str]) -> Out {
    let fut = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .kill_on_drop(true)
        .output();
    let o = tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("loadgen did not finish within 60 s")
        .expect("running loadgen");
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    out.no_panic();
    out
}

pub fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}
