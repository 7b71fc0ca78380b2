//! A watched cell: tokio's `watch` channel as the agent's pod workers use it (the latest value,
//! `changed`, `has_changed`, closed once every sender is gone), with one wait list instead of
//! tokio's nine. A pod holds three of these (its termination request, its latest object, its
//! latest status), each watched by one or two tasks, and tokio's channel costs ~350 bytes of
//! wait lists alone (sim pods' memory, issue 17); this one ~90 bytes plus the value.
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tokio::sync::Notify;

struct Shared<T> {
    value: RwLock<T>,
    /// Bumped by every send.
    version: AtomicU64,
    senders: AtomicUsize,
    closed: AtomicBool,
    /// Woken (all waiters) on every send and when the last sender goes.
    notify: Notify,
}

/// The cell's only writer side (clone it for more).
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A reader that remembers the last version it saw.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

/// The cell's value, borrowed (a read lock: not held across an await).
pub struct Ref<'a, T>(RwLockReadGuard<'a, T>);

impl<T> Deref for Ref<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The channel is closed: every sender is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// A cell holding `init`, and a receiver that has seen it.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        version: AtomicU64::new(0),
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
        notify: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

fn read<T>(shared: &Shared<T>) -> Ref<'_, T> {
    Ref(shared.value.read().unwrap_or_else(|e| e.into_inner()))
}

impl<T> Sender<T> {
    /// Replaces the value (receivers or not) and wakes the receivers; returns the old one.
    pub fn send_replace(&self, value: T) -> T {
        let old = {
            let mut v = self.shared.value.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *v, value)
        };
        self.changed();
        old
    }

    /// Changes the value in place; the receivers are woken when `modify` says it changed it.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut v = self.shared.value.write().unwrap_or_else(|e| e.into_inner());
            modify(&mut v)
        };
        if modified {
            self.changed();
        }
        modified
    }

    fn changed(&self) {
        self.shared.version.fetch_add(1, Ordering::SeqCst);
        self.shared.notify.notify_waiters();
    }

    pub fn borrow(&self) -> Ref<'_, T> {
        read(&self.shared)
    }

    /// A receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        Receiver {
            shared: self.shared.clone(),
            seen: self.shared.version.load(Ordering::SeqCst),
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::SeqCst);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.closed.store(true, Ordering::SeqCst);
            self.shared.notify.notify_waiters();
        }
    }
}

impl<T> Receiver<T> {
    pub fn borrow(&self) -> Ref<'_, T> {
        read(&self.shared)
    }

    /// The value, now seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.version.load(Ordering::SeqCst);
        read(&self.shared)
    }

    /// Whether a value was sent since this receiver last saw one; `Closed` once every sender
    /// is gone (as tokio's).
    pub fn has_changed(&self) -> Result<bool, Closed> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        Ok(self.shared.version.load(Ordering::SeqCst) != self.seen)
    }

    /// A wake-up for the next send or the close, registered now (tokio's `notify_waiters`
    /// reaches a `Notified` from its creation): made before the value is checked, it cannot
    /// miss a change. Nothing is marked seen.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.notify.notified()
    }

    /// Whether every sender is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Waits for a value this receiver has not seen (and marks it seen); `Closed` when every
    /// sender is gone and nothing new was sent. Cancel safe.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            // Registered before the check: a send between the check and the wait still wakes.
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let version = self.shared.version.load(Ordering::SeqCst);
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.shared.closed.load(Ordering::SeqCst) {
                return Err(Closed);
            }
            notified.await;
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn receivers_see_each_change_once_and_the_close() {
        let (tx, mut rx) = channel(0u32);
        assert_eq!(rx.has_changed(), Ok(false));
        let mut other = tx.subscribe();
        let waiter = tokio::spawn(async move {
            other.changed().await.unwrap();
            *other.borrow_and_update()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(tx.send_replace(7), 0);
        assert_eq!(waiter.await.unwrap(), 7);
        assert_eq!(rx.has_changed(), Ok(true));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 7);
        assert_eq!(rx.has_changed(), Ok(false));
        // Not modified: no change seen.
        assert!(!tx.send_if_modified(|_| false));
        assert_eq!(rx.has_changed(), Ok(false));
        assert!(tx.send_if_modified(|v| {
            *v = 8;
            true
        }));
        // A change made before the close is still seen, then the close.
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(rx.has_changed(), Ok(true));
        drop(tx2);
        assert_eq!(rx.has_changed(), Err(Closed));
        assert_eq!(rx.changed().await, Ok(()));
        assert_eq!(*rx.borrow(), 8);
        assert_eq!(rx.changed().await, Err(Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_up_made_before_a_send_or_the_close_is_not_missed() {
        let (tx, rx) = channel(0u32);
        let woken = rx.notified();
        tx.send_replace(1);
        // Made before the send, never polled before it: still woken.
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .expect("woken by the send");
        assert!(!rx.is_closed());
        let woken = rx.notified();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .expect("woken by the close");
        assert!(rx.is_closed());
        assert_eq!(*rx.borrow(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_receiver_wakes_when_the_last_sender_goes() {
        let (tx, mut rx) = channel(());
        let waiter = tokio::spawn(async move { rx.changed().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), Err(Closed));
    }
}
