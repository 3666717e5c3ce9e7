//! Throw-away databases for tests: the one helper the sandbox's, the
//! panel's and the black-box tests use for a fresh, empty database.
//!
//! PostgreSQL is expected at 127.0.0.1:5432 as `postgres` with trust auth,
//! or wherever `FLIGHTDECK_TEST_PG` points (a URL naming any database on
//! the server). A missing server fails the test: nothing is skipped.

use sqlx::postgres::PgPool;
use std::path::PathBuf;

/// The PostgreSQL server tests use when `FLIGHTDECK_TEST_PG` is not set.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the PostgreSQL server for tests: `FLIGHTDECK_TEST_PG`, else
/// [`PG_ADMIN_URL`].
pub fn pg_admin_url() -> String {
    std::env::var("FLIGHTDECK_TEST_PG").unwrap_or_else(|_| PG_ADMIN_URL.to_owned())
}

/// A fresh, empty database with a folder of its own: a SQLite file in the
/// folder, or a new PostgreSQL database `fd_test_…`. Nothing is removed on
/// drop (that would need a runtime): call [`ScratchDb::drop_all`].
#[derive(Debug)]
pub struct ScratchDb {
    /// The sqlx URL of the new database (`sqlite://…` or `postgres://…`).
    pub url: String,
    /// A new folder, removed with the database.
    pub dir: PathBuf,
    /// The admin URL and the name of the PostgreSQL database.
    postgres: Option<(String, String)>,
}

impl ScratchDb {
    /// A new database on `backend`: `"sqlite"`, or anything else for
    /// PostgreSQL. The SQLite file does not exist yet; sqlx creates it on
    /// the first connection with `create_if_missing`.
    pub async fn new(backend: &str) -> ScratchDb {
        let name = format!("fd_test_{}", crate::support::random_id());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
        if backend == "sqlite" {
            let url = format!("sqlite://{}", dir.join("scratch.db").display());
            return ScratchDb {
                url,
                dir,
                postgres: None,
            };
        }
        let admin_url = pg_admin_url();
        let admin = PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL must run at 127.0.0.1:5432 (or FLIGHTDECK_TEST_PG) for this test: {e}"
            )
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        admin.close().await;
        let url = admin_url
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/{name}"))
            .expect("a PostgreSQL URL names a database after its last /");
        ScratchDb {
            url,
            dir,
            postgres: Some((admin_url, name)),
        }
    }

    /// A new PostgreSQL database (see [`ScratchDb::new`]).
    pub async fn postgres() -> ScratchDb {
        ScratchDb::new("postgres").await
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Drops the PostgreSQL database, closing whatever is still connected
    /// to it, for owners that cannot give the helper up by value. Dropping
    /// twice is harmless.
    pub async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.postgres {
            let admin = PgPool::connect(admin_url)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url}: {e}"));
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap_or_else(|e| panic!("DROP DATABASE {name}: {e}"));
            admin.close().await;
        }
    }

    /// Drops the database (closing whatever is still connected) and the folder.
    pub async fn drop_all(self) {
        self.drop_database().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    #[tokio::test]
    async fn a_postgres_scratch_database_exists_until_dropped() {
        let scratch = ScratchDb::postgres().await;
        assert!(scratch.is_postgres());
        assert!(scratch.dir.is_dir());
        let mut conn = sqlx::PgConnection::connect(&scratch.url).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
        let name = scratch.url.rsplit_once('/').unwrap().1.to_owned();
        let dir = scratch.dir.clone();
        // Still connected: the drop closes the connection itself.
        scratch.drop_all().await;
        let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert_eq!(left, 0);
        assert!(!dir.exists());
        drop(conn);
    }

    #[tokio::test]
    async fn a_sqlite_scratch_database_is_a_file_in_its_own_folder() {
        let scratch = ScratchDb::new("sqlite").await;
        assert!(!scratch.is_postgres());
        let path = scratch.url.strip_prefix("sqlite://").unwrap();
        assert!(std::path::Path::new(path).starts_with(&scratch.dir));
        let dir = scratch.dir.clone();
        scratch.drop_all().await;
        assert!(!dir.exists());
    }
}
