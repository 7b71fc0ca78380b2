//! A minimal HTTP/1.1 endpoint serving the Prometheus text format at /metrics. The text is
//! rendered off the async reactor (a large cluster's object state is a few MiB).
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Telemetry;

/// Largest request head read (bytes).
const MAX_HEAD: usize = 16 << 10;

pub async fn serve(listener: TcpListener, telemetry: Telemetry) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            // EMFILE and the like: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let mut parts = head.split_whitespace();
            let method = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("");
            let (status, ctype, body) = if path == "/metrics" || path.starts_with("/metrics?") {
                if method == "GET" || method == "HEAD" {
                    match tokio::task::spawn_blocking(move || telemetry.render()).await {
                        Ok(body) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body),
                        Err(_) => (
                            "500 Internal Server Error",
                            "text/plain",
                            "rendering failed\n".to_string(),
                        ),
                    }
                } else {
                    (
                        "405 Method Not Allowed",
                        "text/plain",
                        "only GET\n".to_string(),
                    )
                }
            } else {
                (
                    "404 Not Found",
                    "text/plain",
                    "not found; metrics are at /metrics\n".to_string(),
                )
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            if method != "HEAD" {
                let _ = sock.write_all(body.as_bytes()).await;
            }
            let _ = sock.shutdown().await;
        });
    }
}
