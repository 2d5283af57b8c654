//! What a migration will do, read from its SQL before it runs.
//!
//! Each statement is parsed with a PostgreSQL grammar (squawk) and
//! classified once into an [`Operation`]: tables and columns touched, lock
//! level, rewrite, scan, data destroyed, transaction constraints. The lint
//! rules, the dry run, reversibility and the backup plan all read that model.

pub mod allow;
pub(crate) mod analyze;
pub mod classify;
pub mod estimate;
pub(crate) mod finding;
pub(crate) mod keyword;
pub mod layout;
pub(crate) mod lint;
pub(crate) mod lint_policy;
pub mod live;
pub mod lock;
pub mod operation;
pub(crate) mod plan;
pub(crate) mod reach;
pub(crate) mod report;
pub(crate) mod reversibility;
#[cfg(test)]
mod robustness;
pub(crate) mod rules;
pub mod schema;
pub(crate) mod search_path;
pub(crate) mod sizes;
pub(crate) mod sql_name;
pub mod sqltype;
pub mod version;
pub(crate) mod volatile;

pub(crate) use classify::statements_parsed;
pub use classify::{Classified, classify};
pub use live::LiveSchema;
pub(crate) use operation::ActionKind;
pub use operation::{Lock, Operation, Tri};
pub use schema::Schema;
pub use version::PgVersion;
