//! The schema from SQLite's own tables and pragmas (`sqlite_master`,
//! `pragma_table_info`, `pragma_index_list`, …), named the way
//! PostgreSQL names the same things so that both dialects read alike.

use super::Sqlite;
use crate::db::{
    Catalog, ColumnInfo, ConstraintInfo, DbError, Fingerprint, IndexInfo, KEEL_TABLES, Relation,
    Scope, SearchPath, Session, Widened, quote_relation,
};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl Catalog for Sqlite {
    async fn tables(&mut self) -> Result<Vec<String>, DbError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT IN (SELECT value FROM json_each(?)) ORDER BY name",
        )
        .bind(serde_json::to_string(&KEEL_TABLES).unwrap_or_default())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(names
            .into_iter()
            .map(|name| Relation { schema: None, name }.to_string())
            .collect())
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError> {
        let rel = Relation::parse(table);
        let rows = self
            .pragma(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?, ?) ORDER BY cid",
                &rel,
            )
            .await?;
        rows.iter()
            .map(|r| {
                let data_type: String = r.try_get("type")?;
                let upper = data_type.to_ascii_uppercase();
                let not_null: i64 = r.try_get("notnull")?;
                let pk: i64 = r.try_get("pk")?;
                Ok(ColumnInfo {
                    name: r.try_get("name")?,
                    is_text: upper.contains("CHAR")
                        || upper.contains("CLOB")
                        || upper.contains("TEXT"),
                    data_type: data_type.to_lowercase(),
                    nullable: not_null == 0 && pk == 0,
                    default: r.try_get("dflt_value")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<IndexInfo>, DbError> {
        let rel = Relation::parse(table);
        let rows = sqlx::query(
            "SELECT l.name, l.\"unique\", coalesce(m.sql, 'automatic index (' || l.origin || ')') AS definition \
             FROM pragma_index_list(?, ?) l LEFT JOIN sqlite_master m ON m.name = l.name AND m.type = 'index' \
             ORDER BY l.name",
        )
        .bind(&rel.name)
        .bind(&rel.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let unique: i64 = r.try_get("unique")?;
                Ok(IndexInfo {
                    name: r.try_get("name")?,
                    definition: r.try_get("definition")?,
                    unique: unique != 0,
                    valid: true,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn constraints(&mut self, table: &str) -> Result<Vec<ConstraintInfo>, DbError> {
        let rel = Relation::parse(table);
        let mut out = Vec::new();
        let pk = self.primary_key(table).await?;
        if !pk.is_empty() {
            out.push(ConstraintInfo {
                name: format!("{table}_pkey"),
                kind: "primary key".into(),
                definition: format!("PRIMARY KEY ({})", pk.join(", ")),
            });
        }
        let fks = self
            .pragma(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list(?, ?) ORDER BY id, seq",
                &rel,
            )
            .await?;
        for r in fks {
            let from: String = r.try_get("from").map_err(|e| self.err(e))?;
            let to_table: String = r.try_get("table").map_err(|e| self.err(e))?;
            let to: Option<String> = r.try_get("to").map_err(|e| self.err(e))?;
            let on_delete: String = r.try_get("on_delete").map_err(|e| self.err(e))?;
            let mut definition = format!(
                "FOREIGN KEY ({from}) REFERENCES {to_table}({})",
                to.unwrap_or_default()
            );
            if on_delete != "NO ACTION" {
                definition.push_str(&format!(" ON DELETE {on_delete}"));
            }
            out.push(ConstraintInfo {
                name: format!("{table}_{from}_fkey"),
                kind: "foreign key".into(),
                definition,
            });
        }
        // UNIQUE constraints live as automatic indexes (origin 'u'); named
        // the way PostgreSQL names them, so both dialects read alike.
        let uniques: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_index_list(?, ?) WHERE origin = 'u' ORDER BY name",
        )
        .bind(&rel.name)
        .bind(&rel.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        for index in uniques {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut self.conn)
                    .await
                    .map_err(|e| self.err(e))?;
            out.push(ConstraintInfo {
                name: format!("{table}_{}_key", columns.join("_")),
                kind: "unique".into(),
                definition: format!("UNIQUE ({})", columns.join(", ")),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn primary_key(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        let rel = Relation::parse(table);
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk")
            .bind(&rel.name)
            .bind(&rel.schema)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn row_key(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        let pk = self.primary_key(table).await?;
        if !pk.is_empty() {
            return Ok(pk);
        }
        // A rowid is no key: VACUUM may renumber the rows of a table
        // without an INTEGER PRIMARY KEY.
        let rel = Relation::parse(table);
        let uniques: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_index_list(?, ?) WHERE \"unique\" AND NOT partial ORDER BY name",
        )
        .bind(&rel.name)
        .bind(&rel.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        let mut best: Vec<String> = Vec::new();
        for index in uniques {
            // An expression has no name (cid -2): it proves nothing here.
            let columns: Vec<(Option<String>, bool)> = sqlx::query_as(
                "SELECT i.name, coalesce(t.\"notnull\", 0) FROM pragma_index_info(?) AS i \
                 LEFT JOIN pragma_table_info(?, ?) AS t ON t.name = i.name ORDER BY i.seqno",
            )
            .bind(&index)
            .bind(&rel.name)
            .bind(&rel.schema)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
            if columns
                .iter()
                .all(|(name, not_null)| name.is_some() && *not_null)
                && (best.is_empty() || columns.len() < best.len())
            {
                best = columns.into_iter().filter_map(|(n, _)| n).collect();
            }
        }
        Ok(best)
    }

    async fn generated_columns(&mut self, table: &Relation) -> Result<Vec<String>, DbError> {
        // table_xinfo's hidden: 2 virtual, 3 stored generated columns.
        sqlx::query_scalar(
            "SELECT name FROM pragma_table_xinfo(?, ?) WHERE hidden IN (2, 3) ORDER BY cid",
        )
        .bind(&table.name)
        .bind(&table.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn resolve_table(
        &mut self,
        table: &Relation,
        _search_path: Option<&SearchPath>,
    ) -> Result<Option<Relation>, DbError> {
        // Without a schema SQLite looks in temp, then main, then attached.
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT schema, name FROM pragma_table_list WHERE name = ?1 AND type = 'table' \
             AND (?2 IS NULL OR schema = ?2) \
             ORDER BY CASE schema WHEN 'temp' THEN 0 WHEN 'main' THEN 1 ELSE 2 END LIMIT 1",
        )
        .bind(&table.name)
        .bind(&table.schema)
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(found.map(|(schema, name)| Relation {
            schema: Some(schema),
            name,
        }))
    }

    async fn index_valid(&mut self, name: &str) -> Result<Option<bool>, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?",
        )
        .bind(name.rsplit('.').next().unwrap_or(name))
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok((n > 0).then_some(true))
    }

    async fn fingerprint(&mut self, scope: &Scope) -> Result<Fingerprint, DbError> {
        self.schema_fingerprint(scope).await
    }

    async fn widen(&mut self, scope: &Scope) -> Result<Widened, DbError> {
        self.widen_scope(scope).await
    }

    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError> {
        self.execute(&format!(
            "DROP INDEX IF EXISTS {}",
            quote_relation(qualified_name)
        ))
        .await
    }
}

impl Sqlite {
    /// The rows of a table-valued pragma about one table: its `?, ?` are
    /// the table's name and schema (`NULL`: every attached database).
    async fn pragma(
        &mut self,
        sql: &str,
        rel: &Relation,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, DbError> {
        sqlx::query(sql)
            .bind(&rel.name)
            .bind(&rel.schema)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }
}
