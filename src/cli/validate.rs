use super::Ctx;
use crate::error::{Error, Result};
use crate::migrator::{Runner, validate};

pub(crate) async fn run(ctx: &Ctx) -> Result<()> {
    ctx.need_migrations_dir()?;
    let files = ctx.migrations()?;
    let mut db = ctx.connect().await?;
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings: ctx.settings(),
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
        alone: false,
    };
    let result = validate(&mut runner, &files).await;
    // What each pending migration's backup will be, against the schema as
    // it is (validate's own trial run was rolled back).
    let backups = match &result {
        Ok(_) => {
            let entries = crate::migrator::reconcile(&files, db.tracking_rows().await?);
            let pending = crate::migrator::pending(&entries, None);
            crate::backup::describe(db.as_mut(), &pending).await
        }
        Err(_) => Ok(Vec::new()),
    };
    db.close().await;
    let report = result?;
    let backups = backups?;
    if ctx.out.json {
        ctx.json(serde_json::json!({"ok": report.problems.is_empty(), "checked": report.checked, "problems": report.problems, "backups": backups.iter().map(|(m, b)| serde_json::json!({"migration": m, "statements": b})).collect::<Vec<_>>()}));
    } else {
        let mut text = String::new();
        for f in &report.checked {
            text.push_str(&format!(
                "ok       {}_{}: {}\n",
                f.version, f.name, f.message
            ));
        }
        for (m, lines) in &backups {
            for b in lines {
                text.push_str(&format!(
                    "backup   {m} line {} ({}): {}: {}\n",
                    b.line, b.statement, b.backup, b.detail
                ));
            }
        }
        for f in &report.problems {
            let place = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!(" at {file}:{line}"),
                _ => String::new(),
            };
            text.push_str(&format!(
                "{:<8} {}_{}{place}: {}\n",
                f.result, f.version, f.name, f.message
            ));
        }
        if report.checked.is_empty() && report.problems.is_empty() {
            text.push_str("ok: applied checksums match and nothing is pending\n");
        }
        ctx.out.data(&text);
    }
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Check(format!(
            "validate found {} problem(s); nothing was changed",
            report.problems.len()
        )))
    }
}
