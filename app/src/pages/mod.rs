//! One file per page.

mod admin;
mod audit;
mod deploys;
mod login;
mod migrations;
mod not_found;
mod operation;
mod overview;
mod parts;
mod rollback;
mod runs;
mod timeline;

pub use admin::AdminPage;
pub use audit::{AuditEventPage, AuditPage};
pub use deploys::DeploysPage;
pub use login::LoginPage;
pub use migrations::MigrationsPage;
pub use not_found::NotFound;
pub use operation::OperationPage;
pub use overview::OverviewPage;
pub use rollback::RollbackPage;
pub use runs::{RunPage, RunsPage};
pub use timeline::TimelinePage;
