//! `keel import`, `keel adopt` and `keel baseline`: taking over a project
//! and its databases from another migration tool.

use super::Ctx;
use crate::error::{Error, Result};
use crate::import::{Tool, adopt, layouts, write};
use crate::migration::Version;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The tool whose layout SRC is in
    #[arg(long = "from", value_enum)]
    pub(crate) tool: Tool,
    /// The folder with that tool's migrations
    pub(crate) src: PathBuf,
    /// Where keel's migrations go (default: the project's migrations folder)
    #[arg(long, value_name = "DIR")]
    pub(crate) to: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AdoptArgs {
    /// The tool whose tracking table the database has
    #[arg(long = "from", value_enum)]
    pub(crate) tool: Tool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BaselineArgs {
    /// Every migration up to and including this version is in the database already
    pub(crate) version: Version,
}

fn import_error(e: crate::import::ImportError) -> Error {
    Error::Usage(e.to_string())
}

pub(crate) fn import(ctx: &Ctx, args: ImportArgs) -> Result<()> {
    let found = layouts::read(args.tool, &args.src).map_err(import_error)?;
    let dir = args.to.clone().unwrap_or_else(|| ctx.migrations_dir());
    let existing = crate::migration::load_dir(&dir, &ctx.bounds()?)?;
    let written = write::write(args.tool, &found, &dir, &existing).map_err(import_error)?;
    let outside = found.iter().filter(|f| !f.transaction).count();
    if ctx.out.json {
        ctx.json(serde_json::json!({
            "from": args.tool.name(),
            "written": written.new.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "unchanged": written.unchanged.len(),
        }));
    } else {
        for p in &written.new {
            ctx.out.data(&p.display().to_string());
        }
    }
    ctx.out.progress(&format!(
        "imported {} {} migration(s) into {}: {} new, {} already there and unchanged{}",
        found.len(),
        args.tool.name(),
        dir.display(),
        written.new.len(),
        written.unchanged.len(),
        if outside > 0 {
            format!("; {outside} run outside a transaction (transaction = false)")
        } else {
            String::new()
        }
    ));
    ctx.out.progress(&format!(
        "  next: on a database {} migrated, `keel adopt --from {}`; then `keel status`",
        args.tool.name(),
        args.tool.name()
    ));
    Ok(())
}

fn adopt_error(e: adopt::AdoptError) -> Error {
    match e {
        adopt::AdoptError::Db(d) => Error::Db(d),
        refused @ adopt::AdoptError::Refused { .. } => Error::Refused(refused.to_string()),
    }
}

pub(crate) async fn adopt_cmd(ctx: &Ctx, args: AdoptArgs) -> Result<()> {
    let (files, mut db) = ctx.migrations_and_connect().await?;
    let result = adopt::adopt(db.as_mut(), args.tool, &files, &crate::migrator::operator()).await;
    db.close().await;
    let adopted = result.map_err(adopt_error)?;
    said(ctx, &format!("adopted from {}", args.tool.name()), &adopted);
    Ok(())
}

pub(crate) async fn baseline(ctx: &Ctx, args: BaselineArgs) -> Result<()> {
    let (files, mut db) = ctx.migrations_and_connect().await?;
    if !files.iter().any(|m| m.version == args.version) {
        db.close().await;
        return Err(Error::Usage(format!(
            "there is no migration {} in {}; nothing was written\n  fix: give the version of the newest migration the database already has",
            args.version,
            ctx.migrations_dir().display()
        )));
    }
    if let Some(tool) = adopt::history_of(db.as_mut(), &files).await? {
        db.close().await;
        return Err(Error::Refused(format!(
            "this database has {}'s tracking table: its history says what is applied, a baseline would guess; nothing was written\n  fix: `keel adopt --from {}`",
            tool.name(),
            tool.name()
        )));
    }
    let result = adopt::baseline(
        db.as_mut(),
        &files,
        args.version,
        &crate::migrator::operator(),
    )
    .await;
    db.close().await;
    let adopted = result.map_err(adopt_error)?;
    said(ctx, "baselined", &adopted);
    Ok(())
}

fn said(ctx: &Ctx, how: &str, adopted: &adopt::Adopted) {
    if ctx.out.json {
        ctx.json(serde_json::json!({ "applied": adopted.versions }));
    } else {
        for v in &adopted.versions {
            ctx.out.data(&format!("applied  {v} ({how})"));
        }
    }
    ctx.out.progress(&format!(
        "{} migration(s) recorded as applied; `keel up` applies the rest",
        adopted.versions.len()
    ));
}

/// A database another tool migrated, on which keel has not run: applying
/// from the first migration would fail (or worse, half-succeed), so `up`
/// refuses and names the way in.
pub(crate) async fn refuse_foreign(
    db: &mut dyn crate::db::Database,
    entries: &[crate::migrator::Entry<'_>],
) -> Result<()> {
    match foreign(db, entries).await? {
        Some(tool) => Err(Error::Refused(format!(
            "this database was migrated by {}: it has `{}`, and keel has no history here, so every migration would run again; nothing was changed\n  fix: `keel import --from {} SRC` if its files are not in keel's folder yet, then `keel adopt --from {}`",
            tool.name(),
            adopt::table(tool),
            tool.name(),
            tool.name()
        ))),
        None => Ok(()),
    }
}

/// The tool whose tracking table this database has, when keel has no
/// history on it (and there are migrations to speak of).
pub(crate) async fn foreign(
    db: &mut dyn crate::db::Database,
    entries: &[crate::migrator::Entry<'_>],
) -> Result<Option<Tool>> {
    if entries.is_empty() || entries.iter().any(|e| e.row.is_some()) {
        return Ok(None);
    }
    // Most databases have no other tool's table: no copy of the files then.
    if adopt::detect(db).await?.is_none() {
        return Ok(None);
    }
    let files: Vec<crate::migration::Migration> = entries
        .iter()
        .filter_map(|e| e.migration.cloned())
        .collect();
    Ok(adopt::history_of(db, &files).await?)
}
