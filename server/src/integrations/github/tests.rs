//! The GitHub client against the sandbox's seeded world (the simulated
//! GitHub over real sockets), plus two tiny fake servers for replies the
//! simulator never gives.

use super::*;
use axum::Router;
use axum::http::StatusCode as AxumStatus;
use flightdeck_sandbox::alembic as sim_alembic;
use flightdeck_sandbox::faults::{Fault, FaultKind};
use flightdeck_sandbox::github::{ActionsTiming, CommitSeed, Person};
use flightdeck_sandbox::render;
use flightdeck_sandbox::scenario::{CiOutcome, PEOPLE, PIPELINE, ScenarioCommit};
use flightdeck_sandbox::world::{
    DEPLOY_WORKFLOW, GITHUB_TOKEN, MIGRATIONS_PATH, OWNER, REPO, Speeds, Targets, World,
};

const RUNS_ROUTE: &str = "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs";

fn quick() -> Speeds {
    Speeds {
        actions: ActionsTiming {
            queue: Duration::from_millis(50),
            step: Duration::from_millis(20),
        },
        render: render::Timing {
            build: Duration::from_millis(100),
            update: Duration::from_millis(100),
        },
    }
}

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Fixture {
    world: World,
    api: String,
    _dir: Dir,
}

async fn start(seed: u64) -> Fixture {
    let dir =
        Dir(std::env::temp_dir().join(format!("fd-ghclient-{}", crate::identity::random_id())));
    let world = World::build(seed, quick(), Targets::Sqlite(dir.0.clone()))
        .await
        .unwrap();
    let served = world.serve().await.unwrap();
    Fixture {
        world,
        api: served.github,
        _dir: dir,
    }
}

impl Fixture {
    fn client(&self) -> OctocrabGithub {
        OctocrabGithub::new(&self.api, OWNER, REPO, GITHUB_TOKEN.to_owned()).unwrap()
    }

    /// Main's scenario commits, newest first (as GitHub lists them).
    fn main_newest_first(&self) -> Vec<&ScenarioCommit> {
        let mut main: Vec<&ScenarioCommit> = self.world.scenario.main().collect();
        main.reverse();
        main
    }

    /// A reply of the simulator, read without the client under test.
    async fn raw(&self, path: &str) -> Value {
        install_tls_provider();
        let url = format!("{}/repos/{OWNER}/{REPO}{path}", self.api);
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(GITHUB_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {url}");
        response.json().await.unwrap()
    }
}

fn fresh<T>(fetched: Fetched<T>) -> (T, Option<String>) {
    match fetched {
        Fetched::Fresh { value, etag } => (value, etag),
        Fetched::NotModified => panic!("expected a fresh reply"),
    }
}

async fn all_commits(gh: &OctocrabGithub) -> Vec<CommitRecord> {
    fresh(gh.commits("main", 1000, None).await.unwrap()).0
}

async fn wait_completed(gh: &OctocrabGithub, id: u64) -> RunRecord {
    for _ in 0..300 {
        let run = gh.run(id).await.unwrap();
        if run.status == "completed" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {id} did not complete");
}

/// The token appears in neither the message nor the debug form.
fn keeps_secret(error: &GithubError, token: &str) {
    assert!(!error.to_string().contains(token), "{error}");
    assert!(!format!("{error:?}").contains(token), "{error:?}");
}

#[tokio::test]
async fn runs_of_the_deploy_workflow_on_main_match_the_seeded_history() {
    let f = start(5).await;
    let gh = f.client();
    let main = f.main_newest_first();
    assert!(
        main.iter()
            .any(|c| matches!(c.ci, CiOutcome::FailedAt { .. })),
        "the seed has a failed run on main"
    );

    let (mut runs, etag) = fresh(gh.runs(DEPLOY_WORKFLOW, "main", 100, None).await.unwrap());
    assert!(etag.is_some());
    assert_eq!(runs.len(), main.len());
    let raw = f
        .raw(&format!(
            "/actions/workflows/{DEPLOY_WORKFLOW}/runs?branch=main&per_page=100"
        ))
        .await;
    let raw_ids: Vec<u64> = raw["workflow_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), raw_ids);
    let commits = all_commits(&gh).await;
    for ((run, commit), record) in runs.iter().zip(&main).zip(&commits) {
        assert_eq!(run.name, commit.message.lines().next().unwrap());
        assert_eq!(run.head_sha, record.sha, "one run per commit, same order");
        assert_eq!(run.workflow_file, DEPLOY_WORKFLOW);
        assert_eq!(run.head_branch, "main");
        assert_eq!(run.event, "push");
        assert_eq!(run.status, "completed");
        assert_eq!(run.run_attempt, 1);
        assert!(run.html_url.ends_with(&format!("/actions/runs/{}", run.id)));
        let expected = match commit.ci {
            CiOutcome::Success => "success",
            CiOutcome::FailedAt { .. } => "failure",
        };
        assert_eq!(run.conclusion.as_deref(), Some(expected), "{}", run.name);
        assert!(run.jobs.is_empty(), "runs come without jobs");
    }

    let filled = gh.fill_jobs(&mut runs, &|_| true).await.unwrap();
    assert_eq!(filled, runs.len());
    let pipeline: Vec<&str> = PIPELINE.iter().map(|(job, _)| *job).collect();
    for (run, commit) in runs.iter().zip(&main) {
        let names: Vec<&str> = run.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, pipeline);
        let failed_job = match commit.ci {
            CiOutcome::Success => None,
            CiOutcome::FailedAt { job, step } => Some((job, step)),
        };
        let failed_index =
            failed_job.map(|(job, _)| pipeline.iter().position(|j| *j == job).unwrap());
        for (i, (job, (_, steps))) in run.jobs.iter().zip(PIPELINE).enumerate() {
            assert_eq!(job.status, "completed");
            if failed_index.is_some_and(|f| i > f) {
                assert_eq!(job.conclusion.as_deref(), Some("skipped"), "{}", job.name);
                continue;
            }
            let step_names: Vec<&str> = job.steps.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(step_names, steps.to_vec());
            let numbers: Vec<u32> = job.steps.iter().map(|s| s.number).collect();
            assert_eq!(numbers, (1..=steps.len() as u32).collect::<Vec<_>>());
            assert!(job.started_at.is_some() && job.completed_at.is_some());
            if Some(i) == failed_index {
                let (_, step) = failed_job.unwrap();
                assert_eq!(job.conclusion.as_deref(), Some("failure"));
                let failed = job.steps.iter().find(|s| s.name == step).unwrap();
                assert_eq!(failed.conclusion.as_deref(), Some("failure"));
            } else {
                assert_eq!(job.conclusion.as_deref(), Some("success"), "{}", job.name);
            }
        }
    }

    // One run alone is the same record as in the list.
    assert_eq!(
        gh.run(runs[1].id).await.unwrap(),
        RunRecord {
            jobs: Vec::new(),
            ..runs[1].clone()
        }
    );
    assert_eq!(
        gh.run(999_999_999).await.unwrap_err(),
        GithubError::NotFound("run 999999999".into())
    );
    assert_eq!(
        gh.runs("nope.yml", "main", 10, None).await.unwrap_err(),
        GithubError::NotFound("the workflow nope.yml".into())
    );

    let rate = gh
        .rate_limit()
        .expect("every reply carries the rate-limit headers");
    assert!(rate.remaining < 5000);
    assert!(rate.reset > OffsetDateTime::now_utc());
}

#[tokio::test]
async fn lists_follow_pages_up_to_max() {
    let f = start(6).await;
    let one_page = f.client();
    let all_runs = fresh(
        one_page
            .runs(DEPLOY_WORKFLOW, "main", 100, None)
            .await
            .unwrap(),
    )
    .0;
    let all = all_commits(&one_page).await;
    assert!(
        all_runs.len() > 20 && all.len() > 20,
        "enough for three pages"
    );

    let mut gh = f.client();
    gh.page = 7;
    let paged = fresh(gh.runs(DEPLOY_WORKFLOW, "main", 20, None).await.unwrap()).0;
    assert_eq!(paged, all_runs[..20].to_vec());
    let everything = fresh(gh.runs(DEPLOY_WORKFLOW, "main", 1000, None).await.unwrap()).0;
    assert_eq!(everything, all_runs, "up to the last page, and no further");

    let commits = fresh(gh.commits("main", 17, None).await.unwrap()).0;
    assert_eq!(commits, all[..17].to_vec());
    let commits = fresh(gh.commits("main", 1000, None).await.unwrap()).0;
    assert_eq!(commits, all);

    // A compare longer than a page gathers every commit.
    let compare = gh.compare(&all[16].sha, &all[0].sha).await.unwrap();
    assert_eq!(compare.ahead_by, 16);
    let shas: Vec<&str> = compare.commits.iter().map(|c| c.sha.as_str()).collect();
    let expected: Vec<&str> = all[..16].iter().rev().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, expected);
}

#[tokio::test]
async fn a_conditional_read_is_not_modified_until_something_changes() {
    let f = start(7).await;
    let gh = f.client();
    let (_, etag) = fresh(gh.runs(DEPLOY_WORKFLOW, "main", 10, None).await.unwrap());
    let etag = etag.unwrap();
    let before = gh.rate_limit().unwrap();

    assert_eq!(
        gh.runs(DEPLOY_WORKFLOW, "main", 10, Some(&etag))
            .await
            .unwrap(),
        Fetched::NotModified
    );
    assert_eq!(
        gh.rate_limit().unwrap().remaining,
        before.remaining,
        "a 304 does not count against the limit"
    );
    let (_, commits_etag) = fresh(gh.commits("main", 10, None).await.unwrap());
    assert_eq!(
        gh.commits("main", 10, commits_etag.as_deref())
            .await
            .unwrap(),
        Fetched::NotModified
    );

    let id = gh
        .dispatch(DEPLOY_WORKFLOW, "main", BTreeMap::new())
        .await
        .unwrap();
    let (runs, new_etag) = fresh(
        gh.runs(DEPLOY_WORKFLOW, "main", 10, Some(&etag))
            .await
            .unwrap(),
    );
    assert_eq!(runs[0].id, id, "the new run is first");
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
}

#[tokio::test]
async fn commits_one_commit_and_a_compare_read_the_repository() {
    let f = start(8).await;
    let gh = f.client();
    let main = f.main_newest_first();
    let commits = all_commits(&gh).await;
    assert_eq!(commits.len(), main.len());
    assert_eq!(
        Some(commits[0].sha.clone()),
        f.world.github.branch_head("main")
    );
    for (record, commit) in commits.iter().zip(&main) {
        let person = &PEOPLE[commit.author % PEOPLE.len()];
        assert_eq!(record.message, commit.message);
        assert_eq!(record.author, person.name);
        assert_eq!(record.author_login.as_deref(), Some(person.login));
        assert!(record.html_url.ends_with(&record.sha));
        assert_eq!(record.migrations, None);
    }
    assert!(
        commits
            .windows(2)
            .all(|w| w[0].committed_at >= w[1].committed_at)
    );

    assert_eq!(gh.commit(&commits[3].sha).await.unwrap(), commits[3]);
    let unknown = "0".repeat(40);
    assert_eq!(
        gh.commit(&unknown).await.unwrap_err(),
        GithubError::NotFound(format!("commit {unknown}"))
    );

    let ahead = gh.compare(&commits[5].sha, &commits[0].sha).await.unwrap();
    assert_eq!(ahead.status, CompareStatus::Ahead);
    assert_eq!((ahead.ahead_by, ahead.behind_by), (5, 0));
    let shas: Vec<&str> = ahead.commits.iter().map(|c| c.sha.as_str()).collect();
    let expected: Vec<&str> = commits[..5].iter().rev().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, expected, "oldest first");
    assert_eq!(ahead.commits[4], commits[0]);
    assert!(
        ahead.files.contains(&ChangedFile {
            name: "CHANGELOG.md".into(),
            status: "modified".into()
        }),
        "{:?}",
        ahead.files
    );

    let behind = gh.compare(&commits[0].sha, &commits[5].sha).await.unwrap();
    assert_eq!(behind.status, CompareStatus::Behind);
    assert_eq!((behind.ahead_by, behind.behind_by), (0, 5));
    assert!(behind.commits.is_empty());
    let same = gh.compare(&commits[2].sha, &commits[2].sha).await.unwrap();
    assert_eq!(same.status, CompareStatus::Identical);
    assert!(same.files.is_empty());
}

#[tokio::test]
async fn migrations_at_a_commit_are_the_alembic_history_up_to_that_commit() {
    let f = start(9).await;
    let gh = f.client();
    let commits = all_commits(&gh).await;
    let history = &f.world.history;

    let at_head = gh
        .migrations_at(&commits[0].sha, MIGRATIONS_PATH)
        .await
        .unwrap();
    assert_eq!(at_head.problems, Vec::<String>::new());
    assert_eq!(at_head.revisions.len(), history.len());
    for spec in history {
        let revision = at_head
            .revisions
            .iter()
            .find(|r| r.id == spec.id)
            .unwrap_or_else(|| panic!("{} is read", spec.id));
        assert_eq!(revision.down, spec.down, "{}", spec.id);
        assert_eq!(revision.message, spec.message);
    }
    let mut heads = at_head.heads().unwrap();
    heads.sort();
    let mut expected_heads = sim_alembic::heads(history);
    expected_heads.sort();
    assert_eq!(heads, expected_heads);

    // Main's commits, oldest first, each with the revisions it carries.
    let mut count = 0;
    let mut carried = Vec::new();
    for commit in f.world.scenario.main() {
        if let Some(r) = commit.adds_revision {
            count = count.max(r + 1);
        }
        carried.push(count);
    }
    let early = carried
        .iter()
        .position(|n| *n > 0 && *n < history.len())
        .expect("a commit in the middle of the history");
    let sha = &commits[commits.len() - 1 - early].sha;
    let at_early = gh.migrations_at(sha, MIGRATIONS_PATH).await.unwrap();
    assert_eq!(at_early.problems, Vec::<String>::new());
    let mut ids: Vec<&str> = at_early.revisions.iter().map(|r| r.id.as_str()).collect();
    let mut expected: Vec<&str> = history[..carried[early]]
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(at_early.revisions.len() < at_head.revisions.len());

    let missing = gh
        .migrations_at(&commits[0].sha, "backend/no/such/dir")
        .await
        .unwrap();
    assert!(missing.revisions.is_empty());
    assert_eq!(missing.problems.len(), 1);
    assert!(
        missing.problems[0].contains("backend/no/such/dir"),
        "{:?}",
        missing.problems
    );

    let unknown = "0".repeat(40);
    assert_eq!(
        gh.migrations_at(&unknown, MIGRATIONS_PATH)
            .await
            .unwrap_err(),
        GithubError::NotFound(format!("commit {unknown}"))
    );
}

#[tokio::test]
async fn a_broken_revision_file_is_a_problem_naming_file_and_line_not_an_error() {
    const BROKEN: &str = "# A revision someone edited by hand.\n\n\"\"\"Add a flag column\n\nRevision ID: 0badf00d0bad\nrevision = '0badf00d0bad'\ndown_revision = None\n";
    let f = start(10).await;
    let gh = f.client();
    let mut files: BTreeMap<String, String> =
        sim_alembic::project_files(&f.world.history[..2], "sqlite://")
            .into_iter()
            .map(|(path, text)| (format!("backend/{path}"), text))
            .collect();
    files.insert(format!("{MIGRATIONS_PATH}/zz_broken.py"), BROKEN.to_owned());
    // Alembic skips `__init__.py`; so does the reader.
    files.insert(format!("{MIGRATIONS_PATH}/__init__.py"), String::new());
    let sha = f.world.github.seed_commit(
        "broken-migrations",
        CommitSeed {
            message: "Hand-edit a revision".into(),
            author: Person {
                name: "Tester".into(),
                email: "tester@example.com".into(),
                login: "tester".into(),
            },
            at: OffsetDateTime::now_utc(),
            files,
        },
    );

    let found = gh.migrations_at(&sha, MIGRATIONS_PATH).await.unwrap();
    let ids: Vec<&str> = found.revisions.iter().map(|r| r.id.as_str()).collect();
    let mut expected: Vec<&str> = f.world.history[..2].iter().map(|r| r.id.as_str()).collect();
    let mut ids = ids;
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected, "the good files are still read");
    let parse_error = parse_revision("zz_broken.py", BROKEN).unwrap_err();
    assert!(parse_error.line >= 1);
    assert_eq!(found.problems, vec![parse_error.to_string()]);
    assert!(
        found.problems[0].starts_with(&format!("zz_broken.py:{}: ", parse_error.line)),
        "{:?}",
        found.problems
    );
}

#[tokio::test]
async fn a_dispatched_run_gets_its_id_and_completes() {
    let f = start(11).await;
    let gh = f.client();
    let inputs = BTreeMap::from([("reason".to_owned(), "client test".to_owned())]);
    let id = gh.dispatch(DEPLOY_WORKFLOW, "main", inputs).await.unwrap();
    let run = wait_completed(&gh, id).await;
    assert_eq!(run.id, id);
    assert_eq!(run.event, "workflow_dispatch");
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(Some(run.head_sha), f.world.github.branch_head("main"));
    assert_eq!(f.world.github.calls().dispatches, 1);

    assert_eq!(
        gh.dispatch("nope.yml", "main", BTreeMap::new())
            .await
            .unwrap_err(),
        GithubError::NotFound("the workflow nope.yml".into())
    );
    assert!(matches!(
        gh.dispatch(DEPLOY_WORKFLOW, "no-such-branch", BTreeMap::new())
            .await,
        Err(GithubError::Refused { status: 422, .. })
    ));
    assert_eq!(
        f.world.github.calls().dispatches,
        1,
        "refusals start nothing"
    );
}

#[tokio::test]
async fn rerun_and_cancel_reach_github() {
    let f = start(12).await;
    let gh = f.client();
    let runs = fresh(gh.runs(DEPLOY_WORKFLOW, "main", 100, None).await.unwrap()).0;
    let failed = runs
        .iter()
        .find(|r| r.conclusion.as_deref() == Some("failure"))
        .expect("a failed run");
    let passed = runs
        .iter()
        .find(|r| r.conclusion.as_deref() == Some("success"))
        .expect("a passed run");

    gh.rerun(failed.id, true).await.unwrap();
    assert_eq!(gh.run(failed.id).await.unwrap().run_attempt, 2);
    let again = wait_completed(&gh, failed.id).await;
    assert_eq!(again.conclusion.as_deref(), Some("success"));
    let jobs = gh.jobs(failed.id).await.unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.conclusion.as_deref() == Some("success"))
    );
    assert!(matches!(
        gh.rerun(passed.id, true).await,
        Err(GithubError::Refused { status: 403, .. })
    ));
    gh.rerun(passed.id, false).await.unwrap();
    assert_eq!(gh.run(passed.id).await.unwrap().run_attempt, 2);

    let id = gh
        .dispatch(DEPLOY_WORKFLOW, "main", BTreeMap::new())
        .await
        .unwrap();
    gh.cancel(id).await.unwrap();
    let cancelled = wait_completed(&gh, id).await;
    assert_eq!(cancelled.conclusion.as_deref(), Some("cancelled"));
    assert!(matches!(
        gh.cancel(id).await,
        Err(GithubError::Refused { status: 409, .. })
    ));
    let calls = f.world.github.calls();
    assert_eq!(
        (calls.reruns_failed, calls.reruns, calls.cancels),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_commit_with_an_older_tree_fast_forwards_the_branch_and_a_stale_one_does_not() {
    let f = start(13).await;
    let gh = f.client();
    let commits = all_commits(&gh).await;
    let head = gh.branch_head("main").await.unwrap();
    assert_eq!(head, commits[0].sha);
    let target = commits[3].sha.clone();

    let new = gh
        .commit_with_tree_of("main", &target, "Roll back to an older release")
        .await
        .unwrap();
    let made = f.raw(&format!("/git/commits/{new}")).await;
    let old = f.raw(&format!("/git/commits/{target}")).await;
    assert_eq!(made["tree"]["sha"], old["tree"]["sha"], "the target's tree");
    assert_eq!(
        made["parents"][0]["sha"],
        head.as_str(),
        "on top of the head"
    );
    assert_eq!(made["message"], "Roll back to an older release");
    assert_eq!(
        gh.branch_head("main").await.unwrap(),
        head,
        "nothing moved yet"
    );
    let delta = gh.compare(&target, &new).await.unwrap();
    assert!(
        delta.files.is_empty(),
        "same code as the target: {:?}",
        delta.files
    );
    assert_eq!(delta.ahead_by, 4);

    gh.fast_forward("main", &new).await.unwrap();
    assert_eq!(gh.branch_head("main").await.unwrap(), new);
    assert_eq!(
        gh.fast_forward("main", &target).await.unwrap_err(),
        GithubError::NotFastForward
    );
    assert_eq!(gh.branch_head("main").await.unwrap(), new, "never forced");
    assert_eq!(
        gh.fast_forward("no-such-branch", &new).await.unwrap_err(),
        GithubError::NotFound("branch no-such-branch".into())
    );
    let calls = f.world.github.calls();
    assert_eq!((calls.commits_created, calls.ref_updates), (1, 1));
    assert_eq!(
        gh.commit_with_tree_of("main", &"0".repeat(40), "x")
            .await
            .unwrap_err(),
        GithubError::NotFound(format!("commit {}", "0".repeat(40)))
    );
}

#[tokio::test]
async fn a_rollback_branch_and_its_pull_request_can_be_opened() {
    let f = start(14).await;
    let gh = f.client();
    let commits = all_commits(&gh).await;
    let new = gh
        .commit_with_tree_of("main", &commits[2].sha, "Roll back")
        .await
        .unwrap();
    gh.create_branch("rollback/to-older", &new).await.unwrap();
    assert_eq!(gh.branch_head("rollback/to-older").await.unwrap(), new);
    assert!(matches!(
        gh.create_branch("rollback/to-older", &new).await,
        Err(GithubError::Refused { status: 422, .. })
    ));

    let pull = gh
        .open_pull(
            "rollback/to-older",
            "main",
            "Roll back",
            "Because the smoke test failed.",
        )
        .await
        .unwrap();
    assert_eq!(pull.number, 1);
    assert!(pull.html_url.ends_with("/pull/1"), "{}", pull.html_url);
    assert!(matches!(
        gh.open_pull("rollback/to-older", "main", "Again", "").await,
        Err(GithubError::Refused { status: 422, .. })
    ));
    let calls = f.world.github.calls();
    assert_eq!((calls.refs_created, calls.pulls_created), (1, 1));
    assert_eq!(
        gh.branch_head("no-such-branch").await.unwrap_err(),
        GithubError::NotFound("branch no-such-branch".into())
    );
}

#[tokio::test]
async fn injected_faults_become_the_matching_errors() {
    let f = start(15).await;
    let gh = f.client();
    let faults = f.world.github.faults();
    let runs = || gh.runs(DEPLOY_WORKFLOW, "main", 5, None);
    let mut seen = Vec::new();

    faults
        .set(RUNS_ROUTE, Fault::times(FaultKind::ServerError(502), 1))
        .unwrap();
    let error = runs().await.unwrap_err();
    assert_eq!(error, GithubError::Upstream { status: 502 });
    assert!(error.is_transient());
    seen.push(error);

    faults
        .set(RUNS_ROUTE, Fault::times(FaultKind::RateLimited, 1))
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let error = runs().await.unwrap_err();
    let GithubError::RateLimited { until: Some(until) } = error else {
        panic!("{error:?}");
    };
    assert!(
        until > now + time::Duration::seconds(30) && until < now + time::Duration::seconds(120)
    );
    let text = error.to_string();
    assert!(
        text.starts_with("GitHub is rate limiting us until ") && text.contains(" UTC"),
        "{text}"
    );
    assert_eq!(gh.rate_limit().unwrap().remaining, 0, "a poller can see it");
    seen.push(error);

    faults
        .set(
            RUNS_ROUTE,
            Fault::times(
                FaultKind::TooManyRequests {
                    retry_after_secs: 30,
                },
                1,
            ),
        )
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let error = runs().await.unwrap_err();
    let GithubError::RateLimited { until: Some(until) } = error else {
        panic!("{error:?}");
    };
    assert!(
        until >= now + time::Duration::seconds(29) && until <= now + time::Duration::seconds(32)
    );
    seen.push(error);

    faults
        .set(RUNS_ROUTE, Fault::times(FaultKind::MalformedJson, 1))
        .unwrap();
    let error = runs().await.unwrap_err();
    assert!(matches!(error, GithubError::Malformed { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("GitHub answered with something that is not the expected JSON (")
    );
    seen.push(error);

    faults
        .set(
            "POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
            Fault::times(FaultKind::ServerError(503), 1),
        )
        .unwrap();
    let error = gh.cancel(1).await.unwrap_err();
    assert_eq!(error, GithubError::Upstream { status: 503 });
    seen.push(error);

    let impatient = OctocrabGithub::new_with_timeout(
        &f.api,
        OWNER,
        REPO,
        GITHUB_TOKEN.to_owned(),
        Duration::from_millis(300),
    )
    .unwrap();
    faults
        .set(
            RUNS_ROUTE,
            Fault::times(FaultKind::Latency(Duration::from_secs(3)), 1),
        )
        .unwrap();
    let error = impatient
        .runs(DEPLOY_WORKFLOW, "main", 5, None)
        .await
        .unwrap_err();
    assert_eq!(error, GithubError::Timeout);
    seen.push(error);

    // The faults were one-shot: the same client reads again.
    assert_eq!(fresh(runs().await.unwrap()).0.len(), 5);
    for error in &seen {
        keeps_secret(error, GITHUB_TOKEN);
    }
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_never_shown() {
    const WRONG: &str = "ghp_RECOGNISABLE_wrong_token_0123456789";
    let f = start(16).await;
    let gh = OctocrabGithub::new(&f.api, OWNER, REPO, WRONG.to_owned()).unwrap();
    let error = gh.runs(DEPLOY_WORKFLOW, "main", 5, None).await.unwrap_err();
    assert_eq!(error, GithubError::Unauthorized);
    assert!(
        error
            .to_string()
            .starts_with("GitHub refused the token (401)")
    );
    keeps_secret(&error, WRONG);
    assert!(!format!("{gh:?}").contains(WRONG));
    let error = gh
        .dispatch(DEPLOY_WORKFLOW, "main", BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(error, GithubError::Unauthorized);
    assert_eq!(f.world.github.calls().dispatches, 0);

    let error = OctocrabGithub::new(&f.api, OWNER, REPO, format!("{WRONG}\nX")).unwrap_err();
    assert!(matches!(error, GithubError::Config(_)), "{error:?}");
    keeps_secret(&error, WRONG);
}

/// Serves `router` on a free loopback port; returns its base URL.
async fn fake(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    base
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_names_the_field() {
    let router = Router::new().route(
        "/repos/o/r/actions/workflows/{file}/runs",
        axum::routing::get(|| async {
            (
                [("content-type", "application/json")],
                r#"{"total_count": 1, "workflow_runs": [{"id": 1, "path": 5}]}"#,
            )
        }),
    );
    let base = fake(router).await;
    let gh = OctocrabGithub::new(&base, "o", "r", "t0ken".into()).unwrap();
    let error = gh.runs("deploy.yml", "main", 5, None).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(
            "GitHub answered with something that is not the expected JSON (at workflow_runs[0].path: invalid type: integer `5`"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn an_upstream_message_that_echoes_the_token_is_redacted() {
    const TOKEN: &str = "ghp_echoed_back_token_9876543210";
    let router = Router::new().route(
        "/repos/o/r/git/refs",
        axum::routing::post(|headers: axum::http::HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (
                AxumStatus::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "message": format!("nope, {auth}") })),
            )
        }),
    );
    let base = fake(router).await;
    let gh = OctocrabGithub::new(&base, "o", "r", TOKEN.into()).unwrap();
    let error = gh.create_branch("x", "abc").await.unwrap_err();
    assert_eq!(
        error,
        GithubError::Refused {
            status: 422,
            message: "nope, Bearer [redacted]".into()
        },
        "the token reached the fake, and came back blanked"
    );
    keeps_secret(&error, TOKEN);
}

#[test]
fn the_client_needs_an_http_url_a_sendable_token_and_a_runtime() {
    let error = OctocrabGithub::new("ftp://example.com", "o", "r", "t".into()).unwrap_err();
    assert!(matches!(error, GithubError::Config(_)), "{error:?}");
    let error = OctocrabGithub::new("https://api.github.com", "o", "r", "t".into()).unwrap_err();
    assert_eq!(
        error,
        GithubError::Config("the client must be created inside the Tokio runtime".into())
    );
    let error = OctocrabGithub::new("https://api.github.com", "o", "r", String::new()).unwrap_err();
    assert!(matches!(error, GithubError::Config(_)), "{error:?}");
}

#[test]
fn a_rate_limit_without_a_reset_time_still_reads_well() {
    assert_eq!(
        GithubError::RateLimited { until: None }.to_string(),
        "GitHub is rate limiting us for now; try again later"
    );
    let at = OffsetDateTime::now_utc().replace_time(time::macros::time!(14:05));
    assert_eq!(
        GithubError::RateLimited { until: Some(at) }.to_string(),
        "GitHub is rate limiting us until 14:05 UTC"
    );
}
