//! The store's SQL, written once and compiled for each backend.

/// Expands the query functions for one sqlx database type.
macro_rules! backend_queries {
    ($module:ident, $db:ty) => {
        pub(crate) mod $module {
            use crate::audit::{AuditEvent, NewEvent};
            use crate::identity::random_id;
            use crate::store::{StoreError, UserRow, now_text};
            use sqlx::Row;

            type Db = $db;
            type Pool = sqlx::Pool<Db>;
            type Conn = <Db as sqlx::Database>::Connection;

            /// Bumps `data_version`, which the pages' caches are keyed on:
            /// every write of something a page shows calls it.
            pub async fn bump_data_version<'e, E>(executor: E) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = Db>,
            {
                sqlx::query("UPDATE data_version SET version = version + 1 WHERE id = 1")
                    .execute(executor)
                    .await?;
                Ok(())
            }

            pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(pool).await?;
                Ok(())
            }

            /// Appends inside the caller's transaction. The first statement
            /// writes the head row, which takes the lock that serialises
            /// appenders (a row lock on PostgreSQL, the write lock on SQLite).
            pub async fn append_in(conn: &mut Conn, event: &NewEvent) -> Result<AuditEvent, StoreError> {
                let head = sqlx::query(
                    "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
                )
                .fetch_one(&mut *conn)
                .await?;
                let seq: i64 = head.try_get("seq")?;
                let prev_hash: String = head.try_get("hash")?;
                let sealed = AuditEvent::seal(event, seq, random_id(), now_text(), prev_hash);
                sqlx::query(
                    "INSERT INTO audit_events (seq, id, at, actor_kind, actor_id, actor_name, actor_role, \
                     action, environment, target, params, outcome, error, request_id, ip, user_agent, \
                     prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                )
                .bind(sealed.seq)
                .bind(&sealed.id)
                .bind(&sealed.at)
                .bind(&sealed.actor_kind)
                .bind(&sealed.actor_id)
                .bind(&sealed.actor_name)
                .bind(&sealed.actor_role)
                .bind(&sealed.action)
                .bind(&sealed.environment)
                .bind(&sealed.target)
                .bind(&sealed.params)
                .bind(&sealed.outcome)
                .bind(&sealed.error)
                .bind(&sealed.request_id)
                .bind(&sealed.ip)
                .bind(&sealed.user_agent)
                .bind(&sealed.prev_hash)
                .bind(&sealed.hash)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                    .bind(&sealed.hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(sealed)
            }

            pub async fn append_audit(pool: &Pool, event: &NewEvent) -> Result<AuditEvent, StoreError> {
                let mut tx = pool.begin().await?;
                let sealed = append_in(&mut tx, event).await?;
                tx.commit().await?;
                Ok(sealed)
            }

            pub async fn insert_user(
                pool: &Pool,
                name: &str,
                role: &str,
                password_hash: &str,
                event: &NewEvent,
            ) -> Result<UserRow, StoreError> {
                let mut tx = pool.begin().await?;
                // Audit first: no audit row, no action.
                append_in(&mut tx, event).await?;
                let row = sqlx::query_as::<_, UserRow>(
                    "INSERT INTO users (name, role, password_hash, disabled, created_at) \
                     VALUES ($1, $2, $3, FALSE, $4) \
                     RETURNING id, name, role, password_hash, disabled, created_at",
                )
                .bind(name)
                .bind(role)
                .bind(password_hash)
                .bind(now_text())
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                tx.commit().await?;
                Ok(row)
            }

            pub async fn disable_user(pool: &Pool, name: &str, event: &NewEvent) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                append_in(&mut tx, event).await?;
                let done = sqlx::query("UPDATE users SET disabled = TRUE WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn user_by_name(pool: &Pool, name: &str) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(
                    "SELECT id, name, role, password_hash, disabled, created_at FROM users WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(pool)
                .await?)
            }

            pub async fn user_by_id(pool: &Pool, id: i64) -> Result<Option<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(
                    "SELECT id, name, role, password_hash, disabled, created_at FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?)
            }

            pub async fn list_users(pool: &Pool) -> Result<Vec<UserRow>, StoreError> {
                Ok(sqlx::query_as::<_, UserRow>(
                    "SELECT id, name, role, password_hash, disabled, created_at FROM users ORDER BY name",
                )
                .fetch_all(pool)
                .await?)
            }

            pub async fn audit_page(pool: &Pool, after: i64, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
                Ok(sqlx::query_as::<_, AuditEvent>(
                    "SELECT seq, id, at, actor_kind, actor_id, actor_name, actor_role, action, environment, \
                     target, params, outcome, error, request_id, ip, user_agent, prev_hash, hash \
                     FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?)
            }

            /// The events matching `filter` on one side of `from`: after it
            /// in `seq` order, or before it newest first. Keyset paging, so
            /// the thousandth page costs what the first does.
            pub async fn audit_keyset(
                pool: &Pool,
                filter: &crate::export::Filter,
                from: i64,
                newest_first: bool,
                limit: i64,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                // Only placeholders are formatted in; every value is bound.
                let mut sql = String::from(
                    "SELECT seq, id, at, actor_kind, actor_id, actor_name, actor_role, action, environment, \
                     target, params, outcome, error, request_id, ip, user_agent, prev_hash, hash \
                     FROM audit_events WHERE ",
                );
                sql.push_str(if newest_first { "seq < $1" } else { "seq > $1" });
                let mut values: Vec<&str> = Vec::new();
                for (column, op, value) in [
                    ("actor_name", "=", &filter.actor),
                    ("action", "=", &filter.action),
                    ("environment", "=", &filter.environment),
                    ("outcome", "=", &filter.outcome),
                    ("target", "=", &filter.target),
                    ("at", ">=", &filter.since),
                    ("at", "<", &filter.until),
                ] {
                    if let Some(value) = value {
                        values.push(value);
                        sql.push_str(&format!(" AND {column} {op} ${}", values.len() + 1));
                    }
                }
                let order = if newest_first { "DESC" } else { "ASC" };
                sql.push_str(&format!(" ORDER BY seq {order} LIMIT ${}", values.len() + 2));
                let mut query = sqlx::query_as::<_, AuditEvent>(&sql).bind(from);
                for value in values {
                    query = query.bind(value);
                }
                Ok(query.bind(limit).fetch_all(pool).await?)
            }

            /// The times of `name`'s newest failed sign-ins since `since`.
            pub async fn recent_failed_sign_ins(
                pool: &Pool,
                name: &str,
                since: &str,
                limit: i64,
            ) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT at FROM audit_events WHERE actor_name = $1 AND action = 'auth.login_failed' \
                     AND at >= $2 ORDER BY seq DESC LIMIT $3",
                )
                .bind(name)
                .bind(since)
                .bind(limit)
                .fetch_all(pool)
                .await?)
            }

            pub async fn audit_head_seq(pool: &Pool) -> Result<i64, StoreError> {
                let row = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
                    .fetch_one(pool)
                    .await?;
                Ok(row.try_get("seq")?)
            }
        }
    };
}

backend_queries!(sqlite, sqlx::Sqlite);
backend_queries!(postgres, sqlx::Postgres);
