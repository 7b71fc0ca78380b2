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
//! - Lease-gated writes: in a process whose component runs under election
//!   ([`LeaderElector::fence_process`]), every write the [`Client`] sends is checked against the
//!   process's [`Fence`] first. Each successful acquire or renew opens it until the attempt's
//!   start + renewDeadline. Past that instant a write is refused locally with UNAVAILABLE. So a
//!   leader that was frozen (SIGSTOP, a stalled VM) or cut off writes nothing once it resumes,
//!   even before its renew loop notices the loss. A standby can take the Lease only a
//!   leaseDuration after the leader's last renewal at the earliest, so a write that passed the
//!   check has leaseDuration − renewDeadline to reach the store. The Lease writes themselves are
//!   exempt.
//!
//! The decision is the pure [`decide`]; the loops are [`LeaderElector::acquire`] and
//! [`LeaderElector::hold`].
use std::sync::{Arc, Mutex, OnceLock};
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

/// Until when a leader may write: opened by each successful acquire or renew, closed for good
/// when leading is lost.
#[derive(Debug, Default)]
pub struct Fence {
    state: Mutex<FenceState>,
}

#[derive(Debug, Default)]
struct FenceState {
    /// Writes are allowed while now < this.
    until: Option<Instant>,
    /// Leading was lost: no write any more.
    closed: bool,
}

impl Fence {
    /// A fence that allows nothing yet.
    pub fn new() -> Fence {
        Fence::default()
    }

    /// Allow writes until `until` (a later renewal moves it on, never back).
    pub fn extend(&self, until: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.closed && s.until.is_none_or(|u| until > u) {
            s.until = Some(until);
        }
    }

    /// Refuse every write from now on.
    pub fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.closed = true;
        s.until = None;
    }

    /// May this process write at `now`?
    pub fn allows(&self, now: Instant) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        !s.closed && s.until.is_some_and(|u| now < u)
    }
}

/// The fence of this process, once a component in it runs under election.
static PROCESS_FENCE: OnceLock<Arc<Fence>> = OnceLock::new();

/// Called by the client before each write (the Lease writes excepted): UNAVAILABLE when this
/// process leads under election and its lease is no longer known valid.
pub(crate) fn check_write(verb: &'static str, kind: &str) -> crate::Result<()> {
    let Some(fence) = PROCESS_FENCE.get() else {
        return Ok(());
    };
    if fence.allows(Instant::now()) {
        tracing::debug!(target: "coxswain_client::writes", verb, kind, "write sent");
        return Ok(());
    }
    tracing::warn!(
        target: "coxswain_client::writes",
        verb,
        kind,
        "write refused: the leader lease is not known valid (renew deadline passed)"
    );
    Err(Error::Transport(tonic::Status::unavailable(
        "write refused: this process's leader lease is not known valid",
    )))
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
    /// Opened by each successful acquire or renew (see [`LeaderElector::fence_process`]).
    fence: Arc<Fence>,
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
            client: client.lease_writer(),
            cfg,
            observed: None,
            fence: Arc::new(Fence::new()),
        })
    }

    /// Gate every write of this process on this election (lease-gated writes, see the module
    /// docs): for a process that runs one component, all of whose writes are the leader's.
    /// Only the first elector of a process can do so; false for a later one.
    pub fn fence_process(&mut self) -> bool {
        let installed = PROCESS_FENCE.get_or_init(|| self.fence.clone());
        Arc::ptr_eq(installed, &self.fence)
    }

    /// This election's fence.
    pub fn fence(&self) -> Arc<Fence> {
        self.fence.clone()
    }

    pub fn config(&self) -> &LeaderElectionConfig {
        &self.cfg
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
    }

    async fn try_acquire_or_renew(&mut self) -> Attempt {
        // A standby can take the Lease no earlier than leaseDuration after it sees this
        // attempt's write, which lands after this instant.
        let started = Instant::now();
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
                self.fence.extend(started + self.cfg.renew_deadline);
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
        self.fence.close();
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

    #[tokio::test(start_paused = true)]
    async fn the_fence_allows_writes_only_until_the_renew_deadline_of_the_last_renewal() {
        let f = Fence::new();
        let t0 = Instant::now();
        assert!(!f.allows(t0), "closed before the first acquire");
        let deadline = Duration::from_secs(10);
        f.extend(t0 + deadline);
        assert!(f.allows(t0));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(f.allows(Instant::now()));
        // A renewal that started at t0 + 9 s moves it on; an older one never moves it back.
        f.extend(Instant::now() + deadline);
        f.extend(t0 + deadline);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(f.allows(Instant::now()), "t0 + 18 s < t0 + 19 s");
        // Frozen (no renewal) past the deadline: refused, without any loop having run.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!f.allows(Instant::now()), "at t0 + 19 s");
        // A renewal that succeeds late reopens it; losing the lease closes it for good.
        f.extend(Instant::now() + deadline);
        assert!(f.allows(Instant::now()));
        f.close();
        f.extend(Instant::now() + deadline);
        assert!(!f.allows(Instant::now()), "closed for good");
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
