//! `flightdeck sandbox`, as the README's run command starts it.

use flightdeck_tests::{Sandbox, TempDir, http, session_cookie};
use std::collections::HashMap;

async fn start(dir: &TempDir, extra: &[&str]) -> (Sandbox, HashMap<String, String>) {
    let sandbox = Sandbox::start(dir, extra).await;
    let printed = sandbox.printed.clone();
    (sandbox, printed)
}

#[tokio::test]
async fn the_sandbox_prints_its_services_config_and_a_sign_in_that_works() {
    let dir = TempDir::new("sandbox");
    let (_child, printed) = start(&dir, &[]).await;

    let config = std::fs::read_to_string(&printed["config"]).unwrap();
    assert!(
        config.contains(&format!("api_url = \"{}/v1\"", printed["render"])),
        "{config}"
    );
    assert!(
        config.contains("[[environment]]") && config.contains("# "),
        "a commented config"
    );

    let (name, password) = printed["sign-in"].split_once(" / ").unwrap();
    let response = http()
        .post(format!("{}/auth/login", printed["panel"]))
        .header("Origin", &printed["panel"])
        .form(&[("name", name), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = session_cookie(&response).unwrap();
    let overview = http()
        .get(format!("{}/", printed["panel"]))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    let html = overview.text().await.unwrap();
    assert!(html.contains("data-env=\"production\"") && html.contains("data-env=\"staging\""));

    // The simulated Render answers with the printed key, and its seeded
    // history has a failed build.
    let render = &printed["render"];
    let key = &printed["render-api-key"];
    let unauthorized = http()
        .get(format!("{render}/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let deploys: serde_json::Value = http()
        .get(format!(
            "{render}/v1/services/srv-sandbox-production/deploys?limit=100"
        ))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = deploys
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deploy"]["status"].as_str().unwrap())
        .collect();
    assert!(statuses.len() >= 20, "a few dozen deploys: {statuses:?}");
    assert_eq!(
        statuses[0], "live",
        "the newest deploy is live: {statuses:?}"
    );
    assert!(statuses.contains(&"build_failed"), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "live").count(), 1);
}

#[tokio::test]
async fn without_the_panel_the_simulators_serve_a_seeded_history_that_a_seed_repeats() {
    let (one, two) = (TempDir::new("sandbox-a"), TempDir::new("sandbox-b"));
    let (_a, first) = start(&one, &["--no-panel", "--seed", "9"]).await;
    let (_b, second) = start(&two, &["--no-panel", "--seed", "9"]).await;
    assert!(!first.contains_key("panel") && !first.contains_key("sign-in"));
    let env = std::fs::read_to_string(&first["env"]).unwrap();
    assert!(
        env.contains(&format!("GITHUB_TOKEN={}", first["github-token"])),
        "{env}"
    );
    assert!(env.contains(&format!(
        "DS_DATABASE_URL={}",
        first["target-db production"]
    )));

    let head = |printed: &HashMap<String, String>| {
        let url = format!(
            "{}/repos/cuentadesanti/data-simulator/commits?sha=main&per_page=100",
            printed["github"]
        );
        let token = printed["github-token"].clone();
        async move {
            let commits: serde_json::Value = http()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let commits = commits.as_array().unwrap().clone();
            assert!(commits.len() >= 30, "a few dozen commits on main");
            assert!(commits.iter().any(|c| {
                c["commit"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("<script>alert(1)</script>")
            }));
            commits[0]["sha"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(
        head(&first).await,
        head(&second).await,
        "the same seed, the same history"
    );

    // A wrong token is refused by the simulated GitHub.
    let refused = http()
        .get(format!("{}/user", first["github"]))
        .bearer_auth("ghp_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

/// `X-Hub-Signature-256` for `body`, computed here independently.
fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[tokio::test]
async fn the_panels_github_webhook_refuses_bad_signatures_and_takes_a_delivery_once() {
    let dir = TempDir::new("sandbox-webhooks");
    let (_sandbox, printed) = start(&dir, &[]).await;
    let env = std::fs::read_to_string(&printed["env"]).unwrap();
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("GITHUB_WEBHOOK_SECRET="))
        .unwrap()
        .to_owned();
    let url = format!("{}/webhooks/github", printed["panel"]);
    let body =
        br#"{"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000"}"#;
    let send = |signature: Option<String>, id: &'static str| {
        let mut request = http()
            .post(&url)
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", id)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        send(Some(github_signature("not the secret", body)), "d-1").await,
        401
    );
    assert_eq!(send(None, "d-1").await, 401);
    assert_eq!(send(Some("sha1=abc".into()), "d-1").await, 401);
    assert_eq!(
        send(Some(github_signature(&secret, body)), "d-1").await,
        202,
        "the id was not used up by refusals"
    );
    for _ in 0..9 {
        assert_eq!(
            send(Some(github_signature(&secret, body)), "d-1").await,
            200,
            "a redelivery is not processed again"
        );
    }
}

/// Every `*_env` value anywhere in a parsed config: the names of the
/// variables that hold its secrets.
fn env_names(value: &toml::Value, names: &mut std::collections::BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                match value {
                    toml::Value::String(name) if key.ends_with("_env") => {
                        names.insert(name.clone());
                    }
                    other => env_names(other, names),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| env_names(v, names)),
        _ => {}
    }
}

#[tokio::test]
async fn the_printed_env_file_defines_every_secret_the_printed_config_names_so_no_card_warns() {
    let dir = TempDir::new("sandbox-secrets");
    let sandbox = Sandbox::start(&dir, &[]).await;
    let config: toml::Value = std::fs::read_to_string(&sandbox.printed["config"])
        .unwrap()
        .parse()
        .unwrap();
    let mut names = std::collections::BTreeSet::new();
    env_names(&config, &mut names);
    for name in [
        "GITHUB_TOKEN",
        "RENDER_DEPLOY_HOOK_URL",
        "STAGING_BACKEND_URL",
    ] {
        assert!(names.contains(name), "the walk finds {name}: {names:?}");
    }
    let secrets: HashMap<String, String> = sandbox.secrets().into_iter().collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| secrets.get(*name).is_none_or(|v| v.is_empty()))
        .collect();
    assert!(missing.is_empty(), "sandbox.env lacks {missing:?}");

    // The deploy hook it names is the simulated Render's, and takes a deploy.
    let hook = http()
        .post(&secrets["RENDER_DEPLOY_HOOK_URL"])
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 200, "{}", hook.text().await.unwrap());

    let cookie = sandbox.session().await;
    let overview = http()
        .get(format!("{}/", sandbox.panel()))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains("data-env=\"production\"") && overview.contains("data-env=\"staging\""),
        "{overview}"
    );
    assert!(
        !overview.contains("to enable everything for this environment"),
        "a card asks for a secret: {overview}"
    );
}

/// The entries of `dir`.
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

/// Starts a sandbox without `--dir` and with `TMPDIR` pointed at a fresh
/// folder, checks it works in a `flightdeck-sandbox-*` folder there, stops
/// it with `signal` and returns what is left in `TMPDIR`.
async fn a_throw_away_sandbox_stopped_by(signal: &str, extra: &[&str]) -> Vec<std::path::PathBuf> {
    let tmp = TempDir::new(&format!("sandbox-tmpdir-{signal}"));
    let sandbox = Sandbox::launch(extra, &[("TMPDIR", tmp.0.as_path())]).await;
    let made = entries(&tmp.0);
    assert_eq!(made.len(), 1, "one folder: {made:?}");
    let folder = &made[0];
    let name = folder.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("flightdeck-sandbox-"), "{name}");
    assert!(
        std::path::Path::new(&sandbox.printed["config"]).starts_with(folder),
        "the config is in it: {:?}",
        sandbox.printed
    );
    if sandbox.printed.contains_key("panel") {
        // The panel is up and has written its store there.
        let _ = sandbox.session().await;
        assert!(folder.join("flightdeck.db").is_file());
    }
    let status = sandbox.stop(signal).await;
    assert_eq!(status.code(), Some(0), "SIG{signal} is a clean stop");
    entries(&tmp.0)
}

#[tokio::test]
async fn a_sandbox_without_a_dir_removes_its_folder_when_stopped_with_sigterm() {
    let left = a_throw_away_sandbox_stopped_by("TERM", &[]).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn a_sandbox_without_a_dir_removes_its_folder_when_stopped_with_ctrl_c() {
    let left = a_throw_away_sandbox_stopped_by("INT", &[]).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn a_sandbox_without_the_panel_removes_its_folder_too() {
    let left = a_throw_away_sandbox_stopped_by("TERM", &["--no-panel"]).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn a_sandbox_with_a_dir_keeps_it_when_stopped() {
    let tmp = TempDir::new("sandbox-keeps-tmpdir");
    let dir = TempDir::new("sandbox-keeps");
    let sandbox = Sandbox::launch(
        &["--dir", dir.0.to_str().unwrap()],
        &[("TMPDIR", tmp.0.as_path())],
    )
    .await;
    let _ = sandbox.session().await;
    let status = sandbox.stop("TERM").await;
    assert_eq!(status.code(), Some(0));
    for kept in ["flightdeck.db", "flightdeck.toml", "sandbox.env"] {
        assert!(dir.0.join(kept).is_file(), "{kept} is kept");
    }
    assert!(entries(&tmp.0).is_empty(), "nothing in TMPDIR");
}

#[tokio::test]
async fn a_sandbox_with_a_page_listening_to_its_events_still_stops_on_ctrl_c_and_cleans_up() {
    let tmp = TempDir::new("sandbox-tmpdir-events");
    let sandbox = Sandbox::launch(&[], &[("TMPDIR", tmp.0.as_path())]).await;
    assert_eq!(entries(&tmp.0).len(), 1);
    let cookie = sandbox.session().await;
    // What an open page does: it keeps `/events` open.
    let events = http()
        .get(format!("{}/events", sandbox.panel()))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");

    let status = sandbox.stop("INT").await;
    assert_eq!(status.code(), Some(0), "SIGINT is a clean stop");
    let left = entries(&tmp.0);
    assert!(left.is_empty(), "left behind: {left:?}");
    // The stream was ended by the server, not cut.
    events.text().await.expect("the event stream ends cleanly");
}
