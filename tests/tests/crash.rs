//! A panel process killed with SIGKILL at every step boundary of a
//! rollback, then started again: the operation ends `succeeded` (or
//! `needs_attention`, waiting for a lead) and Render never receives the
//! rollback twice. The simulators run in their own process (`flightdeck
//! sandbox --no-panel`), so they outlive the panel.

use flightdeck_tests::{Panel, Sandbox, TempDir, cli_with_config, http, session_cookie};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

const BOUNDARIES: [&str; 10] = [
    "freeze:before",
    "freeze:after",
    "render_rollback:before",
    "render_rollback:after",
    "wait_live:before",
    "wait_live:after",
    "smoke:before",
    "smoke:after",
    "notify:before",
    "notify:after",
];

struct Rig {
    sandbox: Sandbox,
    config: PathBuf,
    secrets: Vec<(String, String)>,
}

impl Rig {
    async fn panel(&self, kill_at: Option<&str>) -> Panel {
        let mut env = self.secrets.clone();
        env.push(("FLIGHTDECK_OPERATIONS__LEASE_SECONDS".into(), "1".into()));
        if let Some(at) = kill_at {
            env.push(("FLIGHTDECK_FAULT_KILL_AT".into(), at.into()));
        }
        Panel::start_with_env(&self.config, &env).await
    }

    async fn rollbacks(&self) -> u64 {
        let calls: Value = http()
            .get(format!("{}/_sandbox/calls", self.sandbox.printed["render"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        calls["rollbacks"].as_u64().unwrap()
    }
}

fn post(panel: &Panel, cookie: &str, path: &str) -> reqwest::RequestBuilder {
    http()
        .post(panel.at(path))
        .header("Origin", &panel.url)
        .header("Cookie", cookie)
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_panel_killed_at_every_step_boundary_finishes_the_rollback_after_a_restart_without_resending()
 {
    let dir = TempDir::new("crash");
    let sandbox = Sandbox::start(&dir, &["--seed", "5", "--no-panel"]).await;
    let config = PathBuf::from(&sandbox.printed["config"]);
    let secrets = sandbox.secrets();
    let rig = Rig {
        sandbox,
        config,
        secrets,
    };
    let password = "correct horse battery staple";
    let out = cli_with_config(
        &rig.config,
        &["user", "add", "lee", "--role", "lead"],
        Some(password),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let panel = rig.panel(None).await;
    let login = http()
        .post(panel.at("/auth/login"))
        .header("Origin", &panel.url)
        .form(&[("name", "lee"), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&login).unwrap();
    // Wait for the sync, then learn the two deploys to roll between.
    let mut plan = Value::Null;
    for _ in 0..300 {
        plan = json(
            post(
                &panel,
                &cookie,
                "/api/v1/environments/production/rollbacks/plan",
            )
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        )
        .await;
        if plan["to"].is_object() && plan["from"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ends = [
        plan["to"]["deploy"]["id"].as_str().unwrap().to_owned(),
        plan["from"]["deploy"]["id"].as_str().unwrap().to_owned(),
    ];
    panel.stop().await;

    let mut outcomes = Vec::new();
    for (round, boundary) in BOUNDARIES.iter().enumerate() {
        let before = rig.rollbacks().await;
        let key = format!("crash-{round}");
        let body = json!({ "reason": format!("crash drill at {boundary}"), "target_deploy_id": ends[round % 2] });

        let mut doomed = rig.panel(Some(boundary)).await;
        // Until the sync has seen the last round's rollback go live, the
        // plan (from the store) may still call this target the live one.
        let mut blocks = Vec::new();
        for _ in 0..150 {
            let plan = json(
                post(
                    &doomed,
                    &cookie,
                    "/api/v1/environments/production/rollbacks/plan",
                )
                .json(&json!({ "target_deploy_id": ends[round % 2] }))
                .send()
                .await
                .unwrap(),
            )
            .await;
            blocks = plan["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["level"] == "block")
                .map(|c| c["sentence"].to_string())
                .collect();
            if blocks.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(blocks.is_empty(), "{boundary}: {blocks:?}");
        // The kill may come before the reply is written: the key finds it again.
        let _ = post(
            &doomed,
            &cookie,
            "/api/v1/environments/production/rollbacks",
        )
        .header("Idempotency-Key", &key)
        .json(&body)
        .send()
        .await;
        let status = doomed.exited(Duration::from_secs(60)).await;
        let status = status.unwrap_or_else(|| panic!("the panel was not killed at {boundary}"));
        assert!(!status.success(), "{boundary}: {status:?}");

        let panel = rig.panel(None).await;
        let replay = post(&panel, &cookie, "/api/v1/environments/production/rollbacks")
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 202, "{boundary}");
        assert_eq!(
            replay
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true"),
            "{boundary}: the operation was created before the kill"
        );
        let id = json(replay).await["id"].as_str().unwrap().to_owned();
        let state = flightdeck_tests::settled_state(&panel.url, &cookie, &id).await;
        assert!(
            state == "succeeded" || state == "needs_attention",
            "{boundary}: {state}"
        );
        let sent = rig.rollbacks().await - before;
        outcomes.push(format!("{boundary} → {state}, {sent} rollback call(s)"));
        assert!(sent <= 1, "{boundary}: Render received {sent} rollbacks");
        if state == "succeeded" {
            assert_eq!(sent, 1, "{boundary}");
        } else {
            let resolved = post(&panel, &cookie, &format!("/api/v1/operations/{id}/resolve"))
                .json(&json!({"note": "checked by hand", "outcome": "failed"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resolved.status(), 200);
        }
        let unlocked = http()
            .delete(panel.at("/api/v1/environments/production/lock"))
            .header("Origin", &panel.url)
            .header("Cookie", &cookie)
            .json(&json!({"note": "drill over"}))
            .send()
            .await
            .unwrap();
        assert_eq!(unlocked.status(), 204, "{boundary}");
        panel.stop().await;
    }
    println!("{}", outcomes.join("\n"));
}
