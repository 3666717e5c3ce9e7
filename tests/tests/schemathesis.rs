//! schemathesis (PyPI, installed by `cargo xtask tools`/`test` into its own
//! virtualenv) against a `flightdeck sandbox` panel, with a lead's API
//! token: every operation of `docs/openapi.json` gets generated input, first
//! only invalid input (its own pass, schemathesis' coverage phase in
//! negative mode, between two readings of the simulators' call counts:
//! invalid input must change nothing upstream), then valid and invalid
//! input from every phase. Every check schemathesis has (but one, below)
//! runs on every reply;
//! the test wants no failure at all, so no 5xx and no reply outside the
//! document. The figures go to standard error and into the README.

use flightdeck_tests::{Sandbox, TempDir, cli_with_config, http};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Test cases per operation and phase: enough to reach every field, small
/// enough for CI (the whole test takes a few minutes).
const MAX_EXAMPLES: &str = "40";
/// The same inputs on every run.
const SEED: &str = "20261208";

/// The schemathesis command (`FLIGHTDECK_SCHEMATHESIS`, else where
/// `cargo xtask tools` installs it).
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("FLIGHTDECK_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".local/share/flightdeck-tools/schemathesis-venv/bin/schemathesis")
        });
    assert!(
        path.exists(),
        "{} is missing: `cargo xtask tools` installs schemathesis",
        path.display()
    );
    path
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

async fn upstream(sandbox: &Sandbox) -> (Value, Value) {
    (
        calls(&sandbox.printed["render"]).await,
        calls(&sandbox.printed["github"]).await,
    )
}

/// What one schemathesis pass found.
#[derive(Debug)]
struct Pass {
    mode: &'static str,
    operations: u64,
    cases: u64,
    failures: u64,
    output: String,
}

/// Runs schemathesis in `mode` against the panel with `token`, with the
/// parameters in `config` (schemathesis.toml).
async fn run(
    panel: &str,
    token: &str,
    (mode, phases): (&'static str, &str),
    dir: &Path,
    config: &Path,
) -> Pass {
    let report = dir.join(format!("schemathesis-{mode}.json"));
    let output = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{panel}/api/v1/openapi.json"))
        .args(["--url", panel])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // schemathesis also sends a cookie for the document's session
        // scheme; a request with a cookie must name the panel's origin.
        .args(["--header", &format!("Origin: {panel}")])
        .args(["--mode", mode])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .args(["--checks", "all"])
        // A request the schema allows may still be refused by the rules
        // with 422 (no reason given, a preflight check blocks, a time that
        // does not parse): the rules are not all in the schema.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--phases", phases])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--continue-on-failure", "--no-shrink"])
        .args(["--report", "json,har,ndjson", "--report-json-path"])
        .arg(&report)
        .arg("--report-har-path")
        .arg(dir.join(format!("schemathesis-{mode}.har")))
        .arg("--report-ndjson-path")
        .arg(dir.join(format!("schemathesis-{mode}.ndjson")))
        // Its cache (`.schemathesis/`) goes with the test's folder.
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), output)
        .await
        .expect("a schemathesis pass ends within 10 minutes")
        .expect("schemathesis starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let figures = figures(&report).unwrap_or_else(|| {
        panic!(
            "schemathesis wrote no report ({}); its output:\n{text}",
            output.status
        )
    });
    Pass {
        mode,
        operations: figures.0,
        cases: figures.1,
        failures: figures.2,
        output: text,
    }
}

/// (operations tested, test cases, failures and errors) from schemathesis'
/// JSON report, checking that it ran to the end and tested every operation.
fn figures(report: &Path) -> Option<(u64, u64, u64)> {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(report).ok()?).ok()?;
    let number = |pointer: &str| report.pointer(pointer).and_then(Value::as_u64);
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(
        number("/operations/tested"),
        number("/operations/total"),
        "every operation is tested: {report}"
    );
    Some((
        number("/operations/tested")?,
        number("/test_cases/generated")?,
        number("/test_cases/with_failures")?
            + report["errors"].as_array().map_or(0, |e| e.len() as u64),
    ))
}

/// How many test cases of a pass schemathesis generated as valid
/// (`positive`) and as invalid (`negative`), from its event stream.
fn generated_modes(ndjson: &Path) -> (u64, u64) {
    fn walk(value: &Value, counts: &mut (u64, u64)) {
        match value {
            Value::Object(map) => {
                if let Some(cases) = map.get("cases").and_then(Value::as_object) {
                    for case in cases.values() {
                        match case
                            .pointer("/value/meta/generation/mode")
                            .and_then(Value::as_str)
                        {
                            Some("positive") => counts.0 += 1,
                            Some("negative") => counts.1 += 1,
                            _ => {}
                        }
                    }
                }
                map.values().for_each(|v| walk(v, counts));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, counts)),
            _ => {}
        }
    }
    let mut counts = (0, 0);
    let text = std::fs::read_to_string(ndjson).unwrap_or_default();
    for line in text.lines() {
        if let Ok(event) = serde_json::from_str::<Value>(line) {
            walk(&event, &mut counts);
        }
    }
    counts
}

/// The state-changing requests of a pass that got a 2xx, from its HAR file.
fn accepted_changes(har: &Path) -> String {
    let har: Value = std::fs::read_to_string(har)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let entries = har.pointer("/log/entries").and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .filter(|e| e["request"]["method"] != "GET")
        .filter(|e| e["response"]["status"].as_u64().is_some_and(|s| s < 300))
        .map(|e| {
            let headers: Vec<String> = e["request"]["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| format!("{}: {}", h["name"], h["value"]))
                .collect();
            format!(
                "{} {} {} {:?} -> {}",
                e["request"]["method"],
                e["request"]["url"],
                e["request"]["postData"]["text"],
                headers,
                e["response"]["status"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_no_reply_outside_the_document_and_no_upstream_change_from_invalid_input()
 {
    let dir = TempDir::new("schemathesis");
    let sandbox = Sandbox::start(&dir, &["--seed", "3"]).await;
    let admin = sandbox.session().await;
    sandbox
        .wait_for_live_releases(&admin, Duration::from_secs(120))
        .await;
    let config = PathBuf::from(&sandbox.printed["config"]);
    let added = cli_with_config(
        &config,
        &["user", "add", "lena", "--role", "lead"],
        Some("correct horse battery staple"),
    )
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let created = cli_with_config(
        &config,
        &["token", "create", "lena", "--label", "schemathesis"],
        None,
    )
    .await;
    let printed = String::from_utf8_lossy(&created.stdout).into_owned();
    let token = printed
        .lines()
        .find_map(|l| l.strip_prefix("token "))
        .unwrap_or_else(|| panic!("token create printed {printed}"))
        .trim()
        .to_owned();
    let panel = sandbox.panel().to_owned();
    // Every path names a configured environment, so the generated requests
    // reach the rules rather than a 404; the valid pass also names a real
    // run. (A parameter fixed here cannot be made invalid, and with nothing
    // else to break schemathesis sends the request as it is: the invalid
    // pass leaves the run ids to the generator, which makes them invalid.)
    let environment = "[parameters]\n\"path.env\" = \"production\"\n";
    let invalid_config = dir.0.join("schemathesis-negative.toml");
    std::fs::write(&invalid_config, environment).unwrap();
    let runs: Value = http()
        .get(format!(
            "{panel}/api/v1/environments/production/runs?limit=1"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = runs["items"][0]["id"].as_u64().expect("a seeded run");
    let valid_config = dir.0.join("schemathesis-positive.toml");
    std::fs::write(
        &valid_config,
        format!(
            "{environment}\n[[operations]]\ninclude-path-regex = \"^/api/v1/runs/\"\n\
             parameters = {{ \"path.id\" = {run_id} }}\n"
        ),
    )
    .unwrap();

    let before = upstream(&sandbox).await;
    let negative = run(
        &panel,
        &token,
        ("negative", "examples,coverage"),
        &dir.0,
        &invalid_config,
    )
    .await;
    let after = upstream(&sandbox).await;
    let (valid, invalid) = generated_modes(&dir.0.join("schemathesis-negative.ndjson"));
    assert_eq!(valid, 0, "the invalid pass sent only invalid input");
    assert!(invalid > 100, "{invalid} invalid test cases");
    let positive = run(
        &panel,
        &token,
        ("all", "examples,coverage,fuzzing"),
        &dir.0,
        &valid_config,
    )
    .await;

    for pass in [&negative, &positive] {
        eprintln!(
            "schemathesis {}: {} operations, {} test cases, {} failures",
            pass.mode, pass.operations, pass.cases, pass.failures
        );
    }
    assert_eq!(
        before,
        after,
        "invalid input changed something upstream (Render, GitHub call counts); \
         the changes it accepted:\n{}",
        accepted_changes(&dir.0.join("schemathesis-negative.har"))
    );
    for pass in [&negative, &positive] {
        assert!(pass.operations >= 21, "{pass:?}");
        assert!(pass.cases > 100, "{pass:?}");
        assert_eq!(pass.failures, 0, "{} pass:\n{}", pass.mode, pass.output);
    }
}
