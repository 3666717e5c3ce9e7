//! The store's SQL, written once and compiled for each backend.

/// Audit events per INSERT when many are appended at once: 18 values a row,
/// 18,000 a statement, under SQLite's limit on bound values (32,766 since
/// 3.32; sqlx bundles a newer SQLite) and PostgreSQL's (65,535).
const INSERT_ROWS: usize = 1_000;

/// Every column of an audit event, in [`crate::audit::AuditEvent`]'s order.
pub(crate) const AUDIT_COLUMNS: &str = "seq, id, at, actor_kind, actor_id, actor_name, actor_role, \
     action, environment, target, params, outcome, error, request_id, ip, user_agent, prev_hash, hash";

/// Expands the query functions for one sqlx database type.
macro_rules! backend_queries {
    ($module:ident, $db:ty) => {
        pub(crate) mod $module {
            use crate::audit::{AuditEvent, NewEvent};
            use crate::identity::random_id;
            use crate::store::sync::store_time;
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

            /// Appends inside the caller's transaction.
            pub async fn append_in(conn: &mut Conn, event: &NewEvent) -> Result<AuditEvent, StoreError> {
                let sealed = append_many_in(conn, std::slice::from_ref(event)).await?;
                Ok(sealed.expect("one event appended gives one sealed event"))
            }

            /// Appends `events` in order inside the caller's transaction,
            /// sealed one after the other exactly as that many single
            /// appends would be; returns the last one. The first statement
            /// writes the head row, which takes the lock that serialises
            /// appenders (a row lock on PostgreSQL, the write lock on
            /// SQLite), so a long batch holds other appenders until it commits.
            pub async fn append_many_in(
                conn: &mut Conn,
                events: &[NewEvent],
            ) -> Result<Option<AuditEvent>, StoreError> {
                if events.is_empty() {
                    return Ok(None);
                }
                let count = i64::try_from(events.len())
                    .expect("a batch fits in memory, so its length fits in i64");
                let head = sqlx::query(
                    "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash",
                )
                .bind(count)
                .fetch_one(&mut *conn)
                .await?;
                let mut seq: i64 = head.try_get::<i64, _>("seq")? - count;
                let mut prev_hash: String = head.try_get("hash")?;
                // Only a time given by the caller is checked against the
                // previous event's; the store's own clock only moves forward.
                let mut prev_at = String::new();
                if events.iter().any(|e| e.at.is_some()) {
                    if let Some(row) = sqlx::query("SELECT at FROM audit_events WHERE seq = $1")
                        .bind(seq)
                        .fetch_optional(&mut *conn)
                        .await?
                    {
                        prev_at = row.try_get("at")?;
                    }
                }
                let mut last = None;
                for chunk in events.chunks(super::INSERT_ROWS) {
                    let mut sealed = Vec::with_capacity(chunk.len());
                    for event in chunk {
                        seq += 1;
                        let at = match event.at {
                            None => now_text(),
                            Some(at) => {
                                let at = store_time(at);
                                let now = now_text();
                                if at < prev_at || at > now {
                                    return Err(StoreError::AuditTimeOutOfOrder(format!(
                                        "seq {seq} at {at}, after {prev_at}, now {now}"
                                    )));
                                }
                                at
                            }
                        };
                        prev_at.clone_from(&at);
                        let prev = std::mem::take(&mut prev_hash);
                        let event = AuditEvent::seal(event, seq, random_id(), at, prev);
                        prev_hash.clone_from(&event.hash);
                        sealed.push(event);
                    }
                    insert_events(&mut *conn, &sealed).await?;
                    last = sealed.pop();
                }
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                    .bind(&prev_hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(last)
            }

            /// One multi-row INSERT of sealed events. The builder writes
            /// each backend's own placeholders: SQLite looks a numbered one
            /// (`$7`) up by walking a list, which turns 18,000 of them into
            /// minutes, so it gets plain `?`.
            async fn insert_events(conn: &mut Conn, events: &[AuditEvent]) -> Result<(), StoreError> {
                let mut insert = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO audit_events (seq, id, at, actor_kind, actor_id, actor_name, actor_role, \
                     action, environment, target, params, outcome, error, request_id, ip, user_agent, \
                     prev_hash, hash) ",
                );
                insert.push_values(events, |mut row, sealed| {
                    row.push_bind(sealed.seq)
                        .push_bind(&sealed.id)
                        .push_bind(&sealed.at)
                        .push_bind(&sealed.actor_kind)
                        .push_bind(&sealed.actor_id)
                        .push_bind(&sealed.actor_name)
                        .push_bind(&sealed.actor_role)
                        .push_bind(&sealed.action)
                        .push_bind(&sealed.environment)
                        .push_bind(&sealed.target)
                        .push_bind(&sealed.params)
                        .push_bind(&sealed.outcome)
                        .push_bind(&sealed.error)
                        .push_bind(&sealed.request_id)
                        .push_bind(&sealed.ip)
                        .push_bind(&sealed.user_agent)
                        .push_bind(&sealed.prev_hash)
                        .push_bind(&sealed.hash);
                });
                insert.build().execute(&mut *conn).await?;
                Ok(())
            }

            pub async fn append_audit(pool: &Pool, event: &NewEvent) -> Result<AuditEvent, StoreError> {
                let mut tx = pool.begin().await?;
                let sealed = append_in(&mut tx, event).await?;
                tx.commit().await?;
                Ok(sealed)
            }

            /// Appends every event in one transaction; the last `seq`.
            pub async fn append_audit_batch(pool: &Pool, events: &[NewEvent]) -> Result<i64, StoreError> {
                let mut tx = pool.begin().await?;
                let seq = match append_many_in(&mut tx, events).await? {
                    Some(last) => last.seq,
                    None => sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("seq")?,
                };
                tx.commit().await?;
                Ok(seq)
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
                Ok(sqlx::query_as::<_, AuditEvent>(&format!(
                    "SELECT {} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    super::AUDIT_COLUMNS
                ))
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
                filter: &crate::store::audit_filter::Filter,
                from: i64,
                newest_first: bool,
                limit: i64,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                // Only placeholders are formatted in; every value is bound.
                let mut sql = format!("SELECT {} FROM audit_events WHERE ", super::AUDIT_COLUMNS);
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
