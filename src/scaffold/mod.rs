//! `keel new`: new migration folders written from templates, before the
//! files → [`migration`](crate::migration) flow begins.
//!
//! A [`Request`] names the template and what it works on; [`prepare`]
//! checks it and loads the templates (nothing is written); the returned
//! [`Scaffold`] renders and writes the folders, each version after the
//! newest existing one. Names go into SQL through `quote_if_needed`, which
//! quotes every word the `quote-identifier` rule flags, so `keel new` never
//! writes a name `keel lint` then complains about.

pub(crate) mod demo;
pub(crate) mod template;

use crate::migration::Version;
use std::path::{Path, PathBuf};

/// What `keel new` was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    /// The migration's snake_case name.
    pub(crate) name: String,
    /// A built-in template, `rename-column`, or one in `templates/new/`.
    pub(crate) template: String,
    pub(crate) table: Option<String>,
    pub(crate) column: Option<String>,
    /// The new column name (`rename-column`).
    pub(crate) to: Option<String>,
    /// The integer key the rename-column backfill walks (default `id`).
    pub(crate) key: Option<String>,
    pub(crate) column_type: Option<String>,
    pub(crate) description: Option<String>,
}

/// A migration folder `keel new` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) version: Version,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// Why nothing (or not everything) was written; each message says what to
/// type instead.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScaffoldError {
    #[error(
        "`{name}` is not a snake_case name (lowercase letters, digits, single underscores)\n  fix: keel new {suggestion}"
    )]
    Name { name: String, suggestion: String },
    #[error(
        "the {template} template needs --{flag}\n  fix: keel new {name} --template {template} --table TABLE --column COLUMN{to}",
        to = if *flag == "to" { " --to NEW" } else { "" }
    )]
    MissingFlag {
        template: String,
        name: String,
        flag: &'static str,
    },
    #[error(
        "--{flag} `{value}` is not an identifier (letters, digits and _, optionally schema.name)"
    )]
    NotIdentifier { flag: &'static str, value: String },
    #[error("--column and --to are both `{0}`: a rename needs a new name")]
    SameName(String),
    #[error(
        "there is no template `{name}`\n  fix: use one of {known}, or add templates/new/{name}/"
    )]
    NoTemplate { name: String, known: String },
    /// A step of a multi-migration template is missing.
    #[error("there is no template `{0}`")]
    NoStep(String),
    #[error("template {template}/{file} does not render: {error}")]
    Render {
        template: String,
        file: &'static str,
        error: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The template files of one migration, as loaded.
type Files = Vec<(&'static str, String)>;

/// A checked request with its templates loaded, ready to write.
#[derive(Debug)]
pub(crate) struct Scaffold {
    request: Request,
    /// `(template, name suffix, files)` per migration, in apply order.
    steps: Vec<(String, String, Files)>,
}

/// The three migrations of `--template rename-column`, in apply order.
const RENAME_STEPS: [&str; 3] = ["expand", "migrate", "contract"];

/// Checks `request` and loads its templates from `project` (its
/// `templates/new/`, else the built-in ones).
pub(crate) fn prepare(project: &Path, request: Request) -> Result<Scaffold, ScaffoldError> {
    check(&request)?;
    let steps = if request.template == "rename-column" {
        let (column, to) = (request.column.as_deref(), request.to.as_deref());
        if column == to {
            return Err(ScaffoldError::SameName(to.unwrap_or_default().into()));
        }
        RENAME_STEPS
            .iter()
            .map(|step| {
                let name = format!("rename-column/{step}");
                match template::load(project, &name) {
                    Some(files) => Ok((name, format!("_{step}"), files)),
                    None => Err(ScaffoldError::NoStep(name)),
                }
            })
            .collect::<Result<_, _>>()?
    } else {
        let files = template::load(project, &request.template).ok_or_else(|| {
            ScaffoldError::NoTemplate {
                name: request.template.clone(),
                known: template::built_in_names().join(", "),
            }
        })?;
        vec![(request.template.clone(), String::new(), files)]
    };
    Ok(Scaffold { request, steps })
}

impl Scaffold {
    /// Renders every migration: `(folder under dir, files)`, the first
    /// version `now` or one second after `latest` (see [`next_version`]).
    pub(crate) fn render(
        &self,
        dir: &Path,
        now: Version,
        latest: Option<Version>,
    ) -> Result<Vec<(Written, Files)>, ScaffoldError> {
        let mut version = next_version(now, latest);
        let mut out = Vec::new();
        for (template, suffix, files) in &self.steps {
            let name = format!("{}{suffix}", self.request.name);
            let context = self.context(version);
            let mut rendered = Vec::new();
            for (file, text) in files {
                let body = template::render(text, &context).map_err(|e| ScaffoldError::Render {
                    template: template.clone(),
                    file,
                    error: format!("{e:?}"),
                })?;
                rendered.push((*file, body));
            }
            let path = dir.join(format!("{version}_{name}"));
            out.push((
                Written {
                    version,
                    name,
                    path,
                },
                rendered,
            ));
            version = next_version(version, Some(version));
        }
        Ok(out)
    }

    /// Renders and writes the folders under `dir`, after `latest`, the
    /// newest migration there. Nothing is written when a template does not
    /// render.
    pub(crate) fn write(
        &self,
        dir: &Path,
        latest: Option<Version>,
    ) -> Result<Vec<Written>, ScaffoldError> {
        let rendered = self.render(dir, Version::now(), latest)?;
        let mut written = Vec::new();
        for (w, files) in rendered {
            std::fs::create_dir_all(&w.path)?;
            for (file, body) in files {
                std::fs::write(w.path.join(file), body)?;
            }
            written.push(w);
        }
        Ok(written)
    }

    /// What the templates see.
    fn context(&self, version: Version) -> tera::Context {
        let r = &self.request;
        let column_type = r.column_type.as_deref().unwrap_or("text");
        let mut context = tera::Context::new();
        if r.template == "rename-column" {
            let (table, column, to) = (
                r.table.clone().unwrap_or_default(),
                r.column.clone().unwrap_or_default(),
                r.to.clone().unwrap_or_default(),
            );
            let bare = table.rsplit('.').next().unwrap_or(&table);
            // PostgreSQL names are at most 63 bytes; keel's stay well inside that.
            let sync: String = format!("{bare}_{column}_{to}_sync")
                .chars()
                .take(63)
                .collect();
            let function = match table.rsplit_once('.') {
                Some((schema, _)) => format!("{schema}.{sync}"),
                None => sync.clone(),
            };
            context.insert("table", &table);
            context.insert("column", &column);
            context.insert("to", &to);
            context.insert("key", r.key.as_deref().unwrap_or("id"));
            context.insert("type", column_type);
            context.insert("function", &function);
            context.insert("trigger", &sync);
            return context;
        }
        let table = r
            .table
            .clone()
            .unwrap_or_else(|| r.name.trim_start_matches("create_").to_string());
        let column = r.column.clone().unwrap_or_else(|| "new_column".into());
        let bare = table.rsplit('.').next().unwrap_or(&table);
        context.insert("name", &r.name);
        context.insert("version", &version.to_string());
        context.insert(
            "description",
            &r.description
                .clone()
                .unwrap_or_else(|| r.name.replace('_', " ")),
        );
        context.insert("table", &table);
        context.insert("column", &column);
        context.insert("type", column_type);
        context.insert("index", &format!("{bare}_{column}_idx"));
        context.insert(
            "null_check",
            &format!("{} IS NULL", template::quote_if_needed(&column)),
        );
        context
    }
}

/// The name is snake_case, the template has the flags it needs, and every
/// name given is an identifier.
fn check(r: &Request) -> Result<(), ScaffoldError> {
    if !crate::migration::is_snake_case(&r.name) {
        return Err(ScaffoldError::Name {
            name: r.name.clone(),
            suggestion: crate::migration::to_snake_case(&r.name),
        });
    }
    let needs: &[&str] = match r.template.as_str() {
        "add-table" => &["table"],
        "add-column" | "drop-column" | "backfill" | "add-index" => &["table", "column"],
        "rename-column" => &["table", "column", "to"],
        _ => &[],
    };
    for (flag, value) in [
        ("table", &r.table),
        ("column", &r.column),
        ("to", &r.to),
        ("key", &r.key),
    ] {
        if needs.contains(&flag) && value.is_none() {
            return Err(ScaffoldError::MissingFlag {
                template: r.template.clone(),
                name: r.name.clone(),
                flag,
            });
        }
        if let Some(v) = value
            && !is_identifier(v)
        {
            return Err(ScaffoldError::NotIdentifier {
                flag,
                value: v.clone(),
            });
        }
    }
    Ok(())
}

/// Now, or one second after the newest existing migration, so that a new
/// migration always sorts last.
pub(crate) fn next_version(now: Version, latest: Option<Version>) -> Version {
    match latest {
        Some(latest) if latest >= now => {
            let parsed = chrono::NaiveDateTime::parse_from_str(&latest.to_string(), "%Y%m%d%H%M%S");
            match parsed {
                Ok(t) => {
                    let next = (t + chrono::Duration::seconds(1))
                        .format("%Y%m%d%H%M%S")
                        .to_string();
                    Version(next.parse().unwrap_or(latest.0 + 1))
                }
                Err(_) => Version(latest.0 + 1),
            }
        }
        _ => now,
    }
}

/// `name` or `schema.name`, each part letters, digits and `_`, not
/// starting with a digit.
fn is_identifier(s: &str) -> bool {
    s.split('.').all(|part| {
        part.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }) && s.split('.').count() <= 2
}

#[cfg(test)]
mod tests;
