//! Test harness: runs the real `flightdeck` binary on a throw-away store
//! and talks to it over HTTP, like a person or a script would.

pub mod contract;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test (built by `cargo xtask test`).
pub fn binary() -> PathBuf {
    from_env_or("FLIGHTDECK_BIN", "target/debug/flightdeck")
}

/// The site (the browser bundle) built by cargo-leptos.
pub fn site_root() -> PathBuf {
    from_env_or("FLIGHTDECK_SITE_ROOT", "target/site")
}

/// A path from `var`, else `default`; relative paths are taken from the
/// workspace root, because cargo runs each test in its package's folder.
fn from_env_or(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.is_absolute() {
        path
    } else {
        workspace().join(path)
    }
}

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A fresh folder under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("fd-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two environments, as a team would configure them.
pub const ENVIRONMENTS: &str = r#"
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

/// A configured panel: its folder, config file and SQLite store.
pub struct Setup {
    pub dir: TempDir,
    pub config: PathBuf,
    pub store_url: String,
}

impl Setup {
    /// A config with a SQLite store in a new folder; `server` is the
    /// `[server]` body (listen defaults to a free port).
    pub fn new(label: &str, server: &str) -> Setup {
        let dir = TempDir::new(label);
        let store_url = format!("sqlite://{}", dir.0.join("flightdeck.db").display());
        Setup::with_store(dir, store_url, server)
    }

    pub fn with_store(dir: TempDir, store_url: String, server: &str) -> Setup {
        let config = dir.0.join("flightdeck.toml");
        let server = if server.contains("listen") {
            server.to_owned()
        } else {
            format!("listen = \"127.0.0.1:0\"\n{server}")
        };
        let text = format!("[server]\n{server}\n\n[store]\nurl = \"{store_url}\"\n{ENVIRONMENTS}");
        std::fs::write(&config, text).unwrap();
        Setup {
            dir,
            config,
            store_url,
        }
    }

    /// Runs `flightdeck --config <this> ARGS`, feeding `stdin`.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        cli_with_config(&self.config, args, stdin).await
    }

    /// Creates an account with a password and returns the password.
    pub async fn add_user(&self, name: &str, role: &str) -> String {
        let password = format!("{name}-password-long-enough");
        let out = self
            .cli(&["user", "add", name, "--role", role], Some(&password))
            .await;
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        password
    }

    /// Starts `flightdeck serve` and waits until it answers.
    pub async fn serve(&self) -> Panel {
        Panel::start(&self.config).await
    }

    /// The audit trail as `action outcome` lines, oldest first.
    pub async fn audit(&self) -> Vec<AuditRow> {
        audit_rows(&self.store_url).await
    }
}

/// The audit trail of the SQLite store at `store_url`, oldest first.
pub async fn audit_rows(store_url: &str) -> Vec<AuditRow> {
    {
        let pool = sqlx::SqlitePool::connect(store_url)
            .await
            .expect("the test store is a SQLite file");
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT seq, action, outcome, actor_name, target, error, request_id FROM audit_events \
             ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    }
}

/// One audit row, as the tests look at it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub action: String,
    pub outcome: String,
    pub actor_name: String,
    pub target: Option<String>,
    pub error: Option<String>,
    pub request_id: Option<String>,
}

/// Runs the binary with a config file.
pub async fn cli_with_config(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut full = vec!["--config", config.to_str().unwrap()];
    full.extend_from_slice(args);
    run_binary(&full, stdin, &[]).await
}

/// Runs the binary with `args`, `stdin` and extra environment variables.
pub async fn run_binary(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .envs(env.iter().copied())
        .env_remove("FLIGHTDECK_CONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run {}: {e} (build it with `cargo xtask test`)",
            binary().display()
        )
    });
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command finishes within a minute")
        .unwrap()
}

/// A running panel; killed when dropped.
pub struct Panel {
    child: Child,
    pub url: String,
}

impl Panel {
    /// Starts `flightdeck serve` and reads the URL it prints.
    pub async fn start(config: &Path) -> Panel {
        Panel::start_with_env(config, &[]).await
    }

    /// Starts `flightdeck serve` with extra environment variables (secrets,
    /// `FLIGHTDECK_<SECTION>__<KEY>` overrides) and reads the URL it prints.
    pub async fn start_with_env(config: &Path, env: &[(String, String)]) -> Panel {
        Panel::start_logged(config, env, None).await
    }

    /// [`Panel::start_with_env`], writing the panel's log (standard error)
    /// to `log` instead of the test's output.
    pub async fn start_logged(
        config: &Path,
        env: &[(String, String)],
        log: Option<&Path>,
    ) -> Panel {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(binary())
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("FLIGHTDECK_CONFIG")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FLIGHTDECK_SITE_ROOT", site_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("panel ") {
                    return url.trim().to_owned();
                }
            }
            panic!("the panel exited before it printed its URL");
        })
        .await
        .expect("the panel starts within 30 seconds");
        // Keep draining stdout so the panel never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Panel { child, url }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET path`, with a session cookie when given; redirects are not followed.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = http().get(self.at(path));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// Waits up to `limit` for the process to end by itself.
    pub async fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .map(|status| status.unwrap())
    }

    /// Sends SIGTERM and waits for the process to end.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the panel stops within 20 seconds of SIGTERM")
            .unwrap()
    }
}

/// An HTTP client that follows no redirects and keeps no cookies, so tests
/// see every status and every Set-Cookie. Its requests go through the
/// [`contract`] proxy, which checks every `/api/v1` reply against the
/// OpenAPI document.
pub fn http() -> reqwest::Client {
    // Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .proxy(reqwest::Proxy::http(contract::proxy()).expect("the proxy's URL parses"))
        .build()
        .unwrap()
}

/// [`http`] without the contract proxy: for the benchmarks, whose figures
/// must not include a hop through it.
pub fn http_direct() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of the session cookie in a response, if it sets one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookie_line(response).map(|line| line.split(';').next().unwrap().trim().to_owned())
}

/// The whole Set-Cookie line of the session cookie.
pub fn set_cookie_line(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("flightdeck_session="))
        .map(str::to_owned)
}

/// Signs in through the form and returns the response (a redirect).
pub async fn sign_in(panel: &Panel, name: &str, password: &str) -> reqwest::Response {
    http()
        .post(panel.at("/auth/login"))
        .header("Origin", &panel.url)
        .form(&[("name", name), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the session cookie.
pub async fn session_for(panel: &Panel, name: &str, password: &str) -> String {
    let response = sign_in(panel, name, password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    session_cookie(&response).expect("a signed-in response sets the session cookie")
}

/// A running `flightdeck sandbox`; killed when dropped.
pub struct Sandbox {
    child: Child,
    /// What it printed, keyed by the first word (`target-db` lines by
    /// `target-db <env>`).
    pub printed: std::collections::HashMap<String, String>,
}

impl Sandbox {
    /// Starts the sandbox in `dir` with `extra` options and waits for its
    /// `panel` (or, with `--no-panel`, `ready`) line.
    pub async fn start(dir: &TempDir, extra: &[&str]) -> Sandbox {
        let mut args = vec!["--dir", dir.0.to_str().unwrap()];
        args.extend_from_slice(extra);
        Sandbox::launch(&args, &[]).await
    }

    /// Starts `flightdeck sandbox --listen 127.0.0.1:0 ARGS` with extra
    /// environment variables (`TMPDIR` for one without `--dir`) and waits
    /// for its `panel` (or `ready`) line.
    pub async fn launch(args: &[&str], env: &[(&str, &Path)]) -> Sandbox {
        let mut child = Command::new(binary())
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("FLIGHTDECK_CONFIG")
            .env("FLIGHTDECK_SITE_ROOT", site_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = std::collections::HashMap::new();
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Some((key, value)) = line.split_once(' ') else {
                    continue;
                };
                let (key, value) = match (key, value.split_once(' ')) {
                    ("target-db", Some((env, url))) => (format!("target-db {env}"), url.to_owned()),
                    _ => (key.to_owned(), value.to_owned()),
                };
                let done = key == "panel" || key == "ready";
                printed.insert(key, value);
                if done {
                    return;
                }
            }
            panic!("the sandbox exited before it printed its panel's URL");
        })
        .await
        .expect("the sandbox starts within 60 seconds");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Sandbox { child, printed }
    }

    /// Sends `signal` (`TERM`, `INT`, as `kill` names them) and waits for
    /// the process to end.
    pub async fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the sandbox is running");
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the sandbox stops within 30 seconds of SIG{signal}"))
            .unwrap()
    }

    pub fn panel(&self) -> &str {
        &self.printed["panel"]
    }

    /// The secrets of the printed `sandbox.env`, for a panel started apart.
    pub fn secrets(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.printed["env"])
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Signs in with the printed admin sign-in and returns the session cookie.
    pub async fn session(&self) -> String {
        let (name, password) = self.printed["sign-in"].split_once(" / ").unwrap();
        let response = http()
            .post(format!("{}/auth/login", self.panel()))
            .header("Origin", self.panel())
            .form(&[("name", name), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        session_cookie(&response).expect("a signed-in response sets the session cookie")
    }

    /// Waits until the panel's sync shows a live release for every
    /// environment (the store is warm), or panics after `limit`.
    pub async fn wait_for_live_releases(&self, cookie: &str, limit: Duration) {
        wait_for_live_releases(self.panel(), cookie, limit).await
    }
}

/// The JSON body of `GET url` sent with the session `cookie`.
pub async fn get_json(url: &str, cookie: &str) -> serde_json::Value {
    http()
        .get(url)
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the panel at `panel` shows a live release for every
/// environment (its sync has warmed the store), or panics after `limit`.
pub async fn wait_for_live_releases(panel: &str, cookie: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let environments = get_json(&format!("{panel}/api/v1/environments"), cookie).await;
        let all_live = environments
            .as_array()
            .is_some_and(|envs| !envs.is_empty() && envs.iter().all(|e| !e["live"].is_null()));
        if all_live {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live releases after {limit:?}: {environments}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The state of operation `id` once it has left `running`, polling the
/// panel at `panel` (`/api/v1/operations/{id}`) for up to 60 s; still
/// `running` when it has not.
pub async fn settled_state(panel: &str, cookie: &str, id: &str) -> String {
    let mut state = String::new();
    for _ in 0..300 {
        let op = get_json(&format!("{panel}/api/v1/operations/{id}"), cookie).await;
        state = op["brief"]["state"].as_str().unwrap_or_default().to_owned();
        if state != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    state
}
