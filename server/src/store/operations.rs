//! Operations and their steps. Every change writes its audit event in the
//! same transaction ("no audit row, no action"). One active operation per
//! environment holds through a partial unique index, so it also holds for
//! several panels sharing one PostgreSQL store; creating one is serialised
//! by the audit head's lock, taken by the transaction's first statement.

use super::locks::LockRow;
use super::{Store, StoreError};
use crate::audit::NewEvent;
use domain::{OperationState, StepState};
use serde::Serialize;

/// One operation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OperationRow {
    pub id: String,
    pub environment: String,
    pub kind: String,
    pub state: OperationState,
    pub active: i32,
    pub request: String,
    pub plan: String,
    pub requested_by: String,
    pub requested_role: String,
    pub break_glass: i32,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub approved_by: Option<String>,
    pub runner: Option<String>,
    pub lease_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// One step of an operation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StepRow {
    pub operation_id: String,
    pub position: i32,
    pub name: String,
    pub title: String,
    pub state: StepState,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub upstream_id: Option<String>,
    pub upstream_url: Option<String>,
    pub detail: Option<String>,
    pub log: String,
}

/// A new operation; its steps start `pending`.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub id: String,
    pub environment: String,
    pub kind: String,
    /// `awaiting_approval` or `running`.
    pub state: OperationState,
    pub request: String,
    pub plan: String,
    pub requested_by: String,
    pub requested_role: String,
    pub break_glass: bool,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    /// (name, title) per step, in order.
    pub steps: Vec<(String, String)>,
}

/// What creating an operation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Created, and its event written.
    New(OperationRow),
    /// The same person sent the same Idempotency-Key before: that operation.
    Existing(OperationRow),
    /// Another operation is active on the environment.
    Busy(OperationRow),
    /// The environment is locked.
    Locked(LockRow),
}

/// How a step ended.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// `done`, `failed` or `skipped`.
    pub state: StepState,
    pub upstream_id: Option<String>,
    pub upstream_url: Option<String>,
    pub detail: Option<String>,
}

pub(crate) const OPERATION_COLUMNS: &str = "id, environment, kind, state, active, request, plan, requested_by, \
     requested_role, break_glass, idempotency_key, request_hash, approved_by, runner, lease_until, \
     created_at, updated_at, finished_at, error";
const STEP_COLUMNS: &str = "operation_id, position, name, title, state, started_at, finished_at, \
     upstream_id, upstream_url, detail, log";

macro_rules! operation_queries {
    ($module:ident, $db:ty) => {
        pub(crate) mod $module {
            use super::*;
            use crate::store::now_text;
            use crate::store::queries::$module::{append_in, bump_data_version};

            type P = sqlx::Pool<$db>;
            type Conn = <$db as sqlx::Database>::Connection;

            /// Marks the operation changed now, and the pages' data with it.
            async fn touch(conn: &mut Conn, id: &str, now: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE operations SET updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                bump_data_version(&mut *conn).await
            }

            async fn by_key(conn: &mut Conn, by: &str, key: &str) -> Result<Option<OperationRow>, StoreError> {
                Ok(sqlx::query_as::<_, OperationRow>(&format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE requested_by = $1 AND idempotency_key = $2"
                ))
                .bind(by)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?)
            }

            async fn active_in(conn: &mut Conn, environment: &str) -> Result<Option<OperationRow>, StoreError> {
                Ok(sqlx::query_as::<_, OperationRow>(&format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE environment = $1 AND active = 1"
                ))
                .bind(environment)
                .fetch_optional(&mut *conn)
                .await?)
            }

            pub async fn create(pool: &P, new: &NewOperation, event: &NewEvent) -> Result<Created, StoreError> {
                let mut tx = pool.begin().await?;
                // First statement: takes the lock that serialises creators.
                append_in(&mut tx, event).await?;
                if let Some(key) = &new.idempotency_key
                    && let Some(existing) = by_key(&mut tx, &new.requested_by, key).await?
                {
                    return Ok(Created::Existing(existing));
                }
                if let Some(active) = active_in(&mut tx, &new.environment).await? {
                    return Ok(Created::Busy(active));
                }
                if let Some(lock) = sqlx::query_as::<_, LockRow>(
                    "SELECT environment, reason, locked_by, locked_at FROM environment_locks WHERE environment = $1",
                )
                .bind(&new.environment)
                .fetch_optional(&mut *tx)
                .await?
                {
                    return Ok(Created::Locked(lock));
                }
                let now = now_text();
                let row = sqlx::query_as::<_, OperationRow>(&format!(
                    "INSERT INTO operations (id, environment, kind, state, active, request, plan, requested_by, \
                     requested_role, break_glass, idempotency_key, request_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING {OPERATION_COLUMNS}"
                ))
                .bind(&new.id)
                .bind(&new.environment)
                .bind(&new.kind)
                .bind(&new.state)
                .bind(&new.request)
                .bind(&new.plan)
                .bind(&new.requested_by)
                .bind(&new.requested_role)
                .bind(i32::from(new.break_glass))
                .bind(&new.idempotency_key)
                .bind(&new.request_hash)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                for (position, (name, title)) in new.steps.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO operation_steps (operation_id, position, name, title, state) \
                         VALUES ($1, $2, $3, $4, 'pending')",
                    )
                    .bind(&new.id)
                    .bind(position as i32)
                    .bind(name)
                    .bind(title)
                    .execute(&mut *tx)
                    .await?;
                }
                bump_data_version(&mut *tx).await?;
                tx.commit().await?;
                Ok(Created::New(row))
            }

            pub async fn get(pool: &P, id: &str) -> Result<Option<(OperationRow, Vec<StepRow>)>, StoreError> {
                let Some(op) = sqlx::query_as::<_, OperationRow>(&format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(pool)
                .await?
                else {
                    return Ok(None);
                };
                let steps = sqlx::query_as::<_, StepRow>(&format!(
                    "SELECT {STEP_COLUMNS} FROM operation_steps WHERE operation_id = $1 ORDER BY position"
                ))
                .bind(id)
                .fetch_all(pool)
                .await?;
                Ok(Some((op, steps)))
            }

            pub async fn with_key(pool: &P, by: &str, key: &str) -> Result<Option<OperationRow>, StoreError> {
                let mut conn = pool.acquire().await?;
                by_key(&mut conn, by, key).await
            }

            pub async fn active(pool: &P) -> Result<Vec<OperationRow>, StoreError> {
                Ok(sqlx::query_as::<_, OperationRow>(&format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE active = 1 ORDER BY created_at"
                ))
                .fetch_all(pool)
                .await?)
            }

            pub async fn counts(pool: &P) -> Result<Vec<(String, String, i64)>, StoreError> {
                Ok(sqlx::query_as::<_, (String, String, i64)>(
                    "SELECT kind, state, COUNT(*) FROM operations GROUP BY kind, state ORDER BY kind, state",
                )
                .fetch_all(pool)
                .await?)
            }

            pub async fn recent(pool: &P, environment: &str, limit: i64) -> Result<Vec<OperationRow>, StoreError> {
                Ok(sqlx::query_as::<_, OperationRow>(&format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE environment = $1 \
                     ORDER BY created_at DESC LIMIT $2"
                ))
                .bind(environment)
                .bind(limit)
                .fetch_all(pool)
                .await?)
            }

            pub async fn claim(pool: &P, id: &str, runner: &str, lease_until: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE operations SET runner = $2, lease_until = $3 \
                     WHERE id = $1 AND active = 1 \
                     AND (runner = $2 OR runner IS NULL OR lease_until IS NULL OR lease_until < $4)",
                )
                .bind(id)
                .bind(runner)
                .bind(lease_until)
                .bind(now_text())
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            pub async fn step_started(
                pool: &P,
                id: &str,
                position: i32,
                event: &NewEvent,
            ) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let now = now_text();
                sqlx::query(
                    "UPDATE operation_steps SET state = 'running', started_at = $3, finished_at = NULL \
                     WHERE operation_id = $1 AND position = $2",
                )
                .bind(id)
                .bind(position)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                touch(&mut tx, id, &now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn step_finished(
                pool: &P,
                id: &str,
                position: i32,
                outcome: &StepOutcome,
                event: &NewEvent,
            ) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let now = now_text();
                sqlx::query(
                    "UPDATE operation_steps SET state = $3, finished_at = $4, \
                     upstream_id = COALESCE($5, upstream_id), upstream_url = COALESCE($6, upstream_url), \
                     detail = $7 WHERE operation_id = $1 AND position = $2",
                )
                .bind(id)
                .bind(position)
                .bind(&outcome.state)
                .bind(&now)
                .bind(&outcome.upstream_id)
                .bind(&outcome.upstream_url)
                .bind(&outcome.detail)
                .execute(&mut *tx)
                .await?;
                touch(&mut tx, id, &now).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn step_note(
                pool: &P,
                id: &str,
                position: i32,
                upstream_id: Option<&str>,
                upstream_url: Option<&str>,
                log: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE operation_steps SET upstream_id = COALESCE($3, upstream_id), \
                     upstream_url = COALESCE($4, upstream_url), log = log || $5 \
                     WHERE operation_id = $1 AND position = $2",
                )
                .bind(id)
                .bind(position)
                .bind(upstream_id)
                .bind(upstream_url)
                .bind(log)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn set_state(
                pool: &P,
                id: &str,
                from: &[OperationState],
                state: OperationState,
                error: Option<&str>,
                approved_by: Option<&str>,
                event: &NewEvent,
            ) -> Result<bool, StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let now = now_text();
                let active = state.is_active();
                let finished = (!active).then(|| now.clone());
                let list = crate::store::sync::placeholders(8, from.len());
                // The states in `from` are bound below; only placeholders are formatted in.
                let sql = format!(
                    "UPDATE operations SET state = $2, active = $3, error = COALESCE($4, error), \
                     approved_by = COALESCE($5, approved_by), updated_at = $6, \
                     finished_at = COALESCE($7, finished_at) WHERE id = $1 AND state IN ({list})"
                );
                let mut query = sqlx::query(&sql)
                .bind(id)
                .bind(state)
                .bind(i32::from(active))
                .bind(error)
                .bind(approved_by)
                .bind(&now)
                .bind(finished);
                for f in from {
                    query = query.bind(*f);
                }
                let done = query.execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                bump_data_version(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }

            pub async fn lock_for(
                pool: &P,
                environment: &str,
                reason: &str,
                by: &str,
                operation_id: &str,
                event: &NewEvent,
            ) -> Result<Result<LockRow, LockRow>, StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let held: Option<(String, String, String, String, Option<String>)> = sqlx::query_as(
                    "SELECT environment, reason, locked_by, locked_at, operation_id FROM environment_locks \
                     WHERE environment = $1",
                )
                .bind(environment)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((environment, reason, locked_by, locked_at, op)) = held {
                    let lock = LockRow { environment, reason, locked_by, locked_at };
                    if op.as_deref() == Some(operation_id) {
                        tx.commit().await?;
                        return Ok(Ok(lock));
                    }
                    return Ok(Err(lock));
                }
                let row = sqlx::query_as::<_, LockRow>(
                    "INSERT INTO environment_locks (environment, reason, locked_by, locked_at, operation_id) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING environment, reason, locked_by, locked_at",
                )
                .bind(environment)
                .bind(reason)
                .bind(by)
                .bind(now_text())
                .bind(operation_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                bump_data_version(&mut *tx).await?;
                tx.commit().await?;
                Ok(Ok(row))
            }
        }
    };
}

operation_queries!(sqlite, sqlx::Sqlite);
operation_queries!(postgres, sqlx::Postgres);

impl Store {
    /// Creates an operation unless the same key was used before, another
    /// operation is active on the environment, or it is locked; the event
    /// is written only when it is created.
    pub async fn create_operation(
        &self,
        new: &NewOperation,
        event: &NewEvent,
    ) -> Result<Created, StoreError> {
        dispatch!(self, operations => create(new, event))
    }

    /// The operation and its steps, in order.
    pub async fn operation(
        &self,
        id: &str,
    ) -> Result<Option<(OperationRow, Vec<StepRow>)>, StoreError> {
        dispatch!(self, operations => get(id))
    }

    /// The operation `by` started with Idempotency-Key `key`.
    pub async fn operation_by_key(
        &self,
        by: &str,
        key: &str,
    ) -> Result<Option<OperationRow>, StoreError> {
        dispatch!(self, operations => with_key(by, key))
    }

    /// Every active operation, oldest first.
    pub async fn active_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        dispatch!(self, operations => active())
    }

    /// How many operations there are of each kind in each state.
    pub async fn operation_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        dispatch!(self, operations => counts())
    }

    /// The environment's newest operations.
    pub async fn recent_operations(
        &self,
        environment: &str,
        limit: i64,
    ) -> Result<Vec<OperationRow>, StoreError> {
        dispatch!(self, operations => recent(environment, limit))
    }

    /// Takes (or renews) the right to carry the operation out until
    /// `lease_until`: granted when this runner holds it, nobody does, or
    /// the holder's lease ran out (its process died).
    pub async fn claim_operation(
        &self,
        id: &str,
        runner: &str,
        lease_until: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, operations => claim(id, runner, lease_until))
    }

    /// Writes a step's intent (with its event) before the step calls out.
    pub async fn step_started(
        &self,
        id: &str,
        position: i32,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        dispatch!(self, operations => step_started(id, position, event))
    }

    /// Writes a step's outcome (with its event) after it called out.
    pub async fn step_finished(
        &self,
        id: &str,
        position: i32,
        outcome: &StepOutcome,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        dispatch!(self, operations => step_finished(id, position, outcome, event))
    }

    /// Records what a running step learnt (an upstream id, log lines).
    pub async fn step_note(
        &self,
        id: &str,
        position: i32,
        upstream_id: Option<&str>,
        upstream_url: Option<&str>,
        log: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, operations => step_note(id, position, upstream_id, upstream_url, log))
    }

    /// Moves the operation from one of `from` to `state` (with its event);
    /// false when it was in none of them. It stays active (blocking its
    /// environment) unless `state` is an end.
    pub async fn set_operation_state(
        &self,
        id: &str,
        from: &[OperationState],
        state: OperationState,
        error: Option<&str>,
        approved_by: Option<&str>,
        event: &NewEvent,
    ) -> Result<bool, StoreError> {
        dispatch!(self, operations => set_state(id, from, state, error, approved_by, event))
    }

    /// Locks the environment for an operation: `Ok` with the lock when it
    /// took it or already held it, `Err` with someone else's lock.
    pub async fn lock_for_operation(
        &self,
        environment: &str,
        reason: &str,
        by: &str,
        operation_id: &str,
        event: &NewEvent,
    ) -> Result<Result<LockRow, LockRow>, StoreError> {
        dispatch!(self, operations => lock_for(environment, reason, by, operation_id, event))
    }
}
