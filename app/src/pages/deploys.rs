//! `/env/{env}/deploys`: the environment's Render deploys, newest first.

use super::parts::{
    Commit, EnvHeader, ErrorFlash, OlderLink, RelTime, Section, Status, use_cursor, use_env,
};
use crate::api::get_deploys;
use crate::layout::{ErrorPanel, Layout};
use crate::model::ReleaseView;
use crate::timefmt;
use leptos::prelude::*;
use leptos_meta::Title;

/// The deploys page.
#[component]
pub fn DeploysPage() -> impl IntoView {
    let env = use_env();
    let cursor = use_cursor();
    let page = Resource::new(
        move || (env.get(), cursor.get()),
        |(env, cursor)| get_deploys(env, cursor),
    );
    view! {
        <Title text=format!("{} deploys · Flightdeck", env.get_untracked())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => {
                        let here = Section::Deploys.href(&page.environment.name);
                        let older = page.older_href(&here);
                        let deploy = page
                            .viewer
                            .role
                            .allows(crate::model::Role::Deployer)
                            .then(|| view! { <DeployForm env=page.environment.name.clone()/> });
                        view! {
                            <Layout viewer=page.viewer follow=page.environment.name.clone()>
                                <EnvHeader
                                    environment=page.environment
                                    stale=page.stale
                                    current=Some(Section::Deploys)
                                    title="Deploys"
                                    here
                                />
                                <ErrorFlash/>
                                {deploy}
                                <DeployTable deploys=page.items/>
                                <OlderLink href=older label="Older deploys →"/>
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

#[component]
fn DeployTable(deploys: Vec<ReleaseView>) -> impl IntoView {
    if deploys.is_empty() {
        return view! { <p class="muted">"No deploy of this environment is known yet."</p> }
            .into_any();
    }
    let rows = deploys
        .into_iter()
        .map(|d| {
            let took = d
                .finished_at
                .as_deref()
                .and_then(|end| timefmt::duration(&d.created_at, end))
                .unwrap_or_default();
            let finished = d.finished_at.clone().map(|at| view! { <RelTime at/> });
            let live = d
                .is_live
                .then(|| view! { " " <span class="badge live-mark">"live now"</span> });
            view! {
                <tr data-deploy=d.deploy_id.clone() class:live=d.is_live>
                    <td>
                        <a href=d.deploy_url.clone() rel="noopener noreferrer" target="_blank">
                            <code>{d.deploy_id.clone()}</code>
                        </a>
                        {live}
                    </td>
                    <td><RelTime at=d.created_at.clone()/></td>
                    <td><Commit release=d.clone()/></td>
                    <td>{d.trigger.replace('_', " ")}</td>
                    <td><Status word=d.deploy_status.clone()/></td>
                    <td>{finished}</td>
                    <td>{took}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid deploys">
            <thead>
                <tr>
                    <th>"Deploy"</th><th>"Started"</th><th>"Commit"</th><th>"Trigger"</th>
                    <th>"Status"</th><th>"Finished"</th><th>"Took"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// Deploys the branch's head or a commit through Render's API (a plain
/// form post; the operation page shows it happen).
#[component]
fn DeployForm(env: String) -> impl IntoView {
    view! {
        <details class="deploy-offer">
            <summary class="button">"Deploy…"</summary>
            <form method="post" action=format!("/actions/env/{env}/deploy") class="stack">
                <label>"Commit (empty: the branch's head)"
                    <input type="text" name="commit" autocomplete="off" placeholder="sha"/>
                </label>
                <label>"Reason" <input type="text" name="reason" placeholder="Why deploy now?"/></label>
                <button type="submit" class="primary">"Deploy"</button>
            </form>
        </details>
    }
}
