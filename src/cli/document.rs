//! The one JSON document a command prints with `--format json`. A command
//! hands its body here instead of printing it, and the runner's events add
//! every migration this run applied or reverted, so that whatever way the
//! command ends, `cli::main` prints exactly one document: the body on
//! success; on failure the body (or what is known of it) with `ok: false`,
//! the error, and what changed before the failure. A script then always
//! learns what a partial run left behind.

use crate::backfill::BackfillError;
use crate::error::Error;
use crate::execute::ExecuteError;
use crate::migration::Migration;
use crate::migrator::RunError;
use serde_json::{Map, Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// What a command's JSON document is made of, gathered while it runs.
#[derive(Debug, Default)]
pub(crate) struct Document {
    body: Mutex<Option<Value>>,
    applied: Mutex<Vec<Change>>,
    reverted: Mutex<Vec<Change>>,
    /// Migrations reverted whose down.sql did not give back the schema,
    /// each said in words with its diff.
    not_restored: Mutex<Vec<String>>,
}

impl Document {
    /// The command's document; printed when the command ends.
    pub(crate) fn set(&self, body: Value) {
        *lock(&self.body) = Some(body);
    }

    /// `m` was applied, durably, by this run.
    pub(crate) fn applied(&self, m: &Migration, took: Duration) {
        lock(&self.applied).push(Change::now(m, took));
    }

    /// `m` was reverted, durably, by this run.
    pub(crate) fn reverted(&self, m: &Migration, took: Duration) {
        lock(&self.reverted).push(Change::now(m, took));
    }

    /// The migrations this run applied, in order, as the documents list them.
    pub(crate) fn applied_list(&self) -> Vec<Value> {
        lock(&self.applied)
            .iter()
            .map(|c| c.json("applied_at"))
            .collect()
    }

    /// `m` was reverted, but the schema is not the one it started from.
    pub(crate) fn not_restored(&self, m: &Migration, diff: &crate::db::SchemaDiff) {
        let n = match diff.changes.len() {
            1 => "1 object differs".to_string(),
            n => format!("{n} objects differ"),
        };
        lock(&self.not_restored).push(format!(
            "{} was reverted, but its down.sql did not give back the schema it started from ({n}; `-` before up, `+` after down):\n{}",
            m.id(),
            diff.to_string().trim_end()
        ));
    }

    /// The migrations [`Document::not_restored`] named.
    pub(crate) fn not_restored_list(&self) -> Vec<String> {
        lock(&self.not_restored).clone()
    }

    /// The migrations this run reverted, in order.
    pub(crate) fn reverted_list(&self) -> Vec<Value> {
        lock(&self.reverted)
            .iter()
            .map(|c| c.json("reverted_at"))
            .collect()
    }

    /// The document to print for a command that ended with `result`;
    /// `json` is `--format json` (a SARIF body is printed as it is). On
    /// failure the body gains `ok: false`, `error`, `applied` and
    /// `reverted`; a command that failed before it had a body gets a
    /// document of those alone.
    pub(crate) fn finish(&self, result: &Result<(), Error>, json: bool) -> Option<Value> {
        let body = lock(&self.body).take();
        let error = match result {
            Err(e) if json => e,
            Ok(()) if json => return Some(body.unwrap_or_else(|| json!({ "ok": true }))),
            _ => return body,
        };
        let mut doc = match body {
            Some(Value::Object(map)) => map,
            Some(other) => Map::from_iter([("result".to_string(), other)]),
            None => Map::new(),
        };
        doc.insert("ok".into(), Value::Bool(false));
        doc.insert("error".into(), error_json(error));
        doc.insert("applied".into(), Value::Array(self.applied_list()));
        doc.insert("reverted".into(), Value::Array(self.reverted_list()));
        Some(Value::Object(doc))
    }
}

/// A poisoned lock only means a printing thread panicked; the lists stay true.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One migration applied or reverted, kept small (a run may apply
/// thousands) and turned into JSON only when a document is printed.
#[derive(Debug)]
struct Change {
    version: crate::migration::Version,
    name: Box<str>,
    at: chrono::DateTime<chrono::Utc>,
    took: Duration,
}

impl Change {
    fn now(m: &Migration, took: Duration) -> Change {
        Change {
            version: m.version,
            name: m.name.as_str().into(),
            at: chrono::Utc::now(),
            took,
        }
    }

    fn json(&self, at: &str) -> Value {
        json!({
            "version": self.version.to_string(),
            "name": self.name,
            at: self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "execution_ms": self.took.as_millis() as u64,
        })
    }
}

/// An error as the document's `error`: the message and its fix apart, the
/// exit code, and where known the migration and the statement that failed.
pub(crate) fn error_json(e: &Error) -> Value {
    let text = e.to_string();
    let text = text.trim_end();
    let (message, fix) = match text.rfind("\n  fix: ") {
        Some(i) => (&text[..i], Some(&text[i + "\n  fix: ".len()..])),
        None => match text.strip_prefix("fix: ") {
            Some(fix) => ("", Some(fix)),
            None => (text, None),
        },
    };
    let mut out = Map::new();
    out.insert("message".into(), json!(message));
    out.insert("fix".into(), json!(fix));
    out.insert("exit_code".into(), json!(e.exit_code()));
    out.insert("migration".into(), json!(migration(e)));
    if let Error::Run(RunError::Statement(s)) = e {
        out.insert(
            "statement".into(),
            json!({
                "file": s.file.display().to_string(),
                "line": s.line,
                "column": s.column,
                "sql": s.sql,
                "sqlstate": s.error.code,
                "outcome": s.outcome,
            }),
        );
    }
    if let Error::Run(RunError::ConnectionLost(c)) = e {
        // Committed by this run without a confirmed flush: not listed as
        // applied (or reverted), since a server crash may have lost them.
        out.insert("unconfirmed".into(), json!(c.unconfirmed));
    }
    if let Error::Run(RunError::Backfill(b)) = e
        && let BackfillError::Incomplete(report) = b.as_ref()
    {
        out.insert("backfill".into(), json!(report));
    }
    if let Error::Execute(ExecuteError::Ended(f)) = e {
        out.insert("outcome".into(), json!(f.outcome));
    }
    Value::Object(out)
}

/// The migration an error is about, when it names one.
fn migration(e: &Error) -> Option<String> {
    match e {
        Error::Run(RunError::Statement(s)) => Some(s.migration.clone()),
        Error::Run(RunError::Hook { migration, .. }) => Some(migration.clone()),
        Error::Run(RunError::ConnectionLost(c)) => c
            .doing
            .as_deref()
            .and_then(|d| d.split_once(' '))
            .map(|(_, id)| id.to_string()),
        Error::Run(RunError::Backfill(b)) => match b.as_ref() {
            BackfillError::Batch { migration, .. }
            | BackfillError::LockTimeout { migration, .. }
            | BackfillError::KeyNotInteger { migration, .. }
            | BackfillError::Spec { migration, .. } => Some(migration.clone()),
            BackfillError::Incomplete(r) => Some(r.migration.clone()),
            BackfillError::Db(_) | BackfillError::Io(_) => None,
        },
        Error::Execute(ExecuteError::Ended(f)) => Some(f.record.migration.id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_document_splits_the_fix_off_and_keeps_the_body() {
        let doc = Document::default();
        doc.set(json!({"problems": [1]}));
        let error = Error::Usage("the thing is wrong\n  here\n  fix: do the other thing".into());
        let out = doc.finish(&Err(error), true).unwrap();
        assert_eq!(out["ok"], false);
        assert_eq!(out["problems"], json!([1]));
        assert_eq!(out["error"]["message"], "the thing is wrong\n  here");
        assert_eq!(out["error"]["fix"], "do the other thing");
        assert_eq!(out["error"]["exit_code"], 2);
        assert_eq!(out["applied"], json!([]));
        assert_eq!(out["reverted"], json!([]));
    }

    #[test]
    fn success_prints_the_body_and_text_mode_prints_nothing() {
        let doc = Document::default();
        assert_eq!(doc.finish(&Ok(()), true), Some(json!({"ok": true})));
        assert_eq!(doc.finish(&Ok(()), false), None);
        let error = || Error::Check("x".into());
        assert_eq!(doc.finish(&Err(error()), false), None);
        // SARIF is printed as it is, even for a failed lint.
        doc.set(json!({"version": "2.1.0"}));
        assert_eq!(
            doc.finish(&Err(error()), false),
            Some(json!({"version": "2.1.0"}))
        );
    }
}
