use super::Ctx;
use crate::error::Result;
use crate::migration::{Migration, Version};
use crate::migrator::{Runner, State, reconcile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply pending migrations up to and including this version
    #[arg(long, value_name = "VERSION")]
    pub to: Option<Version>,
    /// Print what would run, in order, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let mut db = ctx.connect().await?;
    if args.dry_run {
        let entries = reconcile(&files, db.tracking_rows().await?);
        let pending: Vec<&Migration> = entries
            .iter()
            .filter(|e| e.state == State::Pending)
            .filter_map(|e| e.migration)
            .filter(|m| args.to.is_none_or(|to| m.version <= to))
            .collect();
        db.close().await;
        print_dry_run(ctx, "up", &pending, |m| m.up.as_str());
        return Ok(());
    }
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings: ctx.settings(),
        operator: crate::migrator::operator(),
        on_event: &on_event,
    };
    let result = runner.up(&files, args.to).await;
    db.close().await;
    let applied = result?;
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "applied": applied.iter().map(|m| serde_json::json!({"version": m.version.to_string(), "name": m.name})).collect::<Vec<_>>()
        }));
    } else if applied.is_empty() {
        ctx.out
            .progress("nothing to apply: the database is up to date");
    } else {
        ctx.out
            .progress(&format!("{} migration(s) applied", applied.len()));
    }
    Ok(())
}

/// Prints each migration's SQL, in the order it would run.
pub fn print_dry_run(
    ctx: &Ctx,
    direction: &str,
    migrations: &[&Migration],
    sql: impl Fn(&Migration) -> &str,
) {
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "dry_run": true,
            "direction": direction,
            "migrations": migrations.iter().map(|m| serde_json::json!({
                "version": m.version.to_string(),
                "name": m.name,
                "transaction": m.meta.transaction,
                "statements": crate::analysis::split(sql(m)).iter().map(|s| serde_json::json!({"sql": s.sql, "line": s.line})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>()
        }));
        return;
    }
    if migrations.is_empty() {
        ctx.out
            .data(&format!("-- dry run ({direction}): nothing to do"));
        return;
    }
    let mut text = format!(
        "-- dry run ({direction}): {} migration(s), in order; nothing is changed\n",
        migrations.len()
    );
    for m in migrations {
        let file = if direction == "up" {
            m.up_path()
        } else {
            m.down_path()
        };
        text.push_str(&format!(
            "\n-- {} ({})\n-- {}\n",
            m.id(),
            if m.meta.transaction {
                "one transaction"
            } else {
                "transaction = false: statement by statement"
            },
            file.display()
        ));
        let body = sql(m).trim_end();
        text.push_str(body);
        text.push('\n');
    }
    ctx.out.data(&text);
}
