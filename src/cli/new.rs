//! `keel new NAME`: flags in, folder paths out; the scaffolding is
//! [`crate::scaffold`].

use super::Ctx;
use crate::error::Result;
use crate::scaffold::{self, Request};
use std::path::Path;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// snake_case name, e.g. add_user_profiles
    pub(crate) name: String,
    /// empty, add-table, add-column, drop-column, add-index, backfill, rename-column (or one in templates/new/)
    #[arg(long, default_value = "empty")]
    pub(crate) template: String,
    /// Table the template works on
    #[arg(long)]
    pub(crate) table: Option<String>,
    /// Column the template works on
    #[arg(long)]
    pub(crate) column: Option<String>,
    /// New column name for rename-column (expand, migrate, contract)
    #[arg(long, value_name = "NEW")]
    pub(crate) to: Option<String>,
    /// Integer primary key the rename-column backfill walks (default id)
    #[arg(long, value_name = "COLUMN")]
    pub(crate) key: Option<String>,
    /// Column type for add-column, drop-column (its down), backfill and rename-column
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) column_type: Option<String>,
    /// One-line description written into migration.toml
    #[arg(long)]
    pub(crate) description: Option<String>,
}

pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let scaffold = scaffold::prepare(
        Path::new("."),
        Request {
            name: args.name,
            template: args.template,
            table: args.table,
            column: args.column,
            to: args.to,
            key: args.key,
            column_type: args.column_type,
            description: args.description,
        },
    )?;
    let latest = ctx.migrations()?.last().map(|m| m.version);
    let written = scaffold.write(&ctx.migrations_dir(), latest)?;
    let json = |w: &scaffold::Written| serde_json::json!({"version": w.version.to_string(), "name": w.name, "path": w.path.display().to_string()});
    match written.as_slice() {
        [one] if ctx.out.json => ctx.json(json(one)),
        [one] => ctx.out.data(&one.path.display().to_string()),
        many if ctx.out.json => ctx.json(serde_json::json!({
            "migrations": many.iter().map(json).collect::<Vec<_>>()
        })),
        many => {
            let paths: Vec<String> = many.iter().map(|w| w.path.display().to_string()).collect();
            ctx.out.data(&paths.join("\n"));
        }
    }
    Ok(())
}
