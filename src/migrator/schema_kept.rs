//! The schema a migration started from, kept in `keel_meta` when it is
//! applied, so that `keel down` can say when down.sql does not give it
//! back. Only what the migration reaches (see [`crate::analysis::reach`]),
//! which keeps the cost of `keel up` flat however large the schema.

use super::RunSettings;
use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::reach::reach_analysed;
use crate::db::{Database, DbError, Fingerprint, SchemaDiff, Scope};
use crate::migration::Migration;
use serde::{Deserialize, Serialize};

/// What is kept per migration, as JSON under `schema-before:<version>`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Kept {
    /// The relations compared, by name; `None`: every object.
    relations: Option<Vec<String>>,
    /// Schemas, types, functions and extensions too.
    others: bool,
    schema: Fingerprint,
}

impl Kept {
    fn scope(&self) -> Scope {
        match &self.relations {
            None => Scope::All,
            Some(names) => {
                let mut s = Scope::none();
                names.iter().for_each(|n| s.add_relname(n));
                if self.others {
                    s.add_others();
                }
                s
            }
        }
    }
}

fn key(m: &Migration) -> String {
    format!("schema-before:{}", m.version)
}

/// The schema a migration (analysed) can reach, right before its up runs.
pub(crate) async fn before_up(
    db: &mut dyn Database,
    analysis: &MigrationAnalysis,
) -> Result<Kept, DbError> {
    let scope = db.widen(&reach_analysed(analysis)).await?.schema;
    Ok(Kept {
        relations: scope.names(),
        others: scope.others(),
        schema: db.fingerprint(&scope).await?,
    })
}

/// Keeps `kept` once `m` is applied.
pub(crate) async fn keep(
    db: &mut dyn Database,
    m: &Migration,
    kept: &Kept,
    settings: RunSettings,
) -> Result<(), DbError> {
    // A map of strings always serializes.
    let json = serde_json::to_string(kept).unwrap_or_default();
    write(db, &key(m), Some(&json), settings).await
}

/// Writes or forgets a kept schema in a transaction of its own that does
/// not wait for its flush to disk: a run of many migrations pays no extra
/// fsync each, and one lost to a crash only means that its down is not
/// compared.
async fn write(
    db: &mut dyn Database,
    key: &str,
    value: Option<&str>,
    settings: RunSettings,
) -> Result<(), DbError> {
    db.begin(settings.project_timeouts(), false).await?;
    match db.write_meta(key, value).await {
        Ok(()) => db.commit().await,
        Err(e) => {
            let _ = db.rollback().await;
            Err(e)
        }
    }
}

/// Once `m` is reverted: how the schema differs from the one kept when it
/// was applied (`None` when it does not, or nothing was kept: a migration
/// applied by a keel before this one). The kept schema is forgotten.
/// What was kept is read as untrusted: unreadable, it is only forgotten.
pub(crate) async fn after_down(
    db: &mut dyn Database,
    m: &Migration,
    settings: RunSettings,
) -> Result<Option<SchemaDiff>, DbError> {
    let Some(json) = db.read_meta(&key(m)).await? else {
        return Ok(None);
    };
    let diff = match serde_json::from_str::<Kept>(&json) {
        Ok(kept) => Some(kept.schema.diff(&db.fingerprint(&kept.scope()).await?)),
        Err(_) => None,
    };
    write(db, &key(m), None, settings).await?;
    Ok(diff.filter(|d| !d.is_empty()))
}
