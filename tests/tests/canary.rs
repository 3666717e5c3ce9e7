//! Canary secrets (DESIGN §8): the panel runs with a recognisable value in
//! every secret variable its config names, first with the right ones (the
//! sandbox accepts them) and then with wrong ones (everything upstream
//! fails). Every page and endpoint is exercised, failures included; then
//! no secret may appear in any response (body or header), log line, the
//! store (which holds the audit trail) or an export.

use flightdeck_tests::{Panel, Sandbox, TempDir, cli_with_config, http, session_cookie};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the panel said, to search through at the end.
#[derive(Default)]
struct Seen {
    texts: Vec<(String, String)>,
    /// The running panel's log, shown when it does not answer.
    log: Option<PathBuf>,
}

impl Seen {
    async fn keep(
        &mut self,
        what: &str,
        response: reqwest::Result<reqwest::Response>,
    ) -> (u16, String) {
        let response = response.unwrap_or_else(|error| {
            let log = self
                .log
                .as_ref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{what}: no answer ({error}); the panel's log ends:\n{}",
                tail.join("\n")
            )
        });
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap_or_default();
        self.texts
            .push((format!("{what} ({status})"), format!("{headers}\n{body}")));
        (status, body)
    }

    fn find(&self, secrets: &[(String, String)]) -> Vec<String> {
        let mut found = Vec::new();
        for (name, value) in secrets {
            for (what, text) in &self.texts {
                if text.contains(value.as_str()) {
                    found.push(format!("{name} in {what}"));
                }
            }
        }
        found
    }
}

/// A listener that answers 200 to anything and keeps what it got (the
/// notification webhook's receiver: the URL is a secret, the body is not).
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let keep = keep.clone();
        async move {
            keep.lock().unwrap().push(body);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

fn sign_github(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Signs in as `name` (made with the CLI) and returns the cookie.
async fn account(config: &Path, panel: &Panel, name: &str, role: &str, seen: &mut Seen) -> String {
    let password = format!("{name}-password-long-enough");
    let out = cli_with_config(
        config,
        &["user", "add", name, "--role", role],
        Some(&password),
    )
    .await;
    seen.texts.push((
        format!("user add {name}"),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ));
    let login = http()
        .post(panel.at("/auth/login"))
        .header("Origin", &panel.url)
        .form(&[("name", name), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    session_cookie(&login).unwrap_or_else(|| panic!("{name} signs in"))
}

/// Every page and endpoint, as the lead `cookie` and as a viewer, with
/// failures: unknown things, refusals, bad input, bad webhooks.
async fn exercise(
    panel: &Panel,
    lead: &str,
    viewer: &str,
    secrets: &[(String, String)],
    seen: &mut Seen,
    roll_back: bool,
) {
    let get = |path: &str, cookie: &str| {
        http()
            .get(panel.at(path))
            .header("Cookie", cookie.to_owned())
            .send()
    };
    let post = |path: &str, cookie: &str, body: Value| {
        http()
            .post(panel.at(path))
            .header("Origin", &panel.url)
            .header("Cookie", cookie.to_owned())
            .json(&body)
            .send()
    };
    // Wait for a sync pass to have run (or failed).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pages = [
        "/",
        "/admin",
        "/audit",
        "/env/production",
        "/env/staging",
        "/env/production/runs",
        "/env/production/deploys",
        "/env/production/migrations",
        "/env/staging/migrations",
        "/env/production/rollback",
        "/env/production/rollback?database=on&revert_code=on",
        "/env/nowhere",
        "/runs/1",
        "/runs/999999999",
        "/operations/op_nope",
        "/audit/1",
        "/audit/999999",
        "/audit?since=garbage",
        "/login",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/me",
        "/api/v1/environments",
        "/api/v1/environments/production/releases",
        "/api/v1/environments/production/runs",
        "/api/v1/environments/production/deploys",
        "/api/v1/environments/production/migrations",
        "/api/v1/environments/nowhere/runs",
        "/api/v1/environments/production/gate?sha=abc",
        "/api/v1/operations/op_nope",
        "/api/v1/audit?limit=500",
        "/api/v1/audit/verify",
        "/api/v1/audit/export?format=csv",
        "/api/v1/audit/export?format=jsonl",
        "/api/v1/audit/export?format=xml",
    ];
    for page in pages {
        for (who, cookie) in [("lead", lead), ("viewer", viewer), ("anonymous", "")] {
            let reply = get(page, cookie).await;
            seen.keep(&format!("GET {page} as {who}"), reply).await;
        }
    }
    // The first run, the first operation, the first events' detail.
    let runs: Value = serde_json::from_str(
        &seen
            .keep(
                "runs",
                get("/api/v1/environments/production/runs", lead).await,
            )
            .await
            .1,
    )
    .unwrap_or(Value::Null);
    if let Some(id) = runs["items"][0]["id"].as_u64() {
        seen.keep("run page", get(&format!("/runs/{id}"), lead).await)
            .await;
        seen.keep(
            "rerun as viewer",
            post(&format!("/api/v1/runs/{id}/rerun"), viewer, json!({})).await,
        )
        .await;
    }
    for seq in 1..30 {
        seen.keep("event detail", get(&format!("/audit/{seq}"), lead).await)
            .await;
    }
    let actions = [
        ("/api/v1/environments/production/rollbacks/plan", json!({})),
        (
            "/api/v1/environments/production/rollbacks/plan",
            json!({ "target_deploy_id": "dep-nope" }),
        ),
        (
            "/api/v1/environments/production/rollbacks",
            json!({ "reason": "" }),
        ),
        (
            "/api/v1/environments/production/deploys",
            json!({ "commit": "not-a-sha", "reason": "canary" }),
        ),
        ("/api/v1/operations/op_nope/approve", json!({})),
        (
            "/api/v1/audit/reviews",
            json!({ "item": "op:nope", "note": "x" }),
        ),
    ];
    for (path, body) in actions {
        for (who, cookie) in [("lead", lead), ("viewer", viewer)] {
            let reply = post(path, cookie, body.clone()).await;
            seen.keep(&format!("POST {path} as {who}"), reply).await;
        }
    }
    let bad_json = http()
        .post(panel.at("/api/v1/environments/production/rollbacks"))
        .header("Origin", &panel.url)
        .header("Cookie", lead)
        .header("Content-Type", "application/json")
        .body("{broken")
        .send()
        .await;
    seen.keep("broken JSON", bad_json).await;
    let failed_login = http()
        .post(panel.at("/auth/login"))
        .header("Origin", &panel.url)
        .form(&[("name", "lee"), ("password", "wrong password here")])
        .send()
        .await;
    seen.keep("failed login", failed_login).await;

    // Webhooks: one signed right, one wrong, one unsigned.
    let secret = secrets
        .iter()
        .find(|(k, _)| k == "GITHUB_WEBHOOK_SECRET")
        .map(|(_, v)| v.clone())
        .unwrap();
    let body = json!({ "zen": "canary", "hook_id": 1 }).to_string();
    for (label, signature) in [
        ("signed", Some(sign_github(&secret, &body))),
        ("wrongly signed", Some(sign_github("not the secret", &body))),
        ("unsigned", None),
    ] {
        let mut request = http()
            .post(panel.at("/webhooks/github"))
            .header("X-GitHub-Event", "ping")
            .header("X-GitHub-Delivery", format!("canary-{label}"))
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        seen.keep(&format!("{label} GitHub webhook"), request.send().await)
            .await;
    }
    let render = http()
        .post(panel.at("/webhooks/render"))
        .header("webhook-id", "msg_canary")
        .header("webhook-timestamp", "1")
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body("{}")
        .send()
        .await;
    seen.keep("badly signed Render webhook", render).await;

    if roll_back {
        // A code-only rollback that runs every step: Render, the smoke
        // check against BACKEND_URL, the notification webhook.
        let started = post(
            "/api/v1/environments/production/rollbacks",
            lead,
            json!({ "reason": "canary rollback" }),
        )
        .await;
        let (status, body) = seen.keep("rollback", started).await;
        assert_eq!(status, 202, "{body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..300 {
            let (_, op) = seen
                .keep(
                    "operation",
                    get(&format!("/api/v1/operations/{id}"), lead).await,
                )
                .await;
            if !op.contains("\"state\":\"running\"") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        seen.keep(
            "operation page",
            get(&format!("/operations/{id}"), lead).await,
        )
        .await;
        seen.keep(
            "rollback again",
            post(
                "/api/v1/environments/production/rollbacks",
                lead,
                json!({ "reason": "again" }),
            )
            .await,
        )
        .await;
    }
    // The trail last, so it holds everything above.
    for format in ["csv", "jsonl"] {
        let export = get(&format!("/api/v1/audit/export?format={format}"), lead).await;
        seen.keep(&format!("{format} export"), export).await;
    }
}

/// The store's files (the audit trail, sessions, sync data), as text.
fn store_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("canary-store.db") {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    text
}

#[tokio::test]
async fn no_secret_reaches_a_page_a_response_a_log_line_the_store_or_an_export() {
    let dir = TempDir::new("canary");
    let sandbox = Sandbox::start(&dir, &["--seed", "8", "--no-panel"]).await;
    let (notify, notified) = receiver().await;
    // The sandbox's config, with a notification webhook and our own store.
    let config: PathBuf = dir.0.join("canary.toml");
    let store = dir.0.join("canary-store.db");
    let text = std::fs::read_to_string(&sandbox.printed["config"])
        .unwrap()
        .lines()
        .map(
            |line| match line.trim_start().starts_with("url = \"sqlite") {
                true => format!("url = \"sqlite://{}\"", store.display()),
                false => line.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
        + "\n[operations]\nnotify_webhook_env = \"FD_CANARY_NOTIFY_URL\"\n";
    std::fs::write(&config, text).unwrap();
    let out = cli_with_config(&config, &["migrate"], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Round one: the right secrets, each one distinctive (the deploy hook's
    // in place of the sandbox's, so it is easy to search for).
    let mut right = sandbox.secrets();
    right.retain(|(name, _)| name != "RENDER_DEPLOY_HOOK_URL");
    right.push((
        "RENDER_DEPLOY_HOOK_URL".into(),
        "http://127.0.0.1:9/deploy/fdcanary-hook-51d7e".into(),
    ));
    right.push((
        "FD_CANARY_NOTIFY_URL".into(),
        format!("{notify}/notify/fdcanary-notify-0b3c4"),
    ));
    for (name, value) in &right {
        assert!(
            value.len() >= 16,
            "{name} is too short to search for: {value}"
        );
    }
    let names: Vec<&str> = right.iter().map(|(k, _)| k.as_str()).collect();
    for needed in [
        "GITHUB_TOKEN",
        "GITHUB_WEBHOOK_SECRET",
        "RENDER_API_KEY",
        "RENDER_WEBHOOK_SECRET",
        "DS_DATABASE_URL",
        "DS_STAGING_DATABASE_URL",
        "BACKEND_URL",
        "STAGING_BACKEND_URL",
    ] {
        assert!(
            names.contains(&needed),
            "the sandbox names {needed}: {names:?}"
        );
    }
    let mut seen = Seen::default();
    let mut env = right.clone();
    env.push(("FLIGHTDECK_LOG".into(), "debug,sqlx=warn".into()));
    let log_one = dir.0.join("panel-one.log");
    let panel = Panel::start_logged(&config, &env, Some(&log_one)).await;
    seen.log = Some(log_one.clone());
    let lead = account(&config, &panel, "lee", "lead", &mut seen).await;
    let viewer = account(&config, &panel, "vera", "viewer", &mut seen).await;
    flightdeck_tests::wait_for_live_releases(&panel.url, &lead, Duration::from_secs(120)).await;
    exercise(&panel, &lead, &viewer, &right, &mut seen, true).await;
    let token = cli_with_config(
        &config,
        &["token", "create", "lee", "--label", "canary"],
        None,
    )
    .await;
    let printed = String::from_utf8_lossy(&token.stdout).into_owned();
    let token = printed
        .lines()
        .find_map(|l| l.strip_prefix("token "))
        .unwrap_or_else(|| panic!("token create printed {printed}"))
        .to_owned();
    let with_token = http()
        .get(panel.at("/api/v1/environments"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await;
    seen.keep("token request", with_token).await;
    let export = cli_with_config(&config, &["audit", "export", "--format", "jsonl"], None).await;
    seen.texts.push((
        "CLI export".into(),
        String::from_utf8_lossy(&export.stdout).into_owned(),
    ));
    let verify = cli_with_config(&config, &["audit", "verify"], None).await;
    seen.texts.push((
        "CLI verify".into(),
        String::from_utf8_lossy(&verify.stdout).into_owned(),
    ));
    panel.stop().await;
    assert!(
        !notified.lock().unwrap().is_empty(),
        "the rollback's notification reached the webhook"
    );

    // Round two: wrong secrets everywhere, so every upstream call fails.
    let wrong: Vec<(String, String)> = right
        .iter()
        .map(|(name, _)| {
            let value = match name.as_str() {
                n if n.ends_with("_URL") && n.starts_with("DS_") => {
                    format!("postgres://fd:fdcanary-pw-{n}@127.0.0.1:9/fdcanary")
                }
                n if n.ends_with("_URL") => format!("http://127.0.0.1:9/fdcanary-{n}"),
                n => format!("fdcanary-wrong-{n}-value"),
            };
            (name.clone(), value)
        })
        .collect();
    let mut env = wrong.clone();
    env.push(("FLIGHTDECK_LOG".into(), "debug,sqlx=warn".into()));
    let log_two = dir.0.join("panel-two.log");
    let panel = Panel::start_logged(&config, &env, Some(&log_two)).await;
    seen.log = Some(log_two.clone());
    let login = |name: &str| {
        let password = format!("{name}-password-long-enough");
        let url = panel.at("/auth/login");
        let origin = panel.url.clone();
        let name = name.to_owned();
        async move {
            let reply = http()
                .post(url)
                .header("Origin", origin)
                .form(&[("name", name.as_str()), ("password", password.as_str())])
                .send()
                .await
                .unwrap();
            session_cookie(&reply).unwrap()
        }
    };
    let lead = login("lee").await;
    let viewer = login("vera").await;
    // Let the sync fail a few times, then look at everything again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    exercise(&panel, &lead, &viewer, &wrong, &mut seen, false).await;
    let (_, overview) = seen
        .keep(
            "stale overview",
            http()
                .get(panel.at("/"))
                .header("Cookie", lead.clone())
                .send()
                .await,
        )
        .await;
    assert!(
        overview.contains("stale") || overview.contains("Stale") || overview.contains("since"),
        "the failures show as stale data"
    );
    panel.stop().await;

    seen.texts
        .push(("log one".into(), std::fs::read_to_string(&log_one).unwrap()));
    seen.texts
        .push(("log two".into(), std::fs::read_to_string(&log_two).unwrap()));
    seen.texts.push(("store".into(), store_text(&dir.0)));
    seen.texts
        .push(("notification".into(), notified.lock().unwrap().join("\n")));
    let mut all = right.clone();
    all.extend(wrong);
    let found = seen.find(&all);
    assert!(found.is_empty(), "secrets leaked: {found:#?}");
    // The search itself works: a value that is in a response is found.
    let probe = Seen {
        texts: vec![("probe".into(), format!("x{}x", right[0].1))],
        log: None,
    };
    assert_eq!(probe.find(&right[..1]).len(), 1);
    assert!(
        seen.texts.len() > 300,
        "{} responses looked at",
        seen.texts.len()
    );
}
