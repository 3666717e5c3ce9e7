//! `flightdeck sandbox`, as the README's run command starts it.

use flightdeck_tests::{TempDir, binary, http, session_cookie, site_root};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts the sandbox and returns what it printed, keyed by the first word.
async fn start(dir: &TempDir) -> (tokio::process::Child, HashMap<String, String>) {
    let mut child = tokio::process::Command::new(binary())
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            dir.0.to_str().unwrap(),
        ])
        .env_remove("FLIGHTDECK_CONFIG")
        .env("FLIGHTDECK_SITE_ROOT", site_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = HashMap::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let (key, value) = line.split_once(' ').unwrap();
            printed.insert(key.to_owned(), value.to_owned());
            if key == "panel" {
                return;
            }
        }
        panic!("the sandbox exited before it printed the panel's URL");
    })
    .await
    .expect("the sandbox starts within 30 seconds");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, printed)
}

#[tokio::test]
async fn the_sandbox_prints_its_services_config_and_a_sign_in_that_works() {
    let dir = TempDir::new("sandbox");
    let (_child, printed) = start(&dir).await;

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
    assert_eq!(statuses.len(), 6);
    assert_eq!(
        statuses[0], "live",
        "the newest deploy is live: {statuses:?}"
    );
    assert!(statuses.contains(&"build_failed"), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "live").count(), 1);
}
