//! Data integrity: what a table holds, as a digest that does not depend on
//! row order ([`TableDigest`]), and rows generated into empty tables so that
//! a migration meets data ([`Filled`]). The dialects read the rows and the
//! catalog; the arithmetic, the order of the tables, the SQL both dialects
//! share and the retries are here once.

use super::{DbError, Relation, Session, Value, quote_ident};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// What a table holds, independent of row order and column order: the row
/// count and a digest of the multiset of rows (two equal rows count twice).
/// Comparable between two digests of one dialect only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableDigest {
    /// Rows in the table.
    pub rows: u64,
    /// Hex SHA-256 of the row count and of the sum of the rows' SHA-256.
    pub digest: String,
}

/// What [`super::Bulk::fill_empty_tables`] did with one empty table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Filled {
    /// The table, in [`Relation`]'s text form.
    pub table: String,
    /// Rows inserted: the number asked for, 1 when only a single row went
    /// in, 0 when none could.
    pub inserted: u64,
    /// What the caller should know: why the table could not be filled and
    /// how to fix it, or which columns were left NULL.
    pub note: Option<String>,
}

/// The running sum behind a [`TableDigest`]: each row's SHA-256 added as a
/// 256-bit number (wrapping), so the order rows arrive in does not matter
/// and a duplicate row adds its hash twice.
#[derive(Debug, Default, Clone)]
pub(super) struct RowSum {
    rows: u64,
    /// Little-endian 64-bit limbs of the 256-bit sum.
    sum: [u64; 4],
}

impl RowSum {
    /// Adds one row, given as an unambiguous encoding of its values.
    pub(super) fn add(&mut self, row: &[u8]) {
        let hash = Sha256::digest(row);
        let mut carry = false;
        for (i, limb) in self.sum.iter_mut().enumerate() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&hash[i * 8..i * 8 + 8]);
            let (s1, c1) = limb.overflowing_add(u64::from_le_bytes(bytes));
            let (s2, c2) = s1.overflowing_add(carry as u64);
            *limb = s2;
            carry = c1 || c2;
        }
        self.rows += 1;
    }

    /// The count and the sum, hashed once more into the hex digest.
    pub(super) fn finish(&self) -> TableDigest {
        let mut hasher = Sha256::new();
        hasher.update(b"keel table digest 1\0");
        hasher.update(self.rows.to_le_bytes());
        for limb in self.sum {
            hasher.update(limb.to_le_bytes());
        }
        TableDigest {
            rows: self.rows,
            digest: hex::encode(hasher.finalize()),
        }
    }
}

/// Cuts a stream of newline-terminated rows (PostgreSQL's `COPY … TO
/// STDOUT` text format, where a newline inside a value is written `\n`)
/// into rows, whatever the chunks' boundaries.
#[derive(Debug, Default)]
pub(super) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Hands every complete row of `chunk` (and of what an earlier chunk
    /// left) to `row`, without its newline.
    pub(super) fn feed(&mut self, chunk: &[u8], row: &mut impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                row(&rest[..end]);
            } else {
                self.pending.extend_from_slice(&rest[..end]);
                row(&self.pending);
                self.pending.clear();
            }
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
    }

    /// True when no partial row is left over: the stream ended on a row's end.
    pub(super) fn is_clean(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Appends one value to a row's encoding: NULL as a lone 0 byte, a value
/// as 1, its length and its bytes, so that NULL and '' differ and no two
/// rows encode alike.
pub(super) fn push_value(row: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => row.push(0),
        Some(bytes) => {
            row.push(1);
            row.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            row.extend_from_slice(bytes);
        }
    }
}

/// The tables in an order where every table comes after the tables its
/// foreign keys reference (`edges`: child, parent). A self-reference does
/// not count; the tables of a cycle come by name, the first one before its
/// parents (its foreign keys to them stay NULL when they can).
pub(super) fn parents_first<T: Ord + Clone>(tables: &[T], edges: &[(T, T)]) -> Vec<T> {
    let known: BTreeSet<&T> = tables.iter().collect();
    let mut parents: BTreeMap<&T, BTreeSet<&T>> =
        tables.iter().map(|t| (t, BTreeSet::new())).collect();
    for (child, parent) in edges {
        if child != parent && known.contains(child) && known.contains(parent) {
            parents.entry(child).or_default().insert(parent);
        }
    }
    let mut order = Vec::with_capacity(tables.len());
    while !parents.is_empty() {
        let next = parents
            .iter()
            .find(|(_, p)| p.is_empty())
            .or_else(|| parents.iter().next())
            .map(|(t, _)| *t)
            .expect("not empty");
        parents.remove(next);
        for p in parents.values_mut() {
            p.remove(next);
        }
        order.push(next.clone());
    }
    order
}

/// The tables `keep` accepts and every table they reference by foreign key
/// (`edges`: child, parent), at any depth: a child's generated rows point
/// at its parents' rows, so the parents are filled too when empty.
pub(super) fn with_parents<T: Ord + Clone>(
    tables: &[T],
    edges: &[(T, T)],
    keep: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut kept: BTreeSet<&T> = tables.iter().filter(|t| keep(t)).collect();
    loop {
        let parents: Vec<&T> = edges
            .iter()
            .filter(|(child, parent)| kept.contains(child) && !kept.contains(parent))
            .map(|(_, parent)| parent)
            .collect();
        if parents.is_empty() {
            break;
        }
        kept.extend(parents);
    }
    tables
        .iter()
        .filter(|t| kept.contains(t))
        .cloned()
        .collect()
}

/// A foreign key of a table being filled.
#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    /// The referencing columns, in key order.
    pub(super) columns: Vec<String>,
    /// The referenced table.
    pub(super) parent: Relation,
    /// The referenced columns, in the same order.
    pub(super) parent_columns: Vec<String>,
}

impl ForeignKey {
    /// The value of the referencing column `i` for generated row `s.g`: the
    /// referenced columns of the parent's row number ((g - 1) mod n) + 1 by
    /// key order, so that every column of one key takes the same parent
    /// row; NULL when the parent is empty.
    pub(super) fn value_sql(&self, i: usize) -> String {
        let parent = self.parent.quoted();
        let keys: Vec<String> = self
            .parent_columns
            .iter()
            .map(|c| format!("r.{}", quote_ident(c)))
            .collect();
        let not_null: Vec<String> = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect();
        let filter = not_null.join(" AND ");
        // Row numbers, not OFFSET: SQLite does not let OFFSET see `s.g`.
        format!(
            "(SELECT p.k FROM (SELECT {} AS k, row_number() OVER (ORDER BY {}) AS n \
             FROM {parent} AS r WHERE {filter}) AS p WHERE p.n = (s.g - 1) % \
             (SELECT CASE WHEN count(*) = 0 THEN 1 ELSE count(*) END FROM {parent} AS r \
             WHERE {filter}) + 1)",
            keys[i],
            keys.join(", ")
        )
    }
}

/// One empty table and the INSERT that fills it with `$1` rows, built by
/// the dialect; `notes` say what the INSERT leaves out.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The table, as [`Filled::table`] names it.
    pub(super) table: String,
    /// The INSERT, which takes the number of rows as `$1`.
    pub(super) insert: String,
    /// Columns left NULL and why.
    pub(super) notes: Vec<String>,
}

/// The columns a generated row leaves NULL, as one note.
pub(super) fn left_null(columns: &[(String, &str)]) -> Option<String> {
    if columns.is_empty() {
        return None;
    }
    let list: Vec<String> = columns
        .iter()
        .map(|(c, why)| format!("{c} ({why})"))
        .collect();
    Some(format!("left NULL: {}", list.join(", ")))
}

/// Runs each table's INSERT as a statement of its own: all rows, else one
/// row, else none, saying why and how to fix it. A table that fails does
/// not stop the others (its children then fail on their foreign keys).
pub(super) async fn run_plans<S: Session + ?Sized>(
    db: &mut S,
    plans: Vec<Plan>,
    rows: u32,
) -> Result<Vec<Filled>, DbError> {
    let mut done = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut notes = plan.notes.clone();
        let inserted = match db
            .execute_with(&plan.insert, &[Value::Int(rows.into())])
            .await
        {
            Ok(n) => n,
            Err(e) if e.is_connection() => return Err(e),
            Err(e) if rows > 1 => match db.execute_with(&plan.insert, &[Value::Int(1)]).await {
                Ok(n) => {
                    notes.insert(
                        0,
                        format!("only 1 row: {} rows failed: {}", rows, e.message),
                    );
                    n
                }
                Err(e) => could_not(&mut notes, &plan.table, &e)?,
            },
            Err(e) => could_not(&mut notes, &plan.table, &e)?,
        };
        done.push(Filled {
            table: plan.table,
            inserted,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        });
    }
    Ok(done)
}

/// Notes that no row went into `table`, with the server's error and the fix.
fn could_not(notes: &mut Vec<String>, table: &str, e: &DbError) -> Result<u64, DbError> {
    if e.is_connection() {
        return Err(e.clone());
    }
    let detail = e
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    notes.insert(
        0,
        format!(
            "could not: {}{detail}; fix: add tests/fixtures/*.sql that inserts rows into {table}",
            e.message
        ),
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(rows: &[&[u8]]) -> TableDigest {
        let mut sum = RowSum::default();
        for r in rows {
            sum.add(r);
        }
        sum.finish()
    }

    #[test]
    fn a_digest_ignores_order_and_counts_duplicates() {
        let a = digest(&[b"1\tx", b"2\ty", b"3\t\\N"]);
        assert_eq!(a, digest(&[b"3\t\\N", b"1\tx", b"2\ty"]));
        assert_eq!(a.rows, 3);
        assert_ne!(a, digest(&[b"1\tx", b"2\ty", b"3\t"]), "NULL is not ''");
        assert_ne!(
            a,
            digest(&[b"1\tx", b"2\tz", b"3\t\\N"]),
            "one value changed"
        );
        let dup = digest(&[b"1\tx", b"2\ty", b"3\t\\N", b"2\ty"]);
        assert_ne!(a, dup);
        assert_eq!(dup.rows, 4);
        // Twice the same pair of rows is not the same as the pair once.
        assert_ne!(digest(&[b"a", b"a"]), digest(&[b"a"]));
        assert_ne!(digest(&[]), digest(&[b""]), "an empty row is a row");
        assert_eq!(digest(&[]).digest.len(), 64);
    }

    #[test]
    fn the_sum_carries_across_limbs() {
        let mut sum = RowSum {
            rows: 0,
            sum: [u64::MAX, u64::MAX, 0, 0],
        };
        // Adding the same hash twice from two starting points that differ
        // only by a carry must stay different.
        let before = sum.clone();
        sum.add(b"x");
        let mut other = RowSum::default();
        other.add(b"x");
        assert_ne!(sum.sum, other.sum);
        assert_ne!(before.finish(), sum.finish());
    }

    #[test]
    fn values_encode_null_apart_from_empty_and_without_ambiguity() {
        let enc = |vals: &[Option<&str>]| {
            let mut row = Vec::new();
            for v in vals {
                push_value(&mut row, v.map(str::as_bytes));
            }
            row
        };
        assert_ne!(enc(&[None]), enc(&[Some("")]));
        assert_ne!(enc(&[Some("ab"), Some("c")]), enc(&[Some("a"), Some("bc")]));
        assert_ne!(enc(&[Some(""), None]), enc(&[None, Some("")]));
    }

    #[test]
    fn lines_are_whole_rows_whatever_the_chunks() {
        let text = b"1\ta\n22\tbb\n\n333\tc\n";
        for cut in 0..text.len() {
            let mut lines = Lines::default();
            let mut seen: Vec<Vec<u8>> = Vec::new();
            let mut push = |r: &[u8]| seen.push(r.to_vec());
            lines.feed(&text[..cut], &mut push);
            lines.feed(&text[cut..], &mut push);
            assert!(lines.is_clean());
            let want: Vec<&[u8]> = vec![b"1\ta", b"22\tbb", b"", b"333\tc"];
            assert_eq!(seen, want, "cut at {cut}");
        }
    }

    #[test]
    fn a_kept_table_brings_its_parents_at_any_depth() {
        let edges = [("c", "b"), ("b", "a"), ("d", "a"), ("a", "a")];
        let tables = ["a", "b", "c", "d", "e"];
        assert_eq!(
            with_parents(&tables, &edges, |t| *t == "c"),
            ["a", "b", "c"]
        );
        assert_eq!(with_parents(&tables, &edges, |t| *t == "e"), ["e"]);
    }

    #[test]
    fn parents_come_before_children_and_cycles_still_end() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = |a: &str, b: &str| (a.to_string(), b.to_string());
        let tables = t(&["a_grandchild", "b_child", "c_parent", "d_alone"]);
        let edges = [
            e("a_grandchild", "b_child"),
            e("b_child", "c_parent"),
            e("c_parent", "c_parent"),
            e("b_child", "not_listed"),
        ];
        assert_eq!(
            parents_first(&tables, &edges),
            t(&["c_parent", "b_child", "a_grandchild", "d_alone"])
        );
        // x ↔ y: both come, x first by name, then z that needs both.
        let tables = t(&["x", "y", "z"]);
        let edges = [e("x", "y"), e("y", "x"), e("z", "x"), e("z", "y")];
        assert_eq!(parents_first(&tables, &edges), t(&["x", "y", "z"]));
    }

    #[test]
    fn foreign_key_values_pick_one_parent_row_for_all_columns() {
        let fk = ForeignKey {
            columns: vec!["a".into(), "b".into()],
            parent: Relation::new(Some("s"), "p"),
            parent_columns: vec!["x".into(), "y".into()],
        };
        let sql = fk.value_sql(1);
        assert!(
            sql.starts_with(
                "(SELECT p.k FROM (SELECT r.\"y\" AS k, row_number() OVER (ORDER BY r.\"x\", r.\"y\") AS n \
                 FROM \"s\".\"p\" AS r WHERE r.\"x\" IS NOT NULL AND r.\"y\" IS NOT NULL) AS p \
                 WHERE p.n = (s.g - 1) % "
            ),
            "{sql}"
        );
    }
}
