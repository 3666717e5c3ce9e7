//! Sessions in the panel's own database, whichever backend it is.

use super::{Pool, StoreError};
use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// tower-sessions' SQL stores, one per backend, behind one type.
#[derive(Debug, Clone)]
pub enum PanelSessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl PanelSessionStore {
    pub(crate) fn new(pool: &Pool) -> Self {
        match pool {
            Pool::Sqlite(p) => PanelSessionStore::Sqlite(SqliteStore::new(p.clone())),
            Pool::Postgres(p) => PanelSessionStore::Postgres(PostgresStore::new(p.clone())),
        }
    }

    /// Creates the session table.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            PanelSessionStore::Sqlite(s) => s.migrate().await?,
            PanelSessionStore::Postgres(s) => s.migrate().await?,
        }
        Ok(())
    }

    /// Removes expired sessions every `period`, for as long as the process runs.
    pub async fn delete_expired_every(self, period: std::time::Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if let Err(error) = self.delete_expired().await {
                tracing::warn!(%error, "could not delete expired sessions");
            }
        }
    }
}

#[async_trait]
impl SessionStore for PanelSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            PanelSessionStore::Sqlite(s) => s.create(record).await,
            PanelSessionStore::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            PanelSessionStore::Sqlite(s) => s.save(record).await,
            PanelSessionStore::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            PanelSessionStore::Sqlite(s) => s.load(id).await,
            PanelSessionStore::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            PanelSessionStore::Sqlite(s) => s.delete(id).await,
            PanelSessionStore::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for PanelSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            PanelSessionStore::Sqlite(s) => s.delete_expired().await,
            PanelSessionStore::Postgres(s) => s.delete_expired().await,
        }
    }
}
