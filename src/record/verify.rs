//! `keel record verify`: a record's signature against allowed signers; that
//! it sits where keel wrote it (`records/<its migration>/<its
//! environment>-<stamp>.json`); the hash chain back to the environment's
//! first record; the runbook as the run left it; and, when the
//! environment's database is reachable, that the database registered this
//! record at its sequence and every record after it is in the folder.
//! `--all` walks every environment's chain end to end.

use super::store::{self, Row};
use super::{AllowedSigners, NAMESPACE, Record, RecordError, signature_path};
use crate::db::Database;
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One thing `verify` checked, or says plainly it could not check.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Checked {
    pub(crate) what: String,
    pub(crate) ok: bool,
}

impl Checked {
    fn ok(what: String) -> Checked {
        Checked { what, ok: true }
    }
    fn not(what: String) -> Checked {
        Checked { what, ok: false }
    }
}

/// A record whose signature, place, chain, runbook (and registration) checked out.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) path: PathBuf,
    pub(crate) record: Record,
    pub(crate) signer: String,
    /// `SHA256:…` of the signing key, as ssh-keygen prints it.
    pub(crate) fingerprint: String,
    /// The earlier records the chain runs through, newest first.
    pub(crate) chain: Vec<PathBuf>,
    /// The runbook and database checks, each done or not checked (and why).
    pub(crate) checks: Vec<Checked>,
}

fn invalid(message: String) -> RecordError {
    RecordError::Invalid(message)
}

/// The records folder of a record file: `records/<migration>/<file>.json`.
pub(crate) fn records_dir_of(path: &Path) -> PathBuf {
    path.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Checks `path` (see the module doc). `db` is the record's environment's
/// database, or why it could not be reached.
pub(crate) async fn verify(
    path: &Path,
    allowed: &AllowedSigners,
    db: Result<&mut dyn Database, String>,
) -> Result<Verified, RecordError> {
    let record = super::read(path)?;
    let bytes = std::fs::read(path).map_err(super::io(path))?;
    let (signer, fingerprint) = signature(path, &record, &bytes, allowed)?;
    place(path, &record)?;
    let chain = walk_chain(path, &record)?;
    let records_dir = records_dir_of(path);
    let mut checks = vec![runbook(&records_dir, &record)?];
    checks.push(match db {
        Ok(db) => {
            let rows = store::rows(db, &record.environment).await?;
            let sha = crate::digest::sha256_bytes(&bytes);
            registered(&records_dir, path, &record, &sha, &rows, db.display_url())?
        }
        Err(why) => Checked::not(format!(
            "not checked against the database: {why}; without it keel cannot tell whether a newer record of `{}` was deleted or this one was copied from another database",
            record.environment
        )),
    });
    Ok(Verified {
        path: path.to_path_buf(),
        record,
        signer,
        fingerprint,
        chain,
        checks,
    })
}

/// The SSHSIG in `FILE.json.sig`: `keel-record` namespace, over exactly the
/// file's bytes, by a key `allowed` lists for the record's signer.
fn signature(
    path: &Path,
    record: &Record,
    bytes: &[u8],
    allowed: &AllowedSigners,
) -> Result<(String, String), RecordError> {
    let sig_path = signature_path(path);
    let armored = match std::fs::read_to_string(&sig_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid(format!(
                "record {} is not signed: {} is missing\n  fix: recover the .sig file from version control; an unsigned record proves nothing",
                path.display(),
                sig_path.display()
            )));
        }
        Err(source) => return Err(super::io(&sig_path)(source)),
    };
    let sig = SshSig::from_pem(armored.trim_end()).map_err(|e| {
        invalid(format!(
            "{} is not an OpenSSH signature ({e})\n  fix: recover it from version control",
            sig_path.display()
        ))
    })?;
    if sig.namespace() != NAMESPACE {
        return Err(invalid(format!(
            "{} was made for namespace `{}`, not `{NAMESPACE}`: it is not a record signature",
            sig_path.display(),
            sig.namespace()
        )));
    }
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    key.verify(NAMESPACE, bytes, &sig).map_err(|_| {
        invalid(format!(
            "the signature in {} does not match {}: the record was changed after it was signed\n  fix: do not trust this record; recover the signed version from version control",
            sig_path.display(),
            path.display()
        ))
    })?;
    let signer = record.signer.clone().ok_or_else(|| {
        invalid(format!(
            "record {} names no signer, so no allowed signer can vouch for it",
            path.display()
        ))
    })?;
    allowed
        .find(&signer, sig.public_key(), NAMESPACE)
        .map_err(|why| {
            invalid(format!(
                "record {} is signed by key {fingerprint} for {signer}, which {} does not allow: {why}\n  fix: if this key is {signer}'s, add `{signer} namespaces=\"{NAMESPACE}\" {}` to the allowed-signers file",
                path.display(),
                allowed.path.display(),
                key.to_openssh().unwrap_or_default()
            ))
        })?;
    Ok((signer, fingerprint))
}

/// A record is evidence about its own migration and environment only:
/// keel writes it to `records/<migration>/<environment>-<stamp>.json`, and
/// a copy anywhere else (another environment's name, another migration's
/// folder) must not pass for one.
fn place(path: &Path, record: &Record) -> Result<(), RecordError> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let env = &record.environment;
    if crate::stamp::parse(&name, &format!("{env}-"), ".json").is_none() {
        // `<env>-<16-character stamp>.json`: what the name claims.
        let claimed = name
            .len()
            .checked_sub("-20260101T000000Z.json".len())
            .and_then(|n| name.get(..n))
            .unwrap_or(&name);
        return Err(invalid(format!(
            "{} is record #{} of environment `{env}`, but its file name says `{claimed}`: keel names every record after its environment, so this is a copy under another environment's name and proves nothing about `{claimed}`\n  fix: do not trust it; `{env}`'s genuine record is in records/{}/ named {env}-<stamp>.json",
            path.display(),
            record.sequence,
            record.migration.id
        )));
    }
    if folder != record.migration.id {
        return Err(invalid(format!(
            "{} is a record of migration {}, but it sits in the folder of {folder}: keel writes each record into its own migration's folder, so this is a copy and proves nothing about {folder}\n  fix: do not trust it; the genuine record is in records/{}/",
            path.display(),
            record.migration.id,
            record.migration.id
        )));
    }
    Ok(())
}

/// Follows `previous` links from `record` back to sequence 1.
fn walk_chain(path: &Path, record: &Record) -> Result<Vec<PathBuf>, RecordError> {
    let root = records_dir_of(path);
    let mut chain = Vec::new();
    let mut current = record.clone();
    let mut current_path = path.to_path_buf();
    while let Some(link) = current.previous.clone() {
        let prev_path = root.join(&link.path);
        let bytes = match std::fs::read(&prev_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid(format!(
                    "hash chain broken: {} follows {}, which is missing\n  fix: recover the earlier record from version control",
                    current_path.display(),
                    prev_path.display()
                )));
            }
            Err(source) => return Err(super::io(&prev_path)(source)),
        };
        let sha = crate::digest::sha256_bytes(&bytes);
        if sha != link.sha256 {
            return Err(invalid(format!(
                "hash chain broken: {} changed after {} was written (SHA-256 {sha}, recorded {})\n  fix: the earlier record was edited; recover it from version control",
                prev_path.display(),
                current_path.display(),
                link.sha256
            )));
        }
        let prev: Record = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("{} is not a keel record: {e}", prev_path.display())))?;
        if prev.environment != current.environment || prev.sequence + 1 != current.sequence {
            return Err(invalid(format!(
                "hash chain broken: {} (#{} of {}) does not come right before {} (#{} of {})",
                prev_path.display(),
                prev.sequence,
                prev.environment,
                current_path.display(),
                current.sequence,
                current.environment
            )));
        }
        chain.push(prev_path.clone());
        if chain.len() > 10_000_000 {
            return Err(invalid(format!(
                "hash chain broken: {} links in a loop",
                path.display()
            )));
        }
        current = prev;
        current_path = prev_path;
    }
    if current.sequence != 1 {
        return Err(invalid(format!(
            "hash chain broken: {} is record #{} of {} but links to no earlier record",
            current_path.display(),
            current.sequence,
            current.environment
        )));
    }
    Ok(chain)
}

/// The runbook as the run left it: the reviewed body the record binds,
/// the items it ticked still ticked, and the section it appended there
/// unchanged. Later runs of other environments append their own sections,
/// which this leaves alone.
fn runbook(records_dir: &Path, record: &Record) -> Result<Checked, RecordError> {
    let Some(rb) = &record.runbook else {
        return Ok(Checked::not(
            "runbook not checked: the record names none".into(),
        ));
    };
    let Some(reviewed) = &rb.reviewed else {
        return Ok(Checked::not(format!(
            "runbook not checked: a record of an older keel binds only the file as it was before the run (SHA-256 {})",
            rb.sha256
        )));
    };
    let expected = format!("runbooks/{}.md", record.migration.id);
    if rb.path != expected {
        return Err(invalid(format!(
            "record of {} names the runbook {}, not {expected}: keel writes no such record\n  fix: do not trust it",
            record.migration.id, rb.path
        )));
    }
    let project = records_dir.parent().unwrap_or(Path::new("."));
    let path = if project.as_os_str().is_empty() {
        PathBuf::from(&expected)
    } else {
        project.join(&expected)
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid(format!(
                "the runbook {} that this run followed is missing\n  fix: recover it from version control",
                path.display()
            )));
        }
        Err(source) => return Err(super::io(&path)(source)),
    };
    let edited = |what: String| {
        invalid(format!(
            "the runbook {} was changed after this run ({} of `{}`, #{}): {what}\n  fix: do not trust the runbook as it is; recover the version this run left from version control (git log -p {})",
            path.display(),
            record.outcome.as_str(),
            record.environment,
            record.sequence,
            path.display()
        ))
    };
    let marker = crate::runbook::marker(&text);
    if marker.as_ref().is_none_or(|m| {
        m.migration != record.migration.id || m.checksum != record.migration.checksum
    }) {
        return Err(edited(format!(
            "its first line no longer says it was rendered for {} at checksum {}",
            record.migration.id, record.migration.checksum
        )));
    }
    let body = crate::runbook::binding::reviewed(&text);
    let digest =
        crate::runbook::binding::digest(&record.migration.id, &record.migration.checksum, &body);
    if &digest != reviewed {
        return Err(edited(format!(
            "its reviewed body (SQL, checklist, commands) has SHA-256 {digest}, the record holds {reviewed}"
        )));
    }
    let items = crate::runbook::annotate::checklist(&text);
    // An intent lists what its run meant to tick; the run's final record
    // lists what it did tick (a run that did not leave the migration
    // applied leaves `backup-verified` unticked), and is held to that.
    let ticked: &[String] = if record.outcome == super::Outcome::Started {
        &[]
    } else {
        &rb.ticked
    };
    for id in ticked {
        if !items
            .iter()
            .any(|i| i.checked && i.id.as_deref() == Some(id.as_str()))
        {
            return Err(edited(format!(
                "checklist item `{id}`, which this run ticked, is no longer ticked"
            )));
        }
    }
    if let Some(section) = &rb.section
        && !crate::runbook::binding::sections(&text)
            .iter()
            .any(|s| &crate::runbook::binding::section_digest(s) == section)
    {
        return Err(edited(
            "the execution record this run appended is gone or was edited".into(),
        ));
    }
    Ok(Checked::ok(format!(
        "runbook {}: reviewed body, {} ticked item(s){} as this run left them",
        path.display(),
        ticked.len(),
        if rb.section.is_some() {
            " and its execution record"
        } else {
            ""
        }
    )))
}

/// The database registered exactly this file at its sequence, and every
/// record of the environment it registered is in the folder, unchanged,
/// with nothing of that environment it did not register.
fn registered(
    records_dir: &Path,
    path: &Path,
    record: &Record,
    sha: &str,
    rows: &[Row],
    url: &str,
) -> Result<Checked, RecordError> {
    let env = &record.environment;
    let rel = super::relative(records_dir, path);
    if rows.is_empty() && record.format < 2 {
        return Ok(Checked::not(format!(
            "not checked against {url}: the record was written before keel registered records in the database, and {url} holds none of `{env}` yet (the next `keel execute --env {env}` adopts the chain)"
        )));
    }
    match rows.iter().find(|r| r.sequence == record.sequence) {
        None => {
            return Err(invalid(format!(
                "{} (#{} of `{env}`) is not registered in the keel_records of {url}: keel registers every record in the database it ran on, so this record was not written for this database ({})\n  fix: do not trust it as a record of this database; check --env / --database-url",
                path.display(),
                record.sequence,
                if rows.is_empty() {
                    format!("it holds no records of `{env}`")
                } else {
                    format!("it holds #1–#{}", rows.len())
                }
            )));
        }
        Some(r) if r.sha256 != sha || r.path != rel => {
            return Err(invalid(format!(
                "{} is not the record {url} registered as #{} of `{env}`: that is records/{} with SHA-256 {}, this file has SHA-256 {sha}\n  fix: do not trust this file; recover records/{} from version control",
                path.display(),
                record.sequence,
                r.path,
                r.sha256,
                r.path
            )));
        }
        Some(_) => {}
    }
    let head = super::chain::check(records_dir, env, rows).map_err(|e| invalid(e.to_string()))?;
    let head = head.row.map(|r| r.sequence).unwrap_or(record.sequence);
    Ok(Checked::ok(format!(
        "{url} registered it as #{} of `{env}`; its {} record(s) of `{env}` (head #{head}) are all in {} unchanged, and nothing else is",
        record.sequence,
        rows.len(),
        records_dir.display()
    )))
}

/// One environment's chain as `--all` found it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ChainReport {
    pub(crate) environment: String,
    pub(crate) records: usize,
    pub(crate) problems: Vec<String>,
    pub(crate) checks: Vec<Checked>,
}

/// Every environment named by a record in `records_dir` (by content).
pub(crate) fn environments(records_dir: &Path) -> Vec<String> {
    let mut envs: Vec<String> = all_files(records_dir)
        .iter()
        .filter_map(|p| super::read(p).ok().map(|r| r.environment))
        .collect();
    envs.sort();
    envs.dedup();
    envs
}

fn all_files(records_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(records_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|f| f.path().is_dir())
        .flat_map(|f| std::fs::read_dir(f.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    out
}

/// `keel record verify --all`: every record of every environment (or of
/// the given ones): signature, place, runbook; each chain from #1 to its
/// head with no gap, fork or stray; and each against its database where
/// one is given (`dbs`: per environment, the database or why there is none).
pub(crate) async fn verify_all(
    records_dir: &Path,
    allowed: &AllowedSigners,
    dbs: &mut BTreeMap<String, Result<Box<dyn Database>, String>>,
) -> Result<Vec<ChainReport>, RecordError> {
    let mut by_env: BTreeMap<String, Vec<(PathBuf, Record, String)>> = BTreeMap::new();
    let mut strays = Vec::new();
    for path in all_files(records_dir) {
        let bytes = std::fs::read(&path).map_err(super::io(&path))?;
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) => by_env.entry(r.environment.clone()).or_default().push((
                path,
                r,
                crate::digest::sha256_bytes(&bytes),
            )),
            Err(e) => strays.push(format!("{} is not a keel record: {e}", path.display())),
        }
    }
    let mut reports = Vec::new();
    for (env, slot) in dbs.iter_mut() {
        let mut files = by_env.remove(env).unwrap_or_default();
        files.sort_by_key(|(_, r, _)| r.sequence);
        let mut problems = Vec::new();
        for (path, rec, _) in &files {
            let bytes = std::fs::read(path).map_err(super::io(path))?;
            let one = signature(path, rec, &bytes, allowed)
                .and_then(|_| place(path, rec))
                .and_then(|()| runbook(records_dir, rec));
            if let Err(e) = one {
                problems.push(e.to_string());
            }
        }
        for (i, (path, rec, _)) in files.iter().enumerate() {
            let expected = i.checked_sub(1).map(|j| {
                (
                    super::relative(records_dir, &files[j].0),
                    files[j].2.clone(),
                )
            });
            let link = rec
                .previous
                .as_ref()
                .map(|l| (l.path.clone(), l.sha256.clone()));
            if rec.sequence != i as u64 + 1 {
                problems.push(format!(
                    "{} is #{} of `{env}`, but it is record {} of the chain in the folder: a record is missing before it or a second one claims its number",
                    path.display(),
                    rec.sequence,
                    i + 1
                ));
            } else if link != expected {
                problems.push(format!(
                    "hash chain broken at {} (#{}): it does not link to the record before it",
                    path.display(),
                    rec.sequence
                ));
            }
        }
        let mut checks = Vec::new();
        match slot {
            Ok(db) => {
                let url = db.display_url().to_string();
                let rows = store::rows(db.as_mut(), env).await?;
                match super::chain::check(records_dir, env, &rows) {
                    // check() accepts an empty database only for records an
                    // older keel wrote, before records were registered.
                    Ok(_) if rows.is_empty() && !files.is_empty() => checks.push(Checked::not(format!(
                        "`{env}` not checked against {url}: its records were written before keel registered records in the database (the next `keel execute --env {env}` adopts the chain)"
                    ))),
                    Ok(_) => checks.push(Checked::ok(format!(
                        "{url} registered exactly these {} record(s) of `{env}`",
                        rows.len()
                    ))),
                    Err(e) => problems.push(e.to_string()),
                }
            }
            Err(why) => checks.push(Checked::not(format!(
                "`{env}` not checked against its database: {why}"
            ))),
        }
        reports.push(ChainReport {
            environment: env.clone(),
            records: files.len(),
            problems,
            checks,
        });
    }
    if !strays.is_empty() {
        reports.push(ChainReport {
            environment: String::new(),
            records: 0,
            problems: strays,
            checks: Vec::new(),
        });
    }
    Ok(reports)
}
