//! What a migration will do, read from its SQL before it runs.
//!
//! Today: splitting a file into statements with their positions, using
//! PostgreSQL's lexical rules (dollar quoting, comments, quoted identifiers).
//! The per-statement classification (locks, rewrites, lint) builds on this.

mod split;

pub use split::{Statement, split};
