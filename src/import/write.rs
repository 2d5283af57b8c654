//! Writing imported migrations into keel's layout: one folder per
//! migration with up.sql, down.sql (when the tool had one) and a
//! migration.toml that says where it came from and how it runs. Nothing
//! is written unless everything can be; a folder that is already there
//! with the same files is left as it is, so a re-import changes nothing.

use super::{Foreign, ImportError, Tool};
use crate::migration::Migration;
use std::path::{Path, PathBuf};

/// What an import did.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub(crate) new: Vec<PathBuf>,
    pub(crate) unchanged: Vec<PathBuf>,
}

/// The files keel writes for `f`, by name.
fn files(tool: Tool, f: &Foreign) -> Vec<(&'static str, String)> {
    let mut toml = format!(
        "# Imported by `keel import --from {}`; the SQL is the tool's, as it ran.\nimported_from = {}\n",
        tool.name(),
        toml_string(&format!("{}: {}", tool.name(), f.source))
    );
    if !f.transaction {
        toml.push_str("# The tool ran it outside a transaction.\ntransaction = false\n");
    }
    let mut out = vec![("up.sql", f.up.clone()), ("migration.toml", toml)];
    if let Some(down) = &f.down {
        out.push(("down.sql", down.clone()));
    }
    out
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Writes `found` into `dir` (keel's migrations folder), next to the
/// migrations already there (`existing`).
pub(crate) fn write(
    tool: Tool,
    found: &[Foreign],
    dir: &Path,
    existing: &[Migration],
) -> Result<Written, ImportError> {
    let mut plan = Vec::new();
    let mut written = Written::default();
    for f in found {
        let folder = dir.join(format!("{}_{}", f.version, f.name));
        let files = files(tool, f);
        if let Some(other) = existing
            .iter()
            .find(|m| m.version == f.version && m.dir.file_name() != folder.file_name())
        {
            return Err(ImportError {
                path: f.source.clone(),
                message: format!(
                    "version {} is already {} in keel's folder; nothing was written",
                    f.version,
                    other.dir.display()
                ),
                fix: "import into an empty folder (`--to DIR`), or move the other migration to a new version".into(),
            });
        }
        if folder.exists() {
            let same = files.iter().all(|(name, text)| {
                std::fs::read_to_string(folder.join(name)).is_ok_and(|t| t == *text)
            }) && (f.down.is_some() || !folder.join("down.sql").exists());
            if !same {
                return Err(ImportError {
                    path: folder.display().to_string(),
                    message: "is already there with other files than this import would write; nothing was written".into(),
                    fix: "compare the two; to take the tool's files again, move the folder away first".into(),
                });
            }
            written.unchanged.push(folder);
            continue;
        }
        plan.push((folder, files));
    }
    for (folder, files) in plan {
        let io = |e: std::io::Error| ImportError {
            path: folder.display().to_string(),
            message: format!("cannot write it: {e}"),
            fix: "check the folder's permissions and free space".into(),
        };
        std::fs::create_dir_all(&folder).map_err(io)?;
        for (name, text) in files {
            std::fs::write(folder.join(name), text).map_err(io)?;
        }
        written.new.push(folder);
    }
    Ok(written)
}
