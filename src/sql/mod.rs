//! SQL text below any grammar: where statements end ([`split`]) and
//! whether a lone expression from migration.toml is one ([`expr`]). Both
//! the migration loader and the analysis read SQL this way, so it sits
//! beneath them.

pub mod expr;
pub mod split;

pub use split::{Statement, split};
