//! The panel's own store: SQLite by default, PostgreSQL for several instances.
//!
//! The SQL is written once (in [`queries`]) and compiled for each backend;
//! both speak `$1` placeholders, `RETURNING` and `ON CONFLICT`. Only the
//! schema (triggers, serial types) differs, in `migrations/<backend>/`.

/// Calls the same-named function of the backend module that matches the
/// pool: in [`queries`], or in the named module's `sqlite` / `postgres`.
macro_rules! dispatch {
    ($self:expr, $f:ident ( $($arg:expr),* )) => {
        dispatch!($self, queries => $f($($arg),*))
    };
    ($self:expr, $module:ident => $f:ident ( $($arg:expr),* )) => {
        match &$self.pool {
            $crate::store::Pool::Sqlite(pool) => $crate::store::$module::sqlite::$f(pool $(, $arg)*).await,
            $crate::store::Pool::Postgres(pool) => $crate::store::$module::postgres::$f(pool $(, $arg)*).await,
        }
    };
}

pub mod audit_filter;
pub mod locks;
pub mod operations;
mod queries;
pub mod reviews;
mod sessions;
pub mod sync;
pub mod tokens;

pub use sessions::PanelSessionStore;

use crate::audit::{AuditEvent, ChainVerifier, NewEvent, Verdict};
use crate::identity::User;
use app::model::Role;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the name is already taken")]
    Duplicate,
    #[error("not found")]
    NotFound,
    #[error("the store holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An event given its own time (`NewEvent::at`) that would put the
    /// trail's times out of order.
    #[error("an audit event's time must lie between the previous event's and now: {0}")]
    AuditTimeOutOfOrder(String),
}

impl StoreError {
    fn from_write(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
            _ => StoreError::Database(e),
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`); a SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // The usual pairing with WAL: no corruption on a crash; a
                // power cut may lose the last commits, never half of one.
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                // Appends to the audit chain queue on the write lock; give them time.
                .busy_timeout(Duration::from_secs(30));
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?,
            )
        } else {
            let options = PgConnectOptions::from_str(url)?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?,
            )
        };
        Ok(Store { pool })
    }

    /// Which backend this is, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Applies the panel's schema migrations and the session table.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        self.session_store().migrate().await?;
        Ok(())
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, ping())
    }

    /// The session store on the same database.
    pub fn session_store(&self) -> PanelSessionStore {
        PanelSessionStore::new(&self.pool)
    }

    /// Appends one event to the audit trail.
    pub async fn append_audit(&self, event: &NewEvent) -> Result<AuditEvent, StoreError> {
        dispatch!(self, append_audit(event))
    }

    /// Appends many events in one transaction, in order, with the chain
    /// that as many [`Store::append_audit`] calls would make (same sealing,
    /// gapless `seq`, the head moved to the last); returns the last `seq`
    /// (the head's, for no events). It holds the chain's lock until it
    /// commits, so keep batches to thousands, not millions.
    pub async fn append_audit_batch(&self, events: &[NewEvent]) -> Result<i64, StoreError> {
        dispatch!(self, append_audit_batch(events))
    }

    /// Creates an account and its audit event in one transaction.
    pub async fn insert_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        event: &NewEvent,
    ) -> Result<User, StoreError> {
        let row = dispatch!(self, insert_user(name, role.as_str(), password_hash, event))?;
        row.try_into()
    }

    /// Disables an account and audits it in one transaction.
    pub async fn disable_user(&self, name: &str, event: &NewEvent) -> Result<(), StoreError> {
        dispatch!(self, disable_user(name, event))
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self, user_by_name(name))?
            .map(TryInto::try_into)
            .transpose()
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        dispatch!(self, user_by_id(id))?
            .map(TryInto::try_into)
            .transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        dispatch!(self, list_users())?
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    /// Up to `limit` events with `seq > after`, oldest first.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        dispatch!(self, audit_page(after, limit))
    }

    /// The events after `after` that match `filter`, in `seq` order.
    pub async fn audit_filtered(
        &self,
        filter: &audit_filter::Filter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        dispatch!(self, audit_keyset(filter, after, false, limit))
    }

    /// The events before `before` (None: the newest) that match `filter`,
    /// newest first: one page of the review screen.
    pub async fn audit_newest(
        &self,
        filter: &audit_filter::Filter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        dispatch!(
            self,
            audit_keyset(filter, before.unwrap_or(i64::MAX), true, limit)
        )
    }

    /// When `name`'s newest failed sign-ins since `since` happened (at most
    /// `limit`, newest first).
    pub async fn recent_failed_sign_ins(
        &self,
        name: &str,
        since: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, recent_failed_sign_ins(name, since, limit))
    }

    /// The last sequence number handed out.
    pub async fn audit_head_seq(&self) -> Result<i64, StoreError> {
        dispatch!(self, audit_head_seq())
    }

    /// Recomputes the whole chain, a slice at a time.
    pub async fn verify_audit(&self) -> Result<Verdict, StoreError> {
        use futures_util::StreamExt;
        // Read the head first: rows appended while we read are after it and
        // do not count against this run.
        let head = self.audit_head_seq().await?;
        let mut verifier = ChainVerifier::default();
        // Slices of the trail by `seq` range, read on several connections at
        // once and each hashed on a blocking thread; `buffered` hands them
        // over in order, so the chain is still walked one event after the
        // other, with only the comparisons left to do here. A missing row
        // is a gap in a slice's range, found as before.
        let slices = (0..head)
            .step_by(VERIFY_SLICE as usize)
            .map(|after| (after, (after + VERIFY_SLICE).min(head)));
        let mut sealed = futures_util::stream::iter(slices)
            .map(|(after, upto)| async move {
                let slice = self.audit_between(after, upto).await?;
                tokio::task::spawn_blocking(move || {
                    let seals: Vec<bool> = slice
                        .iter()
                        .map(|event| event.hash == event.computed_hash())
                        .collect();
                    (slice, seals)
                })
                .await
                .map_err(|e| StoreError::Corrupt(format!("verify: {e}")))
            })
            .buffered(VERIFY_READERS);
        while let Some(slice) = sealed.next().await {
            let (slice, seals) = slice?;
            let intact = slice
                .iter()
                .zip(seals)
                .all(|(event, sealed)| verifier.feed_sealed(event, sealed));
            if !intact {
                break;
            }
        }
        Ok(verifier.finish(head))
    }

    /// The events with `after < seq <= upto`, oldest first.
    pub async fn audit_between(
        &self,
        after: i64,
        upto: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlite_audit_between(pool, after, upto).await,
            Pool::Postgres(pool) => Ok(sqlx::query_as::<_, AuditEvent>(&format!(
                "SELECT {} FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq",
                queries::AUDIT_COLUMNS
            ))
            .bind(after)
            .bind(upto)
            .fetch_all(pool)
            .await?),
        }
    }
}

/// [`Store::audit_between`] on SQLite. sqlx hands SQLite's rows from the
/// connection's thread to the caller one at a time, a thread wake-up each,
/// which made reading the trail the slow part of verifying it; here SQLite
/// packs the slice into one JSON array (one row) instead, and each element
/// is read back as an [`AuditEvent`] (its fields in declaration order).
async fn sqlite_audit_between(
    pool: &sqlx::SqlitePool,
    after: i64,
    upto: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let packed: String = sqlx::query_scalar(&format!(
        "SELECT json_group_array(json_array({})) FROM \
         (SELECT * FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq)",
        queries::AUDIT_COLUMNS
    ))
    .bind(after)
    .bind(upto)
    .fetch_one(pool)
    .await?;
    let mut events: Vec<AuditEvent> = serde_json::from_str(&packed)
        .map_err(|e| StoreError::Corrupt(format!("audit events {after}..={upto}: {e}")))?;
    // SQL does not promise an aggregate's order; the chain check needs it.
    events.sort_by_key(|e| e.seq);
    Ok(events)
}

/// Sequence numbers per slice while verifying the chain.
const VERIFY_SLICE: i64 = 5_000;

/// Slices read at once while verifying: enough to keep both cores of a small
/// machine busy reading and hashing, few enough to leave the pool's other
/// connections to requests.
const VERIFY_READERS: usize = 3;

/// A `users` row before its role is checked.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    name: String,
    role: String,
    password_hash: String,
    disabled: bool,
    created_at: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: row.id,
            role: row
                .role
                .parse()
                .map_err(|e: app::model::UnknownRole| StoreError::Corrupt(e.to_string()))?,
            name: row.name,
            password_hash: row.password_hash,
            disabled: row.disabled,
            created_at: row.created_at,
        })
    }
}

/// Now, as the store writes times: RFC 3339 UTC with microseconds, so text
/// order is time order on both backends.
pub fn now_text() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("a UTC time always formats")
}

#[cfg(test)]
pub(crate) mod tests;
