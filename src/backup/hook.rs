//! Backups around plain `up` and `down` (and `execute`): the [`Hook`] the
//! runner calls before each migration's up and inside each migration's down.
//!
//! Before a migration whose analysis says it destroys data: export that
//! data into `backups/<version>_<name>/<stamp>.zip`, verify the archive, and
//! hand its path and SHA-256 to the runner, which records them in the
//! migration's tracking row in the same transaction as the migration. After
//! its down.sql recreated the structure: put exactly that archive back (its
//! SHA-256 checked against the tracking row, its manifest naming this
//! database) in the same transaction, so the down and its data commit
//! together.

use super::{
    BackupError, BackupPlan, Binding, Created, Restored, Target, create, plan_for, restore,
    restore_within,
};
use crate::analysis::analyze::{Analyzer, MigrationAnalysis};
use crate::analysis::reversibility::BackupItem;
use crate::db::{BackupRef, Database, Relation, Timeouts};
use crate::migration::{Migration, Reversibility};
use crate::migrator::{Hook, RunError};
use async_trait::async_trait;
use std::path::{Path, PathBuf};

pub(crate) struct BackupHook<'a> {
    /// The project folder: archives are in its `backups/`, and the tracking
    /// table records their paths relative to it.
    project: PathBuf,
    /// `--env NAME`, or `default`.
    environment: String,
    say: &'a (dyn Fn(&str) + Sync),
    /// An archive the caller made itself (`execute`), for the next up.
    pub(crate) made: Option<Created>,
    /// `keel down --no-restore`: revert without putting data back.
    pub(crate) no_restore: bool,
    /// The backup of a transactional migration, planned before its
    /// transaction opens and taken inside it ([`Hook::within_up`]).
    pending: Option<BackupPlan>,
    /// Archives written, in order.
    pub(crate) created: Vec<Created>,
    /// Archives put back, in order.
    pub(crate) restored: Vec<(PathBuf, Restored)>,
}

impl<'a> BackupHook<'a> {
    /// Backups of the project in `project` (its `backups/` folder) for the
    /// environment `environment`; `say` prints a line.
    pub(crate) fn new(
        project: impl Into<PathBuf>,
        environment: &str,
        say: &'a (dyn Fn(&str) + Sync),
    ) -> BackupHook<'a> {
        BackupHook {
            project: project.into(),
            environment: environment.to_string(),
            say,
            made: None,
            no_restore: false,
            pending: None,
            created: Vec::new(),
            restored: Vec::new(),
        }
    }

    /// `rel` in the project folder, without a leading `./` in messages.
    fn at(&self, rel: &str) -> PathBuf {
        if self.project.as_os_str().is_empty() || self.project == Path::new(".") {
            PathBuf::from(rel)
        } else {
            self.project.join(rel)
        }
    }

    fn backups_dir(&self) -> PathBuf {
        self.at("backups")
    }

    /// A path as the tracking table records it: relative to the project.
    fn recorded(&self, c: &Created) -> BackupRef {
        BackupRef {
            path: c
                .path
                .strip_prefix(&self.project)
                .unwrap_or(&c.path)
                .to_string_lossy()
                .replace('\\', "/"),
            sha256: c.sha256.clone(),
        }
    }
}

fn hook_error(m: &Migration, e: BackupError, outcome: &str) -> RunError {
    if let BackupError::Refused(text) = &e {
        let (message, fix) = text.split_once("\n  fix: ").unwrap_or((text, ""));
        return RunError::Refused {
            message: format!("migration {}: {message}\n  {outcome}", m.id()),
            fix: fix.to_string(),
        };
    }
    RunError::Hook {
        migration: m.id(),
        check_failed: e.is_check_failure(),
        message: format!("{}\n  {outcome}", e.to_string().trim_end()),
    }
}

/// For a non-transactional down that stopped part-way and was then
/// finished by hand (`keel resolve V --reverted`): the data `m` destroyed is
/// not back, because keel restores it after down.sql. What to do about it,
/// in words; `None` when there is nothing to put back (nothing destroyed,
/// or down.sql rebuilds it: `restore_on_down = false`). `recorded` is the
/// archive its tracking row recorded; its path is relative to `project`.
pub(crate) fn unrestored_note(
    project: &Path,
    m: &Migration,
    recorded: Option<&BackupRef>,
) -> Option<String> {
    if !m.meta.restore_on_down {
        return None;
    }
    let why = format!(
        "the data {} destroyed was not put back: keel restores its backup after down.sql, which stopped part-way",
        m.id()
    );
    let at = |rel: &str| {
        if project.as_os_str().is_empty() || project == Path::new(".") {
            PathBuf::from(rel)
        } else {
            project.join(rel)
        }
    };
    match recorded {
        Some(r) => Some(format!(
            "{why}; put it back with `keel restore {}` (SHA-256 {})",
            at(&r.path).display(),
            r.sha256
        )),
        None if !Analyzer::offline(true).analyze(m).backups.is_empty() => Some(format!(
            "{why}, and its tracking row records no backup of it: down.sql brought back the structure, not the data; an archive in {} can be checked with `keel backup verify FILE` and put back with `keel restore FILE`",
            at("backups").join(m.id()).display()
        )),
        None => None,
    }
}

/// Describes an archive in one line: `path (users.bio: 1000 rows)`.
pub(crate) fn summary(path: &Path, tables: &[(String, Vec<String>, u64)]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|(t, cols, rows)| {
            if cols.is_empty() {
                format!("{t}: {rows} rows")
            } else {
                format!("{t}.{}: {rows} rows", cols.join(", "))
            }
        })
        .collect();
    format!("{} ({})", path.display(), parts.join("; "))
}

fn created_summary(c: &Created) -> String {
    let tables: Vec<(String, Vec<String>, u64)> = c
        .manifest
        .files
        .iter()
        .map(|f| {
            let cols = match f.kind {
                super::Kind::Columns => f
                    .columns
                    .iter()
                    .filter(|c| !f.key.contains(c))
                    .cloned()
                    .collect(),
                super::Kind::Table | super::Kind::Rows | super::Kind::Replace => Vec::new(),
            };
            (f.shown(), cols, f.rows)
        })
        .collect();
    summary(&c.path, &tables)
}

/// Why `m` gets no backup although it destroys data: its migration.toml
/// declares it irreversible, so there is no down to put the data back and
/// nothing waits on an archive.
pub(crate) fn declined(m: &Migration) -> Option<String> {
    (m.meta.reversibility == Some(Reversibility::Irreversible)).then(|| {
        format!(
            "{} declares reversibility = \"irreversible\" in its migration.toml: keel takes no backup of what it destroys (take a snapshot first if you may want it back)",
            m.id()
        )
    })
}

/// Creates and verifies the backup `m` needs (`items`, from [`destroyed`]),
/// if it destroys existing data and is not declared irreversible.
pub(crate) async fn back_up(
    db: &mut dyn Database,
    m: &Migration,
    items: &[BackupItem],
    backups_dir: &Path,
    target: &Target,
) -> Result<Option<Created>, BackupError> {
    if items.is_empty() || declined(m).is_some() {
        return Ok(None);
    }
    let Some(plan) = plan_for(db, m, items, target).await? else {
        return Ok(None);
    };
    Ok(Some(create(db, &plan, backups_dir).await?))
}

impl BackupHook<'_> {
    /// The backup `m` takes inside its transaction, resolved against the
    /// live schema before it opens (a catalog query that fails there would
    /// abort the migration's transaction).
    async fn prepare(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        items: &[BackupItem],
    ) -> Result<Option<BackupPlan>, RunError> {
        let planned = async {
            let target = Target::for_backup(db, &self.environment).await?;
            plan_for(db, m, items, &target).await
        }
        .await;
        match planned {
            Ok(plan) => Ok(plan.map(|p| BackupPlan { within: true, ..p })),
            Err(e) => Err(hook_error(
                m,
                e,
                "keel backs up what a migration destroys before it runs; the migration did not run",
            )),
        }
    }
}

/// The recorded archive is not where the tracking row says.
fn missing(m: &Migration, path: &Path, recorded: &BackupRef) -> BackupError {
    BackupError::Refused(format!(
        "the backup {} took before it ran, {}, is missing (SHA-256 {}): reverting now would lose that data for good\n  fix: put the archive back where it was, or revert without the data: `keel down --no-restore`",
        m.id(),
        path.display(),
        recorded.sha256
    ))
}

#[async_trait]
impl Hook for BackupHook<'_> {
    async fn before_up(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        analysis: &MigrationAnalysis,
    ) -> Result<Option<BackupRef>, RunError> {
        self.pending = None;
        if let Some(made) = self.made.take() {
            let r = self.recorded(&made);
            self.created.push(made);
            return Ok(Some(r));
        }
        // The run's one analysis of `m`, made with the server's facts: what
        // `keel plan` lists is what is backed up.
        let items = &analysis.backups;
        if items.is_empty() {
            return Ok(None);
        }
        if let Some(why) = declined(m) {
            (self.say)(&format!("note: {why}"));
            return Ok(None);
        }
        if m.meta.transaction {
            self.pending = self.prepare(db, m, items).await?;
            return Ok(None);
        }
        let made = async {
            let target = Target::for_backup(db, &self.environment).await?;
            back_up(db, m, items, &self.backups_dir(), &target).await
        }
        .await;
        match made {
            Ok(Some(created)) => {
                (self.say)(&format!(
                    "backed up {} before {}; archive verified",
                    created_summary(&created),
                    m.id()
                ));
                let r = self.recorded(&created);
                self.created.push(created);
                Ok(Some(r))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(hook_error(
                m,
                e,
                "keel backs up what a migration destroys before it runs; the migration did not run",
            )),
        }
    }

    fn backs_up_within(&self) -> Option<Vec<Relation>> {
        let plan = self.pending.as_ref()?;
        let mut tables: Vec<Relation> = Vec::new();
        for t in &plan.tables {
            if !tables.contains(&t.table) {
                tables.push(t.table.clone());
            }
        }
        Some(tables)
    }

    async fn within_up(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
    ) -> Result<Option<BackupRef>, RunError> {
        let Some(plan) = &self.pending else {
            return Ok(None);
        };
        let created = create(db, plan, &self.backups_dir()).await.map_err(|e| {
            hook_error(
                m,
                e,
                "keel backs up what a migration destroys inside its transaction, before its statements; the migration was rolled back",
            )
        })?;
        let tables: Vec<String> = self
            .backs_up_within()
            .unwrap_or_default()
            .iter()
            .map(Relation::shown)
            .collect();
        (self.say)(&format!(
            "backed up {} before {}; archive verified (taken in its transaction, {} locked against writes until it commits)",
            created_summary(&created),
            m.id(),
            tables.join(", ")
        ));
        let r = self.recorded(&created);
        self.created.push(created);
        Ok(Some(r))
    }

    fn up_rolled_back(&mut self, m: &Migration) {
        if let Some(c) = self.created.pop() {
            let _ = std::fs::remove_file(&c.path);
            (self.say)(&format!(
                "removed the backup {} made for {}: its transaction rolled back, so nothing it holds was destroyed",
                c.path.display(),
                m.id()
            ));
        }
    }

    async fn before_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        recorded: Option<&BackupRef>,
    ) -> Result<(), RunError> {
        // A transactional down checks inside its transaction (after_down),
        // where a refusal takes everything back.
        let Some(recorded) = recorded.filter(|_| !m.meta.transaction) else {
            return Ok(());
        };
        if !m.meta.restore_on_down || self.no_restore {
            return Ok(());
        }
        let path = self.at(&recorded.path);
        let outcome = format!(
            "the down did not start: {} is still applied and nothing was changed",
            m.id()
        );
        if !path.exists() {
            return Err(hook_error(m, missing(m, &path, recorded), &outcome));
        }
        let checked = async {
            let verified = super::verify(&path)?;
            let database_id = db.database_id().await.map_err(|source| BackupError::Db {
                context: "reading the database's id".into(),
                source: Box::new(source),
            })?;
            let server = db
                .server_identity()
                .await
                .map_err(|source| BackupError::Db {
                    context: "reading the database's identity".into(),
                    source: Box::new(source),
                })?;
            super::check_binding(
                &path,
                &verified.manifest,
                &verified.sha256,
                Binding {
                    database_id: &database_id.unwrap_or_default(),
                    server: server.as_deref(),
                    sha256: Some(&recorded.sha256),
                },
            )
        }
        .await;
        checked.map_err(|e| hook_error(m, e, &outcome))
    }

    async fn after_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        analysis: &MigrationAnalysis,
        recorded: Option<&BackupRef>,
        in_transaction: bool,
    ) -> Result<(), RunError> {
        let Some(recorded) = recorded else {
            if !analysis.backups.is_empty() {
                (self.say)(&format!(
                    "note: {} destroyed data, but its tracking row records no backup (it was applied by an older keel, or what it destroyed did not exist yet): down.sql brings back the structure, not the data; an archive in {} can be checked with `keel backup verify FILE` and put back with `keel restore FILE`",
                    m.id(),
                    self.backups_dir().join(m.id()).display()
                ));
            }
            return Ok(());
        };
        let path = self.at(&recorded.path);
        if !m.meta.restore_on_down {
            (self.say)(&format!(
                "not restoring the backup of {}: its migration.toml sets restore_on_down = false (down.sql rebuilds the data); kept: {}",
                m.id(),
                path.display()
            ));
            return Ok(());
        }
        if self.no_restore {
            (self.say)(&format!(
                "not restoring the backup of {} (--no-restore); it stays in {} (`keel restore {}` puts it back later)",
                m.id(),
                path.display(),
                path.display()
            ));
            return Ok(());
        }
        let outcome = if in_transaction {
            format!("the down was rolled back: {} is still applied", m.id())
        } else {
            // Statement by statement, down.sql has taken effect for good.
            format!(
                "down.sql took effect (transaction = false) but its data is not back: {} is marked failed while reverting; once the data is back (`keel restore {}`), run `keel resolve {} --reverted`",
                m.id(),
                path.display(),
                m.version
            )
        };
        if !path.exists() {
            return Err(hook_error(m, missing(m, &path, recorded), &outcome));
        }
        let database_id = db
            .database_id()
            .await
            .map_err(RunError::Db)?
            .unwrap_or_default();
        let server = db.server_identity().await.map_err(RunError::Db)?;
        let binding = Binding {
            database_id: &database_id,
            server: server.as_deref(),
            sha256: Some(&recorded.sha256),
        };
        let restored = if in_transaction {
            restore_within(db, &path, binding).await
        } else {
            let t = Timeouts {
                lock: std::time::Duration::from_secs(10),
                statement: std::time::Duration::from_secs(3600),
            };
            restore(db, &path, binding, t).await
        }
        .map_err(|e| hook_error(m, e, &outcome))?;
        let tables: Vec<(String, Vec<String>, u64)> = restored
            .tables
            .iter()
            .map(|(t, n)| (t.clone(), Vec::new(), *n))
            .collect();
        let again = if restored.present > 0 {
            format!(
                "; {} deleted row(s) were there again and were left as they are",
                restored.present
            )
        } else {
            String::new()
        };
        (self.say)(&format!("restored {}{again}", summary(&path, &tables)));
        self.restored.push((path, restored));
        Ok(())
    }
}
