//! `CREATE INDEX CONCURRENTLY` in a non-transactional migration: which
//! index a statement builds, whether one of that name already there is it,
//! and what a failed build tells the operator.

use crate::analysis::{ActionKind, Classified};
use crate::db::{DbError, IndexMismatch, IndexRequest, Relation};
use crate::sql::Statement;

/// The index a statement builds with `CREATE INDEX CONCURRENTLY`, from the
/// analysis of its file.
pub(super) struct AskedIndex {
    /// The name `index_valid` and `drop_index` look up: schema-qualified
    /// when the statement qualifies the table (the index lives beside it).
    pub(super) name: String,
    /// What it must be, to be taken as already built; `None` when the
    /// analysis could not read the table or the columns.
    pub(super) request: Option<IndexRequest>,
}

pub(super) fn concurrent_index(c: &Classified, stmt: &Statement) -> Option<AskedIndex> {
    c.ops
        .iter()
        .filter(|op| op.offset >= stmt.offset && op.offset < stmt.end.max(stmt.offset + 1))
        .flat_map(|op| &op.actions)
        .find_map(|a| match &a.kind {
            ActionKind::CreateIndex {
                name: Some(name),
                concurrently: true,
                unique,
                shape,
                ..
            } => {
                let schema = a.table.as_deref().and_then(|t| Relation::parse(t).schema);
                let name = Relation::parse(name).name;
                Some(AskedIndex {
                    name: Relation::new(schema.as_deref(), &name).to_string(),
                    request: a.table.clone().zip(shape.clone()).map(|(table, shape)| {
                        IndexRequest {
                            name,
                            table,
                            unique: *unique,
                            shape,
                        }
                    }),
                })
            }
            _ => None,
        })
}

/// SQLSTATE 42P07 (duplicate_table, what PostgreSQL says for a name that
/// is taken) with keel's own message: the index of that name is another.
pub(super) fn mismatch_error(index: &str, mismatch: &IndexMismatch) -> DbError {
    let mut error = DbError::new(
        crate::db::DbErrorKind::Statement,
        format!(
            "{index} already exists and is not the index this statement builds, so IF NOT EXISTS would skip the build and leave the other one in its place: {}",
            mismatch.differences().join("; ")
        ),
    );
    error.code = Some("42P07".into());
    if let IndexMismatch::Differs { existing, asked } = mismatch {
        error.detail = Some(format!(
            "there now: {}
  asked for: {}",
            existing.definition(index),
            asked.definition(index)
        ));
    }
    error
}

/// What to do about an index of the same name that is another index.
pub(super) fn mismatch_fix(index: &str) -> String {
    format!(
        "keep the other index under another name (`ALTER INDEX {index} RENAME TO …`) or drop it (`DROP INDEX CONCURRENTLY {index}`), or give the new index another name in the migration"
    )
}

/// Adds what to do when a concurrent index build failed twice: duplicate
/// keys for a unique index are the usual reason, and need the data fixed.
pub(super) fn explain_index_failure(index: Option<&str>, mut error: DbError) -> DbError {
    let Some(index) = index else {
        return error;
    };
    let why = if error.code.as_deref() == Some("23505") {
        format!(
            "the table has duplicate keys for unique index {index}, so it cannot be built; \
             find them with `SELECT <columns>, count(*) FROM <table> GROUP BY <columns> HAVING count(*) > 1`, \
             fix them, and run keel up again"
        )
    } else {
        format!("the build of {index} failed twice; no INVALID index was left behind")
    };
    error.hint = Some(match error.hint.take() {
        Some(h) => format!("{h}; {why}"),
        None => why,
    });
    error
}
