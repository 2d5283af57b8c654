//! The schema a migration started from, kept in its tracking row when it
//! is applied (written with the row, in the migration's own transaction),
//! so that `keel down` can say when down.sql does not give it back. Only
//! what the migration reaches (see [`crate::analysis::reach`]), which
//! keeps the cost of `keel up` flat however large the schema.

use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::reach::reach_analysed;
use crate::db::{Database, DbError, Fingerprint, SchemaDiff, Scope};
use serde::{Deserialize, Serialize};

/// What is kept per migration, as JSON in `keel_migrations.schema_before`.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
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

/// The schema a migration (analysed) can reach, right before its up runs,
/// as the tracking row keeps it. When none of the relations it names
/// exists yet (a migration that creates its tables) and it touches no
/// other kind of object, there is nothing to read: one catalog query.
pub(crate) async fn before_up(
    db: &mut dyn Database,
    analysis: &MigrationAnalysis,
) -> Result<String, DbError> {
    let widened = db.widen(&reach_analysed(analysis)).await?;
    let scope = widened.schema;
    let schema = if widened.found || scope.others() {
        db.fingerprint(&scope).await?
    } else {
        Fingerprint::default()
    };
    let kept = Kept {
        relations: scope.names(),
        others: scope.others(),
        schema,
    };
    // A map of strings always serializes.
    Ok(serde_json::to_string(&kept).unwrap_or_default())
}

/// Once a migration is reverted: how the schema differs from `kept`, what
/// its tracking row held (`None` when it does not differ, or nothing was
/// kept: a migration applied by a keel before this one). The kept text is
/// read as untrusted: unreadable, it is not compared.
pub(crate) async fn after_down(
    db: &mut dyn Database,
    kept: Option<&str>,
) -> Result<Option<SchemaDiff>, DbError> {
    let Some(kept) = kept.and_then(|k| serde_json::from_str::<Kept>(k).ok()) else {
        return Ok(None);
    };
    let diff = kept.schema.diff(&db.fingerprint(&kept.scope()).await?);
    Ok((!diff.is_empty()).then_some(diff))
}
