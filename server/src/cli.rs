//! The command line: thin adapters over the application layer.
//!
//! Exit codes: 0 success, 1 the action failed, 2 bad usage or configuration.

pub mod sandbox;

use crate::audit::{ChainFault, RequestMeta, Verdict};
use crate::config::{Config, ConfigError};
use crate::control::{ControlError, ControlPlane};
use crate::identity::Actor;
use crate::startup::{StartupError, open_store, serve};
use crate::store::StoreError;
use app::model::Role;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "flightdeck",
    version,
    about = "Release and rollback control panel"
)]
struct Cli {
    /// The configuration file (TOML). Without one, the embedded defaults apply.
    #[arg(long, global = true, env = "FLIGHTDECK_CONFIG")]
    config: Option<PathBuf>,
    /// How log lines look (they go to standard error).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "FLIGHTDECK_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the panel (the default).
    Serve,
    /// Run the panel on a throw-away store with a sample configuration and a new sign-in.
    Sandbox(sandbox::SandboxArgs),
    /// Apply the panel's own schema migrations.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for the account NAME; it acts with that
    /// account's role and is printed once.
    Create {
        name: String,
        /// What the token is for ("deploy workflow").
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// Revoke a token by its id (`tok_…`); it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input; when
    /// none is given one is generated and printed once.
    Add {
        name: String,
        #[arg(long)]
        role: Role,
    },
    /// Disable an account; its sessions stop working at once.
    Disable { name: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain: exit 0 with the count, or 1 naming the first bad sequence number.
    Verify,
    /// Write the trail to standard output, streamed, oldest first.
    Export {
        /// `csv` or `jsonl`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Only this person's (or token's account's) events.
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, e.g. `rollback.start`.
        #[arg(long)]
        action: Option<String>,
        /// Only events on this environment.
        #[arg(long)]
        environment: Option<String>,
        /// Only `started`, `succeeded`, `failed` or `denied` events.
        #[arg(long)]
        outcome: Option<String>,
        /// Only events about this target (an operation id, …).
        #[arg(long)]
        target: Option<String>,
    },
}

/// Why a command failed, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Action(String),
}

impl From<ControlError> for CliError {
    fn from(e: ControlError) -> Self {
        CliError::Action(e.to_string())
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Action(format!("the store failed: {e}"))
    }
}

impl From<StartupError> for CliError {
    fn from(e: StartupError) -> Self {
        CliError::Action(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Action(e.to_string())
    }
}

/// Parses the command line, runs the command and maps the result to an exit code.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // A sandbox without `--dir` works in a throw-away folder, removed below.
    let throwaway = match &mut cli.command {
        Some(Command::Sandbox(args)) => sandbox::ThrowAwayDir::take_for(args),
        _ => None,
    };
    init_logging(cli.log_format);
    // Rendering a page nests one call per element; unoptimised (debug)
    // builds need far more stack for that than tokio's 2 MiB default.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flightdeck: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    if let Some(dir) = throwaway {
        // Every task stops first (the simulators, the sync, the store's
        // connections), so nothing writes into the folder while it goes.
        runtime.shutdown_timeout(std::time::Duration::from_secs(10));
        dir.remove();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = match error {
                CliError::Config(_) | CliError::Usage(_) => 2,
                CliError::Action(_) => 1,
            };
            eprintln!("flightdeck: {error}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FLIGHTDECK_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, CliError> {
    Ok(Config::load(path, std::env::vars())?)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Sandbox(args) = command {
        return sandbox::run(args).await;
    }
    let config = Arc::new(load_config(cli.config.as_deref())?);
    let store = open_store(&config).await?;
    let control = ControlPlane::new(store, config.clone());
    let operator = Actor::system("cli");
    let meta = RequestMeta::default();
    match command {
        Command::Serve => Ok(serve(control).await?),
        Command::Sandbox(_) => unreachable!("handled above"),
        Command::Migrate => {
            println!("store migrated ({})", control.store().backend());
            Ok(())
        }
        Command::User(UserCommand::Add { name, role }) => {
            let password = read_password_from_stdin()?;
            let (user, generated) = control
                .add_user(&operator, &meta, &name, role, password)
                .await?;
            println!("added {} ({})", user.name, user.role);
            if let Some(password) = generated {
                println!("password: {password}");
                println!("(shown once; it is stored only as a hash)");
            }
            Ok(())
        }
        Command::User(UserCommand::Disable { name }) => {
            control.disable_user(&operator, &meta, &name).await?;
            println!("disabled {name}");
            Ok(())
        }
        Command::Token(TokenCommand::Create { name, label }) => {
            let (row, secret) = control
                .create_token(&operator, &meta, &name, &label)
                .await?;
            println!("token {secret}");
            println!("id {}", row.id);
            println!(
                "(shown once; only its hash is stored; revoke with `flightdeck token revoke {}`)",
                row.id
            );
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            control.revoke_token(&operator, &meta, &id).await?;
            println!("revoked {id}");
            Ok(())
        }
        Command::Audit(AuditCommand::Export {
            format,
            since,
            until,
            actor,
            action,
            environment,
            outcome,
            target,
        }) => {
            use futures_util::StreamExt;
            use std::io::Write;
            let format = crate::export::Format::parse(&format)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let filter = crate::store::audit_filter::Filter {
                actor,
                action,
                environment,
                outcome,
                target,
                since,
                until,
            };
            let rows = control
                .export_audit(&operator, &meta, filter, format)
                .await
                .map_err(|e| match e {
                    crate::control::ControlError::Invalid(m) => CliError::Usage(m),
                    other => other.into(),
                })?;
            let mut rows = std::pin::pin!(rows);
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = rows.next().await {
                let chunk =
                    chunk.map_err(|e| CliError::Action(format!("the store failed: {e}")))?;
                out.write_all(chunk.as_bytes())?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => match control
            .verify_audit_as(&operator, &meta)
            .await?
        {
            Verdict::Intact { count } => {
                println!("audit trail intact: {count} events");
                Ok(())
            }
            Verdict::Broken { seq, fault } => {
                let what = match fault {
                    ChainFault::HashMismatch => {
                        "its content does not match its hash (edited)".to_owned()
                    }
                    ChainFault::BrokenLink => {
                        "it does not follow the previous event's hash (reordered or rewritten)"
                            .to_owned()
                    }
                    ChainFault::Gap { found } => {
                        format!("it is missing (found {found} in its place: deleted or reordered)")
                    }
                };
                Err(CliError::Action(format!(
                    "audit trail broken at seq {seq}: {what}"
                )))
            }
        },
    }
}

/// The password piped to standard input, if any. A terminal or an empty
/// input means "generate one".
fn read_password_from_stdin() -> Result<Option<String>, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut text = String::new();
    stdin.lock().read_to_string(&mut text)?;
    let password = text.trim_end_matches(['\r', '\n']).to_owned();
    Ok((!password.is_empty()).then_some(password))
}
