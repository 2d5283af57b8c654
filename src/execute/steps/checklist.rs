//! The runbook's checklist, read from its reviewed body only: what keel
//! verified itself it ticks, the rest a person confirms.

use crate::execute::ExecuteError;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::runbook::annotate;
use crate::runbook::check_id::CheckId;
use async_trait::async_trait;
use chrono::Utc;

pub(crate) struct Checklist;

#[async_trait(?Send)]
impl Step for Checklist {
    fn id(&self) -> StepId {
        StepId::Checklist
    }

    fn about(&self) -> &'static str {
        "every checklist item is verified by keel or confirmed by a person"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        let reviewed = cx.runbook.as_ref().map_or("", |r| r.reviewed.as_str());
        let items = annotate::checklist(reviewed);
        (cx.ui.say)(&format!(
            "checklist of {} ({} item(s), {}):",
            cx.runbook_shown.display(),
            items.len(),
            request.confirmer.describe()
        ));
        for item in &items {
            match item.check_id() {
                Some(CheckId::SnapshotTaken) => {
                    if cx.snapshot_done {
                        cx.tick.push(CheckId::SnapshotTaken.to_string());
                    }
                }
                Some(CheckId::DryRunReviewed) => cx.tick.push(CheckId::DryRunReviewed.to_string()),
                // Ticked once the backup step has done its part.
                Some(CheckId::BackupVerified) => cx.backup_item = true,
                id => {
                    let t = Utc::now();
                    let name = item
                        .id
                        .clone()
                        .unwrap_or_else(|| "(item without id)".into());
                    match request.confirmer.confirm(item) {
                        Ok(true) => {
                            cx.log
                                .confirmed(&name, t, &item.text, &request.confirmer.describe());
                            if let Some(id) = id {
                                cx.tick.push(id.to_string());
                            }
                        }
                        Ok(false) => {
                            return Err(ExecuteError::Refused(format!(
                                "checklist item `{name}` was not confirmed: {}; nothing was changed\n  fix: do it (or have it done), then run execute again",
                                item.text
                            )));
                        }
                        Err(e) => {
                            return Err(ExecuteError::Refused(format!(
                                "{e}\n  nothing was changed"
                            )));
                        }
                    }
                }
            }
        }
        Ok(Done::quiet())
    }
}
