//! The filter on the audit trail a lead picks (the review screen, the
//! export): every field narrows, all combine, and the store selects the
//! events that match it (see [`Store::audit_filtered`](super::Store::audit_filtered)).

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
                *value = Some(super::sync::store_time(at));
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
