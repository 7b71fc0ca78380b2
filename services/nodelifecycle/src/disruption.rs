//! Zones, disruption states and the NoExecute tainting rate, as upstream's node lifecycle
//! controller has them (`ComputeZoneState`, `handleDisruption`, `setLimiterInZone`, the
//! per-zone `RateLimitedTimedQueue` with burst 1):
//!
//! - a zone is the node's `topology.kubernetes.io/region` + `zone` labels (one zone "" when
//!   unlabelled);
//! - FullDisruption: no Ready node in the zone; PartialDisruption: more than 2 not Ready and
//!   at least `--unhealthy-zone-threshold` of them; Normal otherwise;
//! - the rate at which nodes of a zone get NoExecute (unreachable / not-ready) taints:
//!   Normal and FullDisruption → `--node-eviction-rate`; PartialDisruption →
//!   `--secondary-node-eviction-rate` when the zone has more than
//!   `--large-cluster-size-threshold` nodes, else 0 (stopped);
//! - when every zone is fully disrupted, no node gets NoExecute taints (the monitor removes
//!   them): the control plane is assumed to have lost the network, not every node.
use std::collections::HashMap;

use coxswain_api::v1::Node;
use tokio::time::Instant;

pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";

/// The eviction-rate flags.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Nodes per second that get NoExecute taints in a healthy zone (`--node-eviction-rate`).
    pub healthy: f64,
    /// The same in a partially disrupted large zone (`--secondary-node-eviction-rate`).
    pub secondary: f64,
    /// Not-Ready share at which a zone is partially disrupted (`--unhealthy-zone-threshold`).
    pub unhealthy_zone_threshold: f64,
    /// Zones up to this size stop evicting when partially disrupted
    /// (`--large-cluster-size-threshold`).
    pub large_cluster_size_threshold: usize,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            healthy: 0.1,
            secondary: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_size_threshold: 50,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// The node's zone key (`GetZoneKey`): region and zone labels, "" when both are absent.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.as_ref().map(|m| &m.labels);
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    let (region, zone) = (get(LABEL_REGION), get(LABEL_ZONE));
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\u{0}:{zone}")
    }
}

/// `ComputeZoneState` over the zone's Ready statuses ("True" counts as ready, anything else,
/// a missing condition included, as not ready).
pub fn zone_state<'a>(ready: impl IntoIterator<Item = &'a str>, threshold: f64) -> ZoneState {
    let (mut ok, mut bad) = (0usize, 0usize);
    for r in ready {
        if r == "True" {
            ok += 1;
        } else {
            bad += 1;
        }
    }
    if ok == 0 && bad > 0 {
        ZoneState::FullDisruption
    } else if bad > 2 && bad as f64 / (ok + bad) as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The NoExecute tainting rate of a zone in `state` with `size` nodes (`setLimiterInZone`).
pub fn zone_rate(state: ZoneState, size: usize, rates: &Rates) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => rates.healthy,
        ZoneState::PartialDisruption => {
            if size > rates.large_cluster_size_threshold {
                rates.secondary
            } else {
                0.0
            }
        }
    }
}

/// A token bucket with burst 1 (client-go's `NewTokenBucketRateLimiter(qps, 1)`); rate ≤ 0
/// never admits.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, now: Instant) -> Self {
        Bucket {
            rate,
            tokens: 1.0,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if self.rate > 0.0 {
            let dt = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(1.0);
        }
        self.last = now;
    }

    /// Take a token if there is one.
    pub fn try_accept(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Change the rate (`SwapLimiter`): a new bucket, drained when the old one had no token.
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        if (rate - self.rate).abs() < f64::EPSILON {
            return;
        }
        self.refill(now);
        let had_token = self.rate > 0.0 && self.tokens >= 1.0;
        *self = Bucket::new(rate, now);
        if !had_token {
            self.tokens = 0.0;
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Per-zone states and buckets.
#[derive(Debug, Default)]
pub struct Zones {
    states: HashMap<String, ZoneState>,
    buckets: HashMap<String, Bucket>,
}

/// What one pass decided about disruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disruption {
    /// Every zone is fully disrupted: no NoExecute taints anywhere.
    pub all_fully_disrupted: bool,
    /// The pass left full-disruption mode: every node gets a fresh grace period.
    pub exited_full_disruption: bool,
}

impl Zones {
    pub fn new() -> Self {
        Self::default()
    }

    /// Recompute zone states from `(zone, ready status)` of every node (`handleDisruption`)
    /// and set each zone's rate.
    pub fn update<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = (String, &'a str)>,
        rates: &Rates,
        now: Instant,
    ) -> Disruption {
        let mut by_zone: HashMap<String, Vec<&str>> = HashMap::new();
        for (z, r) in nodes {
            by_zone.entry(z).or_default().push(r);
        }
        let new: HashMap<String, (ZoneState, usize)> = by_zone
            .iter()
            .map(|(z, rs)| {
                (
                    z.clone(),
                    (
                        zone_state(rs.iter().copied(), rates.unhealthy_zone_threshold),
                        rs.len(),
                    ),
                )
            })
            .collect();
        let all_now = !new.is_empty() && new.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let all_before = !self.states.is_empty()
            && self
                .states
                .iter()
                .filter(|(z, _)| new.contains_key(*z))
                .all(|(_, s)| *s == ZoneState::FullDisruption);
        self.states.retain(|z, _| new.contains_key(z));
        self.buckets.retain(|z, _| new.contains_key(z));
        for z in new.keys() {
            self.buckets
                .entry(z.clone())
                .or_insert_with(|| Bucket::new(rates.healthy, now));
        }
        if all_now {
            for (z, b) in self.buckets.iter_mut() {
                b.set_rate(0.0, now);
                self.states.insert(z.clone(), ZoneState::FullDisruption);
            }
            return Disruption {
                all_fully_disrupted: true,
                exited_full_disruption: false,
            };
        }
        for (z, (state, size)) in &new {
            if self.states.get(z) != Some(state) || all_before {
                if let Some(b) = self.buckets.get_mut(z) {
                    b.set_rate(zone_rate(*state, *size, rates), now);
                }
                self.states.insert(z.clone(), *state);
            }
        }
        Disruption {
            all_fully_disrupted: false,
            exited_full_disruption: all_before,
        }
    }

    /// May a node of `zone` get a NoExecute taint now? Takes the zone's token.
    pub fn try_taint(&mut self, zone: &str, now: Instant) -> bool {
        self.buckets
            .get_mut(zone)
            .is_some_and(|b| b.try_accept(now))
    }

    pub fn state(&self, zone: &str) -> Option<ZoneState> {
        self.states.get(zone).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coxswain_api::v1::ObjectMeta;
    use std::time::Duration;

    #[test]
    fn zone_states_follow_compute_zone_state() {
        assert_eq!(zone_state(["True", "Unknown"], 0.55), ZoneState::Normal);
        assert_eq!(
            zone_state(["Unknown", "False"], 0.55),
            ZoneState::FullDisruption
        );
        // More than 2 not ready and at least 55 %.
        assert_eq!(
            zone_state(["True", "True", "Unknown", "Unknown", "Unknown"], 0.55),
            ZoneState::PartialDisruption
        );
        assert_eq!(
            zone_state(
                ["True", "True", "True", "Unknown", "Unknown", "Unknown"],
                0.55
            ),
            ZoneState::Normal
        );
        assert_eq!(
            zone_state(["True", "Unknown", "Unknown"], 0.55),
            ZoneState::Normal
        );
    }

    #[test]
    fn zone_rates() {
        let r = Rates::default();
        assert_eq!(zone_rate(ZoneState::Normal, 3, &r), 0.1);
        assert_eq!(zone_rate(ZoneState::FullDisruption, 3, &r), 0.1);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 50, &r), 0.0);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 51, &r), 0.01);
    }

    #[test]
    fn zone_keys_from_labels() {
        let mut n = Node::default();
        assert_eq!(zone_key(&n), "");
        n.metadata = Some(ObjectMeta {
            labels: [(LABEL_ZONE.to_string(), "a".to_string())].into(),
            ..Default::default()
        });
        assert_eq!(zone_key(&n), ":\u{0}:a");
    }

    #[tokio::test(start_paused = true)]
    async fn one_node_per_ten_seconds_at_the_default_rate() {
        let mut b = Bucket::new(0.1, Instant::now());
        assert!(b.try_accept(Instant::now()));
        assert!(!b.try_accept(Instant::now()));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!b.try_accept(Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.try_accept(Instant::now()));
        // Rate 0 never admits.
        let mut z = Bucket::new(0.0, Instant::now());
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(!z.try_accept(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn full_disruption_everywhere_stops_tainting_and_leaving_it_is_reported() {
        let r = Rates::default();
        let mut z = Zones::new();
        let now = Instant::now();
        let d = z.update(
            [(String::new(), "True"), (String::new(), "Unknown")],
            &r,
            now,
        );
        assert!(!d.all_fully_disrupted);
        assert!(z.try_taint("", now));
        let d = z.update(
            [(String::new(), "Unknown"), (String::new(), "Unknown")],
            &r,
            now,
        );
        assert!(d.all_fully_disrupted);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!z.try_taint("", Instant::now()));
        let d = z.update(
            [(String::new(), "True"), (String::new(), "Unknown")],
            &r,
            Instant::now(),
        );
        assert!(!d.all_fully_disrupted);
        assert!(d.exited_full_disruption);
        assert_eq!(z.state(""), Some(ZoneState::Normal));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partially_disrupted_small_zone_stops_evicting() {
        let r = Rates::default();
        let mut z = Zones::new();
        let nodes = |bad: usize| {
            (0..10)
                .map(move |i| (String::new(), if i < bad { "Unknown" } else { "True" }))
                .collect::<Vec<_>>()
        };
        z.update(nodes(1), &r, Instant::now());
        assert!(z.try_taint("", Instant::now()));
        z.update(nodes(6), &r, Instant::now());
        assert_eq!(z.state(""), Some(ZoneState::PartialDisruption));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!z.try_taint("", Instant::now()));
    }
}
