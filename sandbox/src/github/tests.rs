//! The simulated GitHub over real HTTP: every reply checked against
//! GitHub's published description (`shared/contracts/github-subset.json`),
//! webhook payloads against `github-webhooks-schemas-subset.json`, and the
//! real octocrab client pointed at it.

use super::*;
use crate::contract::{nullable_to_json_schema, read_contract, resolve, schema_errors};
use base64::Engine;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU32;

const TOKEN: &str = "ghp_sandbox_test_token";
const OWNER: &str = "cuentadesanti";
const REPO: &str = "data-simulator";

/// The REST spec with OpenAPI 3.0's `nullable` turned into JSON Schema.
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec = read_contract("github-subset.json");
        nullable_to_json_schema(&mut spec);
        spec
    })
}

/// Fails unless status, documented headers and body are what the spec
/// says `method path` answers.
fn assert_contract(method: &str, path: &str, status: u16, headers: &HeaderMap, body: &Value) {
    let spec = spec();
    let operation = &spec["paths"][path][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {path} is not in the contract"
    );
    let response = resolve(spec, &operation["responses"][status.to_string()]);
    assert!(
        response.is_object(),
        "{method} {path} does not document status {status}"
    );
    if let Some(documented) = response["headers"].as_object() {
        for name in documented.keys() {
            // `Link` only comes when there is another page (checked where paging is tested).
            if !name.eq_ignore_ascii_case("link") {
                assert!(
                    headers.contains_key(name.to_lowercase().as_str()),
                    "{method} {path} {status} lacks the header {name}"
                );
            }
        }
    }
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
    ] {
        assert!(headers.contains_key(name), "{method} {path} lacks {name}");
    }
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        assert!(
            body.is_null(),
            "{method} {path} {status} documents no body but got {body}"
        );
        return;
    };
    let mut root = schema.clone();
    root["components"] = spec["components"].clone();
    let errors = schema_errors(&root, body);
    assert!(
        errors.is_empty(),
        "{method} {path} {status} breaks the contract: {errors:?}\n{body:#}"
    );
}

/// Fails unless `body` matches the named schema of the contract's components.
fn assert_schema(name: &str, body: &Value) {
    let spec = spec();
    let mut root = spec["components"]["schemas"][name].clone();
    assert!(root.is_object(), "no schema named {name}");
    root["components"] = spec["components"].clone();
    let errors = schema_errors(&root, body);
    assert!(
        errors.is_empty(),
        "{body} is not a GitHub `{name}`: {errors:?}"
    );
}

/// The webhook schemas, one event at a time.
fn assert_webhook(definition: &str, payload: &Value) {
    static HOOKS: OnceLock<Value> = OnceLock::new();
    let hooks = HOOKS.get_or_init(|| read_contract("github-webhooks-schemas-subset.json"));
    let root = json!({ "$ref": format!("#/definitions/{definition}"), "definitions": hooks["definitions"] });
    let mut errors = schema_errors(&root, payload);
    if !errors.is_empty() && definition == "workflow_run_event" {
        // `oneOf` only says "none matched": name what the action's own schema misses.
        let action = payload["action"].as_str().unwrap_or_default();
        let own = json!({ "$ref": format!("#/definitions/workflow_run${action}"), "definitions": hooks["definitions"] });
        errors = schema_errors(&own, payload);
    }
    assert!(
        errors.is_empty(),
        "the {definition} payload breaks the schema: {errors:?}\n{payload:#}"
    );
}

fn person(login: &str) -> Person {
    Person {
        name: format!("{login} (dev)"),
        email: format!("{login}@example.com"),
        login: login.to_owned(),
    }
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

/// The shas and ids of the seeded scenario.
struct Seeded {
    /// main's commits, oldest first: c1..c4.
    main: Vec<String>,
    /// staging: c1, c2, then its own commit.
    staging: String,
    ci: u64,
    rollback: u64,
    passed_run: u64,
    /// Fails at `deploy` / `Deploy`, after `build` passed.
    failed_run: u64,
}

const INIT: &str = "\"\"\"init\"\"\"\nrevision = '0001'\ndown_revision = None\n";
const DATASETS: &str = "\"\"\"datasets\"\"\"\nrevision = '0002'\ndown_revision = '0001'\n";
const DROP: &str = "\"\"\"drop legacy column\"\"\"\nrevision = '0003'\ndown_revision = '0002'\n";

fn seed(sim: &GithubSim) -> Seeded {
    let t0 = now() - time::Duration::days(2);
    let versions = "backend/alembic/versions";
    let mut tree = files(&[
        ("README.md", "# data-simulator\n"),
        ("docs/old.md", "old notes\n"),
        ("backend/app/main.py", "app = FastAPI()\n"),
        (format!("{versions}/0001_init.py").as_str(), INIT),
    ]);
    let mut main = Vec::new();
    let commit =
        |branch: &str, message: &str, tree: &BTreeMap<String, String>, hours: i64, who: &str| {
            sim.seed_commit(
                branch,
                CommitSeed {
                    message: message.to_owned(),
                    author: person(who),
                    at: t0 + time::Duration::hours(hours),
                    files: tree.clone(),
                },
            )
        };
    main.push(commit(
        "main",
        "Initial FastAPI backend with Alembic",
        &tree,
        0,
        "ana",
    ));
    tree.insert(format!("{versions}/0002_datasets.py"), DATASETS.into());
    main.push(commit("main", "Add datasets table", &tree, 1, "ben"));
    sim.create_branch("staging", &main[1]).unwrap();
    let mut staging_tree = tree.clone();
    staging_tree.insert(
        "backend/app/main.py".into(),
        "app = FastAPI(debug=True)\n".into(),
    );
    let staging = commit("staging", "Debug on staging", &staging_tree, 2, "ben");
    tree.insert(
        "backend/app/main.py".into(),
        "app = FastAPI()\napp.include_router(datasets)\n".into(),
    );
    main.push(commit(
        "main",
        "Añade exportación CSV — señales",
        &tree,
        3,
        "ana",
    ));
    tree.insert(format!("{versions}/0003_drop.py"), DROP.into());
    tree.remove("docs/old.md");
    main.push(commit("main", "Drop legacy column", &tree, 4, "ana"));

    let ci = sim.add_workflow(WorkflowSeed {
        file: "ci.yml".into(),
        name: "CI".into(),
        jobs: vec![
            JobSeed {
                name: "build".into(),
                steps: vec!["Set up job".into(), "Run tests".into()],
            },
            JobSeed {
                name: "deploy".into(),
                steps: vec!["Set up job".into(), "Deploy".into()],
            },
        ],
        push_branches: vec!["main".into()],
    });
    let rollback = sim.add_workflow(WorkflowSeed {
        file: "db-rollback.yml".into(),
        name: "Database rollback".into(),
        jobs: vec![JobSeed {
            name: "downgrade".into(),
            steps: vec!["Set up job".into(), "Run alembic downgrade".into()],
        }],
        push_branches: vec![],
    });
    let run = |sha: &str, hours: i64, outcome: Outcome| {
        sim.seed_run(RunSeed {
            workflow_file: "ci.yml".into(),
            branch: "main".into(),
            head_sha: sha.to_owned(),
            event: "push".into(),
            created_at: t0 + time::Duration::hours(hours),
            outcome,
        })
        .unwrap()
    };
    let passed_run = run(&main[2], 3, Outcome::Success);
    let failed_run = run(
        &main[3],
        4,
        Outcome::FailAt {
            job: "deploy".into(),
            step: "Deploy".into(),
        },
    );
    Seeded {
        main,
        staging,
        ci,
        rollback,
        passed_run,
        failed_run,
    }
}

struct Running {
    sim: GithubSim,
    seeded: Seeded,
    base: String,
    http: reqwest::Client,
    covered: Mutex<HashSet<(String, String)>>,
}

fn fast() -> ActionsTiming {
    ActionsTiming {
        queue: Duration::from_millis(50),
        step: Duration::from_millis(50),
    }
}

/// Runs that stay queued for the length of a test.
fn slow() -> ActionsTiming {
    ActionsTiming {
        queue: Duration::from_secs(30),
        step: Duration::from_secs(1),
    }
}

impl Running {
    async fn start(timing: ActionsTiming) -> Running {
        Self::start_with(timing, None).await
    }

    async fn start_with(timing: ActionsTiming, webhook: Option<WebhookTarget>) -> Running {
        // reqwest needs a TLS provider installed even for plain http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = GithubSimConfig::new(TOKEN, OWNER, REPO);
        config.timing = timing;
        config.webhook = webhook;
        let sim = GithubSim::new(config);
        let seeded = seed(&sim);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        sim.spawn(listener);
        Running {
            sim,
            seeded,
            base,
            http: reqwest::Client::new(),
            covered: Mutex::new(HashSet::new()),
        }
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{OWNER}/{REPO}{rest}")
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
        etag: Option<&str>,
    ) -> (u16, HeaderMap, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, body)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, _, body) = self
            .call_with(method, path, body, Some(&format!("Bearer {TOKEN}")), None)
            .await;
        (status, body)
    }

    /// Calls `path` (under the repository unless it starts at the root) and
    /// checks the reply against the contract for `template`.
    async fn checked(
        &self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, HeaderMap, Value) {
        let (status, headers, reply) = self
            .call_with(method, path, body, Some(&format!("token {TOKEN}")), None)
            .await;
        assert_contract(method, template, status, &headers, &reply);
        if method == "GET" && status == 200 {
            assert!(headers.contains_key("etag"), "GET {path} has no ETag");
        }
        self.covered
            .lock()
            .unwrap()
            .insert((method.to_owned(), template.to_owned()));
        (status, headers, reply)
    }

    async fn run(&self, id: u64) -> Value {
        let template = "/repos/{owner}/{repo}/actions/runs/{run_id}";
        self.checked(
            "GET",
            template,
            &self.repo_path(&format!("/actions/runs/{id}")),
            None,
        )
        .await
        .2
    }

    async fn jobs(&self, id: u64, filter: &str) -> Vec<Value> {
        let template = "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs";
        let path = self.repo_path(&format!("/actions/runs/{id}/jobs?filter={filter}"));
        self.checked("GET", template, &path, None).await.2["jobs"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn wait_for_run(&self, id: u64, status: &str) -> Value {
        for _ in 0..400 {
            let run = self.run(id).await;
            if run["status"] == status {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("run {id} never reached {status}");
    }

    async fn dispatch(&self, workflow: &str, body: Value) -> (u16, Value) {
        let template = "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches";
        let path = self.repo_path(&format!("/actions/workflows/{workflow}/dispatches"));
        let (status, _, reply) = self.checked("POST", template, &path, Some(body)).await;
        (status, reply)
    }

    async fn dispatched_run(&self, workflow: &str, inputs: Value) -> u64 {
        let (status, reply) = self
            .dispatch(
                workflow,
                json!({ "ref": "main", "inputs": inputs, "return_run_details": true }),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        reply["workflow_run_id"].as_u64().unwrap()
    }
}

/// Every operation of the contract this simulator serves.
const SERVED: &[(&str, &str)] = &[
    ("GET", "/rate_limit"),
    ("GET", "/user"),
    ("GET", "/repos/{owner}/{repo}"),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}"),
    ("GET", "/repos/{owner}/{repo}/actions/runs"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}",
    ),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs",
    ),
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}"),
    ("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun"),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
    ),
    ("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel"),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel",
    ),
    ("GET", "/repos/{owner}/{repo}/actions/workflows"),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/workflows/{workflow_id}",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
    ),
    ("GET", "/repos/{owner}/{repo}/commits"),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}"),
    ("GET", "/repos/{owner}/{repo}/compare/{basehead}"),
    ("GET", "/repos/{owner}/{repo}/contents/{path}"),
    ("POST", "/repos/{owner}/{repo}/git/commits"),
    ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    ("POST", "/repos/{owner}/{repo}/git/trees"),
    ("GET", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}"),
    ("POST", "/repos/{owner}/{repo}/git/refs"),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
];

#[tokio::test]
async fn every_operation_served_answers_as_the_contract_says() {
    let r = Running::start(slow()).await;
    let s = &r.seeded;
    let p = |rest: &str| r.repo_path(rest);
    let t = |rest: &str| format!("/repos/{{owner}}/{{repo}}{rest}");

    r.checked("GET", "/rate_limit", "/rate_limit", None).await;
    r.checked("GET", "/user", "/user", None).await;
    let (status, _, repo) = r.checked("GET", &t(""), &p(""), None).await;
    assert_eq!(
        (status, repo["full_name"].as_str()),
        (200, Some("cuentadesanti/data-simulator"))
    );
    r.checked("GET", &t("/branches/{branch}"), &p("/branches/main"), None)
        .await;
    assert_eq!(
        r.checked("GET", &t("/branches/{branch}"), &p("/branches/nope"), None)
            .await
            .0,
        404
    );

    // Actions: reads.
    r.checked("GET", &t("/actions/runs"), &p("/actions/runs"), None)
        .await;
    r.checked(
        "GET",
        &t("/actions/runs/{run_id}"),
        &p(&format!("/actions/runs/{}", s.passed_run)),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/actions/runs/{run_id}/attempts/{attempt_number}"),
        &p(&format!("/actions/runs/{}/attempts/1", s.passed_run)),
        None,
    )
    .await;
    let jobs = r.jobs(s.passed_run, "latest").await;
    r.checked(
        "GET",
        &t("/actions/runs/{run_id}/attempts/{attempt_number}/jobs"),
        &p(&format!("/actions/runs/{}/attempts/1/jobs", s.passed_run)),
        None,
    )
    .await;
    let (status, _, _) = r
        .checked(
            "GET",
            &t("/actions/runs/{run_id}/attempts/{attempt_number}/jobs"),
            &p(&format!("/actions/runs/{}/attempts/9/jobs", s.passed_run)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    r.checked(
        "GET",
        &t("/actions/jobs/{job_id}"),
        &p(&format!("/actions/jobs/{}", jobs[0]["id"])),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/actions/workflows"),
        &p("/actions/workflows"),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/actions/workflows/{workflow_id}"),
        &p("/actions/workflows/ci.yml"),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/actions/workflows/{workflow_id}"),
        &p(&format!("/actions/workflows/{}", s.rollback)),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/actions/workflows/{workflow_id}/runs"),
        &p(&format!("/actions/workflows/{}/runs", s.ci)),
        None,
    )
    .await;

    // Actions: writes.
    let cancel = |id: u64, force: bool| {
        let what = if force { "force-cancel" } else { "cancel" };
        (
            t(&format!("/actions/runs/{{run_id}}/{what}")),
            p(&format!("/actions/runs/{id}/{what}")),
        )
    };
    let (template, path) = cancel(s.passed_run, false);
    assert_eq!(r.checked("POST", &template, &path, None).await.0, 409);
    let (template, path) = cancel(s.passed_run, true);
    assert_eq!(r.checked("POST", &template, &path, None).await.0, 409);
    let (status, _, body) = r
        .checked(
            "POST",
            &t("/actions/runs/{run_id}/rerun"),
            &p(&format!("/actions/runs/{}/rerun", s.passed_run)),
            None,
        )
        .await;
    assert_eq!((status, body), (201, json!({})));
    let (template, path) = cancel(s.passed_run, false);
    assert_eq!(r.checked("POST", &template, &path, None).await.0, 202);
    let (status, _, _) = r
        .checked(
            "POST",
            &t("/actions/runs/{run_id}/rerun-failed-jobs"),
            &p(&format!("/actions/runs/{}/rerun-failed-jobs", s.failed_run)),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let (template, path) = cancel(s.failed_run, true);
    assert_eq!(r.checked("POST", &template, &path, None).await.0, 202);
    assert_eq!(r.dispatch("ci.yml", json!({ "ref": "main" })).await.0, 204);
    assert_eq!(
        r.dispatch(
            "db-rollback.yml",
            json!({ "ref": "main", "inputs": { "revision": "0002" }, "return_run_details": true })
        )
        .await
        .0,
        200
    );

    // Repository.
    r.checked("GET", &t("/commits"), &p("/commits"), None).await;
    r.checked(
        "GET",
        &t("/commits/{ref}"),
        &p(&format!("/commits/{}", s.main[3])),
        None,
    )
    .await;
    assert_eq!(
        r.checked(
            "GET",
            &t("/commits/{ref}"),
            &p("/commits/deadbeefdead"),
            None
        )
        .await
        .0,
        422
    );
    r.checked(
        "GET",
        &t("/compare/{basehead}"),
        &p("/compare/main...staging"),
        None,
    )
    .await;
    assert_eq!(
        r.checked(
            "GET",
            &t("/compare/{basehead}"),
            &p("/compare/main...nope"),
            None
        )
        .await
        .0,
        404
    );
    r.checked(
        "GET",
        &t("/contents/{path}"),
        &p("/contents/README.md?ref=main"),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/contents/{path}"),
        &p("/contents/backend/alembic/versions"),
        None,
    )
    .await;
    assert_eq!(
        r.checked(
            "GET",
            &t("/contents/{path}"),
            &p("/contents/nope.txt"),
            None
        )
        .await
        .0,
        404
    );

    // Git Data.
    let (status, _, tree) = r.checked("POST", &t("/git/trees"), &p("/git/trees"), Some(json!({
        "base_tree": r.sim.world().git.commits[&s.main[3]].tree,
        "tree": [{ "path": "backend/alembic/versions/0004_revert.py", "mode": "100644", "type": "blob", "content": "revision = '0004'\n" }],
    }))).await;
    assert_eq!(status, 201);
    let tree_sha = tree["sha"].as_str().unwrap().to_owned();
    r.checked(
        "GET",
        &t("/git/trees/{tree_sha}"),
        &p(&format!("/git/trees/{tree_sha}")),
        None,
    )
    .await;
    r.checked(
        "GET",
        &t("/git/trees/{tree_sha}"),
        &p(&format!("/git/trees/{tree_sha}?recursive=1")),
        None,
    )
    .await;
    assert_eq!(r.checked("POST", &t("/git/trees"), &p("/git/trees"), Some(json!({ "tree": [{ "path": "x", "mode": "100644", "type": "blob", "sha": "0000" }] }))).await.0, 422);
    let (status, _, commit) = r
        .checked(
            "POST",
            &t("/git/commits"),
            &p("/git/commits"),
            Some(json!({
                "message": "Revert: drop legacy column", "tree": tree_sha, "parents": [s.main[3]],
            })),
        )
        .await;
    assert_eq!(status, 201);
    let new_sha = commit["sha"].as_str().unwrap().to_owned();
    assert_eq!(
        r.checked(
            "POST",
            &t("/git/commits"),
            &p("/git/commits"),
            Some(json!({ "message": "x", "tree": "nope" }))
        )
        .await
        .0,
        422
    );
    r.checked(
        "GET",
        &t("/git/commits/{commit_sha}"),
        &p(&format!("/git/commits/{new_sha}")),
        None,
    )
    .await;
    assert_eq!(
        r.checked(
            "GET",
            &t("/git/commits/{commit_sha}"),
            &p("/git/commits/nope"),
            None
        )
        .await
        .0,
        404
    );
    r.checked("GET", &t("/git/ref/{ref}"), &p("/git/ref/heads/main"), None)
        .await;
    assert_eq!(
        r.checked("GET", &t("/git/ref/{ref}"), &p("/git/ref/heads/nope"), None)
            .await
            .0,
        404
    );
    r.checked(
        "GET",
        &t("/git/matching-refs/{ref}"),
        &p("/git/matching-refs/heads/"),
        None,
    )
    .await;
    let (status, _, _) = r
        .checked(
            "POST",
            &t("/git/refs"),
            &p("/git/refs"),
            Some(json!({ "ref": "refs/heads/revert-0003", "sha": new_sha })),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        r.checked(
            "POST",
            &t("/git/refs"),
            &p("/git/refs"),
            Some(json!({ "ref": "refs/heads/revert-0003", "sha": new_sha }))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        r.checked(
            "PATCH",
            &t("/git/refs/{ref}"),
            &p("/git/refs/heads/staging"),
            Some(json!({ "sha": new_sha }))
        )
        .await
        .0,
        422
    );
    assert_eq!(
        r.checked(
            "PATCH",
            &t("/git/refs/{ref}"),
            &p("/git/refs/heads/main"),
            Some(json!({ "sha": new_sha }))
        )
        .await
        .0,
        200
    );

    // Pulls.
    let (status, _, pull) = r.checked("POST", &t("/pulls"), &p("/pulls"), Some(json!({ "title": "Revert 0003", "head": "revert-0003", "base": "staging", "body": "Rolls back the drop." }))).await;
    assert_eq!((status, pull["number"].as_u64()), (201, Some(1)));
    assert_eq!(
        r.checked(
            "POST",
            &t("/pulls"),
            &p("/pulls"),
            Some(json!({ "title": "Again", "head": "revert-0003", "base": "staging" }))
        )
        .await
        .0,
        422
    );
    let (_, _, pulls) = r
        .checked(
            "GET",
            &t("/pulls"),
            &p("/pulls?state=open&base=staging"),
            None,
        )
        .await;
    assert_eq!(pulls.as_array().unwrap().len(), 1);

    let (status, headers, body) = r
        .call_with("GET", "/user", None, Some("Bearer wrong"), None)
        .await;
    assert_contract("GET", "/user", status, &headers, &body);
    assert_eq!(status, 401);

    let covered = r.covered.lock().unwrap().clone();
    let missing: Vec<_> = SERVED
        .iter()
        .filter(|(m, p)| !covered.contains(&((*m).to_owned(), (*p).to_owned())))
        .collect();
    assert!(
        missing.is_empty(),
        "operations served but not checked: {missing:?}"
    );
    assert_eq!(
        r.sim.calls(),
        CallCounts {
            dispatches: 2,
            reruns: 1,
            reruns_failed: 1,
            cancels: 2,
            refs_created: 1,
            ref_updates: 1,
            commits_created: 1,
            trees_created: 1,
            pulls_created: 1
        }
    );
}

#[test]
fn the_contract_check_rejects_a_reply_the_spec_would_reject() {
    let headers = {
        let mut h = HeaderMap::new();
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
        ] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        h
    };
    let bad = json!({ "id": "not a number", "status": "exploded" });
    let result = std::panic::catch_unwind(|| {
        assert_contract(
            "GET",
            "/repos/{owner}/{repo}/actions/runs/{run_id}",
            200,
            &headers,
            &bad,
        )
    });
    assert!(
        result.is_err(),
        "a wrong type and missing fields must fail the check"
    );
    let bad_job_status = std::panic::catch_unwind(|| {
        let mut job = spec()["components"]["examples"]["job"]["value"].clone();
        // GitHub's example predates `created_at` becoming required.
        job["created_at"] = json!("2020-01-20T17:42:40Z");
        assert_contract(
            "GET",
            "/repos/{owner}/{repo}/actions/jobs/{job_id}",
            200,
            &headers,
            &job,
        );
        job["status"] = json!("exploded");
        assert_contract(
            "GET",
            "/repos/{owner}/{repo}/actions/jobs/{job_id}",
            200,
            &headers,
            &job,
        );
    });
    assert!(
        bad_job_status.is_err(),
        "GitHub's own example passes and an unknown status fails"
    );
    let hook = std::panic::catch_unwind(|| {
        assert_webhook(
            "push$event",
            &json!({ "ref": "refs/heads/main", "surprise": true }),
        )
    });
    assert!(
        hook.is_err(),
        "a push without its fields must fail the webhook check"
    );
}

#[tokio::test]
async fn a_dispatched_run_goes_queued_in_progress_completed_with_jobs_and_steps_in_order() {
    let r = Running::start(ActionsTiming {
        queue: Duration::from_millis(300),
        step: Duration::from_millis(100),
    })
    .await;
    let id = r.dispatched_run("ci.yml", json!({})).await;
    let first = r.run(id).await;
    assert_eq!(first["status"], "queued");
    assert_eq!(first["event"], "workflow_dispatch");
    assert_eq!(first["head_sha"], r.seeded.main[3]);
    assert_eq!(
        first["html_url"],
        format!("https://github.com/{OWNER}/{REPO}/actions/runs/{id}")
    );
    assert!(
        first["url"].as_str().unwrap().starts_with(&r.base),
        "API urls point at the simulator"
    );
    let mut seen = vec![first["status"].as_str().unwrap().to_owned()];
    for _ in 0..400 {
        let status = r.run(id).await["status"].as_str().unwrap().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, ["queued", "in_progress", "completed"]);
    let done = r.run(id).await;
    assert_eq!(done["conclusion"], "success");
    let jobs = r.jobs(id, "latest").await;
    let names: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["build", "deploy"]);
    let mut previous_end = String::new();
    for job in &jobs {
        assert_eq!(
            (job["status"].as_str(), job["conclusion"].as_str()),
            (Some("completed"), Some("success"))
        );
        assert!(
            job["started_at"].as_str().unwrap() >= previous_end.as_str(),
            "jobs run one after the other"
        );
        for step in job["steps"].as_array().unwrap() {
            let (start, end) = (
                step["started_at"].as_str().unwrap(),
                step["completed_at"].as_str().unwrap(),
            );
            assert!(
                start >= previous_end.as_str() && end >= start,
                "steps run in order: {jobs:#?}"
            );
            previous_end = end.to_owned();
        }
    }
}

#[tokio::test]
async fn a_seeded_failure_skips_the_rest_and_rerunning_failed_jobs_keeps_the_passed_ones() {
    let r = Running::start(fast()).await;
    let id = r.seeded.failed_run;
    let failed = r.run(id).await;
    assert_eq!(
        (failed["status"].as_str(), failed["conclusion"].as_str()),
        (Some("completed"), Some("failure"))
    );
    let jobs = r.jobs(id, "latest").await;
    assert_eq!(jobs[0]["conclusion"], "success");
    assert_eq!(jobs[1]["conclusion"], "failure");
    let steps = jobs[1]["steps"].as_array().unwrap();
    assert_eq!(steps[1]["conclusion"], "failure");
    let build_id = jobs[0]["id"].clone();

    let (status, _) = r
        .call(
            "POST",
            &r.repo_path(&format!("/actions/runs/{id}/rerun-failed-jobs")),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let rerun = r.run(id).await;
    assert_eq!(rerun["run_attempt"], 2);
    assert_ne!(rerun["status"], "completed", "a re-run starts over");
    assert!(
        rerun["previous_attempt_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/runs/{id}/attempts/1"))
    );
    let done = r.wait_for_run(id, "completed").await;
    assert_eq!(done["conclusion"], "success");
    let latest = r.jobs(id, "latest").await;
    assert_eq!(
        latest[0]["id"], build_id,
        "the passed job is kept, not re-run"
    );
    assert_eq!(latest[0]["run_attempt"], 1);
    assert_eq!(latest[1]["run_attempt"], 2);
    assert_eq!(latest[1]["conclusion"], "success");
    let all = r.jobs(id, "all").await;
    let attempts: Vec<u64> = all
        .iter()
        .map(|j| j["run_attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(
        attempts,
        [1, 1, 2],
        "filter=all lists earlier attempts' jobs too"
    );
    let (_, first) = r
        .call(
            "GET",
            &r.repo_path(&format!("/actions/runs/{id}/attempts/1")),
            None,
        )
        .await;
    assert_eq!(
        first["conclusion"], "failure",
        "attempt 1 stays as it ended"
    );
    assert_eq!(r.sim.calls().reruns_failed, 1);
}

#[tokio::test]
async fn a_rerun_is_a_new_attempt_with_new_jobs_and_follows_the_outcome_policy() {
    let r = Running::start(fast()).await;
    let id = r.seeded.passed_run;
    let before: Vec<Value> = r
        .jobs(id, "latest")
        .await
        .iter()
        .map(|j| j["id"].clone())
        .collect();
    r.sim.set_outcome_for(
        &r.seeded.main[2],
        Outcome::FailAt {
            job: "build".into(),
            step: "Run tests".into(),
        },
    );
    let (status, _) = r
        .call(
            "POST",
            &r.repo_path(&format!("/actions/runs/{id}/rerun")),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = r
        .call(
            "POST",
            &r.repo_path(&format!("/actions/runs/{id}/rerun")),
            None,
        )
        .await;
    assert_eq!(status, 403, "a running workflow is not re-run: {body}");
    let done = r.wait_for_run(id, "completed").await;
    assert_eq!(
        (done["run_attempt"].as_u64(), done["conclusion"].as_str()),
        (Some(2), Some("failure"))
    );
    let jobs = r.jobs(id, "latest").await;
    assert!(
        jobs.iter().all(|j| !before.contains(&j["id"])),
        "a full re-run runs every job again"
    );
    assert_eq!(
        jobs[1]["conclusion"], "skipped",
        "jobs after a failed one are skipped"
    );
    assert_eq!(r.sim.calls().reruns, 1);
}

#[tokio::test]
async fn cancel_stops_a_run_in_progress_and_a_completed_run_is_a_409() {
    let r = Running::start(slow()).await;
    let id = r.dispatched_run("ci.yml", json!({})).await;
    let path = r.repo_path(&format!("/actions/runs/{id}/cancel"));
    let (status, body) = r.call("POST", &path, None).await;
    assert_eq!((status, body), (202, json!({})));
    let run = r.run(id).await;
    assert_eq!(
        (run["status"].as_str(), run["conclusion"].as_str()),
        (Some("completed"), Some("cancelled"))
    );
    assert!(
        r.jobs(id, "latest")
            .await
            .iter()
            .all(|j| j["conclusion"] == "cancelled")
    );
    let (status, body) = r.call("POST", &path, None).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["message"],
        "Cannot cancel a workflow run that is completed."
    );
    assert_eq!(r.sim.calls().cancels, 1);
}

#[tokio::test]
async fn a_matching_etag_is_a_304_that_costs_nothing_and_a_stale_one_is_a_200() {
    let r = Running::start(fast()).await;
    let path = r.repo_path(&format!("/actions/runs/{}", r.seeded.passed_run));
    let auth = format!("Bearer {TOKEN}");
    let (status, headers, body) = r.call_with("GET", &path, None, Some(&auth), None).await;
    assert_eq!(status, 200);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let used = |h: &HeaderMap| {
        h["x-ratelimit-used"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    let used_before = used(&headers);
    let (status, headers, empty) = r
        .call_with("GET", &path, None, Some(&auth), Some(&etag))
        .await;
    assert_eq!((status, empty), (304, Value::Null));
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(
        used(&headers),
        used_before,
        "a 304 does not count against the rate limit"
    );
    let (status, headers, again) = r
        .call_with("GET", &path, None, Some(&auth), Some("\"stale\""))
        .await;
    assert_eq!((status, &again), (200, &body));
    assert_eq!(used(&headers), used_before + 1);
    assert_eq!(
        headers["x-ratelimit-remaining"].to_str().unwrap(),
        (5000 - used_before - 1).to_string()
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_401_bad_credentials() {
    let r = Running::start(fast()).await;
    for auth in [Some("Bearer nope"), Some("token nope"), None] {
        let (status, headers, body) = r
            .call_with("GET", &r.repo_path("/actions/runs"), None, auth, None)
            .await;
        assert_eq!(status, 401);
        assert_eq!(body["message"], "Bad credentials");
        assert!(headers.contains_key("x-ratelimit-limit"));
    }
    let (status, _) = r.call("GET", "/repos/someone/else", None).await;
    assert_eq!(status, 404, "other repositories are invisible");
}

#[tokio::test]
async fn a_non_fast_forward_ref_update_needs_force() {
    let r = Running::start(fast()).await;
    let s = &r.seeded;
    // A commit on top of c1: not a descendant of main's head.
    let tree = r.sim.world().git.commits[&s.main[0]].tree.clone();
    let (status, commit) = r
        .call(
            "POST",
            &r.repo_path("/git/commits"),
            Some(json!({ "message": "Reset to init", "tree": tree, "parents": [s.main[0]] })),
        )
        .await;
    assert_eq!(status, 201);
    let sha = commit["sha"].as_str().unwrap().to_owned();
    let path = r.repo_path("/git/refs/heads/main");
    let (status, body) = r.call("PATCH", &path, Some(json!({ "sha": sha }))).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "Update is not a fast forward");
    assert_eq!(
        r.sim.branch_head("main").as_deref(),
        Some(s.main[3].as_str()),
        "the refused update changed nothing"
    );
    let (status, body) = r
        .call("PATCH", &path, Some(json!({ "sha": sha, "force": true })))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["object"]["sha"], sha);
    assert_eq!(r.sim.branch_head("main"), Some(sha));
    assert_eq!(r.sim.calls().ref_updates, 1);
}

#[tokio::test]
async fn dispatch_validates_inputs_and_ref_and_can_return_the_run() {
    let r = Running::start(slow()).await;
    let many: serde_json::Map<String, Value> =
        (0..26).map(|i| (format!("k{i}"), json!("v"))).collect();
    let path = r.repo_path("/actions/workflows/ci.yml/dispatches");
    // The contract documents no 422 here, though GitHub sends one; the body is its validation error.
    let (status, body) = r
        .call(
            "POST",
            &path,
            Some(json!({ "ref": "main", "inputs": many })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_schema("validation-error", &body);
    let (status, body) = r
        .call("POST", &path, Some(json!({ "ref": "no-such-branch" })))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "No ref found for: no-such-branch");
    let (status, _, _) = r
        .call_with(
            "POST",
            &r.repo_path("/actions/workflows/nope.yml/dispatches"),
            Some(json!({ "ref": "main" })),
            Some(&format!("Bearer {TOKEN}")),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(r.sim.calls().dispatches, 0);

    let (status, details) = r.dispatch("db-rollback.yml", json!({ "ref": "staging", "inputs": { "revision": "0001", "dry_run": false }, "return_run_details": true })).await;
    assert_eq!(status, 200);
    let id = details["workflow_run_id"].as_u64().unwrap();
    assert_eq!(
        details["html_url"],
        format!("https://github.com/{OWNER}/{REPO}/actions/runs/{id}")
    );
    let run = r.run(id).await;
    assert_eq!(
        (run["event"].as_str(), run["head_branch"].as_str()),
        (Some("workflow_dispatch"), Some("staging"))
    );
    assert_eq!(run["head_sha"], r.seeded.staging);
    assert_eq!(run["workflow_id"], r.seeded.rollback);
    let (status, none) = r.dispatch("ci.yml", json!({ "ref": "main" })).await;
    assert_eq!((status, none), (204, Value::Null));
    assert_eq!(r.sim.calls().dispatches, 2);
}

#[tokio::test]
async fn runs_are_paged_with_a_link_header_and_filtered() {
    let r = Running::start(slow()).await;
    for _ in 0..3 {
        r.dispatched_run("ci.yml", json!({})).await;
    }
    let auth = format!("Bearer {TOKEN}");
    let mut next = Some(format!(
        "{}{}",
        r.base,
        r.repo_path("/actions/runs?per_page=2")
    ));
    let mut ids = Vec::new();
    let mut links = Vec::new();
    while let Some(url) = next.take() {
        let response = r
            .http
            .get(&url)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["total_count"], 5);
        ids.extend(
            body["workflow_runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| run["id"].as_u64().unwrap()),
        );
        next = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| l[1..l.find('>').unwrap()].to_owned());
        links.push(link);
    }
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert!(
        links[0].contains("rel=\"next\"")
            && links[0].contains("rel=\"last\"")
            && links[0].contains("page=3")
    );
    assert!(!links[0].contains("rel=\"prev\""));
    for rel in ["prev", "next", "last", "first"] {
        assert!(links[1].contains(&format!("rel=\"{rel}\"")), "{}", links[1]);
    }
    assert!(links[2].contains("rel=\"prev\"") && !links[2].contains("rel=\"next\""));
    assert!(links[0].contains("per_page=2"), "other parameters are kept");

    for (query, expected) in [
        ("status=failure", 1),
        ("status=success", 1),
        ("status=completed", 2),
        ("status=queued", 3),
        ("event=workflow_dispatch", 3),
        ("event=push", 2),
        ("branch=staging", 0),
    ] {
        let (_, body) = r
            .call("GET", &r.repo_path(&format!("/actions/runs?{query}")), None)
            .await;
        assert_eq!(body["total_count"], expected, "{query}");
    }
    let sha = r.seeded.main[2].clone();
    let path = r.repo_path(&format!("/actions/runs?head_sha={sha}"));
    assert_eq!(
        r.call("GET", &path, None).await.1["workflow_runs"][0]["id"],
        r.seeded.passed_run
    );
}

#[tokio::test]
async fn the_completion_hook_runs_once_before_a_dispatched_run_succeeds() {
    let r = Running::start(fast()).await;
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (calls.clone(), seen.clone());
    r.sim
        .on_run_completed(run_completed_hook(move |run: CompletedRun| {
            let (c, s) = (c.clone(), s.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push(run);
                Ok(())
            }
        }));
    let id = r
        .dispatched_run("db-rollback.yml", json!({ "revision": "0002" }))
        .await;
    let run = r.wait_for_run(id, "completed").await;
    assert_eq!(run["conclusion"], "success");
    // More ticks and reads do not call it again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.run(id).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let recorded = seen.lock().unwrap()[0].clone();
    assert_eq!(
        recorded,
        CompletedRun {
            workflow_file: "db-rollback.yml".into(),
            inputs: BTreeMap::from([("revision".to_owned(), "0002".to_owned())]),
            head_sha: r.seeded.main[3].clone(),
            head_branch: "main".into(),
            run_id: id,
            run_attempt: 1,
        }
    );
    // Seeded (not dispatched) runs never call it.
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_completion_hook_makes_the_run_fail_at_its_last_step() {
    let r = Running::start(fast()).await;
    r.sim
        .on_run_completed(run_completed_hook(|_run: CompletedRun| async {
            Err("alembic: no such revision".to_owned())
        }));
    let id = r
        .dispatched_run("db-rollback.yml", json!({ "revision": "9999" }))
        .await;
    let run = r.wait_for_run(id, "completed").await;
    assert_eq!(run["conclusion"], "failure");
    let jobs = r.jobs(id, "latest").await;
    assert_eq!(jobs[0]["conclusion"], "failure");
    assert_eq!(jobs[0]["steps"][1]["conclusion"], "failure");
    assert_eq!(jobs[0]["steps"][0]["conclusion"], "success");
}

#[tokio::test]
async fn commits_compare_and_contents_describe_the_seeded_history() {
    let r = Running::start(fast()).await;
    let s = &r.seeded;
    let (_, commits) = r.call("GET", &r.repo_path("/commits?sha=main"), None).await;
    let shas: Vec<&str> = commits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = s.main.iter().map(String::as_str).collect();
    expected.reverse();
    assert_eq!(shas, expected, "newest first, only main's history");
    let (_, touched) = r
        .call(
            "GET",
            &r.repo_path("/commits?path=backend/alembic/versions"),
            None,
        )
        .await;
    let touched: Vec<&str> = touched
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(
        touched,
        [s.main[3].as_str(), s.main[1].as_str(), s.main[0].as_str()]
    );
    let (status, page) = r
        .call("GET", &r.repo_path("/commits?per_page=1&page=2"), None)
        .await;
    assert_eq!(
        (status, page[0]["sha"].as_str()),
        (200, Some(s.main[2].as_str()))
    );

    let (_, commit) = r
        .call(
            "GET",
            &r.repo_path(&format!("/commits/{}", &s.main[3][..10])),
            None,
        )
        .await;
    let statuses: BTreeMap<String, String> = commit["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        BTreeMap::from([
            (
                "backend/alembic/versions/0003_drop.py".to_owned(),
                "added".to_owned()
            ),
            ("docs/old.md".to_owned(), "removed".to_owned()),
        ])
    );
    assert_eq!(commit["stats"]["additions"], 3);
    assert_eq!(commit["stats"]["deletions"], 1);

    let rr = &r;
    let compare = |spec: String| {
        let path = rr.repo_path(&format!("/compare/{spec}"));
        async move { rr.call("GET", &path, None).await.1 }
    };
    let diverged = compare("main...staging".into()).await;
    assert_eq!(
        (
            diverged["status"].as_str(),
            diverged["ahead_by"].as_u64(),
            diverged["behind_by"].as_u64()
        ),
        (Some("diverged"), Some(1), Some(2))
    );
    assert_eq!(diverged["merge_base_commit"]["sha"], s.main[1]);
    let ahead = compare(format!("{}...main", s.main[1])).await;
    assert_eq!(
        (ahead["status"].as_str(), ahead["total_commits"].as_u64()),
        (Some("ahead"), Some(2))
    );
    let listed: Vec<&str> = ahead["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [s.main[2].as_str(), s.main[3].as_str()],
        "chronological"
    );
    let files: BTreeMap<&str, &str> = ahead["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap(),
                f["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        files,
        BTreeMap::from([
            ("backend/alembic/versions/0003_drop.py", "added"),
            ("backend/app/main.py", "modified"),
            ("docs/old.md", "removed")
        ])
    );
    assert_eq!(
        compare(format!("main...{}", s.main[1])).await["status"],
        "behind"
    );
    assert_eq!(compare("main...main".into()).await["status"], "identical");

    let (_, file) = r
        .call(
            "GET",
            &r.repo_path(&format!(
                "/contents/backend/alembic/versions/0002_datasets.py?ref={}",
                s.main[1]
            )),
            None,
        )
        .await;
    assert_eq!(
        (file["type"].as_str(), file["encoding"].as_str()),
        (Some("file"), Some("base64"))
    );
    let content = file["content"].as_str().unwrap();
    assert!(content.lines().all(|l| l.len() <= 60) && content.contains('\n'));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(content.replace('\n', ""))
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), DATASETS);
    let (_, tree) = r
        .call(
            "GET",
            &r.repo_path(&format!("/git/trees/{}?recursive=1", s.main[1])),
            None,
        )
        .await;
    let entry = tree["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "backend/alembic/versions/0002_datasets.py")
        .unwrap()
        .clone();
    assert_eq!(
        file["sha"], entry["sha"],
        "the contents sha is the blob sha"
    );
    let (_, dir) = r
        .call(
            "GET",
            &r.repo_path("/contents/backend/alembic/versions?ref=staging"),
            None,
        )
        .await;
    let names: Vec<&str> = dir
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0001_init.py", "0002_datasets.py"]);
    let (_, root) = r.call("GET", &r.repo_path("/contents/"), None).await;
    let kinds: Vec<(&str, &str)> = root
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("README.md", "file"), ("backend", "dir")]);
}

#[test]
fn a_seeded_history_has_the_same_shas_every_time() {
    let build = || {
        let sim = GithubSim::new(GithubSimConfig::new(TOKEN, OWNER, REPO));
        let seeded = seed(&sim);
        (seeded.main, seeded.staging)
    };
    let (first, second) = (build(), build());
    assert_eq!(first, second);
    assert!(
        first
            .0
            .iter()
            .all(|sha| sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()))
    );
    let unique: HashSet<&String> = first.0.iter().collect();
    assert_eq!(unique.len(), 4);
}

#[tokio::test]
async fn webhook_payloads_match_the_schemas_and_their_signatures_verify() {
    let r = Running::start(fast()).await;
    let s = &r.seeded;
    let push = r
        .sim
        .push_payload("refs/heads/main", Some(s.main[1].as_str()), &s.main[3]);
    assert_webhook("push$event", &push);
    let pushed: Vec<&str> = push["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(pushed, [s.main[2].as_str(), s.main[3].as_str()]);
    assert_eq!(push["head_commit"]["removed"], json!(["docs/old.md"]));
    let created = r.sim.push_payload("refs/heads/staging", None, &s.staging);
    assert_webhook("push$event", &created);
    assert_eq!(
        created["before"],
        "0000000000000000000000000000000000000000"
    );

    let id = r.dispatched_run("ci.yml", json!({})).await;
    for action in ["requested", "in_progress"] {
        let payload = r.sim.workflow_run_payload(id, action).unwrap();
        assert_webhook("workflow_run_event", &payload);
    }
    r.wait_for_run(id, "completed").await;
    let completed = r.sim.workflow_run_payload(id, "completed").unwrap();
    assert_webhook("workflow_run_event", &completed);
    assert_eq!(completed["workflow_run"]["conclusion"], "success");
    assert_eq!(completed["workflow"]["path"], ".github/workflows/ci.yml");

    let body = serde_json::to_vec(&completed).unwrap();
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(b"It's a Secret to Everybody")
            .unwrap();
    hmac::Mac::update(&mut mac, &body);
    let independent = format!(
        "sha256={}",
        crate::support::hex(&hmac::Mac::finalize(mac).into_bytes())
    );
    assert_eq!(
        crate::signing::github_signature(b"It's a Secret to Everybody", &body),
        independent
    );
    assert_ne!(
        crate::signing::github_signature(b"a wrong secret", &body),
        independent
    );
    // GitHub's documented test vector.
    assert_eq!(
        crate::signing::github_signature(b"It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn webhooks_are_delivered_signed_in_order_with_unique_ids() {
    let (url, received) = receiver().await;
    let secret = "whsec-github-test";
    let r = Running::start_with(
        fast(),
        Some(WebhookTarget {
            url,
            secret: secret.into(),
        }),
    )
    .await;
    // A fast-forward push through the API, then a dispatch that nobody polls.
    let tree = r.sim.world().git.commits[&r.seeded.main[3]].tree.clone();
    let (_, commit) = r.call("POST", &r.repo_path("/git/commits"), Some(json!({ "message": "Empty follow-up", "tree": tree, "parents": [r.seeded.main[3]] }))).await;
    let sha = commit["sha"].as_str().unwrap().to_owned();
    let (status, _) = r
        .call(
            "PATCH",
            &r.repo_path("/git/refs/heads/main"),
            Some(json!({ "sha": sha })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, details) = r
        .dispatch(
            "db-rollback.yml",
            json!({ "ref": "main", "return_run_details": true }),
        )
        .await;
    assert_eq!(status, 200);
    let dispatched = details["workflow_run_id"].as_u64().unwrap();

    let mut deliveries = Vec::new();
    for _ in 0..400 {
        deliveries = received.lock().unwrap().clone();
        let done = deliveries
            .iter()
            .filter(|(h, b)| {
                h["x-github-event"] == "workflow_run"
                    && serde_json::from_slice::<Value>(b).unwrap()["action"] == "completed"
            })
            .count();
        // The push also started ci.yml (it listens to main): two runs complete.
        if done == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut ids = HashSet::new();
    let mut run_actions: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut pushes = 0;
    for (headers, body) in &deliveries {
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes()).unwrap();
        hmac::Mac::update(&mut mac, body);
        let expected = format!(
            "sha256={}",
            crate::support::hex(&hmac::Mac::finalize(mac).into_bytes())
        );
        assert_eq!(headers["x-hub-signature-256"].to_str().unwrap(), expected);
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("GitHub-Hookshot/")
        );
        assert!(headers.contains_key("x-github-hook-id"));
        assert!(
            ids.insert(headers["x-github-delivery"].to_str().unwrap().to_owned()),
            "delivery ids are unique"
        );
        let payload: Value = serde_json::from_slice(body).unwrap();
        match headers["x-github-event"].to_str().unwrap() {
            "push" => {
                assert_webhook("push$event", &payload);
                assert_eq!(
                    (payload["before"].as_str(), payload["after"].as_str()),
                    (Some(r.seeded.main[3].as_str()), Some(sha.as_str()))
                );
                pushes += 1;
            }
            "workflow_run" => {
                assert_webhook("workflow_run_event", &payload);
                let id = payload["workflow_run"]["id"].as_u64().unwrap();
                run_actions
                    .entry(id)
                    .or_default()
                    .push(payload["action"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(pushes, 1);
    assert_eq!(run_actions.len(), 2, "{run_actions:?}");
    for actions in run_actions.values() {
        assert_eq!(actions, &["requested", "in_progress", "completed"]);
    }
    assert!(run_actions.contains_key(&dispatched));
}

#[tokio::test]
async fn octocrab_reads_and_writes_through_its_typed_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = Running::start(fast()).await;
    let s = &r.seeded;
    let octo = octocrab::Octocrab::builder()
        .base_uri(r.base.as_str())
        .unwrap()
        .personal_token(TOKEN.to_owned())
        .build()
        .unwrap();

    let runs = octo
        .workflows(OWNER, REPO)
        .list_all_runs()
        .branch("main")
        .per_page(10u8)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.total_count, Some(2));
    assert_eq!(runs.items[0].id.0, s.failed_run);
    assert_eq!(runs.items[0].conclusion.as_deref(), Some("failure"));
    let jobs = octo
        .workflows(OWNER, REPO)
        .list_jobs(octocrab::models::RunId(s.failed_run))
        .send()
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 2);
    assert_eq!(
        jobs.items[1].steps[1].conclusion,
        Some(octocrab::models::workflows::Conclusion::Failure)
    );
    let job = octo
        .workflows(OWNER, REPO)
        .get_job(jobs.items[0].id)
        .await
        .unwrap();
    assert_eq!(job.name, "build");

    let commits = octo
        .repos(OWNER, REPO)
        .list_commits()
        .sha("main")
        .path("backend/alembic/versions")
        .send()
        .await
        .unwrap();
    assert_eq!(commits.items.len(), 3);
    assert_eq!(commits.items[0].sha, s.main[3]);
    let comparison = octo
        .commits(OWNER, REPO)
        .compare(s.main[1].clone(), "main")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            comparison.ahead_by,
            comparison.behind_by,
            comparison.total_commits
        ),
        (2, 0, 2)
    );
    let mut content = octo
        .repos(OWNER, REPO)
        .get_content()
        .path("backend/alembic/versions/0003_drop.py")
        .r#ref("main")
        .send()
        .await
        .unwrap();
    let file = content.take_items().remove(0);
    assert_eq!(file.sha.len(), 40);
    assert_eq!(file.decoded_content().as_deref(), Some(DROP));
    let listing = octo
        .repos(OWNER, REPO)
        .get_content()
        .path("backend/alembic/versions")
        .send()
        .await
        .unwrap();
    assert_eq!(listing.items.len(), 3);

    let base_tree = r.sim.world().git.commits[&s.main[3]].tree.clone();
    let tree = octo
        .repos(OWNER, REPO)
        .create_tree(vec![
            octocrab::models::git::CreateTreeEntry::new(
                "backend/alembic/versions/0003_drop.py",
                "100644",
                "blob",
            )
            .with_content("# reverted\n"),
        ])
        .base_tree(base_tree)
        .send()
        .await
        .unwrap();
    let commit = octo
        .repos(OWNER, REPO)
        .create_git_commit_object("Revert 0003 contents", tree.sha.clone())
        .parents(vec![s.main[3].clone()])
        .send()
        .await
        .unwrap();
    assert_eq!(commit.parents[0].sha.as_deref(), Some(s.main[3].as_str()));
    let updated = octo
        .repos(OWNER, REPO)
        .update_ref(
            &octocrab::params::repos::Reference::Branch("main".into()),
            commit.sha.clone(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.ref_field, "refs/heads/main");
    assert_eq!(r.sim.branch_head("main"), Some(commit.sha.clone()));
    let reference: Value = octo
        .get(
            format!("/repos/{OWNER}/{REPO}/git/ref/heads/main"),
            None::<&()>,
        )
        .await
        .unwrap();
    assert_eq!(reference["object"]["sha"], commit.sha);

    octo.actions()
        .create_workflow_dispatch(OWNER, REPO, "db-rollback.yml", "main")
        .inputs(json!({ "revision": "0002" }))
        .send()
        .await
        .unwrap();
    let dispatched = octo
        .workflows(OWNER, REPO)
        .list_runs("db-rollback.yml")
        .event("workflow_dispatch")
        .send()
        .await
        .unwrap();
    assert_eq!(dispatched.items.len(), 1);
    assert_eq!(dispatched.items[0].head_sha, commit.sha);
    let details: Value = octo
        .post(
            format!("/repos/{OWNER}/{REPO}/actions/workflows/ci.yml/dispatches"),
            Some(&json!({ "ref": "main", "return_run_details": true })),
        )
        .await
        .unwrap();
    let run = octo
        .workflows(OWNER, REPO)
        .get(octocrab::models::RunId(
            details["workflow_run_id"].as_u64().unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(run.event, "workflow_dispatch");
    assert_eq!(
        r.sim.calls(),
        CallCounts {
            dispatches: 2,
            ref_updates: 1,
            commits_created: 1,
            trees_created: 1,
            ..CallCounts::default()
        }
    );
}

#[tokio::test]
async fn faults_hit_only_their_route_and_octocrab_sees_them() {
    use crate::faults::{Fault, FaultKind};
    let r = Running::start(fast()).await;
    let runs = r.repo_path("/actions/runs");
    r.sim
        .faults()
        .set(
            "GET /repos/{owner}/{repo}/actions/runs",
            Fault::times(FaultKind::ServerError(502), 1),
        )
        .unwrap();
    let (status, _) = r.call("GET", &runs, None).await;
    assert_eq!(status, 502);
    let (status, _) = r.call("GET", &r.repo_path("/commits"), None).await;
    assert_eq!(status, 200, "other routes are unaffected");
    let (status, _) = r.call("GET", &runs, None).await;
    assert_eq!(status, 200, "a fault for one call is used up");

    r.sim
        .faults()
        .set(
            "GET /repos/{owner}/{repo}/actions/runs",
            Fault::always(FaultKind::RateLimited),
        )
        .unwrap();
    let (status, headers, _) = r
        .call_with("GET", &runs, None, Some(&format!("Bearer {TOKEN}")), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let octocrab = octocrab::Octocrab::builder()
        .base_uri(r.base.as_str())
        .unwrap()
        .personal_token(TOKEN.to_owned())
        .build()
        .unwrap();
    let refused = octocrab
        .workflows(OWNER, REPO)
        .list_all_runs()
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, octocrab::Error::GitHub { source, .. } if source.status_code == 403),
        "{refused:?}"
    );

    // Switched at run time over HTTP, as a test in another process would.
    let cleared = r
        .http
        .delete(format!("{}/_sandbox/faults", r.base))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    assert!(
        octocrab
            .workflows(OWNER, REPO)
            .list_all_runs()
            .send()
            .await
            .is_ok()
    );
}
