//! Environment locks. Taking and releasing one writes its audit event in
//! the same transaction, and the primary key makes a second lock fail, on
//! one panel or several sharing a PostgreSQL store.

use super::{Store, StoreError};
use crate::audit::NewEvent;
use serde::Serialize;

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LockRow {
    pub environment: String,
    pub reason: String,
    pub locked_by: String,
    pub locked_at: String,
}

macro_rules! lock_queries {
    ($module:ident, $db:ty) => {
        mod $module {
            use super::*;
            use crate::store::queries::$module::{append_in, bump_data_version};

            type P = sqlx::Pool<$db>;

            pub async fn lock(
                pool: &P,
                environment: &str,
                reason: &str,
                by: &str,
                event: &NewEvent,
            ) -> Result<LockRow, StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let row = sqlx::query_as::<_, LockRow>(
                    "INSERT INTO environment_locks (environment, reason, locked_by, locked_at) \
                     VALUES ($1, $2, $3, $4) RETURNING environment, reason, locked_by, locked_at",
                )
                .bind(environment)
                .bind(reason)
                .bind(by)
                .bind(crate::store::now_text())
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                bump_data_version(&mut *tx).await?;
                tx.commit().await?;
                Ok(row)
            }

            pub async fn unlock(pool: &P, environment: &str, event: &NewEvent) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let done = sqlx::query("DELETE FROM environment_locks WHERE environment = $1")
                    .bind(environment)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                bump_data_version(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn lock_of(pool: &P, environment: &str) -> Result<Option<LockRow>, StoreError> {
                Ok(sqlx::query_as::<_, LockRow>(
                    "SELECT environment, reason, locked_by, locked_at FROM environment_locks WHERE environment = $1",
                )
                .bind(environment)
                .fetch_optional(pool)
                .await?)
            }
        }
    };
}

lock_queries!(sqlite, sqlx::Sqlite);
lock_queries!(postgres, sqlx::Postgres);

impl Store {
    /// Locks `environment`; [`StoreError::Duplicate`] when it already is.
    /// The audit event is written in the same transaction.
    pub async fn lock_environment(
        &self,
        environment: &str,
        reason: &str,
        by: &str,
        event: &NewEvent,
    ) -> Result<LockRow, StoreError> {
        dispatch!(self, locks => lock(environment, reason, by, event))
    }

    /// Unlocks `environment`; [`StoreError::NotFound`] when it is not locked.
    pub async fn unlock_environment(
        &self,
        environment: &str,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        dispatch!(self, locks => unlock(environment, event))
    }

    pub async fn environment_lock(&self, environment: &str) -> Result<Option<LockRow>, StoreError> {
        dispatch!(self, locks => lock_of(environment))
    }
}
