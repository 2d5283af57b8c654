//! The data the migration destroys, exported and re-read against its
//! manifest before it runs. The same analysis (and server facts) `keel
//! plan` shows decides what is backed up.

use crate::backup::{Created, Kind, Target};
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::execute::{ExecuteError, at, file_ref};
use crate::runbook::check_id::CheckId;
use async_trait::async_trait;

pub(crate) struct Backup;

#[async_trait(?Send)]
impl Step for Backup {
    fn id(&self) -> StepId {
        StepId::Backup
    }

    fn about(&self) -> &'static str {
        "what the migration destroys is in a verified archive"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let m = cx.migration();
        let project = &cx.request.project;
        if let Some(why) = crate::backup::declined(m)
            && !cx.analysis.backups.is_empty()
        {
            return Ok(Done::skipped(why));
        }
        if m.meta.transaction && !cx.analysis.backups.is_empty() {
            return planned(cx).await;
        }
        let made = async {
            let target = Target::for_backup(cx.db, cx.request.env_name).await?;
            crate::backup::back_up(
                cx.db,
                m,
                &cx.analysis.backups,
                &at(project, "backups"),
                &target,
            )
            .await
        }
        .await;
        let created = match made {
            Ok(c) => c,
            Err(e) => {
                return Ok(Done::failed(e.to_string()).stop(format!(
                    "the backup before {} failed, so the migration did not run; nothing was changed\n  {e}",
                    m.id()
                )));
            }
        };
        if cx.backup_item {
            cx.tick.push(CheckId::BackupVerified.to_string());
        }
        let Some(c) = created else {
            return Ok(Done::skipped(
                "the migration destroys no existing data: nothing to back up",
            ));
        };
        cx.log
            .rec
            .backups
            .push(file_ref(project, &c.path, &c.sha256));
        let detail = format!(
            "{}: {}, re-read and checked against its manifest",
            cx.shown(&c.path),
            contents(&c).join(", ")
        );
        cx.backup = Some(c);
        Ok(Done::ok(detail))
    }
}

/// A transactional migration's backup is taken inside its transaction, by
/// the migrate step, with the tables locked against writes: here it is
/// only planned against the live schema, so that a plan that cannot be made
/// stops the run before anything changed. The checklist's
/// `backup-verified` is ticked once the archive exists and was re-read.
async fn planned(cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
    let m = cx.migration();
    let plan = async {
        let target = Target::for_backup(cx.db, cx.request.env_name).await?;
        crate::backup::plan_for(cx.db, m, &cx.analysis.backups, &target).await
    }
    .await;
    let plan = match plan {
        Ok(Some(plan)) => plan,
        Ok(None) => {
            return Ok(Done::skipped(
                "the migration destroys no existing data: nothing to back up",
            ));
        }
        Err(e) => {
            return Ok(Done::failed(e.to_string()).stop(format!(
                "the backup of {} could not be planned, so the migration did not run; nothing was changed\n  {e}",
                m.id()
            )));
        }
    };
    let mut parts: Vec<String> = Vec::new();
    let mut tables: Vec<String> = Vec::new();
    for t in &plan.tables {
        let what = match (&t.columns, &t.rows) {
            (Some(cols), _) => format!("{}.{}", t.table.shown(), cols.join(", ")),
            (None, _) => t.table.shown(),
        };
        let rows = t
            .rows
            .as_ref()
            .map(|r| format!(" where {}", r.shown))
            .unwrap_or_default();
        parts.push(format!("{what}{rows}"));
        if !tables.contains(&t.table.shown()) {
            tables.push(t.table.shown());
        }
    }
    Ok(Done::ok(format!(
        "{}: exported inside the migration's transaction, {} locked against writes from the backup to the commit, and re-read against its manifest before the statements run",
        parts.join(", "),
        tables.join(", ")
    )))
}

/// What the archive holds, one entry per file.
pub(crate) fn contents(c: &Created) -> Vec<String> {
    c.manifest
        .files
        .iter()
        .map(|f| {
            let cols: Vec<&str> = f
                .columns
                .iter()
                .filter(|col| !f.key.contains(col))
                .map(String::as_str)
                .collect();
            match f.kind {
                Kind::Columns => format!("{}.{} ({} rows)", f.shown(), cols.join(", "), f.rows),
                Kind::Table => format!("{} ({} rows)", f.shown(), f.rows),
                Kind::Rows => format!("{} ({} rows the migration deletes)", f.shown(), f.rows),
                Kind::Replace => format!("{} (whole table, no key: {} rows)", f.shown(), f.rows),
            }
        })
        .collect()
}
