//! The command line, run as a user would: exit codes, messages, the store left behind.

use flightdeck_sandbox::scratch::ScratchDb;
use flightdeck_tests::{Setup, TempDir, cli_with_config, run_binary};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn migrate_with(text: &str) -> std::process::Output {
    let dir = TempDir::new("cli-config");
    let path = dir.0.join("flightdeck.toml");
    std::fs::write(&path, text).unwrap();
    cli_with_config(&path, &["migrate"], None).await
}

/// Each kind of config error stops with exit code 2 and one line naming the key.
#[tokio::test]
async fn every_kind_of_config_error_exits_2_and_names_the_key() {
    let cases = [
        (
            "[server]\nlisten_on = \"127.0.0.1:1\"\n",
            "server.listen_on",
        ),
        (
            "[server]\nsession_idle_minutes = \"soon\"\n",
            "server.session_idle_minutes",
        ),
        ("[github]\nowner = \"o\"\n", "github.repo"),
        (
            "[server]\npublic_url = \"localhost without scheme\"\n",
            "server.public_url",
        ),
        (
            "[render]\napi_url = \"ftp://render.example\"\n",
            "render.api_url",
        ),
        ("[store]\nurl = \"mysql://db\"\n", "store.url"),
    ];
    for (text, key) in cases {
        let out = migrate_with(text).await;
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{key}: {message}");
        assert!(
            message.contains(key),
            "the message names `{key}`: {message}"
        );
        assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");
    }
}

#[tokio::test]
async fn an_unreadable_config_file_exits_2_and_names_the_file() {
    let out = run_binary(
        &["--config", "/nonexistent/flightdeck.toml", "migrate"],
        None,
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/flightdeck.toml"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_bad_environment_override_exits_2_and_names_the_key() {
    let setup = Setup::new("cli-override", "");
    let out = run_binary(
        &["--config", setup.config.to_str().unwrap(), "migrate"],
        None,
        &[("FLIGHTDECK_SERVER__SESSION_IDLE_MINUTES", "soon")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("server.session_idle_minutes"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let out = run_binary(&["user", "add", "ada", "--role", "root"], None, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("root"));
}

#[tokio::test]
async fn migrate_creates_the_sqlite_store_on_first_run() {
    let setup = Setup::new("cli-migrate", "");
    let db = setup.dir.0.join("flightdeck.db");
    assert!(!db.exists());
    let out = setup.cli(&["migrate"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.exists());
    assert!(stdout(&out).contains("sqlite"));
}

#[tokio::test]
async fn user_add_generates_a_password_once_or_takes_one_from_stdin() {
    let setup = Setup::new("cli-user", "");
    let generated = setup
        .cli(&["user", "add", "ada", "--role", "lead"], None)
        .await;
    assert!(generated.status.success(), "{}", stderr(&generated));
    let text = stdout(&generated);
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed");
    assert!(password.len() >= 20);

    let piped = setup
        .cli(
            &["user", "add", "bob", "--role", "viewer"],
            Some("bob's long password\n"),
        )
        .await;
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(
        !stdout(&piped).contains("password:"),
        "a given password is not echoed"
    );

    let again = setup
        .cli(&["user", "add", "ada", "--role", "viewer"], None)
        .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));

    let disabled = setup.cli(&["user", "disable", "bob"], None).await;
    assert!(disabled.status.success());
    let missing = setup.cli(&["user", "disable", "nobody"], None).await;
    assert_eq!(missing.status.code(), Some(1));

    let trail: Vec<_> = setup
        .audit()
        .await
        .into_iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.action,
                r.outcome,
                r.target.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            "user.add succeeded ada",
            "user.add succeeded bob",
            "user.disable succeeded bob"
        ]
    );
}

/// The SQLite file with the audit triggers dropped, as an attacker with
/// file access would leave it.
async fn tamper(setup: &Setup, sql: &str) {
    let pool = sqlx::SqlitePool::connect(&setup.store_url).await.unwrap();
    sqlx::raw_sql("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn trail_of_five(label: &str) -> Setup {
    let setup = Setup::new(label, "");
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        let out = setup
            .cli(&["user", "add", name, "--role", "viewer"], None)
            .await;
        assert!(out.status.success());
    }
    setup
}

#[tokio::test]
async fn audit_verify_passes_on_a_clean_trail_with_its_count() {
    let setup = trail_of_five("cli-verify").await;
    let out = setup.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("5 events"), "{}", stdout(&out));
}

#[tokio::test]
async fn audit_verify_names_an_edited_row() {
    let setup = trail_of_five("cli-edit").await;
    tamper(
        &setup,
        "UPDATE audit_events SET target = 'mallory' WHERE seq = 3",
    )
    .await;
    let out = setup.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("seq 3"), "{}", stderr(&out));
}

#[tokio::test]
async fn audit_verify_names_a_deleted_row() {
    let setup = trail_of_five("cli-delete").await;
    tamper(&setup, "DELETE FROM audit_events WHERE seq = 2").await;
    let out = setup.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("seq 2"), "{}", stderr(&out));
}

#[tokio::test]
async fn audit_verify_names_two_swapped_rows() {
    let setup = trail_of_five("cli-swap").await;
    tamper(
        &setup,
        "UPDATE audit_events SET seq = -1 WHERE seq = 2; \
         UPDATE audit_events SET seq = 2 WHERE seq = 4; \
         UPDATE audit_events SET seq = 4 WHERE seq = -1;",
    )
    .await;
    let out = setup.cli(&["audit", "verify"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("seq 2"), "{}", stderr(&out));
}

/// The same commands against a PostgreSQL store.
#[tokio::test]
async fn the_cli_works_on_a_postgres_store() {
    let scratch = ScratchDb::postgres().await;
    let setup = Setup::with_store(TempDir::new("cli-pg"), scratch.url.clone(), "");
    let added = setup
        .cli(&["user", "add", "ada", "--role", "admin"], None)
        .await;
    assert!(added.status.success(), "{}", stderr(&added));
    let verify = setup.cli(&["audit", "verify"], None).await;
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(stdout(&verify).contains("1 events"));
    scratch.drop_all().await;
}

#[tokio::test]
async fn audit_export_streams_json_lines_and_csv_and_refuses_an_unknown_format() {
    let setup = Setup::new("cli-export", "");
    setup.add_user("ada", "viewer").await;
    setup.add_user("bob", "lead").await;
    let out = setup
        .cli(&["audit", "export", "--format", "jsonl"], None)
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let actions: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["user.add", "user.add", "audit.export"]);

    let out = setup
        .cli(
            &["audit", "export", "--since", "2000-01-01T00:00:00Z"],
            None,
        )
        .await;
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 4,
        "a header and four events: {csv}"
    );

    // Filters combine, as on the page and in the API.
    let out = setup
        .cli(
            &[
                "audit",
                "export",
                "--format",
                "jsonl",
                "--action",
                "user.add",
                "--outcome",
                "succeeded",
                "--target",
                "bob",
            ],
            None,
        )
        .await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"target\":\"bob\""), "{text}");

    let out = setup
        .cli(&["audit", "export", "--format", "xml"], None)
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("csv or jsonl"));
}
