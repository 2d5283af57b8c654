//! Taking over another tool's tracking table: which of its migrations the
//! database has, checked against keel's (imported) files and the checksum
//! the tool kept (sqlx: SHA-384 of the file, Prisma: SHA-256), recorded as
//! applied in `keel_migrations` in one transaction. The tool's own table is
//! left as it is.

use super::{Tool, version_of};
use crate::db::{Database, DbError, Timeouts, TrackingRow, TrackingState, Value};
use crate::migration::{Migration, Version};
use sha2::{Digest, Sha256, Sha384};

/// Why keel does not adopt; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{message}; nothing was written\n  fix: {fix}")]
    Refused { message: String, fix: String },
}

fn refused(message: String, fix: impl Into<String>) -> AdoptError {
    AdoptError::Refused {
        message,
        fix: fix.into(),
    }
}

/// One migration the tool's table says the database has.
#[derive(Debug)]
struct Applied {
    version: Version,
    /// The tool's checksum of the file, lowercase hex, where it keeps one.
    checksum: Option<(String, &'static str)>,
    execution_ms: i64,
}

/// The tool's table, as the tool names it.
pub(crate) fn table(tool: Tool) -> &'static str {
    match tool {
        Tool::Sqlx => "_sqlx_migrations",
        Tool::Dbmate | Tool::GolangMigrate => "schema_migrations",
        Tool::Goose => "goose_db_version",
        Tool::Prisma => "_prisma_migrations",
        Tool::Diesel => "__diesel_schema_migrations",
        Tool::Flyway => "flyway_schema_history",
    }
}

async fn exists(db: &mut dyn Database, table: &str) -> Result<bool, DbError> {
    let sql = if db.dialect_name() == "PostgreSQL" {
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = $1 AND schemaname = ANY (current_schemas(false))"
    } else {
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
    };
    let rows = db.query_with(sql, &[Value::Text(table.into())]).await?;
    Ok(matches!(rows.first().and_then(|r| r.first()), Some(Value::Int(n)) if *n > 0))
}

/// golang-migrate's `schema_migrations` has `dirty`; dbmate's does not.
async fn has_dirty(db: &mut dyn Database) -> Result<bool, DbError> {
    let sql = if db.dialect_name() == "PostgreSQL" {
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'schema_migrations' AND column_name = 'dirty'"
    } else {
        "SELECT count(*) FROM pragma_table_info('schema_migrations') WHERE name = 'dirty'"
    };
    let rows = db.query_with(sql, &[]).await?;
    Ok(matches!(rows.first().and_then(|r| r.first()), Some(Value::Int(n)) if *n > 0))
}

/// Which tool's table this database has, if any.
pub(crate) async fn detect(db: &mut dyn Database) -> Result<Option<Tool>, DbError> {
    for tool in Tool::ALL {
        if tool == Tool::Dbmate || tool == Tool::GolangMigrate {
            continue;
        }
        if exists(db, table(tool)).await? {
            return Ok(Some(tool));
        }
    }
    if exists(db, "schema_migrations").await? {
        return Ok(Some(if has_dirty(db).await? {
            Tool::GolangMigrate
        } else {
            Tool::Dbmate
        }));
    }
    Ok(None)
}

/// The tool whose history of *these* migrations this database holds: its
/// table names at least one of `files` (or is in a state `adopt` refuses,
/// failed or dirty). A table of the same name that names none of them
/// (Rails' `schema_migrations`, an older project's) is someone else's
/// history, and keel goes on beside it.
pub(crate) async fn history_of(
    db: &mut dyn Database,
    files: &[Migration],
) -> Result<Option<Tool>, DbError> {
    let Some(tool) = detect(db).await? else {
        return Ok(None);
    };
    match applied(db, tool, files).await {
        Ok(list) => Ok(list
            .iter()
            .any(|a| files.iter().any(|m| m.version == a.version))
            .then_some(tool)),
        Err(AdoptError::Db(e)) => Err(e),
        Err(AdoptError::Refused { .. }) => Ok(Some(tool)),
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_text).unwrap_or_default()
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(n)) => *n,
        other => text(other).trim().parse().unwrap_or(0),
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(n)) => *n != 0,
        other => matches!(text(other).as_str(), "t" | "true" | "1"),
    }
}

/// What the tool's table says is applied, in version order.
async fn applied(
    db: &mut dyn Database,
    tool: Tool,
    files: &[Migration],
) -> Result<Vec<Applied>, AdoptError> {
    let bad = |what: String| {
        refused(
            format!("{} says {what}", table(tool)),
            format!("finish or repair it with {} first, then adopt", tool.name()),
        )
    };
    let mut out = match tool {
        Tool::Sqlx => sqlx(db, &bad).await?,
        Tool::Dbmate | Tool::Diesel => listed(db, tool, &bad).await?,
        Tool::GolangMigrate => golang_migrate(db, files, &bad).await?,
        Tool::Goose => goose(db).await?,
        Tool::Prisma => prisma(db, &bad).await?,
        Tool::Flyway => flyway(db, files, &bad).await?,
    };
    out.sort_by_key(|a| a.version);
    out.dedup_by_key(|a| a.version);
    Ok(out)
}

type Bad<'a> = &'a dyn Fn(String) -> AdoptError;

/// `_sqlx_migrations`: a row per migration, its SHA-384, `success`.
async fn sqlx(db: &mut dyn Database, bad: Bad<'_>) -> Result<Vec<Applied>, AdoptError> {
    let hex = if db.dialect_name() == "PostgreSQL" {
        "encode(checksum, 'hex')"
    } else {
        "lower(hex(checksum))"
    };
    let sql = format!(
        "SELECT version, success, {hex}, execution_time FROM _sqlx_migrations ORDER BY version"
    );
    let mut out = Vec::new();
    for r in db.query_with(&sql, &[]).await? {
        let version = Version(int(r.first()).max(0) as u64);
        if !truthy(r.get(1)) {
            return Err(bad(format!("migration {version} failed (success = false)")));
        }
        out.push(Applied {
            version,
            checksum: Some((text(r.get(2)).to_lowercase(), "SHA-384")),
            // sqlx keeps nanoseconds.
            execution_ms: int(r.get(3)) / 1_000_000,
        });
    }
    Ok(out)
}

/// dbmate's `schema_migrations` and diesel's table: the applied versions.
async fn listed(
    db: &mut dyn Database,
    tool: Tool,
    bad: Bad<'_>,
) -> Result<Vec<Applied>, AdoptError> {
    let t = table(tool);
    let mut out = Vec::new();
    for r in db
        .query_with(&format!("SELECT CAST(version AS TEXT) FROM {t}"), &[])
        .await?
    {
        let v = text(r.first());
        let version =
            version_of(&v, t).map_err(|e| bad(format!("version `{v}`: {}", e.message)))?;
        out.push(Applied {
            version,
            checksum: None,
            execution_ms: 0,
        });
    }
    Ok(out)
}

/// golang-migrate's `schema_migrations`: one row, the current version;
/// everything up to it is applied, unless it is dirty.
async fn golang_migrate(
    db: &mut dyn Database,
    files: &[Migration],
    bad: Bad<'_>,
) -> Result<Vec<Applied>, AdoptError> {
    let rows = db
        .query_with("SELECT version, dirty FROM schema_migrations", &[])
        .await?;
    let Some(r) = rows.first() else {
        return Ok(Vec::new());
    };
    let current = Version(int(r.first()).max(0) as u64);
    if truthy(r.get(1)) {
        return Err(bad(format!(
            "version {current} is dirty (it failed half-way)"
        )));
    }
    Ok(files
        .iter()
        .filter(|m| m.version <= current)
        .map(|m| Applied {
            version: m.version,
            checksum: None,
            execution_ms: 0,
        })
        .collect())
}

/// `goose_db_version`: a row per apply and per rollback; the latest row
/// of a version decides (version 0 is goose's own first row).
async fn goose(db: &mut dyn Database) -> Result<Vec<Applied>, AdoptError> {
    let mut state: std::collections::BTreeMap<u64, bool> = Default::default();
    let sql = "SELECT version_id, is_applied FROM goose_db_version ORDER BY id";
    for r in db.query_with(sql, &[]).await? {
        state.insert(int(r.first()).max(0) as u64, truthy(r.get(1)));
    }
    Ok(state
        .into_iter()
        .filter(|(v, on)| *v > 0 && *on)
        .map(|(v, _)| Applied {
            version: Version(v),
            checksum: None,
            execution_ms: 0,
        })
        .collect())
}

/// `_prisma_migrations`: finished rows count, rolled-back ones do not, an
/// unfinished one is a failed migration; each has its file's SHA-256.
async fn prisma(db: &mut dyn Database, bad: Bad<'_>) -> Result<Vec<Applied>, AdoptError> {
    let sql = "SELECT migration_name, checksum, CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END, \
               CASE WHEN rolled_back_at IS NULL THEN 0 ELSE 1 END FROM _prisma_migrations ORDER BY started_at";
    let mut out = Vec::new();
    for r in db.query_with(sql, &[]).await? {
        let name = text(r.first());
        if truthy(r.get(3)) {
            continue;
        }
        if !truthy(r.get(2)) {
            return Err(bad(format!(
                "`{name}` failed (not finished, not rolled back)"
            )));
        }
        let v = name.split('_').next().unwrap_or_default();
        let version = version_of(v, "_prisma_migrations")
            .map_err(|e| bad(format!("`{name}`: {}", e.message)))?;
        out.push(Applied {
            version,
            checksum: Some((text(r.get(1)).to_lowercase(), "SHA-256")),
            execution_ms: 0,
        });
    }
    Ok(out)
}

/// The Flyway file a migration was imported from (`imported_from =
/// "flyway: sub/V1__x.sql"`): its file name, as `script` has it.
fn flyway_file(m: &Migration) -> Option<&str> {
    let source = m.meta.imported_from.as_deref()?.strip_prefix("flyway: ")?;
    source.rsplit('/').next()
}

/// `flyway_schema_history`, in `installed_rank` order: a `SQL` row applies
/// its script (matched to the migration imported from it), an undo or a
/// `DELETE` (repair) row takes its version back, a `BASELINE` row stands
/// for every version up to its own, a failed row refuses. A repeatable
/// (no version) counts as applied only when its latest checksum is the
/// file's: otherwise Flyway would run it again, and so will `keel up`.
async fn flyway(
    db: &mut dyn Database,
    files: &[Migration],
    bad: Bad<'_>,
) -> Result<Vec<Applied>, AdoptError> {
    use super::flyway::{checksum, parts, same_version};
    let sql = "SELECT CAST(version AS TEXT), type, script, checksum, success, execution_time \
               FROM flyway_schema_history ORDER BY installed_rank";
    let by_version = |v: &str| -> Result<Vec<&Migration>, AdoptError> {
        let wanted = parts(v, "flyway_schema_history").map_err(|e| bad(e.message))?;
        Ok(files
            .iter()
            .filter(|m| {
                flyway_file(m)
                    .and_then(|f| f.get(1..)?.split_once("__"))
                    .and_then(|(fv, _)| parts(fv, "").ok())
                    .is_some_and(|p| same_version(&p, &wanted))
            })
            .collect())
    };
    let mut state: std::collections::BTreeMap<Version, Applied> = Default::default();
    for r in db.query_with(sql, &[]).await? {
        let (version, kind, script) = (text(r.first()), text(r.get(1)), text(r.get(2)));
        if !truthy(r.get(4)) {
            return Err(bad(format!("`{script}` failed (success = false)")));
        }
        match kind.as_str() {
            "SCHEMA" => continue,
            "BASELINE" => {
                let through =
                    parts(&version, "flyway_schema_history").map_err(|e| bad(e.message))?;
                for m in files {
                    let Some((fv, _)) = flyway_file(m).and_then(|f| f.get(1..)?.split_once("__"))
                    else {
                        continue;
                    };
                    let Ok(p) = parts(fv, "") else { continue };
                    if flyway_file(m).is_some_and(|f| f.starts_with('V')) && p <= through {
                        state.entry(m.version).or_insert(Applied {
                            version: m.version,
                            checksum: None,
                            execution_ms: 0,
                        });
                    }
                }
                continue;
            }
            k if k.starts_with("UNDO") || k == "DELETE" => {
                for m in by_version(&version)? {
                    state.remove(&m.version);
                }
                continue;
            }
            _ => {}
        }
        let Some(m) = files
            .iter()
            .find(|m| flyway_file(m) == script.rsplit('/').next())
        else {
            return Err(refused(
                format!("flyway applied `{script}`, which is not among keel's migrations"),
                "`keel import --from flyway SRC` first, from the folder that has it (keel imports SQL migrations only: a Java one becomes a keel migration you write, or a `keel baseline`)",
            ));
        };
        let stored = int(r.get(3)).to_string();
        if version.is_empty() && stored != checksum(&m.up).to_string() {
            // An older text of a repeatable: pending again.
            state.remove(&m.version);
            continue;
        }
        state.insert(
            m.version,
            Applied {
                version: m.version,
                checksum: (!version.is_empty()).then_some((stored, "CRC32")),
                execution_ms: int(r.get(5)),
            },
        );
    }
    Ok(state.into_values().collect())
}

/// What `keel adopt` did.
#[derive(Debug)]
pub(crate) struct Adopted {
    pub(crate) versions: Vec<String>,
}

/// Records as applied in keel's table every migration `tool`'s table says
/// the database has, after checking each against `files`.
pub(crate) async fn adopt(
    db: &mut dyn Database,
    tool: Tool,
    files: &[Migration],
    operator: &str,
) -> Result<Adopted, AdoptError> {
    if !exists(db, table(tool)).await? {
        let found = detect(db).await?;
        return Err(refused(
            format!(
                "this database has no `{}` table, so it was not migrated by {}",
                table(tool),
                tool.name()
            ),
            match found {
                Some(other) => format!(
                    "it has {}'s table: `keel adopt --from {}`",
                    other.name(),
                    other.name()
                ),
                None => "a database with no history at all takes `keel baseline VERSION`".into(),
            },
        ));
    }
    let theirs = applied(db, tool, files).await?;
    let mut rows = Vec::new();
    for a in &theirs {
        let Some(m) = files.iter().find(|m| m.version == a.version) else {
            return Err(refused(
                format!(
                    "{} applied version {}, which is not among keel's migrations",
                    tool.name(),
                    a.version
                ),
                format!(
                    "`keel import --from {} SRC` first, from the folder that has it",
                    tool.name()
                ),
            ));
        };
        if let Some((stored, algo)) = &a.checksum {
            let ours = match *algo {
                "SHA-384" => hex(&Sha384::digest(m.up.as_bytes())),
                "CRC32" => super::flyway::checksum(&m.up).to_string(),
                _ => hex(&Sha256::digest(m.up.as_bytes())),
            };
            if *stored != ours {
                return Err(refused(
                    format!(
                        "{}: the file differs from what {} applied ({algo} {} in {}, {} of {})",
                        m.id(),
                        tool.name(),
                        short(stored),
                        table(tool),
                        short(&ours),
                        m.up_path().display()
                    ),
                    "put back the file exactly as it ran (git history), import again, then adopt",
                ));
            }
        }
        rows.push(TrackingRow {
            version: m.version.to_string(),
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            state: TrackingState::Applied,
            applied_at: chrono::Utc::now(),
            applied_by: format!("{operator} (adopted from {})", tool.name()),
            execution_ms: a.execution_ms,
            statements_done: 0,
            error: None,
            backup: None,
            schema_before: None,
        });
    }
    record(db, rows).await
}

/// `keel baseline V`: every migration up to V, recorded as applied, for a
/// database that has them without any tool's history.
pub(crate) async fn baseline(
    db: &mut dyn Database,
    files: &[Migration],
    through: Version,
    operator: &str,
) -> Result<Adopted, AdoptError> {
    let rows = files
        .iter()
        .filter(|m| m.version <= through)
        .map(|m| TrackingRow {
            version: m.version.to_string(),
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            state: TrackingState::Applied,
            applied_at: chrono::Utc::now(),
            applied_by: format!("{operator} (baseline)"),
            execution_ms: 0,
            statements_done: 0,
            error: None,
            backup: None,
            schema_before: None,
        })
        .collect();
    record(db, rows).await
}

/// Writes `rows` in one transaction, into a tracking table that has none.
async fn record(db: &mut dyn Database, rows: Vec<TrackingRow>) -> Result<Adopted, AdoptError> {
    db.ensure_tracking().await?;
    let ours = db.tracking_rows().await?;
    if !ours.is_empty() {
        return Err(refused(
            format!(
                "keel already tracks {} migration(s) on this database",
                ours.len()
            ),
            "`keel status` shows them; adopt and baseline are for a database keel has not run on",
        ));
    }
    let timeouts = Timeouts {
        lock: std::time::Duration::from_secs(5),
        statement: std::time::Duration::from_secs(600),
    };
    db.begin(timeouts, true).await?;
    for r in &rows {
        if let Err(e) = db.write_tracking(r).await {
            let _ = db.rollback().await;
            return Err(e.into());
        }
    }
    db.commit().await?;
    Ok(Adopted {
        versions: rows
            .into_iter()
            .map(|r| format!("{}_{}", r.version, r.name))
            .collect(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}
