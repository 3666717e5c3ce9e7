//! `/env/{env}/runs`: the pipeline runs on the environment's branch, and
//! `/runs/{id}`: one run with its jobs and steps.

use super::parts::{
    EnvHeader, OlderLink, OutLink, RelTime, Section, Status, run_word, short_sha, use_cursor,
    use_env,
};
use crate::api::{get_run, get_runs};
use crate::error::AppError;
use crate::layout::{ErrorPanel, Layout};
use crate::model::{JobView, RunView, StepView};
use crate::timefmt;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// The runs page.
#[component]
pub fn RunsPage() -> impl IntoView {
    let env = use_env();
    let cursor = use_cursor();
    let page = Resource::new(
        move || (env.get(), cursor.get()),
        |(env, cursor)| get_runs(env, cursor),
    );
    view! {
        <Title text=format!("{} runs · Flightdeck", env.get_untracked())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => {
                        let here = Section::Runs.href(&page.environment.name);
                        let older = page.older_href(&here);
                        view! {
                            <Layout viewer=page.viewer follow=page.environment.name.clone()>
                                <EnvHeader
                                    environment=page.environment
                                    stale=page.stale
                                    current=Some(Section::Runs)
                                    title="Pipeline runs"
                                    here
                                />
                                <RunTable runs=page.items/>
                                <OlderLink href=older label="Older runs →"/>
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

/// How long a run has taken: until its last update once completed.
fn run_duration(run: &RunView) -> String {
    if run.status == "completed" {
        timefmt::duration(&run.created_at, &run.updated_at).unwrap_or_default()
    } else {
        String::new()
    }
}

fn span(start: Option<&str>, end: Option<&str>) -> String {
    match (start, end) {
        (Some(start), Some(end)) => timefmt::duration(start, end).unwrap_or_default(),
        _ => String::new(),
    }
}

#[component]
fn RunTable(runs: Vec<RunView>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted">"No pipeline run on this branch is known yet."</p> }
            .into_any();
    }
    let rows = runs
        .into_iter()
        .map(|run| {
            let word = run_word(&run.status, run.conclusion.as_deref());
            let took = run_duration(&run);
            let attempt = (run.attempt > 1).then(|| format!(" (attempt {})", run.attempt));
            view! {
                <tr data-run=run.id>
                    <td><a href=format!("/runs/{}", run.id)>{run.name.clone()}</a>{attempt}</td>
                    <td><code>{run.workflow_file.clone()}</code></td>
                    <td><code class="sha">{short_sha(&run.head_sha)}</code></td>
                    <td>{run.event.clone()}</td>
                    <td><Status word/></td>
                    <td><RelTime at=run.created_at.clone()/></td>
                    <td>{took}</td>
                    <td><OutLink href=run.html_url.clone()>"on GitHub"</OutLink></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid runs">
            <thead>
                <tr>
                    <th>"Run"</th><th>"Workflow"</th><th>"Commit"</th><th>"Event"</th>
                    <th>"Status"</th><th>"Started"</th><th>"Took"</th><th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// One run's page.
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("id")
            .and_then(|id| id.parse::<u64>().ok())
    });
    let page = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_run(id).await,
                None => Err(AppError::NotFound("That run".into())),
            }
        },
    );
    view! {
        <Title text=format!("Run {} · Flightdeck", id.get_untracked().unwrap_or_default())/>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) => {
                        let run = page.items;
                        let here = format!("/runs/{}", run.id);
                        let title = format!("Run {}", run.name);
                        let actions = page
                            .viewer
                            .role
                            .allows(crate::model::Role::Deployer)
                            .then(|| run_actions(run.id, run.status == "completed"));
                        view! {
                            <Layout viewer=page.viewer follow=page.environment.name.clone()>
                                <EnvHeader
                                    environment=page.environment
                                    stale=page.stale
                                    current=None
                                    title
                                    here
                                />
                                <super::parts::ErrorFlash/>
                                {actions}
                                <RunDetail run/>
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
fn RunDetail(run: RunView) -> impl IntoView {
    let word = run_word(&run.status, run.conclusion.as_deref());
    let took = run_duration(&run);
    let jobs = run
        .jobs
        .into_iter()
        .map(|job| view! { <Job job/> })
        .collect_view();
    view! {
        <section class="panel run" data-run=run.id>
            <dl class="facts">
                <dt>"Status"</dt><dd><Status word/></dd>
                <dt>"Workflow"</dt><dd><code>{run.workflow_file}</code> " (attempt " {run.attempt} ")"</dd>
                <dt>"Commit"</dt><dd><code class="sha">{run.head_sha}</code> " on " <code>{run.branch}</code></dd>
                <dt>"Event"</dt><dd>{run.event}</dd>
                <dt>"Started"</dt><dd><RelTime at=run.created_at/></dd>
                <dt>"Took"</dt><dd>{took}</dd>
                <dt>"GitHub"</dt><dd><OutLink href=run.html_url>"Open the run on GitHub"</OutLink></dd>
            </dl>
        </section>
        {jobs}
    }
}

#[component]
fn Job(job: JobView) -> impl IntoView {
    let word = run_word(&job.status, job.conclusion.as_deref());
    let took = span(job.started_at.as_deref(), job.completed_at.as_deref());
    let steps = job
        .steps
        .into_iter()
        .map(|step| view! { <Step step/> })
        .collect_view();
    let name = job.name.clone();
    view! {
        <section class="panel job" data-job=name>
            <h2>
                {job.name} " " <Status word/> " "
                <span class="muted">{took}</span> " "
                <OutLink href=job.html_url>"log on GitHub"</OutLink>
            </h2>
            <table class="grid steps">
                <thead><tr><th>"#"</th><th>"Step"</th><th>"Status"</th><th>"Took"</th></tr></thead>
                <tbody>{steps}</tbody>
            </table>
        </section>
    }
}

#[component]
fn Step(step: StepView) -> impl IntoView {
    let word = run_word(&step.status, step.conclusion.as_deref());
    let took = span(step.started_at.as_deref(), step.completed_at.as_deref());
    view! {
        <tr data-step=step.number>
            <td>{step.number}</td>
            <td>{step.name}</td>
            <td><Status word/></td>
            <td>{took}</td>
        </tr>
    }
}

/// Re-run (all or failed jobs) a completed run, or cancel one in progress.
fn run_actions(id: u64, completed: bool) -> AnyView {
    if completed {
        view! {
            <div class="run-actions">
                <form method="post" action=format!("/actions/runs/{id}/rerun") class="inline">
                    <button type="submit">"Re-run all jobs"</button>
                </form>
                " "
                <form method="post" action=format!("/actions/runs/{id}/rerun") class="inline">
                    <input type="hidden" name="failed_only" value="on"/>
                    <button type="submit">"Re-run failed jobs"</button>
                </form>
            </div>
        }
        .into_any()
    } else {
        view! {
            <div class="run-actions">
                <form method="post" action=format!("/actions/runs/{id}/cancel") class="inline">
                    <button type="submit" class="danger">"Cancel the run"</button>
                </form>
            </div>
        }
        .into_any()
    }
}
