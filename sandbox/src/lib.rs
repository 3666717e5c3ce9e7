//! Flightdeck's sandbox: simulated GitHub ([`github`]) and Render
//! ([`render`]) on loopback ports, a target database per environment under
//! a generated Alembic project ([`target_db`], [`alembic`]), faults to inject
//! ([`faults`]), all seeded with one believable history ([`scenario`],
//! poured in by [`world`]).
//!
//! `flightdeck sandbox` runs it beside a panel, and the product's tests
//! point their real clients at it over real sockets. It never depends on
//! the product: it signs webhooks with its own code ([`signing`]) written
//! from the providers' documents, so a bug on one side cannot pass on both.

pub mod alembic;
pub mod backend;
#[cfg(test)]
mod contract;
pub mod faults;
pub mod github;
pub mod render;
pub mod scenario;
pub mod scratch;
pub mod signing;
pub mod support;
pub mod target_db;
pub mod world;
