//! What a migration will do, read from its SQL before it runs.
//!
//! Each statement is parsed with a PostgreSQL grammar (squawk) and
//! classified once into an [`Operation`]: tables and columns touched, lock
//! level, rewrite, scan, data destroyed, transaction constraints. The lint
//! rules, the dry run, reversibility and the backup plan all read that model.

pub mod allow;
pub mod analyze;
pub mod classify;
pub mod estimate;
pub mod finding;
pub mod keyword;
pub mod lint;
pub mod live;
pub mod lock;
pub mod operation;
pub mod plan;
pub mod report;
pub mod reversibility;
#[cfg(test)]
mod robustness;
pub mod rules;
pub mod schema;
pub mod search_path;
pub mod sizes;
pub mod sqltype;
pub mod version;

pub use classify::{Classified, SyntaxProblem, classify, statements_parsed};
pub use live::LiveSchema;
pub use operation::{Action, ActionKind, Lock, Operation, Tri};
pub use schema::{Created, Schema};
pub use version::PgVersion;
