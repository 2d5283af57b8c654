//! Rows generated into SQLite's empty tables from its pragmas: one
//! `WITH RECURSIVE s(g) … INSERT … SELECT` per table, a value per column
//! chosen from its declared type (by SQLite's affinity rules, with the
//! usual names for dates, booleans, UUIDs and JSON), foreign keys pointing
//! at the parent's rows.

use super::Sqlite;
use crate::db::integrity::{ForeignKey, Plan, left_null, parents_first, run_plans, with_parents};
use crate::db::{DbError, Filled, KEEL_TABLES, Relation, Scope, quote_ident};
use sqlx::Row;

/// One column of `pragma_table_xinfo`.
#[derive(Debug, Clone, Default)]
struct SqliteColumn {
    name: String,
    declared: String,
    not_null: bool,
    has_default: bool,
    /// A generated column, or the INTEGER PRIMARY KEY that is the rowid.
    computed: bool,
    rowid: bool,
}

/// SQL of a value for generated row `s.g` of a column declared `declared`.
fn value_sql(declared: &str) -> String {
    let t = declared.to_ascii_uppercase();
    let text = "'keel ' || s.g".to_string();
    let length = t
        .split_once('(')
        .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse::<u32>().ok());
    if t.contains("UUID") {
        "printf('%08x-0000-4000-8000-%012x', s.g, s.g)".into()
    } else if t.contains("JSON") {
        "json_object('keel', s.g)".into()
    } else if t.contains("BOOL") {
        "s.g % 2 = 0".into()
    } else if t.contains("INT") {
        "s.g".into()
    } else if t.contains("DATETIME") || t.contains("TIMESTAMP") {
        "datetime('2000-01-01', '+' || s.g || ' days')".into()
    } else if t.contains("DATE") {
        "date('2000-01-01', '+' || s.g || ' days')".into()
    } else if t.contains("TIME") {
        "time('00:00', '+' || s.g || ' seconds')".into()
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        match length {
            Some(n) if n > 0 => format!("substr({text}, -{n})"),
            _ => text,
        }
    } else if t.contains("BLOB") {
        format!("CAST({text} AS BLOB)")
    } else if t.contains("REAL")
        || t.contains("FLOA")
        || t.contains("DOUB")
        || t.contains("NUM")
        || t.contains("DEC")
    {
        "s.g".into()
    } else {
        text
    }
}

impl Sqlite {
    /// See [`crate::db::Bulk::fill_empty_tables`].
    pub(super) async fn fill_empty(
        &mut self,
        rows: u32,
        scope: &Scope,
    ) -> Result<Vec<Filled>, DbError> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT IN (SELECT value FROM json_each(?)) \
             ORDER BY name",
        )
        .bind(serde_json::to_string(&KEEL_TABLES).unwrap_or_default())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        // Only the scope's tables and, found as their keys are read, the
        // tables they reference.
        let mut edges = Vec::new();
        let mut todo: Vec<String> = tables.iter().filter(|t| scope.covers(t)).cloned().collect();
        let mut seen: std::collections::BTreeSet<String> = todo.iter().cloned().collect();
        while let Some(t) = todo.pop() {
            for k in self.fill_foreign_keys(&t).await? {
                if seen.insert(k.parent.name.clone()) {
                    todo.push(k.parent.name.clone());
                }
                edges.push((t.clone(), k.parent.name));
            }
        }
        let tables = with_parents(&tables, &edges, |t| seen.contains(t));
        let mut plans = Vec::new();
        for t in parents_first(&tables, &edges) {
            let relation = Relation::new(None, &t);
            let empty: bool = sqlx::query_scalar(&format!(
                "SELECT NOT EXISTS (SELECT 1 FROM {})",
                relation.quoted()
            ))
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
            if empty {
                plans.push(self.fill_plan(&relation).await?);
            }
        }
        run_plans(self, plans, rows).await
    }

    /// The INSERT that fills one table, and what it leaves NULL.
    async fn fill_plan(&mut self, table: &Relation) -> Result<Plan, DbError> {
        let columns = self.fill_columns(&table.name).await?;
        let keys = self.fill_foreign_keys(&table.name).await?;
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut nulls: Vec<(String, &str)> = Vec::new();
        for c in &columns {
            if c.computed {
                continue;
            }
            let fk = keys.iter().find_map(|k| {
                k.columns
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(&c.name))
                    .map(|i| (k, i))
            });
            let value = match fk {
                Some((k, _)) if k.parent.name.eq_ignore_ascii_case(&table.name) => {
                    if !c.not_null {
                        nulls.push((c.name.clone(), "references its own table"));
                    }
                    continue;
                }
                Some((k, i)) => k.value_sql(i),
                None if c.has_default => continue,
                None => value_sql(&c.declared),
            };
            names.push(quote_ident(&c.name));
            values.push(value);
        }
        if names.is_empty() {
            // Every column is the database's: the rowid alias takes NULL
            // (a new rowid) so that the SELECT has a column.
            if let Some(c) = columns.iter().find(|c| c.rowid) {
                names.push(quote_ident(&c.name));
                values.push("NULL".into());
            }
        }
        let insert = format!(
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1) \
             INSERT INTO {} ({}) SELECT {} FROM s",
            table.quoted(),
            names.join(", "),
            values.join(", ")
        );
        Ok(Plan {
            table: table.to_string(),
            insert,
            notes: left_null(&nulls).into_iter().collect(),
        })
    }

    async fn fill_columns(&mut self, table: &str) -> Result<Vec<SqliteColumn>, DbError> {
        let rows = sqlx::query(
            "SELECT name, type, \"notnull\", dflt_value IS NOT NULL AS has_default, pk, hidden, \
             (SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0) AS pks \
             FROM pragma_table_xinfo(?1) ORDER BY cid",
        )
        .bind(table)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let declared: String = r.try_get("type")?;
                let pk: i64 = r.try_get("pk")?;
                let pks: i64 = r.try_get("pks")?;
                let hidden: i64 = r.try_get("hidden")?;
                let rowid = pk == 1 && pks == 1 && declared.eq_ignore_ascii_case("INTEGER");
                Ok(SqliteColumn {
                    name: r.try_get("name")?,
                    not_null: r.try_get::<i64, _>("notnull")? != 0,
                    has_default: r.try_get("has_default")?,
                    computed: rowid || hidden != 0,
                    rowid,
                    declared,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    /// The table's foreign keys; a key that names no parent columns
    /// references the parent's primary key.
    async fn fill_foreign_keys(&mut self, table: &str) -> Result<Vec<ForeignKey>, DbError> {
        let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        )
        .bind(table)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        let mut keys: Vec<(i64, ForeignKey, bool)> = Vec::new();
        for (id, parent, from, to) in rows {
            if keys.last().is_none_or(|(last, _, _)| *last != id) {
                let key = ForeignKey {
                    columns: Vec::new(),
                    parent: Relation::new(None, &parent),
                    parent_columns: Vec::new(),
                };
                keys.push((id, key, false));
            }
            let (_, key, implicit) = keys.last_mut().expect("pushed");
            key.columns.push(from);
            match to {
                Some(to) => key.parent_columns.push(to),
                None => *implicit = true,
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for (_, mut key, implicit) in keys {
            if implicit {
                key.parent_columns = sqlx::query_scalar(
                    "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk",
                )
                .bind(&key.parent.name)
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?;
            }
            out.push(key);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::value_sql;

    #[test]
    fn values_follow_the_declared_type() {
        assert_eq!(value_sql("INTEGER"), "s.g");
        assert_eq!(value_sql("varchar(3)"), "substr('keel ' || s.g, -3)");
        assert_eq!(value_sql("TEXT"), "'keel ' || s.g");
        assert_eq!(value_sql("boolean"), "s.g % 2 = 0");
        assert_eq!(value_sql(""), "'keel ' || s.g");
        assert!(value_sql("timestamp").starts_with("datetime("));
        assert!(value_sql("date").starts_with("date("));
    }
}
