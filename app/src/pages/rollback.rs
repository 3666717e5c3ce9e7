//! `/env/{env}/rollback`: the guided rollback. It shows the plan for the
//! chosen target and options (what goes live, the commits taken off, the
//! Alembic path and what it destroys, every preflight check) and starts
//! the rollback with a reason. Plain forms: it works without JavaScript.

use super::parts::{Commit, ErrorFlash, SectionLinks, Status, short_sha};
use crate::api::get_rollback;
use crate::layout::{ErrorPanel, Layout};
use crate::model::{Role, RollbackView, TargetView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The guided rollback page.
#[component]
pub fn RollbackPage() -> impl IntoView {
    let env = super::parts::use_env();
    let query = use_query_map();
    let plan = Resource::new(
        move || {
            let q = query.read();
            (
                env.get(),
                q.get("target"),
                q.get("database").is_some(),
                q.get("revert_code").is_some(),
            )
        },
        |(env, target, database, revert_code)| get_rollback(env, target, database, revert_code),
    );
    view! {
        <Title text=format!("Roll back {} · Flightdeck", env.get_untracked())/>
        <Transition fallback=|| view! { <p class="loading">"Planning…"</p> }>
            {move || Suspend::new(async move {
                match plan.await {
                    Ok(plan) => view! {
                        <Layout viewer=plan.viewer.clone()>
                            <Plan plan/>
                        </Layout>
                    }
                    .into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn versions(v: &Option<Vec<String>>) -> String {
    match v {
        Some(v) if v.is_empty() => "none (base)".to_owned(),
        Some(v) => v.join(", "),
        None => "unknown".to_owned(),
    }
}

#[component]
fn Plan(plan: RollbackView) -> impl IntoView {
    let env = plan.environment.name.clone();
    let target_id = plan
        .to
        .as_ref()
        .map(|r| r.deploy_id.clone())
        .unwrap_or_default();
    let from = plan
        .from
        .clone()
        .map(|r| {
            view! { <Commit release=r.clone()/> " (" <code>{r.deploy_id}</code> ")" }.into_any()
        })
        .unwrap_or_else(|| view! { <span class="muted">"nothing is live"</span> }.into_any());
    let to = plan
        .to
        .clone()
        .map(|r| {
            view! { <Commit release=r.clone()/> " (" <code>{r.deploy_id}</code> ")" }.into_any()
        })
        .unwrap_or_else(|| view! { <span class="muted">"no target"</span> }.into_any());
    let checks = plan
        .checks
        .iter()
        .map(|c| {
            view! {
                <li class=format!("check check-{}", c.level) data-check=c.id.clone()>
                    <Status word=c.level.clone()/> " " {c.sentence.clone()}
                </li>
            }
        })
        .collect_view();
    let commits = if plan.commits.is_empty() {
        view! { <p class="muted">"No commit list (GitHub's compare was not available)."</p> }
            .into_any()
    } else {
        let rows = plan
            .commits
            .iter()
            .map(|c| {
                view! {
                    <li>
                        <code class="sha">{short_sha(&c.sha)}</code> " " <span class="message">{c.message.clone()}</span>
                        " · " {c.author.clone()} " · "
                        <Status word=c.ci.clone().unwrap_or_else(|| "unknown".into())/>
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="commits">{rows}</ul> }.into_any()
    };
    let path = plan
        .path
        .iter()
        .map(|p| {
            let loss = if p.data_loss.is_empty() {
                view! { <span class="muted">"no data loss"</span> }.into_any()
            } else {
                view! { <strong class="data-loss">"destroys data: " {p.data_loss.join("; ")}</strong> }
                    .into_any()
            };
            view! { <li><code>{p.revision.clone()}</code> " " {p.message.clone()} " · " {loss}</li> }
        })
        .collect_view();
    let needs = plan.needs_database_change.then(|| {
        view! {
            <p class="flash warn">
                "The database is not where the target code expects it. "
                {match &plan.downgrade_to {
                    Some(to) => format!("A downgrade would go to {to}."),
                    None => "No downgrade path was found.".to_owned(),
                }}
            </p>
        }
    });
    let role_ok = plan.viewer.role.allows(plan.required_role);
    let mut needs_words = vec![format!("the {} role", plan.required_role)];
    if let Some(rev) = &plan.typed_confirmation {
        needs_words.push(format!("typing {rev} to confirm"));
    }
    if plan.second_approval {
        needs_words.push("a second lead's approval".into());
    }
    let break_glass = (plan.break_glass && plan.viewer.role == Role::Deployer).then(|| {
        view! { <p class="muted">"As a deployer this is a break-glass rollback: it goes to the leads' review queue."</p> }
    });
    let confirm = plan.typed_confirmation.clone().map(|rev| {
        view! {
            <label>"Type " <code>{rev.clone()}</code> " to confirm the data loss"
                <input type="text" name="confirm_revision" required autocomplete="off"/>
            </label>
        }
    });
    let disabled = plan.blocked || !role_ok;
    view! {
        <div class="page-head">
            <h1>"Roll back " {env.clone()}</h1>
        </div>
        <SectionLinks env=env.clone() current=None/>
        <ErrorFlash/>
        <dl class="facts">
            <dt>"Live now"</dt><dd class="from">{from}</dd>
            <dt>"Rolls back to"</dt><dd class="to">{to}</dd>
        </dl>
        <form method="get" action=format!("/env/{env}/rollback") class="stack plan-options">
            <h2>"Target and options"</h2>
            <Targets targets=plan.targets.clone() chosen=target_id.clone()/>
            <label><input type="checkbox" name="database" checked=plan.database/>
                " Downgrade the database to the target's Alembic head"</label>
            <label><input type="checkbox" name="revert_code" checked=plan.revert_code/>
                " Revert the code on GitHub (new commit with the target's tree)"</label>
            <button type="submit">"Update the plan"</button>
        </form>
        <h2>"Preflight"</h2>
        <ul class="checks">{checks}</ul>
        <h2>"Commits taken off"</h2>
        {commits}
        <h2>"Database"</h2>
        <p>"Now at " <code class="current">{versions(&plan.current_revisions)}</code>
           " · target code's heads " <code class="heads">{versions(&plan.target_heads)}</code></p>
        {needs}
        <ol class="alembic-path">{path}</ol>
        <form method="post" action=format!("/actions/env/{env}/rollback") class="stack start-rollback">
            <h2>"Start"</h2>
            <p>"Needs " {needs_words.join(", ")} "."</p>
            {break_glass}
            <input type="hidden" name="target_deploy_id" value=target_id/>
            <input type="hidden" name={crate::api::IDEMPOTENCY_FIELD} value=plan.idempotency_key.clone()/>
            <input type="hidden" name="planned_branch_head" value=plan.branch_head.clone().unwrap_or_default()/>
            {plan.database.then(|| view! { <input type="hidden" name="database" value="on"/> })}
            {plan.revert_code.then(|| view! { <input type="hidden" name="revert_code" value="on"/> })}
            <label>"Reason" <textarea name="reason" required placeholder="What is wrong with the live release?"></textarea></label>
            {confirm}
            <button type="submit" class="danger" id="start-rollback" disabled=disabled>"Start the rollback"</button>
        </form>
    }
}

#[component]
fn Targets(targets: Vec<TargetView>, chosen: String) -> impl IntoView {
    let rows = targets
        .into_iter()
        .map(|t| {
            let unavailable = t.unavailable.clone();
            let greyed = unavailable.is_some();
            let checked = t.deploy_id == chosen;
            view! {
                <li class:unavailable=greyed data-deploy=t.deploy_id.clone()>
                    <label>
                        <input type="radio" name="target" value=t.deploy_id.clone()
                            checked=checked disabled=greyed/>
                        " " {t.label.clone()} " "
                        <Status word=t.verdict.clone()/>
                    </label>
                    {unavailable.map(|why| view! { <span class="why muted">" — " {why}</span> })}
                </li>
            }
        })
        .collect_view();
    view! { <ul class="targets">{rows}</ul> }
}
