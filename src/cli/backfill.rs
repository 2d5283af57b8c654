use super::{Ctx, Output, usage};
use crate::backfill::{Progress, Report};
use crate::error::Result;
use crate::migration::Version;
use crate::migrator::Runner;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The migration's version (or its full <version>_<name> id)
    pub(crate) version: String,
    #[command(flatten)]
    pub(crate) pace: Pace,
}

/// How fast a backfill goes, from the command line: `backfill`, `up` and
/// `execute` take it, so an operator can slow a backfill down (or speed it
/// up on a quiet replica) without editing an applied migration.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct Pace {
    /// Backfill rows per batch (default: batch_size in migration.toml, else 1000)
    #[arg(long, value_name = "N")]
    pub(crate) batch_size: Option<u64>,
    /// Backfill pause between batches in milliseconds (default: delay_ms in migration.toml, else 100)
    #[arg(long, value_name = "N")]
    pub(crate) delay_ms: Option<u64>,
}

impl Pace {
    /// `settings` with these flags over whatever they held.
    pub(crate) fn apply(
        self,
        mut settings: crate::migrator::RunSettings,
    ) -> Result<crate::migrator::RunSettings> {
        if self.batch_size == Some(0) {
            return Err(usage(
                "--batch-size 0: a batch of no rows never gets through the table\n  \
                 fix: give --batch-size 1 or more (default: batch_size in migration.toml, else 1000)",
            ));
        }
        settings.batch_size = self.batch_size.or(settings.batch_size);
        settings.batch_delay = self
            .delay_ms
            .map(Duration::from_millis)
            .or(settings.batch_delay);
        Ok(settings)
    }
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let version: Version = crate::migration::find(&files, &args.version)?.version;
    let settings = args.pace.apply(ctx.settings())?;
    let mut db = ctx.connect().await?;
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings,
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
        alone: false,
    };
    let result = runner.backfill_one(&files, version).await;
    db.close().await;
    let report = result?;
    if ctx.out.json {
        ctx.json(serde_json::json!({
            "version": version.to_string(),
            "state": "applied",
            "report": report,
        }));
    } else if report.is_none() {
        ctx.out.progress(&format!(
            "the backfill of {version} has finished already: the migration is applied"
        ));
    }
    Ok(())
}

/// A backfill's bar (on a terminal) or the time of the last plain line.
#[derive(Default)]
pub(crate) struct Display {
    bar: Option<indicatif::ProgressBar>,
    last_line: Option<Instant>,
    started: Option<(Instant, u64)>,
    skipped_shown: usize,
}

/// Skipped rows printed one by one; the rest are in failures.csv.
const SKIPPED_SHOWN: usize = 10;

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Shows a backfill's progress: a bar with rows done of total, rate and ETA
/// on a terminal; a plain line a second otherwise.
pub(crate) fn show(ctx: &Ctx, p: Progress<'_>) {
    let mut d = ctx.backfill.lock().unwrap_or_else(|e| e.into_inner());
    match p {
        Progress::Started {
            migration,
            total,
            done,
            resumed_after,
        } => {
            let how = match resumed_after {
                Some(key) => format!("resuming after key {key}, {done} of {total} rows done"),
                None => format!("{total} rows"),
            };
            d.start(ctx, total, done);
            d.say(ctx, &format!("backfill {}: {how}", migration.id()));
        }
        Progress::Batch {
            migration,
            done,
            total,
            failures,
            last_key,
            ..
        } => {
            if let Some(line) = d.batch(done, total, failures) {
                ctx.out.progress(&format!(
                    "backfill {}: {line}, last key {last_key}, {failures} skipped",
                    migration.id()
                ));
            }
        }
        Progress::RowFailed {
            migration,
            key,
            error,
        } => {
            d.skipped_shown += 1;
            if d.skipped_shown <= SKIPPED_SHOWN {
                d.say(
                    ctx,
                    &format!("backfill {}: skipped key {key}: {error}", migration.id()),
                );
            } else if d.skipped_shown == SKIPPED_SHOWN + 1 {
                d.say(
                    ctx,
                    &format!(
                        "backfill {}: more rows skipped; all of them go to failures.csv",
                        migration.id()
                    ),
                );
            }
        }
        Progress::LockRetry {
            migration,
            attempt,
            retries,
            wait,
        } => d.say(
            ctx,
            &format!(
                "backfill {}: lock timeout, retry {attempt} of {retries} in {}",
                migration.id(),
                super::output::millis(wait)
            ),
        ),
        Progress::Paused {
            migration,
            reason,
            waited,
        } => d.say(
            ctx,
            &format!(
                "backfill {}: paused{}: {reason}; going on by itself once it clears",
                migration.id(),
                if waited.is_zero() {
                    String::new()
                } else {
                    format!(" for {}", super::output::millis(waited))
                }
            ),
        ),
        Progress::Unthrottled { migration, reason } => {
            d.say(ctx, &format!("backfill {}: {reason}", migration.id()))
        }
        Progress::Validating(migration) => {
            if let Some(bar) = d.bar.take() {
                bar.finish_and_clear();
            }
            d.say(
                ctx,
                &format!("backfill {}: batches done, validating", migration.id()),
            );
        }
        Progress::Finished(report) => {
            for line in report_lines(report) {
                d.say(ctx, &line);
            }
            if ctx.global.verbose {
                d.say(ctx, &statements_line(report));
            }
            *d = Display::default();
        }
    }
}

impl Display {
    /// A line above the bar while there is one, else on stderr.
    fn say(&self, ctx: &Ctx, line: &str) {
        match &self.bar {
            Some(_) => {
                let _ = ctx.bars.println(line);
            }
            None => ctx.out.progress(line),
        }
    }

    /// A backfill begins (or resumes with `done` rows behind it): the bar
    /// on a terminal, the clock for the rate either way.
    fn start(&mut self, ctx: &Ctx, total: u64, done: u64) {
        self.started = Some((Instant::now(), done));
        self.last_line = Some(Instant::now());
        if !ctx.out.quiet && Output::stderr_is_terminal() {
            let bar = indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {human_pos}/{human_len} rows  {per_sec}  ETA {eta}  {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(done);
            bar.reset_eta();
            self.bar = Some(ctx.bars.add(bar));
        }
    }

    /// A batch committed: moves the bar, or, without one and at most once
    /// a [`LINE_EVERY`], returns `done/total rows (N%), R rows/s, ETA T`.
    fn batch(&mut self, done: u64, total: u64, failures: u64) -> Option<String> {
        if let Some(bar) = &self.bar {
            if done > total {
                bar.set_length(done);
            }
            bar.set_position(done);
            if failures > 0 {
                bar.set_message(format!("{failures} skipped"));
            }
            return None;
        }
        if self.last_line.is_some_and(|t| t.elapsed() < LINE_EVERY) {
            return None;
        }
        self.last_line = Some(Instant::now());
        let (since, at_start) = self.started.unwrap_or((Instant::now(), 0));
        let rate = done.saturating_sub(at_start) as f64 / since.elapsed().as_secs_f64().max(1e-3);
        let eta = if rate > 0.0 {
            super::output::millis(Duration::from_secs_f64(
                total.saturating_sub(done) as f64 / rate,
            ))
        } else {
            "?".into()
        };
        Some(format!(
            "{done}/{total} rows ({:.0}%), {:.0} rows/s, ETA {eta}",
            done as f64 * 100.0 / total.max(1) as f64,
            rate
        ))
    }
}

/// What the batches cost in statements (`-v`): a batch some row broke is
/// bisected, so skipped rows cost a few statements each, not the batch.
fn statements_line(r: &Report) -> String {
    format!(
        "backfill {}: this run sent {} statements for {} batches ({} bisected to isolate the rows that broke them, in {} UPDATEs of their parts)",
        r.migration, r.statements, r.batches, r.bisected_batches, r.part_updates
    )
}

/// The end-of-backfill report, for people.
pub(crate) fn report_lines(r: &Report) -> Vec<String> {
    let mut out = vec![format!(
        "backfill {}: {} rows visited, {} updated, {} skipped; this run {} batches of {} in {} ({} rows/s), validation {}",
        r.migration,
        r.rows_done,
        r.rows_updated,
        r.failures.len(),
        r.batches,
        r.batch_size,
        super::output::millis(r.elapsed),
        r.rows_per_second(),
        super::output::millis(r.validation_elapsed),
    )];
    if let Some(line) = r.pauses_line() {
        out.push(format!("  {line}"));
    }
    out.extend(r.validation.lines().into_iter().map(|l| format!("  {l}")));
    if let Some(csv) = &r.failures_csv {
        out.push(format!(
            "  FAIL {} row(s) skipped: key and error in {}",
            r.failures.len(),
            csv.display()
        ));
    }
    out
}
