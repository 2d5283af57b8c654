//! Keeping the records folder and the database's `keel_records` in step.
//!
//! A record is written so that a kill at any point leaves something the
//! next run can finish or clean up: the JSON and its signature are made
//! first, then `X.json.sig`, then `X.json.partial`, then the row in
//! `keel_records` (the commit point), then the rename to `X.json`. A later
//! run takes a `.partial` over when the database registered exactly its
//! bytes, and removes it (and an orphaned `.sig`) otherwise.
//!
//! Before anything links to the head, [`check`] compares the folder with
//! the database: every registered record present and unchanged, and no
//! record of the environment that the database did not register.

use super::store::{self, Row};
use super::{ChainLink, Outcome, Record, RecordError, Signer, io, relative, signature_path};
use crate::db::Database;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A record on disk, registered in the database.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) path: PathBuf,
    /// `FILE.json.sig`, when signed.
    pub(crate) signature: Option<PathBuf>,
    pub(crate) sequence: u64,
}

/// A record file of one environment in the records folder.
#[derive(Debug, Clone)]
struct OnDisk {
    /// Relative to the records folder, with `/`.
    rel: String,
    path: PathBuf,
    /// `X.json.partial`: written, maybe registered, not yet renamed.
    partial: bool,
}

/// The folder as checked against the database, for the run's step line.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// The database's newest record of the environment.
    pub(crate) row: Option<Row>,
    /// What was taken over, removed or adopted on the way, for the record.
    pub(crate) notes: Vec<String>,
    pub(crate) records: usize,
}

impl Head {
    pub(crate) fn describe(&self, records_dir: &Path, env: &str) -> String {
        let mut s = match &self.row {
            None => format!("no records of `{env}` yet: this run's start will be #1"),
            Some(r) => format!(
                "{} record(s) of `{env}` match the database's keel_records; head #{} {}",
                self.records,
                r.sequence,
                records_dir.join(&r.path).display()
            ),
        };
        for n in &self.notes {
            s.push_str("; ");
            s.push_str(n);
        }
        s
    }
}

/// Every record file (and leftover `.partial`) of `env` under `records_dir`.
fn files(records_dir: &Path, env: &str) -> Result<Vec<OnDisk>, RecordError> {
    let prefix = format!("{env}-");
    let folders = match std::fs::read_dir(records_dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io(records_dir)(source)),
    };
    let mut out = Vec::new();
    for folder in folders.flatten().filter(|f| f.path().is_dir()) {
        let path = folder.path();
        for file in std::fs::read_dir(&path).map_err(io(&path))?.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let partial = if crate::stamp::parse(&name, &prefix, ".json").is_some() {
                false
            } else if crate::stamp::parse(&name, &prefix, ".json.partial").is_some() {
                true
            } else {
                continue;
            };
            out.push(OnDisk {
                rel: relative(records_dir, &file.path()),
                path: file.path(),
                partial,
            });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn sha_of(path: &Path) -> Result<Option<String>, RecordError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(crate::digest::sha256_bytes(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io(path)(source)),
    }
}

fn final_of(partial: &Path) -> PathBuf {
    let name = partial.file_name().unwrap_or_default().to_string_lossy();
    partial.with_file_name(name.trim_end_matches(".partial"))
}

/// Compares the folder's records of `env` with the database's `rows`:
/// each registered record present with the registered bytes (a `.partial`
/// with those bytes counts: the next write takes it over), and every file
/// registered. With no rows at all, records written by a keel that did not
/// register them yet (format 1) are accepted for adoption.
pub(crate) fn check(records_dir: &Path, env: &str, rows: &[Row]) -> Result<Head, RecordError> {
    let on_disk = files(records_dir, env)?;
    let shown = |rel: &str| records_dir.join(rel).display().to_string();
    let mut problems: Vec<String> = Vec::new();
    let mut fixes: Vec<&str> = Vec::new();
    if rows.is_empty() {
        let finals: Vec<&OnDisk> = on_disk.iter().filter(|f| !f.partial).collect();
        for f in &finals {
            let format = super::read(&f.path).map(|r| r.format).unwrap_or(u32::MAX);
            if format >= 2 {
                problems.push(format!(
                    "{} is a record of `{env}`, but this database holds no records of `{env}`: keel registers every record it writes in the database it ran on, so this one was written for another database (or this database was re-created, or restored from a snapshot older than the record), or it was planted",
                    shown(&f.rel)
                ));
                fixes.push("move the records that do not belong to this database out of records/; if the database was restored from an older snapshot, keep them elsewhere for the audit and start this environment's chain again");
            }
        }
        if problems.is_empty() {
            let notes = if finals.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "{} record(s) of `{env}` written before keel registered records in the database will be adopted",
                    finals.len()
                )]
            };
            return Ok(Head {
                row: None,
                notes,
                records: finals.len(),
            });
        }
        return Err(chain_error(env, &problems, &mut fixes));
    }
    for r in rows {
        let path = records_dir.join(&r.path);
        let partial = crate::stamp::partial(&path);
        let what = format!(
            "record #{} of `{env}` ({}, {}, SHA-256 {})",
            r.sequence,
            r.migration,
            r.outcome,
            &r.sha256[..r.sha256.len().min(16)]
        );
        match sha_of(&path)? {
            Some(sha) if sha == r.sha256 => {}
            Some(sha) => {
                problems.push(format!(
                    "{} changed after keel wrote it: its SHA-256 is {sha}, the database registered {} for {what}",
                    shown(&r.path),
                    r.sha256
                ));
                fixes.push(
                    "restore the record keel wrote from version control (git checkout -- records/)",
                );
            }
            None if sha_of(&partial)?.as_deref() == Some(r.sha256.as_str()) => {}
            None => {
                problems.push(format!(
                    "{} is missing: the database lists it as {what}",
                    shown(&r.path)
                ));
                fixes.push("restore it from version control (git checkout -- records/, or git pull if another machine ran it): keel links the next record to it");
            }
        }
    }
    let last = rows.last().map(|r| r.sequence).unwrap_or(0);
    for f in on_disk.iter().filter(|f| !f.partial) {
        if !rows.iter().any(|r| r.path == f.rel) {
            problems.push(format!(
                "{} is not one of the records keel wrote for `{env}` on this database (it registered #1–#{last}): a record copied from another environment, database or migration, or a planted file",
                shown(&f.rel)
            ));
            fixes.push("move it out of records/ (put a copy back where it came from)");
        }
    }
    if problems.is_empty() {
        return Ok(Head {
            row: rows.last().cloned(),
            notes: Vec::new(),
            records: rows.len(),
        });
    }
    Err(chain_error(env, &problems, &mut fixes))
}

fn chain_error(env: &str, problems: &[String], fixes: &mut Vec<&str>) -> RecordError {
    let mut seen: Vec<&str> = Vec::new();
    fixes.retain(|f| {
        let new = !seen.contains(f);
        seen.push(f);
        new
    });
    RecordError::Chain(format!(
        "the records folder does not match the database's keel_records for `{env}`:\n  {}\n  nothing may link to a chain that was cut or extended by hand\n  fix: {}",
        problems.join("\n  "),
        fixes.join("; ")
    ))
}

/// Under the run lock, before linking: takes over a `.partial` record the
/// database registered (keel was stopped between its commit point and the
/// rename), removes leftovers it never registered, adopts the records of a
/// keel that did not register them yet, and then [`check`]s strictly.
pub(crate) async fn prepare(
    db: &mut dyn Database,
    records_dir: &Path,
    env: &str,
) -> Result<Head, RecordError> {
    store::ensure(db).await?;
    let mut rows = store::rows(db, env).await?;
    let mut notes = take_over(records_dir, env, &rows)?;
    if rows.is_empty() {
        let adopted = adopt(db, records_dir, env).await?;
        if adopted > 0 {
            notes.push(format!(
                "adopted {adopted} earlier record(s) of `{env}` into keel_records: they were written before keel registered records in the database"
            ));
            rows = store::rows(db, env).await?;
        }
    }
    let mut head = check(records_dir, env, &rows)?;
    head.notes.splice(0..0, notes);
    Ok(head)
}

/// Renames or removes this environment's leftover `.partial` records and
/// signatures without a record. Returns what it did, for the record.
fn take_over(records_dir: &Path, env: &str, rows: &[Row]) -> Result<Vec<String>, RecordError> {
    let mut notes = Vec::new();
    for f in files(records_dir, env)?.into_iter().filter(|f| f.partial) {
        let target = final_of(&f.path);
        let rel = relative(records_dir, &target);
        let registered = rows.iter().find(|r| r.path == rel);
        let sha = sha_of(&f.path)?;
        if let Some(r) = registered
            && sha.as_deref() == Some(r.sha256.as_str())
            && !target.exists()
        {
            std::fs::rename(&f.path, &target).map_err(io(&target))?;
            notes.push(format!(
                "took over {} (registered as #{} before keel was stopped)",
                records_dir.join(&rel).display(),
                r.sequence
            ));
        } else {
            std::fs::remove_file(&f.path).map_err(io(&f.path))?;
            notes.push(format!(
                "removed {}: a record keel never registered (it was stopped while writing it)",
                f.path.display()
            ));
        }
    }
    // A signature is written before its record: one without a record (or
    // its partial) belongs to a record that was never registered.
    let prefix = format!("{env}-");
    if let Ok(folders) = std::fs::read_dir(records_dir) {
        for folder in folders.flatten().filter(|f| f.path().is_dir()) {
            for file in std::fs::read_dir(folder.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                let orphan = if crate::stamp::parse(&name, &prefix, ".json.sig").is_some() {
                    let json = file.path().with_file_name(name.trim_end_matches(".sig"));
                    !json.exists() && !crate::stamp::partial(&json).exists()
                } else {
                    crate::stamp::parse(&name, &prefix, ".json.sig.partial").is_some()
                };
                if orphan {
                    std::fs::remove_file(file.path()).map_err(io(&file.path()))?;
                    notes.push(format!(
                        "removed {}: the signature of a record keel never registered",
                        file.path().display()
                    ));
                }
            }
        }
    }
    Ok(notes)
}

/// Registers the folder's records of `env` written by a keel that did not
/// register records (format 1), after checking they form one unbroken
/// chain from #1. Returns how many it registered.
async fn adopt(db: &mut dyn Database, records_dir: &Path, env: &str) -> Result<usize, RecordError> {
    let mut chain: Vec<(OnDisk, Record, String)> = Vec::new();
    for f in files(records_dir, env)?.into_iter().filter(|f| !f.partial) {
        let bytes = std::fs::read(&f.path).map_err(io(&f.path))?;
        let rec = super::read(&f.path)?;
        if rec.format >= 2 || rec.environment != env {
            // check() names it.
            return Ok(0);
        }
        let sha = crate::digest::sha256_bytes(&bytes);
        chain.push((f, rec, sha));
    }
    chain.sort_by_key(|(_, r, _)| r.sequence);
    for (i, (f, rec, _)) in chain.iter().enumerate() {
        let expected_link = i
            .checked_sub(1)
            .map(|j| (chain[j].0.rel.clone(), chain[j].2.clone()));
        let link = rec
            .previous
            .as_ref()
            .map(|l| (l.path.clone(), l.sha256.clone()));
        if rec.sequence != i as u64 + 1 || link != expected_link {
            return Err(RecordError::Chain(format!(
                "{} (#{} of `{env}`) does not continue the chain of the records before it, so keel cannot adopt the records of `{env}` into this database's keel_records\n  fix: `keel record verify {}` says what is wrong; restore the records from version control",
                f.path.display(),
                rec.sequence,
                f.path.display()
            )));
        }
    }
    for (f, rec, sha) in &chain {
        store::insert(
            db,
            &Row {
                environment: env.to_string(),
                sequence: rec.sequence,
                migration: rec.migration.id.clone(),
                path: f.rel.clone(),
                sha256: sha.clone(),
                outcome: rec.outcome.as_str().to_string(),
                written_at: rec.finished_at.to_rfc3339(),
            },
        )
        .await?;
    }
    Ok(chain.len())
}

/// The file the record will be written to: `records_dir/<migration>/<env>-<stamp>.json`.
/// Known before the record is, so the runbook section can name it.
pub(crate) fn reserve(records_dir: &Path, record: &Record) -> Result<PathBuf, RecordError> {
    let env = &record.environment;
    if env.is_empty() || env.contains(['/', '\\']) || env.starts_with('.') {
        return Err(RecordError::Usage(format!(
            "`{env}` cannot name an environment in a record file"
        )));
    }
    let dir = records_dir.join(&record.migration.id);
    crate::files::private_dir(records_dir).map_err(io(records_dir))?;
    crate::files::private_dir(&dir).map_err(io(&dir))?;
    Ok(crate::stamp::unique_path(&dir, &format!("{env}-"), ".json"))
}

/// Links `record` to the database's head of its environment, signs it
/// (when `signer` is given), and writes it to `path` (from [`reserve`]),
/// registering it in `keel_records` before it gets its name. A signing
/// failure leaves nothing behind.
pub(crate) async fn write(
    db: &mut dyn Database,
    records_dir: &Path,
    mut record: Record,
    signer: Option<&Signer>,
    path: &Path,
) -> Result<Written, RecordError> {
    let env = record.environment.clone();
    store::ensure(db).await?;
    let head = store::head(db, &env).await?;
    match &head {
        Some(h) => {
            record.sequence = h.sequence + 1;
            record.previous = Some(ChainLink {
                path: h.path.clone(),
                sha256: h.sha256.clone(),
            });
        }
        None => {
            record.sequence = 1;
            record.previous = None;
        }
    }
    if let Some(s) = signer {
        record.signer = Some(s.principal().to_string());
    }
    let mut json = serde_json::to_vec_pretty(&record)
        .map_err(|e| RecordError::Usage(format!("cannot serialise the record: {e}")))?;
    json.push(b'\n');
    let signature = signer.map(|s| s.sign(&json)).transpose()?;
    let sha256 = crate::digest::sha256_bytes(&json);
    let sig_path = signature_path(path);
    let partial = crate::stamp::partial(path);
    let remove = |paths: &[&Path]| {
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    };
    if let Some(sig) = &signature {
        crate::files::write_private(&sig_path, sig.as_bytes()).map_err(io(&sig_path))?;
    }
    let staged = (|| {
        let mut f = crate::files::create_private(&partial)?;
        f.write_all(&json)?;
        f.sync_all()
    })();
    if let Err(e) = staged {
        remove(&[&partial, &sig_path]);
        return Err(io(&partial)(e));
    }
    let row = Row {
        environment: env.clone(),
        sequence: record.sequence,
        migration: record.migration.id.clone(),
        path: relative(records_dir, path),
        sha256: sha256.clone(),
        outcome: record.outcome.as_str().to_string(),
        written_at: record.finished_at.to_rfc3339(),
    };
    if let Err(e) = store::insert(db, &row).await {
        remove(&[&partial, &sig_path]);
        return Err(RecordError::Chain(format!(
            "{} could not be registered as record #{} of `{env}` in the database's keel_records ({e}); another run may have written #{} first\n  fix: run it again; `keel record verify --all --env {env}` shows the chain",
            path.display(),
            record.sequence,
            record.sequence
        )));
    }
    // Registered: from here the record exists, and a kill before the
    // rename leaves a partial that the next run takes over.
    std::fs::rename(&partial, path).map_err(io(path))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(Written {
        path: path.to_path_buf(),
        signature: signature.map(|_| sig_path),
        sequence: record.sequence,
    })
}

/// The outcome of an environment's newest record, when that record is an
/// intent whose run never wrote its final record.
pub(crate) fn is_open(row: &Row) -> bool {
    row.outcome == Outcome::Started.as_str()
}

/// Each environment whose newest record is an intent without its final
/// record: a run keel was stopped during, or one still running. `rows` are
/// in chain order (as [`store::all`] returns them).
pub(crate) fn interrupted(rows: &[Row]) -> Vec<Row> {
    let mut newest: std::collections::BTreeMap<&str, &Row> = Default::default();
    for r in rows {
        newest.insert(&r.environment, r);
    }
    newest
        .into_values()
        .filter(|r| is_open(r))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(environment: &str, sequence: u64, outcome: Outcome) -> Row {
        Row {
            environment: environment.into(),
            sequence,
            migration: "20260101000001_m1".into(),
            path: format!("20260101000001_m1/{environment}-{sequence}.json"),
            sha256: "0".repeat(64),
            outcome: outcome.as_str().into(),
            written_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn only_an_environment_whose_newest_record_is_an_intent_is_interrupted() {
        let rows = [
            row("prod", 1, Outcome::Started),
            row("prod", 2, Outcome::Applied),
            row("staging", 1, Outcome::Applied),
            row("staging", 2, Outcome::Started),
        ];
        let open: Vec<(String, u64)> = interrupted(&rows)
            .into_iter()
            .map(|r| (r.environment, r.sequence))
            .collect();
        assert_eq!(open, [("staging".to_string(), 2)]);
        assert!(interrupted(&rows[..2]).is_empty());
    }
}
