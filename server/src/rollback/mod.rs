//! Rolling an environment back to an earlier release. [`plan`] decides,
//! without side effects, what a rollback would do and whether it may run:
//! the releases it goes from and to, the commits it takes off, the Alembic
//! downgrade path with its data loss, the preflight checks and who must
//! confirm. Executing a plan is another module's work.

pub mod plan;

pub use plan::{
    Check, Level, Lock, Plan, PlanCommit, PlanInput, RenderRetention, Requirements, RevertMode,
    RollbackOptions, RunningOperation, plan,
};
