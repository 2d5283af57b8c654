//! Command-line surface: one file per subcommand, flags and printing only.

mod backfill;
mod backup;
mod calibrate;
mod demo;
mod document;
mod down;
mod dry_run;
mod execute;
mod import;
mod init;
mod inspect;
mod lint;
mod new;
pub(crate) mod output;
mod plan;
mod record;
mod resolve;
mod restore;
mod review;
mod runbook;
mod seed;
mod snapshot;
mod status;
mod test;
mod up;
mod validate;

pub(crate) use document::Document;
pub(crate) use output::Output;

use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::migration::{Migration, load_dir, load_dir_on};
use crate::migrator::{Event, RunSettings};
use crate::target::Target;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "keel",
    version,
    about = "Database migrations safe enough for a Friday: runbooks, guarded runs, signed records"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Global {
    /// Database URL (postgres://… or sqlite://…); overrides --env and DATABASE_URL
    #[arg(long, global = true)]
    pub(crate) database_url: Option<String>,
    /// Environment from keel.toml whose database to use
    #[arg(long, global = true)]
    pub(crate) env: Option<String>,
    /// Migrations folder (default: migrations_dir in keel.toml, else ./migrations)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) migrations: Option<PathBuf>,
    /// Output format (github and sarif: `keel lint` only; junit: `keel test` only)
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Confirm what the environment allows to be confirmed
    #[arg(long, global = true)]
    pub(crate) yes: bool,
    /// How long to wait for another keel run's run lock before giving up
    /// with exit 4 (default: run_lock_wait in keel.toml, else 10m)
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) run_lock_wait: Option<std::time::Duration>,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Print more detail
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    /// GitHub Actions workflow annotations (`keel lint`)
    Github,
    /// SARIF 2.1.0 for code scanning (`keel lint`)
    Sarif,
    /// JUnit XML, one testcase per migration and phase (`keel test`)
    Junit,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create migrations/<version>_NAME/ from a template and print its path
    New(new::Args),
    /// Apply pending migrations in order
    Up(up::Args),
    /// Revert the last applied migration (or N, or down to a version)
    Down(down::Args),
    /// Applied and pending migrations with their state
    Status,
    /// Check applied checksums and run pending migrations in a rolled-back transaction
    Validate,
    /// On a fresh database, every migration up, down to the same schema and rows, and up again
    Test(test::Args),
    /// Record what an operator found after a failed non-transactional migration
    Resolve(resolve::Args),
    /// Write another tool's migrations (sqlx, dbmate, golang-migrate, goose, prisma, diesel) in keel's layout
    Import(import::ImportArgs),
    /// Take over another tool's tracking table: its applied migrations become keel's
    Adopt(import::AdoptArgs),
    /// Record every migration up to VERSION as applied, for a database with no history
    Baseline(import::BaselineArgs),
    /// Schema and data distribution of tables and columns
    Inspect(inspect::Args),
    /// Check migrations or SQL files for locks, rewrites and data loss (exit 3 on errors)
    Lint(lint::Args),
    /// Everything known before running a migration: locks, table sizes, reversibility, backups, findings, estimated time
    Plan(plan::Args),
    /// Measure this server's rewrite, index, scan and backfill speeds for the time estimates
    Calibrate(calibrate::Args),
    /// Run or resume a migration's [backfill] (batched, resumable)
    Backfill(backfill::Args),
    /// Render runbooks/<version>_<name>.md for a migration and print its path
    Runbook(runbook::Args),
    /// Summarize the migrations a branch adds or changes, for its pull request (--post comments there)
    Review(review::Args),
    /// Write CI configuration: `keel init github` writes the pull request workflow
    Init(init::Args),
    /// The guarded run: runbook, checklist, snapshot, backup, migrate, checks, rollback, signed record
    Execute(execute::Args),
    /// Load the sample application's data (users, posts, comments)
    Seed(seed::Args),
    /// The whole story on the embedded SQLite default, in a temporary folder
    Demo(demo::Args),
    /// Check a backup archive against its manifest
    Backup(backup::Args),
    /// Put a backup's data back (column backups update rows by key, table backups insert)
    Restore(restore::Args),
    /// Database snapshots with SHA-256 sidecars: take, verify, prune
    Snapshot(snapshot::Args),
    /// Execution records: verify a record's signature and hash chain
    Record(record::Args),
}

/// What every command gets: the options, keel.toml, and helpers that read
/// the migrations and open the database as the README describes.
pub(crate) struct Ctx {
    pub(crate) global: Global,
    pub(crate) config: Config,
    pub(crate) out: Output,
    /// The run's progress bar, on a terminal only.
    progress: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    /// A backfill's progress: its bar on a terminal, else when the last
    /// plain line was printed.
    backfill: std::sync::Mutex<backfill::Display>,
    /// Every bar is drawn through this, so a backfill's bar and the run's
    /// bar share the terminal.
    bars: indicatif::MultiProgress,
    /// The `--format json` document, printed once when the command ends.
    doc: std::sync::Arc<Document>,
}

impl Ctx {
    pub(crate) fn new(global: Global, doc: std::sync::Arc<Document>) -> Result<Ctx> {
        let config = Config::load(std::path::Path::new("."))?;
        let out = Output::new(global.quiet, global.format == Format::Json);
        Ok(Ctx {
            global,
            config,
            out,
            progress: std::sync::Mutex::new(None),
            backfill: Default::default(),
            bars: indicatif::MultiProgress::new(),
            doc,
        })
    }

    /// The command's JSON document (with `--format json`): printed once,
    /// when the command ends, with the error if it fails after this.
    pub(crate) fn json(&self, body: serde_json::Value) {
        self.doc.set(body);
    }

    /// The migrations this run applied so far, as the JSON documents list them.
    pub(crate) fn applied(&self) -> Vec<serde_json::Value> {
        self.doc.applied_list()
    }

    /// The migrations this run reverted so far.
    pub(crate) fn reverted(&self) -> Vec<serde_json::Value> {
        self.doc.reverted_list()
    }

    /// The migrations folder (see [`Config::migrations_dir`]).
    pub(crate) fn migrations_dir(&self) -> PathBuf {
        self.config
            .migrations_dir(self.global.migrations.as_deref())
    }

    pub(crate) fn migrations(&self) -> Result<Vec<Migration>> {
        Ok(load_dir(&self.migrations_dir(), &self.bounds()?)?)
    }

    /// Where migration files may come from: the project folder (the one
    /// holding keel.toml, which keel reads from the current folder), or
    /// anywhere with `allow_outside_project`.
    pub(crate) fn bounds(&self) -> Result<crate::migration::Bounds> {
        Ok(crate::migration::Bounds::new(
            std::path::Path::new("."),
            self.config.allow_outside_project,
        )?)
    }

    /// The database the flags name, read against keel.toml.
    pub(crate) fn target(&self) -> Target<'_> {
        Target::new(
            &self.config,
            self.global.database_url.as_deref(),
            self.global.env.as_deref(),
        )
    }

    /// The migration files and the target database. On PostgreSQL the
    /// server starts the session (a process of its own) while keel reads the
    /// files: the files are read while the connection waits for its first
    /// answer. An error in the files is the one reported, as if they had
    /// been read first; SQLite, whose connection would create the database
    /// file, is opened only after the files are good.
    /// For a command that works on the migrations (up, down, status,
    /// validate): a missing folder is a mistake (keel run from the wrong
    /// folder, a misspelt `--migrations`), not an empty project.
    pub(crate) fn need_migrations_dir(&self) -> Result<()> {
        let dir = self.migrations_dir();
        if dir.is_dir() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "there is no migrations folder `{}` here ({}); nothing was read or changed\n  fix: run keel in the project folder (the one with keel.toml), pass --migrations DIR, or start one with `keel new NAME`",
            dir.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        )))
    }

    pub(crate) async fn migrations_and_connect(
        &self,
    ) -> Result<(Vec<Migration>, Box<dyn Database>)> {
        if !self.on_server() {
            let files = self.migrations()?;
            return Ok((files, self.connect().await?));
        }
        // join! polls the connection first: it sends its startup message
        // and waits; the files are read in that wait.
        let (db, files) = tokio::join!(self.connect(), async { self.migrations() });
        match (files, db) {
            (Ok(files), Ok(db)) => Ok((files, db)),
            (Err(e), Ok(db)) => {
                db.close().await;
                Err(e)
            }
            (Err(e), Err(_)) | (Ok(_), Err(e)) => Err(e),
        }
    }

    fn on_server(&self) -> bool {
        self.target()
            .url()
            .is_ok_and(|u| u.starts_with("postgres:") || u.starts_with("postgresql:"))
    }

    /// Reads the migration files while `work` (which talks to the
    /// database) runs: on PostgreSQL the files are read on two threads of
    /// their own, so the server's answers and the file system's overlap
    /// (what `status` waits for; the threads cost memory). SQLite,
    /// whose connection would create the database file, is opened only
    /// after the files are good: `work` does not run (`None`) when they are
    /// not.
    pub(crate) async fn migrations_while<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> (Result<Vec<Migration>>, Option<Result<T>>) {
        let bounds = match self.bounds() {
            Ok(bounds) => bounds,
            Err(e) => return (Err(e), None),
        };
        let dir = self.migrations_dir();
        if !self.on_server() {
            let files = load_dir(&dir, &bounds).map_err(Error::from);
            if files.is_err() {
                return (files, None);
            }
            return (files, Some(work.await));
        }
        let reader = std::thread::spawn(move || load_dir_on(&dir, &bounds, 2));
        let done = work.await;
        let files = match reader.join() {
            Ok(files) => files.map_err(Error::from),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (files, Some(done))
    }

    /// Opens the target database; `-v` says which.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Database>> {
        let db = self.target().connect().await?;
        self.out.detail(
            self.global.verbose,
            &format!("database: {} ({})", db.display_url(), db.dialect_name()),
        );
        Ok(db)
    }

    /// The environment's name for backups and records (see [`Target::environment`]).
    pub(crate) fn environment(&self) -> &str {
        self.target().environment()
    }

    /// keel.toml's limits for a run (see [`RunSettings::project`]).
    pub(crate) fn settings(&self) -> RunSettings {
        let c = &self.config;
        let settings = RunSettings::project(c.lock_timeout, c.statement_timeout, c.retries);
        RunSettings {
            run_lock_wait: self
                .global
                .run_lock_wait
                .or(c.run_lock_wait)
                .unwrap_or(settings.run_lock_wait),
            throttle: c.backfill,
            ..settings
        }
    }

    /// Shows the runner's events: a progress bar on a terminal, one plain
    /// line per finished migration otherwise.
    pub(crate) fn print_event(&self, event: Event<'_>) {
        let mut bar = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let finished = matches!(event, Event::Applied(..) | Event::Reverted(..));
        match event {
            Event::Applied(m, took) => self.doc.applied(m, took),
            Event::Reverted(m, took) => self.doc.reverted(m, took),
            Event::SchemaNotRestored(m, diff) => self.doc.not_restored(m, diff),
            _ => {}
        }
        let line = match event {
            Event::Planned(n) => {
                if n > 1 && !self.out.quiet && Output::stderr_is_terminal() {
                    let b = indicatif::ProgressBar::new(n as u64).with_style(
                        indicatif::ProgressStyle::with_template(
                            "{bar:30} {pos}/{len} {elapsed} {wide_msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    *bar = Some(self.bars.add(b));
                }
                return;
            }
            Event::Applying(m) | Event::Reverting(m) => {
                if let Some(b) = bar.as_ref() {
                    b.set_message(m.id());
                }
                return;
            }
            Event::WaitingForLock(holder, wait) => {
                let wait = humantime::format_duration(wait);
                match holder {
                    Some(h) => format!(
                        "waiting for another keel run on this database to finish (for at most {wait}): the run lock is {}",
                        h.to_string().replace('\n', "\n  ")
                    ),
                    None => format!(
                        "waiting for another keel run on this database to finish (for at most {wait})…"
                    ),
                }
            }
            Event::Applied(m, took) => format!("applied  {} ({})", m.id(), output::millis(took)),
            Event::Reverted(m, took) => format!("reverted {} ({})", m.id(), output::millis(took)),
            Event::Retry {
                migration,
                reason,
                attempt,
                retries,
                wait,
            } => format!(
                "{reason} in {}: retry {attempt} of {retries} in {}",
                migration.id(),
                output::millis(wait)
            ),
            // Said once, in the command's error (printed even with -q).
            Event::SchemaNotRestored(..) => return,
            Event::DroppedInvalidIndex(name) => {
                format!("dropped INVALID index {name} left by the failed build")
            }
            Event::RetryingIndex {
                migration,
                index,
                reason,
            } => format!(
                "index {index} of {} was left INVALID ({reason}); dropped it, building it once more",
                migration.id()
            ),
            Event::Backfill(p) => {
                drop(bar);
                backfill::show(self, p);
                return;
            }
        };
        match bar.as_ref() {
            Some(b) => {
                b.println(&line);
                if finished {
                    b.inc(1);
                    if b.position() >= b.length().unwrap_or(0) {
                        b.finish_and_clear();
                    }
                }
            }
            None => self.out.progress(&line),
        }
    }
}

/// Parses the command line, runs it, prints any error, and returns the exit code.
pub fn main() -> u8 {
    // `.env` as sqlx-cli and dbmate read it (this folder or a parent):
    // the real environment wins over it.
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return 0;
            }
            if asks_for_json(std::env::args()) {
                // clap's first paragraph says what is wrong; its usage
                // lines follow a blank line.
                let text = e.to_string();
                let what = text.split("\n\n").next().unwrap_or_default();
                let what = what.strip_prefix("error: ").unwrap_or(what);
                let error = Error::Usage(format!(
                    "{}\n  fix: `keel --help` and `keel COMMAND --help` list the arguments",
                    what.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
                if let Some(doc) = Document::default().finish(&Err(error), true) {
                    output::print_json(&doc);
                }
            }
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let format = cli.global.format;
    let doc = std::sync::Arc::new(Document::default());
    let result = runtime.block_on(run(cli, doc.clone()));
    if let Err(e) = &result {
        let prefix = if output::colour() {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let _ = writeln!(std::io::stderr(), "{prefix}: {}", e.to_string().trim_end());
    }
    // Human output stays on stderr; with --format json stdout gets one
    // document however the command ended.
    if let Some(document) = doc.finish(&result, format == Format::Json) {
        output::print_json(&document);
    }
    match result {
        Ok(()) => 0,
        Err(e) => e.exit_code(),
    }
}

/// Whether arguments clap could not parse still ask for `--format json`:
/// a script that passed a wrong argument gets its error as JSON too.
fn asks_for_json(args: impl Iterator<Item = String>) -> bool {
    let mut previous = String::new();
    for arg in args {
        if arg == "--format=json" || (previous == "--format" && arg == "json") {
            return true;
        }
        previous = arg;
    }
    false
}

pub(crate) async fn run(cli: Cli, doc: std::sync::Arc<Document>) -> Result<()> {
    if let Command::Demo(args) = cli.command {
        if cli.global.format == Format::Json {
            return Err(usage(
                "keel demo tells its story in text and has no JSON document\n  fix: run `keel demo` without --format json; each command it shows takes --format json in your own project",
            ));
        }
        return demo::run(cli.global, args).await;
    }
    if matches!(cli.global.format, Format::Github | Format::Sarif)
        && !matches!(cli.command, Command::Lint(_))
    {
        return Err(usage(
            "--format github and --format sarif are for `keel lint`; this command prints text or json",
        ));
    }
    if cli.global.format == Format::Junit && !matches!(cli.command, Command::Test(_)) {
        return Err(usage(
            "--format junit is for `keel test`; this command prints text or json",
        ));
    }
    let ctx = Ctx::new(cli.global, doc)?;
    match cli.command {
        Command::New(args) => new::run(&ctx, args),
        Command::Up(args) => up::run(&ctx, args).await,
        Command::Down(args) => down::run(&ctx, args).await,
        Command::Status => status::run(&ctx).await,
        Command::Validate => validate::run(&ctx).await,
        Command::Resolve(args) => resolve::run(&ctx, args).await,
        Command::Import(args) => import::import(&ctx, args),
        Command::Adopt(args) => import::adopt_cmd(&ctx, args).await,
        Command::Baseline(args) => import::baseline(&ctx, args).await,
        Command::Inspect(args) => inspect::run(&ctx, args).await,
        Command::Lint(args) => lint::run(&ctx, args).await,
        Command::Test(args) => test::run(&ctx, args).await,
        Command::Seed(args) => seed::run(&ctx, args).await,
        Command::Calibrate(args) => calibrate::run(&ctx, args).await,
        Command::Plan(args) => plan::run(&ctx, args).await,
        Command::Runbook(args) => runbook::run(&ctx, args).await,
        Command::Review(args) => review::run(&ctx, args).await,
        Command::Init(args) => init::run(&ctx, args),
        Command::Execute(args) => execute::run(&ctx, args).await,
        Command::Backup(args) => backup::run(&ctx, args).await,
        Command::Restore(args) => restore::run(&ctx, args).await,
        Command::Snapshot(args) => snapshot::run(&ctx, args).await,
        Command::Record(args) => record::run(&ctx, args).await,
        Command::Backfill(args) => backfill::run(&ctx, args).await,
        Command::Demo(_) => unreachable!("handled above"),
    }
}

/// Turns a `--to`/positional version argument into a clear usage error.
pub(crate) fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}
