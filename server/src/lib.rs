//! Flightdeck's server: the application layer ([`control`]), the panel's
//! store, the audit trail, the HTTP surface and the command line.

pub mod alembic;
pub mod audit;
pub mod cli;
pub mod config;
pub mod control;
pub mod export;
pub mod identity;
pub mod integrations;
pub mod metrics;
pub mod operations;
pub mod releases;
pub mod rollback;
pub mod signatures;
pub mod startup;
pub mod store;
pub mod sync;
pub mod views;
pub mod web;
