//! Whether the relation named like an index a `CREATE INDEX` asks for is
//! that index. The asked-for index is built on an empty copy of its table
//! in a transaction that is rolled back, so that the server prints both
//! the same way (`pg_get_indexdef`): the real table is neither scanned nor
//! locked beyond the ACCESS SHARE that `LIKE` takes for a moment.

use super::Postgres;
use crate::db::{DbError, IndexMismatch, IndexRequest, IndexShape, Session, quote_relation};

/// The parts of index `$1` (an oid) that make it what it is.
const DESCRIBE: &str = "SELECT i.indrelid::regclass::text, i.indisunique, am.amname::text, \
     ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnkeyatts) k), \
     ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) \
           FROM generate_series(i.indnkeyatts + 1, i.indnatts) k), \
     pg_get_expr(i.indpred, i.indrelid), pg_get_indexdef(i.indexrelid) \
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
     WHERE i.indexrelid = $1::oid";

type Described = (
    String,
    bool,
    String,
    Vec<String>,
    Vec<String>,
    Option<String>,
    String,
);

/// The temporary copy of the table, and the index built on it.
const PROBE_TABLE: &str = "pg_temp.keel_index_probe";
const PROBE_INDEX: &str = "keel_index_probe_ix";

pub(super) async fn mismatch(
    pg: &mut Postgres,
    asked: &IndexRequest,
) -> Result<Option<IndexMismatch>, DbError> {
    let table = quote_relation(&asked.table);
    // CREATE INDEX puts the index in its table's schema, whatever the
    // search path: that is where IF NOT EXISTS looks for the name.
    let found: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT c.oid::bigint, c.relkind::text, t.oid::regclass::text FROM pg_class t \
         JOIN pg_class c ON c.relnamespace = t.relnamespace AND c.relname = $1 \
         WHERE t.oid = to_regclass($2)",
    )
    .bind(&asked.name)
    .bind(&table)
    .fetch_optional(&mut pg.conn)
    .await
    .map_err(|e| pg.err(e))?;
    let Some((oid, kind, table)) = found else {
        return Ok(None);
    };
    if !matches!(kind.as_str(), "i" | "I") {
        return Ok(Some(IndexMismatch::NotAnIndex(relkind(&kind).into())));
    }
    let existing = describe(pg, oid).await?;
    let asked_shape = match probe(pg, &table, asked).await? {
        Ok(shape) => shape,
        Err(error) => return Ok(Some(IndexMismatch::Unchecked(error))),
    };
    let asked_shape = IndexShape {
        table,
        ..asked_shape
    };
    Ok((existing != asked_shape).then(|| IndexMismatch::Differs {
        existing: Box::new(existing),
        asked: Box::new(asked_shape),
    }))
}

/// Builds the asked-for index on an empty copy of `table` and describes
/// it; `Err` with the server's message when the server refuses to.
async fn probe(
    pg: &mut Postgres,
    table: &str,
    asked: &IndexRequest,
) -> Result<Result<IndexShape, String>, DbError> {
    pg.execute("BEGIN").await?;
    let built = async {
        pg.execute(&format!(
            "CREATE TEMP TABLE {PROBE_TABLE} (LIKE {table}) ON COMMIT DROP"
        ))
        .await?;
        let unique = if asked.unique { "UNIQUE " } else { "" };
        pg.execute(&format!(
            "CREATE {unique}INDEX {PROBE_INDEX} ON {PROBE_TABLE} {}",
            asked.shape
        ))
        .await?;
        let oid: i64 = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
            .bind(format!("pg_temp.{PROBE_INDEX}"))
            .fetch_one(&mut pg.conn)
            .await
            .map_err(|e| pg.err(e))?;
        describe(pg, oid).await
    }
    .await;
    let ended = pg.execute("ROLLBACK").await;
    let built = match built {
        Err(e) if e.is_connection() => return Err(e),
        other => other.map_err(|e| e.message),
    };
    ended?;
    Ok(built)
}

async fn describe(pg: &mut Postgres, oid: i64) -> Result<IndexShape, DbError> {
    let (table, unique, method, keys, include, predicate, definition): Described =
        sqlx::query_as(DESCRIBE)
            .bind(oid)
            .fetch_one(&mut pg.conn)
            .await
            .map_err(|e| pg.err(e))?;
    // pg_get_indexdef: CREATE [UNIQUE] INDEX name ON [ONLY] table USING …;
    // names with " USING " in them make two equal indexes look different,
    // which refuses rather than skips.
    let tail = match definition.find(" USING ") {
        Some(at) => definition[at + 1..].to_string(),
        None => definition,
    };
    Ok(IndexShape {
        table,
        unique,
        method,
        keys,
        include,
        predicate,
        tail,
    })
}

/// `pg_class.relkind` in words.
fn relkind(kind: &str) -> &'static str {
    match kind {
        "r" => "table",
        "p" => "partitioned table",
        "v" => "view",
        "m" => "materialized view",
        "S" => "sequence",
        "f" => "foreign table",
        "c" => "composite type",
        "t" => "TOAST table",
        _ => "relation",
    }
}
