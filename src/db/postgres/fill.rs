//! Rows generated into PostgreSQL's empty tables from the catalog: one
//! `INSERT … SELECT … FROM generate_series(1, $1)` per table, a value per
//! column chosen from its type (a domain's base type, cast back to the
//! domain so its checks apply), foreign keys pointing at the parent's rows.

use super::Postgres;
use crate::db::integrity::{ForeignKey, Plan, left_null, parents_first, run_plans, with_parents};
use crate::db::{DbError, Filled, Relation, Scope};
use sqlx::Row;
use std::collections::BTreeMap;

/// A user table that could be filled: its oid, the relation to write SQL
/// with (schema always given) and its text form as keel shows it.
struct Candidate {
    relation: Relation,
    shown: String,
}

/// A foreign key from the catalog: its columns, the parent's columns, the
/// parent's schema and name, and whether the parent is the table itself.
type KeyRow = (Vec<String>, Vec<String>, String, String, bool);

/// One column as the generator sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct PgColumn {
    pub(super) name: String,
    /// `format_type` of the column: what the value is cast to.
    pub(super) col_type: String,
    pub(super) not_null: bool,
    pub(super) has_default: bool,
    /// Identity or generated: the database writes it.
    pub(super) computed: bool,
    /// `pg_type.typname` of the base type (a domain's base).
    pub(super) base_name: String,
    /// `format_type` of the base type.
    pub(super) base_type: String,
    /// `pg_type.typcategory` of the base type.
    pub(super) category: String,
    /// `pg_type.typtype` of the base type: b, e (enum), r/m (range), c…
    pub(super) kind: String,
    /// The type modifier (varchar's length + 4, numeric's precision…).
    pub(super) typmod: i32,
}

/// SQL of a value of `c`'s base type for generated row `s.g` (a bigint),
/// different for each row where the type allows; `None` when keel has no
/// generator for the type.
pub(super) fn value_sql(c: &PgColumn) -> Option<String> {
    let g = "s.g";
    let text = format!("'keel ' || {g}");
    match c.kind.as_str() {
        "e" => {
            let all = format!("enum_range(NULL::{})", c.base_type);
            return Some(format!("({all})[(({g} - 1) % cardinality({all})) + 1]"));
        }
        "r" | "m" => return Some("'empty'".into()),
        "c" | "p" => return None,
        _ => {}
    }
    if c.category == "A" {
        return Some("'{}'".into());
    }
    Some(match c.base_name.as_str() {
        "int2" => format!("{g} % 32767"),
        "numeric" if c.typmod >= 4 => {
            let precision = ((c.typmod - 4) >> 16) & 0xffff;
            let scale = (c.typmod - 4) & 0xffff;
            match precision - scale {
                d if d <= 0 => "0".into(),
                d => format!("{g} % 1{}", "0".repeat(d.min(18) as usize)),
            }
        }
        "varchar" | "bpchar" if c.typmod >= 5 => format!("right({text}, {})", c.typmod - 4),
        "char" => format!("chr(65 + ({g} % 26)::int)"),
        "bool" => format!("{g} % 2 = 0"),
        "date" => format!("date '2000-01-01' + {g}::int"),
        "timestamp" | "timestamptz" => format!("timestamp '2000-01-01' + {g} * interval '1 day'"),
        "time" | "timetz" => format!("time '00:00' + {g} * interval '1 second'"),
        "interval" => format!("{g} * interval '1 minute'"),
        "uuid" => format!("md5({g}::text)::uuid"),
        "json" | "jsonb" => format!("json_build_object('keel', {g})"),
        "xml" => format!("xmlelement(name keel, {g})"),
        "bytea" => format!("convert_to({text}, 'UTF8')"),
        "inet" | "cidr" => format!("inet '10.0.0.0' + {g}"),
        "macaddr" => format!("lpad(to_hex({g}), 12, '0')::macaddr"),
        "macaddr8" => format!("lpad(to_hex({g}), 16, '0')::macaddr8"),
        // The last n bits of g (a bit(32) cast to bit(n) keeps the first).
        "bit" | "varbit" => {
            let n = if c.typmod > 0 { c.typmod.min(32) } else { 32 };
            format!("right({g}::int::bit(32)::text, {n})")
        }
        "point" => format!("point({g}, {g})"),
        "tsvector" => format!("to_tsvector('simple', {text})"),
        "money" => format!("{g}::numeric"),
        _ => match c.category.as_str() {
            "N" => g.to_string(),
            "S" => text,
            _ => return None,
        },
    })
}

impl Postgres {
    /// See [`crate::db::Bulk::fill_empty_tables`].
    pub(super) async fn fill_empty(
        &mut self,
        rows: u32,
        scope: &Scope,
    ) -> Result<Vec<Filled>, DbError> {
        let edges: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT conrelid::int8, confrelid::int8 FROM pg_constraint \
             WHERE contype = 'f' AND conparentid = 0",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        let candidates = match scope.names() {
            None => self.fill_candidates(None, None).await?,
            // The scope's tables and, transitively, those their foreign
            // keys reference: not every table of the database at each of
            // `keel test`'s steps (N² for a history of N).
            Some(names) => {
                let mut found = self.fill_candidates(Some(names), None).await?;
                loop {
                    let parents: Vec<i64> = edges
                        .iter()
                        .filter(|(c, p)| found.contains_key(c) && !found.contains_key(p))
                        .map(|(_, p)| *p)
                        .collect();
                    if parents.is_empty() {
                        break;
                    }
                    let more = self.fill_candidates(None, Some(parents)).await?;
                    // Parents that are no candidates (keel's, an extension's).
                    if more.is_empty() {
                        break;
                    }
                    found.extend(more);
                }
                found
            }
        };
        let oids: Vec<i64> = candidates.keys().copied().collect();
        let oids = with_parents(&oids, &edges, |oid| {
            scope.covers(&candidates[oid].relation.name)
        });
        let mut plans = Vec::new();
        for oid in parents_first(&oids, &edges) {
            let table = &candidates[&oid];
            let empty: bool = sqlx::query_scalar(&format!(
                "SELECT NOT EXISTS (SELECT 1 FROM {})",
                table.relation.quoted()
            ))
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
            if empty {
                plans.push(self.fill_plan(oid, table).await?);
            }
        }
        run_plans(self, plans, rows).await
    }

    /// User tables by oid: ordinary and partitioned ones (not their
    /// partitions, which the parent routes rows to), not keel's own, not an
    /// extension's; only those of these names and of these oids, when given.
    async fn fill_candidates(
        &mut self,
        names: Option<Vec<String>>,
        oids: Option<Vec<i64>>,
    ) -> Result<BTreeMap<i64, Candidate>, DbError> {
        let keel = super::live::own_tables();
        let rows: Vec<(i64, String, String, bool)> = sqlx::query_as(
            "SELECT c.oid::int8, n.nspname::text, c.relname::text, n.nspname = current_schema() \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
             AND c.relname <> ALL($1) \
             AND ($2::text[] IS NULL OR c.relname = ANY($2)) \
             AND ($3::int8[] IS NULL OR c.oid = ANY($3)) \
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                             AND d.objid = c.oid AND d.deptype = 'e')",
        )
        .bind(keel)
        .bind(names)
        .bind(oids)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(oid, schema, name, current)| {
                let shown = Relation {
                    schema: (!current).then(|| schema.clone()),
                    name: name.clone(),
                }
                .to_string();
                let relation = Relation::new(Some(&schema), &name);
                (oid, Candidate { relation, shown })
            })
            .collect())
    }

    /// The INSERT that fills one table, and what it leaves NULL.
    async fn fill_plan(&mut self, oid: i64, table: &Candidate) -> Result<Plan, DbError> {
        let columns = self.fill_columns(oid).await?;
        let keys = self.fill_foreign_keys(oid).await?;
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut nulls: Vec<(String, &str)> = Vec::new();
        for c in &columns {
            if c.computed {
                continue;
            }
            let fk = keys.iter().find_map(|(k, own)| {
                k.columns
                    .iter()
                    .position(|x| *x == c.name)
                    .map(|i| (k, i, *own))
            });
            let value = match fk {
                Some((_, _, true)) => {
                    if !c.not_null {
                        nulls.push((c.name.clone(), "references its own table"));
                    }
                    continue;
                }
                Some((k, i, false)) => k.value_sql(i),
                None if c.has_default => continue,
                None => match value_sql(c) {
                    Some(v) => format!("CAST({v} AS {})", c.col_type),
                    None if !c.not_null => {
                        nulls.push((c.name.clone(), "no generator for its type"));
                        continue;
                    }
                    None => format!("CAST(CAST('keel ' || s.g AS text) AS {})", c.col_type),
                },
            };
            names.push(crate::db::quote_ident(&c.name));
            values.push(value);
        }
        let insert = format!(
            "INSERT INTO {}{} SELECT {} FROM generate_series(1, $1::int8) AS s(g)",
            table.relation.quoted(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            values.join(", ")
        );
        Ok(Plan {
            table: table.shown.clone(),
            insert,
            notes: left_null(&nulls).into_iter().collect(),
        })
    }

    /// The table's columns with their types resolved through domains.
    async fn fill_columns(&mut self, oid: i64) -> Result<Vec<PgColumn>, DbError> {
        let rows = sqlx::query(
            "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS col_type, \
             a.attnotnull AS not_null, a.atthasdef AS has_default, \
             (a.attidentity <> '' OR a.attgenerated <> '') AS computed, \
             b.typname::text AS base_name, b.typcategory::text AS category, b.typtype::text AS kind, \
             format_type(b.oid, m.typmod) AS base_type, m.typmod \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             CROSS JOIN LATERAL (SELECT CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod) m \
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
             WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(oid)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                Ok(PgColumn {
                    name: r.try_get("name")?,
                    col_type: r.try_get("col_type")?,
                    not_null: r.try_get("not_null")?,
                    has_default: r.try_get("has_default")?,
                    computed: r.try_get("computed")?,
                    base_name: r.try_get("base_name")?,
                    base_type: r.try_get("base_type")?,
                    category: r.try_get("category")?,
                    kind: r.try_get("kind")?,
                    typmod: r.try_get("typmod")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    /// The table's foreign keys, each with whether it references the table itself.
    async fn fill_foreign_keys(&mut self, oid: i64) -> Result<Vec<(ForeignKey, bool)>, DbError> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT (SELECT array_agg(a.attname::text ORDER BY k.n) \
                     FROM unnest(con.conkey) WITH ORDINALITY AS k (attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum), \
                    (SELECT array_agg(a.attname::text ORDER BY k.n) \
                     FROM unnest(con.confkey) WITH ORDINALITY AS k (attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum), \
                    pn.nspname::text, pc.relname::text, con.confrelid = con.conrelid \
             FROM pg_constraint con JOIN pg_class pc ON pc.oid = con.confrelid \
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE con.contype = 'f' AND con.conparentid = 0 AND con.conrelid = $1::int8::oid \
             ORDER BY con.conname",
        )
        .bind(oid)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(columns, parent_columns, schema, name, own)| {
                let parent = Relation::new(Some(&schema), &name);
                let key = ForeignKey {
                    columns,
                    parent,
                    parent_columns,
                };
                (key, own)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(base_name: &str, category: &str, typmod: i32) -> PgColumn {
        PgColumn {
            name: "c".into(),
            base_name: base_name.into(),
            base_type: base_name.into(),
            category: category.into(),
            kind: "b".into(),
            typmod,
            ..Default::default()
        }
    }

    #[test]
    fn values_follow_the_type_and_its_limits() {
        assert_eq!(value_sql(&col("int8", "N", -1)).unwrap(), "s.g");
        assert_eq!(value_sql(&col("int2", "N", -1)).unwrap(), "s.g % 32767");
        // varchar(3): the last three characters of 'keel <g>'.
        assert_eq!(
            value_sql(&col("varchar", "S", 7)).unwrap(),
            "right('keel ' || s.g, 3)"
        );
        assert_eq!(value_sql(&col("text", "S", -1)).unwrap(), "'keel ' || s.g");
        // numeric(5,2): at most 999.
        let numeric = col("numeric", "N", ((5 << 16) | 2) + 4);
        assert_eq!(value_sql(&numeric).unwrap(), "s.g % 1000");
        assert_eq!(value_sql(&col("bool", "B", -1)).unwrap(), "s.g % 2 = 0");
        assert_eq!(value_sql(&col("_int4", "A", -1)).unwrap(), "'{}'");
        assert_eq!(value_sql(&col("whatever", "X", -1)), None);
        let mut mood = col("mood", "E", -1);
        mood.kind = "e".into();
        assert_eq!(
            value_sql(&mood).unwrap(),
            "(enum_range(NULL::mood))[((s.g - 1) % cardinality(enum_range(NULL::mood))) + 1]"
        );
    }
}
