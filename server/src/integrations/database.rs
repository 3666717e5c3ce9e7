//! The panel's read-only view of a target database: the rows of Alembic's
//! `alembic_version` table, which say where the database stands in its
//! migrations. [`MigrationDatabase`] is the seam; [`SqlxMigrationDatabase`]
//! is the one real implementation, on PostgreSQL or SQLite.
//!
//! The panel never writes here: PostgreSQL sessions are made read-only when
//! they connect, SQLite files are opened read-only (and never created). The
//! errors are meant to be shown to people, so none of them repeats the URL or
//! its password.

use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How long [`SqlxMigrationDatabase::new`] waits for a connection, and then
/// for the answer, before calling the database unreachable.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The one statement this module runs.
const VERSIONS_SQL: &str = "SELECT version_num FROM alembic_version";

/// Supabase's transaction-mode pooler. It hands each transaction to any
/// server connection, so the prepared statements sqlx names on one are
/// missing on the next.
const TRANSACTION_POOLER_PORT: u16 = 6543;

/// Where a target database stands in its Alembic migrations.
#[async_trait::async_trait]
pub trait MigrationDatabase: Send + Sync {
    /// The rows of `alembic_version`, sorted: none at base, one normally,
    /// several when the database sits on several branch heads.
    async fn versions(&self) -> Result<Vec<String>, DatabaseError>;
}

/// Why the versions could not be read. The messages are for people (the
/// panel shows them over stale data) and never contain the URL or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseError {
    #[error(
        "the database has no alembic_version table: Alembic has never run on it \
         (or the URL names another database)"
    )]
    NotUnderAlembic,
    /// The reason is in words, built by this module, never a driver message.
    #[error("cannot reach the database: {0}")]
    Unreachable(String),
    #[error(
        "the URL points at Supabase's transaction-mode pooler (port 6543), which does not \
         support the prepared statements Flightdeck uses: use the direct connection \
         (port 5432) or the session-mode pooler (port 5432 on the pooler host) instead"
    )]
    TransactionPooler,
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(&'static str),
    /// The database's own message, with any secret of the URL blanked out.
    #[error("reading alembic_version failed: {0}")]
    Query(String),
}

#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A small read-only connection pool to one target database. Connections are
/// opened on first use, so a database that is down does not stop the panel
/// from starting; each [`versions`](MigrationDatabase::versions) call reports it.
#[derive(Clone)]
pub struct SqlxMigrationDatabase {
    pool: Pool,
    timeout: Duration,
    /// What must never appear in an error: the password, raw and decoded.
    secrets: Vec<String>,
}

impl fmt::Debug for SqlxMigrationDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connect options hold the password: show only the backend.
        f.debug_struct("SqlxMigrationDatabase")
            .field("backend", &self.backend())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SqlxMigrationDatabase {
    /// A pool for `postgres://…`, `postgresql://…` or `sqlite:…` with the
    /// [default timeout](DEFAULT_CONNECT_TIMEOUT). Nothing is connected yet;
    /// must be called inside a Tokio runtime.
    pub fn new(url: &str) -> Result<Self, DatabaseError> {
        Self::with_timeout(url, DEFAULT_CONNECT_TIMEOUT)
    }

    /// As [`new`](Self::new), waiting at most `timeout` for a connection and
    /// again at most `timeout` for the query's answer.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, DatabaseError> {
        let secrets = secrets_of(url);
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // sqlx's parse errors may quote the URL: say it in our words.
            let options = PgConnectOptions::from_str(url).map_err(|_| {
                DatabaseError::UnsupportedUrl("it is not a well-formed PostgreSQL URL")
            })?;
            if options.get_port() == TRANSACTION_POOLER_PORT {
                return Err(DatabaseError::TransactionPooler);
            }
            let options = options.application_name("flightdeck-readonly");
            Pool::Postgres(
                PgPoolOptions::new()
                    // The panel reads one tiny table now and then.
                    .max_connections(2)
                    .acquire_timeout(timeout)
                    .idle_timeout(Some(Duration::from_secs(60)))
                    // A SET after connecting works through every pooler, unlike
                    // startup `options`; a session that cannot be made read-only
                    // is dropped by the pool and never used.
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                                .await
                                .map(|_| ())
                        })
                    })
                    .connect_lazy_with(options),
            )
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| DatabaseError::UnsupportedUrl("it is not a well-formed SQLite URL"))?
                // After parsing, so `?mode=rwc` in the URL cannot undo it.
                .read_only(true)
                .create_if_missing(false)
                // Alembic may hold the write lock while it migrates.
                .busy_timeout(timeout);
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(timeout)
                    .idle_timeout(Some(Duration::from_secs(60)))
                    .connect_lazy_with(options),
            )
        } else {
            return Err(DatabaseError::UnsupportedUrl(
                "it must start with postgres://, postgresql:// or sqlite:",
            ));
        };
        Ok(Self {
            pool,
            timeout,
            secrets,
        })
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Postgres(_) => "postgres",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }

    /// Runs one statement of `sql` on a pooled connection, as the panel's
    /// own query would: for tests that prove writes are refused.
    #[cfg(test)]
    async fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        match &self.pool {
            Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
    }

    async fn read(&self) -> Result<Vec<String>, sqlx::Error> {
        // Connecting is bounded by the pool's acquire timeout, the answer here.
        // sqlx pings a connection dropped mid-query before reusing it.
        let within = |rows: Result<Result<_, _>, _>| rows.map_err(|_| sqlx::Error::PoolTimedOut)?;
        match &self.pool {
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                let query = sqlx::query_scalar(VERSIONS_SQL).fetch_all(&mut *conn);
                within(tokio::time::timeout(self.timeout, query).await)
            }
            Pool::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                let query = sqlx::query_scalar(VERSIONS_SQL).fetch_all(&mut *conn);
                within(tokio::time::timeout(self.timeout, query).await)
            }
        }
    }

    /// Our error for a driver error, in words, without secrets.
    fn classify(&self, error: sqlx::Error) -> DatabaseError {
        let seconds = self.timeout.as_secs_f64();
        match &error {
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                let message = db.message();
                // 42P01 undefined_table (PostgreSQL); SQLite has no code for it.
                if code == "42P01" || message.starts_with("no such table") {
                    return DatabaseError::NotUnderAlembic;
                }
                let unreachable = |why: &str| DatabaseError::Unreachable(why.to_owned());
                match code.as_ref() {
                    "28P01" | "28000" => unreachable("the server refused the credentials"),
                    "3D000" => unreachable("the database does not exist on that server"),
                    "53300" => unreachable("the server has too many connections"),
                    "57P03" => unreachable("the server is starting up or shutting down"),
                    // SQLITE_CANTOPEN: read-only opening never creates the file.
                    "14" => unreachable("the database file does not exist or cannot be opened"),
                    _ => DatabaseError::Query(self.scrub(message)),
                }
            }
            sqlx::Error::PoolTimedOut => DatabaseError::Unreachable(format!(
                "no answer within {seconds} s (the server is down, unreachable or refusing \
                 connections)"
            )),
            sqlx::Error::Io(io) => {
                DatabaseError::Unreachable(format!("network error ({})", io.kind()))
            }
            sqlx::Error::Tls(_) => {
                DatabaseError::Unreachable("the TLS handshake failed".to_owned())
            }
            sqlx::Error::Protocol(_) => DatabaseError::Unreachable(
                "the server does not speak the expected protocol".to_owned(),
            ),
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                DatabaseError::Unreachable("the connection pool is closed".to_owned())
            }
            other => DatabaseError::Query(self.scrub(&other.to_string())),
        }
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
    }
}

#[async_trait::async_trait]
impl MigrationDatabase for SqlxMigrationDatabase {
    #[tracing::instrument(skip_all, fields(backend = self.backend()))]
    async fn versions(&self) -> Result<Vec<String>, DatabaseError> {
        let read = self.read().await;
        crate::metrics::global().upstream(
            "database",
            match &read {
                Ok(_) => "ok",
                Err(sqlx::Error::PoolTimedOut) => "timeout",
                Err(_) => "error",
            },
        );
        let mut versions = read.map_err(|e| self.classify(e))?;
        versions.sort();
        Ok(versions)
    }
}

/// The password of `url`, as written and percent-decoded; the whole URL too.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(parsed) = url::Url::parse(url)
        && let Some(password) = parsed.password().filter(|p| !p.is_empty())
    {
        secrets.push(password.to_owned());
        if let Some(decoded) = percent_decode(password)
            && decoded != password
        {
            secrets.push(decoded);
        }
    }
    secrets.push(url.to_owned());
    // Longest first, so a password inside the URL does not break the URL's match.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' && tail.len() >= 2 {
            let hex = std::str::from_utf8(&tail[..2]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightdeck_sandbox::scratch::ScratchDb;
    use flightdeck_sandbox::target_db::TargetDb;

    const PASSWORD: &str = "s3cr3t-Hunter2";

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The scratch database's URL with a recognisable password in it
    /// (PostgreSQL trusts local connections, so it is accepted and ignored).
    fn with_password(url: &str) -> String {
        url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1)
    }

    fn assert_no_secret(error: &DatabaseError) {
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(PASSWORD), "the password leaked: {text}");
            // Every URL in these tests has user@host in it.
            assert!(!text.contains('@'), "a URL leaked: {text}");
        }
    }

    /// A fresh database of `backend` (the SQLite file exists), a writer on it
    /// for the arrangement, and the reader under test.
    async fn arrange(backend: &str) -> (ScratchDb, TargetDb, SqlxMigrationDatabase) {
        let scratch = ScratchDb::new(backend).await;
        let writer = TargetDb::open(&scratch.url).await.unwrap();
        let reader = SqlxMigrationDatabase::new(&with_password(&scratch.url)).unwrap();
        assert_eq!(reader.backend(), backend);
        (scratch, writer, reader)
    }

    async fn finish(scratch: ScratchDb, writer: TargetDb, reader: SqlxMigrationDatabase) {
        reader.close().await;
        writer.close().await;
        scratch.drop_all().await;
    }

    async fn run(backend: &'static str, test: impl AsyncFnOnce(&'static str)) {
        test(backend).await
    }

    /// Runs each test on a fresh database of each backend.
    macro_rules! on_both_backends {
        ($($name:ident => $body:expr;)*) => {
            mod sqlite_backend { use super::*; $( #[tokio::test] async fn $name() { run("sqlite", $body).await } )* }
            mod postgres_backend { use super::*; $( #[tokio::test] async fn $name() { run("postgres", $body).await } )* }
        };
    }

    on_both_backends! {
        versions_are_the_rows_of_alembic_version_sorted => async |backend: &'static str| {
            let (scratch, writer, reader) = arrange(backend).await;
            writer.ensure().await.unwrap();
            assert_eq!(reader.versions().await.unwrap(), Vec::<String>::new());

            writer.set_revisions(&ids(&["1975ea83b712"])).await.unwrap();
            assert_eq!(reader.versions().await.unwrap(), ids(&["1975ea83b712"]));

            writer
                .set_revisions(&ids(&["ff1234567890", "27c6a30d7c24", "ae1027a6acf0"]))
                .await
                .unwrap();
            assert_eq!(
                reader.versions().await.unwrap(),
                ids(&["27c6a30d7c24", "ae1027a6acf0", "ff1234567890"])
            );
            finish(scratch, writer, reader).await;
        };
        a_database_without_alembic_version_is_not_under_alembic => async |backend: &'static str| {
            let (scratch, writer, reader) = arrange(backend).await;
            let error = reader.versions().await.unwrap_err();
            assert_eq!(error, DatabaseError::NotUnderAlembic);
            assert!(error.to_string().contains("no alembic_version table"), "{error}");
            assert_no_secret(&error);
            finish(scratch, writer, reader).await;
        };
        the_reader_cannot_write_through_its_own_connections => async |backend: &'static str| {
            let (scratch, writer, reader) = arrange(backend).await;
            writer.ensure().await.unwrap();
            writer.set_revisions(&ids(&["1975ea83b712"])).await.unwrap();
            // Both pooled connections, so neither is writable.
            let (a, b) = tokio::join!(
                reader.execute("INSERT INTO alembic_version (version_num) VALUES ('deadbeef0000')"),
                reader.execute("CREATE TABLE intruder (id INTEGER)"),
            );
            for refused in [a, b] {
                let error = refused.expect_err("a write went through the read-only reader");
                let code = error.as_database_error().and_then(|e| e.code()).unwrap_or_default();
                match backend {
                    // read_only_sql_transaction
                    "postgres" => assert_eq!(code, "25006", "{error}"),
                    // SQLITE_READONLY
                    _ => assert_eq!(code, "8", "{error}"),
                }
            }
            assert_eq!(reader.versions().await.unwrap(), ids(&["1975ea83b712"]));
            assert_eq!(writer.revisions().await.unwrap(), ids(&["1975ea83b712"]));
            let tables = match backend {
                "postgres" => "SELECT table_name::text FROM information_schema.tables \
                               WHERE table_schema = 'public' ORDER BY 1",
                _ => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
            };
            assert_eq!(writer.strings(tables).await, ["alembic_version"]);
            finish(scratch, writer, reader).await;
        };
    }

    #[tokio::test]
    async fn a_database_error_reaches_the_page_without_the_password() {
        let (scratch, writer, reader) = arrange("postgres").await;
        // A view that fails when read, and whose failure quotes the password.
        let admin = sqlx::PgPool::connect(&scratch.url).await.unwrap();
        sqlx::raw_sql(&format!(
            "CREATE VIEW alembic_version AS SELECT ('{PASSWORD}'::text)::int AS version_num"
        ))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
        let error = reader.versions().await.unwrap_err();
        let DatabaseError::Query(message) = &error else {
            panic!("expected a query error, got {error:?}");
        };
        assert!(message.contains("invalid input syntax"), "{message}");
        assert!(message.contains("***"), "{message}");
        assert_no_secret(&error);
        finish(scratch, writer, reader).await;
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_is_unreachable_and_never_created() {
        let dir = std::env::temp_dir().join(format!("fd_test_{}", crate::identity::random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("missing.db");
        // Even a URL that asks for read-write-create opens read-only.
        for url in [
            format!("sqlite://{}", file.display()),
            format!("sqlite://{}?mode=rwc", file.display()),
        ] {
            let reader = SqlxMigrationDatabase::new(&url).unwrap();
            let error = reader.versions().await.unwrap_err();
            assert!(
                matches!(&error, DatabaseError::Unreachable(why) if why.contains("does not exist")),
                "{error:?}"
            );
            assert!(!file.exists(), "{url} created the file");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn supabases_transaction_pooler_is_refused_before_connecting() {
        // The host does not resolve: any connection attempt would fail otherwise.
        let pooler = format!(
            "postgres://postgres.abcdefgh:{PASSWORD}@aws-0-eu-central-1.pooler.supabase.invalid:6543/postgres"
        );
        for url in [
            pooler.clone(),
            pooler.replace("postgres://", "postgresql://"),
            format!("postgres://postgres:{PASSWORD}@db.example.invalid/postgres?port=6543"),
        ] {
            let error = SqlxMigrationDatabase::new(&url).unwrap_err();
            assert_eq!(error, DatabaseError::TransactionPooler, "{url}");
            let text = error.to_string();
            assert!(
                text.contains("6543") && text.contains("prepared statements"),
                "{text}"
            );
            assert!(
                text.contains("port 5432") && text.contains("session-mode pooler"),
                "{text}"
            );
            assert_no_secret(&error);
        }
        // The session-mode pooler on the same host is accepted (and not yet contacted).
        let session = SqlxMigrationDatabase::new(&pooler.replace(":6543/", ":5432/")).unwrap();
        assert_eq!(session.backend(), "postgres");
        assert!(!format!("{session:?}").contains(PASSWORD));
    }

    #[tokio::test]
    async fn a_server_that_is_not_listening_is_unreachable_within_the_timeout() {
        // A port that was free a moment ago.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/app");
        let timeout = Duration::from_millis(300);
        let reader = SqlxMigrationDatabase::with_timeout(&url, timeout).unwrap();
        let started = std::time::Instant::now();
        let error = reader.versions().await.unwrap_err();
        // Loose on purpose: proves the configured timeout, not the default 5 s, applies.
        assert!(
            started.elapsed() < DEFAULT_CONNECT_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&error, DatabaseError::Unreachable(why) if why.contains("0.3 s")),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("cannot reach the database"),
            "{error}"
        );
        assert_no_secret(&error);
    }

    #[test]
    fn other_urls_are_refused_without_repeating_them() {
        for url in [
            format!("mysql://root:{PASSWORD}@localhost/app"),
            format!("postgres://root:{PASSWORD}@localhost:notaport/app"),
            PASSWORD.to_owned(),
        ] {
            let error = SqlxMigrationDatabase::new(&url).unwrap_err();
            assert!(
                matches!(error, DatabaseError::UnsupportedUrl(_)),
                "{url}: {error:?}"
            );
            assert_no_secret(&error);
        }
    }

    #[test]
    fn secrets_are_the_password_raw_and_decoded_and_the_url() {
        let url = "postgres://u:p%40ss%2Fw0rd@h:5432/db";
        let reader_secrets = secrets_of(url);
        assert_eq!(reader_secrets, [url, "p%40ss%2Fw0rd", "p@ss/w0rd"]);
        assert_eq!(secrets_of("sqlite:///tmp/x.db"), ["sqlite:///tmp/x.db"]);
    }
}
