use super::Ctx;
use crate::db::Runs;
use crate::error::Result;
use crate::migrator::reconcile;

pub(crate) async fn run(ctx: &Ctx) -> Result<()> {
    ctx.need_migrations_dir()?;
    // The tracking rows and records are read while the files are.
    let read = async {
        let mut db = ctx.connect().await?;
        // Asked before the rows: once no run holds the lock, the rows read
        // after hold whatever the last run committed.
        let runs = db.runs().await;
        let rows = db.tracking_rows().await;
        let records = crate::record::store::all(db.as_mut()).await;
        let accepted = db.notes(crate::migrator::ACCEPTED).await;
        db.close().await;
        Ok((runs?, rows?, records?, accepted?))
    };
    let (files, (runs, rows, records, accepted)) = match ctx.migrations_while(read).await {
        (Err(e), _) | (Ok(_), Some(Err(e))) => return Err(e),
        (Ok(files), Some(Ok(read))) => (files, read),
        (Ok(_), None) => unreachable!("the database is read whenever the files are good"),
    };
    let entries = reconcile(&files, rows);
    // Read back as untrusted: a note that does not parse is not shown.
    let accepted: Vec<crate::migrator::Accepted> = accepted
        .iter()
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    let foreign = migrated_by(ctx, &entries).await?;
    let interrupted = crate::record::chain::interrupted(&records);
    let running = match &runs {
        Runs::Idle => None,
        Runs::Running(holder) => Some(running(holder.as_ref())),
    };
    if ctx.out.json {
        let mut doc = document(&entries, foreign, &interrupted, &accepted);
        doc["running"] = serde_json::json!(running);
        ctx.json(doc);
        return Ok(());
    }
    if entries.is_empty() {
        ctx.out.data(&format!(
            "no migrations in {}; create one with `keel new NAME`",
            ctx.migrations_dir().display()
        ));
        return Ok(());
    }
    let mut table = vec![
        ["VERSION", "NAME", "STATE", "APPLIED AT (UTC)", "BY", "TOOK"]
            .map(String::from)
            .to_vec(),
    ];
    for e in &entries {
        let r = e.row.as_ref();
        table.push(vec![
            e.version.clone(),
            e.name.clone(),
            state(e).to_string(),
            r.map(|r| r.applied_at.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
            r.map(|r| r.applied_by.clone()).unwrap_or_default(),
            r.map(|r| {
                super::output::millis(std::time::Duration::from_millis(
                    r.execution_ms.max(0) as u64
                ))
            })
            .unwrap_or_default(),
        ]);
    }
    let mut text = render_table(&table);
    let pending = entries
        .iter()
        .filter(|e| e.state == crate::migrator::State::Pending)
        .count();
    let blocked: Vec<_> = entries.iter().filter(|e| e.state.blocks_runs()).collect();
    text.push_str(&format!(
        "\n{} applied, {pending} pending",
        entries.len() - pending - blocked.len()
    ));
    if !blocked.is_empty() {
        text.push_str(&format!(
            ", {} need attention (runs are refused until fixed)",
            blocked.len()
        ));
        for e in blocked {
            if let Some(err) = e.row.as_ref().and_then(|r| r.error.as_ref()) {
                text.push_str(&format!("\n  {}: {err}", e.version));
            }
        }
    }
    text.push_str(&notes(&entries, foreign));
    for a in &accepted {
        text.push_str(&format!(
            "\naccepted: {}'s changed files ({}) by {} at {}: {}",
            a.version,
            a.changed.join(", "),
            a.by,
            a.at,
            a.reason
        ));
    }
    for r in &interrupted {
        text.push_str(&format!(
            "\ninterrupted: the run of {} on `{}` (intent records/{}, {}) has no final record: keel was stopped during it, or it is still running\n  fix: {}",
            r.migration,
            r.environment,
            r.path,
            r.written_at,
            fix(r)
        ));
    }
    if let Some(r) = &running {
        text.push_str(&format!("\nrunning: {}\n  fix: {}", r.said, r.fix));
    }
    ctx.out.data(&text);
    Ok(())
}

/// A run that holds the run lock while `status` reads, in words.
#[derive(serde::Serialize)]
struct Running {
    /// Who holds the lock, as the database tells.
    holder: Option<String>,
    said: String,
    fix: &'static str,
}

fn running(holder: Option<&crate::db::LockHolder>) -> Running {
    let who = holder.map_or("held by another keel".to_string(), |h| h.to_string());
    Running {
        holder: holder.map(|h| h.to_string()),
        said: format!(
            "the run lock is {who}: the states above are those of before its current transaction, which may still commit or roll back (after keel was stopped too, until its server session has ended)"
        ),
        fix: "wait for that run to end (`keel status` again shows no `running:` line), then decide on what it says",
    }
}

/// `keel status --format json`.
fn document(
    entries: &[crate::migrator::Entry<'_>],
    foreign: Option<crate::import::Tool>,
    interrupted: &[crate::record::store::Row],
    accepted: &[crate::migrator::Accepted],
) -> serde_json::Value {
    serde_json::json!({
        "migrated_by": foreign.map(|t| t.name()),
        "accepted_checksums": accepted,
        "interrupted": interrupted.iter().map(|r| serde_json::json!({
            "environment": r.environment,
            "migration": r.migration,
            "record": format!("records/{}", r.path),
            "started_at": r.written_at,
            "fix": fix(r),
        })).collect::<Vec<_>>(),
        "migrations": entries.iter().map(|e| serde_json::json!({
            "version": e.version,
            "name": e.name,
            "state": state(e),
            "requires_deploy": e.migration.and_then(|m| m.meta.requires_deploy.clone()),
            "applied_at": e.row.as_ref().map(|r| r.applied_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "applied_by": e.row.as_ref().map(|r| r.applied_by.clone()),
            "execution_ms": e.row.as_ref().map(|r| r.execution_ms),
            "error": e.row.as_ref().and_then(|r| r.error.clone()),
            // A failed migration stopped in up.sql ("up") or down.sql ("down").
            "failed_direction": e.failed_direction(),
        })).collect::<Vec<_>>()
    })
}

/// The tool that migrated this database, when keel has no history here:
/// a database another tool migrated shows all pending, and `status` says why.
async fn migrated_by(
    ctx: &Ctx,
    entries: &[crate::migrator::Entry<'_>],
) -> Result<Option<crate::import::Tool>> {
    if entries.is_empty() || entries.iter().any(|e| e.row.is_some()) {
        return Ok(None);
    }
    let mut db = ctx.connect().await?;
    let found = super::import::foreign(db.as_mut(), entries).await;
    db.close().await;
    found
}

/// The lines after the table: another tool's history, a deploy `up` waits for.
fn notes(entries: &[crate::migrator::Entry<'_>], foreign: Option<crate::import::Tool>) -> String {
    let mut text = String::new();
    if let Some(tool) = foreign {
        text.push_str(&format!(
            "\nthis database was migrated by {}: it has `{}` and no keel history, so everything shows pending\n  fix: `keel adopt --from {}`",
            tool.name(),
            crate::import::adopt::table(tool),
            tool.name()
        ));
    }
    if let Some(w) = crate::migrator::waiting(entries, None, None) {
        text.push_str(&format!(
            "\nwaiting: `keel up` stops before {}: it waits for a deploy: {}\n  then: once that is live everywhere, `keel up --through {}`",
            w.id(),
            w.meta.requires_deploy.as_deref().unwrap_or_default(),
            w.version
        ));
    }
    text
}

/// The state `status` shows: a pending migration that waits for a deploy
/// (`requires_deploy`) is `waiting`, since `keel up` will not apply it.
fn state(e: &crate::migrator::Entry<'_>) -> &'static str {
    let waits = e
        .migration
        .is_some_and(|m| m.meta.requires_deploy.is_some());
    if e.state == crate::migrator::State::Pending && waits {
        "waiting"
    } else {
        e.state.as_str()
    }
}

fn fix(r: &crate::record::store::Row) -> String {
    let version = r.migration.get(..14).unwrap_or(&r.migration);
    format!(
        "`keel execute {version} --env {}` finishes it (post-migration checks, rollback if one fails, record) or records it as interrupted",
        r.environment
    )
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn render_table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
