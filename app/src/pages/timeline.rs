//! `/env/{env}`: the release timeline, newest first, each release judged
//! good or bad with the reason.

use super::parts::{Commit, EnvHeader, OlderLink, RelTime, Section, Status, use_cursor, use_env};
use crate::api::get_timeline;
use crate::layout::{ErrorPanel, Layout};
use crate::model::ReleaseView;
use leptos::prelude::*;
use leptos_meta::Title;

/// The release timeline page.
#[component]
pub fn TimelinePage() -> impl IntoView {
    let env = use_env();
    let cursor = use_cursor();
    let page = Resource::new(
        move || (env.get(), cursor.get()),
        |(env, cursor)| get_timeline(env, cursor),
    );
    view! {
        <Title text=format!("{} releases · Flightdeck", env.get_untracked())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => {
                        let here = Section::Timeline.href(&page.environment.name);
                        let older = page.older_href(&here);
                        view! {
                            <Layout viewer=page.viewer follow=page.environment.name.clone()>
                                <EnvHeader
                                    environment=page.environment
                                    stale=page.stale
                                    current=Some(Section::Timeline)
                                    title="Releases"
                                    here
                                />
                                <ReleaseTable releases=page.items/>
                                <OlderLink href=older label="Older releases →"/>
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
fn ReleaseTable(releases: Vec<ReleaseView>) -> impl IntoView {
    if releases.is_empty() {
        return view! { <p class="muted">"No deploy of this environment is known yet."</p> }
            .into_any();
    }
    let rows = releases
        .into_iter()
        .map(|r| {
            let live = r
                .is_live
                .then(|| view! { <span class="badge live-mark">"live now"</span> });
            let heads = match &r.migration_heads {
                Some(heads) if heads.is_empty() => "none".to_owned(),
                Some(heads) => heads.join(", "),
                None => "not read".to_owned(),
            };
            let ci = match r.run_ids.first() {
                Some(id) => view! { <a href=format!("/runs/{id}")><Status word=r.ci.clone()/></a> }
                    .into_any(),
                None => view! { <Status word=r.ci.clone()/> }.into_any(),
            };
            view! {
                <tr data-deploy=r.deploy_id.clone() class:live=r.is_live>
                    <td><RelTime at=r.created_at.clone()/></td>
                    <td><Commit release=r.clone()/> " " {live}</td>
                    <td>{r.author.clone().unwrap_or_default()}</td>
                    <td>{ci}</td>
                    <td><Status word=r.smoke.clone()/></td>
                    <td><code>{heads}</code></td>
                    <td>
                        <a href=r.deploy_url.clone() rel="noopener noreferrer" target="_blank">
                            <Status word=r.deploy_status.clone()/>
                        </a>
                    </td>
                    <td class="verdict">
                        <Status word=r.verdict.clone()/>
                        " "
                        <span class="reason">{r.reason.clone()}</span>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid releases">
            <thead>
                <tr>
                    <th>"When"</th><th>"Commit"</th><th>"Author"</th><th>"CI"</th><th>"Smoke"</th>
                    <th>"Migration head"</th><th>"Deploy"</th><th>"Verdict"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
