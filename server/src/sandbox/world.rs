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

/// The two environments: name, branch, Render service id.
pub const ENVIRONMENTS: [(&str, Branch, &str); 2] = [
    ("production", Branch::Main, "srv-sandbox-production"),
    ("staging", Branch::Staging, "srv-sandbox-staging"),
];

/// How fast things move; tests make it quick.
#[derive(Debug, Clone, Copy, Default)]
pub struct Speeds {
    pub actions: ActionsTiming,
    pub render: render::Timing,
}

/// Where each environment's target database lives.
#[derive(Debug, Clone)]
pub enum Targets {
    /// `target-<env>.sqlite` files in this folder.
    Sqlite(std::path::PathBuf),
    /// One database per environment (`flightdeck_sandbox_<env>`) on this
    /// PostgreSQL server (a URL naming any database on it).
    Postgres(String),
}

/// Everything the sandbox serves.
pub struct World {
    pub scenario: Scenario,
    pub history: Vec<RevisionSpec>,
    pub github: GithubSim,
    pub render: RenderSim,
    /// Environment name → (database URL, database).
    pub targets: BTreeMap<String, (String, TargetDb)>,
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
        let t0 = commit_time(start, scenario.commits[0].minutes_ago + 60);
        for (env, branch, service) in ENVIRONMENTS {
            render.add_service(
                ServiceSeed {
                    id: service.to_owned(),
                    name: format!("{REPO}-{env}"),
                    branch: branch.name().to_owned(),
                    deploy_hook_key: crate::identity::random_secret(24),
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
        };
        for (env, _, _) in ENVIRONMENTS {
            let url = match &targets {
                Targets::Sqlite(dir) => format!(
                    "sqlite://{}",
                    dir.join(format!("target-{env}.sqlite")).display()
                ),
                Targets::Postgres(server) => {
                    postgres_database(server, &format!("flightdeck_sandbox_{env}")).await?
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
}

impl World {
    /// Serves both simulators on free loopback ports, with their tickers.
    pub async fn serve(&self) -> std::io::Result<Served> {
        let github = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let render = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let served = Served {
            github: format!("http://{}", github.local_addr()?),
            render: format!("http://{}", render.local_addr()?),
        };
        self.github.spawn(github);
        self.render.spawn(render);
        Ok(served)
    }

    /// The secret variables the generated configuration names, with the
    /// sandbox's values, as `NAME=value` lines for a shell or an env file.
    pub fn env_file(&self) -> String {
        let mut lines = vec![
            "# The sandbox's secrets for the generated flightdeck.toml (local simulators only)."
                .to_owned(),
            format!("GITHUB_TOKEN={GITHUB_TOKEN}"),
            format!("RENDER_API_KEY={RENDER_KEY}"),
        ];
        for (env, (url, _)) in &self.targets {
            let var = if env == "production" {
                "DS_DATABASE_URL"
            } else {
                "DS_STAGING_DATABASE_URL"
            };
            lines.push(format!("{var}={url}"));
        }
        lines.join("\n") + "\n"
    }
}
