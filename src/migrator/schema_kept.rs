//! The schema a migration started from, kept in its tracking row when it
//! is applied (written with the row, in the migration's own transaction),
//! so that `keel down` can say when down.sql does not give it back. Only
//! what the migration reaches (see [`crate::analysis::reach`]), which
//! keeps the cost of `keel up` flat however large the schema.

use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::operation::ActionKind;
use crate::analysis::reach::reach_analysed;
use crate::db::{Database, DbError, Fingerprint, SchemaDiff, Scope};
use serde::{Deserialize, Serialize};

/// What is kept per migration, as JSON in `keel_migrations.schema_before`.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    /// The relations compared whole, by name; `None`: every object.
    relations: Option<Vec<String>>,
    /// The relations of which only the foreign keys are compared (absent
    /// from rows a keel before them kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys_only: Vec<String>,
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
                self.keys_only.iter().for_each(|n| s.add_keys_only(n));
                if self.others {
                    s.add_others();
                }
                s
            }
        }
    }
}

/// The schema a migration (analysed) can reach, right before its up runs,
/// as the tracking row keeps it. A migration that only names tables and
/// indexes its up creates (without IF NOT EXISTS: had one been there, the
/// up would fail) reaches nothing that exists: no query at all. When none
/// of the relations it names exists and it touches no other kind of
/// object, one.
pub(crate) async fn before_up(
    db: &mut dyn Database,
    analysis: &MigrationAnalysis,
) -> Result<String, DbError> {
    let reach = reach_analysed(analysis);
    let (scope, schema) = if only_new(analysis, &reach) {
        (reach, Fingerprint::default())
    } else {
        let widened = db.widen(&reach).await?;
        let scope = widened.schema;
        let schema = if widened.found || scope.others() {
            db.fingerprint(&scope).await?
        } else {
            Fingerprint::default()
        };
        (scope, schema)
    };
    let kept = Kept {
        relations: scope.whole_names(),
        keys_only: scope.keys_only_names(),
        others: scope.others(),
        schema,
    };
    // A map of strings always serializes.
    Ok(serde_json::to_string(&kept).unwrap_or_default())
}

/// Whether every relation `reach` names is a table or an index the up
/// creates, with no IF NOT EXISTS, and nothing but relations is reached.
fn only_new(analysis: &MigrationAnalysis, reach: &Scope) -> bool {
    let Scope::Named {
        relations,
        others: false,
        ..
    } = reach
    else {
        return false;
    };
    let mut created = Scope::none();
    for a in analysis.up.ops.iter().flat_map(|op| &op.actions) {
        match (&a.kind, &a.table) {
            (
                ActionKind::CreateTable {
                    if_not_exists: false,
                    ..
                },
                Some(t),
            ) => created.add(t),
            (
                ActionKind::CreateIndex {
                    name: Some(n),
                    if_not_exists: false,
                    ..
                },
                _,
            ) => created.add(n),
            _ => {}
        }
    }
    relations.iter().all(|r| created.covers(r))
}

/// Once a migration is reverted: how the schema differs from `kept`, what
/// its tracking row held (`None` when it does not differ, or nothing was
/// kept: a migration applied by a keel before this one). The kept text is
/// read as untrusted: unreadable, it is not compared. The down committed:
/// a lock held elsewhere is waited out `tries` times, pausing `pause`.
pub(crate) async fn after_down(
    db: &mut dyn Database,
    kept: Option<&str>,
    (tries, pause): (u32, std::time::Duration),
) -> Result<Option<SchemaDiff>, DbError> {
    let Some(kept) = kept.and_then(|k| serde_json::from_str::<Kept>(k).ok()) else {
        return Ok(None);
    };
    let now = crate::db::fingerprint_retrying(db, &kept.scope(), tries, pause).await?;
    let diff = kept.schema.diff(&now);
    Ok((!diff.is_empty()).then_some(diff))
}
