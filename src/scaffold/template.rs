//! New-migration templates: built into the binary, overridable per project
//! in `templates/new/<name>/`, rendered with Tera.

use include_dir::{Dir, include_dir};
use std::collections::HashMap;
use std::path::Path;

static BUILT_IN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates/new");

pub(crate) const FILES: [&str; 3] = ["up.sql", "down.sql", "migration.toml"];

/// Names of the built-in templates.
pub(crate) fn built_in_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = BUILT_IN.dirs().filter_map(|d| d.path().to_str()).collect();
    names.sort();
    names
}

/// The template's three files: the project's `templates/new/<name>/` when it
/// exists, else the built-in one.
pub(crate) fn load(project: &Path, name: &str) -> Option<Vec<(&'static str, String)>> {
    let local = project.join("templates/new").join(name);
    if local.is_dir() {
        return Some(
            FILES
                .iter()
                .map(|f| {
                    (
                        *f,
                        std::fs::read_to_string(local.join(f)).unwrap_or_default(),
                    )
                })
                .collect(),
        );
    }
    let dir = BUILT_IN.get_dir(name)?;
    Some(
        FILES
            .iter()
            .map(|f| {
                let text = dir
                    .get_file(dir.path().join(f))
                    .and_then(|file| file.contents_utf8())
                    .unwrap_or_default();
                (*f, text.to_string())
            })
            .collect(),
    )
}

/// Renders one template file with Tera. SQL and TOML are not HTML, so nothing
/// is auto-escaped; the `ident` filter quotes identifiers when needed and the
/// `toml` filter writes a TOML string.
pub(crate) fn render(text: &str, context: &tera::Context) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.register_filter("ident", ident_filter);
    tera.register_filter("toml", toml_filter);
    tera.add_raw_template("t", text)?;
    tera.render("t", context)
}

fn ident_filter(
    value: &tera::Value,
    _: &HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let s = value
        .as_str()
        .ok_or_else(|| tera::Error::msg("ident: expected a string"))?;
    Ok(tera::Value::String(
        s.split('.')
            .map(quote_if_needed)
            .collect::<Vec<_>>()
            .join("."),
    ))
}

fn toml_filter(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let s = value.as_str().unwrap_or_default();
    Ok(tera::Value::String(
        toml::Value::String(s.to_string()).to_string(),
    ))
}

/// Quotes an identifier only when PostgreSQL would fold or reject it bare:
/// anything but lower-case letters, digits and `_`, or a word of
/// [`crate::analysis::keyword`], the list `quote-identifier` checks.
pub(crate) fn quote_if_needed(name: &str) -> String {
    let simple = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if simple && !crate::analysis::keyword::is_reserved(name) {
        name.to_string()
    } else {
        crate::db::quote_ident(name)
    }
}
