//! The sandbox's Alembic history: real revision files for a small
//! "data-simulator" FastAPI app, written as `alembic revision` writes them from
//! its default `script.py.mako`, and the revision-graph arithmetic the
//! sandbox needs (the heads, where a downgrade lands).
//!
//! [`sample_history`] is the seeded history: a branch closed by a merge, a
//! downgrade that drops a column (data loss), one that drops a table, and
//! reversible ones. [`write_project`] lays it out as an Alembic project that
//! the real `alembic` command runs against PostgreSQL or SQLite; the tests run
//! it (see `FLIGHTDECK_ALEMBIC`, installed by `cargo xtask tools`).

use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// One Alembic revision: its identity, its place in the graph and its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionSpec {
    /// 12 hex digits, like the ids `alembic revision` generates.
    pub id: String,
    /// The parents: none for a root, one normally, several for a merge.
    pub down: Vec<String>,
    /// The `-m` message: the docstring's first line and the file name's slug.
    pub message: String,
    /// The `Create Date:` line.
    pub created: OffsetDateTime,
    pub upgrade: Vec<Op>,
    pub downgrade: Vec<Op>,
}

impl RevisionSpec {
    /// Whether downgrading past this revision destroys data (drops a table
    /// or a column), as the rollback plan marks it.
    pub fn downgrade_loses_data(&self) -> bool {
        self.downgrade.iter().any(Op::loses_data)
    }
}

/// A SQLAlchemy column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    Integer,
    /// `VARCHAR(n)`.
    String(u32),
    Text,
    Boolean,
    Float,
    Json,
    /// A timestamp with time zone.
    DateTime,
}

impl SqlType {
    fn python(&self) -> String {
        match self {
            SqlType::Integer => "sa.Integer()".into(),
            SqlType::String(n) => format!("sa.String(length={n})"),
            SqlType::Text => "sa.Text()".into(),
            SqlType::Boolean => "sa.Boolean()".into(),
            SqlType::Float => "sa.Float()".into(),
            SqlType::Json => "sa.JSON()".into(),
            SqlType::DateTime => "sa.DateTime(timezone=True)".into(),
        }
    }
}

/// A column of `create_table` or `add_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    /// A SQL expression, rendered as `server_default=sa.text(...)`.
    pub server_default: Option<String>,
}

impl Column {
    fn python(&self) -> String {
        let default = match &self.server_default {
            Some(sql) => format!("server_default=sa.text({}), ", py_str(sql)),
            None => String::new(),
        };
        format!(
            "sa.Column({}, {}, {default}nullable={})",
            py_str(&self.name),
            self.ty.python(),
            py_bool(self.nullable)
        )
    }
}

/// A foreign key of `create_table`: `columns` reference `ref_table.ref_columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

/// One `op.*` call of an `upgrade()` or `downgrade()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateTable {
        name: String,
        columns: Vec<Column>,
        primary_key: Vec<String>,
        foreign_keys: Vec<ForeignKey>,
    },
    DropTable {
        name: String,
    },
    AddColumn {
        table: String,
        column: Column,
    },
    DropColumn {
        table: String,
        column: String,
    },
    CreateIndex {
        name: String,
        table: String,
        columns: Vec<String>,
        unique: bool,
    },
    DropIndex {
        name: String,
        table: String,
    },
    /// Changes a column's nullability and/or type.
    AlterColumn {
        table: String,
        column: String,
        existing_type: SqlType,
        existing_nullable: bool,
        nullable: Option<bool>,
        new_type: Option<SqlType>,
    },
    /// `with op.batch_alter_table(table) as batch_op:` around `ops` (column
    /// and index operations on that same table; their own `table` is not
    /// rendered). On SQLite Alembic recreates the table, which is how it
    /// alters a column there.
    Batch {
        table: String,
        ops: Vec<Op>,
    },
    /// `op.execute(sql)`: a data change such as a backfill.
    Execute(String),
}

impl Op {
    /// Whether this operation destroys stored data.
    pub fn loses_data(&self) -> bool {
        match self {
            Op::DropTable { .. } | Op::DropColumn { .. } => true,
            Op::Batch { ops, .. } => ops.iter().any(Op::loses_data),
            _ => false,
        }
    }

    /// The Python lines of this call, indented relative to the function body.
    /// Inside a batch (`batch`), calls go to `batch_op` and name no table.
    fn python(&self, batch: bool) -> Vec<String> {
        let prefix = if batch { "batch_op." } else { "op." };
        let table_arg = |t: &str| {
            if batch {
                String::new()
            } else {
                format!("{}, ", py_str(t))
            }
        };
        match self {
            Op::CreateTable {
                name,
                columns,
                primary_key,
                foreign_keys,
            } => {
                let mut lines = vec![format!("op.create_table({},", py_str(name))];
                let mut args: Vec<String> = columns.iter().map(Column::python).collect();
                for fk in foreign_keys {
                    let refs: Vec<String> = fk
                        .ref_columns
                        .iter()
                        .map(|c| format!("{}.{c}", fk.ref_table))
                        .collect();
                    args.push(format!(
                        "sa.ForeignKeyConstraint({}, {}, )",
                        py_list(&fk.columns),
                        py_list(&refs)
                    ));
                }
                if !primary_key.is_empty() {
                    let cols: Vec<String> = primary_key.iter().map(|c| py_str(c)).collect();
                    args.push(format!("sa.PrimaryKeyConstraint({})", cols.join(", ")));
                }
                let count = args.len();
                for (i, arg) in args.into_iter().enumerate() {
                    let comma = if i + 1 < count { "," } else { "" };
                    lines.push(format!("{arg}{comma}"));
                }
                lines.push(")".into());
                lines
            }
            Op::DropTable { name } => vec![format!("op.drop_table({})", py_str(name))],
            Op::AddColumn { table, column } => vec![format!(
                "{prefix}add_column({}{})",
                table_arg(table),
                column.python()
            )],
            Op::DropColumn { table, column } => vec![format!(
                "{prefix}drop_column({}{})",
                table_arg(table),
                py_str(column)
            )],
            Op::CreateIndex {
                name,
                table,
                columns,
                unique,
            } => vec![format!(
                "{prefix}create_index({prefix}f({}), {}{}, unique={})",
                py_str(name),
                table_arg(table),
                py_list(columns),
                py_bool(*unique)
            )],
            Op::DropIndex { name, table } => {
                if batch {
                    vec![format!("batch_op.drop_index(batch_op.f({}))", py_str(name))]
                } else {
                    vec![format!(
                        "op.drop_index(op.f({}), table_name={})",
                        py_str(name),
                        py_str(table)
                    )]
                }
            }
            Op::AlterColumn {
                table,
                column,
                existing_type,
                existing_nullable,
                nullable,
                new_type,
            } => {
                // Autogenerate's layout: one keyword per line, 11 spaces in.
                let indent = " ".repeat(11);
                let mut lines = vec![format!(
                    "{prefix}alter_column({}{},",
                    table_arg(table),
                    py_str(column)
                )];
                let mut kwargs = vec![format!("existing_type={}", existing_type.python())];
                if let Some(ty) = new_type {
                    kwargs.push(format!("type_={}", ty.python()));
                }
                match nullable {
                    Some(n) => kwargs.push(format!("nullable={}", py_bool(*n))),
                    None => {
                        kwargs.push(format!("existing_nullable={}", py_bool(*existing_nullable)))
                    }
                }
                let count = kwargs.len();
                for (i, kwarg) in kwargs.into_iter().enumerate() {
                    let end = if i + 1 < count { "," } else { ")" };
                    lines.push(format!("{indent}{kwarg}{end}"));
                }
                lines
            }
            Op::Batch { table, ops } => {
                let mut lines = vec![format!(
                    "with op.batch_alter_table({}, schema=None) as batch_op:",
                    py_str(table)
                )];
                // As autogenerate writes it: only each call's first line is
                // indented into the block, and a blank line closes it.
                for op in ops {
                    let mut inner = op.python(true);
                    inner[0].insert_str(0, "    ");
                    lines.extend(inner);
                }
                lines.push(String::new());
                lines
            }
            Op::Execute(sql) => vec![format!("op.execute({})", py_str(sql))],
        }
    }
}

/// The file name `alembic revision` gives a revision: `{id}_{slug}.py`.
pub fn file_name(spec: &RevisionSpec) -> String {
    format!("{}_{}.py", spec.id, slug(&spec.message))
}

/// Alembic's slug: the message's words joined by `_`, lower case, cut at a
/// word boundary past 40 characters.
fn slug(message: &str) -> String {
    let words: Vec<&str> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let slug = words.join("_").to_lowercase();
    if slug.chars().count() <= 40 {
        return slug;
    }
    let cut: String = slug.chars().take(40).collect();
    match cut.rsplit_once('_') {
        Some((head, _)) => format!("{head}_"),
        None => format!("{cut}_"),
    }
}

/// The revision file's text, as Alembic's default `script.py.mako` renders it.
pub fn render(spec: &RevisionSpec) -> String {
    let down_revision = match spec.down.as_slice() {
        [] => "None".to_owned(),
        [one] => py_str(one),
        many => format!(
            "({})",
            many.iter()
                .map(|d| py_str(d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        r#""""{message}

Revision ID: {id}
Revises: {revises}
Create Date: {created}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = {revision}
down_revision: Union[str, Sequence[str], None] = {down_revision}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    {upgrade}


def downgrade() -> None:
    """Downgrade schema."""
    {downgrade}
"#,
        message = spec.message,
        id = spec.id,
        revises = spec.down.join(", "),
        created = python_datetime(spec.created),
        revision = py_str(&spec.id),
        upgrade = body(&spec.upgrade),
        downgrade = body(&spec.downgrade),
    )
}

/// A function body after its first indent: `pass`, or the operations between
/// autogenerate's marker comments.
fn body(ops: &[Op]) -> String {
    if ops.is_empty() {
        return "pass".into();
    }
    let mut lines =
        vec!["# ### commands auto generated by Alembic - please adjust! ###".to_owned()];
    lines.extend(ops.iter().flat_map(|op| op.python(false)));
    lines.push("# ### end Alembic commands ###".into());
    let mut body = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            body.push('\n');
            if !line.is_empty() {
                body.push_str("    ");
            }
        }
        body.push_str(line);
    }
    body
}

/// `str(datetime)` in Python: microseconds only when there are some.
fn python_datetime(at: OffsetDateTime) -> String {
    let base = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match at.microsecond() {
        0 => base,
        micros => format!("{base}.{micros:06}"),
    }
}

/// Python's `repr()` of a string.
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| py_str(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The heads of a history: the revisions no other revision builds on, in
/// history order.
pub fn heads(history: &[RevisionSpec]) -> Vec<String> {
    let parents: BTreeSet<&str> = history
        .iter()
        .flat_map(|r| r.down.iter().map(String::as_str))
        .collect();
    history
        .iter()
        .filter(|r| !parents.contains(r.id.as_str()))
        .map(|r| r.id.clone())
        .collect()
}

/// What `alembic_version` holds after `alembic downgrade <target>` from the
/// revisions in `current`: Alembic undoes every applied revision that
/// descends from `target`, so the rows are the heads of what is left —
/// normally just `target`, but both parents when the target is one side of
/// an applied merge. `"base"` undoes everything. A target that is unknown or
/// not an ancestor of `current` is refused, as Alembic refuses it.
pub fn downgrade_target_rows(
    history: &[RevisionSpec],
    current: &[String],
    target: &str,
) -> Result<Vec<String>, String> {
    let by_id: HashMap<&str, &RevisionSpec> = history.iter().map(|r| (r.id.as_str(), r)).collect();
    let ancestors = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.to_owned()];
        while let Some(id) = todo.pop() {
            if let Some(rev) = by_id.get(id.as_str())
                && seen.insert(id)
            {
                todo.extend(rev.down.iter().cloned());
            }
        }
        seen
    };
    if let Some(unknown) = current.iter().find(|c| !by_id.contains_key(c.as_str())) {
        return Err(format!(
            "the database is at revision {unknown}, which is not in the migration history"
        ));
    }
    if target == "base" {
        return Ok(Vec::new());
    }
    if !by_id.contains_key(target) {
        return Err(format!("no revision {target} in the migration history"));
    }
    let applied: BTreeSet<String> = current.iter().flat_map(|c| ancestors(c)).collect();
    if !applied.contains(target) {
        return Err(format!(
            "cannot downgrade to {target}: it is not an ancestor of the current revision(s) {}",
            if current.is_empty() {
                "(none: the database is at base)".to_owned()
            } else {
                current.join(", ")
            }
        ));
    }
    let left: BTreeSet<&str> = applied
        .iter()
        .filter(|id| *id == target || !ancestors(id).contains(target))
        .map(String::as_str)
        .collect();
    let parents_left: BTreeSet<&str> = left
        .iter()
        .flat_map(|id| by_id[id].down.iter().map(String::as_str))
        .collect();
    Ok(history
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| left.contains(id) && !parents_left.contains(id))
        .map(str::to_owned)
        .collect())
}

/// The files of an Alembic project for `history`, by path relative to the
/// project's root: `alembic.ini` pointing at `sqlalchemy_url` (see
/// [`sqlalchemy_url`]), and `alembic/` with `env.py`, the default
/// `script.py.mako` and the history's files in `versions/`.
pub fn project_files(history: &[RevisionSpec], sqlalchemy_url: &str) -> Vec<(String, String)> {
    // configparser interpolates `%`, so a URL-encoded password needs `%%`.
    let ini = ALEMBIC_INI.replace("{url}", &sqlalchemy_url.replace('%', "%%"));
    let mut files = vec![
        ("alembic.ini".to_owned(), ini),
        ("alembic/env.py".to_owned(), ENV_PY.to_owned()),
        (
            "alembic/script.py.mako".to_owned(),
            SCRIPT_PY_MAKO.to_owned(),
        ),
    ];
    for spec in history {
        files.push((
            format!("alembic/versions/{}", file_name(spec)),
            render(spec),
        ));
    }
    files
}

/// Writes [`project_files`] into `dir`. Run `alembic` in `dir`; `-x url=…`
/// overrides the database URL.
pub fn write_project(
    dir: &Path,
    history: &[RevisionSpec],
    sqlalchemy_url: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("alembic/versions"))?;
    for (path, text) in project_files(history, sqlalchemy_url) {
        std::fs::write(dir.join(path), text)?;
    }
    Ok(())
}

/// The SQLAlchemy URL for a sqlx-style database URL: `sqlite://PATH` becomes
/// `sqlite:///PATH`, `postgres://…` becomes `postgresql+psycopg2://…`.
pub fn sqlalchemy_url(url: &str) -> Result<String, String> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let path = rest.split('?').next().unwrap_or_default();
        return Ok(format!("sqlite:///{path}"));
    }
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            return Ok(format!("postgresql+psycopg2://{rest}"));
        }
    }
    Err("the database URL must start with sqlite:// or postgres://".into())
}

const ALEMBIC_INI: &str = r#"# Alembic configuration of the Flightdeck sandbox's data-simulator history.

[alembic]
script_location = %(here)s/alembic
prepend_sys_path = .
path_separator = os
sqlalchemy.url = {url}

[post_write_hooks]

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"#;

const ENV_PY: &str = r#""""Alembic environment of the Flightdeck sandbox's data-simulator history.

The database URL is `-x url=...` when given, else alembic.ini's sqlalchemy.url.
"""
from logging.config import fileConfig

from sqlalchemy import engine_from_config
from sqlalchemy import pool

from alembic import context

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None

url = context.get_x_argument(as_dictionary=True).get("url")
if url:
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"#;

/// Alembic's default template (the `generic` one of Alembic 1.16+).
const SCRIPT_PY_MAKO: &str = r#""""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
"#;

fn col(name: &str, ty: SqlType, nullable: bool) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable,
        server_default: None,
    }
}

fn col_default(name: &str, ty: SqlType, default: &str) -> Column {
    Column {
        server_default: Some(default.into()),
        ..col(name, ty, false)
    }
}

fn fk(column: &str, table: &str) -> ForeignKey {
    ForeignKey {
        columns: vec![column.into()],
        ref_table: table.into(),
        ref_columns: vec!["id".into()],
    }
}

fn index(name: &str, table: &str, column: &str, unique: bool) -> (Op, Op) {
    (
        Op::CreateIndex {
            name: name.into(),
            table: table.into(),
            columns: vec![column.into()],
            unique,
        },
        Op::DropIndex {
            name: name.into(),
            table: table.into(),
        },
    )
}

fn table(name: &str, columns: Vec<Column>, foreign_keys: Vec<ForeignKey>) -> (Op, Op) {
    (
        Op::CreateTable {
            name: name.into(),
            columns,
            primary_key: vec!["id".into()],
            foreign_keys,
        },
        Op::DropTable { name: name.into() },
    )
}

/// The seeded history of the sandbox's data-simulator app, oldest first
/// (every revision after its parents). Ids and dates derive from `seed`;
/// the operations are the same for every seed:
///
/// 0. create users, 1. create datasets, 2. create signals;
/// 3. and 4. branch from 2: an index on signals, and the exports table
///    (its downgrade drops the table);
/// 5. the merge of 3 and 4 (no operations);
/// 6. add signals.unit (its downgrade drops the column: data loss);
/// 7. make datasets.description required (backfill, then alter in a batch);
/// 8. drop exports.legacy_path in a batch (the downgrade adds it back);
/// 9. an index on exports.status: the single head.
///
/// Every downgrade undoes its upgrade exactly, so `upgrade head` and
/// `downgrade base` both run on a real database.
pub fn sample_history(seed: u64) -> Vec<RevisionSpec> {
    use SqlType::*;
    let id = |i: usize| {
        let digest = Sha256::digest(format!("flightdeck-sandbox-alembic/{seed}/{i}"));
        crate::support::hex(&digest)[..12].to_owned()
    };
    // A few days apart, at a seed-dependent time of day.
    let start = time::macros::datetime!(2025-01-06 09:00:00 UTC);
    let created = |i: usize| {
        let digest = Sha256::digest(format!("flightdeck-sandbox-alembic-date/{seed}/{i}"));
        let noise = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        start
            + time::Duration::days(3 * i as i64)
            + time::Duration::seconds((noise % (8 * 3600)) as i64)
            + time::Duration::microseconds((noise >> 32) as i64 % 1_000_000)
    };
    let now = "CURRENT_TIMESTAMP";

    let (users, drop_users) = table(
        "users",
        vec![
            col("id", Integer, false),
            col("email", String(255), false),
            col("display_name", String(120), true),
            col_default("is_admin", Boolean, "false"),
            col_default("created_at", DateTime, now),
        ],
        vec![],
    );
    let (users_email, drop_users_email) = index("ix_users_email", "users", "email", true);
    let (datasets, drop_datasets) = table(
        "datasets",
        vec![
            col("id", Integer, false),
            col("name", String(200), false),
            col("description", Text, true),
            col("owner_id", Integer, false),
            col_default("created_at", DateTime, now),
        ],
        vec![fk("owner_id", "users")],
    );
    let (datasets_owner, drop_datasets_owner) =
        index("ix_datasets_owner_id", "datasets", "owner_id", false);
    let (signals, drop_signals) = table(
        "signals",
        vec![
            col("id", Integer, false),
            col("dataset_id", Integer, false),
            col("name", String(120), false),
            col("kind", String(32), false),
            col("frequency_hz", Float, true),
            col("params", Json, true),
        ],
        vec![fk("dataset_id", "datasets")],
    );
    let (signals_dataset, drop_signals_dataset) =
        index("ix_signals_dataset_id", "signals", "dataset_id", false);
    let (signals_name, drop_signals_name) = index("ix_signals_name", "signals", "name", false);
    let legacy_path = col("legacy_path", String(255), true);
    let (exports, drop_exports) = table(
        "exports",
        vec![
            col("id", Integer, false),
            col("dataset_id", Integer, false),
            col_default("format", String(16), "'csv'"),
            col("status", String(16), false),
            col("requested_by", Integer, true),
            legacy_path.clone(),
            col_default("created_at", DateTime, now),
        ],
        vec![fk("dataset_id", "datasets"), fk("requested_by", "users")],
    );
    let (exports_status, drop_exports_status) =
        index("ix_exports_status", "exports", "status", false);
    let unit = col("unit", String(32), true);
    let description_nullable = |nullable: bool| Op::Batch {
        table: "datasets".into(),
        ops: vec![Op::AlterColumn {
            table: "datasets".into(),
            column: "description".into(),
            existing_type: Text,
            existing_nullable: !nullable,
            nullable: Some(nullable),
            new_type: None,
        }],
    };

    // message, parents (by position), upgrade, downgrade
    type Step<'a> = (&'a str, Vec<usize>, Vec<Op>, Vec<Op>);
    let steps: Vec<Step> = vec![
        (
            "create users table",
            vec![],
            vec![users, users_email],
            vec![drop_users_email, drop_users],
        ),
        (
            "create datasets table",
            vec![0],
            vec![datasets, datasets_owner],
            vec![drop_datasets_owner, drop_datasets],
        ),
        (
            "create signals table",
            vec![1],
            vec![signals, signals_dataset],
            vec![drop_signals_dataset, drop_signals],
        ),
        (
            "index signals by name",
            vec![2],
            vec![signals_name],
            vec![drop_signals_name],
        ),
        (
            "create exports table",
            vec![2],
            vec![exports],
            vec![drop_exports],
        ),
        (
            "merge signals index and exports",
            vec![3, 4],
            vec![],
            vec![],
        ),
        (
            "add unit to signals",
            vec![5],
            vec![
                Op::AddColumn {
                    table: "signals".into(),
                    column: unit,
                },
                Op::Execute("UPDATE signals SET unit = 'V' WHERE kind = 'voltage'".into()),
            ],
            vec![Op::DropColumn {
                table: "signals".into(),
                column: "unit".into(),
            }],
        ),
        (
            "require a dataset description",
            vec![6],
            vec![
                Op::Execute(
                    "UPDATE datasets SET description = '' WHERE description IS NULL".into(),
                ),
                description_nullable(false),
            ],
            vec![description_nullable(true)],
        ),
        (
            "drop legacy export path",
            vec![7],
            vec![Op::Batch {
                table: "exports".into(),
                ops: vec![Op::DropColumn {
                    table: "exports".into(),
                    column: "legacy_path".into(),
                }],
            }],
            vec![Op::AddColumn {
                table: "exports".into(),
                column: legacy_path,
            }],
        ),
        (
            "index exports by status",
            vec![8],
            vec![exports_status],
            vec![drop_exports_status],
        ),
    ];
    steps
        .into_iter()
        .enumerate()
        .map(|(i, (message, down, upgrade, downgrade))| RevisionSpec {
            id: id(i),
            down: down.into_iter().map(id).collect(),
            message: message.into(),
            created: created(i),
            upgrade,
            downgrade,
        })
        .collect()
}

/// The real `alembic`: FLIGHTDECK_ALEMBIC (set by `cargo xtask test`),
/// else the venv `cargo xtask tools` installs; for tests, which fail
/// (panic) when it is missing.
pub fn alembic_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FLIGHTDECK_ALEMBIC") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FLIGHTDECK_ALEMBIC={} does not exist: run `cargo xtask tools`",
            path.display()
        );
        return path;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = home.join(".local/share/flightdeck-tools/alembic-venv/bin/alembic");
    assert!(
        path.is_file(),
        "these tests run the real Alembic: set FLIGHTDECK_ALEMBIC or run `cargo xtask tools` \
         (it installs {})",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDb;
    use crate::target_db::TargetDb;
    use std::collections::BTreeMap;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// The revision whose downgrade drops a column.
    fn lossy_column(history: &[RevisionSpec]) -> &RevisionSpec {
        history
            .iter()
            .find(|r| {
                r.downgrade
                    .iter()
                    .any(|op| matches!(op, Op::DropColumn { .. }))
            })
            .expect("the sample history has a downgrade that drops a column")
    }

    fn merge(history: &[RevisionSpec]) -> &RevisionSpec {
        history
            .iter()
            .find(|r| r.down.len() == 2)
            .expect("the sample history has a merge")
    }

    // ---- rendering -------------------------------------------------------

    #[test]
    fn a_merge_revision_renders_its_parents_as_a_tuple_and_does_nothing() {
        let history = sample_history(7);
        let merge = merge(&history);
        let (a, b) = (&merge.down[0], &merge.down[1]);
        let text = render(merge);
        assert!(text.starts_with("\"\"\"merge signals index and exports\n\nRevision ID: "));
        assert!(text.contains(&format!("\nRevises: {a}, {b}\n")), "{text}");
        assert!(text.contains(&format!(
            "\ndown_revision: Union[str, Sequence[str], None] = ('{a}', '{b}')\n"
        )));
        assert!(text.contains(
            "def upgrade() -> None:\n    \"\"\"Upgrade schema.\"\"\"\n    pass\n\n\n\
             def downgrade() -> None:\n    \"\"\"Downgrade schema.\"\"\"\n    pass\n"
        ));
        assert!(!merge.downgrade_loses_data());
    }

    #[test]
    fn a_revision_renders_as_the_default_template_with_autogenerate_style_ops() {
        let spec = RevisionSpec {
            id: "1975ea83b712".into(),
            down: ids(&["ae1027a6acf0"]),
            message: "add unit to signals".into(),
            created: time::macros::datetime!(2025-02-03 10:04:05.000123 UTC),
            upgrade: vec![
                Op::AddColumn {
                    table: "signals".into(),
                    column: col("unit", SqlType::String(32), true),
                },
                Op::Batch {
                    table: "datasets".into(),
                    ops: vec![Op::AlterColumn {
                        table: "datasets".into(),
                        column: "description".into(),
                        existing_type: SqlType::Text,
                        existing_nullable: true,
                        nullable: Some(false),
                        new_type: None,
                    }],
                },
            ],
            downgrade: vec![Op::DropColumn {
                table: "signals".into(),
                column: "unit".into(),
            }],
        };
        let expected = r#""""add unit to signals

Revision ID: 1975ea83b712
Revises: ae1027a6acf0
Create Date: 2025-02-03 10:04:05.000123

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '1975ea83b712'
down_revision: Union[str, Sequence[str], None] = 'ae1027a6acf0'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    op.add_column('signals', sa.Column('unit', sa.String(length=32), nullable=True))
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.alter_column('description',
               existing_type=sa.Text(),
               nullable=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    """Downgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_column('signals', 'unit')
    # ### end Alembic commands ###
"#;
        assert_eq!(render(&spec), expected);
        assert_eq!(file_name(&spec), "1975ea83b712_add_unit_to_signals.py");
        assert!(spec.downgrade_loses_data());
    }

    #[test]
    fn a_root_revision_has_no_parent_and_create_table_renders_its_constraints() {
        let history = sample_history(7);
        let text = render(&history[1]);
        assert!(render(&history[0]).contains("\nRevises: \n"));
        assert!(
            render(&history[0]).contains("down_revision: Union[str, Sequence[str], None] = None\n")
        );
        assert!(text.contains(
            "    op.create_table('datasets',\n    sa.Column('id', sa.Integer(), nullable=False),\n"
        ), "{text}");
        assert!(text.contains(
            "    sa.Column('created_at', sa.DateTime(timezone=True), \
             server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),\n"
        ));
        assert!(text.contains(
            "    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),\n    \
             sa.PrimaryKeyConstraint('id')\n    )\n"
        ));
        assert!(text.contains(
            "    op.create_index(op.f('ix_datasets_owner_id'), 'datasets', ['owner_id'], unique=False)\n"
        ));
        assert!(
            text.contains(
                "    op.drop_index(op.f('ix_datasets_owner_id'), table_name='datasets')\n"
            )
        );
        assert!(text.contains("    op.drop_table('datasets')\n"));
    }

    #[test]
    fn strings_render_as_python_reprs() {
        assert_eq!(py_str("plain"), "'plain'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("'a' \"b\""), "'\\'a\\' \"b\"'");
        assert_eq!(py_str("a\\b\nc\td\u{1}"), "'a\\\\b\\nc\\td\\x01'");
        assert_eq!(py_str("señal"), "'señal'");
    }

    #[test]
    fn file_names_use_alembics_slug() {
        assert_eq!(slug("Create users table"), "create_users_table");
        assert_eq!(
            slug("  Añade exportación: CSV -- señales!  "),
            "añade_exportación_csv_señales"
        );
        // Past 40 characters: cut at the last word boundary, with a trailing `_`.
        assert_eq!(
            slug("Add a note to exports, and keep the old path for now"),
            "add_a_note_to_exports_and_keep_the_old_"
        );
        assert_eq!(slug(&"x".repeat(45)), format!("{}_", "x".repeat(40)));
        assert_eq!(slug("..."), "");
    }

    // ---- the sample history ------------------------------------------------

    #[test]
    fn sample_history_is_deterministic_per_seed_and_ids_differ_between_seeds() {
        let one = sample_history(1);
        assert_eq!(one, sample_history(1));
        let other = sample_history(2);
        let one_ids: BTreeSet<&str> = one.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(one_ids.len(), one.len(), "ids are unique");
        assert!(other.iter().all(|r| !one_ids.contains(r.id.as_str())));
        for r in &one {
            assert_eq!(r.id.len(), 12);
            assert!(
                r.id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert!(one.iter().zip(&other).any(|(a, b)| a.created != b.created));
    }

    #[test]
    fn sample_history_has_a_branch_a_merge_and_data_losing_downgrades() {
        let history = sample_history(11);
        assert!(history.len() >= 8);
        // Every parent comes before its child, and is in the history.
        for (i, r) in history.iter().enumerate() {
            for d in &r.down {
                let parent = history.iter().position(|p| &p.id == d);
                assert!(matches!(parent, Some(p) if p < i), "{} before {}", d, r.id);
            }
        }
        assert_eq!(history.iter().filter(|r| r.down.is_empty()).count(), 1);
        let merge = merge(&history);
        assert!(merge.upgrade.is_empty() && merge.downgrade.is_empty());
        let sides: Vec<&RevisionSpec> = merge
            .down
            .iter()
            .map(|d| history.iter().find(|r| &r.id == d).unwrap())
            .collect();
        assert_eq!(
            sides[0].down, sides[1].down,
            "the merged revisions share a parent"
        );
        assert_eq!(heads(&history).len(), 1);
        assert!(lossy_column(&history).downgrade_loses_data());
        let drops_table = history.iter().filter(|r| {
            r.down.len() == 1
                && r.downgrade
                    .iter()
                    .any(|op| matches!(op, Op::DropTable { .. }))
        });
        assert!(drops_table.count() >= 1);
        let reversible = history.iter().filter(|r| !r.downgrade_loses_data()).count();
        assert!(reversible >= 4, "{reversible} reversible revisions");
    }

    /// A small model of a schema: enough to check that the operations are
    /// valid in order and that each downgrade undoes its upgrade.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Schema {
        /// table → column → (type, nullable)
        tables: BTreeMap<String, BTreeMap<String, (SqlType, bool)>>,
        /// table → tables its foreign keys reference
        references: BTreeMap<String, Vec<String>>,
        /// index → (table, columns)
        indexes: BTreeMap<String, (String, Vec<String>)>,
    }

    impl Schema {
        fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
            ops.iter().try_for_each(|op| self.apply_one(op, None))
        }

        fn columns(
            &mut self,
            table: &str,
        ) -> Result<&mut BTreeMap<String, (SqlType, bool)>, String> {
            self.tables
                .get_mut(table)
                .ok_or(format!("no table {table}"))
        }

        fn apply_one(&mut self, op: &Op, batch: Option<&str>) -> Result<(), String> {
            let in_batch = |table: &str| match batch {
                Some(b) if b != table => Err(format!("{op:?} inside a batch on {b}")),
                _ => Ok(()),
            };
            match op {
                Op::CreateTable {
                    name,
                    columns,
                    primary_key,
                    foreign_keys,
                } => {
                    if self.tables.contains_key(name) {
                        return Err(format!("table {name} exists"));
                    }
                    let cols: BTreeMap<_, _> = columns
                        .iter()
                        .map(|c| (c.name.clone(), (c.ty.clone(), c.nullable)))
                        .collect();
                    for key in primary_key
                        .iter()
                        .chain(foreign_keys.iter().flat_map(|f| &f.columns))
                    {
                        if !cols.contains_key(key) {
                            return Err(format!("{name} has no column {key}"));
                        }
                    }
                    for f in foreign_keys {
                        if !self.tables.contains_key(&f.ref_table) {
                            return Err(format!("{name} references missing {}", f.ref_table));
                        }
                    }
                    self.tables.insert(name.clone(), cols);
                    self.references.insert(
                        name.clone(),
                        foreign_keys.iter().map(|f| f.ref_table.clone()).collect(),
                    );
                }
                Op::DropTable { name } => {
                    self.tables.remove(name).ok_or(format!("no table {name}"))?;
                    self.references.remove(name);
                    if let Some((other, _)) = self.references.iter().find(|(_, r)| r.contains(name))
                    {
                        return Err(format!("{other} still references {name}"));
                    }
                    self.indexes.retain(|_, (t, _)| t != name);
                }
                Op::AddColumn { table, column } => {
                    in_batch(table)?;
                    if !column.nullable && column.server_default.is_none() {
                        return Err(format!(
                            "NOT NULL {}.{} needs a default",
                            table, column.name
                        ));
                    }
                    let cols = self.columns(table)?;
                    if cols
                        .insert(column.name.clone(), (column.ty.clone(), column.nullable))
                        .is_some()
                    {
                        return Err(format!("{table}.{} exists", column.name));
                    }
                }
                Op::DropColumn { table, column } => {
                    in_batch(table)?;
                    self.columns(table)?
                        .remove(column)
                        .ok_or(format!("no {table}.{column}"))?;
                    if self
                        .indexes
                        .values()
                        .any(|(t, c)| t == table && c.contains(column))
                    {
                        return Err(format!("{table}.{column} is indexed"));
                    }
                }
                Op::CreateIndex {
                    name,
                    table,
                    columns,
                    ..
                } => {
                    in_batch(table)?;
                    let cols = self.columns(table)?;
                    if let Some(missing) = columns.iter().find(|c| !cols.contains_key(*c)) {
                        return Err(format!("no {table}.{missing} to index"));
                    }
                    if self
                        .indexes
                        .insert(name.clone(), (table.clone(), columns.clone()))
                        .is_some()
                    {
                        return Err(format!("index {name} exists"));
                    }
                }
                Op::DropIndex { name, table } => {
                    in_batch(table)?;
                    match self.indexes.remove(name) {
                        Some((t, _)) if &t == table => {}
                        _ => return Err(format!("no index {name} on {table}")),
                    }
                }
                Op::AlterColumn {
                    table,
                    column,
                    existing_type,
                    existing_nullable,
                    nullable,
                    new_type,
                } => {
                    in_batch(table)?;
                    let current = self
                        .columns(table)?
                        .get_mut(column)
                        .ok_or(format!("no {table}.{column}"))?;
                    if *current != (existing_type.clone(), *existing_nullable) {
                        return Err(format!(
                            "{table}.{column} is {current:?}, not as the op says"
                        ));
                    }
                    *current = (
                        new_type.clone().unwrap_or(existing_type.clone()),
                        nullable.unwrap_or(*existing_nullable),
                    );
                }
                Op::Batch { table, ops } => {
                    for inner in ops {
                        self.apply_one(inner, Some(table))?;
                    }
                }
                Op::Execute(_) => {}
            }
            Ok(())
        }

        /// `table.column` of every column and the names of the indexes.
        fn shape(&self) -> (Vec<String>, Vec<String>) {
            let columns = self
                .tables
                .iter()
                .flat_map(|(t, cols)| cols.keys().map(move |c| format!("{t}.{c}")))
                .collect();
            (sorted(columns), self.indexes.keys().cloned().collect())
        }
    }

    #[test]
    fn every_downgrade_undoes_its_upgrade_exactly() {
        let history = sample_history(5);
        let mut schema = Schema::default();
        for r in &history {
            let before = schema.clone();
            schema
                .apply(&r.upgrade)
                .unwrap_or_else(|e| panic!("upgrade {}: {e}", r.message));
            let mut undone = schema.clone();
            undone
                .apply(&r.downgrade)
                .unwrap_or_else(|e| panic!("downgrade {}: {e}", r.message));
            assert_eq!(
                undone, before,
                "the downgrade of {:?} does not undo its upgrade",
                r.message
            );
        }
        // And all the way back down, newest first.
        for r in history.iter().rev() {
            schema.apply(&r.downgrade).unwrap();
        }
        assert_eq!(schema, Schema::default());
    }

    // ---- the revision graph ---------------------------------------------

    #[test]
    fn downgrade_target_rows_follow_alembic() {
        let h = sample_history(9);
        let id = |i: usize| h[i].id.clone();
        let head = heads(&h);
        assert_eq!(head, [id(9)]);
        let rows = |current: &[String], target: &str| downgrade_target_rows(&h, current, target);
        // Normally the target itself.
        assert_eq!(rows(&head, &id(5)), Ok(vec![id(5)]));
        assert_eq!(rows(&head, &id(2)), Ok(vec![id(2)]));
        assert_eq!(rows(&head, &id(0)), Ok(vec![id(0)]));
        assert_eq!(
            rows(&head, &id(9)),
            Ok(vec![id(9)]),
            "the current revision is a no-op"
        );
        // One side of an applied merge: the other side stays applied.
        assert_eq!(rows(&head, &id(3)), Ok(vec![id(3), id(4)]));
        assert_eq!(rows(&[id(3), id(4)], &id(4)), Ok(vec![id(3), id(4)]));
        assert_eq!(rows(&[id(3), id(4)], &id(2)), Ok(vec![id(2)]));
        // Base empties the table, from anywhere.
        assert_eq!(rows(&head, "base"), Ok(vec![]));
        assert_eq!(rows(&[], "base"), Ok(vec![]));
    }

    #[test]
    fn downgrade_target_rows_refuse_what_alembic_refuses() {
        let h = sample_history(9);
        let id = |i: usize| h[i].id.clone();
        let not_ancestor = downgrade_target_rows(&h, &[id(3)], &id(4)).unwrap_err();
        assert!(not_ancestor.contains("not an ancestor"), "{not_ancestor}");
        assert!(not_ancestor.contains(&id(4)) && not_ancestor.contains(&id(3)));
        let newer = downgrade_target_rows(&h, &[id(5)], &id(9)).unwrap_err();
        assert!(newer.contains("not an ancestor"), "{newer}");
        let at_base = downgrade_target_rows(&h, &[], &id(0)).unwrap_err();
        assert!(at_base.contains("at base"), "{at_base}");
        let unknown = downgrade_target_rows(&h, &[id(9)], "deadbeef0000").unwrap_err();
        assert!(unknown.contains("no revision deadbeef0000"), "{unknown}");
        let stray = downgrade_target_rows(&h, &ids(&["0badc0ffee00"]), &id(0)).unwrap_err();
        assert!(stray.contains("0badc0ffee00") && stray.contains("not in the migration history"));
    }

    #[test]
    fn heads_are_the_revisions_nothing_builds_on() {
        let h = sample_history(3);
        assert_eq!(heads(&h[..5]), [h[3].id.clone(), h[4].id.clone()]);
        assert_eq!(heads(&h[..1]), [h[0].id.clone()]);
        assert_eq!(heads(&[]), Vec::<String>::new());
    }

    #[test]
    fn sqlalchemy_urls_come_from_sqlx_urls() {
        assert_eq!(
            sqlalchemy_url("sqlite:///tmp/x/target.db"),
            Ok("sqlite:////tmp/x/target.db".into())
        );
        assert_eq!(
            sqlalchemy_url("sqlite://target.db?mode=rwc"),
            Ok("sqlite:///target.db".into())
        );
        assert_eq!(
            sqlalchemy_url("postgres://postgres@127.0.0.1:5432/fd"),
            Ok("postgresql+psycopg2://postgres@127.0.0.1:5432/fd".into())
        );
        assert!(sqlalchemy_url("mysql://x").is_err());
    }

    // ---- the real Alembic -------------------------------------------------

    /// Runs `alembic ARGS` in `project` and returns its standard output;
    /// a failure fails the test with Alembic's own message.
    async fn alembic(project: &Path, args: &[&str]) -> String {
        let mut cmd = std::process::Command::new(alembic_bin());
        cmd.args(args).current_dir(project);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("alembic starts");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "alembic {args:?} failed:\n{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The revision ids at the start of `alembic heads` / `alembic current` lines.
    fn listed_ids(output: &str) -> Vec<String> {
        sorted(
            output
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// `table.column` of every column and the index names, as the model's `shape`.
    async fn shape(db: &TargetDb) -> (Vec<String>, Vec<String>) {
        let (columns, indexes) = match db.backend() {
            "sqlite" => (
                "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name <> 'alembic_version' ORDER BY 1",
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1",
            ),
            _ => (
                "SELECT table_name || '.' || column_name FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name <> 'alembic_version' ORDER BY 1",
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
                 AND indexname NOT LIKE '%_pkey' AND indexname <> 'alembic_version_pkc' ORDER BY 1",
            ),
        };
        (db.strings(columns).await, db.strings(indexes).await)
    }

    /// Everything about the schema a migration could change: column types,
    /// nullability and defaults, index definitions.
    async fn snapshot(db: &TargetDb) -> Vec<String> {
        let sql = match db.backend() {
            "sqlite" => {
                "SELECT m.name || '.' || p.name || ' ' || p.type || ' notnull=' || p.\"notnull\" \
                 || ' default=' || coalesce(p.dflt_value, '') || ' pk=' || p.pk \
                 FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' \
                 UNION ALL SELECT 'index ' || name || ' on ' || tbl_name FROM sqlite_master \
                 WHERE type = 'index' ORDER BY 1"
            }
            _ => {
                "SELECT table_name || '.' || column_name || ' ' || data_type || \
                 coalesce('(' || character_maximum_length || ')', '') || ' ' || is_nullable || \
                 ' default=' || coalesce(column_default, '') FROM information_schema.columns \
                 WHERE table_schema = 'public' \
                 UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' \
                 UNION ALL SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) \
                 FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1"
            }
        };
        db.strings(sql).await
    }

    /// Upgrades and downgrades the sample history with the real Alembic and
    /// checks the database after each step against the history's own account.
    async fn real_alembic_round_trip(backend: &str) {
        let history = sample_history(42);
        let scratch = ScratchDb::new(backend).await;
        let project = scratch.dir.join("backend");
        write_project(&project, &history, &sqlalchemy_url(&scratch.url).unwrap()).unwrap();
        let db = TargetDb::open(&scratch.url).await.unwrap();
        // Alembic takes the table `ensure` made as its own.
        db.ensure().await.unwrap();
        let head = heads(&history);

        // What Alembic reads from the files.
        assert_eq!(listed_ids(&alembic(&project, &["heads"]).await), head);
        let listing = alembic(&project, &["history"]).await;
        for r in &history {
            assert!(listing.contains(&r.id), "{} missing from:\n{listing}", r.id);
        }

        // Up to just before the column that a downgrade drops, then to head.
        let lossy = lossy_column(&history);
        let before_lossy = lossy.down[0].clone();
        alembic(&project, &["upgrade", &before_lossy]).await;
        assert_eq!(
            db.revisions().await.unwrap(),
            std::slice::from_ref(&before_lossy)
        );
        let at_before_lossy = snapshot(&db).await;
        alembic(&project, &["upgrade", "head"]).await;
        assert_eq!(db.revisions().await.unwrap(), head);
        assert_eq!(listed_ids(&alembic(&project, &["current"]).await), head);
        let at_head = snapshot(&db).await;
        let mut model = Schema::default();
        for r in &history {
            model.apply(&r.upgrade).unwrap();
        }
        let (columns, _) = shape(&db).await;
        assert_eq!(shape(&db).await, model.shape());
        assert!(columns.contains(&"signals.unit".to_owned()));
        assert!(columns.contains(&"exports.status".to_owned()));
        assert!(!columns.contains(&"exports.legacy_path".to_owned()));

        // Down past the data-losing revision: the column is gone, the rest as it was.
        alembic(&project, &["downgrade", &before_lossy]).await;
        let expected = downgrade_target_rows(&history, &head, &before_lossy).unwrap();
        assert_eq!(db.revisions().await.unwrap(), sorted(expected));
        let (columns, _) = shape(&db).await;
        assert!(!columns.contains(&"signals.unit".to_owned()), "{columns:?}");
        assert_eq!(snapshot(&db).await, at_before_lossy);

        // To one side of the merge: both sides stay, as downgrade_target_rows says.
        let side = merge(&history).down[0].clone();
        alembic(&project, &["downgrade", &side]).await;
        let expected = downgrade_target_rows(&history, &[before_lossy], &side).unwrap();
        assert_eq!(db.revisions().await.unwrap(), sorted(expected.clone()));
        assert_eq!(expected.len(), 2);
        assert_eq!(
            listed_ids(&alembic(&project, &["current"]).await),
            db.revisions().await.unwrap()
        );

        // All the way down, and back up to the same schema.
        alembic(&project, &["downgrade", "base"]).await;
        assert_eq!(db.revisions().await.unwrap(), Vec::<String>::new());
        assert_eq!(shape(&db).await, (vec![], vec![]));
        alembic(&project, &["upgrade", "head"]).await;
        assert_eq!(snapshot(&db).await, at_head);
        assert_eq!(db.revisions().await.unwrap(), head);

        db.close().await;
        scratch.drop_all().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_alembic_runs_the_sample_history_on_postgres() {
        real_alembic_round_trip("postgres").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_alembic_runs_the_sample_history_on_sqlite() {
        real_alembic_round_trip("sqlite").await;
    }

    #[tokio::test]
    async fn render_matches_what_alembic_revision_writes() {
        let history = sample_history(3);
        let scratch = ScratchDb::new("sqlite").await;
        let project = scratch.dir.join("backend");
        write_project(&project, &history, &sqlalchemy_url(&scratch.url).unwrap()).unwrap();
        let spec = RevisionSpec {
            id: "0123456789ab".into(),
            down: heads(&history),
            message: "Añade exportación: keep it's señales (for the CSV-export team)".into(),
            created: OffsetDateTime::now_utc(),
            upgrade: vec![],
            downgrade: vec![],
        };
        alembic(
            &project,
            &["revision", "-m", &spec.message, "--rev-id", &spec.id],
        )
        .await;
        let path = project.join("alembic/versions").join(file_name(&spec));
        let written = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            let names: Vec<_> = std::fs::read_dir(project.join("alembic/versions"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            panic!("{}: {e}; Alembic wrote {names:?}", path.display())
        });
        let without_date = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with("Create Date: "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(without_date(&render(&spec)), without_date(&written));
        assert_eq!(render(&spec).ends_with('\n'), written.ends_with('\n'));
        scratch.drop_all().await;
    }
}
