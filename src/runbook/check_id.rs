//! The ids of the pre-migration checklist: written into the runbook as
//! `<!-- keel:check ID -->`, read back and ticked by `execute`, and kept in
//! the execution record. The runbook defines the checklist, so its ids live
//! here; `execute` verifies the ones keel can check itself.

use serde::{Serialize, Serializer};
use std::fmt;

/// One checklist item's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum CheckId {
    /// keel exports what the migration destroys and re-reads the archive.
    BackupVerified,
    /// keel runs the migration in a transaction it rolls back.
    DryRunReviewed,
    /// A person ran `keel down` on staging.
    RollbackTested,
    /// keel checks the snapshot file and its SHA-256.
    SnapshotTaken,
    /// A person checked which application code must be live.
    DeploymentPlanReviewed,
    /// An item derived from the migration's actions (`code-stops-using-…`)
    /// or one a person added to the runbook.
    Other(String),
}

impl CheckId {
    /// The id as the runbook and the record spell it.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            CheckId::BackupVerified => "backup-verified",
            CheckId::DryRunReviewed => "dry-run-reviewed",
            CheckId::RollbackTested => "rollback-tested",
            CheckId::SnapshotTaken => "snapshot-taken",
            CheckId::DeploymentPlanReviewed => "deployment-plan-reviewed",
            CheckId::Other(id) => id,
        }
    }

    /// The id spelt `id` in a runbook.
    pub(crate) fn parse(id: &str) -> CheckId {
        [
            CheckId::BackupVerified,
            CheckId::DryRunReviewed,
            CheckId::RollbackTested,
            CheckId::SnapshotTaken,
            CheckId::DeploymentPlanReviewed,
        ]
        .into_iter()
        .find(|known| known.as_str() == id)
        .unwrap_or_else(|| CheckId::Other(id.to_string()))
    }

    /// `execute` checks this item itself instead of asking a person.
    pub(crate) fn verified_by_keel(&self) -> bool {
        matches!(
            self,
            CheckId::BackupVerified | CheckId::DryRunReviewed | CheckId::SnapshotTaken
        )
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_as_written() {
        for id in [
            CheckId::BackupVerified,
            CheckId::DryRunReviewed,
            CheckId::RollbackTested,
            CheckId::SnapshotTaken,
            CheckId::DeploymentPlanReviewed,
            CheckId::Other("code-stops-using-users-email".into()),
        ] {
            assert_eq!(CheckId::parse(id.as_str()), id);
        }
        assert_eq!(CheckId::SnapshotTaken.as_str(), "snapshot-taken");
        assert!(CheckId::BackupVerified.verified_by_keel());
        assert!(!CheckId::RollbackTested.verified_by_keel());
    }
}
