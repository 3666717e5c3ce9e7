//! Webhook deliveries: `push` and `workflow_run` payloads shaped as in
//! `shared/contracts/github-webhooks-schemas-subset.json`, signed with
//! HMAC-SHA256 like GitHub's `X-Hub-Signature-256`, and POSTed in order by
//! one background task. A failed delivery is logged, never retried.

use super::shapes::{HOOK_USER, hook_repository, hook_repository_lite, pick, stable_id};
use super::{GithubSim, Person, WebhookTarget, World, iso};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Something that happened and is worth a delivery.
#[derive(Debug, Clone)]
pub(super) enum Event {
    Push {
        ref_name: String,
        before: Option<String>,
        after: String,
        forced: bool,
        pusher: Person,
    },
    WorkflowRun {
        run_id: u64,
        attempt: u32,
        action: &'static str,
        at: OffsetDateTime,
    },
}

/// One signed POST, ready to send.
#[derive(Debug)]
pub(super) struct Delivery {
    url: String,
    event: &'static str,
    id: String,
    hook_id: u64,
    repo_id: u64,
    signature: String,
    body: Vec<u8>,
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// A uuid-shaped random delivery id, like GitHub's.
fn delivery_id() -> String {
    let hex = crate::support::random_id();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(super) fn render_event(
    sim: &GithubSim,
    world: &World,
    base: &str,
    target: &WebhookTarget,
    event: Event,
) -> Option<Delivery> {
    let (name, payload) = match event {
        Event::Push {
            ref_name,
            before,
            after,
            forced,
            pusher,
        } => (
            "push",
            push_payload(
                sim,
                world,
                base,
                &ref_name,
                before.as_deref(),
                &after,
                forced,
                &pusher,
            ),
        ),
        Event::WorkflowRun {
            run_id,
            attempt,
            action,
            at,
        } => (
            "workflow_run",
            workflow_run_payload(sim, world, base, run_id, Some(attempt), action, at)?,
        ),
    };
    let body = serde_json::to_vec(&payload).ok()?;
    Some(Delivery {
        url: target.url.clone(),
        event: name,
        id: delivery_id(),
        hook_id: stable_id("hook", &target.url) % 1_000_000_000,
        repo_id: super::shapes::repo_id(sim.config()),
        signature: crate::signing::github_signature(target.secret.as_bytes(), &body),
        body,
    })
}

fn hook_user(base: &str, login: &str) -> Value {
    pick(&super::shapes::simple_user(base, login), HOOK_USER)
}

/// The `push` payload for `ref_name` moving from `before` (none: created) to `after`.
#[expect(clippy::too_many_arguments, reason = "a push has this many facts")]
pub(super) fn push_payload(
    sim: &GithubSim,
    world: &World,
    base: &str,
    ref_name: &str,
    before: Option<&str>,
    after: &str,
    forced: bool,
    pusher: &Person,
) -> Value {
    let git = &world.git;
    let html = format!(
        "https://github.com/{}/{}",
        sim.config().owner,
        sim.config().repo
    );
    let known: HashSet<String> = before
        .map(|b| git.ancestors(b).into_iter().collect())
        .unwrap_or_default();
    let mut pushed: Vec<&super::git::CommitObj> = git
        .ancestors(after)
        .iter()
        .filter(|sha| !known.contains(*sha))
        .filter_map(|sha| git.commits.get(sha))
        .collect();
    pushed.sort_by_key(|c| c.committer.date);
    // A new branch: GitHub lists only what is not on the default branch.
    if before.is_none()
        && let Some(default) = git.branch_head(&sim.config().default_branch)
    {
        let on_default: HashSet<String> = git.ancestors(&default).into_iter().collect();
        pushed.retain(|c| !on_default.contains(&c.sha));
    }
    let commit_json = |c: &super::git::CommitObj| {
        let changes = git.changes_of(c);
        let of = |status: &str| {
            changes
                .iter()
                .filter(|f| f.status == status)
                .map(|f| f.filename.clone())
                .collect::<Vec<_>>()
        };
        let mut author = json!({ "name": c.author.name, "email": c.author.email });
        if let Some(login) = &c.login {
            author["username"] = json!(login);
        }
        let mut committer = json!({ "name": c.committer.name, "email": c.committer.email });
        if let Some(login) = &c.login {
            committer["username"] = json!(login);
        }
        json!({
            "id": c.sha,
            "tree_id": c.tree,
            "distinct": true,
            "message": c.message,
            "timestamp": iso(c.committer.date),
            "url": format!("{html}/commit/{}", c.sha),
            "author": author,
            "committer": committer,
            "added": of("added"),
            "removed": of("removed"),
            "modified": of("modified"),
        })
    };
    let head_commit = git.commits.get(after).map_or(Value::Null, commit_json);
    let compare = match before {
        Some(b) => format!(
            "{html}/compare/{}...{}",
            &b[..12.min(b.len())],
            &after[..12.min(after.len())]
        ),
        None => format!(
            "{html}/compare/{}",
            ref_name.trim_start_matches("refs/heads/")
        ),
    };
    let rest = sim.repository_json(world, base);
    json!({
        "ref": ref_name,
        "before": before.unwrap_or(ZERO_SHA),
        "after": after,
        "created": before.is_none(),
        "deleted": false,
        "forced": forced,
        "base_ref": null,
        "compare": compare,
        "commits": pushed.into_iter().map(commit_json).collect::<Vec<_>>(),
        "head_commit": head_commit,
        "repository": hook_repository(&rest, true),
        "pusher": { "name": pusher.login, "email": pusher.email },
        "sender": hook_user(base, &pusher.login),
    })
}

/// The properties of the webhook schemas' `workflow-run`.
const HOOK_RUN: &[&str] = &[
    "artifacts_url",
    "cancel_url",
    "check_suite_url",
    "check_suite_id",
    "check_suite_node_id",
    "conclusion",
    "created_at",
    "event",
    "head_branch",
    "head_commit",
    "head_repository",
    "head_sha",
    "path",
    "display_title",
    "html_url",
    "id",
    "jobs_url",
    "logs_url",
    "node_id",
    "name",
    "pull_requests",
    "repository",
    "rerun_url",
    "run_number",
    "status",
    "updated_at",
    "url",
    "workflow_id",
    "workflow_url",
    "run_attempt",
    "referenced_workflows",
    "run_started_at",
    "previous_attempt_url",
    "actor",
    "triggering_actor",
];

/// The `workflow_run` payload for attempt `attempt` (the latest when
/// `None`) of run `run_id` as it was at `at`.
pub(super) fn workflow_run_payload(
    sim: &GithubSim,
    world: &World,
    base: &str,
    run_id: u64,
    attempt: Option<u32>,
    action: &str,
    at: OffsetDateTime,
) -> Option<Value> {
    let run = world.actions.run(run_id)?;
    let chosen = match attempt {
        Some(n) => run.attempts.iter().find(|a| a.number == n)?,
        None => run.attempts.last()?,
    };
    let view = world.actions.view_of(run, Some(chosen.number), at)?;
    let rest = sim.run_json(world, base, run, chosen, &view);
    let mut hook_run = pick(&rest, HOOK_RUN);
    hook_run["repository"] = hook_repository_lite(&rest["repository"]);
    hook_run["head_repository"] = hook_repository_lite(&rest["head_repository"]);
    hook_run["actor"] = pick(&rest["actor"], HOOK_USER);
    hook_run["triggering_actor"] = pick(&rest["triggering_actor"], HOOK_USER);
    let workflow = world
        .actions
        .workflows
        .iter()
        .find(|w| w.id == run.workflow_id)?;
    let repository = sim.repository_json(world, base);
    Some(json!({
        "action": action,
        "workflow_run": hook_run,
        "workflow": sim.workflow_json(base, workflow),
        "repository": hook_repository(&repository, false),
        "sender": hook_user(base, &chosen.triggering_actor.login),
    }))
}

/// Sends every delivery, one at a time so a receiver sees them in order.
pub(super) async fn deliver_all(mut rx: mpsc::UnboundedReceiver<Delivery>) {
    // reqwest is built without a default TLS provider and refuses to build a
    // client (even for plain http) until one is installed; ring is the one
    // the project uses. An `Err` only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook deliveries are off: no HTTP client");
            return;
        }
    };
    while let Some(delivery) = rx.recv().await {
        let result = client
            .post(&delivery.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "GitHub-Hookshot/flightdeck-sim")
            .header("X-GitHub-Event", delivery.event)
            .header("X-GitHub-Delivery", &delivery.id)
            .header("X-GitHub-Hook-ID", delivery.hook_id.to_string())
            .header("X-GitHub-Hook-Installation-Target-Type", "repository")
            .header(
                "X-GitHub-Hook-Installation-Target-ID",
                delivery.repo_id.to_string(),
            )
            .header("X-Hub-Signature-256", &delivery.signature)
            .body(delivery.body)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(event = delivery.event, id = %delivery.id, "webhook delivered");
            }
            Ok(response) => {
                tracing::warn!(event = delivery.event, id = %delivery.id, status = %response.status(), "webhook refused");
            }
            Err(error) => {
                tracing::warn!(event = delivery.event, id = %delivery.id, %error, "webhook delivery failed");
            }
        }
    }
}
