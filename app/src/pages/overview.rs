//! `/`: every configured environment at a glance: what is live, the
//! pipeline on its branch, the database against the code, the last good
//! release and any upstream whose data is stale.

use super::parts::{
    Commit, DatabaseAhead, ErrorFlash, RelTime, Section, SectionLinks, StaleBanners, Status,
    run_word, short_sha,
};
use crate::api::get_overview;
use crate::layout::{ErrorPanel, Layout};
use crate::model::{
    DatabaseView, EnvironmentView, LockView, OneClick, OperationBrief, ReleaseView, Role, RunView,
    Viewer,
};
use leptos::prelude::*;
use leptos_meta::Title;

/// The overview page. It follows changes of every environment.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_overview());
    view! {
        <Title text="Overview · Flightdeck"/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(o) => view! {
                        <Layout viewer=o.viewer.clone() follow=crate::live::ALL>
                            {o.chain.map(|chain| view! { <super::audit::Chain chain/> })}
                            <EnvironmentList environments=o.environments viewer=o.viewer/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The environments, with a filter box that narrows them as you type
/// (once the page is hydrated; without JavaScript all are shown).
#[component]
fn EnvironmentList(environments: Vec<EnvironmentView>, viewer: Viewer) -> impl IntoView {
    let count = environments.len();
    let cards = environments
        .into_iter()
        .map(|env| {
            let viewer = viewer.clone();
            view! { <EnvironmentCard env viewer/> }
        })
        .collect_view();
    view! {
        <div class="page-head">
            <h1>"Environments"</h1>
            <a class="refresh" href="/">"Refresh"</a>
            <EnvironmentFilter/>
        </div>
        <ErrorFlash/>
        {(count == 0).then(|| view! {
            <p class="muted">"No environment is configured. Add an [[environment]] to flightdeck.toml."</p>
        })}
        <ul class="environments">{cards}</ul>
    }
}

/// The filter box: hides the cards (`[data-env]`) whose name does not
/// contain the text, again after each live refresh of the list.
#[island]
fn EnvironmentFilter() -> impl IntoView {
    let (filter, set_filter) = signal(String::new());
    #[cfg(feature = "hydrate")]
    {
        Effect::new(move |_| hide_unmatched(&filter.read()));
        let handle = window_event_listener_untyped(crate::live::REFRESHED, move |_| {
            hide_unmatched(&filter.read_untracked())
        });
        // The filter lives as long as the page.
        std::mem::forget(handle);
    }
    // Read only in the browser.
    #[cfg(not(feature = "hydrate"))]
    let _ = filter;
    view! {
        <input
            type="search"
            id="env-filter"
            placeholder="Filter environments"
            aria-label="Filter environments"
            on:input=move |ev| set_filter.set(event_target_value(&ev))
        />
    }
}

#[cfg(feature = "hydrate")]
fn hide_unmatched(filter: &str) {
    let filter = filter.trim();
    let Ok(cards) = document().query_selector_all("ul.environments > li[data-env]") else {
        return;
    };
    for index in 0..cards.length() {
        let Some(card) = cards
            .item(index)
            .and_then(|node| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(node).ok())
        else {
            continue;
        };
        let name = card.get_attribute("data-env").unwrap_or_default();
        let _ = card
            .class_list()
            .toggle_with_force("hidden", !name.contains(filter));
    }
}

#[component]
fn EnvironmentCard(env: EnvironmentView, viewer: Viewer) -> impl IntoView {
    let summary = env.summary;
    let missing = (!summary.missing_secrets.is_empty()).then(|| {
        let names = summary.missing_secrets.join(", ");
        view! {
            <p class="flash warn">"Set " <code>{names}</code> " to enable everything for this environment."</p>
        }
    });
    let name = summary.name.clone();
    let ahead = match &env.live {
        Some(live) if env.database.state == "drift" && viewer.role.allows(Role::Lead) => {
            Some(view! {
                <DatabaseAhead
                    env=name.clone()
                    live_deploy_id=live.deploy_id.clone()
                    heads=env.database.code_heads.clone().unwrap_or_default()
                />
            })
        }
        _ => None,
    };
    view! {
        <li class="env card" data-env=summary.name.clone()>
            <h2><a href=Section::Timeline.href(&name)>{summary.name.clone()}</a></h2>
            <StaleBanners notices=env.stale/>
            {env.lock.map(lock_line)}
            {env.operation.map(operation_line)}
            <dl>
                <dt>"Live"</dt><dd class="live">{live_release(env.live)}</dd>
                <dt>"CI on " <code>{summary.branch.clone()}</code></dt>
                <dd class="ci">{branch_run(env.branch_head_run)}</dd>
                <dt>"Database"</dt><dd class="database">{database(env.database)}</dd>
                <dt>"Last good"</dt><dd class="last-good">{last_good(env.last_good)}</dd>
                <dt>"Render service"</dt><dd><code>{summary.render_service_id}</code></dd>
            </dl>
            {ahead}
            {env.rollback.map(|one| rollback_offer(&name, one, &viewer))}
            {missing}
            <SectionLinks env=name.clone() current=None/>
        </li>
    }
}

fn live_release(live: Option<ReleaseView>) -> AnyView {
    let Some(release) = live else {
        return view! { <span class="muted">"Nothing is live yet."</span> }.into_any();
    };
    let author = release
        .author
        .clone()
        .map(|a| view! { " by " <span class="author">{a}</span> });
    let at = release
        .finished_at
        .clone()
        .unwrap_or_else(|| release.created_at.clone());
    view! {
        <Commit release=release.clone()/>
        {author}
        <br/>
        <Status word=release.deploy_status.clone()/>
        " "
        <RelTime at/>
        " · "
        <Status word=release.verdict.clone()/>
        " "
        <span class="reason">{release.reason}</span>
    }
    .into_any()
}

fn branch_run(run: Option<RunView>) -> AnyView {
    let Some(run) = run else {
        return view! { <span class="muted">"No pipeline run is known yet."</span> }.into_any();
    };
    let word = run_word(&run.status, run.conclusion.as_deref());
    view! {
        <Status word/>
        " "
        <a href=format!("/runs/{}", run.id)>{run.name}</a>
        " at " <code class="sha">{short_sha(&run.head_sha)}</code>
        " "
        <RelTime at=run.updated_at/>
    }
    .into_any()
}

fn database(db: DatabaseView) -> AnyView {
    let versions = |v: Option<Vec<String>>| match v {
        Some(v) if v.is_empty() => "none".to_owned(),
        Some(v) => v.join(", "),
        None => "unknown".to_owned(),
    };
    view! {
        <Status word=db.state.clone()/>
        " "
        <span class="summary">{db.summary}</span>
        <br/>
        <span class="muted">
            "current " <code class="current">{versions(db.current)}</code>
            " · code heads " <code class="heads">{versions(db.code_heads)}</code>
        </span>
    }
    .into_any()
}

fn last_good(release: Option<ReleaseView>) -> AnyView {
    match release {
        Some(release) => view! {
            <Commit release=release.clone()/> " " <RelTime at=release.created_at/>
        }
        .into_any(),
        None => view! { <span class="muted">"No earlier good release is known."</span> }.into_any(),
    }
}

fn lock_line(lock: LockView) -> impl IntoView {
    view! {
        <p class="flash warn lock" role="status">
            <Status word="locked"/> " by " {lock.locked_by} " " <RelTime at=lock.locked_at/>
            ": " <span class="reason">{lock.reason}</span>
            " — deploys wait until a lead unlocks it."
        </p>
    }
}

fn operation_line(op: OperationBrief) -> impl IntoView {
    view! {
        <p class="operation-line">
            <a href=format!("/operations/{}", op.id)>{op.kind.clone()} " by " {op.requested_by.clone()}</a>
            " " <Status word=op.state.clone()/> " " <RelTime at=op.created_at/>
        </p>
    }
}

/// "Roll back to <last good release>": one click with a reason and a
/// confirmation when the plan needs no database change, else a link to the
/// guided rollback. A `<details>` holds the confirmation, so it works
/// without JavaScript.
fn rollback_offer(env: &str, one: OneClick, viewer: &Viewer) -> AnyView {
    let label = format!("Roll back to {}", one.label);
    if let Some(why) = one.blocked {
        let title = why.clone();
        return view! {
            <p class="rollback-offer unavailable" title=title>
                <button type="button" disabled=true>{label}</button>
                <span class="why muted">" " {why}</span>
            </p>
        }
        .into_any();
    }
    if !viewer.role.allows(Role::Deployer) {
        return view! { <p class="rollback-offer muted">{label} " needs the deployer role."</p> }
            .into_any();
    }
    if !one.direct {
        return view! {
            <p class="rollback-offer">
                <a class="button" href=format!("/env/{env}/rollback?target={}", one.target_deploy_id)>
                    {label} "…"
                </a>
                <span class="muted">" The database must change too: the guided rollback shows how."</span>
            </p>
        }
        .into_any();
    }
    view! {
        <details class="rollback-offer">
            <summary class="button danger">{label}</summary>
            <form method="post" action=format!("/actions/env/{env}/rollback") class="stack">
                <input type="hidden" name="target_deploy_id" value=one.target_deploy_id/>
                <input type="hidden" name={crate::api::IDEMPOTENCY_FIELD} value=one.idempotency_key/>
                <input type="hidden" name="back" value="overview"/>
                <label>"Reason" <input type="text" name="reason" required placeholder="What is wrong?"/></label>
                <button type="submit" class="danger confirm-rollback">"Confirm the rollback"</button>
            </form>
        </details>
    }
    .into_any()
}
