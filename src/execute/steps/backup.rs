//! The data the migration destroys, exported and re-read against its
//! manifest before it runs. The same analysis (and server facts) `keel
//! plan` shows decides what is backed up.

use crate::backup::{BackupError, Created, Kind, Target};
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
        let made = async {
            let target = Target::of(cx.db, cx.request.env_name)
                .await
                .map_err(|source| BackupError::Db {
                    context: "reading the database's id".to_string(),
                    source: Box::new(source),
                })?;
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

/// What the archive holds, one entry per file.
fn contents(c: &Created) -> Vec<String> {
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
