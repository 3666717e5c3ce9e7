//! Flightdeck's vocabulary as types: the names and ids the panel passes
//! around, and the states its operations move through. Each is parsed once,
//! where text enters (configuration, a URL, a form, a JSON body, an
//! upstream's reply), and is valid from then on; a bad value is an
//! [`InvalidValue`] that says which rule it broke.
//!
//! Serde reads and writes every type as the text it parses (invalid input
//! fails deserialisation with the same sentence). With the `sqlx` feature
//! every type is stored as that text too (or an integer, for [`RunId`]).
//!
//! Plain data only: no I/O, no clock, usable from the browser bundle.

mod ids;
mod states;

pub use ids::{
    CommitSha, DeployId, EnvironmentName, IdempotencyKey, OperationId, RevisionId, RunId, short_sha,
};
pub use states::{CheckId, OperationState, Outcome, StepState};

/// A value that breaks its type's rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what} ({rule})")]
pub struct InvalidValue {
    /// What was being parsed, e.g. "environment name".
    pub what: &'static str,
    /// The input, cut to 80 characters.
    pub value: String,
    /// The rule, e.g. "1-40 of a-z, 0-9, - and _, starting with a letter".
    pub rule: &'static str,
}

impl InvalidValue {
    /// For rules outside this crate (an account name, an export format).
    pub fn new(what: &'static str, value: &str, rule: &'static str) -> Self {
        let value = match value.char_indices().nth(80) {
            Some((cut, _)) => format!("{}…", &value[..cut]),
            None => value.to_owned(),
        };
        InvalidValue { what, value, rule }
    }
}

/// Stores a type as the text of its `as_str`, read back with `FromStr`.
#[cfg(feature = "sqlx")]
macro_rules! sqlx_as_text {
    ($name:ty) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                self.as_str().to_owned().encode(buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}
#[cfg(feature = "sqlx")]
pub(crate) use sqlx_as_text;
