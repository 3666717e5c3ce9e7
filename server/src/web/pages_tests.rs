//! The release pages, the REST reads and `/events`, over real HTTP: the
//! whole router on a loopback port over a SQLite store filled with the
//! records the sync writes, and a person signed in with a password.

use super::{AppState, Change, router};
use crate::alembic::{DataLoss, DataLossKind, Revision};
use crate::audit::RequestMeta;
use crate::config::Config;
use crate::control::ControlPlane;
use crate::identity::Actor;
use crate::releases::{CommitRecord, DeployRecord, JobRecord, MigrationsAt, RunRecord, StepRecord};
use crate::store::tests::TestStore;
use app::model::Role;
use http::{StatusCode, header};
use serde_json::Value;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const CONFIG: &str = r#"
[github]
owner = "acme"
repo = "shop"

[[environment]]
name = "production"
branch = "main"
deploy_workflow = "deploy.yml"
render_service_id = "srv-prod"
database_url_env = "FD_TEST_UNSET_DATABASE_URL"
migration_runner = { kind = "workflow", workflow = "db-rollback.yml" }
smoke_url_env = "FD_TEST_UNSET_BACKEND_URL"

[[environment]]
name = "staging"
branch = "staging"
deploy_workflow = "deploy.yml"
render_service_id = "srv-staging"
database_url_env = "FD_TEST_UNSET_STAGING_DATABASE_URL"
migration_runner = { kind = "command", command = "uv run alembic downgrade {revision}" }
smoke_url_env = "FD_TEST_UNSET_STAGING_BACKEND_URL"
"#;

const PASSWORD: &str = "a long enough password";
const GOOD_SHA: &str = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BAD_SHA: &str = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const LIVE_SHA: &str = "3333333ccccccccccccccccccccccccccccccccc";
const RATE_LIMITED: &str = "GitHub is rate limiting us; the next try is in 60 s";

/// A panel serving on a loopback port, and what the tests need of it.
struct Panel {
    base: String,
    changes: tokio::sync::broadcast::Sender<Change>,
    client: reqwest::Client,
    store: Option<TestStore>,
}

impl Panel {
    async fn start() -> Panel {
        crate::integrations::install_tls_provider();
        let t = TestStore::new("sqlite").await;
        let config = Config::from_toml(CONFIG).unwrap();
        let control = ControlPlane::new(t.store.clone(), Arc::new(config));
        for (name, role) in [
            ("vera", Role::Viewer),
            ("lee", Role::Lead),
            ("ada", Role::Admin),
        ] {
            control
                .add_user(
                    &Actor::system("test"),
                    &RequestMeta::default(),
                    name,
                    role,
                    Some(PASSWORD.into()),
                )
                .await
                .unwrap();
        }
        fill(&control).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(control, addr, crate::sync::Upstreams::default());
        let changes = state.changes.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Panel {
            base: format!("http://{addr}"),
            changes,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store: Some(t),
        }
    }

    /// Signs the viewer in and returns the session cookie.
    async fn sign_in(&self) -> String {
        self.sign_in_as("vera").await
    }

    /// Signs `name` in and returns the session cookie.
    async fn sign_in_as(&self, name: &str) -> String {
        let reply = self
            .client
            .post(format!("{}/auth/login", self.base))
            .header(header::ORIGIN, &self.base)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("name", name), ("password", PASSWORD), ("next", "/")])
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::SEE_OTHER);
        let cookie = reply
            .headers()
            .get(header::SET_COOKIE)
            .expect("a session cookie")
            .to_str()
            .unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// A page's status and HTML for a signed-in person, without the
    /// comment markers hydration uses between text nodes.
    async fn page(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let reply = self.get(path, Some(cookie)).await;
        (
            reply.status(),
            reply.text().await.unwrap().replace("<!>", ""),
        )
    }

    /// Locks `env` through the REST API as the holder of `cookie`.
    async fn lock(&self, env: &str, cookie: &str, reason: &str) -> StatusCode {
        self.client
            .put(format!("{}/api/v1/environments/{env}/lock", self.base))
            .header(header::ORIGIN, &self.base)
            .header(header::COOKIE, cookie)
            .json(&serde_json::json!({ "reason": reason }))
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn stop(mut self) {
        self.store.take().unwrap().drop_all().await;
    }
}

fn ago(hours: i64, minutes: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::hours(hours) - Duration::minutes(minutes)
}

fn commit(
    sha: &str,
    message: &str,
    author: &str,
    migrations: Option<MigrationsAt>,
) -> CommitRecord {
    CommitRecord {
        sha: sha.into(),
        message: message.into(),
        author: author.into(),
        author_login: None,
        committed_at: ago(4, 0),
        html_url: format!("https://github.com/acme/shop/commit/{sha}"),
        migrations,
    }
}

fn deploy(id: &str, sha: &str, status: &str, hours: i64) -> DeployRecord {
    DeployRecord {
        id: id.into(),
        environment: "production".into(),
        service_id: "srv-prod".into(),
        commit_sha: sha.into(),
        commit_message: String::new(),
        status: status.into(),
        trigger: "deploy_hook".into(),
        created_at: ago(hours, 0),
        updated_at: ago(hours, 0),
        finished_at: Some(ago(hours, 0) + Duration::seconds(150)),
    }
}

fn step(number: u32, name: &str, start: OffsetDateTime, seconds: i64) -> StepRecord {
    StepRecord {
        number,
        name: name.into(),
        status: "completed".into(),
        conclusion: Some("success".into()),
        started_at: Some(start),
        completed_at: Some(start + Duration::seconds(seconds)),
    }
}

fn run(id: u64, sha: &str, hours: i64) -> RunRecord {
    let start = ago(hours, 10);
    let job = |name: &str, offset: i64, seconds: i64| JobRecord {
        name: name.into(),
        status: "completed".into(),
        conclusion: Some("success".into()),
        started_at: Some(start + Duration::seconds(offset)),
        completed_at: Some(start + Duration::seconds(offset + seconds)),
        html_url: format!("https://github.com/acme/shop/actions/runs/{id}/job/{offset}"),
        steps: vec![
            step(1, "Set up job", start + Duration::seconds(offset), 5),
            step(
                2,
                &format!("Run {name}"),
                start + Duration::seconds(offset + 5),
                85,
            ),
        ],
    };
    RunRecord {
        id,
        workflow_file: "deploy.yml".into(),
        name: format!("Deploy {}", &sha[..7]),
        head_sha: sha.into(),
        head_branch: "main".into(),
        event: "push".into(),
        status: "completed".into(),
        conclusion: Some("success".into()),
        run_attempt: 1,
        created_at: start,
        updated_at: start + Duration::seconds(200),
        html_url: format!("https://github.com/acme/shop/actions/runs/{id}"),
        jobs: vec![
            job("test", 0, 90),
            job("deploy", 90, 90),
            job("smoke", 180, 20),
        ],
    }
}

fn revision(id: &str, down: &[&str], message: &str, data_loss: &[&str]) -> Revision {
    Revision {
        id: id.into(),
        down: down.iter().map(|d| (*d).to_owned()).collect(),
        branch_labels: vec![],
        depends_on: vec![],
        message: message.into(),
        create_date: Some("2026-11-01 10:00:00".into()),
        data_loss: data_loss
            .iter()
            .map(|detail| DataLoss {
                line: 20,
                kind: DataLossKind::DropColumn,
                detail: (*detail).into(),
            })
            .collect(),
        file: format!("migrations/versions/{id}.py"),
    }
}

/// Production: a good release, then one whose build failed (with a
/// hostile commit message), then the live one, whose migrations are two
/// ahead of the database; GitHub's last sync failed. Staging: nothing yet.
/// The migrations directory of the live commit: a1 → b2 → c3.
fn migrations() -> MigrationsAt {
    MigrationsAt {
        revisions: vec![
            revision("a1", &[], "create datasets", &[]),
            revision(
                "b2",
                &["a1"],
                "add legacy score",
                &["drops column datasets.legacy_score"],
            ),
            revision("c3", &["b2"], "add search index", &[]),
        ],
        problems: vec![],
    }
}

async fn fill(control: &ControlPlane) {
    let store = control.store();
    let migrations = migrations();
    store
        .upsert_commits(&[
            commit(GOOD_SHA, "Add the datasets page", "Ada", None),
            commit(
                BAD_SHA,
                "<script>alert(1)</script>\n\nbody",
                "Mallory",
                None,
            ),
            commit(LIVE_SHA, "Ship the search page", "Grace", Some(migrations)),
        ])
        .await
        .unwrap();
    store
        .upsert_deploys(&[
            deploy("dep-good", GOOD_SHA, "deactivated", 3),
            deploy("dep-bad", BAD_SHA, "build_failed", 2),
            deploy("dep-live", LIVE_SHA, "live", 1),
        ])
        .await
        .unwrap();
    store
        .upsert_runs(&[run(101, GOOD_SHA, 3), run(103, LIVE_SHA, 1)])
        .await
        .unwrap();
    store
        .set_database_state("production", &["a1".to_owned()])
        .await
        .unwrap();
    store
        .record_sync("production", "github_runs", Ok(Some("\"etag\"")))
        .await
        .unwrap();
    store
        .record_sync("production", "github_runs", Err(RATE_LIMITED))
        .await
        .unwrap();
}

/// A status shown by colour (`tone`) and by word.
fn shown(word: &str, tone: &str) -> String {
    format!(
        "data-status=\"{word}\" class=\"status status-{tone}\">{}</span>",
        word.replace('_', " ")
    )
}

/// The text between the element carrying `marker` and the next `</tr>` or `</li>`.
fn row<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {html}"));
    let rest = &html[start..];
    let end = ["</tr>", "</li>"]
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test]
async fn the_overview_shows_each_environment_live_ci_database_last_good_and_stale_data() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let (status, html) = panel.page("/", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"env-filter\""), "{html}");
    // Islands: the browser gets the live refresh and the filter box to
    // hydrate, never the page's data a second time as hydration data.
    assert!(
        html.contains("<leptos-island data-component=\"LiveRefresh"),
        "{html}"
    );
    assert!(
        html.contains("<leptos-island data-component=\"EnvironmentFilter"),
        "{html}"
    );
    // The commit message twice: its hover title and its text, and no copy
    // as hydration data.
    assert_eq!(html.matches("Ship the search page").count(), 2, "{html}");
    let production = row(&html, "data-env=\"production\"");
    assert!(production.contains("Ship the search page"), "{production}");
    assert!(production.contains("3333333"), "{production}");
    assert!(production.contains("Grace"), "{production}");
    assert!(production.contains(&shown("live", "good")), "{production}");
    // It finished 57.5 minutes ago.
    assert!(production.contains("57 min ago"), "{production}");
    assert!(production.contains("<time datetime=\""), "{production}");
    assert!(production.contains(" UTC\""), "{production}");
    // The CI state of the branch head, linked to the run.
    assert!(production.contains("href=\"/runs/103\""), "{production}");
    assert!(
        production.contains(&shown("success", "good")),
        "{production}"
    );
    // The database against the live code.
    assert!(production.contains("2 revisions pending"), "{production}");
    assert!(production.contains(">a1</code>"), "{production}");
    assert!(production.contains(">c3</code>"), "{production}");
    // The failed build is skipped: the last good release is the one before.
    let last_good = &production[production.find("class=\"last-good\"").unwrap()..];
    assert!(last_good.contains("Add the datasets page"), "{last_good}");
    assert!(
        production.contains("GitHub data is stale since "),
        "{production}"
    );
    assert!(production.contains(RATE_LIMITED), "{production}");
    assert!(production.contains("href=\"/env/production/migrations\""));
    let staging = row(&html, "data-env=\"staging\"");
    assert!(staging.contains("Nothing is live yet."), "{staging}");
    assert!(!staging.contains("stale"), "{staging}");
    panel.stop().await;
}

#[tokio::test]
async fn the_timeline_marks_the_live_release_and_says_why_a_release_is_bad_with_messages_as_text() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let (status, html) = panel.page("/env/production", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let live = row(&html, "data-deploy=\"dep-live\"");
    assert!(live.contains("live now"), "{live}");
    assert!(live.contains("Ship the search page") && live.contains("Grace"));
    assert!(live.contains(&shown("good", "good")), "{live}");
    assert!(
        live.contains("went live, pipeline and smoke test passed"),
        "{live}"
    );
    assert!(live.contains("<code>c3</code>"), "{live}");
    assert!(
        live.contains(
            "href=\"https://dashboard.render.com/web/srv-prod/deploys/dep-live\" rel=\"noopener noreferrer\""
        ),
        "{live}"
    );
    let bad = row(&html, "data-deploy=\"dep-bad\"");
    assert!(!bad.contains("live now"), "{bad}");
    assert!(bad.contains(&shown("bad", "bad")), "{bad}");
    assert!(
        bad.contains("the deploy failed on Render (build failed)"),
        "{bad}"
    );
    assert!(
        bad.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{bad}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(html.contains(RATE_LIMITED));
    assert!(
        html.contains("href=\"/env/production\" class=\"refresh\">Refresh</a>"),
        "{html}"
    );
    panel.stop().await;
}

#[tokio::test]
async fn the_runs_and_a_run_show_jobs_and_steps_with_status_durations_and_github_links() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let (status, html) = panel.page("/env/production/runs", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let newest = row(&html, "data-run=\"103\"");
    assert!(newest.contains("href=\"/runs/103\""), "{newest}");
    assert!(newest.contains(&shown("success", "good")), "{newest}");
    assert!(newest.contains("3 min 20 s"), "{newest}");
    assert!(html.find("data-run=\"103\"") < html.find("data-run=\"101\""));

    let (status, html) = panel.page("/runs/103", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(
        "href=\"https://github.com/acme/shop/actions/runs/103\" rel=\"noopener noreferrer\""
    ));
    let smoke = &html[html.find("data-job=\"smoke\"").unwrap()..];
    assert!(smoke.contains("20 s"), "{smoke}");
    let step = row(smoke, "data-step=\"2\"");
    assert!(
        step.contains("Run smoke") && step.contains("1 min 25 s"),
        "{step}"
    );
    assert!(step.contains(&shown("success", "good")), "{step}");

    let (status, html) = panel.page("/runs/999", &cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("run 999 was not found"), "{html}");
    let (status, _) = panel.page("/runs/not-a-number", &cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    panel.stop().await;
}

#[tokio::test]
async fn the_deploys_page_lists_deploys_with_status_trigger_and_render_links() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let (status, html) = panel.page("/env/production/deploys", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let bad = row(&html, "data-deploy=\"dep-bad\"");
    assert!(bad.contains(&shown("build_failed", "bad")), "{bad}");
    assert!(
        bad.contains("deploy hook") && bad.contains("2 min 30 s"),
        "{bad}"
    );
    assert!(bad.contains("&lt;script&gt;"), "{bad}");
    assert!(row(&html, "data-deploy=\"dep-live\"").contains("live now"));
    panel.stop().await;
}

#[tokio::test]
async fn the_migrations_page_shows_the_graph_parents_first_with_pending_and_data_loss_marks() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let (status, html) = panel.page("/env/production/migrations", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("2 revisions pending"), "{html}");
    let order: Vec<_> = ["a1", "b2", "c3"]
        .iter()
        .map(|id| html.find(&format!("data-revision=\"{id}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    let a1 = row(&html, "data-revision=\"a1\"");
    assert!(a1.contains(">current<") && a1.contains(">applied<"), "{a1}");
    assert!(
        !a1.contains(">pending<") && a1.contains("base revision"),
        "{a1}"
    );
    let b2 = row(&html, "data-revision=\"b2\"");
    assert!(b2.contains(">pending<") && b2.contains("after a1"), "{b2}");
    assert!(b2.contains("Downgrading it destroys data:"), "{b2}");
    assert!(b2.contains("drops column datasets.legacy_score"), "{b2}");
    let c3 = row(&html, "data-revision=\"c3\"");
    assert!(c3.contains(">head<") && c3.contains(">pending<"), "{c3}");
    assert!(!c3.contains("destroys data"), "{c3}");
    panel.stop().await;
}

#[tokio::test]
async fn leads_see_a_database_ahead_of_the_live_code_and_the_way_to_bring_it_back() {
    let panel = Panel::start().await;
    // As after a code-only rollback: the database at a revision the live
    // code does not contain.
    panel
        .store
        .as_ref()
        .unwrap()
        .store
        .set_database_state("production", &["d4".to_owned()])
        .await
        .unwrap();
    let lead = panel.sign_in_as("lee").await;
    let viewer = panel.sign_in().await;
    for path in ["/", "/env/production/migrations"] {
        let (status, html) = panel.page(path, &lead).await;
        assert_eq!(status, StatusCode::OK);
        let offer = row(&html, "class=\"database-ahead\"");
        assert!(
            offer.contains("Database ahead of the live code → bring it to"),
            "{path}: {offer}"
        );
        assert!(offer.contains("<code>c3</code>"), "{path}: {offer}");
        assert!(
            offer.contains("/env/production/rollback?target=dep-live&amp;database=on"),
            "{path}: {offer}"
        );
        let (_, html) = panel.page(path, &viewer).await;
        assert!(
            !html.contains("database-ahead"),
            "{path}: only leads get the offer"
        );
    }
    // Staging's database was never read: no offer on its card.
    let (_, html) = panel.page("/", &lead).await;
    assert!(!row(&html, "data-env=\"staging\"").contains("database-ahead"));
    panel.stop().await;
}

#[tokio::test]
async fn an_unknown_environment_is_a_404_page_and_a_404_in_the_api() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    for path in [
        "/env/nowhere",
        "/env/nowhere/runs",
        "/env/nowhere/deploys",
        "/env/nowhere/migrations",
    ] {
        let (status, html) = panel.page(path, &cookie).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            html.contains("the environment nowhere was not found"),
            "{html}"
        );
        assert!(html.contains("<h1>Nothing here</h1>"), "{html}");
    }
    let reply = panel
        .get("/api/v1/environments/nowhere/releases", Some(&cookie))
        .await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    panel.stop().await;
}

#[tokio::test]
async fn the_rest_api_returns_the_view_models_and_refuses_anonymous_callers() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let json = |path: &'static str| {
        let panel = &panel;
        let cookie = &cookie;
        async move {
            let reply = panel.get(path, Some(cookie)).await;
            assert_eq!(reply.status(), StatusCode::OK, "{path}");
            reply.json::<Value>().await.unwrap()
        }
    };
    let releases = json("/api/v1/environments/production/releases").await;
    assert_eq!(releases["environment"]["name"], "production");
    assert_eq!(releases["stale"][0]["reason"], RATE_LIMITED);
    let items = releases["items"].as_array().unwrap();
    let ids: Vec<_> = items
        .iter()
        .map(|r| r["deploy_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dep-live", "dep-bad", "dep-good"]);
    assert_eq!(items[0]["is_live"], true);
    assert_eq!(items[1]["verdict"], "bad");
    assert_eq!(
        items[1]["commit_message"],
        "<script>alert(1)</script>\n\nbody"
    );

    let runs = json("/api/v1/environments/production/runs").await;
    let run_ids: Vec<_> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(run_ids, [103, 101]);
    assert_eq!(runs["items"][0]["jobs"][2]["steps"][1]["name"], "Run smoke");

    let deploys = json("/api/v1/environments/production/deploys").await;
    assert_eq!(deploys["items"][1]["deploy_status"], "build_failed");

    let migrations = json("/api/v1/environments/production/migrations").await;
    assert_eq!(
        migrations["items"]["pending"],
        serde_json::json!(["b2", "c3"])
    );
    assert_eq!(
        migrations["items"]["revisions"][1]["data_loss"],
        serde_json::json!(["drops column datasets.legacy_score"])
    );

    let staging = json("/api/v1/environments/staging/deploys").await;
    assert_eq!(staging["items"], serde_json::json!([]));

    let anonymous = panel
        .get("/api/v1/environments/production/releases", None)
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    panel.stop().await;
}

#[tokio::test]
async fn a_signed_in_browser_receives_changes_as_server_sent_events_and_anonymous_gets_401() {
    let panel = Panel::start().await;
    let anonymous = panel.get("/events", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let cookie = panel.sign_in().await;
    let mut stream = panel.get("/events", Some(&cookie)).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "text/event-stream"
    );
    // The handler subscribed before it answered, so this reaches the stream.
    let receivers = panel
        .changes
        .send(Change::new("production", "deploys"))
        .unwrap();
    assert_eq!(receivers, 1);
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = stream
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(
        text,
        "event: change\ndata: {\"environment\":\"production\",\"what\":\"deploys\"}\n\n"
    );
    drop(stream);
    panel.stop().await;
}

/// Posts a same-origin form with the session cookie.
async fn post_form(
    panel: &Panel,
    path: &str,
    cookie: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    panel
        .client
        .post(format!("{}{path}", panel.base))
        .header(header::ORIGIN, &panel.base)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_audit_page_filters_by_url_pages_by_keyset_opens_an_event_and_marks_a_refusal_reviewed()
{
    let panel = Panel::start().await;
    let viewer = panel.sign_in().await;
    let lead = panel.sign_in_as("lee").await;
    // A viewer's refused lock on production: a queue item.
    assert_eq!(
        panel.lock("production", &viewer, "curious").await,
        StatusCode::FORBIDDEN
    );

    // Only leads see the trail; the nav shows them the way.
    let (status, html) = panel.page("/audit", &viewer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(!html.contains("review-queue"));
    let (status, html) = panel.page("/audit", &lead).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"nav-audit\""));
    assert!(html.contains("Needs review (1)"), "{html}");
    assert!(html.contains("environment.lock refused"), "{html}");
    assert!(html.contains("never verified yet"));

    // Filters live in the URL and narrow the rows.
    let (status, html) = panel
        .page(
            "/audit?actor=vera&action=environment.lock&outcome=denied&since=2020-01-01",
            &lead,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        html.matches("data-action=\"environment.lock\"").count(),
        1,
        "{html}"
    );
    assert!(!html.contains("data-action=\"auth.login\""));
    assert!(html.contains("/api/v1/audit/export?actor=vera&amp;action=environment.lock&amp;outcome=denied&amp;since=2020-01-01&amp;format=csv"), "{html}");
    let (status, html) = panel.page("/audit?since=yesterday", &lead).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("since"), "{html}");

    // The REST list pages by cursor; a page of two and the next.
    let page: Value = panel
        .get("/api/v1/audit?limit=2", Some(&lead))
        .await
        .json()
        .await
        .unwrap();
    let first: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(first.len(), 2);
    assert!(first[0] > first[1], "newest first");
    let cursor = page["next_cursor"].as_i64().unwrap();
    let next: Value = panel
        .get(
            &format!("/api/v1/audit?limit=2&cursor={cursor}"),
            Some(&lead),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["events"][0]["seq"].as_i64().unwrap(), first[1] - 1);
    let bad = panel.get("/api/v1/audit?limit=0", Some(&lead)).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let denied = panel.get("/api/v1/audit", Some(&viewer)).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);

    // The refusal's detail, then "mark reviewed" as a plain form.
    let refusal: Value = panel
        .get(
            "/api/v1/audit?action=environment.lock&outcome=denied",
            Some(&lead),
        )
        .await
        .json()
        .await
        .unwrap();
    let seq = refusal["events"][0]["seq"].as_i64().unwrap();
    let (status, html) = panel.page(&format!("/audit/{seq}"), &lead).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"mark-reviewed\""), "{html}");
    assert!(
        html.contains("environment.lock needs the deployer role"),
        "{html}"
    );
    let item = format!("event:{seq}");
    let blank = post_form(
        &panel,
        "/actions/audit/review",
        &lead,
        &[("item", &item), ("note", ""), ("seq", &seq.to_string())],
    )
    .await;
    assert_eq!(blank.status(), StatusCode::SEE_OTHER);
    assert!(
        blank.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("error=")
    );
    let done = post_form(
        &panel,
        "/actions/audit/review",
        &lead,
        &[
            ("item", &item),
            ("note", "vera asked first; fine"),
            ("seq", &seq.to_string()),
        ],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()[header::LOCATION],
        format!("/audit/{seq}").as_str()
    );
    let (_, html) = panel.page(&format!("/audit/{seq}"), &lead).await;
    assert!(html.contains("vera asked first; fine"), "{html}");
    assert!(!html.contains("id=\"mark-reviewed\""));
    let (_, html) = panel.page("/audit", &lead).await;
    assert!(html.contains("Nothing waiting"), "{html}");
    // Twice through the API is a conflict in the API's shape.
    let twice = panel
        .client
        .post(format!("{}/api/v1/audit/reviews", panel.base))
        .header(header::ORIGIN, &panel.base)
        .header(header::COOKIE, &lead)
        .json(&serde_json::json!({ "item": item, "note": "again" }))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    let body: Value = twice.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict");
    assert!(body["error"]["message"].as_str().unwrap().contains("lee"));

    // "Verify now" records the check; the overview shows leads the state.
    let verified = post_form(&panel, "/actions/audit/verify", &lead, &[]).await;
    assert_eq!(verified.status(), StatusCode::SEE_OTHER);
    let (_, overview) = panel.page("/", &lead).await;
    assert!(
        overview.contains("id=\"chain\" data-intact=\"true\""),
        "{overview}"
    );
    let (_, overview) = panel.page("/", &viewer).await;
    assert!(!overview.contains("id=\"chain\""));
    panel.stop().await;
}

#[tokio::test]
async fn rest_errors_all_have_the_json_shape_even_before_a_handler_runs() {
    let panel = Panel::start().await;
    let lead = panel.sign_in_as("lee").await;
    let send = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut request = panel
            .client
            .request(method, format!("{}{path}", panel.base))
            .header(header::ORIGIN, &panel.base)
            .header(header::COOKIE, &lead);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        request.send()
    };
    let cases = [
        (
            send(
                reqwest::Method::POST,
                "/api/v1/audit/reviews",
                Some("{not json"),
            )
            .await,
            400,
            "bad_request",
        ),
        (
            send(
                reqwest::Method::POST,
                "/api/v1/audit/reviews",
                Some("{\"note\": 1}"),
            )
            .await,
            // JSON of the wrong shape is unreadable like any other body.
            400,
            "bad_request",
        ),
        (
            send(
                reqwest::Method::GET,
                "/api/v1/runs/not-a-number/rerun",
                None,
            )
            .await,
            405,
            "method_not_allowed",
        ),
        (
            send(
                reqwest::Method::POST,
                "/api/v1/runs/not-a-number/rerun",
                None,
            )
            .await,
            400,
            "bad_request",
        ),
        (
            send(reqwest::Method::GET, "/api/v1/audit?cursor=abc", None).await,
            400,
            "bad_request",
        ),
        (
            send(reqwest::Method::GET, "/api/v1/nothing/here", None).await,
            404,
            "not_found",
        ),
    ];
    for (reply, status, code) in cases {
        let reply = reply.unwrap();
        let url = reply.url().to_string();
        assert_eq!(reply.status().as_u16(), status, "{url}");
        let body: Value = reply
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: not JSON: {e}"));
        assert_eq!(body["error"]["code"], code, "{url}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{url}"
        );
    }
    panel.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_report_operations_and_sync_lag() {
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    for _ in 0..3 {
        assert_eq!(
            panel.get("/env/production", Some(&cookie)).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        panel
            .get("/api/v1/environments/nowhere/releases", Some(&cookie))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let reply = panel.get("/metrics", None).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(
        reply.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = reply.text().await.unwrap();
    // Counters are per process and tests share it: at least what we sent.
    let count = |needle: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        count("flightdeck_http_requests_total{route=\"/env/{env}\",method=\"GET\",status=\"200\"}")
            >= 3,
        "{text}"
    );
    assert!(
        count(
            "flightdeck_http_requests_total{route=\"/api/v1/environments/{env}/releases\",method=\"GET\",status=\"404\"}"
        ) >= 1,
        "{text}"
    );
    assert!(!text.contains("nowhere"), "raw paths never become labels");
    // `fill` recorded a sync of production's GitHub runs a moment ago.
    let lag = text
        .lines()
        .find(|l| l.starts_with("flightdeck_sync_lag_seconds{environment=\"production\""))
        .unwrap_or_else(|| panic!("{text}"));
    let seconds: f64 = lag.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds >= 0.0);
    assert!(text.contains("# TYPE flightdeck_operations gauge"));
    panel.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_get_429_with_retry_after_and_the_right_password_waits_too() {
    let panel = Panel::start().await;
    let attempt = |password: &'static str| {
        panel
            .client
            .post(format!("{}/auth/login", panel.base))
            .header(header::ORIGIN, &panel.base)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("name=vera&password={}", password.replace(' ', "+")))
            .send()
    };
    for _ in 0..crate::control::FAILED_SIGN_INS {
        let reply = attempt("not the password").await.unwrap();
        assert_eq!(reply.status(), StatusCode::SEE_OTHER);
        assert!(
            reply.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .contains("error=1")
        );
    }
    let reply = attempt(PASSWORD).await.unwrap();
    assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = reply.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));
    assert!(
        reply.headers().get(header::SET_COOKIE).is_none(),
        "no session"
    );
    let html = reply.text().await.unwrap();
    assert!(html.contains("Too many failed sign-ins"), "{html}");
    // Another account signs in as usual.
    panel.sign_in_as("lee").await;
    panel.stop().await;
}

/// The page cache's counters in this panel's `/metrics`: (hits, misses).
async fn page_cache_counts(panel: &Panel) -> (u64, u64) {
    let text = panel.get("/metrics", None).await.text().await.unwrap();
    let count = |outcome: &str| -> u64 {
        let needle = format!("flightdeck_page_cache_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(needle.as_str()))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {needle} in {text}"))
    };
    (count("hit"), count("miss"))
}

/// The Content-Security-Policy nonce of a reply and its body.
async fn nonce_and_body(reply: reqwest::Response) -> (String, String) {
    let policy = reply.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    let nonce = super::page_cache::nonce_of(policy)
        .expect("a nonce")
        .to_owned();
    (nonce, reply.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_is_reused_per_person_with_fresh_nonces_and_keys_until_something_changes() {
    let panel = Panel::start().await;
    // The last good release has the live one's migrations and the database
    // is at their head: rolling back changes no database, so the overview
    // offers it in one click.
    let store = &panel.store.as_ref().unwrap().store;
    store
        .upsert_commits(&[commit(
            GOOD_SHA,
            "Add the datasets page",
            "Ada",
            Some(migrations()),
        )])
        .await
        .unwrap();
    store
        .set_database_state("production", &["c3".to_owned()])
        .await
        .unwrap();
    let viewer = panel.sign_in().await;
    let lead = panel.sign_in_as("lee").await;
    assert_eq!(page_cache_counts(&panel).await, (0, 0));

    // The lead's overview twice: rendered once, then reused, each time with
    // its own nonce (header and scripts agree) and its own one-click key.
    let mut keys = Vec::new();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let reply = panel.get("/", Some(&lead)).await;
        assert_eq!(reply.status(), StatusCode::OK);
        let (nonce, html) = nonce_and_body(reply).await;
        assert!(html.contains(&format!("nonce=\"{nonce}\"")), "{html}");
        assert!(html.contains("Roll back to"), "{html}");
        let field = "name=\"idempotency_key\" value=\"";
        let at = html
            .find(field)
            .unwrap_or_else(|| panic!("a one-click form in {html}"))
            + field.len();
        keys.push(html[at..at + html[at..].find('"').unwrap()].to_owned());
        nonces.push(nonce);
    }
    assert_eq!(page_cache_counts(&panel).await, (1, 1));
    assert_ne!(nonces[0], nonces[1]);
    assert_ne!(keys[0], keys[1]);
    assert!(keys.iter().all(|k| k.len() == 32), "{keys:?}");

    // Another person gets their own page, not the lead's.
    let (_, html) = panel.page("/", &viewer).await;
    assert!(html.contains("<span id=\"who\">vera</span>"), "{html}");
    assert!(!html.contains("nav-audit"), "{html}");
    assert_eq!(page_cache_counts(&panel).await, (1, 2));
    // A page with a query (a refusal's message) is never kept.
    let (status, _) = panel.page("/?refused=x", &viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page_cache_counts(&panel).await, (1, 2));

    // A change (an audited lock) shows on the very next view.
    assert_eq!(
        panel.lock("production", &lead, "release freeze").await,
        StatusCode::OK
    );
    let (_, html) = panel.page("/", &lead).await;
    let production = row(&html, "data-env=\"production\"");
    assert!(production.contains("release freeze"), "{production}");
    assert_eq!(page_cache_counts(&panel).await, (1, 3));

    // Many views at once: the page is rendered once, the others wait for
    // that render instead of each starting their own.
    let views: Vec<_> = (0..40)
        .map(|_| {
            let (client, url, cookie) = (
                panel.client.clone(),
                format!("{}/", panel.base),
                viewer.clone(),
            );
            tokio::spawn(async move {
                let reply = client
                    .get(url)
                    .header(header::COOKIE, cookie)
                    .send()
                    .await
                    .unwrap();
                (reply.status(), reply.text().await.unwrap())
            })
        })
        .collect();
    for view in views {
        let (status, html) = view.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.replace("<!>", "")
                .contains("<span id=\"who\">vera</span>"),
            "{html}"
        );
    }
    let (hits, misses) = page_cache_counts(&panel).await;
    assert_eq!(hits + misses, 44);
    // One render for the 40 (two if a second began just as the first expired).
    assert!(misses - 3 <= 2, "{misses} renders for 40 views");
    panel.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_with_a_title_from_the_url_survive_concurrent_views() {
    // Leptos reads a page's <Title> after the render, once the route's
    // reactive owner may be gone: a title that read the URL's memo then
    // panicked, and the browser got a dropped connection (about one view
    // in twenty-five at 64 connections).
    let panel = Panel::start().await;
    let cookie = panel.sign_in().await;
    let views: Vec<_> = (0..400)
        .map(|i| {
            let client = panel.client.clone();
            let path = [
                "/env/production",
                "/env/staging/runs",
                "/runs/103",
                "/env/production/deploys",
            ][i % 4];
            let url = format!("{}{path}", panel.base);
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let reply = client.get(url).header(header::COOKIE, cookie).send().await;
                match reply {
                    Ok(reply) => {
                        let status = reply.status();
                        let html = reply.text().await.map_err(|e| format!("{e:?}"))?;
                        (status == StatusCode::OK && html.contains("· Flightdeck</title>"))
                            .then_some(())
                            .ok_or(format!("{path}: {status}"))
                    }
                    Err(error) => Err(format!("{path}: {error:?}")),
                }
            })
        })
        .collect();
    let mut failures = Vec::new();
    for view in views {
        if let Err(failure) = view.await.unwrap() {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    panel.stop().await;
}

#[tokio::test]
async fn the_last_good_release_is_found_however_many_bad_ones_came_after_it() {
    crate::integrations::install_tls_provider();
    let t = TestStore::new("sqlite").await;
    let config = Config::from_toml(CONFIG).unwrap();
    let control = ControlPlane::new(t.store.clone(), Arc::new(config));
    let store = control.store();
    let live = "5555555eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    let good = "4444444ddddddddddddddddddddddddddddddddd";
    // The live release, 150 failed builds before it, and a good one before those.
    let mut deploys = vec![
        deploy("dep-live", live, "live", 1),
        deploy("dep-good", good, "deactivated", 200),
    ];
    for i in 0..150 {
        deploys.push(deploy(
            &format!("dep-bad-{i:03}"),
            &format!("{i:040}"),
            "build_failed",
            2 + i,
        ));
    }
    store.upsert_deploys(&deploys).await.unwrap();
    store
        .upsert_runs(&[run(1, live, 1), run(2, good, 200)])
        .await
        .unwrap();
    let actor = Actor::system("test");
    let meta = RequestMeta::default();

    let plan = control
        .rollback_plan(
            &actor,
            &meta,
            "production",
            &crate::control::RollbackAsk::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        plan.to.map(|r| r.deploy.id),
        Some("dep-good".to_owned()),
        "the plan's default target"
    );
    let overview = control.overview(&actor, &meta).await.unwrap();
    let production = &overview.environments[0];
    assert_eq!(
        production.last_good.as_ref().map(|r| r.deploy_id.as_str()),
        Some("dep-good")
    );
    assert_eq!(
        production
            .rollback
            .as_ref()
            .map(|r| r.target_deploy_id.as_str()),
        Some("dep-good"),
        "the one-click rollback"
    );
    t.drop_all().await;
}
