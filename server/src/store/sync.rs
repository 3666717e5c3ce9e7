//! What the sync keeps of the upstreams: commits, pipeline runs, deploys,
//! each environment's `alembic_version`, the per-source sync state (ETag,
//! last success, last failure) and the webhook deliveries already handled.
//! Records are stored whole as JSON beside the columns queries use.

use super::{Store, StoreError};
use crate::releases::{CommitRecord, DeployRecord, RunRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How one upstream source of one environment has been syncing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SyncState {
    pub environment: String,
    /// `github_runs`, `render_deploys`, `database`, …
    pub source: String,
    pub etag: Option<String>,
    pub last_ok_at: Option<String>,
    pub last_attempt_at: String,
    /// The last failure in plain words; None once a sync succeeds again.
    pub last_error: Option<String>,
    /// Failures in a row (drives the back-off).
    pub failures: i64,
}

/// `alembic_version` as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseState {
    pub versions: Vec<String>,
    pub read_at: String,
}

/// A time as the store writes it (see [`super::now_text`]).
pub fn store_time(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("a UTC time always formats")
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// `$first, $first+1, …` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! sync_queries {
    ($module:ident, $db:ty) => {
        pub(crate) mod $module {
            use super::*;
            use crate::store::queries::$module::bump_data_version;
            use sqlx::Row;

            type P = sqlx::Pool<$db>;

            pub async fn upsert_commits(pool: &P, commits: &[CommitRecord]) -> Result<(), StoreError> {
                // A commit's migrations, once read, are kept when the same
                // commit is written again without them. Read before the
                // write transaction: on SQLite a reader that turns writer
                // inside a transaction fails at once when another writes.
                let mut records = Vec::with_capacity(commits.len());
                for c in commits {
                    let mut record = c.clone();
                    if record.migrations.is_none() {
                        let old: Option<String> = sqlx::query_scalar("SELECT data FROM commits WHERE sha = $1")
                            .bind(&c.sha)
                            .fetch_optional(pool)
                            .await?;
                        if let Some(old) = old {
                            record.migrations = from_json::<CommitRecord>(&old)?.migrations;
                        }
                    }
                    records.push(record);
                }
                let mut tx = pool.begin().await?;
                for record in &records {
                    sqlx::query(
                        "INSERT INTO commits (sha, committed_at, data) VALUES ($1, $2, $3) \
                         ON CONFLICT (sha) DO UPDATE SET committed_at = excluded.committed_at, data = excluded.data",
                    )
                    .bind(&record.sha)
                    .bind(store_time(record.committed_at))
                    .bind(to_json(record)?)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn commits_by_sha(pool: &P, shas: &[String]) -> Result<Vec<CommitRecord>, StoreError> {
                if shas.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT data FROM commits WHERE sha IN ({}) ORDER BY committed_at DESC",
                    placeholders(1, shas.len())
                );
                let mut query = sqlx::query_scalar::<_, String>(&sql);
                for sha in shas {
                    query = query.bind(sha);
                }
                query.fetch_all(pool).await?.iter().map(|d| from_json(d)).collect()
            }

            pub async fn upsert_runs(pool: &P, runs: &[RunRecord]) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                for r in runs {
                    sqlx::query(
                        "INSERT INTO runs (id, workflow_file, head_branch, head_sha, created_at, data) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (id) DO UPDATE SET workflow_file = excluded.workflow_file, \
                         head_branch = excluded.head_branch, head_sha = excluded.head_sha, \
                         created_at = excluded.created_at, data = excluded.data",
                    )
                    .bind(r.id as i64)
                    .bind(&r.workflow_file)
                    .bind(&r.head_branch)
                    .bind(&r.head_sha)
                    .bind(store_time(r.created_at))
                    .bind(to_json(r)?)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn runs_on_branch(pool: &P, branch: &str, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
                sqlx::query_scalar::<_, String>(
                    "SELECT data FROM runs WHERE head_branch = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(branch)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|d| from_json(d))
                .collect()
            }

            pub async fn runs_for_shas(pool: &P, shas: &[String]) -> Result<Vec<RunRecord>, StoreError> {
                if shas.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT data FROM runs WHERE head_sha IN ({}) ORDER BY created_at DESC, id DESC",
                    placeholders(1, shas.len())
                );
                let mut query = sqlx::query_scalar::<_, String>(&sql);
                for sha in shas {
                    query = query.bind(sha);
                }
                query.fetch_all(pool).await?.iter().map(|d| from_json(d)).collect()
            }

            pub async fn run(pool: &P, id: u64) -> Result<Option<RunRecord>, StoreError> {
                sqlx::query_scalar::<_, String>("SELECT data FROM runs WHERE id = $1")
                    .bind(id as i64)
                    .fetch_optional(pool)
                    .await?
                    .map(|d| from_json(&d))
                    .transpose()
            }

            pub async fn upsert_deploys(pool: &P, deploys: &[DeployRecord]) -> Result<(), StoreError> {
                let mut tx = pool.begin().await?;
                for d in deploys {
                    sqlx::query(
                        "INSERT INTO deploys (id, environment, created_at, data) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO UPDATE SET environment = excluded.environment, \
                         created_at = excluded.created_at, data = excluded.data",
                    )
                    .bind(&d.id)
                    .bind(&d.environment)
                    .bind(store_time(d.created_at))
                    .bind(to_json(d)?)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn deploys(pool: &P, environment: &str, limit: i64) -> Result<Vec<DeployRecord>, StoreError> {
                sqlx::query_scalar::<_, String>(
                    "SELECT data FROM deploys WHERE environment = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(environment)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|d| from_json(d))
                .collect()
            }

            pub async fn deploy(pool: &P, id: &str) -> Result<Option<DeployRecord>, StoreError> {
                sqlx::query_scalar::<_, String>("SELECT data FROM deploys WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .map(|d| from_json(&d))
                    .transpose()
            }

            pub async fn set_database_state(pool: &P, environment: &str, versions: &[String]) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO database_state (environment, versions, read_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (environment) DO UPDATE SET versions = excluded.versions, read_at = excluded.read_at",
                )
                .bind(environment)
                .bind(to_json(&versions)?)
                .bind(crate::store::now_text())
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn database_state(pool: &P, environment: &str) -> Result<Option<DatabaseState>, StoreError> {
                let row = sqlx::query("SELECT versions, read_at FROM database_state WHERE environment = $1")
                    .bind(environment)
                    .fetch_optional(pool)
                    .await?;
                row.map(|row| {
                    Ok(DatabaseState {
                        versions: from_json(&row.try_get::<String, _>("versions")?)?,
                        read_at: row.try_get("read_at")?,
                    })
                })
                .transpose()
            }

            pub async fn sync_states(pool: &P) -> Result<Vec<SyncState>, StoreError> {
                Ok(sqlx::query_as::<_, SyncState>(
                    "SELECT environment, source, etag, last_ok_at, last_attempt_at, last_error, failures \
                     FROM sync_state ORDER BY environment, source",
                )
                .fetch_all(pool)
                .await?)
            }

            pub async fn record_sync(
                pool: &P,
                environment: &str,
                source: &str,
                outcome: Result<Option<&str>, &str>,
            ) -> Result<(), StoreError> {
                let now = crate::store::now_text();
                match outcome {
                    Ok(etag) => sqlx::query(
                        "INSERT INTO sync_state (environment, source, etag, last_ok_at, last_attempt_at, last_error, failures) \
                         VALUES ($1, $2, $3, $4, $4, NULL, 0) \
                         ON CONFLICT (environment, source) DO UPDATE SET \
                         etag = COALESCE(excluded.etag, sync_state.etag), last_ok_at = excluded.last_ok_at, \
                         last_attempt_at = excluded.last_attempt_at, last_error = NULL, failures = 0",
                    )
                    .bind(environment)
                    .bind(source)
                    .bind(etag)
                    .bind(&now),
                    Err(error) => sqlx::query(
                        "INSERT INTO sync_state (environment, source, etag, last_ok_at, last_attempt_at, last_error, failures) \
                         VALUES ($1, $2, NULL, NULL, $3, $4, 1) \
                         ON CONFLICT (environment, source) DO UPDATE SET \
                         last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error, \
                         failures = sync_state.failures + 1",
                    )
                    .bind(environment)
                    .bind(source)
                    .bind(&now)
                    .bind(error),
                }
                .execute(pool)
                .await?;
                bump_data_version(pool).await
            }

            pub async fn deploys_before(
                pool: &P,
                environment: &str,
                before: (&str, &str),
                limit: i64,
            ) -> Result<Vec<DeployRecord>, StoreError> {
                sqlx::query_scalar::<_, String>(
                    "SELECT data FROM deploys WHERE environment = $1 \
                     AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                     ORDER BY created_at DESC, id DESC LIMIT $4",
                )
                .bind(environment)
                .bind(before.0)
                .bind(before.1)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|d| from_json(d))
                .collect()
            }

            pub async fn runs_before(
                pool: &P,
                branch: &str,
                before: (&str, u64),
                limit: i64,
            ) -> Result<Vec<RunRecord>, StoreError> {
                sqlx::query_scalar::<_, String>(
                    "SELECT data FROM runs WHERE head_branch = $1 \
                     AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                     ORDER BY created_at DESC, id DESC LIMIT $4",
                )
                .bind(branch)
                .bind(before.0)
                .bind(before.1 as i64)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|d| from_json(d))
                .collect()
            }

            pub async fn backfill(pool: &P, environment: &str, source: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar::<_, Option<String>>(
                    "SELECT backfill FROM sync_state WHERE environment = $1 AND source = $2",
                )
                .bind(environment)
                .bind(source)
                .fetch_optional(pool)
                .await?
                .flatten())
            }

            pub async fn set_backfill(pool: &P, environment: &str, source: &str, position: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sync_state (environment, source, last_attempt_at, failures, backfill) \
                     VALUES ($1, $2, $3, 0, $4) \
                     ON CONFLICT (environment, source) DO UPDATE SET backfill = excluded.backfill",
                )
                .bind(environment)
                .bind(source)
                .bind(crate::store::now_text())
                .bind(position)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn known_deploy_ids(pool: &P, ids: &[String]) -> Result<Vec<String>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!("SELECT id FROM deploys WHERE id IN ({})", placeholders(1, ids.len()));
                let mut query = sqlx::query_scalar::<_, String>(&sql);
                for id in ids {
                    query = query.bind(id);
                }
                Ok(query.fetch_all(pool).await?)
            }

            pub async fn known_run_ids(pool: &P, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!("SELECT id FROM runs WHERE id IN ({})", placeholders(1, ids.len()));
                let mut query = sqlx::query_scalar::<_, i64>(&sql);
                for id in ids {
                    query = query.bind(*id as i64);
                }
                Ok(query.fetch_all(pool).await?.into_iter().map(|id| id as u64).collect())
            }

            pub async fn data_version(pool: &P) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT version FROM data_version WHERE id = 1")
                    .fetch_one(pool)
                    .await?)
            }

            pub async fn record_delivery(pool: &P, source: &str, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (source, delivery_id) DO NOTHING",
                )
                .bind(source)
                .bind(id)
                .bind(crate::store::now_text())
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

sync_queries!(sqlite, sqlx::Sqlite);
sync_queries!(postgres, sqlx::Postgres);

impl Store {
    pub async fn upsert_commits(&self, commits: &[CommitRecord]) -> Result<(), StoreError> {
        dispatch!(self, sync => upsert_commits(commits))
    }

    pub async fn commits_by_sha(&self, shas: &[String]) -> Result<Vec<CommitRecord>, StoreError> {
        dispatch!(self, sync => commits_by_sha(shas))
    }

    pub async fn upsert_runs(&self, runs: &[RunRecord]) -> Result<(), StoreError> {
        dispatch!(self, sync => upsert_runs(runs))
    }

    /// A branch's runs (all workflows), newest first.
    pub async fn runs_on_branch(
        &self,
        branch: &str,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self, sync => runs_on_branch(branch, limit))
    }

    pub async fn runs_for_shas(&self, shas: &[String]) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self, sync => runs_for_shas(shas))
    }

    pub async fn run(&self, id: u64) -> Result<Option<RunRecord>, StoreError> {
        dispatch!(self, sync => run(id))
    }

    pub async fn upsert_deploys(&self, deploys: &[DeployRecord]) -> Result<(), StoreError> {
        dispatch!(self, sync => upsert_deploys(deploys))
    }

    /// An environment's deploys, newest first.
    pub async fn deploys(
        &self,
        environment: &str,
        limit: i64,
    ) -> Result<Vec<DeployRecord>, StoreError> {
        dispatch!(self, sync => deploys(environment, limit))
    }

    pub async fn deploy(&self, id: &str) -> Result<Option<DeployRecord>, StoreError> {
        dispatch!(self, sync => deploy(id))
    }

    pub async fn set_database_state(
        &self,
        environment: &str,
        versions: &[String],
    ) -> Result<(), StoreError> {
        dispatch!(self, sync => set_database_state(environment, versions))
    }

    pub async fn database_state(
        &self,
        environment: &str,
    ) -> Result<Option<DatabaseState>, StoreError> {
        dispatch!(self, sync => database_state(environment))
    }

    pub async fn sync_states(&self) -> Result<Vec<SyncState>, StoreError> {
        dispatch!(self, sync => sync_states())
    }

    /// Records one sync attempt: `Ok(etag)` a success (keeping the old ETag
    /// when None), `Err(reason)` a failure in plain words. Called after the
    /// source's data is written, it also bumps [`Store::data_version`].
    pub async fn record_sync(
        &self,
        environment: &str,
        source: &str,
        outcome: Result<Option<&str>, &str>,
    ) -> Result<(), StoreError> {
        dispatch!(self, sync => record_sync(environment, source, outcome))
    }

    /// An environment's deploys older than `before` (creation time as the
    /// store writes it, id) in the order of [`Store::deploys`]: a keyset page.
    pub async fn deploys_before(
        &self,
        environment: &str,
        before: (&str, &str),
        limit: i64,
    ) -> Result<Vec<DeployRecord>, StoreError> {
        dispatch!(self, sync => deploys_before(environment, before, limit))
    }

    /// A branch's runs older than `before` (creation time as the store
    /// writes it, id) in the order of [`Store::runs_on_branch`]: a keyset page.
    pub async fn runs_before(
        &self,
        branch: &str,
        before: (&str, u64),
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        dispatch!(self, sync => runs_before(branch, before, limit))
    }

    /// Where a source's backfill stands (see `crate::sync::backfill`); None
    /// until it starts.
    pub async fn backfill(
        &self,
        environment: &str,
        source: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, sync => backfill(environment, source))
    }

    /// Keeps where a source's backfill stands, after each page it read.
    pub async fn set_backfill(
        &self,
        environment: &str,
        source: &str,
        position: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, sync => set_backfill(environment, source, position))
    }

    /// Which of these deploys the store already has.
    pub async fn known_deploy_ids(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        dispatch!(self, sync => known_deploy_ids(ids))
    }

    /// Which of these runs the store already has.
    pub async fn known_run_ids(&self, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
        dispatch!(self, sync => known_run_ids(ids))
    }

    /// A number that changes after every sync write (see `record_sync`).
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        dispatch!(self, sync => data_version())
    }

    /// Marks a webhook delivery handled; false when it already was.
    pub async fn record_delivery(&self, source: &str, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, sync => record_delivery(source, id))
    }
}
