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
//! The chain's head is bound to the database the records describe: its
//! `keel_records` table ([`store`]) lists every record keel wrote for it,
//! with the file's SHA-256, and a new record links to the head that table
//! names ([`chain`]). A deleted newest record, a planted file or a record
//! copied from another environment is found before anything links to it.
//!
//! For `execute`: build a [`Record`] while the run goes (with [`Step`]s),
//! [`chain::reserve`] its file name, then [`chain::write`] it (signed when a
//! [`Signer`] is given). [`verify()`] is `keel record verify`.

mod allowed;
pub(crate) mod chain;
mod sign;
pub(crate) mod store;
mod verify;

pub(crate) use allowed::AllowedSigners;
pub(crate) use chain::Written;
pub(crate) use sign::{NAMESPACE, Signer};
pub(crate) use verify::{environments as chain_environments, verify, verify_all};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format of records this keel writes: 2 adds the intent record
/// (`started`), the runbook as the run left it, and the row counts an
/// interrupted run is finished against.
pub(crate) const FORMAT: u32 = 2;

/// One execution record. `previous` and `sequence` are filled in by
/// [`chain::write`] from the database's head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) format: u32,
    pub(crate) keel_version: String,
    pub(crate) environment: String,
    pub(crate) migration: MigrationRef,
    /// The rendered runbook the run followed, and what the run wrote into it.
    pub(crate) runbook: Option<RunbookRef>,
    /// `user@host` of the operator.
    pub(crate) operator: String,
    pub(crate) host: String,
    /// The principal whose key signs the record (`signer` in keel.toml).
    pub(crate) signer: Option<String>,
    /// The database, password redacted.
    pub(crate) database: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
    pub(crate) outcome: Outcome,
    pub(crate) steps: Vec<Step>,
    pub(crate) snapshot: Option<FileRef>,
    pub(crate) backups: Vec<FileRef>,
    /// 1 for an environment's first record, then one more per record.
    pub(crate) sequence: u64,
    /// The environment's previous record: the hash chain.
    pub(crate) previous: Option<ChainLink>,
    /// Rows of the tables the migration must not change, counted before it
    /// ran: what the post-migration checks of an interrupted run compare
    /// against when a later `execute` finishes it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) row_counts: std::collections::BTreeMap<String, i64>,
    /// The sessions the migration waited for when it failed on a lock
    /// timeout (pid, user, application, client, state, transaction start,
    /// query): who to ask, after the fact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) blockers: Vec<crate::db::Blocker>,
}

/// The runbook a run followed. `sha256` is the file as the run read it;
/// `reviewed` is the SHA-256 of its reviewed body (what [`crate::runbook`]
/// binds: everything but ticks and execution records), `ticked` the items
/// this run ticked and `section` the SHA-256 of the execution-record
/// section it appended, so `keel record verify` can tell a runbook edited
/// after the run from one that later runs of other environments appended to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunbookRef {
    pub(crate) path: String,
    pub(crate) sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reviewed: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ticked: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) section: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MigrationRef {
    /// `<version>_<name>`.
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) name: String,
    pub(crate) checksum: String,
}

/// A file the run relied on, with its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileRef {
    pub(crate) path: String,
    pub(crate) sha256: String,
}

/// The previous record: its path relative to the records folder and the
/// SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChainLink {
    pub(crate) path: String,
    pub(crate) sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The migration ran and every check passed.
    Applied,
    /// A check failed after the migration ran; keel rolled it back.
    RolledBack,
    /// The run stopped with an error.
    Failed,
    /// A guard refused to start the run.
    Refused,
    /// The intent record written right before the migration runs: a run
    /// whose newest record is still this one was interrupted (or is running).
    Started,
    /// Written by the next `execute` for a run that stopped before its
    /// migration committed: nothing of it is applied.
    Interrupted,
}

impl Outcome {
    /// The word used in `keel_records` and JSON (`rolled_back`, …).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::RolledBack => "rolled_back",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Started => "started",
            Outcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Step {
    /// A stable id, e.g. `snapshot-verified`, `backup`, `migrate`, `smoke`.
    pub(crate) name: String,
    pub(crate) outcome: StepOutcome,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) duration_ms: u64,
    /// What happened, for people: a count, an error, who confirmed.
    pub(crate) detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepOutcome {
    Ok,
    Failed,
    Skipped,
    /// Confirmed by the operator rather than checked by keel.
    Confirmed,
}

impl Record {
    /// A record for a run of `migration` on `environment` starting now, with
    /// operator, host and keel version filled in and no steps yet.
    pub(crate) fn start(
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
            row_counts: Default::default(),
            blockers: Vec::new(),
        }
    }

    /// Appends a step that started at `started_at` and ends now.
    pub(crate) fn step(
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

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// Signing is configured wrongly or the key cannot be used.
    #[error("{0}")]
    Signing(String),
    /// A record or its signature failed verification.
    #[error("{0}")]
    Invalid(String),
    /// keel cannot use an input (allowed-signers file, arguments).
    #[error("{0}")]
    Usage(String),
    /// The records folder and the database's list of records disagree
    /// (a deleted, changed, copied or planted record): nothing may link to
    /// it until someone looks.
    #[error("{0}")]
    Chain(String),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
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
pub(crate) fn signature_path(record: &Path) -> PathBuf {
    let mut name = record.file_name().unwrap_or_default().to_os_string();
    name.push(".sig");
    record.with_file_name(name)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Reads and parses a record file.
pub(crate) fn read(path: &Path) -> Result<Record, RecordError> {
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
