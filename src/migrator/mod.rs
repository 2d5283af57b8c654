//! Ordering, applying and reverting migrations against a [`Database`],
//! one runner at a time.
//!
//! [`Database`]: crate::db::Database

mod concurrent_index;
mod error;
mod failure;
#[cfg(test)]
mod fixtures;
mod hook;
mod ledger;
mod one_by_one;
mod resolve;
pub(crate) use resolve::{ACCEPTED, Accepted, AsApplied, Signed};
mod runner;
mod schema_kept;
mod settings;
mod status;
mod targets;
mod transaction;
pub(crate) mod trial;
mod validate;

pub(crate) use error::RunError;
pub(crate) use hook::Hook;
pub(crate) use runner::{Event, Runner};
pub(crate) use settings::RunSettings;
pub(crate) use status::{Entry, State, reconcile};
pub(crate) use targets::{
    NotNext, UnknownTarget, check_only, check_target, check_to, down_targets, next_in_line,
    pending, plan_set, refuse_blocked, waiting,
};
pub(crate) use validate::validate;

/// Who is running keel, for the tracking table and records: `user@host`.
pub(crate) fn operator() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(user_from_uid)
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// The login name of this process's uid, from /etc/passwd (cron jobs and
/// containers often have no USER set).
fn user_from_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_string())
    })
}
