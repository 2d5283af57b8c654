use super::Ctx;
use super::output::{Output, millis};
use crate::error::{Error, Result};
use crate::seed::generate;
use crate::seed::{Counts, DEFAULT_RNG_SEED, Options, Progress, Report, seed};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Users to add (each gets a profile when the profiles table exists)
    #[arg(long, default_value_t = Counts::DEFAULT.users)]
    pub(crate) users: u64,
    /// Posts to add, by random users
    #[arg(long, default_value_t = Counts::DEFAULT.posts)]
    pub(crate) posts: u64,
    /// Comments to add, on random posts by random users
    #[arg(long, default_value_t = Counts::DEFAULT.comments)]
    pub(crate) comments: u64,
    /// Multiplies all three counts
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) scale: u64,
    /// Seed of the data generator; the same value gives the same data
    #[arg(long, default_value_t = DEFAULT_RNG_SEED)]
    pub(crate) rng_seed: u64,
    /// Instead of the sample's data: put generated rows into every empty
    /// table of any schema, parents before children, and say per table
    /// what went in (what `keel test` does without fixtures)
    #[arg(long, conflicts_with_all = ["users", "posts", "comments", "scale", "rng_seed"])]
    pub(crate) generate: bool,
    /// Rows per empty table with --generate
    #[arg(long, requires = "generate", default_value_t = generate::DEFAULT_ROWS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rows: u32,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.generate {
        return run_generate(ctx, args.rows).await;
    }
    let scaled = |n: u64, what: &str| {
        n.checked_mul(args.scale).ok_or_else(|| {
            Error::Usage(format!(
                "--{what} {n} × --scale {} is too many rows",
                args.scale
            ))
        })
    };
    let options = Options {
        counts: Counts {
            users: scaled(args.users, "users")?,
            posts: scaled(args.posts, "posts")?,
            comments: scaled(args.comments, "comments")?,
        },
        rng_seed: args.rng_seed,
    };
    let mut db = ctx.connect().await?;
    let mut shown = Shown::new(ctx.out);
    let result = seed(db.as_mut(), &options, &mut |p| shown.update(p)).await;
    shown.finish();
    db.close().await;
    let report = result?;
    if ctx.out.json {
        ctx.json(serde_json::json!({
            "users": report.rows("users"),
            "posts": report.rows("posts"),
            "comments": report.rows("comments"),
            "profiles": report.rows("profiles"),
            "ms": report.elapsed.as_millis() as u64,
            "rows_per_second": report.rows_per_second(),
        }));
    }
    ctx.out.progress(&summary(&report));
    Ok(())
}

/// `keel seed --generate`: what went into each empty table.
async fn run_generate(ctx: &Ctx, rows: u32) -> Result<()> {
    let mut db = ctx.connect().await?;
    let result = generate::generate(db.as_mut(), rows).await;
    db.close().await;
    let filled = result?;
    if ctx.out.json {
        ctx.json(serde_json::json!({ "tables": filled }));
    } else {
        ctx.out.data(&generate::to_text(&filled));
    }
    Ok(())
}

/// Rows per table, then the time and rate, for stderr.
fn summary(report: &Report) -> String {
    let width = report
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for t in &report.tables {
        let ids = if t.rows > 0 {
            format!("  ids {}..{}", t.first_id, t.last_id)
        } else {
            String::new()
        };
        let rows = if t.rows == 1 { "row " } else { "rows" };
        text.push_str(&format!("{:<width$}  {:>9} {rows}{ids}\n", t.table, t.rows));
    }
    text.push_str(&format!(
        "seeded {} rows in {} ({} rows/s)",
        report.total_rows(),
        millis(report.elapsed),
        report.rows_per_second()
    ));
    text
}

/// A bar on a terminal; elsewhere a plain line every few seconds.
struct Shown {
    out: Output,
    bar: Option<ProgressBar>,
    last_line: Instant,
    table_rows: u64,
}

impl Shown {
    fn new(out: Output) -> Shown {
        let bar = (!out.quiet && Output::stderr_is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>9} [{bar:30}] {pos}/{len} rows  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Shown {
            out,
            bar,
            last_line: Instant::now(),
            table_rows: 0,
        }
    }

    fn update(&mut self, p: Progress) {
        match (p, &self.bar) {
            (Progress::Table { table, rows }, Some(bar)) => {
                bar.set_message(table);
                bar.set_length(rows);
                bar.set_position(0);
                bar.reset_eta();
            }
            (Progress::Table { rows, .. }, None) => self.table_rows = rows,
            (Progress::Rows { done, .. }, Some(bar)) => bar.set_position(done),
            (Progress::Rows { table, done }, None) => {
                if self.last_line.elapsed() >= Duration::from_secs(2) {
                    self.last_line = Instant::now();
                    self.out.progress(&format!(
                        "seeding {table}: {done} of {} rows",
                        self.table_rows
                    ));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
