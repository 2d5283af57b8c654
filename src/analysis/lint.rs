//! `keel lint` inputs: migration folders, migrations folders and plain .sql
//! files, read leniently so that a broken folder is a finding, not a stop.

use super::analyze::{MigrationFiles, PlainPair, analyze, analyze_sql, analyze_sql_pair_from};
use super::finding::{self, Finding, Severity};
use super::layout::Layout;
use super::live::LiveSchema;
use super::operation::Operation;
use super::rules;
use super::schema::Schema;
use super::version::PgVersion;
use crate::migration::Meta;
use crate::migration::bounds::{Bounds, Kind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every finding of one lint run, and how many SQL files were read.
#[derive(Debug, Clone, Default)]
pub(crate) struct LintReport {
    pub(crate) findings: Vec<Finding>,
    pub(crate) files: usize,
}

impl LintReport {
    /// Findings not silenced by `keel:allow`.
    pub(crate) fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_active())
    }

    pub(crate) fn count(&self, severity: Severity) -> usize {
        self.active().filter(|f| f.severity == severity).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LintError {
    #[error(
        "{0}: no such file or folder\n  fix: give a migration folder, a migrations folder or .sql files"
    )]
    NotFound(PathBuf),
    #[error("{0}: cannot read: {1}")]
    Io(PathBuf, std::io::Error),
}

/// What one worker lints on its own: a migration folder, a plain file, or
/// a plain up/down pair.
#[derive(Debug, Clone)]
enum Unit {
    /// A migration folder, and where its files may resolve.
    Folder(PathBuf, Bounds),
    Plain(PathBuf),
    /// `NAME.down.sql` with its `NAME.up.sql`; `report_up` when the up was
    /// given too (otherwise it is read for context only).
    Pair {
        up: PathBuf,
        down: PathBuf,
        report_up: bool,
    },
}

/// Lints every path. Each migration is judged on its own: the migrations
/// before it are assumed applied (lint has no database to ask which are
/// pending), so only tables created in the same migration count as new.
/// A migrations folder is read as a history (see [`histories`]): a
/// migration starts from the tables, column types and indexes the ones
/// before it in the folder left. A plain `NAME.down.sql` beside its
/// `NAME.up.sql` gets the down policy.
///
/// Folders and files are independent, so they are read, parsed and
/// checked on all cores; the findings are sorted at the end, so the output
/// does not depend on the order the workers finish in.
///
/// With `live` (a database was given), rules read the live schema and
/// findings say how big each table is and how long its lock is held.
///
/// A path named here is read whatever it is; what lint finds inside a
/// named folder must resolve inside that folder or inside `bounds` (the
/// project): a symlink out of it, to a system file or in a loop is a
/// finding, not read.
pub(crate) fn lint_paths(
    paths: &[PathBuf],
    (version, layout): (Option<PgVersion>, Option<Layout>),
    live: Option<Arc<LiveSchema>>,
    bounds: &Bounds,
) -> Result<LintReport, LintError> {
    let mut folders: BTreeMap<PathBuf, Bounds> = BTreeMap::new();
    let mut sets: Vec<Vec<PathBuf>> = Vec::new();
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut plain: BTreeSet<PathBuf> = BTreeSet::new();
    let mut report = LintReport::default();
    for path in paths {
        let inside = bounds.clone().with_root(path);
        if path.is_dir() {
            if is_migration(path) {
                sets.push(vec![path.clone()]);
                folders.insert(path.clone(), inside);
            } else {
                let (dirs, sql) = read_migrations_folder(path, &inside, &mut report)?;
                roots.push(path.clone());
                folders.extend(dirs.iter().map(|d| (d.clone(), inside.clone())));
                sets.push(dirs);
                plain.extend(sql);
            }
        } else if path.is_file() {
            match path.parent().filter(|p| is_migration(p)) {
                Some(dir) if is_migration_file(path) => {
                    let inside = bounds.clone().with_root(dir);
                    folders.insert(dir.to_path_buf(), inside);
                }
                _ => {
                    plain.insert(path.clone());
                }
            }
        } else {
            return Err(LintError::NotFound(path.clone()));
        }
    }
    for set in &sets {
        report.findings.extend(rules::file_name::check(set));
    }
    let mut units: Vec<Unit> = folders
        .into_iter()
        .map(|(dir, b)| Unit::Folder(dir, b))
        .collect();
    let mut paired: BTreeSet<PathBuf> = BTreeSet::new();
    for file in &plain {
        if let Some(up) = up_sibling(file).filter(|up| up.is_file()) {
            paired.insert(up.clone());
            units.push(Unit::Pair {
                report_up: plain.contains(&up),
                up,
                down: file.clone(),
            });
        }
    }
    units.extend(
        plain
            .into_iter()
            .filter(|f| !paired.contains(f) && up_sibling(f).is_none_or(|up| !up.is_file()))
            .map(Unit::Plain),
    );
    // With a database, the server says what exists; without, the history.
    let seeds = match live {
        Some(_) => vec![None; units.len()],
        None => histories(&units, &roots, (version, layout)),
    };
    let units: Vec<(Unit, Option<Schema>)> = units.into_iter().zip(seeds).collect();
    for part in run_parallel(&units, |(unit, seed)| {
        lint_unit(unit, (version, layout), live.clone(), seed.clone())
    }) {
        let part = part?;
        report.files += part.files;
        report.findings.extend(part.findings);
    }
    finding::sort(&mut report.findings);
    report.findings.dedup();
    Ok(report)
}

impl Unit {
    /// Where it is: the folder, the file, the up of a pair.
    fn path(&self) -> &Path {
        match self {
            Unit::Folder(dir, _) => dir,
            Unit::Plain(file) => file,
            Unit::Pair { up, .. } => up,
        }
    }
}

/// `NAME.up.sql` for `NAME.down.sql` (also `_down`/`-down`), or None when
/// the file is not a down file.
fn up_sibling(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let lower = name.to_ascii_lowercase();
    for (down, up) in [
        (".down.sql", ".up.sql"),
        ("_down.sql", "_up.sql"),
        ("-down.sql", "-up.sql"),
    ] {
        if lower.ends_with(down) && name.len() > down.len() {
            let stem = &name[..name.len() - down.len()];
            return Some(path.with_file_name(format!("{stem}{up}")));
        }
    }
    None
}

/// Runs `f` on every item on up to all cores; results in item order.
fn run_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Lints one unit, from `seed` (what the migrations before it left) when
/// it has one.
fn lint_unit(
    unit: &Unit,
    (version, layout): (Option<PgVersion>, Option<Layout>),
    live: Option<Arc<LiveSchema>>,
    seed: Option<Schema>,
) -> Result<LintReport, LintError> {
    let mut report = LintReport::default();
    let schema = || {
        seed.clone()
            .unwrap_or_else(|| Schema::with_live(version, live.clone()))
    };
    // An up/down pair is read from the files alone, as before the history.
    let pair_schema = || seed.clone().unwrap_or_else(|| Schema::new(version));
    match unit {
        Unit::Folder(dir, bounds) => lint_folder((dir, layout), bounds, schema(), &mut report)?,
        Unit::Plain(file) => match read(file)? {
            Ok(text) => {
                report.files += 1;
                let path = file.display().to_string();
                let runs = how_it_runs(layout, file, &text);
                report.findings.extend(match &runs.down {
                    // goose and dbmate: the down section gets the down policy.
                    Some(down) => analyze_sql_pair_from(
                        &PlainPair {
                            up_path: &path,
                            up: &runs.up,
                            report_up: true,
                            down_path: &path,
                            down,
                            transaction: (runs.transaction, runs.transaction),
                            layout: Some(runs.layout),
                        },
                        pair_schema(),
                    ),
                    None => analyze_sql(
                        &path,
                        &runs.up,
                        (&mut schema(), runs.transaction, Some(runs.layout)),
                        version,
                    ),
                });
            }
            Err(f) => report.findings.push(f),
        },
        Unit::Pair {
            up,
            down,
            report_up,
        } => {
            let up_text = match read(up)? {
                Ok(text) => text,
                Err(f) => {
                    if *report_up {
                        report.findings.push(f);
                    }
                    String::new()
                }
            };
            let down_text = match read(down)? {
                Ok(text) => text,
                Err(f) => {
                    report.findings.push(f);
                    return Ok(report);
                }
            };
            report.files += 1 + usize::from(*report_up);
            let (up_path, down_path) = (up.display().to_string(), down.display().to_string());
            let (up_runs, down_runs) = (
                how_it_runs(layout, up, &up_text),
                how_it_runs(layout, down, &down_text),
            );
            report.findings.extend(analyze_sql_pair_from(
                &PlainPair {
                    up_path: &up_path,
                    up: &up_text,
                    report_up: *report_up,
                    down_path: &down_path,
                    down: &down_text,
                    transaction: (up_runs.transaction, down_runs.transaction),
                    layout: Some(up_runs.layout),
                },
                pair_schema(),
            ));
        }
    }
    Ok(report)
}

/// How the file's tool runs it: `layout` when given, else the one its
/// name and markers show.
fn how_it_runs(layout: Option<Layout>, path: &Path, text: &str) -> super::layout::Runs {
    let layout = layout.unwrap_or_else(|| super::layout::detect(path, text));
    super::layout::runs(layout, path, text, |sql| {
        super::classify::classify(sql, &mut Schema::new(None), false)
            .ops
            .iter()
            .any(|op| op.no_transaction())
    })
}

/// What each unit of a migrations folder starts from when lint reads the
/// folder as a history: every migration's up is classified alone (on all
/// cores), then, in the folder's order, each one's statements build the
/// schema the next one starts from. So a table an earlier migration
/// created is an existing table with the columns and indexes it gave it:
/// `CREATE INDEX IF NOT EXISTS` of an index it built is a no-op, and a
/// type change is judged from the type it declared. Units outside such a
/// folder (files named one by one) have none.
fn histories(
    units: &[Unit],
    roots: &[PathBuf],
    (version, layout): (Option<PgVersion>, Option<Layout>),
) -> Vec<Option<Schema>> {
    let root_of = |u: &Unit| roots.iter().position(|r| u.path().starts_with(r));
    let ups = run_parallel(units, |u| {
        root_of(u).and_then(|_| up_ops(u, version, layout))
    });
    let mut seeds = vec![None; units.len()];
    for r in 0..roots.len() {
        let mut members: Vec<usize> = (0..units.len())
            .filter(|&i| root_of(&units[i]) == Some(r))
            .collect();
        members.sort_by(|&a, &b| natural_order(units[a].path(), units[b].path()));
        let mut running = Schema::new(version);
        for i in members {
            let Some(ops) = &ups[i] else { continue };
            // The tables it names as the earlier ones left them, none new.
            seeds[i] = Some(running.after_up_for(ops));
            running.begin_migration();
            ops.iter().for_each(|op| running.apply(op));
        }
    }
    seeds
}

/// The unit's up SQL, classified alone; `None` when it cannot be read (the
/// lint of the unit itself reports why).
fn up_ops(
    unit: &Unit,
    version: Option<PgVersion>,
    layout: Option<Layout>,
) -> Option<Vec<Operation>> {
    let text = |p: &Path| std::fs::read_to_string(p).ok();
    let sql = match unit {
        Unit::Folder(dir, bounds) => {
            let up = dir.join("up.sql");
            match bounds.check(&up, Kind::File) {
                Ok(Some(_)) => text(&up)?,
                _ => return None,
            }
        }
        Unit::Plain(file) => {
            let t = text(file)?;
            how_it_runs(layout, file, &t).up
        }
        Unit::Pair { up, .. } => text(up)?,
    };
    Some(super::classify::classify(&sql, &mut Schema::new(version), true).ops)
}

/// Paths in the order their tools apply them: runs of digits compare as
/// numbers (Flyway's `V1_9` before `V1_10`), the rest as text.
fn natural_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            let digit = c.is_ascii_digit();
            let end = rest
                .find(|ch: char| ch.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            out.push((digit, &rest[..end]));
            rest = &rest[end..];
        }
        out
    }
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    for (x, y) in chunks(&a).into_iter().zip(chunks(&b)) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn is_migration(dir: &Path) -> bool {
    ["up.sql", "down.sql", "migration.toml"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

fn is_migration_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    matches!(name, "up.sql" | "down.sql" | "migration.toml")
}

/// Subfolders (migrations) and loose .sql files of a migrations folder;
/// entries that resolve outside `bounds` or cannot be followed become
/// findings.
fn read_migrations_folder(
    dir: &Path,
    bounds: &Bounds,
    report: &mut LintReport,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), LintError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LintError::Io(dir.to_path_buf(), e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(
            entry
                .map_err(|e| LintError::Io(dir.to_path_buf(), e))?
                .path(),
        );
    }
    paths.sort();
    let (mut dirs, mut sql) = (Vec::new(), Vec::new());
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let is_sql = name.ends_with(".sql");
        let kind = if p.is_dir() || !is_sql {
            Kind::Folder
        } else {
            Kind::File
        };
        let link = p
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        if !link && !p.is_dir() && !is_sql {
            continue;
        }
        match bounds.check(&p, kind) {
            // Another tool's folder (Prisma's `NAME/migration.sql`, a
            // Flyway sub-location): its .sql files, not a keel migration.
            Ok(Some(_)) if kind == Kind::Folder && p.is_dir() && !is_migration(&p) => {
                match sql_files(&p) {
                    found if found.is_empty() => dirs.push(p),
                    found => sql.extend(
                        found
                            .into_iter()
                            .filter(|f| matches!(bounds.check(f, Kind::File), Ok(Some(_)))),
                    ),
                }
            }
            Ok(Some(_)) if kind == Kind::Folder => dirs.push(p),
            Ok(Some(_)) => sql.push(p),
            Ok(None) => {}
            // A symlink to some other file beside the migrations: not read.
            Err(_) if link && !is_sql && p.is_file() => {}
            Err(r) => report.findings.push(file_finding(
                rules::syntax_error::RULE.id,
                &p,
                (1, 1),
                &format!("not read: {}", r.message),
                &r.fix,
            )),
        }
    }
    Ok((dirs, sql))
}

/// The .sql files directly in `dir` that another tool's layout names
/// (`migration.sql`, `V1__x.sql`, `1_x.up.sql`…), sorted. A keel folder
/// with a misnamed up.sql has none, and is reported as a keel folder.
fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .filter(|p| super::layout::detect(p, "") != Layout::Plain)
        .collect();
    out.sort();
    out
}

/// Lints a migration folder: keel's, or diesel's (`--layout diesel`, or
/// told by [`super::layout::is_diesel_folder`] when it has no
/// migration.toml), whose fixes are then said in diesel's terms.
fn lint_folder(
    (dir, layout): (&Path, Option<Layout>),
    bounds: &Bounds,
    mut schema: Schema,
    report: &mut LintReport,
) -> Result<(), LintError> {
    let optional = |name: &str, report: &mut LintReport| -> Result<Option<String>, LintError> {
        let path = dir.join(name);
        match bounds.check(&path, Kind::File) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(r) => {
                report.findings.push(file_finding(
                    rules::syntax_error::RULE.id,
                    &path,
                    (1, 1),
                    &format!("not read: {}", r.message),
                    &r.fix,
                ));
                return Ok(None);
            }
        }
        Ok(match read(&path)? {
            Ok(text) => Some(text),
            Err(f) => {
                report.findings.push(f);
                None
            }
        })
    };
    let up = optional("up.sql", report)?;
    let down = optional("down.sql", report)?;
    let toml = optional("migration.toml", report)?;
    let Some(up) = up else {
        // Absent, not merely refused (a refusal is its own finding).
        if dir.join("up.sql").symlink_metadata().is_err() {
            report.findings.push(file_finding(
                rules::file_name::RULE.id,
                &dir.join("up.sql"),
                (1, 1),
                "up.sql is missing: every migration folder needs one, and keel will not load it",
                "add up.sql with the migration's SQL",
            ));
        }
        return Ok(());
    };
    let meta = match toml.as_deref().map(Meta::parse) {
        Some(Ok(meta)) => meta,
        // A diesel folder says it in metadata.toml.
        None => Meta {
            transaction: !optional("metadata.toml", report)?
                .is_some_and(|m| super::layout::diesel_outside_transaction(&m)),
            ..Meta::default()
        },
        Some(Err(errors)) => {
            for e in errors {
                report.findings.push(file_finding(
                    rules::syntax_error::RULE.id,
                    &dir.join("migration.toml"),
                    (e.line, e.column),
                    &format!("migration.toml: {}", e.message),
                    &e.fix,
                ));
            }
            return Ok(());
        }
    };
    report.files += 1 + usize::from(down.is_some());
    let diesel =
        layout == Some(Layout::Diesel) || (toml.is_none() && super::layout::is_diesel_folder(dir));
    let files = MigrationFiles {
        dir,
        up: &up,
        down: down.as_deref(),
        meta: &meta,
        layout: diesel.then_some(Layout::Diesel),
    };
    let version = schema.version;
    let analysis = analyze(&files, &mut schema, version);
    report.findings.extend(analysis.findings);
    Ok(())
}

/// The file's text, or a finding when it is not UTF-8.
fn read(path: &Path) -> Result<Result<String, Finding>, LintError> {
    let bytes = std::fs::read(path).map_err(|e| LintError::Io(path.to_path_buf(), e))?;
    Ok(String::from_utf8(bytes).map_err(|e| {
        file_finding(
            rules::syntax_error::RULE.id,
            path,
            (1, 1),
            &format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
            "save the file as UTF-8",
        )
    }))
}

fn file_finding(
    rule: &'static str,
    path: &Path,
    (line, column): (usize, usize),
    message: &str,
    suggestion: &str,
) -> Finding {
    Finding {
        rule,
        severity: Severity::Error,
        file: path.display().to_string(),
        line,
        column,
        statement: String::new(),
        message: message.to_string(),
        suggestion: suggestion.to_string(),
        allowed: None,
    }
}
