//! Walking the runbook's checklist: items keel can verify it verifies; the
//! others an operator confirms at a terminal, or a pre-recorded answers
//! file confirms in CI, or `--yes` where the environment allows it.

use crate::runbook::annotate::ChecklistItem;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

/// How items that keel cannot verify get confirmed.
pub(crate) enum Confirmer {
    /// A person at a terminal, item by item.
    Terminal,
    /// `--answers FILE`: `id = true` per item, recorded in the execution record.
    Answers {
        file: String,
        answers: BTreeMap<String, bool>,
    },
    /// `--yes`, only where keel.toml sets `confirm = "auto"`.
    Yes,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfirmError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
}

impl Confirmer {
    /// Chooses how to confirm, refusing what the environment does not allow.
    pub(crate) fn choose(
        env: &str,
        confirm_setting: Option<&str>,
        yes: bool,
        answers: Option<&Path>,
    ) -> Result<Confirmer, ConfirmError> {
        if let Some(path) = answers {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfirmError::Usage(format!(
                    "cannot read the answers file {}: {e}",
                    path.display()
                ))
            })?;
            let answers: BTreeMap<String, bool> = toml::from_str(&text).map_err(|e| {
                ConfirmError::Usage(format!(
                    "{}: {}\n  fix: write one line per checklist id, e.g. `rollback-tested = true`",
                    path.display(),
                    e.message()
                ))
            })?;
            return Ok(Confirmer::Answers {
                file: path.display().to_string(),
                answers,
            });
        }
        if yes {
            return if confirm_setting == Some("auto") {
                Ok(Confirmer::Yes)
            } else {
                Err(ConfirmError::Refused(format!(
                    "--yes is not allowed for environment `{env}`: its checklist must be confirmed by a person\n  \
                     fix: run in a terminal, pass --answers FILE, or set confirm = \"auto\" for it in keel.toml"
                )))
            };
        }
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            Ok(Confirmer::Terminal)
        } else {
            Err(ConfirmError::Refused(
                "execute needs a terminal to walk the checklist, and stdin is not one\n  \
                 fix: run it in a terminal, or pass --answers FILE with one `id = true` line per checklist item"
                    .into(),
            ))
        }
    }

    /// Confirms one item that keel cannot verify itself. `Ok(false)` means
    /// the operator said no; the run stops before anything changed.
    pub(crate) fn confirm(&self, item: &ChecklistItem) -> Result<bool, ConfirmError> {
        let id = item.id.as_deref().unwrap_or("(no id)");
        match self {
            Confirmer::Yes => Ok(true),
            Confirmer::Answers { file, answers } => {
                if item.id.is_none() {
                    return Err(ConfirmError::Refused(format!(
                        "checklist item \"{}\" has no id, so the answers file {file} cannot answer it\n  fix: give it one in the runbook (`<!-- keel:check some-id -->` at the end of the item, reviewed like the rest), then add `some-id = true` to {file}",
                        item.text
                    )));
                }
                match item.id.as_ref().and_then(|id| answers.get(id)) {
                    Some(answer) => Ok(*answer),
                    None => Err(ConfirmError::Refused(format!(
                        "the answers file {file} has no answer for checklist item `{id}`: {}\n  fix: add `{id} = true` once it is done",
                        item.text
                    ))),
                }
            }
            Confirmer::Terminal => dialoguer::Confirm::new()
                .with_prompt(format!("{} — done?", item.text))
                .default(false)
                .interact_opt()
                .map_err(|e| {
                    ConfirmError::Refused(format!(
                        "checklist interrupted ({e}); nothing was changed"
                    ))
                })?
                .ok_or_else(|| {
                    ConfirmError::Refused("checklist interrupted; nothing was changed".into())
                }),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Confirmer::Terminal => "confirmed at the terminal".into(),
            Confirmer::Answers { file, .. } => format!("confirmed by answers file {file}"),
            Confirmer::Yes => "confirmed with --yes (confirm = \"auto\")".into(),
        }
    }
}
