//! Rollbacks, deploys and CI actions over the REST API of a real
//! `flightdeck sandbox` process: one operation however many ask at once,
//! idempotency keys, and every action refused to the wrong role with
//! nothing sent upstream.

use flightdeck_sandbox::scratch::ScratchDb;
use flightdeck_tests::{Sandbox, TempDir, cli_with_config, http, session_cookie};
use serde_json::{Value, json};
use std::time::Duration;

struct Api {
    sandbox: Sandbox,
    admin: String,
}

impl Api {
    async fn start(label: &str) -> (TempDir, Api) {
        let dir = TempDir::new(label);
        let sandbox = Sandbox::start(&dir, &["--seed", "5"]).await;
        let admin = sandbox.session().await;
        sandbox
            .wait_for_live_releases(&admin, Duration::from_secs(120))
            .await;
        (dir, Api { sandbox, admin })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.panel())
    }

    /// A request as the browser's same-origin JavaScript would send it.
    fn post(&self, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
        let mut request = http()
            .post(self.url(path))
            .header("Origin", self.sandbox.panel());
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request
    }

    async fn user(&self, name: &str, role: &str) -> String {
        let config = std::path::PathBuf::from(&self.sandbox.printed["config"]);
        let password = "correct horse battery staple";
        let out = cli_with_config(
            &config,
            &["user", "add", name, "--role", role],
            Some(password),
        )
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let response = self
            .post("/auth/login", None)
            .form(&[("name", name), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        session_cookie(&response).unwrap()
    }

    /// The simulators' counts of calls that change something.
    async fn upstream_calls(&self) -> (Value, Value) {
        (
            calls(&self.sandbox.printed["render"]).await,
            calls(&self.sandbox.printed["github"]).await,
        )
    }

    async fn operation_state(&self, id: &str) -> String {
        let state = flightdeck_tests::settled_state(self.sandbox.panel(), &self.admin, id).await;
        assert_ne!(state, "running", "operation {id} still running after 60 s");
        state
    }
}

/// Sends every request at once; each reply's status and body, in order.
async fn all_at_once(
    requests: impl Iterator<Item = reqwest::RequestBuilder>,
) -> Vec<(u16, String)> {
    let tasks: Vec<_> = requests
        .map(|request| {
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

/// A simulator's counts of calls that change something.
async fn calls(simulator: &str) -> Value {
    http()
        .get(format!("{simulator}/_sandbox/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn fifty_concurrent_rollback_requests_make_one_operation_and_49_conflicts() {
    let (_dir, api) = Api::start("ops-race").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let request = api
            .post(
                "/api/v1/environments/production/rollbacks",
                Some(&api.admin),
            )
            .json(&json!({ "reason": "checkout is down", "target_deploy_id": null }));
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut accepted = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (202, body) => accepted.push(body),
            (409, body) => conflicts.push(body),
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert_eq!(accepted.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts.len(), 49);
    let id = accepted[0]["id"].as_str().unwrap().to_owned();
    for body in &conflicts {
        assert_eq!(body["error"]["code"], "conflict", "{body}");
    }
    assert!(
        conflicts
            .iter()
            .any(|b| b["error"]["message"].as_str().unwrap().contains(&id)),
        "the running operation is named"
    );
    assert_eq!(api.operation_state(&id).await, "succeeded");
    let (render, _) = api.upstream_calls().await;
    assert_eq!(render["rollbacks"], 1, "{render}");
    assert_eq!(render["auto_deploy_patches"], 1, "{render}");
}

#[tokio::test]
async fn one_idempotency_key_sent_twenty_times_at_once_is_one_operation() {
    let (_dir, api) = Api::start("ops-idem").await;
    let body = json!({ "reason": "bad deploy" });
    let replies = all_at_once((0..20).map(|_| {
        api.post("/api/v1/environments/staging/rollbacks", Some(&api.admin))
            .header("Idempotency-Key", "incident-42")
            .json(&body)
    }))
    .await;
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:?}");
    assert_eq!(replies[0].0, 202);
    let id = serde_json::from_str::<Value>(&replies[0].1).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.operation_state(&id).await;
    let (render, _) = api.upstream_calls().await;
    assert_eq!(render["rollbacks"], 1, "{render}");

    let other = api
        .post("/api/v1/environments/staging/rollbacks", Some(&api.admin))
        .header("Idempotency-Key", "incident-42")
        .json(&json!({ "reason": "another reason" }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    let error: Value = other.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid");
}

#[tokio::test]
async fn every_action_refused_to_the_wrong_role_sends_nothing_upstream() {
    let (_dir, api) = Api::start("ops-roles").await;
    let viewer = api.user("vic", "viewer").await;
    let deployer = api.user("dee", "deployer").await;
    let run: Value = http()
        .get(api.url("/api/v1/environments/production/runs"))
        .header("Cookie", &api.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = run["items"][0]["id"].as_u64().unwrap();
    let rollback = json!({ "reason": "r" });
    // (method, path, body, who may not)
    let actions: Vec<(&str, String, Value, Vec<&str>)> = vec![
        (
            "POST",
            "/api/v1/environments/production/rollbacks".into(),
            rollback.clone(),
            vec!["anonymous", "viewer"],
        ),
        (
            "POST",
            "/api/v1/environments/production/deploys".into(),
            json!({}),
            vec!["anonymous", "viewer"],
        ),
        (
            "POST",
            format!("/api/v1/runs/{run_id}/rerun"),
            json!({}),
            vec!["anonymous", "viewer"],
        ),
        (
            "POST",
            format!("/api/v1/runs/{run_id}/cancel"),
            json!({}),
            vec!["anonymous", "viewer"],
        ),
        (
            "PUT",
            "/api/v1/environments/production/lock".into(),
            json!({"reason": "freeze"}),
            vec!["anonymous", "viewer"],
        ),
        (
            "DELETE",
            "/api/v1/environments/production/lock".into(),
            json!({"note": "ok"}),
            vec!["anonymous", "viewer", "deployer"],
        ),
        (
            "POST",
            "/api/v1/operations/op-none/approve".into(),
            json!({}),
            vec!["anonymous", "viewer", "deployer"],
        ),
        (
            "POST",
            "/api/v1/operations/op-none/resolve".into(),
            json!({"note": "n"}),
            vec!["anonymous", "viewer", "deployer"],
        ),
    ];
    let before = api.upstream_calls().await;
    for (method, path, body, refused) in &actions {
        for who in refused {
            let cookie = match *who {
                "viewer" => Some(viewer.as_str()),
                "deployer" => Some(deployer.as_str()),
                _ => None,
            };
            let request = match *method {
                "PUT" => http().put(api.url(path)),
                "DELETE" => http().delete(api.url(path)),
                _ => http().post(api.url(path)),
            };
            let mut request = request.header("Origin", api.sandbox.panel()).json(body);
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            let response = request.send().await.unwrap();
            let expected = if *who == "anonymous" { 401 } else { 403 };
            assert_eq!(
                response.status().as_u16(),
                expected,
                "{who} {method} {path}"
            );
            let error: Value = response.json().await.unwrap();
            assert!(error["error"]["code"].is_string(), "{error}");
        }
    }
    assert_eq!(
        api.upstream_calls().await,
        before,
        "refused callers reach nothing upstream"
    );

    // The allowed side: a deployer's re-run reaches GitHub, once.
    let rerun = api
        .post(&format!("/api/v1/runs/{run_id}/rerun"), Some(&deployer))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), 202, "{}", rerun.text().await.unwrap());
    let (_, github) = api.upstream_calls().await;
    assert_eq!(
        github["reruns"].as_u64().unwrap(),
        before.1["reruns"].as_u64().unwrap() + 1,
        "{github}"
    );
}

#[tokio::test]
async fn two_panel_processes_on_one_postgresql_store_start_one_rollback_for_fifty_requests_and_one_per_key()
 {
    use flightdeck_tests::{Panel, run_binary};
    let dir = TempDir::new("ops-two-panels");
    let sandbox = Sandbox::start(&dir, &["--seed", "5", "--no-panel"]).await;
    let config = sandbox.printed["config"].clone();
    let scratch = ScratchDb::postgres().await;
    let mut env = sandbox.secrets();
    env.push(("FLIGHTDECK_STORE__URL".into(), scratch.url.clone()));
    env.push(("FLIGHTDECK_SERVER__LISTEN".into(), "127.0.0.1:0".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let password = "correct horse battery staple";
    let out = run_binary(
        &["--config", &config, "user", "add", "lee", "--role", "lead"],
        Some(password),
        &env_refs,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let config = std::path::PathBuf::from(config);
    let panels = [
        Panel::start_with_env(&config, &env).await,
        Panel::start_with_env(&config, &env).await,
    ];
    let login = http()
        .post(panels[0].at("/auth/login"))
        .header("Origin", &panels[0].url)
        .form(&[("name", "lee"), ("password", password)])
        .send()
        .await
        .unwrap();
    // One session, valid on both: sessions live in the shared store.
    let cookie = session_cookie(&login).unwrap();
    for _ in 0..300 {
        let envs: Value = panels[1]
            .get("/api/v1/environments", Some(&cookie))
            .await
            .json()
            .await
            .unwrap();
        if envs[0]["rollback"].is_object() && envs[0]["live"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut tasks = Vec::new();
    for i in 0..50 {
        let panel = &panels[i % 2];
        let request = http()
            .post(panel.at("/api/v1/environments/production/rollbacks"))
            .header("Origin", &panel.url)
            .header("Cookie", &cookie)
            .json(&json!({ "reason": "two panels, one rollback" }));
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, Vec<Value>>::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        statuses.entry(status).or_default().push(body);
    }
    assert_eq!(statuses.get(&202).map(Vec::len), Some(1), "{statuses:?}");
    assert_eq!(statuses.get(&409).map(Vec::len), Some(49), "{statuses:?}");
    let id = statuses[&202][0]["id"].as_str().unwrap().to_owned();
    let state = flightdeck_tests::settled_state(&panels[1].url, &cookie, &id).await;
    assert_eq!(state, "succeeded");
    let render_calls = calls(&sandbox.printed["render"]).await;
    assert_eq!(render_calls["rollbacks"], 1, "{render_calls}");

    // One Idempotency-Key sent twenty times across both processes: one
    // operation, and every reply is the same 202.
    let replies = all_at_once((0..20).map(|i| {
        let panel = &panels[i % 2];
        http()
            .post(panel.at("/api/v1/environments/staging/rollbacks"))
            .header("Origin", &panel.url)
            .header("Cookie", &cookie)
            .header("Idempotency-Key", "two-panels-one-key")
            .json(&json!({ "reason": "one key, two panels" }))
    }))
    .await;
    assert_eq!(replies[0].0, 202, "{replies:?}");
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:?}");
    let id = serde_json::from_str::<Value>(&replies[0].1).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let state = flightdeck_tests::settled_state(&panels[0].url, &cookie, &id).await;
    assert_eq!(state, "succeeded");
    let render_calls = calls(&sandbox.printed["render"]).await;
    assert_eq!(
        render_calls["rollbacks"], 2,
        "one more, for staging: {render_calls}"
    );

    for panel in panels {
        panel.stop().await;
    }
    scratch.drop_all().await;
}
