//! The `command` migration runner: runs the configured command (e.g.
//! `uv run alembic downgrade {revision}`) in the configured directory and
//! captures what it prints, for the operation's log.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// At most this much output is kept (the end is what explains a failure,
/// so the start is dropped).
const MAX_OUTPUT: usize = 64 * 1024;

/// What the command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// True when it exited with status 0.
    pub success: bool,
    /// `exit status: N`, or the signal that ended it.
    pub status: String,
    /// Standard output, then standard error.
    pub output: String,
}

/// An Alembic revision argument the runner accepts: a revision id, a
/// label, `base`, or relative forms like `-1`; nothing a shell reads.
pub fn valid_revision(revision: &str) -> bool {
    !revision.is_empty()
        && revision.len() <= 128
        && revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+@.".contains(c))
}

/// Why the command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{0}` is not a revision the runner passes to a shell")]
    NotARevision(String),
    #[error("`{line}` could not be run: {error}")]
    CannotStart { line: String, error: std::io::Error },
    #[error("`{line}` did not finish within {seconds} s and was stopped")]
    TimedOut { line: String, seconds: u64 },
}

/// Runs `template` with `{revision}` replaced, through `sh -c`, in `dir`,
/// with `env` added to the panel's environment. Err when it cannot be
/// started, the revision is not a plain revision, or it outlives `timeout`
/// (it is then killed). Every value in `redact` is masked in the output.
pub async fn run(
    template: &str,
    revision: &str,
    dir: Option<&Path>,
    env: &[(String, String)],
    redact: &[String],
    timeout: Duration,
) -> Result<Finished, RunError> {
    if !valid_revision(revision) {
        return Err(RunError::NotARevision(revision.to_owned()));
    }
    let line = template.replace("{revision}", revision);
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().map_err(|error| RunError::CannotStart {
        line: line.clone(),
        error,
    })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|error| RunError::CannotStart {
            line: line.clone(),
            error,
        })?,
        Err(_) => {
            return Err(RunError::TimedOut {
                line,
                seconds: timeout.as_secs(),
            });
        }
    };
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    for secret in redact.iter().filter(|s| s.len() >= 4) {
        output = output.replace(secret.as_str(), "[redacted]");
    }
    if output.len() > MAX_OUTPUT {
        let mut cut = output.len() - MAX_OUTPUT;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output = format!("[… earlier output dropped]\n{}", &output[cut..]);
    }
    Ok(Finished {
        success: out.status.success(),
        status: out.status.to_string(),
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn the_revision_is_substituted_and_the_output_captured() {
        let done = run(
            "echo down to {revision}; echo oops >&2",
            "a1b2c3",
            None,
            &[],
            &[],
            SECOND,
        )
        .await
        .unwrap();
        assert!(done.success, "{done:?}");
        assert_eq!(done.output, "down to a1b2c3\noops\n");
    }

    #[tokio::test]
    async fn a_failing_command_is_reported_with_its_status() {
        let done = run("exit 3", "base", None, &[], &[], SECOND).await.unwrap();
        assert!(!done.success);
        assert!(done.status.contains('3'), "{}", done.status);
    }

    #[tokio::test]
    async fn shell_syntax_in_the_revision_is_refused_before_anything_runs() {
        let dir = std::env::temp_dir().join(format!("fd-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let template = format!("touch {} {{revision}}", marker.display());
        for bad in ["a; rm -rf /", "$(id)", "a b", "", "`x`"] {
            let error = run(&template, bad, None, &[], &[], SECOND)
                .await
                .unwrap_err();
            assert!(
                matches!(&error, RunError::NotARevision(r) if r == bad),
                "{error}"
            );
        }
        assert!(!marker.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn it_runs_in_the_directory_with_the_environment_and_masks_secrets() {
        let dir = std::env::temp_dir();
        let env = [("DB_URL".to_owned(), "postgres://u:hunter22@h/db".to_owned())];
        let done = run(
            "pwd; echo $DB_URL",
            "head",
            Some(&dir),
            &env,
            &["postgres://u:hunter22@h/db".to_owned()],
            SECOND,
        )
        .await
        .unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert!(
            done.output.starts_with(real.to_str().unwrap()),
            "{}",
            done.output
        );
        assert!(done.output.contains("[redacted]"));
        assert!(!done.output.contains("hunter22"));
    }

    #[tokio::test]
    async fn a_command_that_outlives_its_timeout_is_stopped() {
        let error = run("sleep 5", "x", None, &[], &[], Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(
            matches!(error, RunError::TimedOut { seconds: 0, .. }),
            "{error}"
        );
    }
}
