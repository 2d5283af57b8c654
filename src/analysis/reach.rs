//! The relations a migration's statements reach, up and down: what a run
//! reads live facts about and what `keel test` fingerprints and digests.
//! Anything keel cannot follow to its tables (a DO block, a function
//! call, a statement that does not parse, a DROP that may cascade beyond
//! tables, a data change in a WITH clause) reaches everything.

use super::analyze::MigrationAnalysis;
use super::classify::{Classified, classify};
use super::operation::{ActionKind, ColumnDef, DefaultValue, ObjectKind, Operation};
use super::schema::Schema;
use crate::db::Scope;
use crate::migration::Migration;

/// The relations `m`'s up.sql and down.sql name, from the files alone.
pub(crate) fn reach(m: &Migration) -> Scope {
    let tx = m.meta.transaction;
    let mut scope = Scope::none();
    let mut schema = Schema::new(None);
    for text in [Some(m.up.as_str()), m.down.as_deref()]
        .into_iter()
        .flatten()
    {
        scope = scope.union(of_file(&classify(text, &mut schema, tx)));
    }
    scope
}

/// The relations of a migration already analysed: no second parse.
pub(crate) fn reach_analysed(analysis: &MigrationAnalysis) -> Scope {
    let mut scope = of_file(&analysis.up);
    if let Some(down) = &analysis.down {
        scope = scope.union(of_file(down));
    }
    scope
}

/// Whether a statement says CASCADE (as a word, outside quotes is close
/// enough: a false yes only widens the comparison).
fn cascades(sql: &str) -> bool {
    sql.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w.eq_ignore_ascii_case("cascade"))
}

fn of_file(file: &Classified) -> Scope {
    if !file.syntax.is_empty() {
        return Scope::All;
    }
    let mut scope = Scope::none();
    for op in &file.ops {
        if !add(&mut scope, op) {
            return Scope::All;
        }
    }
    scope
}

/// Adds what `op` names; `false` when it may reach beyond what it names.
fn add(scope: &mut Scope, op: &Operation) -> bool {
    // A setting of the session (a `SET lock_timeout` at the top of the
    // file, a search_path: names are matched in every schema) changes no
    // object.
    if matches!(
        op.kind.as_str(),
        "SET"
            | "RESET"
            | "SHOW"
            | "SET ROLE"
            | "RESET ROLE"
            | "SET CONSTRAINTS"
            | "SET SESSION AUTH"
    ) {
        return true;
    }
    let dml = op.actions.iter().any(|a| {
        matches!(
            a.kind,
            ActionKind::Update { .. } | ActionKind::Delete { .. } | ActionKind::Insert
        )
    });
    if dml && op.sql.trim_start().to_uppercase().starts_with("WITH") {
        return false;
    }
    // A comment on something other than a relation (a function, a type)
    // changes nothing the fingerprint compares.
    let comment = op.kind == "COMMENT ON";
    for a in &op.actions {
        match &a.kind {
            ActionKind::Other if a.table.is_none() && comment => scope.add_others(),
            ActionKind::Other if a.table.is_none() => return false,
            // Without CASCADE the server refuses to drop what others
            // depend on; with it, a type takes columns along, a function
            // triggers and defaults.
            ActionKind::DropObject { object, .. }
                if !matches!(
                    object,
                    ObjectKind::View | ObjectKind::Trigger | ObjectKind::Sequence
                ) && cascades(&op.sql) =>
            {
                return false;
            }
            // A policy or rule is its table's (added below), not a relation.
            ActionKind::DropObject {
                object: ObjectKind::Policy | ObjectKind::Rule,
                ..
            }
            | ActionKind::CreateObject {
                object: ObjectKind::Policy | ObjectKind::Rule,
                ..
            } => {}
            ActionKind::DropObject { name, object } | ActionKind::CreateObject { name, object } => {
                if !matches!(
                    object,
                    ObjectKind::View | ObjectKind::Trigger | ObjectKind::Sequence
                ) {
                    scope.add_others();
                }
                scope.add(name)
            }
            ActionKind::EnumAddValue { .. } | ActionKind::EnumRenameValue => scope.add_others(),
            ActionKind::RenameTable { to } => scope.add(to),
            ActionKind::DetachPartition { partition, .. } => scope.add(partition),
            ActionKind::CreateTable { references, .. } => {
                references.iter().for_each(|r| scope.add(r))
            }
            ActionKind::AddConstraint {
                references: Some(r),
                ..
            } => scope.add(r),
            ActionKind::DropIndex { name, .. } => scope.add(name),
            ActionKind::AddColumn(ColumnDef {
                default: Some(DefaultValue::Unknown(f)),
                ..
            }) => scope.add_function(f),
            ActionKind::CreateIndex { name: Some(n), .. } => scope.add(n),
            _ => {}
        }
        if let Some(t) = &a.table {
            scope.add(t);
        }
        for l in &a.locks {
            scope.add(&l.table);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &str) -> Scope {
        of_file(&classify(sql, &mut Schema::new(None), true))
    }

    fn named(names: &[&str]) -> Scope {
        let mut s = Scope::none();
        names.iter().for_each(|n| s.add_relname(n));
        s
    }

    #[test]
    fn tables_indexes_and_references_are_named() {
        assert_eq!(
            of("CREATE TABLE app.t (id int REFERENCES users);\n\
                CREATE INDEX t_idx ON app.t (id);\n\
                ALTER TABLE posts RENAME TO articles;"),
            named(&["articles", "posts", "t", "t_idx", "users"])
        );
    }

    #[test]
    fn an_added_column_default_names_the_function_whose_volatility_counts() {
        assert_eq!(
            of("ALTER TABLE t ADD COLUMN a bigint DEFAULT app.ticket();").functions_named(),
            Some(["ticket".to_string()].into())
        );
        assert_eq!(
            of("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT now();").functions_named(),
            Some([].into()),
            "keel knows now() itself"
        );
    }

    #[test]
    fn types_functions_and_extensions_bring_the_other_objects() {
        assert!(!of("CREATE TABLE t (id int);").others());
        for sql in [
            "CREATE TYPE mood AS ENUM ('a');",
            "ALTER TYPE mood ADD VALUE 'b';",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
            "CREATE EXTENSION IF NOT EXISTS pgcrypto;",
            "CREATE SCHEMA app;",
            "DROP FUNCTION f();",
        ] {
            assert!(of(sql).others(), "{sql}");
        }
    }

    #[test]
    fn a_comment_reaches_the_relation_it_describes() {
        assert_eq!(
            of(
                "COMMENT ON COLUMN app.t.c IS 'x';\nCOMMENT ON CONSTRAINT k ON u IS 'y';\n\
                COMMENT ON TABLE v IS NULL;"
            ),
            named(&["t", "u", "v"])
        );
        let function = of("COMMENT ON FUNCTION f(int) IS 'x';");
        assert!(function.others() && function != Scope::All);
    }

    #[test]
    fn a_policy_or_a_rule_reaches_its_table_alone() {
        assert_eq!(
            of(
                "CREATE POLICY p ON app.t USING (true);\nALTER POLICY p ON t RENAME TO q;\n\
                DROP POLICY IF EXISTS q ON u;\nCREATE OR REPLACE RULE r AS ON DELETE TO v \
                DO INSTEAD NOTHING;\nALTER RULE r ON v RENAME TO s;\nDROP RULE s ON w;"
            ),
            named(&["t", "u", "v", "w"])
        );
    }

    #[test]
    fn extended_statistics_reach_their_table_or_the_whole_schema() {
        assert_eq!(of("CREATE STATISTICS s ON a, b FROM app.t;"), named(&["t"]));
        // Neither names the table: the server knows which it is.
        for sql in [
            "DROP STATISTICS s;",
            "ALTER STATISTICS s SET STATISTICS 10;",
        ] {
            assert_eq!(of(sql), Scope::All, "{sql}");
        }
    }

    #[test]
    fn a_setting_of_the_session_reaches_nothing() {
        assert_eq!(
            of(
                "SET lock_timeout = '5s';\nSET search_path TO app, public;\nSET ROLE app;\n\
                SET CONSTRAINTS ALL DEFERRED;\nCREATE TABLE t (id int);\nRESET ROLE;"
            ),
            named(&["t"])
        );
    }

    #[test]
    fn what_keel_cannot_follow_reaches_everything() {
        for sql in [
            "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$;",
            "SELECT do_something();",
            "DROP TYPE mood CASCADE;",
            "DROP FUNCTION f() CASCADE;",
            "WITH gone AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM gone;",
            "CREATE TABLE (;",
        ] {
            assert_eq!(of(sql), Scope::All, "{sql}");
        }
    }
}
