//! Pushed custom and external metrics, as a Pushgateway keeps them: each series (type, metric
//! name, the object it describes or the external series' namespace, and its labels) holds its
//! latest value, served until `timestamp + ttl`. Pure: every call takes `now`.
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use coxswain_api::quantity::Quantity;
use coxswain_api::selector::LabelSelector;
use coxswain_api::v1::{ObjectReference, PushedMetric};
use coxswain_api::Kind;

use crate::time::{parse_duration, parse_nanos, Nanos};

/// How long a value is served when the push names no TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// A rejected push: the message names the field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    Pods,
    Object,
    External,
}

/// Where a series lives: (type, metric name, namespace).
type Bucket = (MetricType, String, String);
/// Which series within the bucket: (kind, object name, labels); kind and name empty for
/// external series.
type SeriesId = (String, String, BTreeMap<String, String>);

/// A stored value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    pub labels: BTreeMap<String, String>,
    pub value: Quantity,
    pub timestamp: Nanos,
    pub expires: Nanos,
    pub window_seconds: i64,
}

/// Every pushed series.
#[derive(Debug)]
pub struct Pushed {
    buckets: HashMap<Bucket, HashMap<SeriesId, Sample>>,
    len: usize,
    max_series: usize,
}

impl Default for Pushed {
    fn default() -> Self {
        Pushed::new(100_000)
    }
}

/// The canonical kind name ("deployments" → "Deployment"); unknown kinds as given.
fn canonical_kind(k: &str) -> String {
    Kind::parse(k)
        .map(|k| k.as_str().to_string())
        .unwrap_or_else(|| k.to_string())
}

fn parse_one(
    m: &PushedMetric,
    i: usize,
    now: Nanos,
) -> Result<(Bucket, SeriesId, Sample), Invalid> {
    let f = |field: &str| format!("metrics[{i}].{field}");
    let ty = match m.r#type.as_str() {
        "pods" => MetricType::Pods,
        "object" => MetricType::Object,
        "external" => MetricType::External,
        "" => return Err(Invalid(format!("{}: Required value", f("type")))),
        other => {
            return Err(Invalid(format!(
                "{}: Unsupported value: \"{other}\": supported values: \"pods\", \"object\", \"external\"",
                f("type")
            )))
        }
    };
    if m.metric_name.is_empty() {
        return Err(Invalid(format!("{}: Required value", f("metricName"))));
    }
    let value = Quantity::parse(&m.value).map_err(|e| {
        Invalid(format!(
            "{}: Invalid value: \"{}\": {e}",
            f("value"),
            m.value
        ))
    })?;
    let timestamp = if m.timestamp.is_empty() {
        now
    } else {
        parse_nanos(&m.timestamp).ok_or_else(|| {
            Invalid(format!(
                "{}: Invalid value: \"{}\": must be an RFC 3339 timestamp",
                f("timestamp"),
                m.timestamp
            ))
        })?
    };
    let ttl = if m.ttl.is_empty() {
        DEFAULT_TTL
    } else {
        parse_duration(&m.ttl)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Invalid(format!(
                    "{}: Invalid value: \"{}\": must be a positive duration such as 60s",
                    f("ttl"),
                    m.ttl
                ))
            })?
    };
    if m.window_seconds < 0 {
        return Err(Invalid(format!(
            "{}: Invalid value: {}: must be greater than or equal to 0",
            f("windowSeconds"),
            m.window_seconds
        )));
    }
    let (namespace, kind, name) = match ty {
        MetricType::External => {
            let ns = if m.namespace.is_empty() {
                "default".to_string()
            } else {
                m.namespace.clone()
            };
            (ns, String::new(), String::new())
        }
        MetricType::Pods | MetricType::Object => {
            let o: ObjectReference = m.described_object.clone().unwrap_or_default();
            if o.name.is_empty() {
                return Err(Invalid(format!(
                    "{}: Required value",
                    f("describedObject.name")
                )));
            }
            let kind = if o.kind.is_empty() && ty == MetricType::Pods {
                "Pod".to_string()
            } else if o.kind.is_empty() {
                return Err(Invalid(format!(
                    "{}: Required value",
                    f("describedObject.kind")
                )));
            } else {
                canonical_kind(&o.kind)
            };
            if ty == MetricType::Pods && kind != "Pod" {
                return Err(Invalid(format!(
                    "{}: Unsupported value: \"{}\": a pods metric describes a Pod",
                    f("describedObject.kind"),
                    o.kind
                )));
            }
            let namespaced = Kind::parse(&kind).is_none_or(|k| k.namespaced());
            let ns = if !namespaced {
                String::new()
            } else if o.namespace.is_empty() {
                "default".to_string()
            } else {
                o.namespace.clone()
            };
            (ns, kind, name_of(&o))
        }
    };
    let expires = timestamp.saturating_add(ttl.as_nanos() as i128);
    let sample = Sample {
        kind: kind.clone(),
        name: name.clone(),
        namespace: namespace.clone(),
        metric_name: m.metric_name.clone(),
        labels: m.metric_labels.clone(),
        value,
        timestamp,
        expires,
        window_seconds: m.window_seconds,
    };
    Ok((
        (ty, m.metric_name.clone(), namespace),
        (kind, name, m.metric_labels.clone()),
        sample,
    ))
}

fn name_of(o: &ObjectReference) -> String {
    o.name.clone()
}

impl Pushed {
    /// A store holding at most `max_series` live series.
    pub fn new(max_series: usize) -> Pushed {
        Pushed {
            buckets: HashMap::new(),
            len: 0,
            max_series,
        }
    }

    /// Validate every value, then store them all (or none). Returns how many were stored;
    /// values already expired at `now` are accepted and dropped.
    pub fn push(&mut self, metrics: &[PushedMetric], now: Nanos) -> Result<usize, Invalid> {
        let parsed = metrics
            .iter()
            .enumerate()
            .map(|(i, m)| parse_one(m, i, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.expire(now);
        let new = parsed
            .iter()
            .filter(|(b, id, _)| !self.buckets.get(b).is_some_and(|s| s.contains_key(id)))
            .count();
        if self.len + new > self.max_series {
            return Err(Invalid(format!(
                "metrics: Too many: {} series stored, at most {}",
                self.len + new,
                self.max_series
            )));
        }
        let n = parsed.len();
        for (bucket, id, sample) in parsed {
            let series = self.buckets.entry(bucket).or_default();
            // A value older than the stored one does not replace it.
            match series.get(&id) {
                Some(old) if old.timestamp > sample.timestamp => {}
                Some(_) => {
                    series.insert(id, sample);
                }
                None => {
                    series.insert(id, sample);
                    self.len += 1;
                }
            }
        }
        self.expire(now);
        Ok(n)
    }

    /// Drop every value whose TTL has passed.
    pub fn expire(&mut self, now: Nanos) {
        let mut removed = 0;
        self.buckets.retain(|_, series| {
            series.retain(|_, s| {
                let keep = s.expires > now;
                if !keep {
                    removed += 1;
                }
                keep
            });
            !series.is_empty()
        });
        self.len -= removed;
    }

    /// Live series.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn live(
        &self,
        ty: MetricType,
        metric: &str,
        namespace: &str,
        selector: &LabelSelector,
        now: Nanos,
    ) -> Vec<&Sample> {
        self.buckets
            .get(&(ty, metric.to_string(), namespace.to_string()))
            .into_iter()
            .flat_map(|s| s.values())
            .filter(|s| s.expires > now && selector.matches(&s.labels))
            .collect()
    }

    /// The latest live value of `metric` for each of `pods` (names in `namespace`).
    pub fn pods<'a>(
        &'a self,
        namespace: &str,
        metric: &str,
        pods: &[&str],
        selector: &LabelSelector,
        now: Nanos,
    ) -> Vec<&'a Sample> {
        let mut best: BTreeMap<&str, &Sample> = BTreeMap::new();
        let wanted: std::collections::HashSet<&str> = pods.iter().copied().collect();
        for s in self.live(MetricType::Pods, metric, namespace, selector, now) {
            if !wanted.contains(s.name.as_str()) {
                continue;
            }
            let e = best.entry(s.name.as_str()).or_insert(s);
            if s.timestamp > e.timestamp {
                *e = s;
            }
        }
        best.into_values().collect()
    }

    /// The latest live value of `metric` describing one object.
    pub fn object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        metric: &str,
        selector: &LabelSelector,
        now: Nanos,
    ) -> Option<&Sample> {
        let kind = canonical_kind(kind);
        let namespaced = Kind::parse(&kind).is_none_or(|k| k.namespaced());
        let ns = if namespaced { namespace } else { "" };
        self.live(MetricType::Object, metric, ns, selector, now)
            .into_iter()
            .filter(|s| s.kind == kind && s.name == name)
            .max_by_key(|s| s.timestamp)
    }

    /// Every live series of an external metric in `namespace` matching `selector`.
    pub fn external(
        &self,
        namespace: &str,
        metric: &str,
        selector: &LabelSelector,
        now: Nanos,
    ) -> Vec<&Sample> {
        let mut out = self.live(MetricType::External, metric, namespace, selector, now);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NANOS_PER_SEC as S;

    fn pm(
        ty: &str,
        metric: &str,
        obj: Option<(&str, &str)>,
        value: &str,
        ttl: &str,
    ) -> PushedMetric {
        PushedMetric {
            r#type: ty.into(),
            metric_name: metric.into(),
            described_object: obj.map(|(k, n)| ObjectReference {
                kind: k.into(),
                name: n.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            value: value.into(),
            ttl: ttl.into(),
            ..Default::default()
        }
    }

    #[test]
    fn values_expire_after_their_ttl() {
        let mut p = Pushed::default();
        let all = LabelSelector::everything();
        let now = 1000 * S;
        p.push(&[pm("pods", "rps", Some(("Pod", "a")), "10", "5s")], now)
            .unwrap();
        p.push(&[pm("pods", "rps", Some(("pods", "b")), "20", "")], now)
            .unwrap();
        let got = p.pods("default", "rps", &["a", "b", "c"], &all, now + 4 * S);
        assert_eq!(got.len(), 2);
        let got = p.pods("default", "rps", &["a", "b"], &all, now + 5 * S);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "b");
        p.expire(now + 60 * S);
        assert!(p.is_empty());
    }

    #[test]
    fn object_and_external_series() {
        let mut p = Pushed::default();
        let now = 10 * S;
        let all = LabelSelector::everything();
        p.push(
            &[pm(
                "object",
                "requests-per-second",
                Some(("deployments", "web")),
                "2k",
                "",
            )],
            now,
        )
        .unwrap();
        let got = p
            .object(
                "Deployment",
                "default",
                "web",
                "requests-per-second",
                &all,
                now,
            )
            .unwrap();
        assert_eq!(got.value.canonical(), "2k");
        assert!(p
            .object(
                "Service",
                "default",
                "web",
                "requests-per-second",
                &all,
                now
            )
            .is_none());

        let mut q1 = pm("external", "queue_depth", None, "30", "");
        q1.metric_labels.insert("queue".into(), "a".into());
        let mut q2 = q1.clone();
        q2.metric_labels.insert("queue".into(), "b".into());
        q2.value = "12".into();
        assert_eq!(p.push(&[q1, q2], now), Ok(2));
        assert_eq!(p.external("default", "queue_depth", &all, now).len(), 2);
        let sel = LabelSelector::parse("queue=b").unwrap();
        let got = p.external("default", "queue_depth", &sel, now);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value.canonical(), "12");
    }

    #[test]
    fn a_newer_push_replaces_an_older_value_and_not_the_other_way() {
        let mut p = Pushed::default();
        let all = LabelSelector::everything();
        let mut a = pm("pods", "m", Some(("Pod", "a")), "1", "");
        a.timestamp = "2030-01-01T00:00:10Z".into();
        let t10 = crate::time::parse_nanos(&a.timestamp).unwrap();
        p.push(&[a.clone()], t10).unwrap();
        a.value = "2".into();
        a.timestamp = "2030-01-01T00:00:05Z".into();
        p.push(&[a], t10).unwrap();
        let got = p.pods("default", "m", &["a"], &all, t10);
        assert_eq!(got[0].value.canonical(), "1");
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn bad_input_names_the_field_and_stores_nothing() {
        let mut p = Pushed::default();
        let ok = pm("pods", "m", Some(("Pod", "a")), "1", "");
        let cases = [
            (
                pm("gauge", "m", None, "1", ""),
                "metrics[1].type: Unsupported value",
            ),
            (
                pm("pods", "", Some(("Pod", "a")), "1", ""),
                "metrics[1].metricName: Required value",
            ),
            (
                pm("pods", "m", Some(("Pod", "a")), "x1", ""),
                "metrics[1].value: Invalid value",
            ),
            (
                pm("pods", "m", Some(("Pod", "a")), "1", "soon"),
                "metrics[1].ttl: Invalid value",
            ),
            (
                pm("pods", "m", Some(("Deployment", "a")), "1", ""),
                "metrics[1].describedObject.kind",
            ),
            (
                pm("object", "m", None, "1", ""),
                "metrics[1].describedObject.name: Required value",
            ),
        ];
        for (bad, want) in cases {
            let err = p.push(&[ok.clone(), bad], S).unwrap_err();
            assert!(
                err.0.starts_with(want),
                "{} does not start with {want}",
                err.0
            );
        }
        assert!(p.is_empty());
    }

    #[test]
    fn the_series_cap_holds() {
        let mut p = Pushed::new(2);
        let ms: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| pm("pods", "m", Some(("Pod", n)), "1", ""))
            .collect();
        assert!(p.push(&ms, S).unwrap_err().0.contains("Too many"));
        assert_eq!(p.push(&ms[..2], S), Ok(2));
        // Replacing an existing series is fine at the cap.
        assert_eq!(p.push(&ms[..1], S), Ok(1));
    }
}
