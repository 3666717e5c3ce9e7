//! Pieces the release pages share: status words, times, commits, stale-data
//! banners and the environment's header. Everything from upstream is
//! rendered as text, never as HTML.

use crate::model::{EnvironmentSummary, ReleaseView, StaleNotice};
use crate::timefmt;
use leptos::prelude::*;

/// Which colour a status word gets: `good`, `bad`, `running` or `neutral`.
pub fn status_tone(word: &str) -> &'static str {
    match word {
        "good" | "passed" | "success" | "live" | "at_head" | "succeeded" | "done" | "pass"
        | "intact" => "good",
        "bad" | "failed" | "failure" | "build_failed" | "update_failed" | "pre_deploy_failed"
        | "timed_out" | "drift" | "startup_failure" | "action_required" | "needs_attention"
        | "block" | "locked" | "denied" | "refused" | "broken" => "bad",
        "warn" | "awaiting_approval" | "break_glass" => "warn",
        "running"
        | "started"
        | "pending"
        | "in_progress"
        | "queued"
        | "waiting"
        | "requested"
        | "created"
        | "build_in_progress"
        | "update_in_progress"
        | "pre_deploy_in_progress" => "running",
        _ => "neutral",
    }
}

/// A run's, job's or step's state as one word: its conclusion once completed.
pub fn run_word(status: &str, conclusion: Option<&str>) -> String {
    match (status, conclusion) {
        ("completed", Some(conclusion)) => conclusion.to_owned(),
        (status, _) => status.to_owned(),
    }
}

/// A status by colour and by word.
#[component]
pub fn Status(#[prop(into)] word: String) -> impl IntoView {
    let class = format!("status status-{}", status_tone(&word));
    let text = match word.as_str() {
        "not_run" => "not run".to_owned(),
        "none" => "no run".to_owned(),
        other => other.replace('_', " "),
    };
    view! { <span class=class data-status=word>{text}</span> }
}

/// A relative time ("3 h ago") with the absolute UTC time on hover and in `datetime`.
#[component]
pub fn RelTime(#[prop(into)] at: String) -> impl IntoView {
    let relative = timefmt::ago(&at, timefmt::now_unix());
    let absolute = timefmt::utc(&at);
    view! { <time datetime=at title=absolute>{relative}</time> }
}

/// The first line of a commit message (the whole message on hover).
pub fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

/// The seven-digit form of a commit id.
pub fn short_sha(sha: &str) -> String {
    domain::short_sha(sha).to_owned()
}

/// A link that leaves the panel (GitHub, Render); empty URLs give plain text.
#[component]
pub fn OutLink(#[prop(into)] href: String, children: Children) -> impl IntoView {
    if href.is_empty() {
        view! { <span>{children()}</span> }.into_any()
    } else {
        view! { <a href=href rel="noopener noreferrer" target="_blank">{children()}</a> }.into_any()
    }
}

/// A commit: short id (linked to GitHub when known) and its first line as text.
#[component]
pub fn Commit(release: ReleaseView) -> impl IntoView {
    let title = release.commit_message.clone();
    view! {
        <span class="commit">
            <OutLink href=release.commit_url><code class="sha">{short_sha(&release.commit_sha)}</code></OutLink>
            " "
            <span class="message" title=title>{first_line(&release.commit_message)}</span>
        </span>
    }
}

/// One banner per upstream whose data is out of date, in plain words.
#[component]
pub fn StaleBanners(notices: Vec<StaleNotice>) -> impl IntoView {
    let now = timefmt::now_unix();
    notices
        .into_iter()
        .map(|notice| {
            let head = match &notice.since {
                Some(since) => format!(
                    "{} data is stale since {}: ",
                    notice.source,
                    timefmt::short_utc(since, now)
                ),
                None => format!("{} data has not been read yet: ", notice.source),
            };
            view! { <p class="flash warn stale" role="status">{head}{notice.reason}</p> }
        })
        .collect_view()
}

/// The environment pages' tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Timeline,
    Runs,
    Deploys,
    Migrations,
}

impl Section {
    const ALL: [Section; 4] = [
        Section::Timeline,
        Section::Runs,
        Section::Deploys,
        Section::Migrations,
    ];

    fn label(self) -> &'static str {
        match self {
            Section::Timeline => "Releases",
            Section::Runs => "Runs",
            Section::Deploys => "Deploys",
            Section::Migrations => "Migrations",
        }
    }

    /// The section's path for `env`.
    pub fn href(self, env: &str) -> String {
        match self {
            Section::Timeline => format!("/env/{env}"),
            Section::Runs => format!("/env/{env}/runs"),
            Section::Deploys => format!("/env/{env}/deploys"),
            Section::Migrations => format!("/env/{env}/migrations"),
        }
    }
}

/// Links to an environment's pages; `current` is marked.
#[component]
pub fn SectionLinks(#[prop(into)] env: String, current: Option<Section>) -> impl IntoView {
    let links = Section::ALL
        .into_iter()
        .map(|section| {
            let here = (Some(section) == current).then_some("page");
            view! { <a href=section.href(&env) aria-current=here>{section.label()}</a> }
        })
        .collect_view();
    view! { <nav class="sections">{links}</nav> }
}

/// The head of an environment page: its name, the sections, a Refresh link
/// (live updates need JavaScript) and the stale-data banners.
#[component]
pub fn EnvHeader(
    environment: EnvironmentSummary,
    stale: Vec<StaleNotice>,
    current: Option<Section>,
    #[prop(into)] title: String,
    #[prop(into)] here: String,
) -> impl IntoView {
    view! {
        <div class="page-head">
            <h1>{title}</h1>
            <a class="refresh" href=here>"Refresh"</a>
        </div>
        <p class="muted env-line">
            "Environment " <strong>{environment.name.clone()}</strong>
            " · branch " <code>{environment.branch.clone()}</code>
        </p>
        <SectionLinks env=environment.name current/>
        <StaleBanners notices=stale/>
    }
}

/// A refusal sent back in `?error=` by a form action, shown once.
#[component]
pub fn ErrorFlash() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    move || {
        query
            .read()
            .get("error")
            .map(|error| view! { <p class="flash error" role="alert">{error}</p> })
    }
}

/// The `{env}` segment of the current path.
pub fn use_env() -> Memo<String> {
    let params = leptos_router::hooks::use_params_map();
    Memo::new(move |_| params.read().get("env").unwrap_or_default())
}

/// The `cursor` of a keyset page from the URL's query; None for the newest.
pub fn use_cursor() -> Memo<Option<String>> {
    let query = leptos_router::hooks::use_query_map();
    Memo::new(move |_| query.read().get("cursor").filter(|c| !c.is_empty()))
}

/// The link to the next, older page of a list, when there is one: a plain
/// link, so it works without JavaScript.
#[component]
pub fn OlderLink(href: Option<String>, label: &'static str) -> impl IntoView {
    href.map(|href| {
        view! {
            <p class="pager">
                <a class="next" id="older" href=href>{label}</a>
            </p>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_gets_a_tone_and_unknown_ones_are_neutral() {
        assert_eq!(status_tone("live"), "good");
        assert_eq!(status_tone("build_failed"), "bad");
        assert_eq!(status_tone("build_in_progress"), "running");
        assert_eq!(status_tone("deactivated"), "neutral");
        assert_eq!(run_word("completed", Some("failure")), "failure");
        assert_eq!(run_word("in_progress", None), "in_progress");
    }
}

/// For leads, when the database is at revisions the live code does not
/// know (as after a code-only rollback): the runbook's second half, a
/// rollback of the database alone to the live code's head, planned on
/// the guided rollback page.
#[component]
pub fn DatabaseAhead(env: String, live_deploy_id: String, heads: Vec<String>) -> impl IntoView {
    let heads = if heads.is_empty() {
        "base".to_owned()
    } else {
        heads.join(", ")
    };
    view! {
        <p class="database-ahead">
            <a class="button" href=format!("/env/{env}/rollback?target={live_deploy_id}&database=on")>
                "Database ahead of the live code → bring it to " <code>{heads}</code>
            </a>
        </p>
    }
}
