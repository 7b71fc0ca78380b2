//! Where the load goes: a URL (`http://127.0.0.1:8080/path`), or a Service (`svc/NAME` in a
//! namespace) looked up in the object store and turned into the address to send to — its
//! ClusterIP, a node's InternalIP with the nodePort, or the LoadBalancer ingress IP
//! (`--via cluster-ip|node-port|lb`). The address is resolved once, before the run: only the
//! address the user named is ever sent to.
use std::net::{IpAddr, SocketAddr};

use coxswain_client::{v1, Client, ListParams};

/// How a Service is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    ClusterIp,
    NodePort,
    Lb,
}

/// A target as the user wrote it.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    Url(String),
    Service { name: String, namespace: String },
}

impl Spec {
    /// `svc/NAME` (also `service/NAME`, `services/NAME`) or a URL.
    pub fn parse(s: &str, namespace: &str) -> Spec {
        for p in ["svc/", "service/", "services/"] {
            if let Some(name) = s.strip_prefix(p) {
                return Spec::Service {
                    name: name.to_string(),
                    namespace: namespace.to_string(),
                };
            }
        }
        Spec::Url(s.to_string())
    }
}

/// A resolved target: the socket address to connect to and what goes into the request line.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host[:port]` for the Host header and HTTP/2's :authority.
    pub authority: String,
    /// Path and query (`/`, `/a?b=c`).
    pub path: String,
    /// What the report calls the target (the URL, or `svc/NAME (ns) → URL`).
    pub display: String,
}

impl Target {
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// Splits an `http://host[:port][/path]` URL. Plain HTTP only.
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let bad = |why: &str| format!("invalid URL {url:?}: {why}");
    let uri: http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported: loadgen speaks plain HTTP (h2c for --http2)",
            ))
        }
        Some(s) => return Err(bad(&format!("unsupported scheme {s:?} (want http://)"))),
        None => return Err(bad("missing scheme (want http://HOST[:PORT]/PATH)")),
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("missing host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    if port == 0 {
        return Err(bad("port 0"));
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok((host, port, path))
}

fn authority(host: &str, port: u16) -> String {
    let h = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == 80 {
        h
    } else {
        format!("{h}:{port}")
    }
}

/// Resolves a URL's host (once) to a socket address.
pub async fn resolve_url(url: &str) -> Result<Target, String> {
    let (host, port, path) = parse_url(url)?;
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("resolving {host:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("resolving {host:?}: no addresses"))?,
    };
    Ok(Target {
        addr,
        authority: authority(&host, port),
        path,
        display: url.to_string(),
    })
}

/// How to pick a Service port and path.
#[derive(Clone, Debug, Default)]
pub struct ServiceOpts {
    /// A port name or number; default the Service's first port.
    pub port: Option<String>,
    pub path: String,
}

/// Looks the Service up in the store and picks the address to send to.
pub async fn resolve_service(
    server: &str,
    name: &str,
    namespace: &str,
    via: Via,
    opts: &ServiceOpts,
) -> Result<Target, String> {
    let client = Client::connect(server)
        .await
        .map_err(|e| format!("connecting to the store at {server}: {e}"))?;
    let svc: v1::Service = client
        .get(namespace, name)
        .await
        .map_err(|e| format!("getting service {namespace}/{name}: {e}"))?
        .ok_or_else(|| format!("services \"{name}\" not found in namespace \"{namespace}\""))?;
    let spec = svc.spec.unwrap_or_default();
    let port = pick_port(&spec.ports, opts.port.as_deref())
        .map_err(|e| format!("service {namespace}/{name}: {e}"))?;
    let (ip, p): (IpAddr, u16) = match via {
        Via::ClusterIp => {
            let ip = spec.cluster_ip.as_str();
            if ip.is_empty() || ip == "None" {
                return Err(format!(
                    "service {namespace}/{name} has no ClusterIP (headless or not allocated); try --via node-port"
                ));
            }
            (
                ip.parse()
                    .map_err(|_| format!("service {namespace}/{name}: bad clusterIP {ip:?}"))?,
                port.port as u16,
            )
        }
        Via::NodePort => {
            if port.node_port <= 0 {
                return Err(format!(
                    "service {namespace}/{name} (type {}) has no nodePort on port {}",
                    if spec.r#type.is_empty() {
                        "ClusterIP"
                    } else {
                        &spec.r#type
                    },
                    port.port
                ));
            }
            let (nodes, _) = client
                .list::<v1::Node>("", &ListParams::default())
                .await
                .map_err(|e| format!("listing nodes: {e}"))?;
            (node_ip(&nodes)?, port.node_port as u16)
        }
        Via::Lb => {
            let ingress = svc
                .status
                .and_then(|s| s.load_balancer)
                .map(|l| l.ingress)
                .unwrap_or_default();
            let ip = ingress
                .iter()
                .find_map(|i| i.ip.parse::<IpAddr>().ok())
                .ok_or_else(|| {
                    format!("service {namespace}/{name} has no LoadBalancer ingress IP yet")
                })?;
            (ip, port.port as u16)
        }
    };
    if p == 0 {
        return Err(format!("service {namespace}/{name}: port 0"));
    }
    let authority = authority(&ip.to_string(), p);
    let path = if opts.path.is_empty() {
        "/".to_string()
    } else {
        opts.path.clone()
    };
    Ok(Target {
        addr: SocketAddr::new(ip, p),
        display: format!("svc/{name} -n {namespace} → http://{authority}{path}"),
        authority,
        path,
    })
}

fn pick_port<'a>(
    ports: &'a [v1::ServicePort],
    want: Option<&str>,
) -> Result<&'a v1::ServicePort, String> {
    let tcp =
        |p: &&v1::ServicePort| p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case("TCP");
    match want {
        None => ports
            .iter()
            .find(tcp)
            .ok_or_else(|| "has no TCP port".to_string()),
        Some(w) => ports
            .iter()
            .filter(tcp)
            .find(|p| p.name == w || p.port.to_string() == w)
            .ok_or_else(|| format!("has no TCP port named or numbered {w:?}")),
    }
}

/// The InternalIP of the first Ready node (by name).
fn node_ip(nodes: &[v1::Node]) -> Result<IpAddr, String> {
    let mut candidates: Vec<(&str, IpAddr)> = nodes
        .iter()
        .filter_map(|n| {
            let st = n.status.as_ref()?;
            let ready = st
                .conditions
                .iter()
                .any(|c| c.r#type == "Ready" && c.status == "True");
            let ip = st
                .addresses
                .iter()
                .find(|a| a.r#type == "InternalIP")?
                .address
                .parse()
                .ok()?;
            let name = n.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
            ready.then_some((name, ip))
        })
        .collect();
    candidates.sort();
    candidates
        .first()
        .map(|(_, ip)| *ip)
        .ok_or_else(|| "no Ready node with an InternalIP to send nodePort traffic to".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/a?b=c").unwrap(),
            ("127.0.0.1".into(), 8080, "/a?b=c".into())
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            ("localhost".into(), 80, "/".into())
        );
        assert_eq!(parse_url("http://[::1]:81/").unwrap().0, "::1");
        for bad in [
            "127.0.0.1:80",
            "https://x/",
            "ftp://x/",
            "http://",
            "http://x:0/",
            "not a url",
            "",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.starts_with("invalid URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_specs() {
        assert_eq!(
            Spec::parse("svc/nginx", "ns"),
            Spec::Service {
                name: "nginx".into(),
                namespace: "ns".into()
            }
        );
        assert_eq!(
            Spec::parse("http://x/", "ns"),
            Spec::Url("http://x/".into())
        );
    }

    #[test]
    fn picks_ports() {
        let ports = vec![
            v1::ServicePort {
                name: "udp".into(),
                protocol: "UDP".into(),
                port: 53,
                ..Default::default()
            },
            v1::ServicePort {
                name: "http".into(),
                port: 80,
                node_port: 30080,
                ..Default::default()
            },
        ];
        assert_eq!(pick_port(&ports, None).unwrap().port, 80);
        assert_eq!(pick_port(&ports, Some("http")).unwrap().port, 80);
        assert_eq!(pick_port(&ports, Some("80")).unwrap().port, 80);
        assert!(pick_port(&ports, Some("53")).is_err());
        assert!(pick_port(&[], None).is_err());
    }
}
