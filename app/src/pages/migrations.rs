//! `/env/{env}/migrations`: the live commit's Alembic revisions, parents
//! first, against the environment's database: heads, the current revision,
//! what is applied and pending, what a downgrade destroys, drift and files
//! that could not be read.

use super::parts::{DatabaseAhead, EnvHeader, Section, Status, short_sha, use_env};
use crate::api::get_migrations;
use crate::layout::{ErrorPanel, Layout};
use crate::model::{MigrationsView, RevisionView, Role};
use leptos::prelude::*;
use leptos_meta::Title;

/// The migrations page.
#[component]
pub fn MigrationsPage() -> impl IntoView {
    let env = use_env();
    let page = Resource::new(move || env.get(), get_migrations);
    view! {
        <Title text=format!("{} migrations · Flightdeck", env.get_untracked())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => {
                        let here = Section::Migrations.href(&page.environment.name);
                        let lead = page.viewer.role.allows(Role::Lead);
                        view! {
                            <Layout viewer=page.viewer follow=page.environment.name.clone()>
                                <EnvHeader
                                    environment=page.environment
                                    stale=page.stale
                                    current=Some(Section::Migrations)
                                    title="Migrations"
                                    here
                                />
                                <Migrations view=page.items lead/>
                            </Layout>
                        }
                        .into_any()
                    }
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn list(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

#[component]
fn Migrations(view: MigrationsView, lead: bool) -> impl IntoView {
    let ahead = match &view.live_deploy_id {
        Some(live) if lead && !view.drift.is_empty() => Some(view! {
            <DatabaseAhead
                env=view.environment.clone()
                live_deploy_id=live.clone()
                heads=view.heads.clone()
            />
        }),
        _ => None,
    };
    let db = view.database;
    let current = db
        .current
        .as_deref()
        .map(list)
        .unwrap_or_else(|| "not read yet".into());
    let commit = match &view.commit_sha {
        Some(sha) => {
            view! { "the live commit " <code class="sha">{short_sha(sha)}</code> }.into_any()
        }
        None => view! { "no live commit yet" }.into_any(),
    };
    let drift = (!view.drift.is_empty()).then(|| {
        view! {
            <p class="flash error drift" role="alert">
                "Drift: the database is at " <code>{list(&view.drift)}</code>
                ", which the live code does not contain."
            </p>
        }
    });
    let problems = (!view.problems.is_empty()).then(|| {
        let items = view
            .problems
            .into_iter()
            .map(|p| view! { <li><code>{p}</code></li> })
            .collect_view();
        view! {
            <div class="flash warn problems">
                <p>"Some migration files could not be read:"</p>
                <ul>{items}</ul>
            </div>
        }
    });
    let pending = view.pending.clone();
    let revisions = if view.revisions.is_empty() {
        view! { <p class="muted">"No revision of the live commit has been read yet."</p> }
            .into_any()
    } else {
        let items = view
            .revisions
            .into_iter()
            .map(|revision| {
                let is_pending = pending.contains(&revision.id);
                view! { <Revision revision is_pending/> }
            })
            .collect_view();
        view! { <ol class="revisions">{items}</ol> }.into_any()
    };
    view! {
        <section class="panel database">
            <p>
                <Status word=db.state.clone()/> " " <span class="summary">{db.summary}</span>
            </p>
            <dl class="facts">
                <dt>"Revisions of"</dt><dd>{commit}</dd>
                <dt>"Database at"</dt><dd><code class="current">{current}</code></dd>
                <dt>"Code heads"</dt><dd><code class="heads">{list(&view.heads)}</code></dd>
                <dt>"Pending"</dt><dd><code class="pending">{list(&view.pending)}</code></dd>
            </dl>
        </section>
        {drift}
        {ahead}
        {problems}
        <h2>"Revisions, parents first"</h2>
        {revisions}
    }
}

#[component]
fn Revision(revision: RevisionView, is_pending: bool) -> impl IntoView {
    let mut marks = Vec::new();
    if revision.is_head {
        marks.push(("head", "head"));
    }
    if revision.is_current {
        marks.push(("current", "current"));
    }
    if revision.is_applied {
        marks.push(("applied", "applied"));
    }
    if is_pending {
        marks.push(("pending", "pending"));
    }
    let marks = marks
        .into_iter()
        .map(|(class, word)| view! { <span class=format!("badge mark mark-{class}")>{word}</span> " " })
        .collect_view();
    let parents = match revision.down.len() {
        0 => "base revision".to_owned(),
        1 => format!("after {}", revision.down[0]),
        _ => format!("merges {}", revision.down.join(" and ")),
    };
    let loss = (!revision.data_loss.is_empty()).then(|| {
        let items = revision
            .data_loss
            .iter()
            .map(|d| view! { <li>{d.clone()}</li> })
            .collect_view();
        view! {
            <div class="data-loss">
                <strong>"Downgrading it destroys data:"</strong>
                <ul>{items}</ul>
            </div>
        }
    });
    let date = revision
        .create_date
        .clone()
        .map(|d| view! { " · " <span class="muted">{d}</span> });
    view! {
        <li class="revision" class:pending=is_pending class:current=revision.is_current data-revision=revision.id.clone()>
            <code class="id">{revision.id.clone()}</code> " "
            {marks}
            <span class="message">{revision.message.clone()}</span>
            <br/>
            <span class="muted parents">{parents}</span>
            {date}
            {loss}
        </li>
    }
}
