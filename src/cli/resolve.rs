use super::Ctx;
use crate::error::{Error, Result};
use crate::migration::Version;
use crate::migrator::Runner;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("outcome").required(true).args(["applied", "reverted", "accept_checksum"]))]
pub(crate) struct Args {
    /// The migration's version
    pub(crate) version: Version,
    /// Every statement of the failed migration has now taken effect (finished by hand)
    #[arg(long)]
    pub(crate) applied: bool,
    /// None of the failed migration remains (undone by hand); it becomes pending again
    #[arg(long)]
    pub(crate) reverted: bool,
    /// The applied migration's files changed only in ways that do not
    /// change what it did (comments and layout of up.sql, down.sql,
    /// migration.toml): record today's checksum, with --reason
    #[arg(long, requires = "reason")]
    pub(crate) accept_checksum: bool,
    /// Why the change is accepted (kept with who accepted it and when)
    #[arg(long, value_name = "TEXT", requires = "accept_checksum")]
    pub(crate) reason: Option<String>,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.accept_checksum {
        return accept(ctx, &args).await;
    }
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
    let result = runner.resolve(&files, args.version, args.applied).await;
    db.close().await;
    let resolved = result?;
    let file = if resolved.reverting {
        "down.sql"
    } else {
        "up.sql"
    };
    ctx.json(serde_json::json!({
        "version": args.version.to_string(),
        "state": resolved.state,
        "stopped_in": file,
    }));
    ctx.out.progress(&format!(
        "migration {} recorded as {} (it had stopped part-way through {file})",
        args.version,
        match resolved.state {
            "pending" => "reverted, pending again",
            "backfilling" => "applied; its backfill has not finished, `keel up` goes on with it",
            other => other,
        }
    ));
    if resolved.reverting && args.reverted {
        let note = files
            .iter()
            .find(|m| m.version == args.version)
            .and_then(|m| {
                crate::backup::unrestored_note(
                    std::path::Path::new("."),
                    m,
                    resolved.backup.as_ref(),
                )
            });
        if let Some(note) = note {
            ctx.out.progress(&format!("note: {note}"));
        }
    }
    Ok(())
}

/// `keel resolve V --accept-checksum --reason TEXT`: finds in git the
/// files the migration was applied with (by the checksum its row keeps),
/// and records today's files when they run the same SQL.
async fn accept(ctx: &Ctx, args: &Args) -> Result<()> {
    let reason = args.reason.as_deref().unwrap_or_default().trim();
    if reason.is_empty() {
        return Err(Error::Usage(
            "--reason is empty\n  fix: say why the change does not change what the migration did"
                .into(),
        ));
    }
    let files = ctx.migrations()?;
    let m = crate::migration::find(&files, &args.version.to_string())?;
    let toml_now = std::fs::read_to_string(m.dir.join("migration.toml")).ok();
    let mut db = ctx.connect().await?;
    let result = accept_on(ctx, db.as_mut(), m, toml_now.as_deref(), reason).await;
    db.close().await;
    let (accepted, signed) = result?;
    let record = match signed {
        Some(signed) => Some(keep_signed(m, &accepted, &signed)?),
        None => None,
    };
    let mut doc = serde_json::to_value(&accepted).map_err(anyhow::Error::from)?;
    doc["record"] = record.as_ref().map(|p| p.display().to_string()).into();
    ctx.json(doc);
    if let Some(path) = &record {
        ctx.out.progress(&format!(
            "signed record: {} (and .sig; `ssh-keygen -Y verify -n keel-record` checks it)",
            path.display()
        ));
    }
    ctx.out.progress(&format!(
        "accepted the checksum of {}: changed since it was applied (commit {}): {}; recorded by {} with the reason \"{}\"",
        m.id(),
        accepted.commit.get(..12).unwrap_or(&accepted.commit),
        accepted.changed.join(", "),
        accepted.by,
        accepted.reason
    ));
    Ok(())
}

async fn accept_on(
    ctx: &Ctx,
    db: &mut dyn crate::db::Database,
    m: &crate::migration::Migration,
    toml_now: Option<&str>,
    reason: &str,
) -> Result<(crate::migrator::Accepted, Option<crate::migrator::Signed>)> {
    let v = m.version.to_string();
    let row = db
        .tracking_rows()
        .await?
        .into_iter()
        .find(|r| r.version == v);
    let Some(row) = row else {
        return Err(Error::Refused(format!(
            "migration {} is not applied: there is no checksum to accept\n  fix: `keel status` shows it",
            m.id()
        )));
    };
    if row.checksum == m.checksum {
        return Err(Error::Refused(format!(
            "migration {}'s files are as they were applied (or as last accepted)\n  fix: there is nothing to accept",
            m.id()
        )));
    }
    let found = crate::review::history::applied_files(&m.dir, &row.checksum).map_err(|e| {
        Error::Refused(format!(
            "cannot look for the files {} was applied with in git: {e}\n  fix: run this in the project's git checkout, with its history (not a shallow clone)",
            m.id()
        ))
    })?;
    let Some(applied) = found else {
        return Err(Error::Refused(format!(
            "no commit of {} has the files {} was applied with (checksum {}), so keel cannot tell what changed\n  fix: put the files back as they ran (from the deploy that applied them), or write the change as a new migration",
            m.dir.display(),
            m.id(),
            row.checksum.get(..12).unwrap_or(&row.checksum)
        )));
    };
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db,
        settings: ctx.settings(),
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
        alone: false,
    };
    let signer = crate::record::Signer::from_config(&ctx.config, std::path::Path::new("."))?;
    let sign = |a: &crate::migrator::Accepted| -> std::result::Result<Option<crate::migrator::Signed>, String> {
        let Some(signer) = &signer else {
            return Ok(None);
        };
        let json = serde_json::to_string_pretty(a).map_err(|e| e.to_string())? + "\n";
        let signature = signer.sign(json.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Some(crate::migrator::Signed { json, signature }))
    };
    let as_applied = crate::migrator::AsApplied {
        commit: &applied.commit,
        up: &applied.up,
        down: applied.down.as_deref(),
        toml: applied.toml.as_deref(),
    };
    Ok(runner
        .accept_checksum(m, as_applied, (toml_now, reason), &sign)
        .await?)
}

/// Writes a signed decision beside the migration's execution records:
/// `records/<id>/accepted/checksum-<UTC stamp>.json` and its `.sig`, which
/// `ssh-keygen -Y verify` checks as it checks theirs. In a folder of its
/// own: it is not a link of an environment's chain of runs.
fn keep_signed(
    m: &crate::migration::Migration,
    accepted: &crate::migrator::Accepted,
    signed: &crate::migrator::Signed,
) -> Result<std::path::PathBuf> {
    let stamp: String = accepted
        .at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let dir = std::path::Path::new("records")
        .join(m.id())
        .join("accepted");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("checksum-{stamp}.json"));
    std::fs::write(&path, &signed.json)?;
    std::fs::write(crate::record::signature_path(&path), &signed.signature)?;
    Ok(path)
}
