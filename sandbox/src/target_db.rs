//! The sandbox's target database: the database of the app Flightdeck
//! deploys, on SQLite or PostgreSQL, with Alembic's `alembic_version` table —
//! the one thing the panel reads from it.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The table exactly as Alembic creates it on both backends.
const CREATE_ALEMBIC_VERSION: &str = "CREATE TABLE IF NOT EXISTS alembic_version (\
     version_num VARCHAR(32) NOT NULL, \
     CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))";

/// Why the target database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum TargetDbError {
    /// The URL names neither SQLite nor PostgreSQL. The URL itself is not
    /// repeated: it may hold a password.
    #[error("the target database URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("target database: {0}")]
    Sqlx(#[from] sqlx::Error),
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection pool to the target database.
#[derive(Debug, Clone)]
pub struct TargetDb {
    pool: Pool,
}

impl TargetDb {
    /// Opens `sqlite://PATH` (creating the file if missing) or `postgres://…`.
    pub async fn open(url: &str) -> Result<TargetDb, TargetDbError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // Alembic writes to the same file from another process.
                .busy_timeout(Duration::from_secs(10));
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await?,
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(PgConnectOptions::from_str(url)?)
                    .await?,
            )
        } else {
            return Err(TargetDbError::UnsupportedUrl);
        };
        Ok(TargetDb { pool })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Creates `alembic_version` as Alembic does, if it is not there yet.
    pub async fn ensure(&self) -> Result<(), TargetDbError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query(CREATE_ALEMBIC_VERSION).execute(p).await?;
            }
            Pool::Postgres(p) => {
                sqlx::query(CREATE_ALEMBIC_VERSION).execute(p).await?;
            }
        }
        Ok(())
    }

    /// Replaces the rows of `alembic_version` with `revisions` in one
    /// transaction (what `alembic stamp` does): empty means "at base",
    /// several rows mean several heads.
    pub async fn set_revisions(&self, revisions: &[String]) -> Result<(), TargetDbError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("DELETE FROM alembic_version")
                    .execute(&mut *tx)
                    .await?;
                for revision in revisions {
                    sqlx::query("INSERT INTO alembic_version (version_num) VALUES (?)")
                        .bind(revision)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("DELETE FROM alembic_version")
                    .execute(&mut *tx)
                    .await?;
                for revision in revisions {
                    sqlx::query("INSERT INTO alembic_version (version_num) VALUES ($1)")
                        .bind(revision)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The rows of `alembic_version`, sorted.
    pub async fn revisions(&self) -> Result<Vec<String>, TargetDbError> {
        let sql = "SELECT version_num FROM alembic_version ORDER BY version_num";
        Ok(match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
        })
    }

    /// Closes the pool (a PostgreSQL database cannot be dropped while it is open).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// The first column of every row of `sql`, as text: for tests that
    /// inspect the schema the migrations left behind. A failing query
    /// panics with the SQL and the error.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDb;

    fn revs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Runs `test` on a fresh database of each backend.
    macro_rules! on_both_backends {
        ($($name:ident => $body:expr;)*) => {
            mod sqlite_backend { use super::*; $( #[tokio::test] async fn $name() { run("sqlite", $body).await } )* }
            mod postgres_backend { use super::*; $( #[tokio::test] async fn $name() { run("postgres", $body).await } )* }
        };
    }

    async fn run(backend: &str, test: impl AsyncFnOnce(&TargetDb)) {
        let scratch = ScratchDb::new(backend).await;
        let db = TargetDb::open(&scratch.url).await.unwrap();
        assert_eq!(db.backend(), backend);
        test(&db).await;
        db.close().await;
        scratch.drop_all().await;
    }

    on_both_backends! {
        a_fresh_database_has_no_alembic_version_until_ensured => async |db: &TargetDb| {
            assert!(matches!(db.revisions().await, Err(TargetDbError::Sqlx(_))));
            db.ensure().await.unwrap();
            assert_eq!(db.revisions().await.unwrap(), Vec::<String>::new());
            // Idempotent, and it keeps the rows.
            db.set_revisions(&revs(&["ae1027a6acf"])).await.unwrap();
            db.ensure().await.unwrap();
            assert_eq!(db.revisions().await.unwrap(), revs(&["ae1027a6acf"]));
        };
        set_revisions_replaces_every_row => async |db: &TargetDb| {
            db.ensure().await.unwrap();
            db.set_revisions(&revs(&["1975ea83b712"])).await.unwrap();
            db.set_revisions(&revs(&["ff1234567890", "27c6a30d7c24"])).await.unwrap();
            assert_eq!(db.revisions().await.unwrap(), revs(&["27c6a30d7c24", "ff1234567890"]));
            db.set_revisions(&[]).await.unwrap();
            assert_eq!(db.revisions().await.unwrap(), Vec::<String>::new());
        };
        a_failed_set_revisions_leaves_the_previous_rows => async |db: &TargetDb| {
            db.ensure().await.unwrap();
            db.set_revisions(&revs(&["1975ea83b712"])).await.unwrap();
            // The primary key refuses the second row after the DELETE ran.
            let duplicate = db.set_revisions(&revs(&["27c6a30d7c24", "27c6a30d7c24"])).await;
            assert!(matches!(duplicate, Err(TargetDbError::Sqlx(_))), "{duplicate:?}");
            assert_eq!(db.revisions().await.unwrap(), revs(&["1975ea83b712"]));
        };
        alembic_version_has_alembics_column_and_constraint => async |db: &TargetDb| {
            db.ensure().await.unwrap();
            let (columns, constraints) = match db.backend() {
                "sqlite" => (
                    db.strings("SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || pk \
                                FROM pragma_table_info('alembic_version')").await,
                    db.strings("SELECT sql FROM sqlite_master WHERE name = 'alembic_version'")
                        .await,
                ),
                _ => (
                    db.strings("SELECT column_name || ' ' || data_type || '(' || \
                                character_maximum_length || ') ' || is_nullable \
                                FROM information_schema.columns \
                                WHERE table_name = 'alembic_version'").await,
                    db.strings("SELECT constraint_name || ' ' || constraint_type \
                                FROM information_schema.table_constraints \
                                WHERE table_name = 'alembic_version' \
                                AND constraint_type = 'PRIMARY KEY'").await,
                ),
            };
            if db.backend() == "sqlite" {
                assert_eq!(columns, ["version_num VARCHAR(32) 1 1"]);
                assert!(constraints[0].contains("CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)"),
                    "{constraints:?}");
            } else {
                assert_eq!(columns, ["version_num character varying(32) NO"]);
                assert_eq!(constraints, ["alembic_version_pkc PRIMARY KEY"]);
            }
        };
    }

    #[tokio::test]
    async fn an_unsupported_url_is_refused_without_repeating_it() {
        let error = TargetDb::open("mysql://root:hunter2@localhost/app")
            .await
            .unwrap_err();
        assert!(matches!(error, TargetDbError::UnsupportedUrl));
        assert!(!error.to_string().contains("hunter2"));
    }
}
