//! Ordering, applying and reverting migrations against a [`Database`],
//! one runner at a time.
//!
//! [`Database`]: crate::db::Database

mod apply;
mod error;
mod status;
mod validate;

pub use apply::{Event, RunSettings, Runner};
pub use error::RunError;
pub use status::{Entry, State, reconcile};
pub use validate::{Finding, ValidateReport, validate};

/// Who is running keel, for the tracking table and records: `user@host`.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}
