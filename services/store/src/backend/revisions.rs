//! A revision that only moves forward, and waits for it to reach a given value that wake only
//! the waiters it reached.
//!
//! A `tokio::sync::watch` channel wakes every receiver on every change, and each re-checks its
//! predicate: with N writes waiting for their own revision to come back through the change feed,
//! each applied batch woke all N (O(N) task polls per write at 64 concurrent creates). Here the
//! waiters are kept by the revision they wait for, and advancing wakes exactly those at or
//! below the new revision.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Revisions {
    current: AtomicI64,
    waiters: Mutex<BTreeMap<i64, Vec<oneshot::Sender<()>>>>,
}

impl Revisions {
    pub fn new(revision: i64) -> Revisions {
        Revisions {
            current: AtomicI64::new(revision),
            waiters: Mutex::new(BTreeMap::new()),
        }
    }

    /// The highest revision advanced to.
    pub fn get(&self) -> i64 {
        self.current.load(Ordering::SeqCst)
    }

    /// Move to `revision` (a lower one is ignored) and wake everyone waiting for it or less.
    pub fn advance(&self, revision: i64) {
        // Stored before the waiters are taken: a waiter checks `current` under the lock, so
        // it either sees the new revision or is registered before the drain below.
        self.current.fetch_max(revision, Ordering::SeqCst);
        let reached = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            match w.first_key_value() {
                Some((first, _)) if *first <= revision => {
                    let above = w.split_off(&(revision.saturating_add(1)));
                    std::mem::replace(&mut *w, above)
                }
                _ => return,
            }
        };
        for tx in reached.into_values().flatten() {
            let _ = tx.send(());
        }
    }

    /// Wait until the revision is at least `revision`.
    pub async fn wait_for(&self, revision: i64) {
        if self.get() >= revision {
            return;
        }
        let rx = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if self.get() >= revision {
                return;
            }
            let (tx, rx) = oneshot::channel();
            w.entry(revision).or_default().push(tx);
            rx
        };
        // The sender is only dropped once woken (or with `self`).
        let _ = rx.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_exactly_the_waiters_reached() {
        let r = Arc::new(Revisions::new(5));
        // At or below the current revision: at once.
        r.wait_for(3).await;
        r.wait_for(5).await;
        let mut waits = Vec::new();
        for want in [6, 7, 9] {
            let r = r.clone();
            waits.push(tokio::spawn(async move { r.wait_for(want).await }));
        }
        tokio::task::yield_now().await;
        r.advance(7);
        tokio::time::timeout(Duration::from_secs(5), &mut waits[0])
            .await
            .expect("6 woken")
            .expect("task");
        tokio::time::timeout(Duration::from_secs(5), &mut waits[1])
            .await
            .expect("7 woken")
            .expect("task");
        assert!(!waits[2].is_finished(), "9 is not reached yet");
        // Going back is ignored.
        r.advance(4);
        assert_eq!(r.get(), 7);
        r.advance(12);
        tokio::time::timeout(Duration::from_secs(5), &mut waits[2])
            .await
            .expect("9 woken")
            .expect("task");
        assert!(r.waiters.lock().expect("lock").is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_wake_up_is_lost_under_concurrent_advances() {
        let r = Arc::new(Revisions::new(0));
        let mut waits = Vec::new();
        for want in 1..=2000 {
            let r = r.clone();
            waits.push(tokio::spawn(async move { r.wait_for(want).await }));
        }
        let adv = r.clone();
        let advancing = tokio::spawn(async move {
            for rev in 1..=2000 {
                adv.advance(rev);
                if rev % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        for w in waits {
            tokio::time::timeout(Duration::from_secs(20), w)
                .await
                .expect("every waiter woken")
                .expect("task");
        }
        advancing.await.expect("advance");
    }
}
