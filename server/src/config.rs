//! The configuration file (`flightdeck.toml`) and its environment overrides.
//!
//! Parsing goes file → TOML tree → overrides from `FLIGHTDECK_<SECTION>__<KEY>`
//! → typed [`Config`], so every error can name the key it is about.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// The prefix of the variables that override keys of the file.
pub const ENV_PREFIX: &str = "FLIGHTDECK_";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    pub github: Option<GithubConfig>,
    pub render: Option<RenderConfig>,
    #[serde(default, rename = "environment")]
    pub environments: Vec<EnvironmentConfig>,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub operations: OperationsConfig,
    /// Secret values given by the process that embeds the panel (the
    /// sandbox), looked up before the environment.
    #[serde(skip)]
    pub secrets: SecretOverrides,
}

/// `[sync]`: how often the panel polls each upstream, and how far it backs
/// off while one fails. Webhooks, when configured, make changes show at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_seconds: u64,
    /// How far back the first sync reads deploys and runs (the backfill).
    #[serde(default = "default_history_days")]
    pub history_days: u32,
    /// At most this many upstream requests per pass and source go to the
    /// backfill; the rest of the history comes in the next passes.
    #[serde(default = "default_backfill_requests")]
    pub backfill_requests_per_pass: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            interval_seconds: default_interval(),
            max_backoff_seconds: default_max_backoff(),
            history_days: default_history_days(),
            backfill_requests_per_pass: default_backfill_requests(),
        }
    }
}

fn default_history_days() -> u32 {
    90
}

fn default_backfill_requests() -> u32 {
    50
}

fn default_interval() -> u64 {
    30
}

fn default_max_backoff() -> u64 {
    600
}

/// `[operations]`: how rollbacks and deploys started from the panel run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationsConfig {
    /// How a rollback reverts the code on GitHub.
    #[serde(default)]
    pub revert: RevertConfig,
    /// The variable holding the URL the outcome of each operation is
    /// posted to (JSON with a Slack-compatible `text`); optional.
    pub notify_webhook_env: Option<String>,
    /// Deploy through the environment's deploy hook when the Render API
    /// key is missing (the hook's deploys are not attributed).
    #[serde(default)]
    pub deploy_hook_fallback: bool,
    /// How long a deploy or rollback may take to go live.
    #[serde(default = "default_live_timeout")]
    pub live_timeout_seconds: u64,
    /// How long the smoke check retries before it fails.
    #[serde(default = "default_smoke_timeout")]
    pub smoke_timeout_seconds: u64,
    /// How long the migration runner may take.
    #[serde(default = "default_runner_timeout")]
    pub runner_timeout_seconds: u64,
    /// How long a panel holds an operation without renewing it; after
    /// that another panel (or this one restarted) takes it over.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            revert: RevertConfig::default(),
            notify_webhook_env: None,
            deploy_hook_fallback: false,
            live_timeout_seconds: default_live_timeout(),
            smoke_timeout_seconds: default_smoke_timeout(),
            runner_timeout_seconds: default_runner_timeout(),
            lease_seconds: default_lease(),
        }
    }
}

/// How the code revert lands on the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevertConfig {
    #[default]
    PullRequest,
    FastForward,
}

fn default_live_timeout() -> u64 {
    900
}
fn default_smoke_timeout() -> u64 {
    120
}
fn default_runner_timeout() -> u64 {
    900
}
fn default_lease() -> u64 {
    30
}

/// Secret values by variable name; `Debug` shows only the names.
#[derive(Clone, Default)]
pub struct SecretOverrides(std::sync::Arc<std::collections::BTreeMap<String, String>>);

impl fmt::Debug for SecretOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address people type; `https` turns on Secure cookies.
    #[serde(default = "default_public_url")]
    pub public_url: Url,
    /// A session unused this long ends.
    #[serde(default = "default_idle_minutes")]
    pub session_idle_minutes: u32,
    /// A session ends this long after sign-in, used or not.
    #[serde(default = "default_absolute_hours")]
    pub session_absolute_hours: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: default_public_url(),
            session_idle_minutes: default_idle_minutes(),
            session_absolute_hours: default_absolute_hours(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
fn default_public_url() -> Url {
    Url::parse("http://localhost:3000").expect("a valid literal URL")
}
fn default_idle_minutes() -> u32 {
    8 * 60
}
fn default_absolute_hours() -> u32 {
    24
}

/// `[store]`: the panel's own data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_store_url")]
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
        }
    }
}

fn default_store_url() -> String {
    "sqlite://flightdeck.db".to_owned()
}

/// `[github]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    #[serde(default = "default_github_api")]
    pub api_url: Url,
    pub owner: String,
    pub repo: String,
    #[serde(default = "default_github_token_env")]
    pub token_env: String,
    #[serde(default = "default_github_webhook_env")]
    pub webhook_secret_env: String,
}

fn default_github_api() -> Url {
    Url::parse("https://api.github.com").expect("a valid literal URL")
}
fn default_github_token_env() -> String {
    "GITHUB_TOKEN".to_owned()
}
fn default_github_webhook_env() -> String {
    "GITHUB_WEBHOOK_SECRET".to_owned()
}

/// `[render]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderConfig {
    #[serde(default = "default_render_api")]
    pub api_url: Url,
    #[serde(default = "default_render_key_env")]
    pub api_key_env: String,
    #[serde(default = "default_render_webhook_env")]
    pub webhook_secret_env: String,
}

fn default_render_api() -> Url {
    Url::parse("https://api.render.com/v1").expect("a valid literal URL")
}
fn default_render_key_env() -> String {
    "RENDER_API_KEY".to_owned()
}
fn default_render_webhook_env() -> String {
    "RENDER_WEBHOOK_SECRET".to_owned()
}

/// One `[[environment]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    pub name: EnvironmentName,
    pub branch: String,
    pub deploy_workflow: String,
    pub render_service_id: String,
    pub deploy_hook_env: Option<String>,
    pub database_url_env: String,
    #[serde(default = "default_migrations_path")]
    pub migrations_path: String,
    pub migration_runner: MigrationRunner,
    pub smoke_url_env: String,
    #[serde(default = "default_smoke_path")]
    pub smoke_path: String,
    #[serde(default)]
    pub require_approval_for: Vec<ApprovalKind>,
    /// Refused attempts on a production environment go to the leads'
    /// review queue. Default: true for an environment named `production`.
    pub production: Option<bool>,
}

fn default_migrations_path() -> String {
    "alembic/versions".to_owned()
}
fn default_smoke_path() -> String {
    "/health".to_owned()
}

/// How the database of an environment is downgraded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MigrationRunner {
    /// Dispatch a GitHub Actions workflow with the target revision as input.
    Workflow { workflow: String },
    /// Run a command (`{revision}` is replaced) in a directory.
    Command {
        command: String,
        dir: Option<PathBuf>,
    },
}

/// Actions that need a second lead's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    DatabaseDowngrade,
    CodeRollback,
}

pub use domain::EnvironmentName;

/// Why the configuration cannot be used. Each renders as one line that
/// names the key (or the file) it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: cannot read it: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config file {path}: line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads `path` (if given), applies the overrides in `vars`, and checks the result.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut tree = match path {
            Some(path) => read_tree(path)?,
            None => toml::Table::new(),
        };
        apply_overrides(&mut tree, vars)?;
        Config::from_tree(tree)
    }

    /// Parses a configuration from TOML text, without overrides (for tests and the sandbox).
    /// The same configuration, with secret values that win over the
    /// environment's (for a process that embeds the panel).
    pub fn with_secrets(mut self, secrets: std::collections::BTreeMap<String, String>) -> Config {
        self.secrets = SecretOverrides(std::sync::Arc::new(secrets));
        self
    }

    /// The secret named by a `*_env` key: an override, else the environment.
    pub fn secret(&self, var: &str) -> Option<Secret> {
        self.secrets
            .0
            .get(var)
            .filter(|v| !v.is_empty())
            .map(|v| Secret(v.clone()))
            .or_else(|| Secret::from_env(var))
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let tree = parse_tree(text, Path::new("<inline>"))?;
        Config::from_tree(tree)
    }

    fn from_tree(tree: toml::Table) -> Result<Config, ConfigError> {
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().to_string();
                ConfigError::invalid(key_of(&path, &message), first_line(&message))
            })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        check_http_url("server.public_url", &self.server.public_url)?;
        if self.server.session_idle_minutes == 0 {
            return Err(ConfigError::invalid(
                "server.session_idle_minutes",
                "must be at least 1",
            ));
        }
        if self.server.session_absolute_hours == 0 {
            return Err(ConfigError::invalid(
                "server.session_absolute_hours",
                "must be at least 1",
            ));
        }
        if self.sync.history_days == 0 {
            return Err(ConfigError::invalid(
                "sync.history_days",
                "must be at least 1",
            ));
        }
        if self.sync.backfill_requests_per_pass == 0 {
            return Err(ConfigError::invalid(
                "sync.backfill_requests_per_pass",
                "must be at least 1",
            ));
        }
        let store = &self.store.url;
        if !(store.starts_with("sqlite:")
            || store.starts_with("postgres://")
            || store.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "store.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if store.starts_with("postgres") {
            Url::parse(store)
                .map_err(|e| ConfigError::invalid("store.url", format!("invalid URL: {e}")))?;
        }
        if let Some(github) = &self.github {
            check_http_url("github.api_url", &github.api_url)?;
        }
        if let Some(render) = &self.render {
            check_http_url("render.api_url", &render.api_url)?;
        }
        let mut seen = BTreeSet::new();
        for (i, env) in self.environments.iter().enumerate() {
            if !seen.insert(env.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("environment[{i}].name"),
                    format!("`{}` is used by two environments", env.name),
                ));
            }
            if !env.smoke_path.starts_with('/') {
                return Err(ConfigError::invalid(
                    format!("environment[{i}].smoke_path"),
                    "must start with /",
                ));
            }
        }
        Ok(())
    }

    /// The environment called `name`, if configured.
    pub fn environment(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|e| e.name.as_str() == name)
    }

    /// Whether cookies must be marked Secure.
    pub fn https(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }
}

impl EnvironmentConfig {
    /// Whether this environment counts as production (see `production`).
    pub fn is_production(&self) -> bool {
        self.production
            .unwrap_or(self.name.as_str() == "production")
    }

    /// The names of the secret variables this environment needs, for the page
    /// that says which ones are missing.
    pub fn secret_vars(&self) -> Vec<&str> {
        let mut vars = vec![self.database_url_env.as_str(), self.smoke_url_env.as_str()];
        if let Some(hook) = &self.deploy_hook_env {
            vars.push(hook);
        }
        vars
    }
}

fn check_http_url(key: &str, url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(()),
        other => Err(ConfigError::invalid(
            key,
            format!("`{url}` is not an http(s) URL (scheme `{other}`)"),
        )),
    }
}

/// serde reports a missing or unknown field at the parent's path; the
/// person needs the full key.
fn key_of(path: &str, message: &str) -> String {
    let field = ["missing field `", "unknown field `", "unknown variant `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let base = if path == "." { "" } else { path };
    match field {
        Some(_) if message.starts_with("unknown variant") => base.to_owned(),
        Some(field) if !base.ends_with(field) => {
            if base.is_empty() {
                field.to_owned()
            } else {
                format!("{base}.{field}")
            }
        }
        _ if base.is_empty() => "(top level)".to_owned(),
        _ => base.to_owned(),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
}

fn read_tree(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    parse_tree(&text, path)
}

fn parse_tree(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1))
            .unwrap_or(1);
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            message: first_line(e.message()),
        }
    })
}

/// Applies `FLIGHTDECK_<SECTION>__<KEY>=value` (and, for environments,
/// `FLIGHTDECK_ENVIRONMENT__<NAME>__<KEY>`). Values are read as TOML
/// literals where that fits the key's current type, else as strings.
fn apply_overrides(
    tree: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue; // FLIGHTDECK_CONFIG, FLIGHTDECK_LOG and friends
        }
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let slot = match parts.as_slice() {
            [section, key] if section != "environment" => {
                let table = tree
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(table) = table.as_table_mut() else {
                    return Err(ConfigError::invalid(
                        section.as_str(),
                        format!("{var} overrides a key of a section that is not a table"),
                    ));
                };
                (table, key.clone())
            }
            [section, name, key] if section == "environment" => {
                let envs = tree
                    .get_mut("environment")
                    .and_then(|v| v.as_array_mut())
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            format!("environment.{name}"),
                            format!("{var} names an environment that the file does not define"),
                        )
                    })?;
                let table = envs
                    .iter_mut()
                    .filter_map(|v| v.as_table_mut())
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name.as_str()))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            format!("environment.{name}"),
                            format!("{var} names an environment that the file does not define"),
                        )
                    })?;
                (table, key.clone())
            }
            _ => {
                return Err(ConfigError::invalid(
                    rest.to_ascii_lowercase().replace("__", "."),
                    format!("{var} is not of the form FLIGHTDECK_<SECTION>__<KEY>"),
                ));
            }
        };
        let (table, key) = slot;
        let value = override_value(table.get(&key), &raw);
        table.insert(key, value);
    }
    Ok(())
}

fn override_value(current: Option<&toml::Value>, raw: &str) -> toml::Value {
    if matches!(current, Some(toml::Value::String(_))) {
        return toml::Value::String(raw.to_owned());
    }
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// A secret read from the environment. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Reads the variable `name`; `None` when unset or empty.
    pub fn from_env(name: &str) -> Option<Secret> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret)
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = r#"
[[environment]]
name = "production"
branch = "main"
deploy_workflow = "deploy.yml"
render_service_id = "srv-prod"
database_url_env = "DS_DATABASE_URL"
migration_runner = { kind = "workflow", workflow = "db-rollback.yml" }
smoke_url_env = "BACKEND_URL"
"#;

    fn key_of_error(text: &str) -> String {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid-key error, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_file_gives_the_embedded_defaults() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(config.store.url, "sqlite://flightdeck.db");
        assert!(config.environments.is_empty());
        assert!(!config.https());
    }

    #[test]
    fn a_full_environment_parses() {
        let config = Config::from_toml(ENV).unwrap();
        let env = config.environment("production").unwrap();
        assert_eq!(env.smoke_path, "/health");
        assert_eq!(
            env.migration_runner,
            MigrationRunner::Workflow {
                workflow: "db-rollback.yml".into()
            }
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_section() {
        assert_eq!(
            key_of_error("[server]\nlisten_on = \"x\"\n"),
            "server.listen_on"
        );
        assert_eq!(key_of_error("[servr]\n"), "servr");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        assert_eq!(
            key_of_error("[server]\nsession_idle_minutes = \"soon\"\n"),
            "server.session_idle_minutes"
        );
        assert_eq!(
            key_of_error("[server]\nlisten = \"nowhere\"\n"),
            "server.listen"
        );
    }

    #[test]
    fn a_missing_required_key_is_named() {
        assert_eq!(key_of_error("[github]\nowner = \"o\"\n"), "github.repo");
        let without_branch = ENV.replace("branch = \"main\"\n", "");
        assert_eq!(key_of_error(&without_branch), "environment[0].branch");
    }

    #[test]
    fn an_invalid_url_names_the_key() {
        assert_eq!(
            key_of_error("[server]\npublic_url = \"not a url\"\n"),
            "server.public_url"
        );
        assert_eq!(
            key_of_error("[render]\napi_url = \"ftp://example.com\"\n"),
            "render.api_url"
        );
        assert_eq!(key_of_error("[store]\nurl = \"mysql://x\"\n"), "store.url");
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        match Config::from_toml("[server]\nlisten = \n") {
            Err(ConfigError::Syntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn environment_variables_override_keys_with_the_right_type() {
        let vars = [
            (
                "FLIGHTDECK_SERVER__LISTEN".to_owned(),
                "0.0.0.0:8080".to_owned(),
            ),
            (
                "FLIGHTDECK_SERVER__SESSION_IDLE_MINUTES".to_owned(),
                "15".to_owned(),
            ),
            (
                "FLIGHTDECK_STORE__URL".to_owned(),
                "sqlite://other.db".to_owned(),
            ),
            ("FLIGHTDECK_CONFIG".to_owned(), "ignored.toml".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let config = Config::load(None, vars).unwrap();
        assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(config.server.session_idle_minutes, 15);
        assert_eq!(config.store.url, "sqlite://other.db");
    }

    #[test]
    fn an_override_keeps_a_string_key_a_string_even_when_it_looks_like_a_number() {
        let dir = std::env::temp_dir().join(format!("fd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flightdeck.toml");
        std::fs::write(&path, ENV).unwrap();
        let vars = [(
            "FLIGHTDECK_ENVIRONMENT__PRODUCTION__BRANCH".to_owned(),
            "2024".to_owned(),
        )];
        let config = Config::load(Some(&path), vars).unwrap();
        assert_eq!(config.environments[0].branch, "2024");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_override_with_an_unknown_key_is_named() {
        let vars = [("FLIGHTDECK_SERVER__LISTN".to_owned(), "x".to_owned())];
        match Config::load(None, vars) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "server.listn"),
            other => panic!("expected an invalid-key error, got {other:?}"),
        }
    }

    #[test]
    fn an_unreadable_file_is_reported_with_its_path() {
        let err = Config::load(Some(Path::new("/nonexistent/flightdeck.toml")), []).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/flightdeck.toml"));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = Secret("hunter2".into());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}
