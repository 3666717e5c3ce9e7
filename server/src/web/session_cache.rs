//! Sessions kept in memory in front of the store's session table.
//!
//! Every page view loads its session; from the table that is a round trip
//! to a database worker per request. Here a loaded session is kept and
//! reused while all of these hold:
//!
//! - this process has not saved or deleted it since (sign-in cycles the id
//!   and signs the old one out; sign-out deletes it; both go through
//!   [`CachedSessions`], which drops the entry at once);
//! - the audit trail's head has not moved ([`Freshness`]): sign-in and
//!   sign-out on *another* instance are audited before they touch the
//!   session table, so they drop the whole cache here within
//!   [`crate::control::freshness::WINDOW`];
//! - it is younger than [`TTL`]: the audit event of a sign-out on another
//!   instance is written just before its session row is deleted, and a load
//!   here between the two would keep the old row; the TTL bounds that
//!   window instead of trusting it never happens;
//! - it has not expired.
//!
//! A disabled account is refused by the account check (see
//! `ControlPlane::session_actor`), not here: its session may stay cached,
//! but it no longer resolves to anyone.

use crate::control::freshness::Freshness;
use crate::store::PanelSessionStore;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

/// The longest a session read from the store is reused.
pub const TTL: Duration = Duration::from_secs(1);

/// Past this many cached sessions the cache starts over (a flood of
/// sign-ins must not grow memory without bound).
const CAPACITY: usize = 10_000;

/// The session store the session layer uses: [`PanelSessionStore`] with a
/// cache in front.
#[derive(Clone)]
pub struct CachedSessions {
    inner: PanelSessionStore,
    freshness: Freshness,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for CachedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSessions").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    /// The audit head the entries were loaded under.
    audit: i64,
    /// Bumped by every save and delete, so a load that raced one does not
    /// put back what it read before.
    writes: u64,
    entries: HashMap<Id, (Record, Instant)>,
}

impl CachedSessions {
    pub fn new(inner: PanelSessionStore, freshness: Freshness) -> Self {
        Self {
            inner,
            freshness,
            cache: Arc::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, id: &Id) {
        let mut cache = self.cache();
        cache.writes += 1;
        cache.entries.remove(id);
    }
}

#[async_trait]
impl SessionStore for CachedSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await?;
        self.forget(&record.id);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.forget(&record.id);
        let saved = self.inner.save(record).await;
        self.forget(&record.id);
        saved
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Ok(stamp) = self.freshness.stamp().await else {
            // Without a stamp nothing cached can be trusted; the store may
            // still answer (and says why if not).
            return self.inner.load(id).await;
        };
        let writes = {
            let mut cache = self.cache();
            if cache.audit == stamp.audit
                && let Some((record, loaded)) = cache.entries.get(id)
                && loaded.elapsed() < TTL
                && record.expiry_date > time::OffsetDateTime::now_utc()
            {
                return Ok(Some(record.clone()));
            }
            cache.entries.remove(id);
            cache.writes
        };
        let asked = Instant::now();
        let loaded = self.inner.load(id).await?;
        let mut cache = self.cache();
        if stamp.audit > cache.audit {
            cache.audit = stamp.audit;
            cache.entries.clear();
        }
        if let Some(record) = &loaded
            && cache.writes == writes
            && cache.audit == stamp.audit
        {
            if cache.entries.len() >= CAPACITY {
                cache.entries.clear();
            }
            cache.entries.insert(*id, (record.clone(), asked));
        }
        Ok(loaded)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.forget(id);
        let deleted = self.inner.delete(id).await;
        self.forget(id);
        deleted
    }
}

#[async_trait]
impl ExpiredDeletion for CachedSessions {
    async fn delete_expired(&self) -> session_store::Result<()> {
        // Cached entries check their own expiry date.
        self.inner.delete_expired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{NewEvent, Outcome, RequestMeta};
    use crate::identity::anonymous;
    use crate::store::tests::TestStore;

    fn sessions(t: &TestStore) -> CachedSessions {
        CachedSessions::new(t.store.session_store(), Freshness::new(t.store.clone()))
    }

    async fn new_session(store: &CachedSessions) -> Id {
        let mut record = Record {
            id: Id::default(),
            data: [("uid".to_owned(), serde_json::json!(1))].into(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
        record.id
    }

    #[tokio::test]
    async fn a_deleted_session_is_not_served_from_the_cache() {
        let t = TestStore::new("sqlite").await;
        let store = sessions(&t);
        let id = new_session(&store).await;
        assert!(store.load(&id).await.unwrap().is_some());
        assert!(store.load(&id).await.unwrap().is_some());
        store.delete(&id).await.unwrap();
        assert!(store.load(&id).await.unwrap().is_none());
        t.drop_all().await;
    }

    #[tokio::test]
    async fn a_session_another_instance_signs_out_is_refused_after_the_window_or_the_ttl() {
        for backend in ["sqlite", "postgres"] {
            let t = TestStore::new(backend).await;
            let (here, elsewhere) = (sessions(&t), sessions(&t));
            let audited = new_session(&elsewhere).await;
            let silent = new_session(&elsewhere).await;
            assert!(here.load(&audited).await.unwrap().is_some());
            assert!(here.load(&silent).await.unwrap().is_some());

            // A sign-out elsewhere is audited before its row is deleted.
            let event = NewEvent::new(
                anonymous(None),
                "auth.logout",
                Outcome::Succeeded,
                &RequestMeta::default(),
            );
            elsewhere.delete(&silent).await.unwrap();
            assert!(
                here.load(&silent).await.unwrap().is_some(),
                "{backend}: kept while nothing was audited"
            );
            t.store.append_audit(&event).await.unwrap();
            elsewhere.delete(&audited).await.unwrap();
            tokio::time::sleep(crate::control::freshness::WINDOW * 2).await;
            assert!(here.load(&audited).await.unwrap().is_none(), "{backend}");

            // Without an audit event in between, the TTL still bounds it.
            let unaudited = new_session(&elsewhere).await;
            assert!(here.load(&unaudited).await.unwrap().is_some());
            elsewhere.delete(&unaudited).await.unwrap();
            tokio::time::sleep(TTL).await;
            assert!(here.load(&unaudited).await.unwrap().is_none(), "{backend}");
            t.drop_all().await;
        }
    }
}
