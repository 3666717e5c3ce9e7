//! Names and ids: text with a rule, or a number.

use crate::InvalidValue;
use std::fmt;
use std::str::FromStr;

/// A text newtype: the rule is a predicate on the (already trimmed where
/// the type says so) input; `parse`, `FromStr`, `TryFrom<String>`, serde
/// and sqlx all go through it.
macro_rules! text_type {
    (
        $(#[$doc:meta])*
        $name:ident, what = $what:literal, rule = $rule:literal, check = $check:expr
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What the rule allows, as a sentence fragment.
            pub const RULE: &'static str = $rule;

            /// Checks `text` against the rule.
            pub fn parse(text: &str) -> Result<Self, InvalidValue> {
                let check: fn(&str) -> bool = $check;
                if check(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(InvalidValue::new($what, text, $rule))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(text: &str) -> Result<Self, InvalidValue> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(text: String) -> Result<Self, InvalidValue> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        #[cfg(feature = "sqlx")]
        crate::sqlx_as_text!($name);
    };
}

fn id_chars(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

text_type! {
    /// An environment's name, as configured and as it appears in URLs
    /// (`production`, `staging-eu`).
    EnvironmentName,
    what = "environment name",
    rule = "1-40 of a-z, 0-9, - and _, starting with a letter",
    check = |name| {
        (1..=40).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    }
}

text_type! {
    /// A Render deploy's id (`dep-d0ab12…`).
    DeployId,
    what = "deploy id",
    rule = "1-64 of letters, digits, - and _",
    check = |text| id_chars(text, 64)
}

text_type! {
    /// An operation's id: 32 hex digits when the panel makes one.
    OperationId,
    what = "operation id",
    rule = "1-64 of letters, digits, - and _",
    check = |text| id_chars(text, 64)
}

text_type! {
    /// An Alembic revision id as it stands in `alembic_version` (a
    /// `VARCHAR(32)` there). Alembic's symbolic names (`base`, `heads`,
    /// relative steps) are not revisions and do not parse.
    RevisionId,
    what = "Alembic revision",
    rule = "1-32 of letters, digits and _, not base or head(s)",
    check = |text| {
        (1..=32).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !matches!(text, "base" | "head" | "heads")
    }
}

text_type! {
    /// A Git commit's SHA in lower-case hex: 40 digits (SHA-1) or 64
    /// (SHA-256), or an abbreviation of at least 7 as people type them.
    CommitSha,
    what = "commit SHA",
    rule = "7 to 64 lower-case hex digits",
    check = |text| {
        (7..=64).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    }
}

impl CommitSha {
    /// The seven-digit form people read.
    pub fn short(&self) -> &str {
        short_sha(&self.0)
    }
}

/// The seven-digit form of a SHA held as text (any text: shorter text is
/// returned whole).
pub fn short_sha(sha: &str) -> &str {
    match sha.char_indices().nth(7) {
        Some((cut, _)) => &sha[..cut],
        None => sha,
    }
}

text_type! {
    /// What a client sends as `Idempotency-Key` (or a form carries): the
    /// same key twice starts one operation. Surrounding blanks are not part
    /// of it: parse the trimmed text.
    IdempotencyKey,
    what = "Idempotency-Key",
    rule = "1 to 200 visible characters",
    check = |key| {
        (1..=200).contains(&key.len())
            && key == key.trim()
            && key.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    }
}

impl IdempotencyKey {
    /// Parses a header's or a field's value: blanks around it are dropped.
    pub fn parse_trimmed(text: &str) -> Result<Self, InvalidValue> {
        Self::parse(text.trim())
    }
}

/// A GitHub Actions workflow run's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl RunId {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RunId {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        match text.parse::<u64>() {
            Ok(id) if id > 0 && id <= i64::MAX as u64 => Ok(RunId(id)),
            _ => Err(InvalidValue::new("run id", text, "a positive whole number")),
        }
    }
}

#[cfg(feature = "sqlx")]
mod run_id_sqlx {
    use super::RunId;

    impl<DB: sqlx::Database> sqlx::Type<DB> for RunId
    where
        i64: sqlx::Type<DB>,
    {
        fn type_info() -> DB::TypeInfo {
            <i64 as sqlx::Type<DB>>::type_info()
        }
        fn compatible(ty: &DB::TypeInfo) -> bool {
            <i64 as sqlx::Type<DB>>::compatible(ty)
        }
    }

    impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for RunId
    where
        i64: sqlx::Encode<'q, DB>,
    {
        fn encode_by_ref(
            &self,
            buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
        ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
            // GitHub's ids are int64; FromStr keeps them in range.
            (self.0 as i64).encode_by_ref(buf)
        }
    }

    impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for RunId
    where
        i64: sqlx::Decode<'r, DB>,
    {
        fn decode(
            value: <DB as sqlx::Database>::ValueRef<'r>,
        ) -> Result<Self, sqlx::error::BoxDynError> {
            let id = <i64 as sqlx::Decode<'r, DB>>::decode(value)?;
            Ok(RunId(u64::try_from(id)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_follow_the_rule() {
        for good in ["production", "staging-eu", "a", "qa_2"] {
            assert_eq!(EnvironmentName::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "Production", "2nd", "-x", "prod env", &"x".repeat(41)] {
            let error = EnvironmentName::parse(bad).unwrap_err();
            assert_eq!(error.what, "environment name");
        }
        let error = EnvironmentName::parse("Prod").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`Prod` is not a valid environment name (1-40 of a-z, 0-9, - and _, starting with a letter)"
        );
    }

    #[test]
    fn serde_reads_through_the_rule() {
        let name: EnvironmentName = serde_json::from_str("\"staging\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"staging\"");
        let error = serde_json::from_str::<EnvironmentName>("\"../etc\"").unwrap_err();
        assert!(
            error.to_string().contains("not a valid environment name"),
            "{error}"
        );
        let run: RunId = serde_json::from_str("42").unwrap();
        assert_eq!(run, RunId(42));
        assert_eq!(serde_json::to_string(&run).unwrap(), "42");
    }

    #[test]
    fn shas_are_hex_and_have_a_short_form() {
        let sha = CommitSha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(sha.short(), "0123456");
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(short_sha("ñandú-12345"), "ñandú-1");
        for bad in ["ABCDEF0", "abc12", "g123456", ""] {
            assert!(CommitSha::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn revisions_are_not_symbolic_names() {
        assert!(RevisionId::parse("ae1027a6acf").is_ok());
        assert!(RevisionId::parse("0001_initial").is_ok());
        for bad in ["base", "heads", "head", "-1", "ae10+2", "", &"a".repeat(33)] {
            assert!(RevisionId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_visible_text() {
        assert_eq!(
            IdempotencyKey::parse_trimmed("  key 1 ").unwrap().as_str(),
            "key 1"
        );
        assert!(IdempotencyKey::parse(" key").is_err());
        assert!(IdempotencyKey::parse_trimmed("   ").is_err());
        assert!(IdempotencyKey::parse_trimmed(&"k".repeat(201)).is_err());
        assert!(IdempotencyKey::parse_trimmed("tab\tkey").is_err());
        assert!(IdempotencyKey::parse_trimmed(&"k".repeat(200)).is_ok());
    }

    #[test]
    fn run_ids_are_positive_int64() {
        assert_eq!("7".parse::<RunId>().unwrap(), RunId(7));
        for bad in ["0", "-1", "x", "9223372036854775808"] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn long_bad_input_is_cut_in_the_message() {
        let error = DeployId::parse(&"é".repeat(200)).unwrap_err();
        assert_eq!(error.value.chars().count(), 81);
    }
}
