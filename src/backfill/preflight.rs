//! Before the first batch: the table, key and columns `[backfill]` names
//! exist in the live schema, and each expression compiles there. Asked of
//! the database itself (its own name resolution, its own type checks), so
//! a typo is an error naming migration.toml's line, not a bare
//! `relation "nope" does not exist` from the middle of a run.

use super::{BackfillError, BackfillSql};
use crate::db::{Database, DbError, DbErrorKind};
use crate::migration::Migration;
use crate::migration::meta::{Backfill, Pos};

/// Where the check runs, which decides what the error says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Inside the migration's own transaction, after its SQL: a failure
    /// rolls all of it back and the migration stays pending.
    BeforeCommit,
    /// Before the batches of an applied migration (`keel backfill`, a
    /// resumed run): the migration stays backfilling.
    BeforeBatches,
}

/// Checks `m`'s backfill against the database; the first problem found.
/// Only [`DbErrorKind::Statement`] errors are blamed on migration.toml; a
/// lost connection is reported as what it is.
pub(crate) async fn check(
    db: &mut dyn Database,
    m: &Migration,
    when: When,
) -> Result<(), BackfillError> {
    let Some(spec) = m.meta.backfill.as_ref() else {
        return Ok(());
    };
    let plan = BackfillSql::new(spec);
    let problem = |at: Pos, message: String, fix: String| BackfillError::Spec {
        migration: m.id(),
        file: m.dir.join("migration.toml"),
        at,
        message,
        outcome: match when {
            When::BeforeCommit => "nothing of the migration was kept; it is still pending".into(),
            When::BeforeBatches => "no batch ran; the migration stays backfilling".into(),
        },
        fix: match when {
            When::BeforeCommit => format!("{fix}, then run `keel up` again"),
            When::BeforeBatches => format!(
                "`keel down` reverts the migration; {fix} in migration.toml, then run `keel up` again"
            ),
        },
    };
    let blame = |e: DbError| -> Result<String, DbError> {
        if e.kind == DbErrorKind::Statement {
            Ok(e.to_string().replace('\n', "; "))
        } else {
            Err(e)
        }
    };

    if let Err(e) = probe(db, &format!("SELECT 1 FROM {} WHERE 1 = 0", plan.t)).await {
        let why = blame(e).map_err(BackfillError::Db)?;
        return Err(problem(
            spec.at.table,
            format!("[backfill] table = {:?} cannot be read: {why}", spec.table),
            "correct `table` in [backfill] (create the table in an earlier migration, or in this up.sql)".into(),
        ));
    }
    let columns: Vec<String> = db
        .columns(&spec.table)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let named = std::iter::once((&spec.key, spec.at.key, "key")).chain(spec.set.keys().map(|c| {
        let at = spec.at.set.get(c).map_or(spec.at.section, |(k, _)| *k);
        (c, at, "set")
    }));
    for (column, at, setting) in named {
        // An empty list: the table is visible but its columns could not be
        // listed (another schema on the search path); the UPDATE probe
        // below still finds a missing column.
        if columns.is_empty() || columns.contains(column) {
            continue;
        }
        let like = columns
            .iter()
            .find(|c| c.eq_ignore_ascii_case(column))
            .map(|c| {
                format!("; it has {c:?}, which differs in case (a quoted name keeps its case)")
            })
            .unwrap_or_default();
        return Err(problem(
            at,
            format!(
                "[backfill] {setting}: table {:?} has no column {column:?} (its columns: {}){like}",
                spec.table,
                columns.join(", ")
            ),
            format!("correct the column's name in `{setting}` (or add the column in up.sql)"),
        ));
    }
    expressions(db, spec, &plan, &problem, &blame).await
}

/// Each expression in the statement shape the batches use, planned and
/// not run (EXPLAIN, in both PostgreSQL and SQLite): unknown columns or
/// functions and type mismatches show here, with the expression named.
async fn expressions(
    db: &mut dyn Database,
    spec: &Backfill,
    plan: &BackfillSql,
    problem: &dyn Fn(Pos, String, String) -> BackfillError,
    blame: &dyn Fn(DbError) -> Result<String, DbError>,
) -> Result<(), BackfillError> {
    for (column, quoted, expression) in &plan.sets {
        let sql = format!(
            "EXPLAIN UPDATE {t} SET {quoted} = ({expression}) WHERE 1 = 0",
            t = plan.t
        );
        if let Err(e) = probe(db, &sql).await {
            let why = blame(e).map_err(BackfillError::Db)?;
            let at = spec.at.set.get(column).map_or(spec.at.section, |(_, v)| *v);
            return Err(problem(
                at,
                format!(
                    "[backfill] set: the expression for {column:?} does not work on {:?}: {why}",
                    spec.table
                ),
                "correct the expression".into(),
            ));
        }
    }
    if spec.filter.as_deref().is_some_and(|f| !f.trim().is_empty()) {
        let sql = format!("EXPLAIN SELECT 1 FROM {} WHERE ({})", plan.t, plan.filter);
        if let Err(e) = probe(db, &sql).await {
            let why = blame(e).map_err(BackfillError::Db)?;
            return Err(problem(
                spec.at.filter,
                format!("[backfill] where does not work on {:?}: {why}", spec.table),
                "correct the `where` condition".into(),
            ));
        }
    }
    Ok(())
}

async fn probe(db: &mut dyn Database, sql: &str) -> Result<(), DbError> {
    db.query_with(sql, &[]).await.map(|_| ())
}
