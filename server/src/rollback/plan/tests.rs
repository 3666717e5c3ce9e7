use super::*;
use crate::alembic::{DataLoss, DataLossKind, parse_revision};
use crate::integrations::github::Comparison;
use crate::releases::{DeployRecord, MigrationsAt, SmokeState};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-20 09:00 UTC);

fn rev(id: &str, down: &[&str], loses: &[&str]) -> Revision {
    Revision {
        id: id.into(),
        down: down.iter().map(|d| (*d).into()).collect(),
        branch_labels: vec![],
        depends_on: vec![],
        message: format!("revision {id}"),
        create_date: None,
        data_loss: loses
            .iter()
            .enumerate()
            .map(|(i, detail)| DataLoss {
                line: 20 + i,
                kind: DataLossKind::DropColumn,
                detail: (*detail).into(),
            })
            .collect(),
        file: format!("{id}_revision.py"),
    }
}

/// A release whose verdict follows its status: good when it went live.
fn release(id: &str, sha: &str, status: &str, minutes: i64, revisions: &[Revision]) -> Release {
    let went_live = matches!(status, "live" | "deactivated");
    Release {
        deploy: DeployRecord {
            id: id.into(),
            environment: "production".into(),
            service_id: "srv-1".into(),
            commit_sha: sha.into(),
            commit_message: format!("Commit {sha}"),
            status: status.into(),
            trigger: "new_commit".into(),
            created_at: T0 + Duration::minutes(minutes),
            updated_at: T0 + Duration::minutes(minutes),
            finished_at: None,
        },
        commit: Some(commit(sha, "ada", revisions)),
        ci: CiState::Passed,
        runs: vec![],
        smoke: SmokeState::Passed,
        verdict: if went_live {
            Verdict::Good
        } else {
            Verdict::Bad
        },
        reason: if went_live {
            "went live, pipeline and smoke test passed".into()
        } else {
            "the deploy failed on Render (build failed)".into()
        },
        is_live: status == "live",
    }
}

fn commit(sha: &str, author: &str, revisions: &[Revision]) -> CommitRecord {
    CommitRecord {
        sha: sha.into(),
        message: format!("Commit {sha}"),
        author: author.into(),
        author_login: Some(author.into()),
        committed_at: T0,
        html_url: format!("https://github.com/o/r/commit/{sha}"),
        migrations: Some(MigrationsAt {
            revisions: revisions.to_vec(),
            problems: vec![],
        }),
    }
}

/// a ← b ← c, where undoing c drops a column.
fn abc() -> Vec<Revision> {
    vec![
        rev("a", &[], &[]),
        rev("b", &["a"], &[]),
        rev("c", &["b"], &["drops column signals.unit"]),
    ]
}

/// Newest first: dep-3 live at c; dep-2 failed to build; dep-1 at b (the
/// last good); dep-0 at a.
fn history() -> Vec<Release> {
    let revs = abc();
    vec![
        release("dep-3", "ccccccc333", "live", 30, &revs),
        release("dep-2", "fffffff222", "build_failed", 20, &revs),
        release("dep-1", "bbbbbbb111", "deactivated", 10, &revs[..2]),
        release("dep-0", "aaaaaaa000", "deactivated", 0, &revs[..1]),
    ]
}

/// The live release and its database at c, nothing else going on.
fn input() -> PlanInput {
    PlanInput {
        environment: "production".into(),
        releases: history(),
        target: None,
        database: Some(vec!["c".into()]),
        comparison: None,
        commit_ci: BTreeMap::new(),
        running: None,
        lock: None,
        options: RollbackOptions::default(),
        branch_head_now: Some("ccccccc333".into()),
        branch_head_planned: Some("ccccccc333".into()),
        retention: None,
        now: T0 + Duration::hours(1),
        require_approval_for: vec![],
    }
}

fn level(plan: &Plan, id: &str) -> Option<Level> {
    plan.check(id.parse().unwrap()).map(|c| c.level)
}

fn sentence<'a>(plan: &'a Plan, id: &str) -> &'a str {
    &plan
        .check(id.parse().unwrap())
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", plan.checks))
        .sentence
}

fn ids(revisions: &[Revision]) -> Vec<&str> {
    revisions.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn a_code_only_rollback_whose_database_is_already_at_the_target_head_is_one_click() {
    let mut input = input();
    // The live code's c was never run: the database is at b, the target's head.
    input.database = Some(vec!["b".into()]);

    let plan = plan(&input);

    assert_eq!(
        plan.from.as_ref().map(|r| r.deploy.id.as_str()),
        Some("dep-3")
    );
    assert_eq!(
        plan.to.as_ref().map(|r| r.deploy.id.as_str()),
        Some("dep-1")
    );
    assert!(!plan.needs_database_change);
    assert!(plan.alembic_path.is_empty());
    assert!(!plan.blocked());
    assert!(plan.one_click());
    assert_eq!(
        plan.requirements,
        Requirements {
            required_role: Role::Deployer,
            typed_confirmation: None,
            second_approval: false,
            break_glass: true,
        }
    );
    // A full checklist: everything fine is said, nothing else is.
    let got: Vec<(&str, Level)> = plan
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.level))
        .collect();
    assert_eq!(
        got,
        vec![
            ("operation", Level::Pass),
            ("lock", Level::Pass),
            ("branch", Level::Pass),
            ("live", Level::Pass),
            ("target", Level::Pass),
            ("target_went_live", Level::Pass),
            ("commits", Level::Warn),
            ("target_migrations", Level::Pass),
            ("database_state", Level::Pass),
            ("schema", Level::Pass),
        ]
    );
    assert_eq!(
        sentence(&plan, "target"),
        "The rollback goes to deploy dep-1 (bbbbbbb \"Commit bbbbbbb111\"): went live, pipeline and smoke test passed."
    );
    assert_eq!(
        sentence(&plan, "commits"),
        "The commits between bbbbbbb and ccccccc have not been fetched from GitHub yet; the list is missing."
    );
}

#[test]
fn the_commits_taken_off_come_with_their_authors_and_ci_results() {
    let mut input = input();
    input.database = Some(vec!["b".into()]);
    let middle = commit("fffffff222", "grace", &[]);
    let newest = commit("ccccccc333", "ada", &[]);
    let unknown = commit("9999999999", "linus", &[]);
    input.comparison = Some(Comparison {
        status: CompareStatus::Ahead,
        ahead_by: 3,
        behind_by: 0,
        commits: vec![unknown, middle, newest],
        files: vec![],
    });
    input.commit_ci.insert("9999999999".into(), CiState::Failed);

    let plan = plan(&input);

    let got: Vec<(&str, Option<CiState>)> = plan
        .commits
        .iter()
        .map(|c| (c.commit.sha.as_str(), c.ci))
        .collect();
    // From the given CI results, else from the commit's release.
    assert_eq!(
        got,
        vec![
            ("9999999999", Some(CiState::Failed)),
            ("fffffff222", Some(CiState::Passed)),
            ("ccccccc333", Some(CiState::Passed)),
        ]
    );
    assert_eq!(
        sentence(&plan, "commits"),
        "3 commits by ada, grace, linus come off production (bbbbbbb..ccccccc)."
    );
    assert_eq!(level(&plan, "commits"), Some(Level::Pass));
}

#[test]
fn a_target_that_does_not_descend_from_the_live_commit_is_a_warning() {
    let mut input = input();
    input.comparison = Some(Comparison {
        status: CompareStatus::Diverged,
        ahead_by: 2,
        behind_by: 1,
        commits: vec![],
        files: vec![],
    });
    let plan = plan(&input);
    assert_eq!(level(&plan, "commits"), Some(Level::Warn));
    assert_eq!(
        sentence(&plan, "commits"),
        "The target commit bbbbbbb is not an ancestor of the live one ccccccc: besides taking 2 commits off, the rollback brings back 1 commit that production does not run now."
    );
}

#[test]
fn another_operation_running_on_the_environment_blocks() {
    let mut input = input();
    input.running = Some(RunningOperation {
        id: "op-12".into(),
        kind: "rollback".into(),
    });
    let plan = plan(&input);
    assert!(plan.blocked());
    assert!(!plan.one_click());
    assert_eq!(level(&plan, "operation"), Some(Level::Block));
    assert_eq!(
        sentence(&plan, "operation"),
        "Another operation (rollback op-12) is running on production; wait for it or resolve it first."
    );
}

#[test]
fn a_locked_environment_blocks_and_says_who_locked_it_and_why() {
    let mut input = input();
    input.lock = Some(Lock {
        reason: "Black Friday freeze".into(),
        by: Some("grace".into()),
    });
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(
        sentence(&plan, "lock"),
        "production is locked by grace: \"Black Friday freeze\". A lead must unlock it before a rollback."
    );

    let mut input = self::input();
    input.lock = Some(Lock {
        reason: "rollback op-3".into(),
        by: None,
    });
    assert_eq!(
        sentence(&plan_of(&input), "lock"),
        "production is locked: \"rollback op-3\". A lead must unlock it before a rollback."
    );
}

fn plan_of(input: &PlanInput) -> Plan {
    plan(input)
}

#[test]
fn a_target_deploy_that_never_went_live_blocks_because_render_refuses_it() {
    let mut input = input();
    input.target = Some("dep-2".into());
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(level(&plan, "target_went_live"), Some(Level::Block));
    assert_eq!(
        sentence(&plan, "target_went_live"),
        "deploy dep-2 (fffffff \"Commit fffffff222\") never went live (build failed); Render refuses to roll back to it."
    );
}

#[test]
fn a_target_older_than_the_deploys_render_keeps_is_a_warning() {
    let mut input = input();
    input.target = Some("dep-0".into());
    input.database = Some(vec!["a".into()]);
    input.retention = Some(RenderRetention {
        deploys: Some(3),
        max_age: None,
    });
    let plan = plan(&input);
    assert_eq!(level(&plan, "target_retention"), Some(Level::Warn));
    assert_eq!(
        sentence(&plan, "target_retention"),
        "deploy dep-0 (aaaaaaa \"Commit aaaaaaa000\") is older than the last 3 deploys Render keeps (3 newer); Render may refuse to roll back to it."
    );
    assert!(
        !plan.blocked(),
        "a warning does not block: {:#?}",
        plan.checks
    );

    // By age.
    let mut input = self::input();
    input.database = Some(vec!["b".into()]);
    input.retention = Some(RenderRetention {
        deploys: Some(10),
        max_age: Some(Duration::days(30)),
    });
    input.now = T0 + Duration::days(45);
    let plan = plan_of(&input);
    assert_eq!(level(&plan, "target_retention"), Some(Level::Warn));
    assert!(sentence(&plan, "target_retention").contains("is 44 days old, older than the 30 days"));

    // Within both limits.
    input.now = T0 + Duration::days(3);
    assert_eq!(
        level(&plan_of(&input), "target_retention"),
        Some(Level::Pass)
    );
}

#[test]
fn rolling_back_to_the_live_release_blocks() {
    let mut input = input();
    input.target = Some("dep-3".into());
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(
        sentence(&plan, "target"),
        "deploy dep-3 (ccccccc \"Commit ccccccc333\") is the live release of production already; there is nothing to roll back."
    );

    // A redeploy of the live commit is no rollback either.
    let mut input = self::input();
    input.releases[2].deploy.commit_sha = "ccccccc333".into();
    input.target = Some("dep-1".into());
    let plan = plan_of(&input);
    assert_eq!(level(&plan, "target"), Some(Level::Block));
    assert!(sentence(&plan, "target").contains("runs the same commit as the live release"));
}

/// After a code-only rollback to dep-1: Render's new deploy dep-4 runs
/// dep-1's commit (at b) while the database stays at c.
fn after_code_rollback() -> PlanInput {
    let mut input = input();
    let revs = abc();
    input.releases[0].is_live = false;
    input.releases[0].deploy.status = "deactivated".into();
    input
        .releases
        .insert(0, release("dep-4", "bbbbbbb111", "live", 40, &revs[..2]));
    input.branch_head_now = Some("ccccccc333".into());
    input.branch_head_planned = None;
    input
}

#[test]
fn after_a_code_only_rollback_a_lead_can_bring_the_database_to_the_live_code_alone() {
    for target in ["dep-4", "dep-1"] {
        let mut input = after_code_rollback();
        input.target = Some(target.into());
        input.options.database = true;
        let plan = plan_of(&input);
        assert!(!plan.blocked(), "{target}: {:#?}", plan.checks);
        assert!(plan.database_only, "{target}");
        assert_eq!(plan.downgrade_to.as_deref(), Some("b"));
        assert_eq!(ids(&plan.alembic_path), ["c"]);
        assert_eq!(level(&plan, "target"), Some(Level::Pass));
        assert!(
            sentence(&plan, "target")
                .contains("only brings the database down to b, with no Render rollback"),
            "{}",
            sentence(&plan, "target")
        );
        // Undoing c drops a column: a lead, the typed revision.
        assert_eq!(plan.requirements.required_role, Role::Lead);
        assert_eq!(plan.requirements.typed_confirmation.as_deref(), Some("b"));
        assert!(plan.commits.is_empty());
    }
}

#[test]
fn the_live_code_without_the_database_option_is_still_nothing_to_roll_back() {
    let mut input = after_code_rollback();
    input.target = Some("dep-4".into());
    let plan = plan_of(&input);
    assert!(plan.blocked());
    assert!(!plan.database_only);
    assert!(sentence(&plan, "target").contains("is the live release of production already"));

    // Nor with it, once the database is at the live code's head.
    input.options.database = true;
    input.database = Some(vec!["b".into()]);
    let plan = plan_of(&input);
    assert!(plan.blocked());
    assert!(!plan.database_only);
    assert_eq!(level(&plan, "target"), Some(Level::Block));
}

#[test]
fn no_good_release_before_the_live_one_blocks_with_a_clear_sentence() {
    let mut input = input();
    input.releases.truncate(2); // the live one and the failed build
    let plan = plan(&input);
    assert!(plan.blocked());
    assert!(plan.to.is_none());
    assert_eq!(
        sentence(&plan, "target"),
        "There is no good release of production before the live one to roll back to; pick a deploy by hand."
    );

    let mut input = self::input();
    input.target = Some("dep-404".into());
    let plan = plan_of(&input);
    assert!(plan.to.is_none());
    assert_eq!(
        sentence(&plan, "target"),
        "Deploy dep-404 is not among production's deploys; pick one from the list."
    );
}

#[test]
fn nothing_live_blocks() {
    let mut input = input();
    input.releases[0].is_live = false;
    input.releases[0].deploy.status = "deactivated".into();
    let plan = plan(&input);
    assert_eq!(level(&plan, "live"), Some(Level::Block));
    assert!(plan.from.is_none());
}

#[test]
fn old_code_on_a_newer_schema_warns_without_a_downgrade() {
    let plan = plan(&input());
    assert!(plan.needs_database_change);
    assert!(!plan.blocked(), "{:#?}", plan.checks);
    assert!(!plan.one_click(), "a database change is never one click");
    assert_eq!(level(&plan, "schema"), Some(Level::Warn));
    assert_eq!(
        sentence(&plan, "schema"),
        "The database stays at c, which the target code does not know: the old code will run on a newer schema. Choose the database downgrade, or be sure the newer schema still works with the old code."
    );
    // The path is shown, though not chosen; a code-only rollback stays a deployer's.
    assert_eq!(ids(&plan.alembic_path), vec!["c"]);
    assert_eq!(plan.downgrade_to.as_deref(), Some("b"));
    assert_eq!(level(&plan, "downgrade_path"), Some(Level::Pass));
    assert_eq!(plan.requirements.required_role, Role::Deployer);
    assert!(plan.requirements.break_glass);
    assert_eq!(plan.check(CheckId::DataLoss), None);
}

#[test]
fn reverting_the_code_while_the_database_stays_ahead_blocks_because_alembic_upgrade_head_would_fail()
 {
    let mut input = input();
    input.options.revert_code = true;
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(level(&plan, "code_revert"), Some(Level::Block));
    assert_eq!(
        sentence(&plan, "code_revert"),
        "Reverting the code on GitHub would break the pipeline: its `alembic upgrade head` fails with \"Can't locate revision identified by 'c'\", because the reverted code does not contain it. Downgrade the database in the same rollback, or roll back on Render only."
    );

    // With the downgrade in the same rollback the revert is fine.
    input.options.database = true;
    let plan = plan_of(&input);
    assert_eq!(level(&plan, "code_revert"), Some(Level::Pass));
    assert_eq!(
        sentence(&plan, "code_revert"),
        "The branch's code goes back to the tree of bbbbbbb, through a pull request."
    );
    assert!(!plan.blocked(), "{:#?}", plan.checks);
}

#[test]
fn a_revert_when_the_branch_is_past_the_live_commit_warns_that_it_undoes_those_too() {
    let mut input = input();
    input.database = Some(vec!["b".into()]);
    input.options.revert_code = true;
    input.options.revert_mode = RevertMode::FastForward;
    input.branch_head_now = Some("ddddddd444".into());
    input.branch_head_planned = Some("ddddddd444".into());
    let plan = plan(&input);
    assert_eq!(
        sentence(&plan, "code_revert"),
        "The branch's code goes back to the tree of bbbbbbb, by a fast-forward of the branch (never a force push)."
    );
    assert_eq!(level(&plan, "branch_ahead"), Some(Level::Warn));
}

#[test]
fn a_database_with_several_heads_blocks_an_automatic_downgrade() {
    let revs = vec![
        rev("a", &[], &[]),
        rev("b", &["a"], &[]),
        rev("c", &["b"], &[]),
        rev("d", &["b"], &[]),
    ];
    let mut input = input();
    input.releases[0] = release("dep-3", "ccccccc333", "live", 30, &revs);
    input.database = Some(vec!["c".into(), "d".into()]);
    input.options.database = true;
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(level(&plan, "database_heads"), Some(Level::Block));
    assert_eq!(
        sentence(&plan, "database_heads"),
        "The database has several heads (c, d); Flightdeck does not downgrade several heads automatically: merge them or downgrade by hand."
    );

    // Without a downgrade it is only a warning.
    input.options.database = false;
    assert_eq!(level(&plan_of(&input), "database_heads"), Some(Level::Warn));
}

#[test]
fn a_downgrade_that_loses_data_needs_a_lead_the_typed_revision_and_a_second_lead_where_configured()
{
    let mut input = input();
    input.options.database = true;
    input.require_approval_for = vec![ApprovalKind::DatabaseDowngrade];
    let plan = plan(&input);

    assert!(!plan.blocked(), "{:#?}", plan.checks);
    assert!(!plan.one_click());
    assert_eq!(ids(&plan.alembic_path), vec!["c"]);
    assert_eq!(
        plan.alembic_path[0].data_loss[0].detail,
        "drops column signals.unit"
    );
    assert_eq!(level(&plan, "data_loss"), Some(Level::Warn));
    assert_eq!(
        sentence(&plan, "data_loss"),
        "Downgrading to b destroys data: drops column signals.unit (revision c, line 20). It needs a lead, the revision b typed to confirm, and a second lead's approval."
    );
    assert_eq!(
        sentence(&plan, "downgrade_path"),
        "The database goes down from c to b, undoing 1 revision."
    );
    assert_eq!(
        plan.requirements,
        Requirements {
            required_role: Role::Lead,
            typed_confirmation: Some("b".into()),
            second_approval: true,
            break_glass: false,
        }
    );

    // Without the two-person rule: a lead and the typed revision.
    input.require_approval_for.clear();
    let plan = plan_of(&input);
    assert!(!plan.requirements.second_approval);
    assert_eq!(plan.requirements.typed_confirmation.as_deref(), Some("b"));
    assert_eq!(plan.requirements.required_role, Role::Lead);
}

#[test]
fn a_downgrade_that_loses_nothing_needs_a_lead_but_no_typed_revision() {
    let mut input = input();
    for release in &mut input.releases {
        if let Some(m) = release.commit.as_mut().and_then(|c| c.migrations.as_mut()) {
            for r in &mut m.revisions {
                r.data_loss.clear();
            }
        }
    }
    input.options.database = true;
    input.require_approval_for = vec![ApprovalKind::DatabaseDowngrade];
    let plan = plan(&input);
    assert_eq!(level(&plan, "data_loss"), Some(Level::Pass));
    assert_eq!(
        plan.requirements,
        Requirements {
            required_role: Role::Lead,
            typed_confirmation: None,
            second_approval: false,
            break_glass: false,
        }
    );
}

#[test]
fn a_code_rollback_approval_rule_asks_a_second_lead_for_every_rollback() {
    let mut input = input();
    input.database = Some(vec!["b".into()]);
    input.require_approval_for = vec![ApprovalKind::CodeRollback];
    let plan = plan(&input);
    assert!(plan.requirements.second_approval);
    assert!(!plan.requirements.break_glass);
}

#[test]
fn an_unread_database_warns_and_blocks_a_downgrade() {
    let mut input = input();
    input.database = None;
    let plan = plan(&input);
    assert_eq!(level(&plan, "database_state"), Some(Level::Warn));
    assert_eq!(
        sentence(&plan, "database_state"),
        "production's alembic_version has never been read, so the plan cannot tell which schema the database is at."
    );
    assert!(plan.needs_database_change, "unknown is not \"no change\"");
    assert!(!plan.one_click());
    assert!(!plan.blocked());

    input.options.database = true;
    let plan = plan_of(&input);
    assert_eq!(level(&plan, "database_state"), Some(Level::Block));
    assert!(sentence(&plan, "database_state").ends_with("; a downgrade cannot be planned."));
}

#[test]
fn unread_target_migrations_block_a_downgrade() {
    let mut input = input();
    input.releases[2].commit.as_mut().unwrap().migrations = None;
    input.options.database = true;
    let plan = plan(&input);
    assert_eq!(level(&plan, "target_migrations"), Some(Level::Block));
    assert!(plan.blocked());
}

#[test]
fn a_branch_that_moved_since_the_plan_was_made_blocks_until_re_planned() {
    let mut input = input();
    input.branch_head_now = Some("eeeeeee555".into());
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(
        sentence(&plan, "branch"),
        "The branch moved since this plan was made (ccccccc → eeeeeee); re-plan before rolling back."
    );
}

#[test]
fn a_target_head_that_the_database_never_ran_cannot_be_downgraded_to() {
    // The target's head x sits on a side branch the database never ran.
    let live = vec![
        rev("a", &[], &[]),
        rev("b", &["a"], &[]),
        rev("c", &["b"], &[]),
        rev("x", &["a"], &[]),
    ];
    let mut input = input();
    input.releases[0] = release("dep-3", "ccccccc333", "live", 30, &live);
    input.releases[2] = release(
        "dep-1",
        "bbbbbbb111",
        "deactivated",
        10,
        &[rev("a", &[], &[]), rev("x", &["a"], &[])],
    );
    input.options.database = true;
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(
        sentence(&plan, "downgrade_path"),
        "The database cannot be downgraded to the target's head x automatically: x is not applied, so there is nothing to downgrade to."
    );
    assert!(plan.alembic_path.is_empty());
    assert_eq!(plan.downgrade_to, None);
}

#[test]
fn target_migrations_that_do_not_form_a_graph_block_a_downgrade_with_the_reason() {
    let mut input = input();
    input.releases[2] = release(
        "dep-1",
        "bbbbbbb111",
        "deactivated",
        10,
        &[rev("b", &["gone"], &[])],
    );
    input.options.database = true;
    let plan = plan(&input);
    assert!(plan.blocked());
    assert_eq!(
        sentence(&plan, "target_migrations"),
        "The target commit's migrations do not form a graph: revision b (b_revision.py) revises gone, which is not in the directory."
    );
}

#[test]
fn the_sandbox_history_downgrades_from_its_head_to_the_merge_through_a_dropped_column() {
    use flightdeck_sandbox::alembic::{file_name, render, sample_history};
    let history = sample_history(7);
    let parsed: Vec<Revision> = history
        .iter()
        .map(|spec| {
            parse_revision(&file_name(spec), &render(spec)).expect("the sandbox's files parse")
        })
        .collect();
    let id = |i: usize| history[i].id.clone();
    let mut input = input();
    input.releases[0] = release("dep-3", "ccccccc333", "live", 30, &parsed);
    // The target commit ends at the merge (revision 5).
    input.releases[2] = release("dep-1", "bbbbbbb111", "deactivated", 10, &parsed[..6]);
    input.database = Some(vec![id(9)]);
    input.options.database = true;

    let plan = plan(&input);

    assert_eq!(plan.target_heads, Some(vec![id(5)]));
    assert!(history[5].down.len() == 2, "revision 5 is the merge");
    assert_eq!(
        ids(&plan.alembic_path),
        vec![id(9), id(8), id(7), id(6)],
        "children first"
    );
    let losses: Vec<(&str, &str)> = plan
        .alembic_path
        .iter()
        .flat_map(|r| {
            r.data_loss
                .iter()
                .map(move |d| (r.id.as_str(), d.detail.as_str()))
        })
        .collect();
    assert_eq!(losses, vec![(id(6).as_str(), "drops column signals.unit")]);
    assert_eq!(plan.requirements.typed_confirmation, Some(id(5)));
    assert_eq!(plan.requirements.required_role, Role::Lead);
    assert!(!plan.blocked(), "{:#?}", plan.checks);
}
