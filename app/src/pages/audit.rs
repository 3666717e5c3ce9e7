//! `/audit` and `/audit/{seq}`: the trail for leads. Filters live in the
//! URL (a view can be shared), pages go by keyset (`before=<seq>`), the
//! review queue sits on top, and one event opens with everything about
//! what it acted on. Forms are plain GETs and POSTs, so all of it works
//! without JavaScript.

use super::operation::step_row;
use super::parts::{ErrorFlash, RelTime, Status};
use crate::api::{get_audit, get_audit_event};
use crate::layout::{ErrorPanel, Layout};
use crate::model::{AuditDetail, AuditEventView, AuditQuery, AuditView, ChainState, ReviewItem};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Actions a lead filters on most, offered as suggestions.
const COMMON_ACTIONS: [&str; 16] = [
    "rollback.start",
    "rollback.step",
    "rollback.finish",
    "deploy.trigger",
    "deploy.step",
    "deploy.finish",
    "environment.lock",
    "environment.unlock",
    "operation.approve",
    "operation.resolve",
    "auth.login",
    "auth.login_failed",
    "token.use",
    "audit.export",
    "audit.review",
    "audit.verify",
];

/// The audit page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(
        move || {
            let q = query.read();
            AuditQuery {
                actor: q.get("actor"),
                action: q.get("action"),
                environment: q.get("environment"),
                outcome: q.get("outcome"),
                target: q.get("target"),
                since: q.get("since"),
                until: q.get("until"),
                before: q.get("before").and_then(|b| b.parse().ok()),
            }
        },
        |q| {
            get_audit(
                q.actor,
                q.action,
                q.environment,
                q.outcome,
                q.target,
                q.since,
                q.until,
                q.before,
            )
        },
    );
    view! {
        <Title text="Audit trail · Flightdeck"/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(data) => view! {
                        <Layout viewer=data.viewer.clone()>
                            <Trail data/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Trail(data: AuditView) -> impl IntoView {
    let filters = data.query.to_query_string();
    let with = |extra: &str| match filters.is_empty() {
        true => extra.to_owned(),
        false => format!("{filters}&{extra}"),
    };
    let older = data.next_before.map(|before| {
        view! { <a class="next" id="older" href=format!("/audit?{}", with(&format!("before={before}")))>"Older events →"</a> }
    });
    let newest = data.query.before.map(|_| {
        let href = match filters.is_empty() {
            true => "/audit".to_owned(),
            false => format!("/audit?{filters}"),
        };
        view! { <a class="next" href=href>"← Newest"</a> }
    });
    let csv = format!("/api/v1/audit/export?{}", with("format=csv"));
    let jsonl = format!("/api/v1/audit/export?{}", with("format=jsonl"));
    let empty = data
        .events
        .is_empty()
        .then(|| view! { <p class="muted" id="no-events">"No event matches these filters."</p> });
    view! {
        <div class="page-head">
            <h1>"Audit trail"</h1>
        </div>
        <ErrorFlash/>
        <Chain chain=data.chain.clone()/>
        <Queue items=data.queue.clone()/>
        <Filters query=data.query.clone() environments=data.environments.clone()/>
        <p class="export">
            "Export what the filters select: "
            <a href=csv id="export-csv" download>"CSV"</a>
            " · "
            <a href=jsonl id="export-jsonl" download>"JSON Lines"</a>
        </p>
        <EventTable events=data.events/>
        {empty}
        <p class="pager">{newest} " " {older}</p>
    }
}

/// The chain's state and a button to check it now.
#[component]
pub fn Chain(chain: ChainState) -> impl IntoView {
    let state = match (&chain.checked_at, chain.intact) {
        (None, _) => view! { <Status word="unknown"/> " never verified yet" }.into_any(),
        (Some(at), true) => view! {
            <Status word="intact"/>
            " " {chain.count.unwrap_or_default()} " events verified "
            <RelTime at=at.clone()/> " by " {chain.checked_by.clone().unwrap_or_default()}
        }
        .into_any(),
        (Some(at), false) => view! {
            <Status word="broken"/>
            " at seq " <strong>{chain.broken_at.unwrap_or_default()}</strong>
            ", found " <RelTime at=at.clone()/> " by " {chain.checked_by.clone().unwrap_or_default()}
            ": rows were edited, deleted or reordered after they were written."
        }
        .into_any(),
    };
    view! {
        <div class="chain" id="chain" data-intact=chain.intact.to_string()>
            <span>"Audit chain: " {state}</span>
            <form method="post" action="/actions/audit/verify" class="inline">
                <button type="submit" id="verify">"Verify now"</button>
            </form>
        </div>
    }
}

#[component]
fn Queue(items: Vec<ReviewItem>) -> impl IntoView {
    if items.is_empty() {
        return view! {
            <section class="panel" id="review-queue">
                <h2>"Needs review"</h2>
                <p class="muted">"Nothing waiting: every break-glass rollback, failed operation and refused attempt on production has been reviewed."</p>
            </section>
        }
        .into_any();
    }
    let count = items.len();
    let rows = items
        .into_iter()
        .map(|item| {
            let open = item
                .seq
                .map(|seq| view! { <a href=format!("/audit/{seq}")>"Open"</a> });
            view! {
                <tr data-item=item.item.clone()>
                    <td><Status word=item.why.clone()/></td>
                    <td>{item.summary.clone()}</td>
                    <td>{item.environment.clone().unwrap_or_default()}</td>
                    <td>{item.actor.clone()}</td>
                    <td><RelTime at=item.at.clone()/></td>
                    <td>{open}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" id="review-queue">
            <h2>"Needs review (" {count} ")"</h2>
            <table class="grid">
                <thead><tr><th>"Why"</th><th>"What"</th><th>"Env"</th><th>"Who"</th><th>"When"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
    .into_any()
}

#[component]
fn Filters(query: AuditQuery, environments: Vec<String>) -> impl IntoView {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let env_options = environments
        .into_iter()
        .map(|env| {
            let selected = query.environment.as_deref() == Some(env.as_str());
            view! { <option value=env.clone() selected=selected>{env.clone()}</option> }
        })
        .collect_view();
    let outcome_options = ["started", "succeeded", "failed", "denied"]
        .into_iter()
        .map(|outcome| {
            let selected = query.outcome.as_deref() == Some(outcome);
            view! { <option value=outcome selected=selected>{outcome}</option> }
        })
        .collect_view();
    let actions = COMMON_ACTIONS
        .into_iter()
        .map(|a| view! { <option value=a></option> })
        .collect_view();
    view! {
        <form method="get" action="/audit" class="filters" id="filters">
            <label>"Actor" <input type="text" name="actor" value=text(&query.actor)/></label>
            <label>"Action" <input type="text" name="action" list="actions" value=text(&query.action)/></label>
            <datalist id="actions">{actions}</datalist>
            <label>"Environment "
                <select name="environment">
                    <option value="">"any"</option>
                    {env_options}
                </select>
            </label>
            <label>"Outcome "
                <select name="outcome">
                    <option value="">"any"</option>
                    {outcome_options}
                </select>
            </label>
            <label>"Target" <input type="text" name="target" value=text(&query.target)/></label>
            <label>"From (UTC)" <input type="datetime-local" name="since" value=text(&query.since)/></label>
            <label>"Until (UTC)" <input type="datetime-local" name="until" value=text(&query.until)/></label>
            <button type="submit" class="primary" id="apply-filters">"Filter"</button>
            <a href="/audit">"Clear"</a>
        </form>
    }
}

/// Events as rows, each opening its detail view.
#[component]
fn EventTable(events: Vec<AuditEventView>) -> impl IntoView {
    let rows = events
        .into_iter()
        .map(|e| {
            let role = e.actor_role.clone().map(|r| format!(" ({r})")).unwrap_or_default();
            view! {
                <tr data-seq=e.seq data-action=e.action.clone()>
                    <td><a href=format!("/audit/{}", e.seq)>{e.seq}</a></td>
                    <td><RelTime at=e.at.clone()/></td>
                    <td>{e.actor_name.clone()} <span class="muted">{role} " · " {e.actor_kind.clone()}</span></td>
                    <td><code>{e.action.clone()}</code></td>
                    <td>{e.environment.clone().unwrap_or_default()}</td>
                    <td><code>{e.target.clone().unwrap_or_default()}</code></td>
                    <td><Status word=e.outcome.clone()/></td>
                    <td class="error-text">{e.error.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid audit">
            <thead><tr>
                <th>"Seq"</th><th>"When"</th><th>"Who"</th><th>"Action"</th>
                <th>"Env"</th><th>"Target"</th><th>"Outcome"</th><th>"Error"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// The detail view of one event.
#[component]
pub fn AuditEventPage() -> impl IntoView {
    let params = use_params_map();
    let seq = Memo::new(move |_| params.read().get("seq").and_then(|s| s.parse::<i64>().ok()));
    let page = Resource::new(
        move || seq.get(),
        |seq| async move {
            match seq {
                Some(seq) => get_audit_event(seq).await,
                None => Err(crate::error::AppError::NotFound("that audit event".into())),
            }
        },
    );
    view! {
        <Title text=format!("Audit event {} · Flightdeck", seq.get_untracked().unwrap_or_default())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(detail) => view! {
                        <Layout viewer=detail.viewer.clone()>
                            <Detail detail/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Detail(detail: AuditDetail) -> impl IntoView {
    let e = detail.event;
    let seq = e.seq;
    let optional = |label: &'static str, value: Option<String>| {
        value.map(|v| view! { <dt>{label}</dt><dd><code>{v}</code></dd> })
    };
    let review = detail.review_item.clone().map(|item| match detail.reviewed.clone() {
        Some(mark) => view! {
            <section class="panel reviewed" id="review">
                <h2>"Reviewed"</h2>
                <p>
                    "By " <strong class="reviewed-by">{mark.reviewed_by.clone()}</strong> " "
                    <RelTime at=mark.reviewed_at.clone()/> " ("
                    <a href=format!("/audit/{}", mark.seq)>"event " {mark.seq}</a> ")"
                </p>
                <blockquote class="review-note">{mark.note.clone()}</blockquote>
            </section>
        }
        .into_any(),
        None => view! {
            <form method="post" action="/actions/audit/review" class="stack panel" id="review">
                <h2>"Needs review: " <Status word=detail.review_why.clone().unwrap_or_default()/></h2>
                <input type="hidden" name="item" value=item/>
                <input type="hidden" name="seq" value=seq/>
                <label>"What you checked, what you found" <textarea name="note" required></textarea></label>
                <button type="submit" class="primary" id="mark-reviewed">"Mark reviewed"</button>
            </form>
        }
        .into_any(),
    });
    let operation = detail.operation.map(|op| {
        let steps = op.steps.into_iter().map(step_row).collect_view();
        view! {
            <section class="panel" id="operation">
                <h2>
                    <a href=format!("/operations/{}", op.brief.id)>{op.summary.clone()}</a>
                    " " <Status word=op.brief.state.clone()/>
                </h2>
                <dl class="facts">
                    <dt>"Requested by"</dt>
                    <dd>{op.brief.requested_by.clone()} " (" {op.requested_role.clone()} ") " <RelTime at=op.brief.created_at.clone()/></dd>
                    <dt>"Reason"</dt><dd class="reason">{op.reason.clone()}</dd>
                    {op.approved_by.clone().map(|by| view! { <dt>"Approved by"</dt><dd>{by}</dd> })}
                    {op.break_glass.then(|| view! { <dt>"Break-glass"</dt><dd>"yes: a deployer ran it without a lead"</dd> })}
                    {op.error.clone().map(|e| view! { <dt>"Error"</dt><dd class="error-text">{e}</dd> })}
                </dl>
                <ol class="steps">{steps}</ol>
            </section>
        }
    });
    let related = (!detail.related.is_empty()).then(|| {
        view! {
            <section id="related">
                <h2>"Every event about " <code>{e.target.clone().unwrap_or_default()}</code></h2>
                <EventTable events=detail.related/>
            </section>
        }
    });
    view! {
        <div class="page-head">
            <h1>"Event " {seq} ": " <code>{e.action.clone()}</code></h1>
            <a class="refresh" href="/audit">"All events"</a>
        </div>
        <ErrorFlash/>
        {review}
        <dl class="facts" id="event">
            <dt>"When"</dt><dd><RelTime at=e.at.clone()/> " · " <code>{e.at.clone()}</code></dd>
            <dt>"Who"</dt>
            <dd>{e.actor_name.clone()} " (" {e.actor_kind.clone()} " " <code>{e.actor_id.clone()}</code>
                {e.actor_role.clone().map(|r| format!(", {r}"))} ")"</dd>
            <dt>"Outcome"</dt><dd><Status word=e.outcome.clone()/></dd>
            {optional("Environment", e.environment.clone())}
            {optional("Target", e.target.clone())}
            {e.error.clone().map(|err| view! { <dt>"Error"</dt><dd class="error-text">{err}</dd> })}
            {optional("Request", e.request_id.clone())}
            {optional("Address", e.ip.clone())}
            {optional("Browser", e.user_agent.clone())}
            <dt>"Hash"</dt><dd><code class="hash">{e.hash.clone()}</code></dd>
        </dl>
        <h2>"Parameters"</h2>
        <pre class="params">{e.params.clone()}</pre>
        {operation}
        {related}
    }
}
