//! How fresh the in-memory caches are, checked against the store at most
//! once per [`WINDOW`] for every request together.
//!
//! A page view used to ask the store three things before it rendered: the
//! session, the account behind it (still enabled?) and `data_version` (has
//! the sync written since the overview was built?). Each question is a hop
//! to a database worker thread and back, which under load cost more than
//! rendering the page. The caches in front of them (sessions, accounts, the
//! overview) are now keyed on one [`Stamp`] that this module reads from the
//! store on behalf of all the requests of one window: however many requests
//! arrive, the store is asked at most twice per window.
//!
//! The stamp has to see writes by other processes (the `user disable` CLI,
//! other instances on one PostgreSQL, DESIGN §10), so an in-process signal
//! alone would not do; the window bounds how stale a cache can be: a request
//! always uses a stamp read *after* it arrived, or at most [`WINDOW`] before.
//! Writes made by this process call [`Freshness::invalidate`], so its own
//! changes are seen by the very next request.

use crate::store::{Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How old a stamp may be when a request uses it: at most this long after
/// another process disabled an account, its sessions stop working on this
/// instance. Short enough that nobody can act in between, long enough that
/// under load the store is asked a few hundred times a second, not once per
/// request.
pub const WINDOW: Duration = Duration::from_millis(5);

/// What the caches are keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The audit trail's head. Every change to an account (and every
    /// sign-in and sign-out) appends an audit event in the same transaction
    /// as the change or before it, so an unchanged head means unchanged
    /// accounts.
    pub audit: i64,
    /// `data_version`: bumped by every sync write, whoever made it.
    pub data: i64,
}

/// The shared, coalescing reader of the [`Stamp`]; cheap to clone.
#[derive(Clone)]
pub struct Freshness {
    store: Store,
    window: Duration,
    /// The latest read, started at the instant it holds; requests that
    /// arrive within [`WINDOW`] of that instant share it (and wait for it
    /// if it is still being read).
    current: Arc<Mutex<Option<Read>>>,
}

/// A read of the stamp: when it was started, and its outcome once there.
type Read = (Instant, Arc<OnceCell<Stamp>>);

impl Freshness {
    pub fn new(store: Store) -> Self {
        Self::with_window(store, WINDOW)
    }

    /// With another window than [`WINDOW`] (tests).
    pub fn with_window(store: Store, window: Duration) -> Self {
        Self {
            store,
            window,
            current: Arc::default(),
        }
    }

    /// A stamp read from the store no earlier than [`WINDOW`] before this
    /// call (or after the last [`Freshness::invalidate`]).
    pub async fn stamp(&self) -> Result<Stamp, StoreError> {
        let arrived = Instant::now();
        let read = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            match &*current {
                // A read that started at most WINDOW before this request
                // arrived (or after it, if another thread got here first).
                Some((started, read))
                    if arrived.saturating_duration_since(*started) <= self.window =>
                {
                    read.clone()
                }
                _ => {
                    let read = Arc::new(OnceCell::new());
                    *current = Some((arrived, read.clone()));
                    read
                }
            }
        };
        // The first caller reads; the others wait for it. A failed read
        // leaves the cell empty, so the next caller tries again.
        read.get_or_try_init(|| self.read()).await.copied()
    }

    /// Makes the next [`Freshness::stamp`] read the store: this process has
    /// just written something a cache depends on.
    pub fn invalidate(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn read(&self) -> Result<Stamp, StoreError> {
        Ok(Stamp {
            audit: self.store.audit_head_seq().await?,
            data: self.store.data_version().await?,
        })
    }
}

/// Values that hold while the audit trail's head stays where it was (the
/// accounts behind sessions): a newer head empties it.
pub(crate) struct ByAudit<K, V> {
    audit: i64,
    values: std::collections::HashMap<K, V>,
}

impl<K, V> Default for ByAudit<K, V> {
    fn default() -> Self {
        Self {
            audit: 0,
            values: std::collections::HashMap::new(),
        }
    }
}

/// Past this many entries a [`ByAudit`] starts over.
const BY_AUDIT_CAPACITY: usize = 10_000;

impl<K: std::hash::Hash + Eq, V: Clone> ByAudit<K, V> {
    /// The value kept for `key` under the stamp's audit head.
    pub(crate) fn get(&self, stamp: Stamp, key: &K) -> Option<V> {
        (self.audit == stamp.audit)
            .then(|| self.values.get(key).cloned())
            .flatten()
    }

    /// Keeps `value`, read from the store after `stamp` was; a value read
    /// under an older head than the kept ones is dropped.
    pub(crate) fn put(&mut self, stamp: Stamp, key: K, value: V) {
        if stamp.audit > self.audit {
            self.audit = stamp.audit;
            self.values.clear();
        }
        if stamp.audit == self.audit {
            if self.values.len() >= BY_AUDIT_CAPACITY {
                self.values.clear();
            }
            self.values.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TestStore;

    const BUMP: &str = "UPDATE data_version SET version = version + 1 WHERE id = 1";

    #[tokio::test]
    async fn a_stamp_is_shared_within_its_window_and_read_again_after_an_invalidation() {
        for backend in ["sqlite", "postgres"] {
            let t = TestStore::new(backend).await;
            let freshness = Freshness::with_window(t.store.clone(), Duration::from_secs(3600));
            let first = freshness.stamp().await.unwrap();
            t.exec(BUMP).await.unwrap();
            assert_eq!(freshness.stamp().await.unwrap(), first, "{backend}");
            freshness.invalidate();
            let after = freshness.stamp().await.unwrap();
            assert_eq!(after.data, first.data + 1, "{backend}");
            assert_eq!(after.audit, first.audit, "{backend}");
            t.drop_all().await;
        }
    }

    #[tokio::test]
    async fn a_write_by_another_process_is_seen_once_the_window_has_passed() {
        for backend in ["sqlite", "postgres"] {
            let t = TestStore::new(backend).await;
            let freshness = Freshness::new(t.store.clone());
            let first = freshness.stamp().await.unwrap();
            // Another writer: no invalidation reaches this process.
            t.exec(BUMP).await.unwrap();
            tokio::time::sleep(WINDOW * 2).await;
            assert_eq!(
                freshness.stamp().await.unwrap().data,
                first.data + 1,
                "{backend}"
            );
            t.drop_all().await;
        }
    }

    #[test]
    fn values_kept_by_audit_head_are_dropped_when_the_head_moves() {
        let at = |audit| Stamp { audit, data: 0 };
        let mut kept = ByAudit::default();
        kept.put(at(1), "ada", true);
        assert_eq!(kept.get(at(1), &"ada"), Some(true));
        assert_eq!(kept.get(at(2), &"ada"), None);
        kept.put(at(2), "bob", false);
        assert_eq!(kept.get(at(2), &"ada"), None, "a newer head empties it");
        kept.put(at(1), "ada", true);
        assert_eq!(
            kept.get(at(2), &"ada"),
            None,
            "a value read under an older head is not kept"
        );
    }
}
