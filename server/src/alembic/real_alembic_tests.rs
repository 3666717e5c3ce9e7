//! The reader and the graph checked against the real Alembic on files it
//! generated itself: `alembic init` with the default template, revisions,
//! a branch and a merge made with the CLI, their bodies filled with real
//! operations that `alembic upgrade` and `downgrade` run on the database.
//! Whatever `alembic history`, `heads` and `current` print must be what
//! [`parse_revision`], [`Graph`] and [`SqlxMigrationDatabase`] say.
//!
//! The real `alembic` is found as the sandbox's tests find it
//! (FLIGHTDECK_ALEMBIC, else the venv of `cargo xtask tools`); missing, the
//! tests fail and say how to install it.

use super::graph::{Graph, data_loss};
use super::{DataLossKind, parse_revision};
use crate::integrations::database::{MigrationDatabase, SqlxMigrationDatabase};
use flightdeck_sandbox::alembic::alembic_bin;
use flightdeck_sandbox::alembic::sqlalchemy_url;
use flightdeck_sandbox::scratch::ScratchDb;
use flightdeck_sandbox::target_db::TargetDb;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What one `alembic` call printed.
struct Output {
    stdout: String,
    /// Alembic logs what it runs ("Running downgrade a -> b, …") here.
    stderr: String,
}

/// Runs `alembic ARGS` in `project`; a failure fails the test with
/// Alembic's own message.
async fn alembic(project: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(alembic_bin());
    cmd.args(args).current_dir(project);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("alembic starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "alembic {args:?} failed:\n{stdout}\n{stderr}"
    );
    Output { stdout, stderr }
}

/// `alembic revision` / `merge`: the new revision's id (Alembic's default
/// file template is `<rev>_<slug>.py`) and its file.
fn generated(output: &Output) -> (String, PathBuf) {
    let path = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Generating "))
        .and_then(|rest| rest.split(" ...").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no `Generating …` line in:\n{}", output.stdout));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let id = name.split('_').next().unwrap().to_owned();
    (id, path)
}

/// The ids at the start of `alembic heads` / `current` lines, sorted.
fn listed(output: &Output) -> Vec<String> {
    let mut ids: Vec<String> = output
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

/// One line of `alembic history`: `<base> -> a, msg`, `a -> b (head), msg`,
/// `a, b -> m (mergepoint), msg`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    id: String,
    parents: Vec<String>,
    message: String,
}

fn history(output: &Output) -> BTreeSet<Edge> {
    output
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (from, to) = line
                .split_once(" -> ")
                .unwrap_or_else(|| panic!("not a history line: {line}"));
            let mut parents: Vec<String> = if from == "<base>" {
                Vec::new()
            } else {
                from.split(", ").map(str::to_owned).collect()
            };
            parents.sort();
            let id = to
                .split([' ', ','])
                .next()
                .unwrap_or_else(|| panic!("no id in: {line}"));
            let (_, message) = to
                .split_once(", ")
                .unwrap_or_else(|| panic!("no message in: {line}"));
            Edge {
                id: id.to_owned(),
                parents,
                message: message.to_owned(),
            }
        })
        .collect()
}

/// The revisions Alembic ran down through, in its order, from the
/// "Running downgrade a -> b, …" lines it logs.
fn downgraded(output: &Output) -> Vec<String> {
    output
        .stderr
        .lines()
        .filter_map(|l| l.split_once("Running downgrade ").map(|(_, rest)| rest))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect()
}

/// Replaces the default template's `pass` under `upgrade()`/`downgrade()`.
fn fill(file: &Path, upgrade: &str, downgrade: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut filled = text.clone();
    for (doc, body) in [
        ("\"\"\"Upgrade schema.\"\"\"\n    pass", upgrade),
        ("\"\"\"Downgrade schema.\"\"\"\n    pass", downgrade),
    ] {
        assert_eq!(
            filled.matches(doc).count(),
            1,
            "{} is not the default template:\n{text}",
            file.display()
        );
        filled = filled.replace(doc, &format!("{}\n{body}", &doc[..doc.find('\n').unwrap()]));
    }
    std::fs::write(file, filled).unwrap();
}

/// Reads every revision file in `versions` with the reader under test.
fn read_graph(versions: &Path) -> Graph {
    let mut revisions = Vec::new();
    for entry in std::fs::read_dir(versions).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            revisions.push(parse_revision(&name, &text).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    Graph::new(revisions).unwrap()
}

/// `table.column` of every user table, and the user indexes.
async fn schema(db: &TargetDb) -> Vec<String> {
    let sql = match db.backend() {
        "sqlite" => {
            "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name <> 'alembic_version' \
             UNION ALL SELECT 'index ' || name FROM sqlite_master WHERE type = 'index' \
             AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1"
        }
        _ => {
            "SELECT table_name || '.' || column_name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> 'alembic_version' \
             UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname NOT LIKE '%_pkey' AND indexname <> 'alembic_version_pkc' ORDER BY 1"
        }
    };
    db.strings(sql).await
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Each revision comes before its parents.
fn assert_children_first(graph: &Graph, path: &[String]) {
    for (i, id) in path.iter().enumerate() {
        for parent in &graph.get(id).unwrap().down {
            if let Some(j) = path.iter().position(|p| p == parent) {
                assert!(i < j, "{id} must come before its parent {parent}: {path:?}");
            }
        }
    }
}

async fn alembic_agrees_with_the_reader(backend: &str) {
    let scratch = ScratchDb::new(backend).await;
    let project = scratch.dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    alembic(&project, &["init", "migrations"]).await;
    let ini = project.join("alembic.ini");
    let url = sqlalchemy_url(&scratch.url).unwrap();
    let text = std::fs::read_to_string(&ini).unwrap();
    assert!(text.contains("\nsqlalchemy.url = driver://"), "{text}");
    let text = text
        .lines()
        .map(|l| match l.starts_with("sqlalchemy.url = ") {
            // configparser interpolates `%`.
            true => format!("sqlalchemy.url = {}", url.replace('%', "%%")),
            false => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&ini, text).unwrap();
    let versions = project.join("migrations/versions");

    // ---- the history, made by the CLI -----------------------------------
    let (base, file) = generated(&alembic(&project, &["revision", "-m", "create datasets"]).await);
    fill(
        &file,
        "    op.create_table('datasets',\n\
         \x20       sa.Column('id', sa.Integer(), nullable=False),\n\
         \x20       sa.Column('name', sa.String(length=50), nullable=False),\n\
         \x20       sa.PrimaryKeyConstraint('id'))",
        "    op.drop_table('datasets')",
    );
    let (score, file) =
        generated(&alembic(&project, &["revision", "-m", "add legacy score"]).await);
    fill(
        &file,
        "    op.add_column('datasets', sa.Column('legacy_score', sa.Integer(), nullable=True))",
        "    op.drop_column('datasets', 'legacy_score')",
    );
    // Two revisions on the same parent: a branch.
    let (exports, file) = generated(
        &alembic(
            &project,
            &["revision", "-m", "create exports", "--head", &score],
        )
        .await,
    );
    fill(
        &file,
        "    op.create_table('exports',\n\
         \x20       sa.Column('id', sa.Integer(), nullable=False),\n\
         \x20       sa.Column('dataset_id', sa.Integer(), nullable=False),\n\
         \x20       sa.Column('path', sa.String(length=200), nullable=True),\n\
         \x20       sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id']),\n\
         \x20       sa.PrimaryKeyConstraint('id'))",
        "    op.drop_table('exports')",
    );
    let (index, file) = generated(
        &alembic(
            &project,
            &[
                "revision",
                "-m",
                "index dataset names",
                "--head",
                &score,
                "--splice",
            ],
        )
        .await,
    );
    // Dropping an index loses no data: no mark expected.
    fill(
        &file,
        "    op.create_index('ix_datasets_name', 'datasets', ['name'], unique=False)",
        "    op.drop_index('ix_datasets_name', table_name='datasets')",
    );
    let (merge, _) = generated(
        &alembic(
            &project,
            &["merge", "heads", "-m", "merge exports and index"],
        )
        .await,
    );
    let (status, file) =
        generated(&alembic(&project, &["revision", "-m", "add export status"]).await);
    fill(
        &file,
        "    with op.batch_alter_table('exports') as batch_op:\n\
         \x20       batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=True))",
        "    with op.batch_alter_table('exports') as batch_op:\n\
         \x20       batch_op.drop_column('status')",
    );
    let messages = BTreeMap::from([
        (&base, "create datasets"),
        (&score, "add legacy score"),
        (&exports, "create exports"),
        (&index, "index dataset names"),
        (&merge, "merge exports and index"),
        (&status, "add export status"),
    ]);

    // ---- what Alembic reads, against what the reader reads --------------
    let graph = read_graph(&versions);
    let listed_history = history(&alembic(&project, &["history"]).await);
    let read_history: BTreeSet<Edge> = graph
        .ordered()
        .map(|r| {
            let mut parents = r.down.clone();
            parents.sort();
            Edge {
                id: r.id.clone(),
                parents,
                message: r.message.clone(),
            }
        })
        .collect();
    assert_eq!(read_history, listed_history);
    assert_eq!(graph.len(), 6);
    for revision in graph.ordered() {
        assert_eq!(
            revision.message, messages[&revision.id],
            "{}",
            revision.file
        );
        assert!(revision.create_date.is_some(), "{}", revision.file);
    }
    assert!(graph.get(&merge).unwrap().is_merge());
    assert_eq!(graph.get(&merge).unwrap().down.len(), 2);
    assert_eq!(graph.heads(), listed(&alembic(&project, &["heads"]).await));
    assert_eq!(graph.heads(), std::slice::from_ref(&status));

    // The data-loss marks are exactly on the revisions made destructive.
    let marks: BTreeMap<String, Vec<(DataLossKind, String)>> = graph
        .ordered()
        .filter(|r| !r.data_loss.is_empty())
        .map(|r| {
            let marks = r.data_loss.iter().map(|d| (d.kind, d.detail.clone()));
            (r.id.clone(), marks.collect())
        })
        .collect();
    let drop_table = |t: &str| vec![(DataLossKind::DropTable, format!("drops table {t}"))];
    let drop_column = |c: &str| vec![(DataLossKind::DropColumn, format!("drops column {c}"))];
    assert_eq!(
        marks,
        BTreeMap::from([
            (base.clone(), drop_table("datasets")),
            (score.clone(), drop_column("datasets.legacy_score")),
            (exports.clone(), drop_table("exports")),
            (status.clone(), drop_column("exports.status")),
        ])
    );

    // ---- up to head -------------------------------------------------------
    alembic(&project, &["upgrade", "head"]).await;
    let reader = SqlxMigrationDatabase::new(&scratch.url).unwrap();
    let inspector = TargetDb::open(&scratch.url).await.unwrap();
    let at_head = reader.versions().await.unwrap();
    assert_eq!(at_head, listed(&alembic(&project, &["current"]).await));
    assert_eq!(at_head, std::slice::from_ref(&status));
    let state = graph.state(&at_head);
    assert!(state.is_at_head(), "{state:?}");
    assert_eq!(state.heads, graph.heads());
    assert_eq!(
        schema(&inspector).await,
        strings(&[
            "datasets.id",
            "datasets.legacy_score",
            "datasets.name",
            "exports.dataset_id",
            "exports.id",
            "exports.path",
            "exports.status",
            "index ix_datasets_name",
        ])
    );

    // ---- one step down: the batch drop_column --------------------------
    let undone = downgraded(&alembic(&project, &["downgrade", "-1"]).await);
    assert_eq!(undone, std::slice::from_ref(&status));
    let now = reader.versions().await.unwrap();
    assert_eq!(now, listed(&alembic(&project, &["current"]).await));
    assert_eq!(now, std::slice::from_ref(&merge));
    assert_eq!(graph.state(&now).pending, undone);
    let path = graph.downgrade_path(&at_head, Some(&merge)).unwrap();
    let path_ids: Vec<String> = path.iter().map(|r| r.id.clone()).collect();
    assert_eq!(path_ids, undone);
    let lost: Vec<(&str, &str)> = data_loss(&path)
        .into_iter()
        .map(|(id, d)| (id, d.detail.as_str()))
        .collect();
    assert_eq!(lost, [(status.as_str(), "drops column exports.status")]);
    assert!(
        !schema(&inspector)
            .await
            .contains(&"exports.status".to_owned())
    );

    // ---- to one side of the merge: both sides stay, two rows ---------
    let predicted: Vec<String> = graph
        .downgrade_path(std::slice::from_ref(&merge), Some(&exports))
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let undone = downgraded(&alembic(&project, &["downgrade", &exports]).await);
    assert_eq!(undone, std::slice::from_ref(&merge));
    assert_eq!(predicted, undone, "the plan undoes what Alembic undoes");
    let sides = reader.versions().await.unwrap();
    assert_eq!(sides, listed(&alembic(&project, &["current"]).await));
    let mut expected_sides = vec![exports.clone(), index.clone()];
    expected_sides.sort();
    assert_eq!(sides, expected_sides);
    let state = graph.state(&sides);
    assert_eq!(state.pending, [merge.clone(), status.clone()]);
    assert!(state.drift.is_empty());

    // ---- down to the base revision: past drop_table and drop_column ----
    let output = alembic(&project, &["downgrade", &base]).await;
    let undone = downgraded(&output);
    let now = reader.versions().await.unwrap();
    assert_eq!(now, listed(&alembic(&project, &["current"]).await));
    assert_eq!(now, std::slice::from_ref(&base));
    let path = graph.downgrade_path(&sides, Some(&base)).unwrap();
    let path_ids: Vec<String> = path.iter().map(|r| r.id.clone()).collect();
    // The same revisions; siblings may come in either order, children first.
    let as_set = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(as_set(&path_ids), as_set(&undone), "{}", output.stderr);
    assert_eq!(
        as_set(&undone),
        as_set(&[exports.clone(), index.clone(), score.clone()])
    );
    assert_children_first(&graph, &path_ids);
    assert_children_first(&graph, &undone);
    assert_eq!(path_ids.last(), Some(&score));
    let lost: BTreeSet<(String, String)> = data_loss(&path)
        .into_iter()
        .map(|(id, d)| (id.to_owned(), d.detail.clone()))
        .collect();
    assert_eq!(
        lost,
        BTreeSet::from([
            (exports.clone(), "drops table exports".to_owned()),
            (
                score.clone(),
                "drops column datasets.legacy_score".to_owned()
            ),
        ])
    );
    // Pending is every revision undone so far, parents first.
    let pending = graph.state(&now).pending;
    assert_eq!(
        as_set(&pending),
        as_set(&[
            score.clone(),
            exports.clone(),
            index.clone(),
            merge.clone(),
            status.clone()
        ])
    );
    assert_eq!(pending.first(), Some(&score));
    assert_eq!(
        pending[pending.len() - 2..],
        [merge.clone(), status.clone()]
    );
    assert_eq!(
        schema(&inspector).await,
        strings(&["datasets.id", "datasets.name"])
    );

    reader.close().await;
    inspector.close().await;
    scratch.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_agrees_with_real_alembic_on_postgres() {
    alembic_agrees_with_the_reader("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_agrees_with_real_alembic_on_sqlite() {
    alembic_agrees_with_the_reader("sqlite").await;
}
