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
