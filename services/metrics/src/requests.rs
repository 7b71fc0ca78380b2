//! The service proxy's per-Service request rate as an Object metric, the way Prometheus and
//! prometheus-adapter serve it to Kubernetes' HPA: every resolution period the proxies'
//! `/metrics` endpoints are scraped, `coxswain_proxy_requests_total` (per Service port) becomes a
//! rate between the last two scrapes (a counter that went down restarted from zero, as
//! Prometheus' `rate()` reads it), summed per Service over its ports and over every proxy, and
//! stored as the pushed Object metric [`METRIC`] describing that Service — through the same
//! validation as `Metrics/PushMetrics`, with a TTL, so a proxy that went away ages out.
//!
//! - [`parse_family`] and [`Rates`]: pure, unit-tested.
//! - [`run`]: the loop (fetch over HTTP, parse off the reactor, push).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coxswain_api::v1::{ObjectReference, PushedMetric};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::time::{format_nanos, go_duration, now_nanos, Nanos, NANOS_PER_SEC};
use crate::State;

/// The Object metric's name (the HPA walkthrough's `requests-per-second`), describing a Service.
pub const METRIC: &str = "requests-per-second";
/// The proxy's counter family.
pub const FAMILY: &str = "coxswain_proxy_requests_total";
/// Largest /metrics body read.
const MAX_BODY: usize = 64 << 20;

/// Label values of one sample line.
pub type Labels = BTreeMap<String, String>;

/// One scrape of one source: its URL, when it answered, and its samples (None: it failed).
pub type Scrape = (String, Nanos, Option<Vec<(Labels, f64)>>);

/// Every sample of `family` in a Prometheus text exposition (lines `family{l="v",...} value`);
/// lines of other families, comments, malformed lines and non-finite values are skipped.
pub fn parse_family(text: &str, family: &str) -> Vec<(Labels, f64)> {
    let mut out = vec![];
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        let (labels, rest) = match rest.as_bytes().first() {
            Some(b'{') => match parse_labels(&rest[1..]) {
                Some(x) => x,
                None => continue,
            },
            Some(b' ') | Some(b'\t') => (Labels::new(), rest),
            _ => continue,
        };
        let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if v.is_finite() {
            out.push((labels, v));
        }
    }
    out
}

/// `l="v",...}` → the labels and what follows the closing brace.
fn parse_labels(s: &str) -> Option<(Labels, &str)> {
    let mut labels = Labels::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(name, value);
        rest = &rest[end + 1..];
    }
}

/// One Service's request rate.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceRate {
    pub namespace: String,
    pub service: String,
    pub per_second: f64,
    /// The newest scrape the rate ends at, and the longest window it spans.
    pub timestamp: Nanos,
    pub window: Nanos,
}

/// The last point of every series of every source, nothing else.
#[derive(Debug, Default)]
pub struct Rates {
    last: HashMap<(String, Labels), (Nanos, f64)>,
}

impl Rates {
    /// Take one scrape of every source (`None`: that source failed, its points are kept) and
    /// return the rate of every Service with at least one series seen twice.
    pub fn observe(&mut self, scrapes: Vec<Scrape>) -> Vec<ServiceRate> {
        let mut sums: BTreeMap<(String, String), ServiceRate> = BTreeMap::new();
        let mut next = HashMap::new();
        let mut failed = std::collections::HashSet::new();
        for (source, ts, samples) in scrapes {
            let Some(samples) = samples else {
                failed.insert(source);
                continue;
            };
            for (labels, v) in samples {
                let (Some(ns), Some(svc)) = (labels.get("namespace"), labels.get("service")) else {
                    continue;
                };
                let key = (source.clone(), labels.clone());
                if let Some(&(t0, v0)) = self.last.get(&key) {
                    if ts > t0 {
                        let increase = if v >= v0 { v - v0 } else { v };
                        let window = ts - t0;
                        let rate = increase * NANOS_PER_SEC as f64 / window as f64;
                        let e =
                            sums.entry((ns.clone(), svc.clone()))
                                .or_insert_with(|| ServiceRate {
                                    namespace: ns.clone(),
                                    service: svc.clone(),
                                    per_second: 0.0,
                                    timestamp: ts,
                                    window,
                                });
                        e.per_second += rate;
                        e.timestamp = e.timestamp.max(ts);
                        e.window = e.window.max(window);
                    }
                }
                next.insert(key, (ts, v));
            }
        }
        next.extend(self.last.drain().filter(|((s, _), _)| failed.contains(s)));
        self.last = next;
        sums.into_values().collect()
    }
}

/// A rate as the pushed Object metric [`METRIC`] describing its Service (value in thousandths).
pub fn to_pushed(r: &ServiceRate, ttl: Duration) -> PushedMetric {
    PushedMetric {
        r#type: "object".into(),
        metric_name: METRIC.into(),
        described_object: Some(ObjectReference {
            kind: "Service".into(),
            api_version: "v1".into(),
            namespace: r.namespace.clone(),
            name: r.service.clone(),
            ..Default::default()
        }),
        value: format!("{}m", (r.per_second * 1000.0).round().max(0.0) as u64),
        timestamp: format_nanos(r.timestamp),
        ttl: go_duration(ttl),
        window_seconds: (r.window / NANOS_PER_SEC).max(1) as i64,
        ..Default::default()
    }
}

/// A proxy's /metrics URL must be plain http with a host.
pub fn check_url(u: &str) -> Result<(), String> {
    match u.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Ok(()),
        _ => Err(format!(
            "invalid value \"{u}\": must be an http:// URL such as http://127.0.0.1:9465/metrics"
        )),
    }
}

/// GET one /metrics endpoint.
async fn fetch(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
    timeout: Duration,
) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let get = async {
        let resp = client.get(uri).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, get)
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
}

/// Every `resolution`, scrape `urls` and store the rates in `state.pushed` with `ttl`.
pub async fn run(
    state: Arc<State>,
    urls: Vec<String>,
    resolution: Duration,
    timeout: Duration,
    ttl: Duration,
) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut rates = Rates::default();
    let mut tick = tokio::time::interval(resolution);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let fetched = futures_join(&client, &urls, timeout).await;
        let scrapes = tokio::task::spawn_blocking(move || {
            fetched
                .into_iter()
                .map(|(url, ts, r)| (url, ts, r.ok().map(|t| parse_family(&t, FAMILY))))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let pushed: Vec<PushedMetric> = rates
            .observe(scrapes)
            .iter()
            .map(|r| to_pushed(r, ttl))
            .collect();
        if pushed.is_empty() {
            continue;
        }
        let r = state
            .pushed
            .lock()
            .map_err(|_| "poisoned".to_string())
            .and_then(|mut p| p.push(&pushed, now_nanos()).map_err(|e| e.0));
        if let Err(e) = r {
            tracing::warn!(error = %e, "storing the proxies' request rates");
        }
    }
}

/// Fetch every URL at once: (url, when the answer arrived, the text or the error).
async fn futures_join(
    client: &Client<HttpConnector, Empty<Bytes>>,
    urls: &[String],
    timeout: Duration,
) -> Vec<(String, Nanos, Result<String, String>)> {
    let mut set = tokio::task::JoinSet::new();
    for url in urls {
        let (client, url) = (client.clone(), url.clone());
        set.spawn(async move {
            let r = fetch(&client, &url, timeout).await;
            if let Err(e) = &r {
                tracing::debug!(url = %url, error = %e, "scraping a proxy's metrics failed");
            }
            (url, now_nanos(), r)
        });
    }
    let mut out = vec![];
    while let Some(Ok(x)) = set.join_next().await {
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pushed::Pushed;
    use coxswain_api::selector::LabelSelector;

    const S: Nanos = NANOS_PER_SEC;

    fn text(web_http: u64, web_dns: u64, db: u64) -> String {
        format!(
            "# HELP coxswain_proxy_requests_total Requests the proxy carried for a Service port.\n\
             # TYPE coxswain_proxy_requests_total counter\n\
             coxswain_proxy_requests_total{{namespace=\"default\",service=\"web\",port=\"http\",protocol=\"TCP\"}} {web_http}\n\
             coxswain_proxy_requests_total{{namespace=\"default\",service=\"web\",port=\"dns\",protocol=\"UDP\"}} {web_dns}\n\
             coxswain_proxy_requests_total_other{{namespace=\"default\",service=\"web\"}} 99\n\
             coxswain_proxy_requests_total{{namespace=\"shop\",service=\"db\",port=\"\",protocol=\"TCP\"}} {db} 1700000000000\n\
             coxswain_proxy_connections_total{{namespace=\"default\",service=\"web\"}} 5\n"
        )
    }

    #[test]
    fn parses_one_family_with_escaped_label_values() {
        let got = parse_family(
            "a_total{x=\"q\\\"uote\\\\d\\n\", y = \"}\"} 3.5\na_total 2\na_total{x=\"1\"} NaN\na_total{bad} 1\nb_total 7\n",
            "a_total",
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0["x"], "q\"uote\\d\n");
        assert_eq!(got[0].0["y"], "}");
        assert_eq!(got[0].1, 3.5);
        assert!(got[1].0.is_empty());
        let got = parse_family(&text(1, 2, 3), FAMILY);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].0["service"], "db");
        assert_eq!(got[2].1, 3.0);
    }

    fn scrape(source: &str, ts: Nanos, t: Option<String>) -> Scrape {
        (source.into(), ts, t.map(|t| parse_family(&t, FAMILY)))
    }

    #[test]
    fn a_service_rate_sums_its_ports_and_proxies_between_the_last_two_scrapes() {
        let mut r = Rates::default();
        assert!(r
            .observe(vec![scrape("p1", 10 * S, Some(text(100, 10, 0)))])
            .is_empty());
        // 2 s later: web +40 http +4 dns on p1 (22/s); p2 is new (no rate yet); db idle.
        let got = r.observe(vec![
            scrape("p1", 12 * S, Some(text(140, 14, 0))),
            scrape("p2", 12 * S, Some(text(7, 0, 0))),
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].service.as_str(), got[0].per_second), ("web", 22.0));
        assert_eq!(got[0].window, 2 * S);
        assert_eq!((got[1].service.as_str(), got[1].per_second), ("db", 0.0));
        // p1 fails (its points are kept); p2 +10 http in 1 s.
        let got = r.observe(vec![
            scrape("p1", 13 * S, None),
            scrape("p2", 13 * S, Some(text(17, 0, 0))),
        ]);
        assert_eq!(got[0].per_second, 10.0);
        // p1 is back after 2 s: +30 over 2 s; p2 restarted (counter 5 < 17): 5 in 1 s.
        let got = r.observe(vec![
            scrape("p1", 14 * S, Some(text(170, 14, 0))),
            scrape("p2", 14 * S, Some(text(5, 0, 0))),
        ]);
        let web = got.iter().find(|x| x.service == "web").unwrap();
        assert_eq!(web.per_second, 15.0 + 5.0);
        assert_eq!(web.window, 2 * S);
        assert_eq!(web.timestamp, 14 * S);
    }

    #[test]
    fn rates_are_stored_as_object_metrics_of_the_service() {
        let rate = ServiceRate {
            namespace: "default".into(),
            service: "web".into(),
            per_second: 12.3456,
            timestamp: 100 * S,
            window: 2 * S,
        };
        let m = to_pushed(&rate, Duration::from_secs(3));
        assert_eq!(m.value, "12346m");
        assert_eq!(m.window_seconds, 2);
        let mut p = Pushed::default();
        assert_eq!(p.push(&[m], 100 * S), Ok(1));
        let all = LabelSelector::everything();
        let s = p
            .object("services", "default", "web", METRIC, &all, 102 * S)
            .expect("served");
        assert_eq!(s.value.milli_value(), 12346);
        assert_eq!(s.kind, "Service");
        // The TTL passes without a newer rate: gone.
        assert!(p
            .object("Service", "default", "web", METRIC, &all, 103 * S)
            .is_none());
    }
}
