//! Execution records: what ran, by whom, from which reviewed runbook, with
//! what result. One JSON file per run in
//! `records/<version>_<name>/<env>-<UTC stamp>.json`, hash-chained to the
//! environment's previous record and signed as an OpenSSH signature
//! (namespace `keel-record`) in `FILE.json.sig`, so an auditor can check it
//! with stock OpenSSH:
//!
//! ```text
//! ssh-keygen -Y verify -f allowed_signers -I ops@example.com -n keel-record -s FILE.json.sig < FILE.json
//! ```
//!
//! For `execute`: build a [`Record`] while the run goes (with [`Step`]s),
//! then [`write_signed`] (or [`write_unsigned`] where the environment does
//! not require a signature). [`verify`] is `keel record verify`.

mod allowed;
mod sign;
mod verify;

pub use allowed::{AllowedSigner, AllowedSigners};
pub use sign::{NAMESPACE, Signer};
pub use verify::{Verified, verify};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format of records this keel writes.
pub const FORMAT: u32 = 1;

/// One execution record. `previous` and `sequence` are filled in by
/// [`write_signed`] / [`write_unsigned`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    pub keel_version: String,
    pub environment: String,
    pub migration: MigrationRef,
    /// The rendered runbook the run followed.
    pub runbook: Option<FileRef>,
    /// `user@host` of the operator.
    pub operator: String,
    pub host: String,
    /// The principal whose key signs the record (`signer` in keel.toml).
    pub signer: Option<String>,
    /// The database, password redacted.
    pub database: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub steps: Vec<Step>,
    pub snapshot: Option<FileRef>,
    pub backups: Vec<FileRef>,
    /// 1 for an environment's first record, then one more per record.
    pub sequence: u64,
    /// The environment's previous record: the hash chain.
    pub previous: Option<ChainLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRef {
    /// `<version>_<name>`.
    pub id: String,
    pub version: String,
    pub name: String,
    pub checksum: String,
}

/// A file the run relied on, with its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub sha256: String,
}

/// The previous record: its path relative to the records folder and the
/// SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLink {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The migration ran and every check passed.
    Applied,
    /// A check failed after the migration ran; keel rolled it back.
    RolledBack,
    /// The run stopped with an error.
    Failed,
    /// A guard refused to start the run.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// A stable id, e.g. `snapshot-verified`, `backup`, `migrate`, `smoke`.
    pub name: String,
    pub outcome: StepOutcome,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// What happened, for people: a count, an error, who confirmed.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    Skipped,
    /// Confirmed by the operator rather than checked by keel.
    Confirmed,
}

impl Record {
    /// A record for a run of `migration` on `environment` starting now, with
    /// operator, host and keel version filled in and no steps yet.
    pub fn start(
        environment: &str,
        migration: &crate::migration::Migration,
        database: &str,
    ) -> Record {
        let now = Utc::now();
        let operator = crate::migrator::operator();
        let host = operator
            .split_once('@')
            .map(|(_, h)| h.to_string())
            .unwrap_or_default();
        Record {
            format: FORMAT,
            keel_version: env!("CARGO_PKG_VERSION").to_string(),
            environment: environment.to_string(),
            migration: MigrationRef {
                id: migration.id(),
                version: migration.version.to_string(),
                name: migration.name.clone(),
                checksum: migration.checksum.clone(),
            },
            runbook: None,
            operator,
            host,
            signer: None,
            database: database.to_string(),
            started_at: now,
            finished_at: now,
            outcome: Outcome::Failed,
            steps: Vec::new(),
            snapshot: None,
            backups: Vec::new(),
            sequence: 0,
            previous: None,
        }
    }

    /// Appends a step that started at `started_at` and ends now.
    pub fn step(
        &mut self,
        name: &str,
        outcome: StepOutcome,
        started_at: DateTime<Utc>,
        detail: Option<String>,
    ) {
        let ms = (Utc::now() - started_at).num_milliseconds().max(0) as u64;
        self.steps.push(Step {
            name: name.to_string(),
            outcome,
            started_at,
            duration_ms: ms,
            detail,
        });
    }
}

/// A record on disk.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    /// `FILE.json.sig`, when signed.
    pub signature: Option<PathBuf>,
    /// Hex SHA-256 of the JSON file: what the next record will link to.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Signing is configured wrongly or the key cannot be used.
    #[error("{0}")]
    Signing(String),
    /// A record or its signature failed verification.
    #[error("{0}")]
    Invalid(String),
    /// keel cannot use an input (allowed-signers file, arguments).
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The path of a signature beside a record: `FILE.json.sig`.
pub fn signature_path(record: &Path) -> PathBuf {
    let mut name = record.file_name().unwrap_or_default().to_os_string();
    name.push(".sig");
    record.with_file_name(name)
}

/// Links `record` to its environment's newest record in `records_dir`,
/// signs it, and writes `records_dir/<migration>/<env>-<stamp>.json` and its
/// `.sig`. Signs before writing anything, so a signing failure leaves no
/// file behind.
pub fn write_signed(
    records_dir: &Path,
    record: Record,
    signer: &Signer,
) -> Result<Written, RecordError> {
    write(records_dir, record, Some(signer))
}

/// Like [`write_signed`], for environments that do not require a signature.
pub fn write_unsigned(records_dir: &Path, record: Record) -> Result<Written, RecordError> {
    write(records_dir, record, None)
}

fn write(
    records_dir: &Path,
    mut record: Record,
    signer: Option<&Signer>,
) -> Result<Written, RecordError> {
    let env = record.environment.clone();
    if env.is_empty() || env.contains(['/', '\\']) {
        return Err(RecordError::Usage(format!(
            "`{env}` cannot name an environment in a record file"
        )));
    }
    match previous(records_dir, &env)? {
        Some((path, prev)) => {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            record.sequence = prev.sequence + 1;
            record.previous = Some(ChainLink {
                path: relative(records_dir, &path),
                sha256: crate::digest::sha256_bytes(&bytes),
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
    let dir = records_dir.join(&record.migration.id);
    crate::files::private_dir(records_dir).map_err(io(records_dir))?;
    crate::files::private_dir(&dir).map_err(io(&dir))?;
    let path = crate::stamp::unique_path(&dir, &format!("{env}-"), ".json");
    // The signature first: a record file without its signature would be
    // taken as the chain's head by the next run.
    let sig_path = signature_path(&path);
    if let Some(sig) = &signature {
        write_new(&sig_path, sig.as_bytes())?;
    }
    write_new(&path, &json)?;
    Ok(Written {
        path,
        signature: signature.map(|_| sig_path),
        sha256: crate::digest::sha256_bytes(&json),
    })
}

/// Writes a file that must not exist yet, through a temporary name.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    crate::files::write_private(path, bytes).map_err(io(path))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The newest record of `env` under `records_dir` (every migration's
/// folder), with its parsed content.
pub fn previous(records_dir: &Path, env: &str) -> Result<Option<(PathBuf, Record)>, RecordError> {
    let prefix = format!("{env}-");
    let mut newest: Option<(DateTime<Utc>, PathBuf)> = None;
    let folders = match std::fs::read_dir(records_dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RecordError::Io {
                path: records_dir.to_path_buf(),
                source,
            });
        }
    };
    for folder in folders.flatten().filter(|f| f.path().is_dir()) {
        for file in std::fs::read_dir(folder.path())
            .map_err(io(&folder.path()))?
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Some(key) = crate::stamp::parse(&name, &prefix, ".json")
                && newest.as_ref().is_none_or(|(k, _)| key > *k)
            {
                newest = Some((key, file.path()));
            }
        }
    }
    let Some((_, path)) = newest else {
        return Ok(None);
    };
    let record = read(&path)?;
    Ok(Some((path, record)))
}

/// Reads and parses a record file.
pub fn read(path: &Path) -> Result<Record, RecordError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RecordError::Invalid(format!(
                "record {} does not exist\n  fix: check the path; records are in records/<version>_<name>/<env>-<stamp>.json",
                path.display()
            )));
        }
        Err(source) => return Err(io(path)(source)),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        RecordError::Invalid(format!(
            "{} is not a keel execution record: {e}\n  fix: the file was edited or damaged; recover it from version control",
            path.display()
        ))
    })
}
