//! Closed sets of words: each enum is written and read as the snake_case
//! text of `as_str`, the same in the store, in JSON and on the pages.

use crate::InvalidValue;
use std::fmt;
use std::str::FromStr;

macro_rules! word_enum {
    (
        $(#[$doc:meta])*
        $name:ident, what = $what:literal {
            $( $(#[$vdoc:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(text: &str) -> Result<Self, InvalidValue> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(InvalidValue::new($what, text, concat!("one of:", $(" ", $text),+))),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "sqlx")]
        crate::sqlx_as_text!($name);
    };
}

word_enum! {
    /// Where an operation is: `awaiting_approval` → `running` →
    /// `succeeded` | `failed` | `needs_attention`.
    OperationState, what = "operation state" {
        AwaitingApproval => "awaiting_approval",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        /// A step failed halfway; a lead must look and resolve it.
        NeedsAttention => "needs_attention",
    }
}

impl OperationState {
    /// Active operations block every other on their environment: all but
    /// the two ends.
    pub fn is_active(self) -> bool {
        !matches!(self, OperationState::Succeeded | OperationState::Failed)
    }
}

word_enum! {
    /// Where one step of an operation is.
    StepState, what = "step state" {
        Pending => "pending",
        Running => "running",
        Done => "done",
        Failed => "failed",
        Skipped => "skipped",
    }
}

word_enum! {
    /// How an audited action ended.
    Outcome, what = "outcome" {
        Started => "started",
        Succeeded => "succeeded",
        Failed => "failed",
        Denied => "denied",
    }
}

word_enum! {
    /// One check of a rollback's preflight. Stable: pages, the REST API and
    /// tests key on them.
    CheckId, what = "preflight check" {
        /// Something is live to roll back from.
        Live => "live",
        /// The environment is not locked by someone else.
        Lock => "lock",
        /// No other operation is active on the environment.
        Operation => "operation",
        /// The target release exists and may be rolled back to.
        Target => "target",
        /// The target deploy went live once.
        TargetWentLive => "target_went_live",
        /// The target is older than the live release.
        TargetOrder => "target_order",
        /// The target's verdict (CI, smoke) was good.
        TargetVerdict => "target_verdict",
        /// Render still keeps the target's build.
        TargetRetention => "target_retention",
        /// The target's migrations could be read.
        TargetMigrations => "target_migrations",
        /// The commits the rollback takes off.
        Commits => "commits",
        /// The database's `alembic_version` could be read.
        DatabaseState => "database_state",
        /// The database has a single head.
        DatabaseHeads => "database_heads",
        /// The schema the target expects against the database's.
        Schema => "schema",
        /// A downgrade path from the database to the target's head.
        DowngradePath => "downgrade_path",
        /// What the downgrade destroys.
        DataLoss => "data_loss",
        /// The branch the code revert writes to.
        Branch => "branch",
        /// The branch moved on since the live release.
        BranchAhead => "branch_ahead",
        /// How the code goes back on the branch.
        CodeRevert => "code_revert",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_text_and_json() {
        for state in OperationState::ALL {
            assert_eq!(state.as_str().parse::<OperationState>().unwrap(), *state);
            let json = serde_json::to_string(state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(
                serde_json::from_str::<OperationState>(&json).unwrap(),
                *state
            );
        }
        for check in CheckId::ALL {
            assert_eq!(check.as_str().parse::<CheckId>().unwrap(), *check);
        }
        assert_eq!(StepState::ALL.len(), 5);
        assert_eq!(Outcome::Denied.to_string(), "denied");
    }

    #[test]
    fn unknown_words_say_what_is_allowed() {
        let error = "paused".parse::<StepState>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "`paused` is not a valid step state (one of: pending running done failed skipped)"
        );
        assert!(serde_json::from_str::<Outcome>("\"maybe\"").is_err());
    }

    #[test]
    fn only_the_ends_are_inactive() {
        let active: Vec<_> = OperationState::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(active, ["awaiting_approval", "running", "needs_attention"]);
    }
}
