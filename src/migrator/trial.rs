//! Trial runs: a migration's statements run against the live schema in a
//! transaction that is always rolled back (`keel validate`, and the dry
//! run `keel execute` makes before it changes anything).

use crate::db::{Database, DbError, Timeouts};
use crate::sql::Statement;

/// Runs `statements` in the transaction the caller has open, stopping at
/// the first that fails; the caller rolls back either way.
pub(crate) async fn run_all<'s>(
    db: &mut dyn Database,
    statements: &'s [Statement],
) -> Result<(), (&'s Statement, DbError)> {
    for stmt in statements {
        db.execute(&stmt.sql).await.map_err(|e| (stmt, e))?;
    }
    Ok(())
}

/// Opens a transaction with `timeouts`, runs `statements` in it and rolls it
/// back: `Ok(Err(…))` names the statement that failed and why.
pub(crate) async fn trial_run<'s>(
    db: &mut dyn Database,
    statements: &'s [Statement],
    timeouts: Timeouts,
) -> Result<Result<(), (&'s Statement, DbError)>, DbError> {
    db.begin(timeouts, true).await?;
    let ran = run_all(db, statements).await;
    db.rollback().await?;
    Ok(ran)
}
