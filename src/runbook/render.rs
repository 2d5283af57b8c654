use super::Runbook;
use super::markdown;
use std::collections::HashMap;
use std::path::Path;

const BUILT_IN: &str = include_str!("../../templates/runbook.md.tera");

/// First line of every runbook: which migration, rendered from which
/// checksum, and the SHA-256 of the reviewed body ([`super::binding`]).
/// keel writes it outside the template so that a custom template cannot
/// drop it, and `execute` reads it to refuse a stale or edited runbook.
pub(crate) const MARKER_PREFIX: &str = "<!-- keel:runbook ";

/// What a runbook's first line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The migration the runbook was rendered for, as `VERSION_NAME`.
    pub migration: String,
    /// The migration's checksum at render time: `execute` refuses the runbook
    /// once the files change.
    pub checksum: String,
    /// The reviewed body's SHA-256; `None` in runbooks of an older keel.
    pub body: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "{path}: {message}\n  fix: correct the template, or delete it to use keel's built-in one"
    )]
    Template { path: String, message: String },
}

/// Renders the runbook with the project's `templates/runbook.md.tera` when
/// it exists, else the built-in template.
pub fn render(project: &Path, runbook: &Runbook) -> Result<String, RenderError> {
    let custom = project.join("templates/runbook.md.tera");
    let (source, path) = match std::fs::read_to_string(&custom) {
        Ok(text) => (text, custom.display().to_string()),
        Err(_) => (BUILT_IN.to_string(), "built-in runbook.md.tera".to_string()),
    };
    let err = |e: tera::Error| {
        // Tera's causes carry the useful part (which variable, which line).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        RenderError::Template {
            path: path.clone(),
            message,
        }
    };
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.register_filter("md", |v: &tera::Value, _: &HashMap<String, tera::Value>| {
        Ok(tera::Value::String(markdown::inline(&as_text(v))))
    });
    tera.register_filter(
        "prose",
        |v: &tera::Value, _: &HashMap<String, tera::Value>| {
            Ok(tera::Value::String(markdown::prose(&as_text(v))))
        },
    );
    tera.register_filter(
        "code",
        |v: &tera::Value, _: &HashMap<String, tera::Value>| {
            Ok(tera::Value::String(markdown::code(&as_text(v))))
        },
    );
    tera.register_filter(
        "fence",
        |v: &tera::Value, args: &HashMap<String, tera::Value>| {
            let lang = args
                .get("lang")
                .and_then(|l| l.as_str())
                .unwrap_or_default();
            Ok(tera::Value::String(markdown::fence(&as_text(v), lang)))
        },
    );
    tera.add_raw_template("runbook", &source).map_err(err)?;
    let context = tera::Context::from_serialize(runbook).map_err(err)?;
    let body = tidy(&tera.render("runbook", &context).map_err(err)?);
    let digest = super::binding::digest(
        &runbook.migration.id,
        &runbook.migration.checksum,
        &super::binding::reviewed(&body),
    );
    Ok(format!(
        "{MARKER_PREFIX}migration={} checksum={} body={digest} -->\n{body}",
        runbook.migration.id, runbook.migration.checksum,
    ))
}

/// What a runbook's first line says. Anything unexpected is `None`: a
/// runbook is untrusted input.
pub fn marker(text: &str) -> Option<Marker> {
    let line = text
        .lines()
        .next()?
        .trim_end_matches('\r')
        .strip_prefix(MARKER_PREFIX)?
        .strip_suffix(" -->")?;
    let hex64 = |v: &str| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
    let mut id = None;
    let mut checksum = None;
    let mut body = None;
    for part in line.split(' ') {
        match part.split_once('=')? {
            ("migration", v)
                if id.is_none()
                    && v.len() <= 200
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                id = Some(v)
            }
            ("checksum", v) if checksum.is_none() && hex64(v) => checksum = Some(v),
            ("body", v) if body.is_none() && hex64(v) => body = Some(v.to_string()),
            _ => return None,
        }
    }
    Some(Marker {
        migration: id?.to_string(),
        checksum: checksum?.to_string(),
        body,
    })
}

fn as_text(v: &tera::Value) -> String {
    match v {
        tera::Value::String(s) => s.clone(),
        tera::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Collapses the runs of blank lines that template control flow leaves,
/// outside fenced code blocks (SQL is shown exactly as written).
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        if fence.is_some() {
            if fence.as_deref() == Some(ticks.as_str()) && line.trim_end() == ticks {
                fence = None;
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if ticks.len() >= 3 {
            fence = Some(ticks);
        }
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
