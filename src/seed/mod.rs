//! `keel seed`: loads the sample application's data (users, their profiles,
//! posts, comments) fast and consistently.
//!
//! Rows are generated lazily ([`rows`]) and streamed into
//! [`Database::bulk_insert`] (COPY on PostgreSQL), so memory does not grow
//! with the row count. Everything loads in one transaction: a failure leaves
//! the tables as they were. New ids continue after the current maximum, so
//! seeding twice appends, and foreign keys only point at rows that exist.

mod error;
pub(crate) mod generate;
pub(crate) mod names;
pub(crate) mod rng;
mod rows;
pub(crate) mod text;

pub(crate) use error::SeedError;
pub(crate) use rows::IdPool;

use crate::db::{Database, DbError, Timeouts, Value};
use rng::Rng;
use std::ops::Range;
use std::time::{Duration, Instant};

/// How many rows to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) users: u64,
    pub(crate) posts: u64,
    pub(crate) comments: u64,
}

impl Counts {
    pub(crate) const DEFAULT: Counts = Counts {
        users: 1000,
        posts: 5000,
        comments: 15000,
    };
}

/// The default seed of the generator: the same data on every run.
pub(crate) const DEFAULT_RNG_SEED: u64 = 0x6b65_656c;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) counts: Counts,
    pub(crate) rng_seed: u64,
}

/// What was loaded into one table.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TableLoad {
    pub(crate) table: &'static str,
    pub(crate) rows: u64,
    /// The ids given to the new rows (empty when none were added).
    pub(crate) first_id: i64,
    pub(crate) last_id: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// users, profiles (when that table exists), posts, comments.
    pub(crate) tables: Vec<TableLoad>,
    pub(crate) elapsed: Duration,
}

impl Report {
    pub(crate) fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|t| t.table == table)
            .map_or(0, |t| t.rows)
    }

    pub(crate) fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub(crate) fn rows_per_second(&self) -> u64 {
        (self.total_rows() as f64 / self.elapsed.as_secs_f64().max(1e-6)) as u64
    }
}

/// Progress while loading, for a bar or plain lines.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Progress {
    /// A table starts loading `rows` rows.
    Table { table: &'static str, rows: u64 },
    /// `done` of the table's rows were sent.
    Rows { table: &'static str, done: u64 },
}

/// The columns keel seed fills, per table. The sample migrations create them.
const SCHEMA: [(&str, &[&str]); 3] = [
    ("users", &rows::USER_COLUMNS),
    ("posts", &rows::POST_COLUMNS),
    ("comments", &rows::COMMENT_COLUMNS),
];

/// Adds `options.counts` rows to the sample tables (and one profile per new
/// user when `profiles` exists), all in one transaction.
pub(crate) async fn seed(
    db: &mut dyn Database,
    options: &Options,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Report, SeedError> {
    let started = Instant::now();
    let with_profiles = check_schema(db).await?;
    // statement_timeout 0 is "no limit" in PostgreSQL: a large seed is one
    // long COPY per table. The lock wait stays bounded.
    let timeouts = Timeouts {
        lock: Duration::from_secs(10),
        statement: Duration::ZERO,
    };
    db.begin(timeouts, true).await?;
    let loaded = match load(db, options, with_profiles, on_progress).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = db.rollback().await;
            return Err(e);
        }
    };
    db.commit().await?;
    for load in &loaded {
        if load.rows > 0 {
            db.sync_id_sequence(load.table, "id").await?;
            // Fresh statistics, so plans and estimates see the new size.
            db.execute(&format!(
                "ANALYZE {}",
                crate::db::quote_relation(load.table)
            ))
            .await?;
        }
    }
    Ok(Report {
        tables: loaded,
        elapsed: started.elapsed(),
    })
}

/// Fails with what to do when the sample tables are not there; returns
/// whether `profiles` exists too.
async fn check_schema(db: &mut dyn Database) -> Result<bool, SeedError> {
    let tables = db.tables().await?;
    let missing: Vec<String> = SCHEMA
        .iter()
        .map(|(t, _)| t.to_string())
        .filter(|t| !tables.contains(t))
        .collect();
    if !missing.is_empty() {
        return Err(SeedError::MissingTables(missing));
    }
    let with_profiles = tables.iter().any(|t| t == "profiles");
    let profiles: (&str, &[&str]) = ("profiles", &rows::PROFILE_COLUMNS);
    for (table, wanted) in SCHEMA.iter().chain(with_profiles.then_some(&profiles)) {
        let have: Vec<String> = db
            .columns(table)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|c| !have.iter().any(|h| h == *c))
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(SeedError::MissingColumns {
                table: table.to_string(),
                columns: missing,
            });
        }
    }
    Ok(with_profiles)
}

async fn load(
    db: &mut dyn Database,
    options: &Options,
    with_profiles: bool,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Vec<TableLoad>, SeedError> {
    // Whole seconds: SQLite stores timestamps as text, and nanoseconds there
    // are noise.
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let counts = options.counts;
    let new_users = next_ids(db, "users", counts.users).await?;
    let new_posts = next_ids(db, "posts", counts.posts).await?;
    let new_comments = next_ids(db, "comments", counts.comments).await?;
    // Each table gets its own stream, and a second run (starting at other
    // ids) its own values.
    let stream = |tag: u64, first: i64| Rng::stream(options.rng_seed ^ first as u64, tag);

    let mut loaded = Vec::new();
    let users = rows::users(new_users.clone(), stream(1, new_users.start), now);
    loaded.push(
        insert(
            db,
            "users",
            &rows::USER_COLUMNS,
            new_users.clone(),
            users,
            on_progress,
        )
        .await?,
    );

    if with_profiles {
        let ids = next_ids(db, "profiles", counts.users).await?;
        let profiles = rows::profiles(
            ids.start,
            new_users.clone(),
            stream(2, new_users.start),
            now,
        );
        loaded.push(
            insert(
                db,
                "profiles",
                &rows::PROFILE_COLUMNS,
                ids,
                profiles,
                on_progress,
            )
            .await?,
        );
    }

    let user_pool = pool(db, "users", &new_users).await?;
    if counts.posts > 0 || counts.comments > 0 {
        needs(
            &user_pool,
            "users",
            if counts.posts > 0 {
                "posts"
            } else {
                "comments"
            },
        )?;
    }
    let posts = rows::posts(
        new_posts.clone(),
        user_pool.clone(),
        stream(3, new_posts.start),
        now,
    );
    loaded.push(
        insert(
            db,
            "posts",
            &rows::POST_COLUMNS,
            new_posts.clone(),
            posts,
            on_progress,
        )
        .await?,
    );

    let post_pool = pool(db, "posts", &new_posts).await?;
    if counts.comments > 0 {
        needs(&post_pool, "posts", "comments")?;
    }
    let comments = rows::comments(
        new_comments.clone(),
        post_pool,
        user_pool,
        stream(4, new_comments.start),
        now,
    );
    loaded.push(
        insert(
            db,
            "comments",
            &rows::COMMENT_COLUMNS,
            new_comments,
            comments,
            on_progress,
        )
        .await?,
    );
    Ok(loaded)
}

/// The ids for `count` new rows: right after the table's current maximum.
async fn next_ids(
    db: &mut dyn Database,
    table: &'static str,
    count: u64,
) -> Result<Range<i64>, SeedError> {
    let first = match db.max_int(table, "id").await? {
        Some(max) => max.checked_add(1),
        None => Some(1),
    };
    first
        .and_then(|first| {
            let end = first.checked_add(i64::try_from(count).ok()?)?;
            Some(first..end)
        })
        .ok_or(SeedError::IdsExhausted { table, count })
}

/// The ids that new rows may reference in `table`: all of them when they
/// have no gaps (the usual case, checked with one aggregate), else the new
/// ones, else the existing ids read from the table.
async fn pool(db: &mut dyn Database, table: &str, new: &Range<i64>) -> Result<IdPool, SeedError> {
    let summary = db.summarize(table, "id").await?;
    let bounds = summary
        .min
        .as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .zip(summary.max.as_deref().and_then(|s| s.parse::<i64>().ok()));
    let Some((lo, hi)) = bounds else {
        return Ok(IdPool::Range(new.clone()));
    };
    let without_gaps = i128::from(hi) - i128::from(lo) + 1 == i128::from(summary.rows);
    if without_gaps {
        // `new` starts right after `hi`, so the union is one range.
        return Ok(IdPool::Range(lo..new.end.max(hi + 1)));
    }
    if !new.is_empty() {
        return Ok(IdPool::Range(new.clone()));
    }
    let mut ids = Vec::new();
    db.scan_text(table, "id", &mut |v| {
        if let Some(id) = v.and_then(|v| v.parse::<i64>().ok()) {
            ids.push(id);
        }
    })
    .await?;
    Ok(IdPool::List(ids))
}

fn needs(pool: &IdPool, parent: &'static str, child: &'static str) -> Result<(), SeedError> {
    if pool.is_empty() {
        return Err(SeedError::NothingToReference { parent, child });
    }
    Ok(())
}

async fn insert(
    db: &mut dyn Database,
    table: &'static str,
    columns: &[&str],
    ids: Range<i64>,
    rows: impl Iterator<Item = Vec<Value>> + Send,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<TableLoad, SeedError> {
    let count = ids.end.abs_diff(ids.start);
    if count == 0 {
        return Ok(TableLoad {
            table,
            rows: 0,
            first_id: ids.start,
            last_id: ids.start - 1,
        });
    }
    on_progress(Progress::Table { table, rows: count });
    let mut counted = Counted {
        rows,
        table,
        done: 0,
        unreported: false,
        on_progress,
    };
    let n = db.bulk_insert(table, columns, &mut counted).await?;
    Ok(TableLoad {
        table,
        rows: n,
        first_id: ids.start,
        last_id: ids.end - 1,
    })
}

/// Passes rows through and reports progress every few thousand.
struct Counted<'a, I> {
    rows: I,
    table: &'static str,
    done: u64,
    /// Rows were sent since the last report.
    unreported: bool,
    on_progress: &'a mut (dyn FnMut(Progress) + Send),
}

impl<I: Iterator<Item = Vec<Value>>> Iterator for Counted<'_, I> {
    type Item = Vec<Value>;

    fn next(&mut self) -> Option<Vec<Value>> {
        let row = self.rows.next();
        let report = match row {
            Some(_) => {
                self.done += 1;
                self.done.is_multiple_of(8192)
            }
            // The last, partial stretch, once.
            None => std::mem::take(&mut self.unreported),
        };
        self.unreported = row.is_some() && !report;
        if report {
            (self.on_progress)(Progress::Rows {
                table: self.table,
                done: self.done,
            });
        }
        row
    }
}

impl From<DbError> for SeedError {
    fn from(e: DbError) -> Self {
        SeedError::Db(e)
    }
}
