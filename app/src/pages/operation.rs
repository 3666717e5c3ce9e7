//! `/operations/{id}`: one operation's steps as they happen. Live through
//! server-sent events once hydrated; without JavaScript the page refreshes
//! itself every few seconds while the operation runs.

use super::parts::{ErrorFlash, OutLink, RelTime, Status};
use crate::api::get_operation;
use crate::layout::{ErrorPanel, Layout};
use crate::model::{OperationStepView, OperationView};
use leptos::prelude::*;
use leptos_meta::Title;

/// The operation page.
#[component]
pub fn OperationPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let page = Resource::new(move || id.get(), get_operation);
    view! {
        <Title text=format!("Operation {} · Flightdeck", id.get_untracked())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(op) => view! {
                        <Layout viewer=op.viewer.clone() follow=crate::live::ALL>
                            <Operation op/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn in_flight(state: &str) -> bool {
    matches!(state, "running" | "awaiting_approval")
}

#[component]
fn Operation(op: OperationView) -> impl IntoView {
    let id = op.brief.id.clone();
    let refresh = in_flight(&op.brief.state).then(|| {
        view! { <noscript><meta http-equiv="refresh" content="3"/></noscript> }
    });
    let break_glass = op.break_glass.then(|| {
        view! { <p class="flash warn">"Break-glass: a deployer ran this without a lead; it is in the leads' review queue."</p> }
    });
    let error = op
        .error
        .clone()
        .map(|e| view! { <p class="flash error operation-error">{e}</p> });
    let approved = op
        .approved_by
        .clone()
        .map(|by| view! { <dt>"Approved by"</dt><dd class="approved-by">{by}</dd> });
    let steps = op.steps.into_iter().map(step_row).collect_view();
    let approve = op.can_approve.then(|| {
        view! {
            <form method="post" action=format!("/actions/operations/{id}/approve") class="inline">
                <button type="submit" class="primary" id="approve">"Approve as second lead"</button>
            </form>
        }
    });
    let resolve = op.can_resolve.then(|| {
        view! {
            <form method="post" action=format!("/actions/operations/{id}/resolve") class="stack">
                <h2>"Resolve by hand"</h2>
                <p class="muted">"Check GitHub, Render and the database first; say what you found."</p>
                <label>"Note" <textarea name="note" required></textarea></label>
                <label>"Outcome "
                    <select name="outcome">
                        <option value="failed">"failed / rejected"</option>
                        <option value="succeeded">"succeeded"</option>
                    </select>
                </label>
                <button type="submit" id="resolve">"Resolve"</button>
            </form>
        }
    });
    let env = op.environment.clone();
    let unlock = op.can_unlock.then(|| {
        view! {
            <form method="post" action=format!("/actions/env/{env}/unlock") class="stack">
                <h2>"Unlock " {env.clone()}</h2>
                <p class="muted">"Deploys stay blocked until a lead unlocks the environment."</p>
                <label>"Why it is safe now" <textarea name="note" required></textarea></label>
                <button type="submit" id="unlock">"Unlock"</button>
            </form>
        }
    });
    let locked = (op.locked && !op.can_unlock).then(|| {
        view! { <p class="muted">"The environment stays locked until a lead unlocks it with a note."</p> }
    });
    view! {
        {refresh}
        <div class="page-head">
            <h1>{op.summary.clone()}</h1>
            <a class="refresh" href=format!("/operations/{}", op.brief.id)>"Refresh"</a>
        </div>
        <ErrorFlash/>
        <p class="operation-state" data-state=op.brief.state.clone()>
            <Status word=op.brief.state.clone()/>
            " " {op.brief.kind.clone()} " " <code>{op.brief.id.clone()}</code>
        </p>
        {break_glass}
        {error}
        <dl class="facts">
            <dt>"Environment"</dt><dd><a href=format!("/env/{}", op.environment)>{op.environment.clone()}</a></dd>
            <dt>"Requested by"</dt>
            <dd>{op.brief.requested_by.clone()} " (" {op.requested_role.clone()} ") " <RelTime at=op.brief.created_at.clone()/></dd>
            {approved}
            <dt>"Reason"</dt><dd class="reason">{op.reason.clone()}</dd>
        </dl>
        <ol class="steps">{steps}</ol>
        {approve}
        {resolve}
        {unlock}
        {locked}
    }
}

pub(super) fn step_row(step: OperationStepView) -> impl IntoView {
    let upstream = step.upstream_id.clone().map(|id| {
        let href = step.upstream_url.clone().unwrap_or_default();
        view! { " · " <OutLink href><code class="upstream">{id}</code></OutLink> }
    });
    let times = match (&step.started_at, &step.finished_at) {
        (_, Some(done)) => Some(view! { " · finished " <RelTime at=done.clone()/> }.into_any()),
        (Some(started), None) => {
            Some(view! { " · started " <RelTime at=started.clone()/> }.into_any())
        }
        _ => None,
    };
    let log = (!step.log.is_empty()).then(|| {
        view! { <details><summary>"Output"</summary><pre class="log">{step.log.clone()}</pre></details> }
    });
    view! {
        <li class="step" data-step=step.name.clone() data-state=step.state.clone()>
            <Status word=step.state.clone()/>
            " "
            <strong>{step.title.clone()}</strong>
            {times}
            {upstream}
            {step.detail.clone().map(|d| view! { <p class="detail">{d}</p> })}
            {log}
        </li>
    }
}
