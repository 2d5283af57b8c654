//! The schema fingerprint from PostgreSQL's catalog: one query
//! (`fingerprint.sql`) that prints every object as a line, so that the
//! cost does not grow with round trips on a schema of hundreds of tables.

use super::Postgres;
use crate::db::Session;
use crate::db::{DbError, Fingerprint, Scope, Widened};
use sqlx::Row;

/// One `(key, line)` row per object; `$1` is keel's own tables, `$2` the
/// scope's relation names covered whole (NULL: all), `$3` whether the
/// objects that are not relations are in scope, `$4` the relations of
/// which only the foreign keys are.
const SQL: &str = include_str!("fingerprint.sql");

/// The same for a scope of named relations: without the NULL case its plan
/// (prepared once per connection) finds them by index instead of reading
/// every relation of the schema.
static SCOPED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    SQL.replace(
        "($2::text[] IS NULL OR c.relname = ANY ($2 || $4::text[]))",
        "c.relname = ANY ($2 || $4::text[])",
    )
});

/// [`SCOPED`] for a scope of relations alone (`$3` false, the usual case
/// in `keel test`): `$3` is folded away, so the plan has none of the
/// schema, extension, type and function branches. Its executor start-up,
/// which is most of a scoped fingerprint's cost (the plan itself is kept),
/// is a quarter shorter.
static SCOPED_RELATIONS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| SCOPED.replace("$3", "($3 AND false)"));

/// The relations a scope's names widen to, each with whether it has a
/// trigger or a rule; `$1` the names.
const WIDEN: &str = include_str!("widen.sql");

/// Whether any relation outside pg_catalog has one of `$1`'s names: what
/// widen.sql's `named` finds, and when it finds nothing widen returns no
/// row. Planning widen costs 0.7 ms a call (its plans are custom: a generic
/// one made on a small catalog scans it), while this lookup by index is
/// planned once per connection and costs a few microseconds: a migration
/// that creates its tables (every generated one of the benchmark, about
/// one in twelve of crates.io's) is spared widen.
const ANY_TO_WIDEN: &str = "SELECT EXISTS (SELECT 1 FROM unnest($1::text[]) AS n(name), \
     LATERAL (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = n.name \
     AND c.relnamespace <> 'pg_catalog'::pg_catalog.regnamespace OFFSET 0) c)";

/// Whether any relation of a kind the fingerprint describes has one of
/// `$1`'s names, in any schema. When none has, a fingerprint of those
/// relations alone is empty, since every line of it hangs off one (the
/// `rel` part of `fingerprint.sql`): `keel test` asks that before a
/// migration that creates its tables and after its down, and this costs a
/// fraction of the fingerprint's executor start-up. When one has, it also
/// turns on the generic plan for the fingerprint that follows (see
/// [`Postgres::schema_fingerprint`]) and turns JIT off for it: one round
/// trip instead of two. (CASE, not AND: only CASE promises not to evaluate
/// the settings first.) Each name is looked up on its own (OFFSET 0 keeps
/// the lookup from being flattened into a join), so that the plan is an
/// index scan whatever the catalog's size when it was made: kept for the
/// connection, it is not planned again at each call.
const ANY_NAMED: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest($1::text[]) AS n(name), \
     LATERAL (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = n.name \
     AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') OFFSET 0) c) \
     THEN set_config('plan_cache_mode', 'force_generic_plan', false) IS NOT NULL \
     AND set_config('jit', 'off', false) IS NOT NULL \
     ELSE false END";

impl Postgres {
    async fn any_relation_named(&mut self, scope: &Scope) -> Result<bool, DbError> {
        sqlx::query_scalar(ANY_NAMED)
            .bind(scope.names())
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    pub(super) async fn widen_scope(&mut self, scope: &Scope) -> Result<Widened, DbError> {
        let Some(names) = scope.names() else {
            return Ok(Widened::all());
        };
        let any: bool = sqlx::query_scalar(ANY_TO_WIDEN)
            .bind(&names)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        if !any {
            return Ok(Widened::of(scope.clone(), &[], false, false));
        }
        let rows: Vec<(String, bool, String)> = sqlx::query_as(WIDEN)
            .bind(names)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        let mut schema = scope.clone();
        let mut rows_only = Vec::new();
        for (name, _, reach) in &rows {
            match reach.as_str() {
                "whole" => schema.add_relname(name),
                "keys" => schema.add_keys_only(name),
                _ => rows_only.push(name.clone()),
            }
        }
        let writes_elsewhere = rows.iter().any(|(_, writes, _)| *writes);
        Ok(Widened::of(
            schema,
            &rows_only,
            writes_elsewhere,
            !rows.is_empty(),
        ))
    }

    pub(super) async fn schema_fingerprint(
        &mut self,
        scope: &Scope,
    ) -> Result<Fingerprint, DbError> {
        let keel = super::live::own_tables();
        let scoped = matches!(scope, Scope::Named { .. });
        // Planning this query costs ten times running it on a few tables:
        // a scoped fingerprint (keel test takes four per migration) keeps
        // one generic plan for the connection. Only here: a backfill's
        // range queries need plans made for their values. The existence
        // check sets it when it finds something.
        // No JIT: the planner's estimate for this query of many branches
        // grows with the catalog and passes jit_above_cost on a schema of
        // a few thousand tables (or one not yet analysed), where compiling
        // cost 340 ms against 170 ms for running it (3,000 tables).
        if scoped && !scope.others() {
            if !self.any_relation_named(scope).await? {
                return Ok(Fingerprint::default());
            }
        } else if scoped {
            self.execute("SET plan_cache_mode = force_generic_plan; SET jit = off")
                .await?;
        } else {
            self.execute("SET jit = off").await?;
        }
        // It takes a share lock on each table it describes: under a lock
        // timeout a wait is explained like a migration's.
        let query = sqlx::query(match (scoped, scope.others()) {
            (false, _) => SQL,
            (true, true) => SCOPED.as_str(),
            (true, false) => SCOPED_RELATIONS.as_str(),
        })
        .bind(keel)
        .bind(scope.whole_names())
        .bind(scope.others())
        .bind(scope.keys_only_names());
        let rows = self.fetch_watched(query).await;
        // After a failure inside a transaction the RESET fails too, and
        // the rollback takes the SET back with it.
        let reset = self.execute("RESET plan_cache_mode; RESET jit").await;
        if rows.is_ok() {
            reset?;
        }
        let rows: Vec<(String, String)> = rows?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))?;
        let mut fingerprint = Fingerprint::default();
        for (key, line) in rows {
            fingerprint.insert(key, line);
        }
        Ok(fingerprint)
    }
}
