//! Leader election on `coordination.k8s.io` Leases, with client-go's leaderelection semantics:
//! several replicas of a component run, one leads.
//!
//! - A candidate tries to take the Lease every retryPeriod (jittered ×1.2). It may take it when
//!   nobody holds it (absent, or `holderIdentity` empty: released) or when the record has not
//!   changed for leaseDuration as measured on the candidate's own clock from when it last saw it
//!   change (client-go's observedTime — no clock comparison across hosts).
//! - Taking it from another holder increments `leaseTransitions` and sets `acquireTime`; every
//!   renewal sets `renewTime`. Writes carry the resourceVersion read, so two candidates never
//!   both win: the store's compare-and-swap decides.
//! - The leader renews every retryPeriod. When renewals fail for renewDeadline (shorter than
//!   leaseDuration), or the Lease names another holder, it has lost: [`LeaderElector::hold`]
//!   returns, and the component stops acting (upstream's OnStoppedLeading, which exits the
//!   process) before any other candidate may take the Lease.
//!
//! The decision is the pure [`decide`]; the loops are [`LeaderElector::acquire`] and
//! [`LeaderElector::hold`].
use std::time::Duration;

use coxswain_api::time::now_rfc3339;
use coxswain_api::v1::{Lease, LeaseSpec, ObjectMeta};
use tokio::time::Instant;

use crate::{Client, Error};

/// client-go's JitterFactor for the acquire loop.
const JITTER_FACTOR: f64 = 1.2;

/// Timings and names of one election (the `--leader-elect-*` flags).
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    /// The Lease's namespace (`kube-system`).
    pub namespace: String,
    /// The Lease's name (`kube-scheduler`, `kube-controller-manager`, `coxswain-<component>`).
    pub name: String,
    /// This candidate's holderIdentity (unique per process: hostname_uuid by default).
    pub identity: String,
    /// How long a non-leader waits after the last observed change before taking the Lease.
    pub lease_duration: Duration,
    /// How long the leader retries renewing before it gives up leading.
    pub renew_deadline: Duration,
    /// Between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Upstream's defaults: 15 s, 10 s, 2 s, in `kube-system`.
    pub fn new(name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderElectionConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// client-go's checks: leaseDuration > renewDeadline > JitterFactor × retryPeriod > 0, and
    /// an identity.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err("leaseDuration must be greater than renewDeadline".into());
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return Err("renewDeadline must be greater than retryPeriod*JitterFactor".into());
        }
        if self.retry_period.is_zero() {
            return Err("retryPeriod must be greater than zero".into());
        }
        if self.identity.is_empty() {
            return Err("leader election requires an identity".into());
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return Err("leader election requires a Lease name and namespace".into());
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        (self.lease_duration.as_secs_f64().ceil() as i32).max(1)
    }
}

/// This process's default identity: `<hostname>_<random 128-bit id>`, as client-go components'
/// `<hostname>_<uuid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let id = format!("{:032x}", rand::random::<u128>());
    if host.is_empty() {
        id
    } else {
        format!("{host}_{id}")
    }
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Another holder's lease is still valid: wait.
    Held { holder: String },
    /// Write this spec (create when the Lease is absent, else update at the read version).
    Write(LeaseSpec),
}

/// client-go's tryAcquireOrRenew on the record read (`current`; None: no Lease), given when
/// this candidate last saw the record change (`observed_at`) and the time now.
pub fn decide(
    cfg: &LeaderElectionConfig,
    current: Option<&LeaseSpec>,
    observed_at: Instant,
    now: Instant,
    now_wall: &str,
) -> Decision {
    let fresh = || LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration_seconds()),
        acquire_time: now_wall.to_string(),
        renew_time: now_wall.to_string(),
        lease_transitions: Some(0),
        ..Default::default()
    };
    let Some(cur) = current else {
        return Decision::Write(fresh());
    };
    let holder = cur.holder_identity.clone().unwrap_or_default();
    let duration = cur
        .lease_duration_seconds
        .filter(|s| *s > 0)
        .map_or(cfg.lease_duration, |s| Duration::from_secs(s as u64));
    if !holder.is_empty() && holder != cfg.identity && observed_at + duration > now {
        return Decision::Held { holder };
    }
    let mut next = fresh();
    let transitions = cur.lease_transitions.unwrap_or(0);
    if holder == cfg.identity {
        next.acquire_time = cur.acquire_time.clone();
        next.lease_transitions = Some(transitions);
    } else {
        next.lease_transitions = Some(transitions + 1);
    }
    Decision::Write(next)
}

/// Why leading ended.
#[derive(Debug, thiserror::Error)]
pub enum LostLease {
    #[error("failed to renew lease {0} within the renew deadline")]
    RenewDeadline(String),
    #[error("lease {lease} is held by {holder}")]
    Taken { lease: String, holder: String },
}

/// One candidate in one election.
pub struct LeaderElector {
    client: Client,
    cfg: LeaderElectionConfig,
    /// The record last read and when (this process's clock) it was first seen so.
    observed: Option<(LeaseSpec, Instant)>,
}

/// The outcome of one attempt.
enum Attempt {
    Leading,
    Held(String),
    Failed,
}

impl LeaderElector {
    pub fn new(client: Client, cfg: LeaderElectionConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(LeaderElector {
            client,
            cfg,
            observed: None,
        })
    }

    pub fn config(&self) -> &LeaderElectionConfig {
        &self.cfg
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
    }

    async fn try_acquire_or_renew(&mut self) -> Attempt {
        let read = self
            .client
            .get::<Lease>(&self.cfg.namespace, &self.cfg.name)
            .await;
        let lease = match read {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(lease = %self.lease_ref(), error = %e, "reading the leader lease");
                return Attempt::Failed;
            }
        };
        let now = Instant::now();
        let spec = lease.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        if let Some(s) = &spec {
            if self.observed.as_ref().map(|(o, _)| o) != Some(s) {
                self.observed = Some((s.clone(), now));
            }
        }
        let observed_at = self.observed.as_ref().map_or(now, |(_, t)| *t);
        let next = match decide(&self.cfg, spec.as_ref(), observed_at, now, &now_rfc3339()) {
            Decision::Held { holder } => return Attempt::Held(holder),
            Decision::Write(next) => next,
        };
        let result = match lease {
            None => {
                let l = Lease {
                    metadata: Some(ObjectMeta {
                        name: self.cfg.name.clone(),
                        namespace: self.cfg.namespace.clone(),
                        ..Default::default()
                    }),
                    spec: Some(next.clone()),
                    ..Default::default()
                };
                self.client.create(&l).await
            }
            Some(mut l) => {
                // The resourceVersion read makes this a compare-and-swap.
                l.spec = Some(next.clone());
                self.client.update(&l).await
            }
        };
        match result {
            Ok(_) => {
                self.observed = Some((next, Instant::now()));
                Attempt::Leading
            }
            Err(Error::Conflict(_) | Error::AlreadyExists(_)) => Attempt::Failed,
            Err(e) => {
                tracing::warn!(lease = %self.lease_ref(), error = %e, "writing the leader lease");
                Attempt::Failed
            }
        }
    }

    /// Block until this candidate holds the Lease.
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %self.lease_ref(), identity = %self.cfg.identity, "attempting to acquire leader lease");
        let mut last_holder = String::new();
        loop {
            match self.try_acquire_or_renew().await {
                Attempt::Leading => break,
                Attempt::Held(h) if h != last_holder => {
                    tracing::info!(lease = %self.lease_ref(), holder = %h, "lease is held by another candidate");
                    last_holder = h;
                }
                _ => {}
            }
            let jitter = 1.0 + rand::random::<f64>() * (JITTER_FACTOR - 1.0);
            tokio::time::sleep(self.cfg.retry_period.mul_f64(jitter)).await;
        }
        metrics::gauge!("leader_election_master_status", "name" => self.cfg.name.clone()).set(1.0);
        tracing::info!(lease = %self.lease_ref(), identity = %self.cfg.identity, "successfully acquired lease");
    }

    /// Renew while leading; returns when leadership is lost (the caller stops acting).
    pub async fn hold(&mut self) -> LostLease {
        let lost = loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            let deadline = Instant::now() + self.cfg.renew_deadline;
            let renewed = loop {
                match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                    Ok(Attempt::Leading) => break None,
                    Ok(Attempt::Held(holder)) => {
                        break Some(LostLease::Taken {
                            lease: self.lease_ref(),
                            holder,
                        })
                    }
                    Ok(Attempt::Failed) => {}
                    Err(_) => break Some(LostLease::RenewDeadline(self.lease_ref())),
                }
                let now = Instant::now();
                if now >= deadline {
                    break Some(LostLease::RenewDeadline(self.lease_ref()));
                }
                tokio::time::sleep(self.cfg.retry_period.min(deadline - now)).await;
            };
            if let Some(lost) = renewed {
                break lost;
            }
        };
        metrics::gauge!("leader_election_master_status", "name" => self.cfg.name.clone()).set(0.0);
        tracing::error!(lease = %self.lease_ref(), reason = %lost, "leaderelection lost");
        lost
    }

    /// Give the Lease up (on a clean shutdown), as client-go's ReleaseOnCancel: holderIdentity
    /// empty and a 1 s duration, so a standby takes over at its next retry.
    pub async fn release(&mut self) {
        let Ok(Some(mut l)) = self
            .client
            .get::<Lease>(&self.cfg.namespace, &self.cfg.name)
            .await
        else {
            return;
        };
        let spec = l.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = now_rfc3339();
        if let Err(e) = self.client.update(&l).await {
            tracing::warn!(lease = %self.lease_ref(), error = %e, "releasing the leader lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: &str) -> LeaderElectionConfig {
        LeaderElectionConfig::new("kube-scheduler", id)
    }

    fn held_by(id: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(id.into()),
            lease_duration_seconds: Some(15),
            acquire_time: "t0".into(),
            renew_time: "t1".into(),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    #[test]
    fn an_absent_lease_is_taken_with_no_transitions() {
        let t = Instant::now();
        let Decision::Write(s) = decide(&cfg("a"), None, t, t, "now") else {
            panic!("must write")
        };
        assert_eq!(s.holder_identity.as_deref(), Some("a"));
        assert_eq!(
            (s.acquire_time.as_str(), s.renew_time.as_str()),
            ("now", "now")
        );
        assert_eq!(
            (s.lease_transitions, s.lease_duration_seconds),
            (Some(0), Some(15))
        );
    }

    #[test]
    fn another_holder_is_waited_out_for_a_lease_duration_from_the_last_observed_change() {
        let t = Instant::now();
        let other = held_by("b", 2);
        let d = decide(
            &cfg("a"),
            Some(&other),
            t,
            t + Duration::from_secs(14),
            "now",
        );
        assert_eq!(d, Decision::Held { holder: "b".into() });
        let Decision::Write(s) = decide(
            &cfg("a"),
            Some(&other),
            t,
            t + Duration::from_secs(15),
            "now",
        ) else {
            panic!("expired: must take it")
        };
        assert_eq!(s.holder_identity.as_deref(), Some("a"));
        assert_eq!(s.lease_transitions, Some(3), "a new holder is a transition");
        assert_eq!(s.acquire_time, "now");
    }

    #[test]
    fn the_holder_renews_keeping_acquire_time_and_a_released_lease_is_free() {
        let t = Instant::now();
        let Decision::Write(s) = decide(&cfg("a"), Some(&held_by("a", 4)), t, t, "t2") else {
            panic!("renews")
        };
        assert_eq!(
            (s.acquire_time.as_str(), s.renew_time.as_str()),
            ("t0", "t2")
        );
        assert_eq!(s.lease_transitions, Some(4));
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held_by("", 4)
        };
        assert!(matches!(
            decide(&cfg("a"), Some(&released), t, t, "t3"),
            Decision::Write(_)
        ));
    }

    #[test]
    fn timings_are_checked_as_client_go() {
        let mut c = cfg("a");
        assert!(c.validate().is_ok());
        c.renew_deadline = Duration::from_secs(15);
        assert!(c.validate().is_err());
        c.renew_deadline = Duration::from_millis(2300);
        assert!(c.validate().is_err(), "renewDeadline <= 1.2 x retryPeriod");
        c.renew_deadline = Duration::from_secs(10);
        c.identity.clear();
        assert!(c.validate().is_err());
        assert_ne!(default_identity(), default_identity());
    }
}
