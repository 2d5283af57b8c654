//! `keel test`: every migration, on a fresh database, goes up, comes back
//! down to exactly the schema and rows it started from, and goes up again
//! to the same schema.
//!
//! The flow: [`scratch`] makes the database; for each migration [`trip`]
//! puts rows in the tables ([`data`]: the project's fixtures, else rows
//! generated from the catalog), takes the schema's fingerprint and each
//! table's digest, runs up, down and up again through the same runner as
//! `keel up` and `keel down` (so backups are taken and put back, backfills
//! run and are validated), and compares; [`report`] prints the outcome as
//! text, JSON or JUnit.

pub(crate) mod data;
pub(crate) mod report;
pub mod scratch;
pub(crate) mod trip;

use crate::db::{DbError, SchemaDiff};
use crate::migrator::RunError;
use std::time::Duration;

/// What stops `keel test` before it can say anything of the migrations.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The fresh database could not be made.
    #[error("{0}")]
    Setup(String),
    /// A fixture file keel cannot use (named, with the fix).
    #[error("{0}")]
    Fixture(String),
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Error {
        match e {
            RunError::Db(e) => Error::Db(e),
            other => Error::Setup(other.to_string()),
        }
    }
}

/// One step of a migration's round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Phase {
    /// up.sql (and its backup and backfill) ran.
    Up,
    /// down.sql (and the restore) ran.
    Down,
    /// After down, the schema is the one before up.
    Schema,
    /// After down, every table that was there holds the rows it held.
    Data,
    /// up.sql ran again and gave the schema the first up gave.
    UpAgain,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Up => "up",
            Phase::Down => "down",
            Phase::Schema => "schema",
            Phase::Data => "data",
            Phase::UpAgain => "up-again",
        }
    }
}

/// How one phase went.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Verdict {
    Passed {
        detail: String,
    },
    Failed {
        message: String,
        /// The schema's differences, when that is what failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<SchemaDiff>,
    },
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Step {
    pub(crate) phase: Phase,
    #[serde(flatten)]
    pub(crate) verdict: Verdict,
    #[serde(serialize_with = "millis")]
    pub(crate) took: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// One migration's round trip.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Outcome {
    pub(crate) migration: String,
    pub(crate) reversibility: String,
    /// Rows put into tables before it (fixtures and generated), and what
    /// could not be filled.
    pub(crate) rows: Vec<String>,
    pub(crate) steps: Vec<Step>,
}

impl Outcome {
    pub(crate) fn failed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.verdict, Verdict::Failed { .. }))
    }
}
