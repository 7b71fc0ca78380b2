//! A minimal HTTP/1.1 endpoint serving the Prometheus text format at /metrics, in plain text or
//! over TLS ([`serve_tls`]: kube-apiserver serves its /metrics on its TLS port). The text is
//! rendered off the async reactor (a large cluster's object state is a few MiB).
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Telemetry;

/// Largest request head read (bytes).
const MAX_HEAD: usize = 16 << 10;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, telemetry: Telemetry) {
    serve_tls(listener, telemetry, None).await
}

/// A rustls server configuration for /metrics from a PEM certificate chain and private key
/// (the ring provider, TLS 1.2 and 1.3, no client certificate asked).
pub fn tls_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading the certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("reading the key: {e}"))?;
    // ring, as tonic's `tls-ring` serves gRPC (the aws-lc provider is not built here).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(cfg))
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_tls(
    listener: TcpListener,
    telemetry: Telemetry,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            // EMFILE and the like: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let telemetry = telemetry.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => answer(sock, telemetry).await,
                Some(a) => {
                    if let Ok(Ok(s)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(sock)).await
                    {
                        answer(s, telemetry).await
                    }
                }
            }
        });
    }
}

/// Reads one request head from `sock` and answers it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, telemetry: Telemetry) {
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
}
