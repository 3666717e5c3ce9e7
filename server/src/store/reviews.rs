//! The leads' review queue: what needs a second look, and the marks that
//! say a lead looked. A mark is an `audit.review` event plus a row here,
//! written in one transaction; the row's primary key makes a second mark of
//! the same item fail, on one panel or several sharing a PostgreSQL store.

use super::operations::{OPERATION_COLUMNS, OperationRow};
use super::queries::AUDIT_COLUMNS;
use super::{Store, StoreError};
use crate::audit::{AuditEvent, NewEvent};
use serde::Serialize;

/// A lead's mark on an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReviewRow {
    pub item: String,
    pub review_seq: i64,
    pub reviewed_by: String,
    pub reviewed_at: String,
    pub note: String,
}

/// The key of an operation in the queue.
pub fn operation_item(id: &str) -> String {
    format!("op:{id}")
}

/// The key of a refused attempt in the queue.
pub fn event_item(seq: i64) -> String {
    format!("event:{seq}")
}

/// What is waiting for review, newest first.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    /// Break-glass, failed and needs_attention operations.
    pub operations: Vec<OperationRow>,
    /// Refused attempts on the production environments.
    pub refusals: Vec<AuditEvent>,
}

macro_rules! review_queries {
    ($module:ident, $db:ty) => {
        pub(crate) mod $module {
            use super::*;
            use crate::store::now_text;
            use crate::store::queries::$module::append_in;

            type P = sqlx::Pool<$db>;

            pub async fn mark(
                pool: &P,
                item: &str,
                by: &str,
                note: &str,
                event: &NewEvent,
            ) -> Result<ReviewRow, StoreError> {
                let mut tx = pool.begin().await?;
                let sealed = append_in(&mut tx, event).await?;
                let row = sqlx::query_as::<_, ReviewRow>(
                    "INSERT INTO audit_reviews (item, review_seq, reviewed_by, reviewed_at, note) \
                     VALUES ($1, $2, $3, $4, $5) \
                     RETURNING item, review_seq, reviewed_by, reviewed_at, note",
                )
                .bind(item)
                .bind(sealed.seq)
                .bind(by)
                .bind(now_text())
                .bind(note)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                tx.commit().await?;
                Ok(row)
            }

            pub async fn review_of(pool: &P, item: &str) -> Result<Option<ReviewRow>, StoreError> {
                Ok(sqlx::query_as::<_, ReviewRow>(
                    "SELECT item, review_seq, reviewed_by, reviewed_at, note FROM audit_reviews WHERE item = $1",
                )
                .bind(item)
                .fetch_optional(pool)
                .await?)
            }

            pub async fn queue(
                pool: &P,
                production: &[String],
                limit: i64,
            ) -> Result<Queue, StoreError> {
                let operations = sqlx::query_as::<_, OperationRow>(&format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations o \
                     WHERE (o.break_glass = 1 OR o.state IN ('failed', 'needs_attention')) \
                     AND NOT EXISTS (SELECT 1 FROM audit_reviews r WHERE r.item = 'op:' || o.id) \
                     ORDER BY o.created_at DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(pool)
                .await?;
                if production.is_empty() {
                    return Ok(Queue { operations, refusals: Vec::new() });
                }
                // One placeholder per environment; the values are bound.
                let places: Vec<String> = (0..production.len()).map(|i| format!("${}", i + 2)).collect();
                let sql = format!(
                    "SELECT {AUDIT_COLUMNS} \
                     FROM audit_events e WHERE e.outcome = 'denied' AND e.environment IN ({}) \
                     AND NOT EXISTS (SELECT 1 FROM audit_reviews r WHERE r.item = 'event:' || CAST(e.seq AS TEXT)) \
                     ORDER BY e.seq DESC LIMIT $1",
                    places.join(", ")
                );
                let mut query = sqlx::query_as::<_, AuditEvent>(&sql).bind(limit);
                for env in production {
                    query = query.bind(env);
                }
                let refusals = query.fetch_all(pool).await?;
                Ok(Queue { operations, refusals })
            }

            pub async fn first_event_of(pool: &P, target: &str) -> Result<Option<i64>, StoreError> {
                use sqlx::Row;
                let row = sqlx::query("SELECT MIN(seq) AS seq FROM audit_events WHERE target = $1")
                    .bind(target)
                    .fetch_one(pool)
                    .await?;
                Ok(row.try_get::<Option<i64>, _>("seq")?)
            }

            pub async fn event(pool: &P, seq: i64) -> Result<Option<AuditEvent>, StoreError> {
                Ok(sqlx::query_as::<_, AuditEvent>(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq = $1"
                ))
                .bind(seq)
                .fetch_optional(pool)
                .await?)
            }
        }
    };
}

review_queries!(sqlite, sqlx::Sqlite);
review_queries!(postgres, sqlx::Postgres);

impl Store {
    /// Marks `item` reviewed with the lead's note, writing `event` in the
    /// same transaction; [`StoreError::Duplicate`] when it already is.
    pub async fn mark_reviewed(
        &self,
        item: &str,
        by: &str,
        note: &str,
        event: &NewEvent,
    ) -> Result<ReviewRow, StoreError> {
        dispatch!(self, reviews => mark(item, by, note, event))
    }

    /// The mark on `item`, if a lead reviewed it.
    pub async fn review_of(&self, item: &str) -> Result<Option<ReviewRow>, StoreError> {
        dispatch!(self, reviews => review_of(item))
    }

    /// Up to `limit` operations and `limit` refusals on the `production`
    /// environments that no lead has marked reviewed, newest first.
    pub async fn review_queue(
        &self,
        production: &[String],
        limit: i64,
    ) -> Result<Queue, StoreError> {
        dispatch!(self, reviews => queue(production, limit))
    }

    /// The first audit event about `target` (an operation's start).
    pub async fn first_event_of(&self, target: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, reviews => first_event_of(target))
    }

    /// One audit event by its sequence number.
    pub async fn audit_event(&self, seq: i64) -> Result<Option<AuditEvent>, StoreError> {
        dispatch!(self, reviews => event(seq))
    }
}
