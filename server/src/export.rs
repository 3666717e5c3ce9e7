//! Exporting the audit trail: the filter a lead picks, and each event as a
//! CSV row or a JSON line. Pure functions; the store pages through the
//! events and the adapters stream the rows, so memory stays flat however
//! long the trail is.

use crate::audit::AuditEvent;
use domain::InvalidValue;
use serde::Deserialize;

/// Which events to export; every field narrows, all combine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    pub outcome: Option<String>,
    /// An operation id, an account name, … whatever the event acted on.
    pub target: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
}

impl From<&app::model::AuditQuery> for Filter {
    /// The review screen's filters (its page cursor is not a filter).
    fn from(query: &app::model::AuditQuery) -> Filter {
        Filter {
            actor: query.actor.clone(),
            action: query.action.clone(),
            environment: query.environment.clone(),
            outcome: query.outcome.clone(),
            target: query.target.clone(),
            since: query.since.clone(),
            until: query.until.clone(),
        }
    }
}

impl Filter {
    /// Checks the times and normalises them to the store's format, so they
    /// compare as text; Err names the bad parameter.
    pub fn normalised(mut self) -> Result<Filter, InvalidValue> {
        for (name, value) in [
            ("`since` time", &mut self.since),
            ("`until` time", &mut self.until),
        ] {
            if let Some(text) = value.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                let at = parse_time(text).ok_or_else(|| {
                    InvalidValue::new(name, text, "a UTC time such as 2026-11-24T09:30, 2026-11-24 or an RFC 3339 time such as 2026-11-24T09:30:00+01:00")
                })?;
                *value = Some(crate::store::sync::store_time(at));
            } else {
                *value = None;
            }
        }
        for value in [
            &mut self.actor,
            &mut self.action,
            &mut self.environment,
            &mut self.outcome,
            &mut self.target,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        Ok(self)
    }
}

/// An RFC 3339 time, or — what a browser's date and time fields send — a
/// minute or a day without an offset, read as UTC.
fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    use time::macros::format_description;
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Some(at);
    }
    if let Ok(at) = time::PrimitiveDateTime::parse(
        text,
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ) {
        return Some(at.assume_utc());
    }
    time::Date::parse(text, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|day| day.midnight().assume_utc())
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format, InvalidValue> {
        match text {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::JsonLines),
            other => Err(InvalidValue::new("export format", other, "csv or jsonl")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::JsonLines => "application/x-ndjson",
        }
    }

    /// What comes before the first row.
    pub fn header(self) -> String {
        match self {
            Format::Csv => format!("{}\r\n", COLUMNS.join(",")),
            Format::JsonLines => String::new(),
        }
    }

    /// One event, with its line end.
    pub fn row(self, event: &AuditEvent) -> String {
        match self {
            Format::Csv => {
                let fields = [
                    event.seq.to_string(),
                    event.id.clone(),
                    event.at.clone(),
                    event.actor_kind.clone(),
                    event.actor_id.clone(),
                    event.actor_name.clone(),
                    event.actor_role.clone().unwrap_or_default(),
                    event.action.clone(),
                    event.environment.clone().unwrap_or_default(),
                    event.target.clone().unwrap_or_default(),
                    event.params.clone(),
                    event.outcome.clone(),
                    event.error.clone().unwrap_or_default(),
                    event.request_id.clone().unwrap_or_default(),
                    event.ip.clone().unwrap_or_default(),
                    event.user_agent.clone().unwrap_or_default(),
                    event.prev_hash.clone(),
                    event.hash.clone(),
                ];
                let cells: Vec<String> = fields.iter().map(|f| csv_cell(f)).collect();
                format!("{}\r\n", cells.join(","))
            }
            Format::JsonLines => {
                let mut line = serde_json::to_string(event).expect("an event always serialises");
                line.push('\n');
                line
            }
        }
    }
}

const COLUMNS: [&str; 18] = [
    "seq",
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "environment",
    "target",
    "params",
    "outcome",
    "error",
    "request_id",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
];

/// One CSV cell (RFC 4180). A cell a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab, carriage return first) is prefixed with `'`.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AuditEvent {
        AuditEvent {
            seq: 7,
            id: "e7".into(),
            at: "2026-11-24T10:00:00.000000Z".into(),
            actor_kind: "user".into(),
            actor_id: "1".into(),
            actor_name: "lee".into(),
            actor_role: Some("lead".into()),
            action: "rollback.start".into(),
            environment: Some("production".into()),
            target: Some("op1".into()),
            params: r#"{"reason":"500s, \"bad\""}"#.into(),
            outcome: "started".into(),
            error: Some("=HYPERLINK(\"x\")".into()),
            request_id: None,
            ip: None,
            user_agent: None,
            prev_hash: "a".into(),
            hash: "b".into(),
        }
    }

    #[test]
    fn csv_quotes_commas_and_quotes_and_defuses_formulas() {
        let row = Format::Csv.row(&event());
        assert!(row.starts_with(
            "7,e7,2026-11-24T10:00:00.000000Z,user,1,lee,lead,rollback.start,production,op1,"
        ));
        assert!(
            row.contains(r#""{""reason"":""500s, \""bad\""""}""#),
            "{row}"
        );
        assert!(row.contains(r#""'=HYPERLINK(""x"")""#), "{row}");
        assert!(row.ends_with(",a,b\r\n"));
        assert_eq!(Format::Csv.header().split(',').count(), 18);
    }

    #[test]
    fn a_json_line_is_one_line_that_reads_back() {
        let line = Format::JsonLines.row(&event());
        assert_eq!(line.matches('\n').count(), 1);
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["seq"], 7);
        assert_eq!(back["action"], "rollback.start");
    }

    #[test]
    fn times_are_checked_and_normalised_and_blank_fields_dropped() {
        let filter = Filter {
            since: Some("2026-11-24T11:00:00+01:00".into()),
            actor: Some(" ".into()),
            ..Filter::default()
        }
        .normalised()
        .unwrap();
        assert_eq!(filter.since.as_deref(), Some("2026-11-24T10:00:00.000000Z"));
        assert_eq!(filter.actor, None);
        let error = Filter {
            until: Some("yesterday".into()),
            ..Filter::default()
        }
        .normalised()
        .unwrap_err();
        assert_eq!(error.what, "`until` time");
        assert_eq!(error.value, "yesterday");
        let minute = Filter {
            since: Some("2026-11-24T09:30".into()),
            until: Some("2026-11-25".into()),
            ..Filter::default()
        }
        .normalised()
        .unwrap();
        assert_eq!(minute.since.as_deref(), Some("2026-11-24T09:30:00.000000Z"));
        assert_eq!(minute.until.as_deref(), Some("2026-11-25T00:00:00.000000Z"));
        assert!(
            Format::parse("xml")
                .unwrap_err()
                .to_string()
                .contains("(csv or jsonl)")
        );
    }
}
