//! `GET /api/v1/audit/export` read by clients that ask for gzip and fail on
//! a body cut short: reqwest (its `gzip` feature) and curl `--fail
//! --compressed`. The export runs over several store pages and must be
//! byte for byte what `flightdeck audit export` writes for the same store.

#[path = "support/audit_trail.rs"]
mod audit_trail;

use flightdeck_tests::{Panel, Setup, TempDir, session_for};

/// Two and a half export pages.
const EVENTS: usize = audit_trail::EXPORT_PAGE * 5 / 2;

struct Trail {
    setup: Setup,
    panel: Panel,
    cookie: String,
    until: String,
}

/// A panel on a store with [`EVENTS`] events and a lead signed in.
async fn a_panel_with_a_long_trail(label: &str) -> Trail {
    let setup = Setup::new(label, "");
    let until = audit_trail::seed(&setup.store_url, EVENTS).await;
    let password = setup.add_user("lena", "lead").await;
    let panel = setup.serve().await;
    let cookie = session_for(&panel, "lena", &password).await;
    Trail {
        setup,
        panel,
        cookie,
        until,
    }
}

impl Trail {
    fn url(&self, format: &str) -> String {
        self.panel.at(&format!(
            "/api/v1/audit/export?format={format}&until={}",
            self.until
        ))
    }

    /// What `flightdeck audit export` writes for the same filter.
    async fn cli_export(&self, format: &str) -> Vec<u8> {
        let out = self
            .setup
            .cli(
                &[
                    "audit",
                    "export",
                    "--format",
                    format,
                    "--until",
                    &self.until,
                ],
                None,
            )
            .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The panel's `/metrics` has counted no body that panicked.
    async fn no_body_panicked(&self) {
        let metrics = flightdeck_tests::http()
            .get(self.panel.at("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("# TYPE flightdeck_body_panics_total counter"),
            "{metrics}"
        );
        assert!(
            !metrics.contains("flightdeck_body_panics_total{"),
            "a body panicked: {metrics}"
        );
    }
}

/// The JSON Lines export has one line per seeded event, in order.
fn assert_every_event(jsonl: &[u8]) {
    let text = std::str::from_utf8(jsonl).unwrap();
    let targets: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["target"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..EVENTS).map(|i| format!("op_{i:06}")).collect();
    assert_eq!(targets, expected);
}

#[tokio::test]
async fn a_gzip_client_reads_the_whole_export_as_the_cli_writes_it_in_both_formats() {
    let trail = a_panel_with_a_long_trail("export-reqwest").await;
    // The gzip feature decodes the body and fails on a truncated stream.
    let client = reqwest::Client::builder().gzip(true).build().unwrap();
    for format in ["csv", "jsonl"] {
        // The same request, undecoded, to see that it was compressed.
        let raw = reqwest::Client::builder()
            .gzip(false)
            .build()
            .unwrap()
            .get(trail.url(format))
            .header("Cookie", &trail.cookie)
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 200);
        assert_eq!(raw.headers()["content-encoding"], "gzip");
        drop(raw);

        let response = client
            .get(trail.url(format))
            .header("Cookie", &trail.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{format}");
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("the {format} export was cut short: {e:?}"));
        let cli = trail.cli_export(format).await;
        assert!(cli.len() > 500_000, "several pages: {} bytes", cli.len());
        assert!(
            body[..] == cli[..],
            "{format}: {} bytes over HTTP, {} from the CLI",
            body.len(),
            cli.len()
        );
        if format == "jsonl" {
            assert_every_event(&body);
        }
    }
    trail.no_body_panicked().await;
}

#[tokio::test]
async fn curl_with_fail_and_compressed_reads_the_whole_export_as_the_cli_writes_it() {
    let trail = a_panel_with_a_long_trail("export-curl").await;
    let out = TempDir::new("export-curl-out");
    for format in ["csv", "jsonl"] {
        let body = out.0.join(format!("export.{format}"));
        let headers = out.0.join(format!("headers.{format}"));
        let curl = tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--compressed"])
            .arg("--max-time")
            .arg("60")
            .arg("--header")
            .arg(format!("Cookie: {}", trail.cookie))
            .arg("--dump-header")
            .arg(&headers)
            .arg("--output")
            .arg(&body)
            .arg(trail.url(format))
            .output()
            .await
            .expect("curl is installed");
        assert_eq!(
            curl.status.code(),
            Some(0),
            "curl: {}",
            String::from_utf8_lossy(&curl.stderr)
        );
        let headers = std::fs::read_to_string(&headers).unwrap().to_lowercase();
        assert!(headers.contains("content-encoding: gzip"), "{headers}");
        let body = std::fs::read(&body).unwrap();
        let cli = trail.cli_export(format).await;
        assert!(
            body == cli,
            "{format}: {} bytes through curl, {} from the CLI",
            body.len(),
            cli.len()
        );
        if format == "jsonl" {
            assert_every_event(&body);
        }
    }
    trail.no_body_panicked().await;
}
