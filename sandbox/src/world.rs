//! The sandbox's world: the seeded [`Scenario`] poured into the simulated
//! GitHub (commits whose migrations directory grows with the Alembic
//! history, pipeline runs, the `db-rollback.yml` workflow), the simulated
//! Render (two services and their deploys, one failed build) and one target
//! database per environment with `alembic_version` where the pipeline left it.
//!
//! A dispatched `db-rollback.yml` run downgrades its environment's target
//! database when it completes, as the real workflow would.

use super::alembic::{self, RevisionSpec};
use super::github::{
    ActionsTiming, CommitSeed, CompletedRun, GithubSim, GithubSimConfig, JobSeed, Outcome, Person,
    RunSeed, WorkflowSeed,
};
use super::render::{self, RenderSim, ServiceSeed};
use super::scenario::{Branch, CiOutcome, PEOPLE, PIPELINE, Scenario};
use super::target_db::TargetDb;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

pub const OWNER: &str = "cuentadesanti";
pub const REPO: &str = "data-simulator";
/// Local simulators, so fixed credentials; the real ones live in env vars.
pub const GITHUB_TOKEN: &str = "ghp_sandbox_local_only";
pub const RENDER_KEY: &str = "rnd_sandbox_local_only";
/// Where the repository keeps its Alembic revisions.
pub const MIGRATIONS_PATH: &str = "backend/alembic/versions";
pub const DEPLOY_WORKFLOW: &str = "deploy.yml";
pub const DB_ROLLBACK_WORKFLOW: &str = "db-rollback.yml";

/// The simulated Render service of the `production` environment.
pub const PRODUCTION_SERVICE: &str = "srv-sandbox-production";

/// The two environments: name, branch, Render service id.
pub const ENVIRONMENTS: [(&str, Branch, &str); 2] = [
    ("production", Branch::Main, PRODUCTION_SERVICE),
    ("staging", Branch::Staging, "srv-sandbox-staging"),
];

/// How fast things move; tests make it quick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Speeds {
    pub actions: ActionsTiming,
    pub render: render::Timing,
}

impl Speeds {
    /// Fast enough that a test waits a fraction of a second for a run or a deploy.
    pub fn quick() -> Speeds {
        Speeds {
            actions: ActionsTiming {
                queue: std::time::Duration::from_millis(50),
                step: std::time::Duration::from_millis(50),
            },
            render: render::Timing {
                build: std::time::Duration::from_millis(100),
                update: std::time::Duration::from_millis(100),
            },
        }
    }
}

/// Where each environment's target database lives.
#[derive(Debug, Clone)]
pub enum Targets {
    /// `target-<env>.sqlite` files in this folder.
    Sqlite(std::path::PathBuf),
    /// One database per environment (`<prefix>_<env>`, created if missing)
    /// on the PostgreSQL server `server` (a URL naming any database on it).
    Postgres { server: String, prefix: String },
}

/// Everything the sandbox serves.
pub struct World {
    pub scenario: Scenario,
    pub history: Vec<RevisionSpec>,
    pub github: GithubSim,
    pub render: RenderSim,
    /// Environment name → (database URL, database).
    pub targets: BTreeMap<String, (String, TargetDb)>,
    /// The secrets that sign the simulators' webhook deliveries.
    pub github_webhook_secret: String,
    pub render_webhook_secret: String,
    /// Commits whose health check fails (their pipeline's smoke test did).
    pub unhealthy: std::collections::BTreeSet<String>,
    /// Where the sample app answers its smoke checks, once served.
    backend_url: std::sync::OnceLock<String>,
    /// Where the simulated Render answers (its deploy hooks too), once served.
    render_url: std::sync::OnceLock<String>,
}

fn person(index: usize) -> Person {
    let p = &PEOPLE[index % PEOPLE.len()];
    Person {
        name: p.name.to_owned(),
        email: p.email.to_owned(),
        login: p.login.to_owned(),
    }
}

/// The repository's files at a commit: the app, its pipeline, the Alembic
/// project with the first `revisions` revisions, and a changelog that every
/// commit extends (so each one changes something).
fn repo_files(
    history: &[RevisionSpec],
    revisions: usize,
    changelog: &str,
) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    files.insert("README.md".to_owned(), README.to_owned());
    files.insert("CHANGELOG.md".to_owned(), changelog.to_owned());
    files.insert("backend/app/main.py".to_owned(), MAIN_PY.to_owned());
    files.insert("backend/pyproject.toml".to_owned(), PYPROJECT.to_owned());
    files.insert(
        format!(".github/workflows/{DEPLOY_WORKFLOW}"),
        DEPLOY_YML.to_owned(),
    );
    files.insert(
        format!(".github/workflows/{DB_ROLLBACK_WORKFLOW}"),
        DB_ROLLBACK_YML.to_owned(),
    );
    let applied = &history[..revisions.min(history.len())];
    for (path, text) in
        alembic::project_files(applied, "postgresql+psycopg2://localhost/data_simulator")
    {
        files.insert(format!("backend/{path}"), text);
    }
    files
}

/// When a commit's pipeline would reach each milestone.
fn commit_time(start: OffsetDateTime, minutes_ago: i64) -> OffsetDateTime {
    start - Duration::minutes(minutes_ago)
}

impl World {
    /// Builds the world for `seed` and opens the target databases.
    pub async fn build(seed: u64, speeds: Speeds, targets: Targets) -> Result<Self, String> {
        Self::build_with_older(seed, speeds, targets, 0).await
    }

    /// As [`World::build`], with `older` more commits on `main` before the
    /// scenario's, one every four hours, each with a passing pipeline run
    /// and a deploy to both environments: a long history, for tests of
    /// the sync's backfill and of paging.
    pub async fn build_with_older(
        seed: u64,
        speeds: Speeds,
        targets: Targets,
        older: usize,
    ) -> Result<Self, String> {
        let history = alembic::sample_history(seed);
        let messages: Vec<String> = history.iter().map(|r| r.message.clone()).collect();
        let scenario = Scenario::generate(seed, &messages);
        let start = OffsetDateTime::now_utc();

        let mut config = GithubSimConfig::new(GITHUB_TOKEN, OWNER, REPO);
        config.timing = speeds.actions;
        let github = GithubSim::new(config);
        github.add_workflow(WorkflowSeed {
            file: DEPLOY_WORKFLOW.into(),
            name: "CI / Deploy".into(),
            jobs: PIPELINE
                .iter()
                .map(|(job, steps)| JobSeed {
                    name: (*job).to_owned(),
                    steps: steps.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
            push_branches: vec!["main".into(), "staging".into()],
        });
        github.add_workflow(WorkflowSeed {
            file: DB_ROLLBACK_WORKFLOW.into(),
            name: "Database rollback".into(),
            jobs: vec![JobSeed {
                name: "downgrade".into(),
                steps: [
                    "Set up job",
                    "Checkout",
                    "Install dependencies",
                    "alembic downgrade ${{ inputs.revision }}",
                    "Complete job",
                ]
                .map(str::to_owned)
                .to_vec(),
            }],
            push_branches: vec![],
        });

        let render = RenderSim::new(RENDER_KEY, speeds.render);
        let mut unhealthy = std::collections::BTreeSet::new();
        const OLDER_GAP_MINUTES: i64 = 4 * 60;
        let older_ago =
            |i: usize| scenario.commits[0].minutes_ago + (older - i) as i64 * OLDER_GAP_MINUTES;
        let t0 = commit_time(start, older_ago(0) + 60);
        for (env, branch, service) in ENVIRONMENTS {
            render.add_service(
                ServiceSeed {
                    id: service.to_owned(),
                    name: format!("{REPO}-{env}"),
                    branch: branch.name().to_owned(),
                    deploy_hook_key: crate::support::random_secret(24),
                },
                t0,
            );
        }

        // Commits, their runs and deploys, oldest first.
        let mut changelog = String::from("# Changelog\n");
        let mut revisions = 0;
        // Per environment: how many revisions its database has run.
        let mut migrated: BTreeMap<&str, usize> = BTreeMap::new();
        let mut staging_created = false;
        for i in 0..older {
            let at = commit_time(start, older_ago(i));
            let message = format!("Older change {}", i + 1);
            changelog.push_str(&format!("- {message}\n"));
            let sha = github.seed_commit(
                "main",
                CommitSeed {
                    message: message.clone(),
                    author: person(i),
                    at,
                    files: repo_files(&history, 0, &changelog),
                },
            );
            github
                .seed_run(RunSeed {
                    workflow_file: DEPLOY_WORKFLOW.into(),
                    branch: "main".into(),
                    head_sha: sha.clone(),
                    event: "push".into(),
                    created_at: at + Duration::minutes(1),
                    outcome: Outcome::Success,
                })
                .map_err(|e| e.to_string())?;
            render.add_commit(render::Commit {
                id: sha.clone(),
                message,
                created_at: at,
            });
            for (env, _, service) in ENVIRONMENTS {
                let lead = if env == "staging" { 6 } else { 9 };
                render.seed_deploy(service, &sha, "deploy_hook", at + Duration::minutes(lead));
            }
        }
        for commit in &scenario.commits {
            if let Some(r) = commit.adds_revision {
                revisions = revisions.max(r + 1);
            }
            changelog.push_str(&format!("- {}\n", commit.message));
            let at = commit_time(start, commit.minutes_ago);
            if commit.branch == Branch::Staging && !staging_created {
                let head = github.branch_head("main").ok_or("main has no commits")?;
                github
                    .create_branch("staging", &head)
                    .map_err(|e| e.to_string())?;
                staging_created = true;
            }
            let sha = github.seed_commit(
                commit.branch.name(),
                CommitSeed {
                    message: commit.message.clone(),
                    author: person(commit.author),
                    at,
                    files: repo_files(&history, revisions, &changelog),
                },
            );
            if matches!(commit.ci, CiOutcome::FailedAt { job: "smoke", .. }) {
                unhealthy.insert(sha.clone());
            }
            let outcome = match commit.ci {
                CiOutcome::Success => Outcome::Success,
                CiOutcome::FailedAt { job, step } => Outcome::FailAt {
                    job: job.into(),
                    step: step.into(),
                },
            };
            github
                .seed_run(RunSeed {
                    workflow_file: DEPLOY_WORKFLOW.into(),
                    branch: commit.branch.name().into(),
                    head_sha: sha.clone(),
                    event: "push".into(),
                    created_at: at + Duration::minutes(1),
                    outcome,
                })
                .map_err(|e| e.to_string())?;
            render.add_commit(render::Commit {
                id: sha.clone(),
                message: commit.message.clone(),
                created_at: at,
            });
            if commit.build_fails {
                render.fail_builds_of(&sha);
            }
            if !commit.ci.deployed() {
                continue;
            }
            // Main's commits reach staging first, then production; the
            // staging branch's own commit only staging.
            for (env, _, service) in ENVIRONMENTS {
                let lead = if env == "staging" { 6 } else { 9 };
                if env == "production" && commit.branch == Branch::Staging {
                    continue;
                }
                migrated.insert(env, revisions);
                render.seed_deploy(service, &sha, "deploy_hook", at + Duration::minutes(lead));
            }
        }

        let github_for_hook = github.clone();
        let mut world = Self {
            scenario,
            history,
            github,
            render,
            targets: BTreeMap::new(),
            github_webhook_secret: crate::support::random_secret(32),
            render_webhook_secret: render::new_webhook_secret(),
            unhealthy,
            backend_url: std::sync::OnceLock::new(),
            render_url: std::sync::OnceLock::new(),
        };
        if let Targets::Sqlite(dir) = &targets {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        for (env, _, _) in ENVIRONMENTS {
            let url = match &targets {
                Targets::Sqlite(dir) => format!(
                    "sqlite://{}",
                    dir.join(format!("target-{env}.sqlite")).display()
                ),
                Targets::Postgres { server, prefix } => {
                    postgres_database(server, &format!("{prefix}_{env}")).await?
                }
            };
            let db = TargetDb::open(&url).await.map_err(|e| e.to_string())?;
            db.ensure().await.map_err(|e| e.to_string())?;
            let applied = migrated.get(env).copied().unwrap_or(0);
            db.set_revisions(&alembic::heads(&world.history[..applied]))
                .await
                .map_err(|e| e.to_string())?;
            world.targets.insert(env.to_owned(), (url, db));
        }
        world.install_db_rollback(&github_for_hook);
        Ok(world)
    }

    /// A dispatched `db-rollback.yml` run with inputs `environment` and
    /// `revision` downgrades that environment's target database; a bad
    /// input or an impossible downgrade fails the run.
    fn install_db_rollback(&self, github: &GithubSim) {
        let history = Arc::new(self.history.clone());
        let targets: Arc<BTreeMap<String, TargetDb>> = Arc::new(
            self.targets
                .iter()
                .map(|(env, (_, db))| (env.clone(), db.clone()))
                .collect(),
        );
        github.on_run_completed(Arc::new(move |run: CompletedRun| {
            let history = history.clone();
            let targets = targets.clone();
            Box::pin(async move {
                if run.workflow_file != DB_ROLLBACK_WORKFLOW {
                    return Ok(());
                }
                let env = run
                    .inputs
                    .get("environment")
                    .ok_or("input `environment` is missing")?;
                let revision = run
                    .inputs
                    .get("revision")
                    .ok_or("input `revision` is missing")?;
                let db = targets
                    .get(env)
                    .ok_or_else(|| format!("no environment {env}"))?;
                let current = db.revisions().await.map_err(|e| e.to_string())?;
                let rows = alembic::downgrade_target_rows(&history, &current, revision)?;
                db.set_revisions(&rows).await.map_err(|e| e.to_string())
            })
        }));
    }
}

/// Creates `name` on the PostgreSQL server `server` unless it exists, and
/// returns its URL.
async fn postgres_database(server: &str, name: &str) -> Result<String, String> {
    use sqlx::Connection;
    let mut url = url::Url::parse(server).map_err(|e| format!("--target-postgres: {e}"))?;
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", url.host_str().unwrap_or("?")))?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    url.set_path(name);
    Ok(url.to_string())
}

const README: &str = "# data-simulator\n\nA FastAPI service that simulates data signals.\n\n\
Deployed to Render by `.github/workflows/deploy.yml`; migrations with Alembic in `backend/alembic`.\n";

const MAIN_PY: &str = r#"from fastapi import FastAPI

app = FastAPI(title="data-simulator")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
"#;

const PYPROJECT: &str = r#"[project]
name = "data-simulator"
version = "0.1.0"
requires-python = ">=3.12"
dependencies = ["fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg2-binary"]
"#;

const DEPLOY_YML: &str = r#"name: CI / Deploy
on:
  push:
    branches: [main, staging]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: astral-sh/setup-uv@v5
      - run: uv sync
      - run: uv run pytest
  alembic-drift:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: uv sync
      - run: uv run alembic check
  migrate:
    needs: alembic-drift
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: uv sync
      - run: uv run alembic upgrade head
        env:
          DATABASE_URL: ${{ secrets.DATABASE_URL }}
  deploy:
    needs: migrate
    runs-on: ubuntu-latest
    steps:
      - run: curl -fsS -X POST "${{ secrets.RENDER_DEPLOY_HOOK_URL }}"
  smoke:
    needs: deploy
    runs-on: ubuntu-latest
    steps:
      - run: curl -fsS "${{ vars.BACKEND_URL }}/health"
"#;

const DB_ROLLBACK_YML: &str = r#"name: Database rollback
on:
  workflow_dispatch:
    inputs:
      environment:
        required: true
        type: choice
        options: [production, staging]
      revision:
        description: Alembic revision to downgrade to
        required: true
jobs:
  downgrade:
    runs-on: ubuntu-latest
    environment: ${{ inputs.environment }}
    steps:
      - uses: actions/checkout@v4
      - run: uv sync
      - run: uv run alembic downgrade ${{ inputs.revision }}
        env:
          DATABASE_URL: ${{ secrets.DATABASE_URL }}
"#;

/// Where the simulators listen.
#[derive(Debug, Clone)]
pub struct Served {
    pub github: String,
    pub render: String,
    /// The sample app: `{backend}/{environment}/health`.
    pub backend: String,
}

impl World {
    /// Serves both simulators on free loopback ports, with their tickers.
    pub async fn serve(&self) -> std::io::Result<Served> {
        let github = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let render = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let served = Served {
            github: format!("http://{}", github.local_addr()?),
            render: format!("http://{}", render.local_addr()?),
            backend: format!("http://{}", backend.local_addr()?),
        };
        self.github.spawn(github);
        self.render.spawn(render);
        let app = super::backend::router(
            self.render.clone(),
            ENVIRONMENTS
                .iter()
                .map(|(env, _, service)| ((*env).to_owned(), (*service).to_owned()))
                .collect(),
            self.unhealthy.clone(),
        );
        tokio::spawn(async move {
            let _ = axum::serve(backend, app).await;
        });
        let _ = self.backend_url.set(served.backend.clone());
        let _ = self.render_url.set(served.render.clone());
        Ok(served)
    }

    /// Makes both simulators deliver their webhooks to the panel at `panel`
    /// (`http://host:port`), signed with the secrets in [`World::secrets`].
    pub fn send_webhooks_to(&self, panel: &str) {
        self.github.set_webhook(Some(super::github::WebhookTarget {
            url: format!("{panel}/webhooks/github"),
            secret: self.github_webhook_secret.clone(),
        }));
        if let Err(error) = self.render.set_webhook(
            &format!("{panel}/webhooks/render"),
            &self.render_webhook_secret,
        ) {
            tracing::error!(%error, "the simulated Render refused its webhook secret");
        }
    }

    /// The secret variables the generated configuration names, with the
    /// sandbox's values.
    pub fn secrets(&self) -> BTreeMap<String, String> {
        let mut secrets = BTreeMap::from([
            ("GITHUB_TOKEN".to_owned(), GITHUB_TOKEN.to_owned()),
            ("RENDER_API_KEY".to_owned(), RENDER_KEY.to_owned()),
            (
                "GITHUB_WEBHOOK_SECRET".to_owned(),
                self.github_webhook_secret.clone(),
            ),
            (
                "RENDER_WEBHOOK_SECRET".to_owned(),
                self.render_webhook_secret.clone(),
            ),
        ]);
        for (env, (url, _)) in &self.targets {
            let var = if env == "production" {
                "DS_DATABASE_URL"
            } else {
                "DS_STAGING_DATABASE_URL"
            };
            secrets.insert(var.to_owned(), url.clone());
        }
        if let Some(backend) = self.backend_url.get() {
            secrets.insert("BACKEND_URL".into(), format!("{backend}/production"));
            secrets.insert("STAGING_BACKEND_URL".into(), format!("{backend}/staging"));
        }
        // Production's `deploy_hook_env` in the generated config.
        let hook = self
            .render_url
            .get()
            .zip(self.render.deploy_hook_key(PRODUCTION_SERVICE));
        if let Some((render, key)) = hook {
            secrets.insert(
                "RENDER_DEPLOY_HOOK_URL".into(),
                format!("{render}/deploy/{PRODUCTION_SERVICE}?key={key}"),
            );
        }
        secrets
    }

    /// [`World::secrets`] as `NAME=value` lines for a shell or an env file.
    pub fn env_file(&self) -> String {
        let mut text =
            "# The sandbox's secrets for the generated flightdeck.toml (local simulators only).\n"
                .to_owned();
        for (name, value) in self.secrets() {
            text.push_str(&format!("{name}={value}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir() -> Dir {
        let path = std::env::temp_dir().join(format!("fd-world-{}", crate::support::random_id()));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    async fn get(client: &reqwest::Client, url: String, token: &str) -> Value {
        let response = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {url}");
        response.json().await.unwrap()
    }

    #[tokio::test]
    async fn a_dispatched_db_rollback_downgrades_the_target_database_or_fails_the_run() {
        crate::support::install_tls_provider();
        let dir = dir();
        let world = World::build(2, Speeds::quick(), Targets::Sqlite(dir.0.clone()))
            .await
            .unwrap();
        let served = world.serve().await.unwrap();
        let client = reqwest::Client::new();
        let repo = format!("{}/repos/{OWNER}/{REPO}", served.github);
        let lossy = world
            .history
            .iter()
            .find(|r| r.downgrade_loses_data() && r.down.len() == 1)
            .unwrap();
        let target = lossy.down[0].clone();
        let staging_before = world.targets["staging"].1.revisions().await.unwrap();

        let dispatch = |revision: String| {
            let client = client.clone();
            let url = format!("{repo}/actions/workflows/{DB_ROLLBACK_WORKFLOW}/dispatches");
            async move {
                let reply: Value = client
                    .post(url)
                    .bearer_auth(GITHUB_TOKEN)
                    .json(&serde_json::json!({
                        "ref": "main",
                        "inputs": {"environment": "production", "revision": revision},
                        "return_run_details": true
                    }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                reply["workflow_run_id"].as_u64().unwrap()
            }
        };
        let wait = |id: u64| {
            let client = client.clone();
            let url = format!("{repo}/actions/runs/{id}");
            async move {
                for _ in 0..200 {
                    let run = get(&client, url.clone(), GITHUB_TOKEN).await;
                    if run["status"] == "completed" {
                        return run["conclusion"].as_str().unwrap().to_owned();
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                panic!("run {id} did not complete");
            }
        };

        let id = dispatch(target.clone()).await;
        assert_eq!(wait(id).await, "success");
        assert_eq!(
            world.targets["production"].1.revisions().await.unwrap(),
            vec![target.clone()]
        );
        assert_eq!(
            world.targets["staging"].1.revisions().await.unwrap(),
            staging_before,
            "only production moved"
        );

        // Downgrading "to" a revision that is no longer applied fails the run
        // and leaves the table alone.
        let id = dispatch(lossy.id.clone()).await;
        assert_eq!(wait(id).await, "failure");
        assert_eq!(
            world.targets["production"].1.revisions().await.unwrap(),
            vec![target]
        );
    }

    #[tokio::test]
    async fn target_databases_can_live_on_postgresql() {
        use sqlx::Connection;
        let server = crate::scratch::pg_admin_url();
        let prefix = format!(
            "fd_test_world_{}",
            &crate::support::random_id()[..8].to_ascii_lowercase()
        );
        let targets = Targets::Postgres {
            server: server.clone(),
            prefix: prefix.clone(),
        };
        let world = World::build(3, Speeds::quick(), targets).await.unwrap();
        let (url, db) = &world.targets["production"];
        assert!(url.ends_with(&format!("/{prefix}_production")), "{url}");
        assert_eq!(
            db.revisions().await.unwrap(),
            alembic::heads(&world.history)
        );
        for (_, db) in world.targets.values() {
            db.close().await;
        }
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        for env in ["production", "staging"] {
            sqlx::query(&format!("DROP DATABASE \"{prefix}_{env}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn the_same_seed_builds_the_same_repository() {
        let (a, b) = (dir(), dir());
        let one = World::build(11, Speeds::quick(), Targets::Sqlite(a.0.clone()))
            .await
            .unwrap();
        let two = World::build(11, Speeds::quick(), Targets::Sqlite(b.0.clone()))
            .await
            .unwrap();
        assert_eq!(
            one.github.branch_head("main"),
            two.github.branch_head("main")
        );
        assert_eq!(
            one.github.branch_head("staging"),
            two.github.branch_head("staging")
        );
        let other = World::build(12, Speeds::quick(), Targets::Sqlite(a.0.join("other")))
            .await
            .unwrap();
        assert_ne!(
            one.github.branch_head("main"),
            other.github.branch_head("main")
        );
    }
}
