//! Post-migration checks: the connection, smoke queries, row counts of the
//! tables the migration touches without meaning to change their rows, and
//! the environment's health URL.

use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::operation::ActionKind;
use crate::db::{Database, Timeouts};
use crate::migration::Migration;
use std::collections::BTreeMap;
use std::time::Duration;

/// One check's result.
#[derive(Debug, Clone)]
pub(crate) struct CheckResult {
    /// `connection`, `smoke`, `env-smoke`, `row-counts`, `health`.
    pub(crate) step: String,
    pub(crate) ok: bool,
    pub(crate) detail: String,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    pub(crate) duration_ms: u64,
}

/// Tables the migration touches that exist before it runs and whose rows it
/// does not mean to change: a migration that adds or drops a column, an
/// index or a constraint must leave the row count as it was. Tables it
/// inserts into, deletes from, updates, truncates, drops or renames are left
/// out, as are tables it creates.
pub(crate) fn count_tables(analysis: &MigrationAnalysis) -> Vec<String> {
    let mut touched: Vec<String> = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    for op in &analysis.up.ops {
        for a in &op.actions {
            let Some(table) = &a.table else { continue };
            let changes_rows = matches!(
                a.kind,
                ActionKind::Insert
                    | ActionKind::Update { .. }
                    | ActionKind::Delete { .. }
                    | ActionKind::Truncate { .. }
                    | ActionKind::DropTable { .. }
                    | ActionKind::RenameTable { .. }
                    | ActionKind::CreateTable { .. }
            );
            if changes_rows || a.new_table {
                changed.push(table.clone());
            } else if !touched.contains(table) {
                touched.push(table.clone());
            }
        }
    }
    touched.retain(|t| !changed.contains(t));
    touched
}

/// Row counts of those of `tables` that exist.
pub(crate) async fn count_rows(
    db: &mut dyn Database,
    tables: &[String],
) -> Result<BTreeMap<String, i64>, crate::db::DbError> {
    let mut counts = BTreeMap::new();
    for t in tables {
        if db.columns(t).await?.is_empty() {
            continue;
        }
        counts.insert(t.clone(), db.count_rows(t).await?);
    }
    Ok(counts)
}

/// Compares a smoke query's value with `expect`: as numbers when both are
/// numbers (`0` = `0.0`), else as text; `true`/`false` also match
/// PostgreSQL's `t`/`f` and SQLite's `1`/`0`.
pub(crate) fn matches(actual: Option<&str>, expect: &toml::Value) -> bool {
    let Some(actual) = actual.map(str::trim) else {
        return false;
    };
    let expected = match expect {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => {
            let truthy = matches!(actual, "t" | "true" | "1" | "TRUE");
            let falsy = matches!(actual, "f" | "false" | "0" | "FALSE");
            return if *b { truthy } else { falsy };
        }
        other => other.to_string(),
    };
    if let (Ok(a), Ok(e)) = (actual.parse::<f64>(), expected.trim().parse::<f64>()) {
        return a == e;
    }
    actual == expected
}

fn show(v: &Option<Option<String>>) -> String {
    match v {
        None => "no row".into(),
        Some(None) => "NULL".into(),
        Some(Some(s)) => format!("`{s}`"),
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs one query in a transaction that is always rolled back, so a smoke
/// check can never change anything.
async fn query_rolled_back(
    db: &mut dyn Database,
    sql: &str,
    timeouts: Timeouts,
) -> Result<Option<Option<String>>, crate::db::DbError> {
    db.begin(timeouts, true).await?;
    let result = db.query_text(sql).await;
    let rolled = db.rollback().await;
    let value = result?;
    rolled?;
    Ok(value)
}

/// Every post-migration check, in order; each one runs even when an
/// earlier one failed, so the record shows them all (except after a lost
/// connection, which fails the rest).
pub(crate) async fn run_all(
    db: &mut dyn Database,
    m: &Migration,
    env_smoke: &[String],
    counts_before: &BTreeMap<String, i64>,
    health_url: Option<&str>,
    timeouts: Timeouts,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let not_run = || (false, "not run: no connection".to_string());

    let t = chrono::Utc::now();
    let connected = db.query_text("SELECT 1").await;
    let alive = connected.is_ok();
    let detail = match connected {
        Ok(_) => format!("{} answers", db.display_url()),
        Err(e) => format!("the database does not answer: {e}"),
    };
    out.push(CheckResult::timed("connection", t, (alive, detail)));

    for s in &m.meta.smoke {
        let t = chrono::Utc::now();
        let result = if alive {
            smoke(db, s, timeouts).await
        } else {
            not_run()
        };
        out.push(CheckResult::timed("smoke", t, result));
    }
    for sql in env_smoke {
        let t = chrono::Utc::now();
        let result = if alive {
            env_smoke_query(db, sql, timeouts).await
        } else {
            not_run()
        };
        out.push(CheckResult::timed("env-smoke", t, result));
    }
    if !counts_before.is_empty() {
        let t = chrono::Utc::now();
        let result = if alive {
            row_counts(db, counts_before).await
        } else {
            not_run()
        };
        out.push(CheckResult::timed("row-counts", t, result));
    }
    if let Some(url) = health_url {
        let t = chrono::Utc::now();
        let result = health(url).await;
        out.push(CheckResult::timed("health", t, result));
    }
    out
}

impl CheckResult {
    /// The result of a check that started at `t` and has just ended.
    fn timed(step: &str, t: chrono::DateTime<chrono::Utc>, (ok, detail): (bool, String)) -> Self {
        CheckResult {
            step: step.into(),
            ok,
            detail,
            started_at: t,
            duration_ms: (chrono::Utc::now() - t).num_milliseconds().max(0) as u64,
        }
    }
}

/// A migration's smoke query: its one value is the one migration.toml expects.
pub(crate) async fn smoke(
    db: &mut dyn Database,
    s: &crate::migration::meta::Smoke,
    timeouts: Timeouts,
) -> (bool, String) {
    match query_rolled_back(db, &s.sql, timeouts).await {
        Ok(v) => {
            let actual = v.clone().flatten();
            let ok = v.is_some() && matches(actual.as_deref(), &s.expect);
            let detail = if ok {
                format!("{}: {} as expected", s.name, show(&v))
            } else {
                format!(
                    "{}: got {}, expected `{}`",
                    s.name,
                    show(&v),
                    value_text(&s.expect)
                )
            };
            (ok, detail)
        }
        Err(e) => (false, format!("{}: the query failed: {e}", s.name)),
    }
}

/// An environment's smoke query: it returns a row.
pub(crate) async fn env_smoke_query(
    db: &mut dyn Database,
    sql: &str,
    timeouts: Timeouts,
) -> (bool, String) {
    match query_rolled_back(db, sql, timeouts).await {
        Ok(Some(_)) => (true, format!("`{sql}` returned a row")),
        Ok(None) => (false, format!("`{sql}` returned no row")),
        Err(e) => (false, format!("`{sql}` failed: {e}")),
    }
}

/// The tables whose rows the migration must not change have as many as before.
async fn row_counts(
    db: &mut dyn Database,
    counts_before: &BTreeMap<String, i64>,
) -> (bool, String) {
    let tables: Vec<String> = counts_before.keys().cloned().collect();
    let after = match count_rows(db, &tables).await {
        Ok(after) => after,
        Err(e) => return (false, format!("counting rows failed: {e}")),
    };
    let mut changed = Vec::new();
    let mut same = Vec::new();
    for (table, before) in counts_before {
        match after.get(table) {
            Some(a) if a == before => same.push(format!("{table} {a}")),
            Some(a) => changed.push(format!("{table}: {before} before, {a} after")),
            None => changed.push(format!("{table}: {before} before, gone after")),
        }
    }
    if changed.is_empty() {
        (true, format!("unchanged: {}", same.join(", ")))
    } else {
        (
            false,
            format!(
                "rows changed in tables the migration does not insert into, update or delete from: {}",
                changed.join("; ")
            ),
        )
    }
}

/// GET `url`: passes on 200 within ten seconds.
pub(crate) async fn health(url: &str) -> (bool, String) {
    let owned = url.to_string();
    let result = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        agent.get(&owned).call().map(|r| r.status().as_u16())
    })
    .await;
    match result {
        Ok(Ok(200)) => (true, format!("{url} answered 200")),
        Ok(Ok(code)) => (false, format!("{url} answered {code}, not 200")),
        Ok(Err(e)) => (false, format!("{url} did not answer: {e}")),
        Err(e) => (false, format!("{url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_values_compare_as_numbers_or_text() {
        assert!(matches(Some("0"), &toml::Value::Integer(0)));
        assert!(matches(Some("0.0"), &toml::Value::Integer(0)));
        assert!(matches(Some("3"), &toml::Value::String("3".into())));
        assert!(!matches(Some("1"), &toml::Value::Integer(0)));
        assert!(!matches(None, &toml::Value::Integer(0)));
        assert!(matches(Some("t"), &toml::Value::Boolean(true)));
        assert!(matches(Some("1"), &toml::Value::Boolean(true)));
        assert!(!matches(Some("f"), &toml::Value::Boolean(true)));
        assert!(matches(Some("ok"), &toml::Value::String("ok".into())));
        assert!(!matches(Some("ok "), &toml::Value::String("ko".into())));
    }

    #[test]
    fn row_counts_cover_tables_whose_rows_must_not_change() {
        let files = |up: &str| {
            let meta = crate::migration::Meta::default();
            let dir = std::path::PathBuf::from("m");
            crate::analysis::analyze::analyze(
                &crate::analysis::analyze::MigrationFiles {
                    dir: &dir,
                    up,
                    down: None,
                    meta: &meta,
                    layout: None,
                },
                &mut crate::analysis::Schema::default(),
                None,
            )
        };
        assert_eq!(
            count_tables(&files(
                "ALTER TABLE users DROP COLUMN bio;\nCREATE INDEX i ON posts (x);"
            )),
            ["users", "posts"]
        );
        assert!(
            count_tables(&files(
                "UPDATE users SET a = 1;\nALTER TABLE users ADD COLUMN b int;"
            ))
            .is_empty()
        );
        assert!(
            count_tables(&files(
                "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN b int;"
            ))
            .is_empty()
        );
    }
}
