use super::{Ctx, usage};
use crate::error::Result;
use crate::migration::{Version, template};
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// snake_case name, e.g. add_user_profiles
    pub name: String,
    /// empty, add-table, add-column, drop-column, add-index, backfill, rename-column (or one in templates/new/)
    #[arg(long, default_value = "empty")]
    pub template: String,
    /// Table the template works on
    #[arg(long)]
    pub table: Option<String>,
    /// Column the template works on
    #[arg(long)]
    pub column: Option<String>,
    /// New column name for rename-column (expand, migrate, contract)
    #[arg(long, value_name = "NEW")]
    pub to: Option<String>,
    /// Integer primary key the rename-column backfill walks (default id)
    #[arg(long, value_name = "COLUMN")]
    pub key: Option<String>,
    /// Column type for add-column, drop-column (its down), backfill and rename-column
    #[arg(long = "type", value_name = "TYPE")]
    pub column_type: Option<String>,
    /// One-line description written into migration.toml
    #[arg(long)]
    pub description: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if !crate::migration::is_snake_case(&args.name) {
        return Err(usage(format!(
            "`{}` is not a snake_case name (lowercase letters, digits, single underscores)\n  fix: keel new {}",
            args.name,
            crate::migration::to_snake_case(&args.name)
        )));
    }
    let needs: &[&str] = match args.template.as_str() {
        "empty" => &[],
        "add-table" => &["table"],
        "add-column" | "drop-column" | "backfill" => &["table", "column"],
        "add-index" => &["table", "column"],
        "rename-column" => &["table", "column", "to"],
        _ => &[],
    };
    for (flag, value) in [
        ("table", &args.table),
        ("column", &args.column),
        ("to", &args.to),
        ("key", &args.key),
    ] {
        if needs.contains(&flag) && value.is_none() {
            let to = if flag == "to" { " --to NEW" } else { "" };
            return Err(usage(format!(
                "the {} template needs --{flag}\n  fix: keel new {} --template {} --table TABLE --column COLUMN{to}",
                args.template, args.name, args.template
            )));
        }
        if let Some(v) = value
            && !is_identifier(v)
        {
            return Err(usage(format!(
                "--{flag} `{v}` is not an identifier (letters, digits and _, optionally schema.name)"
            )));
        }
    }
    if args.template == "rename-column" {
        return rename_column(ctx, &args);
    }
    let project = Path::new(".");
    let files = template::load(project, &args.template).ok_or_else(|| {
        usage(format!(
            "there is no template `{}`\n  fix: use one of {}, or add templates/new/{}/",
            args.template,
            template::built_in_names().join(", "),
            args.template
        ))
    })?;

    let dir = ctx.migrations_dir();
    let existing = ctx.migrations()?;
    let version = next_version(Version::now(), existing.last().map(|m| m.version));
    let folder = dir.join(format!("{version}_{}", args.name));

    let table = args
        .table
        .clone()
        .unwrap_or_else(|| args.name.trim_start_matches("create_").to_string());
    let column = args.column.clone().unwrap_or_else(|| "new_column".into());
    let mut context = tera::Context::new();
    context.insert("name", &args.name);
    context.insert("version", &version.to_string());
    context.insert(
        "description",
        &args
            .description
            .clone()
            .unwrap_or_else(|| args.name.replace('_', " ")),
    );
    context.insert("table", &table);
    context.insert("column", &column);
    context.insert("type", args.column_type.as_deref().unwrap_or("text"));
    context.insert(
        "index",
        &format!(
            "{}_{}_idx",
            table.rsplit('.').next().unwrap_or(&table),
            column
        ),
    );
    context.insert(
        "null_check",
        &format!("{} IS NULL", template::quote_if_needed(&column)),
    );

    let mut rendered = Vec::new();
    for (file, text) in files {
        let body = template::render(&text, &context).map_err(|e| {
            usage(format!(
                "template {}/{file} does not render: {e:?}",
                args.template
            ))
        })?;
        rendered.push((file, body));
    }
    std::fs::create_dir_all(&folder)?;
    for (file, body) in rendered {
        std::fs::write(folder.join(file), body)?;
    }
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({"version": version.to_string(), "name": args.name, "path": folder.display().to_string()}));
    } else {
        ctx.out.data(&folder.display().to_string());
    }
    Ok(())
}

/// `--template rename-column`: three migrations, expand (new column and a
/// sync trigger), migrate (backfill) and contract (drop the trigger and the
/// old column), one second apart so they apply in that order.
fn rename_column(ctx: &Ctx, args: &Args) -> Result<()> {
    let (table, column, to) = (
        args.table.clone().unwrap_or_default(),
        args.column.clone().unwrap_or_default(),
        args.to.clone().unwrap_or_default(),
    );
    if column == to {
        return Err(usage(format!(
            "--column and --to are both `{to}`: a rename needs a new name"
        )));
    }
    let bare = table.rsplit('.').next().unwrap_or(&table);
    let mut context = tera::Context::new();
    context.insert("table", &table);
    context.insert("column", &column);
    context.insert("to", &to);
    context.insert("key", args.key.as_deref().unwrap_or("id"));
    context.insert("type", args.column_type.as_deref().unwrap_or("text"));
    // PostgreSQL names are at most 63 bytes; keel's stay well inside that.
    let sync = format!("{bare}_{column}_{to}_sync");
    let sync: String = sync.chars().take(63).collect();
    let qualified = match table.rsplit_once('.') {
        Some((schema, _)) => format!("{schema}.{sync}"),
        None => sync.clone(),
    };
    context.insert("function", &qualified);
    context.insert("trigger", &sync);

    let dir = ctx.migrations_dir();
    let existing = ctx.migrations()?;
    let mut version = next_version(Version::now(), existing.last().map(|m| m.version));
    let mut written = Vec::new();
    for step in ["expand", "migrate", "contract"] {
        let template = format!("rename-column/{step}");
        let files = template::load(Path::new("."), &template)
            .ok_or_else(|| usage(format!("there is no template `{template}`")))?;
        let name = format!("{}_{step}", args.name);
        let folder = dir.join(format!("{version}_{name}"));
        let mut rendered = Vec::new();
        for (file, text) in files {
            let body = template::render(&text, &context)
                .map_err(|e| usage(format!("template {template}/{file} does not render: {e:?}")))?;
            rendered.push((file, body));
        }
        std::fs::create_dir_all(&folder)?;
        for (file, body) in rendered {
            std::fs::write(folder.join(file), body)?;
        }
        written.push((version, name, folder));
        version = next_version(version, Some(version));
    }
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "migrations": written.iter().map(|(v, n, f)| serde_json::json!({
                "version": v.to_string(), "name": n, "path": f.display().to_string()
            })).collect::<Vec<_>>()
        }));
    } else {
        let paths: Vec<String> = written
            .iter()
            .map(|(.., f)| f.display().to_string())
            .collect();
        ctx.out.data(&paths.join("\n"));
    }
    Ok(())
}

/// Now, or one second after the newest existing migration, so that a new
/// migration always sorts last.
fn next_version(now: Version, latest: Option<Version>) -> Version {
    match latest {
        Some(latest) if latest >= now => {
            let parsed = chrono::NaiveDateTime::parse_from_str(&latest.to_string(), "%Y%m%d%H%M%S");
            match parsed {
                Ok(t) => {
                    let next = (t + chrono::Duration::seconds(1))
                        .format("%Y%m%d%H%M%S")
                        .to_string();
                    Version(next.parse().unwrap_or(latest.0 + 1))
                }
                Err(_) => Version(latest.0 + 1),
            }
        }
        _ => now,
    }
}

fn is_identifier(s: &str) -> bool {
    s.split('.').all(|part| {
        part.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }) && s.split('.').count() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_always_move_forward() {
        assert_eq!(
            next_version(Version(20250101000000), None),
            Version(20250101000000)
        );
        assert_eq!(
            next_version(Version(20250101000000), Some(Version(20250101000000))),
            Version(20250101000001)
        );
        assert_eq!(
            next_version(Version(20250101000000), Some(Version(20991231235959))),
            Version(21000101000000)
        );
    }
}
