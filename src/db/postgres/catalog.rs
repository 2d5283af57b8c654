//! The schema from PostgreSQL's catalog (`pg_class`, `pg_attribute`,
//! `pg_index`, `pg_constraint`). Tables are looked up with `to_regclass`,
//! so a name means what it means to the server's search path.

use super::Postgres;
use crate::db::{
    Catalog, ColumnInfo, ConstraintInfo, DbError, Fingerprint, IndexInfo, IndexMismatch,
    IndexRequest, Relation, Scope, SearchPath, Session, Widened, quote_relation,
};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl Catalog for Postgres {
    async fn tables(&mut self) -> Result<Vec<String>, DbError> {
        self.tables_named(None).await
    }

    async fn tables_in(&mut self, scope: &Scope) -> Result<Vec<String>, DbError> {
        self.tables_named(scope.names()).await
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError> {
        self.about_table(
            "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS data_type, \
             NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default_expr, \
             t.typcategory = 'S' AS is_text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            table,
            |r| {
                Ok(ColumnInfo {
                    name: r.try_get("name")?,
                    data_type: r.try_get("data_type")?,
                    nullable: r.try_get("nullable")?,
                    default: r.try_get("default_expr")?,
                    is_text: r.try_get("is_text")?,
                })
            },
        )
        .await
    }

    async fn column_names(&mut self, tables: &[String]) -> Result<Vec<Vec<String>>, DbError> {
        let quoted: Vec<String> = tables.iter().map(|t| quote_relation(t)).collect();
        // Each table's columns looked up on their own (OFFSET 0), so that
        // the plan kept for the connection is an index scan even when it
        // was made on a small catalog, where a join would scan pg_attribute.
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT t.i, a.attname FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i), \
             LATERAL (SELECT a.attnum, a.attname::text FROM pg_attribute a \
                      WHERE a.attrelid = to_regclass(t.name) AND a.attnum > 0 \
                      AND NOT a.attisdropped OFFSET 0) a \
             ORDER BY t.i, a.attnum",
        )
        .bind(quoted)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = vec![Vec::new(); tables.len()];
        for (i, name) in rows {
            if let Some(names) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
                names.push(name);
            }
        }
        Ok(out)
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<IndexInfo>, DbError> {
        self.about_table(
            "SELECT ic.relname::text AS name, pg_get_indexdef(i.indexrelid) AS definition, \
             i.indisunique AS is_unique, i.indisvalid AS valid \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1) ORDER BY 1",
            table,
            |r| {
            Ok(IndexInfo {
                name: r.try_get("name")?,
                definition: r.try_get("definition")?,
                unique: r.try_get("is_unique")?,
                valid: r.try_get("valid")?,
            })
            },
        )
        .await
    }

    async fn constraints(&mut self, table: &str) -> Result<Vec<ConstraintInfo>, DbError> {
        self.about_table(
            "SELECT con.conname::text AS name, \
             CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' \
             WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' \
             ELSE con.contype::text END AS kind, pg_get_constraintdef(con.oid) AS definition \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1) ORDER BY 1",
            table,
            |r| {
                Ok(ConstraintInfo {
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    definition: r.try_get("definition")?,
                })
            },
        )
        .await
    }

    async fn primary_key(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(quote_relation(table))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn row_key(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        // Only the key columns count (indnkeyatts: INCLUDE columns are
        // carried, not unique), and a NULL would let two rows share a key.
        let key: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT (SELECT array_agg(a.attname::text ORDER BY k.n) \
                     FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                     WHERE k.n <= i.indnkeyatts) \
             FROM pg_index i \
             WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid \
               AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL \
               AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, n) \
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                   WHERE k.n <= i.indnkeyatts AND NOT a.attnotnull) \
             ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid LIMIT 1",
        )
        .bind(quote_relation(table))
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?
        .flatten();
        Ok(key.unwrap_or_default())
    }

    async fn generated_columns(&mut self, table: &Relation) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attnum > 0 AND NOT attisdropped AND attgenerated <> '' ORDER BY attnum",
        )
        .bind(table.quoted())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn resolve_table(
        &mut self,
        table: &Relation,
        search_path: Option<&SearchPath>,
    ) -> Result<Option<Relation>, DbError> {
        let lookup = "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)";
        let Some(path) = search_path.filter(|_| table.schema.is_none()) else {
            let row: Option<(String, String)> = sqlx::query_as(lookup)
                .bind(table.quoted())
                .fetch_optional(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?;
            return Ok(row.map(|(s, n)| Relation::new(Some(&s), &n)));
        };
        self.execute("BEGIN READ ONLY").await?;
        let result = async {
            self.set_local_search_path(path).await?;
            sqlx::query_as::<_, (String, String)>(lookup)
                .bind(table.quoted())
                .fetch_optional(&mut self.conn)
                .await
                .map_err(|e| self.err(e))
        }
        .await;
        let ended = self.execute("ROLLBACK").await;
        let row = result?;
        ended?;
        Ok(row.map(|(s, n)| Relation::new(Some(&s), &n)))
    }

    async fn index_valid(&mut self, name: &str) -> Result<Option<bool>, DbError> {
        sqlx::query_scalar(
            "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
        )
        .bind(quote_relation(name))
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn invalid_indexes(&mut self) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid ORDER BY 1",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn index_mismatch(
        &mut self,
        asked: &IndexRequest,
    ) -> Result<Option<IndexMismatch>, DbError> {
        super::index_probe::mismatch(self, asked).await
    }

    async fn fingerprint(&mut self, scope: &Scope) -> Result<Fingerprint, DbError> {
        self.schema_fingerprint(scope).await
    }

    async fn widen(&mut self, scope: &Scope) -> Result<Widened, DbError> {
        self.widen_scope(scope).await
    }

    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError> {
        // Already quoted by format('%I.%I') in invalid_indexes.
        self.execute(&format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {qualified_name}"
        ))
        .await
    }
}

impl Postgres {
    /// The rows of a catalog query about `table` (its `$1`, read by
    /// `to_regclass` from the quoted name), each turned into a `T` by `read`.
    async fn about_table<T>(
        &mut self,
        sql: &str,
        table: &str,
        read: impl Fn(&sqlx::postgres::PgRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, DbError> {
        let rows = sqlx::query(sql)
            .bind(quote_relation(table))
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(read)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    /// The column names of `table` (quoted, as `to_regclass` reads it);
    /// empty when there is no such table.
    pub(super) async fn attribute_names(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0",
        )
        .bind(table)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    /// Whether `name` (as `to_regclass` reads it) names a table or other
    /// relation the session can see.
    pub(super) async fn relation_exists(&mut self, name: &str) -> Result<bool, DbError> {
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(name)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }
}

impl Postgres {
    /// User tables by name, only those of these bare names when given.
    async fn tables_named(&mut self, names: Option<Vec<String>>) -> Result<Vec<String>, DbError> {
        let rows: Vec<(Option<String>, String)> = sqlx::query_as(
            "SELECT CASE WHEN n.nspname <> current_schema() THEN n.nspname::text END, \
             c.relname::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' AND c.relname <> ALL($1) \
             AND ($2::text[] IS NULL OR c.relname = ANY($2)) ORDER BY 1 NULLS FIRST, 2",
        )
        .bind(super::live::own_tables())
        .bind(names)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(schema, name)| Relation { schema, name }.to_string())
            .collect())
    }
}
