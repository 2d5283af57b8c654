//! Live mode: what the server says about the tables a migration touches —
//! sizes, current column types, NOT NULL proofs, function volatility, the
//! session TimeZone — and the cost coefficients `keel calibrate` measured
//! there. Loaded once per command, read by classification (to resolve
//! "depends on" claims), by the lint findings (table sizes, lock times) and
//! by the estimates.

use super::estimate::Calibration;
use super::sqltype::SqlType;
use crate::db::{Database, DbError, IndexSize, NotNullCheck, Scope, TableStats};
use std::collections::{BTreeSet, HashMap};

/// The server's facts for one command, keyed by table name (PostgreSQL live
/// mode only).
#[derive(Debug, Clone, Default)]
pub struct LiveSchema {
    /// The session TimeZone keel's own connection gets (the migration runs on one like it).
    pub timezone: Option<String>,
    /// Measured by `keel calibrate`, or the defaults.
    pub calibration: Calibration,
    tables: HashMap<String, LiveTable>,
    functions: crate::db::Volatility,
}

/// One table as the server knows it.
#[derive(Debug, Clone, Default)]
pub struct LiveTable {
    /// Sizes and indexes from the catalog.
    pub stats: TableStats,
    /// Rows now, estimated the way the planner does (see [`estimate_rows`]).
    pub rows: f64,
    /// The table's columns by name, with their current types.
    pub columns: HashMap<String, LiveColumnType>,
    /// `CHECK (c IS NOT NULL)` constraints, which let SET NOT NULL skip its scan.
    pub not_null_checks: Vec<NotNullCheck>,
}

/// A column's type and nullability as the server has them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveColumnType {
    /// The current type, which decides whether a type change rewrites.
    pub ty: SqlType,
    /// Already NOT NULL: SET NOT NULL has nothing to check.
    pub not_null: bool,
}

impl LiveTable {
    /// The table's indexes, which a rewrite rebuilds.
    pub fn indexes(&self) -> &[IndexSize] {
        &self.stats.indexes
    }

    /// `1.2M rows, 180 MB` (the heap and TOAST; indexes not counted).
    pub fn size_text(&self) -> String {
        format!(
            "{} rows, {}",
            human_count(self.rows),
            human_bytes(self.stats.table_bytes as f64)
        )
    }
}

/// The names `sql` may call as functions, into `names`: each word or
/// quoted name right before a `(`, as written and, unquoted, folded to
/// lower case as PostgreSQL does. More than the calls (a table's name
/// before its column list, keywords) costs nothing: the server is asked
/// about these names alone and answers for its functions.
pub fn called_names(sql: &str, names: &mut BTreeSet<String>) {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let (name, quoted, end) = match b[i] {
            b'\'' => {
                // A literal: skip it ('' is a quote inside).
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && !(b[j] == b'"' && b.get(j + 1) != Some(&b'"')) {
                    j += if b[j] == b'"' { 2 } else { 1 };
                }
                (
                    sql[i + 1..j.min(b.len())].replace("\"\"", "\""),
                    true,
                    j + 1,
                )
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let mut j = i;
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'$') || b[j] >= 0x80)
                {
                    j += 1;
                }
                (sql[i..j].to_string(), false, j)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let mut k = end;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if b.get(k) == Some(&b'(') {
            if !quoted {
                names.insert(name.to_lowercase());
            }
            names.insert(name);
        }
        i = end;
    }
}

/// The name the analysis uses for a table: schema-qualified unless `public`.
fn key(schema: &str, name: &str) -> String {
    crate::db::Relation {
        schema: (schema != "public").then(|| schema.to_string()),
        name: name.to_string(),
    }
    .to_string()
}

impl super::analyze::Facts {
    /// What `db` says: its version, and its live schema on PostgreSQL,
    /// of the tables in `scope`.
    pub async fn read(
        db: &mut dyn Database,
        scope: &Scope,
    ) -> Result<super::analyze::Facts, DbError> {
        Self::read_calling(db, scope, scope.functions_named()).await
    }

    /// The facts of a scope of which nothing exists yet (no relation it
    /// names, and no other kind of object): the server's version and a
    /// live schema without tables, asked nothing (`keel test` starts each
    /// migration that creates its tables so, spared six catalog queries).
    pub async fn read_none_exists(db: &mut dyn Database) -> Result<super::analyze::Facts, DbError> {
        let version = db.postgres_version().await?.map(super::PgVersion::from_num);
        let live = version.map(|_| std::sync::Arc::new(LiveSchema::default()));
        Ok(super::analyze::Facts { version, live })
    }

    /// [`Facts::read`] with the volatility of the functions `called`
    /// (`None`: of every function).
    pub async fn read_calling(
        db: &mut dyn Database,
        scope: &Scope,
        called: Option<BTreeSet<String>>,
    ) -> Result<super::analyze::Facts, DbError> {
        let version = db.postgres_version().await?.map(super::PgVersion::from_num);
        let live = match version {
            Some(_) => LiveSchema::load_calling(db, scope, called)
                .await?
                .map(std::sync::Arc::new),
            None => None,
        };
        Ok(super::analyze::Facts { version, live })
    }
}

impl LiveSchema {
    /// Reads the live schema of the tables in `scope` (what a migration
    /// names; the rest cannot matter to its analysis); `None` where the
    /// database has none to offer (SQLite).
    pub async fn load(db: &mut dyn Database, scope: &Scope) -> Result<Option<LiveSchema>, DbError> {
        Self::load_calling(db, scope, scope.functions_named()).await
    }

    /// [`LiveSchema::load`] with the volatility of the functions `called`
    /// (`None`: of every function, thousands of names).
    pub async fn load_calling(
        db: &mut dyn Database,
        scope: &Scope,
        called: Option<BTreeSet<String>>,
    ) -> Result<Option<LiveSchema>, DbError> {
        let Some(stats) = db.table_stats(scope).await? else {
            return Ok(None);
        };
        let mut live = LiveSchema {
            timezone: db.session_timezone().await?,
            calibration: match db.load_calibration().await? {
                Some(json) => Calibration::from_json(&json).unwrap_or_default(),
                None => Calibration::default(),
            },
            ..LiveSchema::default()
        };
        if let Some(bytes) = db.shared_buffers().await? {
            live.calibration.coefficients.cache_bytes = bytes;
        }
        for s in stats {
            live.insert_stats(s);
        }
        for c in db.column_types(scope).await?.unwrap_or_default() {
            if let Some(t) = live.tables.get_mut(&key(&c.schema, &c.table)) {
                let ty = LiveColumnType {
                    ty: SqlType::parse(&c.data_type),
                    not_null: c.not_null,
                };
                t.columns.insert(c.name, ty);
            }
        }
        for c in db.not_null_checks(scope).await?.unwrap_or_default() {
            if let Some(t) = live.tables.get_mut(&key(&c.schema, &c.table)) {
                t.not_null_checks.push(c);
            }
        }
        live.functions = db
            .function_volatility(called.as_ref())
            .await?
            .unwrap_or_default();
        Ok(Some(live))
    }

    /// Every table's statistics, as read.
    pub fn stats(&self) -> impl Iterator<Item = &TableStats> {
        self.tables.values().map(|t| &t.stats)
    }

    /// Adds a table's statistics (what [`load`](Self::load) does for each).
    pub fn insert_stats(&mut self, stats: TableStats) {
        let t = LiveTable {
            rows: estimate_rows(&stats),
            stats,
            ..LiveTable::default()
        };
        self.tables.insert(key(&t.stats.schema, &t.stats.name), t);
    }

    /// A table by the name a migration writes; an unqualified name that
    /// is not in `public` is found in whichever schema has it, if only one.
    pub fn table(&self, name: &str) -> Option<&LiveTable> {
        if let Some(t) = self.tables.get(name) {
            return Some(t);
        }
        let rel = crate::db::Relation::parse(name);
        if rel.schema.is_some() {
            return None;
        }
        let mut found = self.tables.values().filter(|t| t.stats.name == rel.name);
        match (found.next(), found.next()) {
            (Some(t), None) => Some(t),
            _ => None,
        }
    }

    /// A column of a table the migration names; `None` when the server has neither.
    pub fn column(&self, table: &str, column: &str) -> Option<&LiveColumnType> {
        self.table(table)?.columns.get(column)
    }

    /// `pg_proc.provolatile` of a function by name (its most volatile overload).
    pub fn volatility(&self, function: &str) -> Option<char> {
        let name = function.rsplit('.').next().unwrap_or(function);
        self.functions.get(name)
    }

    /// Whether the session TimeZone is UTC in PostgreSQL's sense: a zone
    /// whose offset is always zero, which is when timestamp ↔ timestamptz
    /// skips the rewrite (12+).
    pub fn timezone_is_utc(&self) -> Option<bool> {
        let tz = self.timezone.as_deref()?.to_ascii_lowercase();
        let tz = tz.strip_prefix("etc/").unwrap_or(&tz);
        Some(matches!(
            tz,
            "utc" | "uct" | "gmt" | "gmt0" | "gmt+0" | "gmt-0" | "greenwich" | "universal" | "zulu"
        ))
    }
}

/// Rows in a table now. Like the planner: the density of the last
/// VACUUM/ANALYZE (`reltuples / relpages`) times the pages the heap has
/// now, so a table that grew since is not underestimated; then the
/// statistics system's live count; then the heap size over the row width.
pub fn estimate_rows(s: &TableStats) -> f64 {
    let pages_now = s.heap_bytes as f64 / 8192.0;
    if s.reltuples >= 0.0 && s.relpages > 0 {
        (s.reltuples / s.relpages as f64 * pages_now).round()
    } else if s.live_tuples > 0 {
        s.live_tuples as f64
    } else if s.heap_bytes == 0 {
        0.0
    } else {
        // 24-byte tuple header and a 4-byte line pointer per row; pages ~90% full.
        (s.heap_bytes as f64 * 0.9 / (s.row_width as f64 + 28.0)).round()
    }
}

/// `200`, `45k`, `1.2M`.
pub fn human_count(n: f64) -> String {
    if n < 1_000.0 {
        format!("{n:.0}")
    } else if n < 1_000_000.0 {
        format!("{:.0}k", n / 1_000.0)
    } else if n < 1_000_000_000.0 {
        format!("{:.1}M", n / 1_000_000.0)
    } else {
        format!("{:.1}G", n / 1_000_000_000.0)
    }
}

/// `16 kB`, `180 MB`, `2.1 GB` (PostgreSQL's pg_size_pretty units).
pub fn human_bytes(b: f64) -> String {
    const K: f64 = 1024.0;
    if b < K {
        format!("{b:.0} bytes")
    } else if b < K * K {
        format!("{:.0} kB", b / K)
    } else if b < K * K * K {
        format!("{:.0} MB", b / (K * K))
    } else {
        format!("{:.1} GB", b / (K * K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(reltuples: f64, relpages: i64, live: i64, heap: i64) -> TableStats {
        TableStats {
            reltuples,
            relpages,
            live_tuples: live,
            heap_bytes: heap,
            row_width: 72,
            ..TableStats::default()
        }
    }

    #[test]
    fn called_names_are_the_words_before_a_parenthesis_outside_literals() {
        let mut names = BTreeSet::new();
        called_names(
            "ALTER TABLE t ADD COLUMN a uuid DEFAULT app.New_Id ();\n\
             ALTER TABLE t ADD COLUMN b text DEFAULT \"Odd\"\"Fn\"('not_a_call(');\n\
             CREATE INDEX ON t (lower(é_x(b)));",
            &mut names,
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["New_Id", "Odd\"Fn", "lower", "new_id", "t", "é_x"],
            "a qualified call gives its bare name, as written and folded; \
             a quoted name is kept as written; a literal is no call"
        );
    }

    #[test]
    fn rows_scale_the_last_density_to_the_current_size() {
        // Analysed at 100 pages with 10 000 rows; the heap has doubled since.
        assert_eq!(
            estimate_rows(&stats(10_000.0, 100, 0, 200 * 8192)),
            20_000.0
        );
        // Never analysed (reltuples -1): the statistics system's count.
        assert_eq!(estimate_rows(&stats(-1.0, 0, 5_000, 50 * 8192)), 5_000.0);
        // Nothing counted: heap size over the row width.
        assert_eq!(estimate_rows(&stats(-1.0, 0, 0, 100 * 8192)), 7_373.0);
        assert_eq!(estimate_rows(&stats(-1.0, 0, 0, 0)), 0.0);
    }

    #[test]
    fn sizes_read_like_pg_size_pretty() {
        assert_eq!(human_count(200.0), "200");
        assert_eq!(human_count(45_300.0), "45k");
        assert_eq!(human_count(1_234_567.0), "1.2M");
        assert_eq!(human_bytes(16_384.0), "16 kB");
        assert_eq!(human_bytes(180.0 * 1024.0 * 1024.0), "180 MB");
    }

    #[test]
    fn utc_means_a_zone_that_is_always_utc() {
        let tz = |t: &str| LiveSchema {
            timezone: Some(t.into()),
            ..LiveSchema::default()
        };
        assert_eq!(tz("UTC").timezone_is_utc(), Some(true));
        assert_eq!(tz("Etc/UTC").timezone_is_utc(), Some(true));
        assert_eq!(tz("Europe/London").timezone_is_utc(), Some(false));
        assert_eq!(LiveSchema::default().timezone_is_utc(), None);
    }
}
