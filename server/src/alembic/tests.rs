use super::graph::{Graph, GraphError};
use super::*;
use flightdeck_sandbox::scenario::SeededRng;

/// As `alembic revision -m "add legacy score"` writes it, with a downgrade
/// that destroys things in every way the reader knows.
const DESTRUCTIVE: &str = r#""""add legacy score

Revision ID: 3f2a9c1d0e7b
Revises: 1a2b3c4d5e6f
Create Date: 2026-11-02 10:15:42.123456

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3f2a9c1d0e7b'
down_revision: Union[str, Sequence[str], None] = '1a2b3c4d5e6f'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # op.drop_table('not_really') is only a comment
    op.add_column('datasets', sa.Column('legacy_score', sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('datasets', 'legacy_score')
    with op.batch_alter_table("signals") as batch_op:
        batch_op.drop_column("weight")
    op.alter_column('exports', 'name',
               existing_type=sa.String(length=255),
               type_=sa.String(length=50))
    op.alter_column('exports', 'size', existing_type=sa.Integer(), type_=sa.BigInteger())
    op.execute("DELETE FROM exports WHERE kind = 'tmp'")
    op.execute(sa.text('truncate table audit_scratch'))
    op.execute("UPDATE datasets SET note = 'drop me later'")
    op.drop_table(
        'uploads'
    )
    print("op.drop_table('in a string')")
"#;

const MERGE: &str = r#""""merge heads

Revision ID: 9d8c7b6a5f4e
Revises: 3f2a9c1d0e7b, 77aa88bb99cc
Create Date: 2026-11-03 08:00:00

"""
revision = "9d8c7b6a5f4e"
down_revision = (
    "3f2a9c1d0e7b",
    "77aa88bb99cc",  # the other branch
)
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
"#;

fn rev(id: &str, down: &[&str]) -> Revision {
    Revision {
        id: id.into(),
        down: down.iter().map(|s| (*s).to_owned()).collect(),
        branch_labels: vec![],
        depends_on: vec![],
        message: format!("rev {id}"),
        create_date: None,
        data_loss: vec![],
        file: format!("{id}.py"),
    }
}

#[test]
fn reads_an_alembic_generated_file() {
    let r = parse_revision("versions/3f2a.py", DESTRUCTIVE).unwrap();
    assert_eq!(r.id, "3f2a9c1d0e7b");
    assert_eq!(r.down, vec!["1a2b3c4d5e6f"]);
    assert!(r.branch_labels.is_empty() && r.depends_on.is_empty());
    assert_eq!(r.message, "add legacy score");
    assert_eq!(r.create_date.as_deref(), Some("2026-11-02 10:15:42.123456"));
    let found: Vec<(usize, DataLossKind, &str)> = r
        .data_loss
        .iter()
        .map(|d| (d.line, d.kind, d.detail.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                29,
                DataLossKind::DropColumn,
                "drops column datasets.legacy_score"
            ),
            (31, DataLossKind::DropColumn, "drops column signals.weight"),
            (
                32,
                DataLossKind::NarrowColumn,
                "narrows column exports.name (sa.String(length=255) → sa.String(length=50)); values may be cut or lost"
            ),
            (
                36,
                DataLossKind::DestructiveSql,
                "runs DELETE: DELETE FROM exports WHERE kind = 'tmp'"
            ),
            (
                37,
                DataLossKind::DestructiveSql,
                "runs TRUNCATE: truncate table audit_scratch"
            ),
            (39, DataLossKind::DropTable, "drops table uploads"),
        ]
    );
}

#[test]
fn reads_a_merge_revision_with_a_multi_line_tuple() {
    let r = parse_revision("merge.py", MERGE).unwrap();
    assert_eq!(r.down, vec!["3f2a9c1d0e7b", "77aa88bb99cc"]);
    assert!(r.is_merge());
    assert_eq!(r.message, "merge heads");
    assert!(r.data_loss.is_empty());
}

#[test]
fn reads_labels_depends_on_and_a_base_revision() {
    let text =
        "revision = 'aaa'\ndown_revision = None\nbranch_labels = ('api',)\ndepends_on = 'bbb'\n";
    let r = parse_revision("a.py", text).unwrap();
    assert!(r.down.is_empty());
    assert_eq!(r.branch_labels, vec!["api"]);
    assert_eq!(r.depends_on, vec!["bbb"]);
    assert_eq!(r.message, "");
    assert_eq!(r.create_date, None);
}

#[test]
fn names_the_file_and_line_of_what_it_cannot_read() {
    let cases = [
        (
            "revision = 'a'\ndown_revision = compute()\n",
            2,
            "cannot read `down_revision`",
        ),
        (
            "\n\nrevision = 42\ndown_revision = None\n",
            3,
            "cannot read `revision`",
        ),
        ("down_revision = None\n", 1, "no top-level `revision"),
        ("revision = 'a'\n", 1, "no top-level `down_revision"),
        ("\n\"\"\"never closed\nrevision = 'a'\n", 2, "never closed"),
        (
            "revision = 'a'\ndown_revision = ('x', 'y'\n",
            2,
            "is missing",
        ),
        ("revision = ''\ndown_revision = None\n", 1, "non-empty"),
        (
            "revision = 'a'\ndown_revision = [1]\n",
            2,
            "cannot read `down_revision`",
        ),
    ];
    for (text, line, message) in cases {
        let e = parse_revision("versions/x.py", text).unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line),
            ("versions/x.py", line),
            "{text:?} → {e}"
        );
        assert!(e.message.contains(message), "{text:?} → {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("versions/x.py:{line}: "))
        );
    }
}

#[test]
fn an_assignment_inside_a_function_or_string_does_not_count() {
    let text = "\"\"\"revision = 'no'\"\"\"\nrevision = 'yes'\ndown_revision = None\ndef f():\n    revision = 'inner'\n";
    assert_eq!(parse_revision("a.py", text).unwrap().id, "yes");
}

#[test]
fn widening_or_untyped_alter_column_is_not_data_loss() {
    let text = "revision = 'a'\ndown_revision = None\ndef downgrade():\n    op.alter_column('t', 'c', existing_type=sa.String(50), type_=sa.Text())\n    op.alter_column('t', 'd', nullable=True)\n    op.alter_column('t', 'e', existing_type=sa.String(50), type_=sa.String(80))\n";
    assert!(parse_revision("a.py", text).unwrap().data_loss.is_empty());
    let text = "revision = 'a'\ndown_revision = None\ndef downgrade():\n    op.alter_column('t', 'c', existing_type=sa.Text(), type_=sa.Integer())\n";
    assert_eq!(
        parse_revision("a.py", text).unwrap().data_loss[0].kind,
        DataLossKind::NarrowColumn
    );
}

#[test]
fn upgrade_drops_are_not_downgrade_data_loss() {
    let text = "revision = 'a'\ndown_revision = None\ndef upgrade():\n    op.drop_table('x')\n\ndef downgrade():\n    op.create_table('x')\n";
    assert!(parse_revision("a.py", text).unwrap().data_loss.is_empty());
}

/// Property: no input makes the reader panic. Inputs are mutations of real
/// revision files (the likeliest garbage) and random text, from a fixed seed.
#[test]
fn never_panics_on_mangled_or_random_input() {
    let mut rng = SeededRng::new(2026);
    let alphabet: Vec<char> = "'\"()[]{}#\\\n =:,.ab_op\u{e9}\u{2713}\t\"\"\"rdefNone"
        .chars()
        .collect();
    for round in 0..4000 {
        let base: Vec<char> = if round % 2 == 0 { DESTRUCTIVE } else { MERGE }
            .chars()
            .collect();
        let mut text = base.clone();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(text.len() as u64 + 1) as usize;
            match rng.below(4) {
                0 => text.truncate(at),
                1 if at < text.len() => {
                    text.remove(at);
                }
                _ => text.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]),
            }
        }
        let text: String = text.into_iter().collect();
        let _ = parse_revision("fuzz.py", &text);
    }
    for _ in 0..2000 {
        let len = rng.below(200) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect();
        let _ = parse_revision("random.py", &text);
    }
}

#[test]
fn graph_heads_pending_and_drift() {
    // base ← a ← b1, a ← b2, (b1, b2) ← m, m ← c
    let graph = Graph::new(vec![
        rev("c", &["m"]),
        rev("base", &[]),
        rev("a", &["base"]),
        rev("b1", &["a"]),
        rev("b2", &["a"]),
        rev("m", &["b1", "b2"]),
    ])
    .unwrap();
    assert_eq!(graph.heads(), vec!["c"]);
    let order: Vec<&str> = graph.ordered().map(|r| r.id.as_str()).collect();
    assert_eq!(order, vec!["base", "a", "b1", "b2", "m", "c"]);

    let state = graph.state(&["b1".into()]);
    assert_eq!(state.pending, vec!["b2", "m", "c"]);
    assert!(state.drift.is_empty() && !state.is_at_head());
    assert!(graph.state(&["c".into()]).is_at_head());
    let drifted = graph.state(&["zzz".into()]);
    assert_eq!(drifted.drift, vec!["zzz"]);
    assert_eq!(drifted.pending.len(), 6);
    // Before the merge the database may sit at both branch heads.
    assert_eq!(
        graph.state(&["b1".into(), "b2".into()]).pending,
        vec!["m", "c"]
    );
}

#[test]
fn downgrade_path_runs_children_first_and_refuses_what_cannot_be() {
    let mut lossy = rev("b2", &["a"]);
    lossy.data_loss.push(DataLoss {
        line: 30,
        kind: DataLossKind::DropColumn,
        detail: "drops column t.c".into(),
    });
    let graph = Graph::new(vec![
        rev("base", &[]),
        rev("a", &["base"]),
        rev("b1", &["a"]),
        lossy,
        rev("m", &["b1", "b2"]),
        rev("c", &["m"]),
    ])
    .unwrap();
    let path: Vec<&str> = graph
        .downgrade_path(&["c".into()], Some("a"))
        .unwrap()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(path, vec!["c", "m", "b2", "b1"]);
    // Down to one side of the merge: only what descends from it is undone,
    // the other side stays applied (as real Alembic does).
    let path: Vec<&str> = graph
        .downgrade_path(&["c".into()], Some("b1"))
        .unwrap()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(path, vec!["c", "m"]);
    let loss = graph::data_loss(&graph.downgrade_path(&["c".into()], Some("b2")).unwrap());
    assert!(loss.is_empty(), "b2 itself stays applied");
    let loss = graph::data_loss(&graph.downgrade_path(&["c".into()], Some("a")).unwrap());
    assert_eq!(loss.len(), 1);
    assert_eq!(loss[0].0, "b2");
    assert_eq!(graph.downgrade_path(&["c".into()], None).unwrap().len(), 6);
    assert!(
        graph
            .downgrade_path(&["c".into()], Some("c"))
            .unwrap()
            .is_empty()
    );
    assert!(
        graph
            .downgrade_path(&["b1".into()], Some("m"))
            .unwrap_err()
            .contains("not applied")
    );
    assert!(
        graph
            .downgrade_path(&["x".into()], Some("a"))
            .unwrap_err()
            .contains("do not contain")
    );
    assert!(
        graph
            .downgrade_path(&["c".into()], Some("q"))
            .unwrap_err()
            .contains("not a revision")
    );
}

#[test]
fn graph_errors_name_the_revision() {
    let dup = Graph::new(vec![rev("a", &[]), rev("a", &[])]).unwrap_err();
    assert!(matches!(dup, GraphError::Duplicate { .. }));
    let unknown = Graph::new(vec![rev("a", &["nope"])]).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "revision a (a.py) revises nope, which is not in the directory"
    );
    let cycle = Graph::new(vec![rev("a", &["b"]), rev("b", &["a"])]).unwrap_err();
    assert_eq!(cycle.to_string(), "the revisions a, b form a cycle");
}

/// The sandbox's migrations directory at main's head, read over HTTP and
/// parsed by the panel's own reader, is the generated history; the rest of
/// the seeded world (Render's deploys, the runs) agrees with it.
mod sandbox_world {
    use super::*;
    use base64::Engine;
    use flightdeck_sandbox::alembic;
    use flightdeck_sandbox::world::{
        DEPLOY_WORKFLOW, GITHUB_TOKEN, MIGRATIONS_PATH, OWNER, RENDER_KEY, REPO, Speeds, Targets,
        World,
    };
    use serde_json::Value;

    async fn get(client: &reqwest::Client, url: String, token: &str) -> Value {
        let response = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {url}");
        response.json().await.unwrap()
    }

    #[tokio::test]
    async fn the_seeded_world_agrees_with_itself_across_github_render_and_the_databases() {
        crate::integrations::install_tls_provider();
        let dir = flightdeck_sandbox::scratch::ScratchDb::new("sqlite").await;
        let world = World::build(5, Speeds::quick(), Targets::Sqlite(dir.dir.clone()))
            .await
            .unwrap();
        let served = world.serve().await.unwrap();
        let client = reqwest::Client::new();
        let repo = format!("{}/repos/{OWNER}/{REPO}", served.github);

        // The migrations directory at main's head, read over HTTP and parsed
        // by the panel's own reader, is the generated history.
        let listing = get(
            &client,
            format!("{repo}/contents/{MIGRATIONS_PATH}?ref=main"),
            GITHUB_TOKEN,
        )
        .await;
        let mut revisions = Vec::new();
        for entry in listing.as_array().unwrap() {
            let file = get(
                &client,
                format!(
                    "{repo}/contents/{}?ref=main",
                    entry["path"].as_str().unwrap()
                ),
                GITHUB_TOKEN,
            )
            .await;
            let b64: String = file["content"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .collect();
            let text = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap();
            revisions.push(parse_revision(entry["name"].as_str().unwrap(), &text).unwrap());
        }
        assert_eq!(revisions.len(), world.history.len());
        for spec in &world.history {
            let parsed = revisions
                .iter()
                .find(|r| r.id == spec.id)
                .expect("every revision is in the directory");
            assert_eq!(parsed.down, spec.down, "{}", spec.id);
            assert_eq!(parsed.message, spec.message);
            let drops = parsed
                .data_loss
                .iter()
                .any(|d| matches!(d.kind, DataLossKind::DropColumn | DataLossKind::DropTable));
            assert_eq!(
                drops,
                spec.downgrade_loses_data(),
                "{}: {:?}",
                spec.id,
                parsed.data_loss
            );
        }
        let graph = Graph::new(revisions).unwrap();
        assert_eq!(graph.heads(), alembic::heads(&world.history));
        assert!(
            world.history.iter().any(|r| r.down.len() > 1),
            "a merge revision"
        );

        // Production's database is where main's last deployed pipeline left it.
        let production = world.targets["production"].1.revisions().await.unwrap();
        assert!(graph.state(&production).is_at_head(), "{production:?}");

        // Render: one deploy per deployed main commit, one failed build, the newest live.
        let deployed = world.scenario.main().filter(|c| c.ci.deployed()).count();
        let deploys = get(
            &client,
            format!(
                "{}/v1/services/srv-sandbox-production/deploys?limit=100",
                served.render
            ),
            RENDER_KEY,
        )
        .await;
        let statuses: Vec<&str> = deploys
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["deploy"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.len(), deployed);
        assert_eq!(statuses[0], "live");
        assert_eq!(statuses.iter().filter(|s| **s == "build_failed").count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == "live").count(), 1);

        // Runs: every commit has one, some failed.
        let runs = get(
            &client,
            format!("{repo}/actions/workflows/{DEPLOY_WORKFLOW}/runs?per_page=100"),
            GITHUB_TOKEN,
        )
        .await;
        assert_eq!(
            runs["total_count"].as_u64().unwrap() as usize,
            world.scenario.commits.len()
        );
        assert!(
            runs["workflow_runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["conclusion"] == "failure")
        );
        dir.drop_all().await;
    }
}
