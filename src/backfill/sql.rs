//! The SQL of one backfill, built once from `[backfill]`. Identifiers go
//! through [`quote_ident`]; keys always travel as bind parameters. The `set`
//! expressions and the `where` filter are SQL from the reviewed
//! migration.toml, trusted like up.sql, and are always parenthesised.

use crate::db::quote_ident;
use crate::migration::meta::Backfill;

#[derive(Debug, Clone)]
pub(crate) struct BackfillSql {
    pub(crate) table: String,
    pub(crate) key_name: String,
    /// Quoted table and key.
    pub(crate) t: String,
    pub(crate) k: String,
    /// (column as written, quoted column, expression).
    pub(crate) sets: Vec<(String, String, String)>,
    /// The `where` filter, or a condition that is always true.
    pub(crate) filter: String,
}

impl BackfillSql {
    pub(crate) fn new(spec: &Backfill) -> BackfillSql {
        BackfillSql {
            table: spec.table.clone(),
            key_name: spec.key.clone(),
            t: crate::db::quote_relation(&spec.table),
            k: quote_ident(&spec.key),
            sets: spec
                .set
                .iter()
                .map(|(c, e)| (c.clone(), quote_ident(c), e.trim().to_string()))
                .collect(),
            filter: spec
                .filter
                .as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .unwrap_or("1 = 1")
                .to_string(),
        }
    }

    /// One batch: the rows with `lo < key <= hi` that match the filter.
    /// Without `lo` the range starts at the first row.
    pub(crate) fn update(&self, from_start: bool) -> String {
        let set: Vec<String> = self
            .sets
            .iter()
            .map(|(_, c, e)| format!("{c} = ({e})"))
            .collect();
        format!(
            "UPDATE {t} SET {set} WHERE {range} AND ({f})",
            t = self.t,
            set = set.join(", "),
            range = self.range(from_start),
            f = self.filter
        )
    }

    /// `$1` (and `$2`) bound to lo and hi.
    fn range(&self, from_start: bool) -> String {
        if from_start {
            format!("{k} <= $1", k = self.k)
        } else {
            format!("{k} > $1 AND {k} <= $2", k = self.k)
        }
    }

    /// The key `OFFSET` rows after lo (bound last): the upper end of a
    /// batch. An index-only walk of the primary key, so empty key ranges
    /// cost nothing.
    pub(crate) fn key_at(&self, from_start: bool) -> String {
        let (k, t) = (&self.k, &self.t);
        if from_start {
            format!("SELECT {k} FROM {t} ORDER BY {k} LIMIT 1 OFFSET $1")
        } else {
            format!("SELECT {k} FROM {t} WHERE {k} > $1 ORDER BY {k} LIMIT 1 OFFSET $2")
        }
    }

    pub(crate) fn max_after(&self, from_start: bool) -> String {
        let (k, t) = (&self.k, &self.t);
        if from_start {
            format!("SELECT max({k}) FROM {t}")
        } else {
            format!("SELECT max({k}) FROM {t} WHERE {k} > $1")
        }
    }

    pub(crate) fn count_range(&self, from_start: bool) -> String {
        format!(
            "SELECT count(*) FROM {t} WHERE {range}",
            t = self.t,
            range = self.range(from_start)
        )
    }

    pub(crate) fn keys_in_range(&self, from_start: bool) -> String {
        format!(
            "SELECT {k} FROM {t} WHERE {range} ORDER BY {k}",
            k = self.k,
            t = self.t,
            range = self.range(from_start)
        )
    }

    pub(crate) fn count(&self) -> String {
        format!("SELECT count(*) FROM {}", self.t)
    }

    pub(crate) fn min_max(&self) -> String {
        format!("SELECT min({k}), max({k}) FROM {t}", k = self.k, t = self.t)
    }

    /// Per column: rows where it is NULL, the filter still holds and the
    /// expression gives a value — rows the backfill should have filled and
    /// did not. Skipped rows (failures) are left out. CASE keeps the
    /// expression from being evaluated on rows outside the filter.
    pub(crate) fn unexpected_nulls(&self) -> String {
        let sums: Vec<String> = self
            .sets
            .iter()
            .map(|(_, c, e)| {
                format!(
                    "CAST(coalesce(sum(CASE WHEN {c} IS NULL AND ({f}) THEN \
                     CASE WHEN ({e}) IS NOT NULL THEN 1 ELSE 0 END ELSE 0 END), 0) AS bigint)",
                    f = self.filter
                )
            })
            .collect();
        format!(
            "SELECT {sums} FROM {t} WHERE {k} NOT IN (SELECT key_value FROM {failures} WHERE version = $1)",
            sums = sums.join(", "),
            t = self.t,
            k = self.k,
            failures = super::store::FAILURES
        )
    }

    /// `n` keys at random, rows skipped by the backfill left out.
    pub(crate) fn sample(&self, n: usize) -> String {
        format!(
            "SELECT {k} FROM {t} WHERE {k} NOT IN (SELECT key_value FROM {failures} WHERE version = $1) \
             ORDER BY random() LIMIT {n}",
            k = self.k,
            t = self.t,
            failures = super::store::FAILURES
        )
    }

    /// For the row with key `$1`: 1 per column whose value equals its
    /// expression recomputed now (NULL equal to NULL), else 0.
    pub(crate) fn recompute(&self) -> String {
        let cols: Vec<String> = self
            .sets
            .iter()
            .map(|(_, c, e)| {
                format!(
                    "CASE WHEN {c} = ({e}) OR ({c} IS NULL AND ({e}) IS NULL) THEN 1 ELSE 0 END"
                )
            })
            .collect();
        format!(
            "SELECT {cols} FROM {t} WHERE {k} = $1",
            cols = cols.join(", "),
            t = self.t,
            k = self.k
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Backfill {
        Backfill {
            table: "users".into(),
            key: "id".into(),
            set: [(
                "first_name".to_string(),
                "split_part(name, ' ', 1)".to_string(),
            )]
            .into_iter()
            .collect(),
            filter: Some("first_name IS NULL".into()),
            batch_size: None,
            delay_ms: None,
            max_replica_lag: None,
            max_active_sessions: None,
            at: Default::default(),
        }
    }

    #[test]
    fn batches_are_key_ranges_with_bound_keys() {
        let p = BackfillSql::new(&spec());
        assert_eq!(
            p.update(false),
            "UPDATE \"users\" SET \"first_name\" = (split_part(name, ' ', 1)) \
             WHERE \"id\" > $1 AND \"id\" <= $2 AND (first_name IS NULL)"
        );
        assert_eq!(
            p.update(true),
            "UPDATE \"users\" SET \"first_name\" = (split_part(name, ' ', 1)) \
             WHERE \"id\" <= $1 AND (first_name IS NULL)"
        );
        assert_eq!(
            p.key_at(false),
            "SELECT \"id\" FROM \"users\" WHERE \"id\" > $1 ORDER BY \"id\" LIMIT 1 OFFSET $2"
        );
    }

    #[test]
    fn identifiers_are_quoted_even_when_hostile() {
        let mut s = spec();
        s.table = "we\"ird".into();
        let p = BackfillSql::new(&s);
        assert!(p.update(true).starts_with("UPDATE \"we\"\"ird\" SET"));
    }

    #[test]
    fn no_filter_is_always_true() {
        let mut s = spec();
        s.filter = None;
        assert!(BackfillSql::new(&s).update(true).ends_with("AND (1 = 1)"));
    }
}
