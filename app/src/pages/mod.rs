//! One file per page.

mod admin;
mod login;
mod not_found;
mod overview;

pub use admin::AdminPage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use overview::OverviewPage;
