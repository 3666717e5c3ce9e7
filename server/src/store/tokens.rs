//! API tokens: only their hash is stored. Creating and revoking one writes
//! its audit event in the same transaction.

use super::{Store, StoreError};
use crate::audit::NewEvent;
use serde::Serialize;

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub user_id: i64,
    pub label: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

macro_rules! token_queries {
    ($module:ident, $db:ty) => {
        pub(crate) mod $module {
            use super::*;
            use crate::store::now_text;
            use crate::store::queries::$module::append_in;

            type P = sqlx::Pool<$db>;

            pub async fn create(
                pool: &P,
                id: &str,
                user_id: i64,
                label: &str,
                hash: &str,
                by: &str,
                event: &NewEvent,
            ) -> Result<TokenRow, StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let row = sqlx::query_as::<_, TokenRow>(
                    "INSERT INTO api_tokens (id, user_id, label, hash, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     RETURNING id, user_id, label, created_at, created_by, revoked_at",
                )
                .bind(id)
                .bind(user_id)
                .bind(label)
                .bind(hash)
                .bind(now_text())
                .bind(by)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                tx.commit().await?;
                Ok(row)
            }

            pub async fn by_hash(pool: &P, hash: &str) -> Result<Option<TokenRow>, StoreError> {
                Ok(sqlx::query_as::<_, TokenRow>(
                    "SELECT id, user_id, label, created_at, created_by, revoked_at \
                     FROM api_tokens WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(pool)
                .await?)
            }

            pub async fn list(pool: &P) -> Result<Vec<(TokenRow, String)>, StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT t.id, t.user_id, t.label, t.created_at, t.created_by, t.revoked_at, u.name \
                     FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.created_at DESC, t.id",
                )
                .fetch_all(pool)
                .await?;
                let mut tokens = Vec::with_capacity(rows.len());
                for row in rows {
                    let token = TokenRow {
                        id: row.try_get("id")?,
                        user_id: row.try_get("user_id")?,
                        label: row.try_get("label")?,
                        created_at: row.try_get("created_at")?,
                        created_by: row.try_get("created_by")?,
                        revoked_at: row.try_get("revoked_at")?,
                    };
                    tokens.push((token, row.try_get("name")?));
                }
                Ok(tokens)
            }

            pub async fn revoke(pool: &P, id: &str, event: &NewEvent) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

token_queries!(sqlite, sqlx::Sqlite);
token_queries!(postgres, sqlx::Postgres);

impl Store {
    /// Stores a token's hash for `user_id`, with its event.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_token(
        &self,
        id: &str,
        user_id: i64,
        label: &str,
        hash: &str,
        by: &str,
        event: &NewEvent,
    ) -> Result<TokenRow, StoreError> {
        dispatch!(self, tokens => create(id, user_id, label, hash, by, event))
    }

    /// The token whose SHA-256 is `hash`, revoked or not.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        dispatch!(self, tokens => by_hash(hash))
    }

    /// Every token, newest first, with its user's name.
    pub async fn list_tokens(&self) -> Result<Vec<(TokenRow, String)>, StoreError> {
        dispatch!(self, tokens => list())
    }

    /// Revokes a live token; [`StoreError::NotFound`] when there is none.
    pub async fn revoke_token(&self, id: &str, event: &NewEvent) -> Result<(), StoreError> {
        dispatch!(self, tokens => revoke(id, event))
    }
}
