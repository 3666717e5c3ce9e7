//! Alembic revision files, read without running Python: the revision's
//! identity and parents, its message and date, and what its `downgrade()`
//! would destroy. [`graph`] ties the revisions of a branch together.
//!
//! The reader never panics: input it cannot read comes back as a
//! [`ParseError`] that names the file and the line.

pub mod graph;
mod source;

use source::{Source, Value};
use std::fmt;

/// One revision file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    pub id: String,
    /// The parents: empty for a base revision, two or more for a merge.
    pub down: Vec<String>,
    pub branch_labels: Vec<String>,
    pub depends_on: Vec<String>,
    /// The first line of the module docstring.
    pub message: String,
    /// The docstring's `Create Date:` as written.
    pub create_date: Option<String>,
    /// What `downgrade()` destroys, in file order.
    pub data_loss: Vec<DataLoss>,
    /// The file it was read from, for messages.
    pub file: String,
}

impl Revision {
    pub fn is_merge(&self) -> bool {
        self.down.len() > 1
    }
}

/// Something a downgrade destroys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataLoss {
    pub line: usize,
    pub kind: DataLossKind,
    /// What, in words: "drops column datasets.legacy_score".
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataLossKind {
    DropTable,
    DropColumn,
    NarrowColumn,
    DestructiveSql,
}

/// Input that is not a revision file this reader understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Reads one revision file; `file` only names it in errors.
pub fn parse_revision(file: &str, text: &str) -> Result<Revision, ParseError> {
    let src = Source::new(text);
    let fail = |line: usize, message: String| ParseError {
        file: file.to_owned(),
        line,
        message,
    };
    let docstring = src
        .module_docstring()
        .map_err(|line| fail(line, "the module docstring is never closed".into()))?;
    let message = docstring
        .as_deref()
        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("")
        .to_owned();
    let create_date = docstring.as_deref().and_then(|d| {
        d.lines()
            .find_map(|l| l.trim().strip_prefix("Create Date:"))
            .map(|v| v.trim().to_owned())
    });

    let read = |name: &str| -> Result<Option<(usize, Value)>, ParseError> {
        match src.top_level_assignment(name) {
            None => Ok(None),
            Some((line, Ok(value))) => Ok(Some((line, value))),
            Some((line, Err(why))) => Err(fail(line, format!("cannot read `{name}`: {why}"))),
        }
    };
    let id = match read("revision")? {
        Some((_, Value::Str(id))) if !id.is_empty() => id,
        Some((line, _)) => return Err(fail(line, "`revision` must be a non-empty string".into())),
        None => return Err(fail(1, "no top-level `revision = …` assignment".into())),
    };
    let down = match read("down_revision")? {
        Some((line, value)) => value.strings().ok_or_else(|| {
            fail(
                line,
                "`down_revision` must be None, a string or a tuple of strings".into(),
            )
        })?,
        None => {
            return Err(fail(
                1,
                "no top-level `down_revision = …` assignment".into(),
            ));
        }
    };
    let optional = |name: &str| -> Result<Vec<String>, ParseError> {
        match read(name)? {
            None => Ok(Vec::new()),
            Some((line, value)) => value.strings().ok_or_else(|| {
                fail(
                    line,
                    format!("`{name}` must be None, a string or a tuple of strings"),
                )
            }),
        }
    };
    let branch_labels = optional("branch_labels")?;
    let depends_on = optional("depends_on")?;
    let data_loss = match src.function_body("downgrade") {
        Some(body) => destructive_calls(&src, body),
        None => Vec::new(),
    };
    Ok(Revision {
        id,
        down,
        branch_labels,
        depends_on,
        message,
        create_date,
        data_loss,
        file: file.to_owned(),
    })
}

/// The destructive operations among the calls in `body` (a char range).
fn destructive_calls(src: &Source, body: std::ops::Range<usize>) -> Vec<DataLoss> {
    let mut found = Vec::new();
    // The table of the innermost `batch_alter_table` seen so far.
    let mut batch_table: Option<String> = None;
    for call in src.calls(body) {
        let args = call.args.as_str();
        let strings = source::string_literals(args);
        let first = strings.first().cloned().unwrap_or_else(|| "?".to_owned());
        let mut push = |kind, detail: String| {
            found.push(DataLoss {
                line: call.line,
                kind,
                detail,
            })
        };
        match (call.receiver.as_str(), call.name.as_str()) {
            (_, "batch_alter_table") => batch_table = Some(first),
            ("op", "drop_table") => push(DataLossKind::DropTable, format!("drops table {first}")),
            ("op", "drop_column") => {
                let column = strings.get(1).cloned().unwrap_or_else(|| "?".to_owned());
                push(
                    DataLossKind::DropColumn,
                    format!("drops column {first}.{column}"),
                );
            }
            (_, "drop_column") => {
                let table = batch_table.as_deref().unwrap_or("?");
                push(
                    DataLossKind::DropColumn,
                    format!("drops column {table}.{first}"),
                );
            }
            (receiver, "alter_column") => {
                let (table, column) = if receiver == "op" {
                    (
                        first.clone(),
                        strings.get(1).cloned().unwrap_or_else(|| "?".into()),
                    )
                } else {
                    (
                        batch_table.clone().unwrap_or_else(|| "?".into()),
                        first.clone(),
                    )
                };
                if let Some(change) = narrowing(args) {
                    push(
                        DataLossKind::NarrowColumn,
                        format!(
                            "narrows column {table}.{column} ({change}); values may be cut or lost"
                        ),
                    );
                }
            }
            ("op", "execute") => {
                let sql = if strings.is_empty() {
                    args.to_owned()
                } else {
                    strings.join(" ")
                };
                if let Some(verb) = destructive_sql(&sql) {
                    let mut shown: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
                    if shown.chars().count() > 80 {
                        shown = shown.chars().take(79).collect::<String>() + "…";
                    }
                    push(
                        DataLossKind::DestructiveSql,
                        format!("runs {verb}: {shown}"),
                    );
                }
            }
            _ => {}
        }
    }
    found
}

/// `existing_type → type_` when an `alter_column` may lose data: a shorter
/// length, or a change to a type that does not hold every old value.
fn narrowing(args: &str) -> Option<String> {
    let new = keyword_arg(args, "type_")?;
    let Some(old) = keyword_arg(args, "existing_type") else {
        return Some(format!("to {new}, old type unknown"));
    };
    let (old_kind, old_len) = type_shape(&old);
    let (new_kind, new_len) = type_shape(&new);
    let widening = |from: &str, to: &str| {
        matches!(
            (from, to),
            ("smallinteger", "integer")
                | ("smallinteger", "biginteger")
                | ("integer", "biginteger")
                | ("string" | "varchar", "text")
                | ("float" | "real", "double" | "double_precision")
        )
    };
    let narrows = if old_kind == new_kind
        || (matches!(old_kind.as_str(), "string" | "varchar")
            && matches!(new_kind.as_str(), "string" | "varchar"))
    {
        matches!((old_len, new_len), (Some(o), Some(n)) if n < o)
            || (old_len.is_none() && new_len.is_some())
    } else {
        !widening(&old_kind, &new_kind)
    };
    narrows.then(|| format!("{old} → {new}"))
}

/// The text of `name=…` among call arguments, up to the next top-level comma.
fn keyword_arg(args: &str, name: &str) -> Option<String> {
    let chars: Vec<char> = args.chars().collect();
    let pattern: Vec<char> = format!("{name}=").chars().collect();
    let mut depth = 0i32;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if depth == 0 && starts_word && chars[i..].starts_with(&pattern) {
            let mut j = i + pattern.len();
            let mut d = 0i32;
            let start = j;
            while j < chars.len() {
                match chars[j] {
                    '(' | '[' | '{' => d += 1,
                    ')' | ']' | '}' => d -= 1,
                    ',' if d == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            let value: String = chars[start..j].iter().collect();
            return Some(value.trim().to_owned());
        }
        i += 1;
    }
    None
}

/// `sa.String(length=50)` → ("string", Some(50)); `postgresql.TEXT()` → ("text", None).
fn type_shape(text: &str) -> (String, Option<u64>) {
    let name = text.split('(').next().unwrap_or(text);
    let kind = name
        .rsplit('.')
        .next()
        .unwrap_or(name)
        .trim()
        .to_ascii_lowercase();
    let inside = text.split_once('(').map(|(_, rest)| rest).unwrap_or("");
    let digits: String = inside
        .trim_start_matches(|c: char| !c.is_ascii_digit() && c != ')')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (kind, digits.parse().ok())
}

/// The destructive SQL verb in `sql`, if any; words inside the SQL's own
/// quoted strings ('drop me later') do not count.
fn destructive_sql(sql: &str) -> Option<&'static str> {
    let unquoted: String = sql.split('\'').step_by(2).collect::<Vec<_>>().join(" ");
    let upper = unquoted.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .collect();
    ["DROP", "DELETE", "TRUNCATE"]
        .into_iter()
        .find(|verb| words.contains(verb))
}

#[cfg(test)]
mod real_alembic_tests;
#[cfg(test)]
mod tests;
