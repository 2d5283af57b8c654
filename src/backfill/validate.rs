//! The report after a backfill: nothing left unfilled, no rows lost or
//! added by it, and a random sample recomputed and compared.

use super::sql::BackfillSql;
use crate::db::{Database, DbError, Value};
use serde::Serialize;

/// How many random rows are recomputed.
pub(crate) const SAMPLE: usize = 100;

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Validation {
    /// Rows in the table when the backfill started, and now.
    pub(crate) rows_before: i64,
    pub(crate) rows_after: i64,
    /// Per `set` column: rows still NULL where the expression gives a value.
    pub(crate) unexpected_nulls: Vec<NullCount>,
    pub(crate) sampled: usize,
    pub(crate) mismatches: Vec<Mismatch>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct NullCount {
    pub(crate) column: String,
    pub(crate) rows: i64,
}

/// A sampled row whose stored value differs from its expression now.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Mismatch {
    pub(crate) key: i64,
    pub(crate) columns: Vec<String>,
}

impl Validation {
    pub(crate) fn passed(&self) -> bool {
        self.problems().is_empty()
    }

    /// What failed, in words. A changed row count is not among them: a
    /// backfill only updates, so a change means the application inserted
    /// or deleted rows meanwhile, which `notes` reports.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in self.unexpected_nulls.iter().filter(|n| n.rows > 0) {
            out.push(format!(
                "{} row(s) still have {} NULL where its expression gives a value (rows written \
                 since by code that does not fill it yet?)",
                n.rows, n.column
            ));
        }
        if !self.mismatches.is_empty() {
            let keys: Vec<String> = self
                .mismatches
                .iter()
                .take(10)
                .map(|m| m.key.to_string())
                .collect();
            out.push(format!(
                "{} of {} sampled rows differ from their expressions recomputed now (keys {})",
                self.mismatches.len(),
                self.sampled,
                keys.join(", ")
            ));
        }
        out
    }

    /// The report's lines, for people.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let nulls: i64 = self.unexpected_nulls.iter().map(|n| n.rows).sum();
        let columns: Vec<&str> = self
            .unexpected_nulls
            .iter()
            .map(|n| n.column.as_str())
            .collect();
        out.push(format!(
            "{} unexpected NULLs in {}: {nulls}",
            if nulls == 0 { "ok  " } else { "FAIL" },
            columns.join(", ")
        ));
        let delta = self.rows_after - self.rows_before;
        out.push(if delta == 0 {
            format!("ok   row count unchanged: {}", self.rows_before)
        } else {
            format!(
                "note row count {} → {} ({delta:+}): a backfill only updates, so other writers inserted or deleted rows meanwhile",
                self.rows_before, self.rows_after
            )
        });
        out.push(format!(
            "{} {} random rows recomputed: {} differ",
            if self.mismatches.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            self.sampled,
            self.mismatches.len()
        ));
        out
    }
}

pub(crate) async fn validate(
    db: &mut dyn Database,
    plan: &BackfillSql,
    version: &str,
    rows_before: i64,
) -> Result<Validation, DbError> {
    let rows_after = first_int(db.query_with(&plan.count(), &[]).await?).unwrap_or(0);
    let counts = db
        .query_with(&plan.unexpected_nulls(), &[Value::Text(version.into())])
        .await?;
    let unexpected_nulls = plan
        .sets
        .iter()
        .enumerate()
        .map(|(i, (column, ..))| NullCount {
            column: column.clone(),
            rows: counts
                .first()
                .and_then(|r| r.get(i))
                .and_then(Value::as_i64)
                .unwrap_or(0),
        })
        .collect();

    let keys = sample_keys(db, plan, version).await?;
    let mut mismatches = Vec::new();
    for &key in &keys {
        let columns = match db.query_with(&plan.recompute(), &[Value::Int(key)]).await {
            Ok(rows) => match rows.first() {
                // Deleted since it was picked.
                None => continue,
                Some(row) => plan
                    .sets
                    .iter()
                    .zip(row)
                    .filter(|(_, same)| same.as_i64() != Some(1))
                    .map(|((c, ..), _)| c.clone())
                    .collect(),
            },
            Err(e) => vec![format!("error: {}", e.message)],
        };
        if !columns.is_empty() {
            mismatches.push(Mismatch { key, columns });
        }
    }
    Ok(Validation {
        rows_before,
        rows_after,
        unexpected_nulls,
        sampled: keys.len(),
        mismatches,
    })
}

/// Up to [`SAMPLE`] keys picked uniformly at random (one scan of the
/// table, which the NULL check above does anyway), skipped rows left out.
async fn sample_keys(
    db: &mut dyn Database,
    plan: &BackfillSql,
    version: &str,
) -> Result<Vec<i64>, DbError> {
    Ok(db
        .query_with(&plan.sample(SAMPLE), &[Value::Text(version.into())])
        .await?
        .into_iter()
        .filter_map(|r| r.first().and_then(Value::as_i64))
        .collect())
}

pub(crate) fn first_int(rows: Vec<Vec<Value>>) -> Option<i64> {
    rows.into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .and_then(|v| v.as_i64())
}
