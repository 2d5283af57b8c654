//! `keel resolve`: what an operator found after a non-transactional
//! migration stopped part-way, in either direction.

use super::error::RunError;
use super::runner::{Runner, forget_backfill};
use crate::db::{BackupRef, Database, DbError, TrackingState};
use crate::migration::{Migration, Version};

impl Runner<'_> {
    /// Records what an operator found after a failed non-transactional
    /// migration, whichever way it was going: that it is fully applied, or
    /// fully reverted.
    pub(crate) async fn resolve(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<Resolved, RunError> {
        self.lock().await?;
        let result = self.resolve_locked(files, version, applied).await;
        self.unlock(result).await
    }

    async fn resolve_locked(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<Resolved, RunError> {
        let rows = self.db.tracking_rows().await?;
        let v = version.to_string();
        let Some(mut row) = rows.into_iter().find(|r| r.version == v) else {
            return Err(RunError::Refused {
                message: format!(
                    "migration {version} has no tracking row: there is nothing to resolve"
                ),
                fix: "`keel status` lists the failed migrations".into(),
            });
        };
        if !row.state.is_failed() {
            return Err(RunError::Refused {
                message: format!("migration {version} is {}, not failed", row.state.as_str()),
                fix: "only a failed migration needs resolving; `keel status` shows the states"
                    .into(),
            });
        }
        let reverting = row.state == TrackingState::FailedDown;
        let m = files.iter().find(|m| m.version == version);
        if applied {
            // A failed down's row is still the applied row of its up (when,
            // by whom, which checksum); a failed up's is this resolution.
            if !reverting {
                if let Some(m) = m {
                    row.checksum = m.checksum.clone();
                }
                row.applied_by = self.operator.clone();
            }
            row.state = match m {
                Some(m) if backfill_unfinished(self.db, m).await? => TrackingState::Backfilling,
                _ => TrackingState::Applied,
            };
            row.error = None;
            self.db.write_tracking(&row).await?;
        } else {
            if let Some(m) = m {
                forget_backfill(self.db, m).await?;
            }
            self.db.delete_tracking(&v).await?;
        }
        Ok(Resolved {
            reverting,
            backup: row.backup,
            state: if applied {
                row.state.as_str()
            } else {
                "pending"
            },
        })
    }
}

/// What `keel resolve` recorded.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The migration had stopped part-way through down.sql (not up.sql).
    pub(crate) reverting: bool,
    /// The archive its up took, as its tracking row recorded it.
    pub(crate) backup: Option<BackupRef>,
    /// Its state now: `applied`, `backfilling` or `pending`.
    pub(crate) state: &'static str,
}

/// A migration resolved as applied whose backfill has not finished goes
/// on backfilling (`keel up` resumes it) rather than skip it.
async fn backfill_unfinished(db: &mut dyn Database, m: &Migration) -> Result<bool, DbError> {
    if m.meta.backfill.is_none() {
        return Ok(false);
    }
    crate::backfill::store::ensure(db).await?;
    Ok(crate::backfill::store::load(db, &m.version.to_string())
        .await?
        .is_none_or(|s| s.finished_at.is_none()))
}

/// A migration's files as they were when it was applied (found by the
/// caller, in version control, by the checksum its row keeps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AsApplied<'a> {
    /// Where they were found: a commit.
    pub(crate) commit: &'a str,
    pub(crate) up: &'a str,
    pub(crate) down: Option<&'a str>,
    pub(crate) toml: Option<&'a str>,
}

/// What `keel resolve V --accept-checksum` recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Accepted {
    pub(crate) version: String,
    pub(crate) from: String,
    pub(crate) to: String,
    /// The files that changed: `up.sql (comments and layout)`, `down.sql`…
    pub(crate) changed: Vec<String>,
    pub(crate) commit: String,
    pub(crate) by: String,
    pub(crate) at: String,
    pub(crate) reason: String,
}

/// An accepted checksum's JSON as signed, and its armored signature.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) json: String,
    pub(crate) signature: String,
}

/// The key prefix of accepted checksums in `keel_meta`.
pub(crate) const ACCEPTED: &str = "checksum accepted ";

impl Runner<'_> {
    /// Records that applied migration `m`'s files changed only in ways that
    /// do not change what it did (its up.sql runs the same statements:
    /// only comments and layout differ; down.sql, migration.toml), with
    /// who and why: its row takes today's checksum, and `keel_meta` keeps
    /// the decision. `toml_now` is its migration.toml as it is now.
    ///
    /// `sign` signs the decision's JSON (where signing is set up) before
    /// anything is written, so that a key that does not work changes
    /// nothing; it returns the JSON and its signature for the caller to
    /// keep as a record.
    pub(crate) async fn accept_checksum(
        &mut self,
        m: &Migration,
        applied: AsApplied<'_>,
        (toml_now, reason): (Option<&str>, &str),
        sign: &dyn Fn(&Accepted) -> Result<Option<Signed>, String>,
    ) -> Result<(Accepted, Option<Signed>), RunError> {
        self.lock().await?;
        let result = self
            .accept_locked(m, applied, (toml_now, reason), sign)
            .await;
        self.unlock(result).await
    }

    async fn accept_locked(
        &mut self,
        m: &Migration,
        applied: AsApplied<'_>,
        (toml_now, reason): (Option<&str>, &str),
        sign: &dyn Fn(&Accepted) -> Result<Option<Signed>, String>,
    ) -> Result<(Accepted, Option<Signed>), RunError> {
        let v = m.version.to_string();
        let refused = |message: String, fix: String| RunError::Refused { message, fix };
        let rows = self.db.tracking_rows().await?;
        let Some(mut row) = rows.into_iter().find(|r| r.version == v) else {
            return Err(refused(
                format!(
                    "migration {} is not applied: there is no checksum to accept",
                    m.id()
                ),
                "`keel status` shows it; a pending migration runs as its files are".into(),
            ));
        };
        if !matches!(
            row.state,
            TrackingState::Applied | TrackingState::Backfilling
        ) {
            return Err(refused(
                format!(
                    "migration {} is {}, not applied",
                    m.id(),
                    row.state.as_str()
                ),
                format!("resolve the failure first: `keel resolve {v} --applied` or `--reverted`"),
            ));
        }
        if row.checksum == m.checksum {
            return Err(refused(
                format!("migration {}'s files are as they were applied", m.id()),
                "there is nothing to accept".into(),
            ));
        }
        if crate::migration::checksum(applied.up, applied.down, applied.toml) != row.checksum {
            return Err(refused(
                format!(
                    "the files of commit {} are not those {} was applied with",
                    short(applied.commit),
                    m.id()
                ),
                "run the command again: its tracking row changed meanwhile".into(),
            ));
        }
        if let Some(at) = first_difference(applied.up, &m.up) {
            return Err(refused(
                format!(
                    "{}: up.sql runs other SQL than it did when applied (commit {}): {at}",
                    m.up_path().display(),
                    short(applied.commit)
                ),
                format!(
                    "put up.sql back as it ran (`git checkout {} -- {}`) and write the change as a new migration (`keel new NAME`)",
                    short(applied.commit),
                    m.up_path().display()
                ),
            ));
        }
        let mut changed = Vec::new();
        if applied.up.replace("\r\n", "\n") != m.up.replace("\r\n", "\n") {
            changed.push("up.sql (comments and layout only)".to_string());
        }
        if applied.down != m.down.as_deref() {
            changed.push("down.sql".into());
        }
        if applied.toml != toml_now {
            changed.push("migration.toml".into());
        }
        let accepted = Accepted {
            version: v.clone(),
            from: row.checksum.clone(),
            to: m.checksum.clone(),
            changed,
            commit: applied.commit.to_string(),
            by: self.operator.clone(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            reason: reason.to_string(),
        };
        let signed = sign(&accepted).map_err(|e| {
            refused(
                format!("the decision could not be signed, so nothing was recorded: {e}"),
                "fix the signing key or command in keel.toml (`keel record verify` uses the same), then run this again".into(),
            )
        })?;
        row.checksum = m.checksum.clone();
        let note = serde_json::to_string(&accepted).unwrap_or_default();
        let timeouts = self.settings.project_timeouts();
        self.db.begin(timeouts, true).await?;
        let written = async {
            self.db.write_tracking(&row).await?;
            self.db
                .add_note(&format!("{ACCEPTED}{v} {}", accepted.at), &note)
                .await
        }
        .await;
        match written {
            Ok(()) => self.db.commit().await?,
            Err(e) => {
                let _ = self.db.rollback().await;
                return Err(e.into());
            }
        }
        Ok((accepted, signed))
    }
}

/// The first statement at which two texts of SQL differ, leaving comments,
/// whitespace and line ends aside; `None` when they run the same SQL.
fn first_difference(before: &str, now: &str) -> Option<String> {
    let (a, b) = (crate::sql::split(before), crate::sql::split(now));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x.map(|s| tokens(&s.sql)) != y.map(|s| tokens(&s.sql)) {
            return Some(match (x, y) {
                (_, Some(s)) => format!(
                    "statement {} at line {}: {}",
                    i + 1,
                    s.line,
                    first_line(&s.sql)
                ),
                (Some(s), None) => format!("statement {} is gone: {}", i + 1, first_line(&s.sql)),
                (None, None) => unreachable!("one of them has statement {i}"),
            });
        }
    }
    None
}

/// A statement's tokens without comments and whitespace.
fn tokens(sql: &str) -> Vec<&str> {
    use squawk_lexer::TokenKind;
    let mut out = Vec::new();
    let mut at = 0;
    for t in squawk_lexer::tokenize(sql) {
        let text = &sql[at..at + t.len as usize];
        at += t.len as usize;
        if !matches!(
            t.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. }
        ) {
            out.push(text);
        }
    }
    out
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or_default()
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
