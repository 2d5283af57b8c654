//! ALTER TABLE: one action per clause, with the lock each clause takes.
//! Lock levels follow PostgreSQL's documentation and are checked against a
//! real server by the lock probe test (tests/cli/lock_probe.rs).

use super::Cx;
use super::columns::column_def;
use super::syntax::{
    child, find, has_desc, has_token, name_in, qualified, table_name, table_relation,
    written_relation,
};
use crate::analysis::operation::{
    Action, ActionKind, ConstraintKind, DefaultValue, Generated, Lock, Tri,
};
use crate::analysis::sqltype::{Rewrite, SqlType};
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SyntaxKind, SyntaxNode};

use Lock::{AccessExclusive as Ael, ShareRowExclusive as Sre, ShareUpdateExclusive as Sue};

pub(crate) fn classify(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    let named = child(node, SyntaxKind::TABLE_RELATION_NAME);
    let table = named.as_ref().map(qualified).or_else(|| table_name(node));
    let Some(table) = table else {
        return Vec::new();
    };
    let relation = named
        .as_ref()
        .map(written_relation)
        .or_else(|| table_relation(node));
    node.children()
        .filter(|c| ast::AlterTableAction::can_cast(c.kind()))
        .map(|clause| {
            let mut a = action(cx, &table, &clause);
            a.relation = relation.clone();
            a
        })
        .collect()
}

fn action(cx: &Cx, table: &str, clause: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let new = |kind| cx.action(kind, Some(table.to_string()), clause);
    let mut a = match clause.kind() {
        ADD_COLUMN => return add_column(cx, table, clause),
        ALTER_COLUMN => return alter_column(cx, table, clause),
        ADD_CONSTRAINT => return add_constraint(cx, table, clause),
        DROP_COLUMN => {
            let mut a = new(ActionKind::DropColumn);
            a.column = name_in(clause, &[COLUMN_NAME_REF]);
            let col = a.column.clone().unwrap_or_default();
            a.destroys =
                !cx.schema.is_new_table_here(table) && !cx.schema.is_new_column_here(table, &col);
            a
        }
        RENAME_COLUMN => {
            let mut a = new(ActionKind::RenameColumn {
                to: name_in(clause, &[COLUMN_NAME]).unwrap_or_default(),
            });
            a.column = name_in(clause, &[COLUMN_NAME_REF]);
            a
        }
        TABLE_RENAME_TO => new(ActionKind::RenameTable {
            to: name_in(clause, &[TABLE_NAME, PATH]).unwrap_or_default(),
        }),
        VALIDATE_CONSTRAINT => {
            let mut a = new(ActionKind::ValidateConstraint {
                name: name_in(clause, &[CONSTRAINT_NAME_REF]).unwrap_or_default(),
            });
            a.locks.push(Cx::lock(table, Sue));
            a.scan = Tri::Yes;
            return a;
        }
        DROP_CONSTRAINT => new(ActionKind::DropConstraint {
            name: name_in(clause, &[CONSTRAINT_NAME_REF]).unwrap_or_default(),
        }),
        DETACH_PARTITION => {
            let partition = name_in(clause, &[TABLE_NAME_REF]).unwrap_or_default();
            let concurrently = has_desc(clause, CONCURRENTLY_KW);
            let mut a = new(ActionKind::DetachPartition {
                partition: partition.clone(),
                concurrently,
            });
            // CONCURRENTLY (14+) waits for queries instead of locking them out.
            let lock = if concurrently { Sue } else { Ael };
            a.locks.push(Cx::lock(table, lock));
            a.locks.push(Cx::lock(&partition, lock));
            a.no_transaction = concurrently;
            return a;
        }
        ATTACH_PARTITION => {
            let partition = name_in(clause, &[TABLE_NAME_REF, PATH_REF]).unwrap_or_default();
            let mut a = new(ActionKind::Other);
            // 12+: SHARE UPDATE EXCLUSIVE on the parent; the partition is
            // scanned to prove its bound unless a CHECK already does.
            a.locks.push(Cx::lock(table, Sue));
            a.locks.push(Cx::lock(&partition, Ael));
            a.scan = Tri::Depends("a CHECK constraint on the partition matching its bound".into());
            return a;
        }
        SET_LOGGED | SET_UNLOGGED | SET_TABLESPACE | SET_ACCESS_METHOD => {
            let what = match clause.kind() {
                SET_LOGGED => "SET LOGGED",
                SET_UNLOGGED => "SET UNLOGGED",
                SET_TABLESPACE => "SET TABLESPACE",
                _ => "SET ACCESS METHOD",
            };
            let mut a = new(ActionKind::TableRewrite { what });
            a.locks.push(Cx::lock(table, Ael));
            a.rewrite = Tri::Yes;
            a.scan = Tri::Yes;
            return a;
        }
        ENABLE_TRIGGER | DISABLE_TRIGGER | ENABLE_ALWAYS_TRIGGER | ENABLE_REPLICA_TRIGGER => {
            let mut a = new(ActionKind::EnableDisableTrigger);
            a.locks.push(Cx::lock(table, Sre));
            return a;
        }
        // Storage parameters, statistics targets and CLUSTER ON take the
        // lighter lock (PostgreSQL docs, ALTER TABLE notes).
        SET_OPTIONS | RESET_OPTIONS | CLUSTER_ON | SET_WITHOUT_CLUSTER => {
            let mut a = new(ActionKind::Other);
            a.locks.push(Cx::lock(table, Sue));
            return a;
        }
        _ => new(ActionKind::Other),
    };
    // Every other ALTER TABLE form takes ACCESS EXCLUSIVE.
    a.locks.push(Cx::lock(table, Ael));
    a
}

fn add_column(cx: &Cx, table: &str, clause: &SyntaxNode) -> Action {
    let def = column_def(clause, cx.lines);
    let mut a = cx.action(
        ActionKind::AddColumn(def.clone()),
        Some(table.to_string()),
        clause,
    );
    a.column = Some(def.name.clone());
    a.locks.push(Cx::lock(table, Ael));
    let serial = def.ty.as_ref().is_some_and(SqlType::is_serial);
    let old = cx.schema.version.is_some_and(|v| v.below(11));
    a.rewrite = match (&def.generated, &def.default) {
        (Some(Generated::Identity | Generated::Stored), _) => Tri::Yes,
        _ if serial => Tri::Yes,
        (_, Some(DefaultValue::Volatile(_))) => Tri::Yes,
        (_, Some(DefaultValue::Unknown(f))) => match cx.schema.volatility(f) {
            // pg_proc.provolatile: only a volatile default is evaluated per row.
            Some('v') => Tri::Yes,
            Some(_) if !old => Tri::No,
            Some(_) => Tri::Yes,
            None => Tri::Depends(format!(
                "{f}() being volatile (a user function is, unless declared STABLE or IMMUTABLE)"
            )),
        },
        // Before 11 any non-null default was written into every row.
        (_, Some(DefaultValue::Constant)) if old => Tri::Yes,
        _ => Tri::No,
    };
    if let Some(r) = &def.references {
        a.locks.push(Cx::lock(r, Sre));
    }
    // A new column's CHECK or unique index is verified against every
    // existing row. Its foreign key only when a default fills the column:
    // all NULL, the lock probe shows PostgreSQL skips that scan; with a
    // value in every row it scans both tables.
    let filled = def
        .default
        .as_ref()
        .is_some_and(|d| *d != DefaultValue::Null);
    let verified =
        def.check || def.unique || def.primary_key || (def.references.is_some() && filled);
    a.scan = if a.rewrite.is_yes() || verified {
        Tri::Yes
    } else {
        a.rewrite.clone()
    };
    a
}

fn alter_column(cx: &Cx, table: &str, clause: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let column = name_in(clause, &[COLUMN_NAME_REF]).unwrap_or_default();
    let option = clause
        .children()
        .find(|c| ast::AlterColumnOption::can_cast(c.kind()));
    let kind = match option.as_ref().map(|o| o.kind()) {
        Some(SET_TYPE) => {
            let o = option.as_ref().expect("matched Some");
            let to = o
                .children()
                .find_map(ast::Type::cast)
                .map(|t| SqlType::parse(&t.syntax().text().to_string()))
                .unwrap_or_else(|| SqlType::parse("?"));
            ActionKind::AlterColumnType {
                from: cx.schema.column_type(table, &column).cloned(),
                to,
                using: child(o, USING_EXPR).is_some() || has_token(o, USING_KW),
            }
        }
        Some(SET_NOT_NULL) => ActionKind::SetNotNull,
        Some(DROP_NOT_NULL) => ActionKind::DropNotNull,
        Some(SET_DEFAULT) => ActionKind::SetDefault,
        Some(DROP_DEFAULT) => ActionKind::DropDefault,
        _ => ActionKind::Other,
    };
    let mut a = cx.action(kind, Some(table.to_string()), clause);
    a.column = Some(column.clone());
    let lock = match option.as_ref().map(|o| o.kind()) {
        // Statistics and per-column options: SHARE UPDATE EXCLUSIVE.
        Some(SET_STATISTICS | SET_OPTIONS | RESET_OPTIONS) => Sue,
        _ => Ael,
    };
    a.locks.push(Cx::lock(table, lock));
    match &a.kind {
        ActionKind::AlterColumnType { to, from, using } => {
            a.rewrite = type_change_rewrite(cx, to, from.as_ref(), *using);
            a.scan = a.rewrite.clone();
            // A USING expression can map values any way it likes (`left(…)`,
            // a cast that drops leading zeros): only a backup brings them back.
            let existing = !cx.schema.is_new_table_here(table)
                && !cx.schema.is_new_column_here(table, &column);
            a.destroys =
                existing && (*using || from.as_ref().is_some_and(|f| to.loses_data_from(f)));
        }
        ActionKind::SetNotNull => {
            let proven = cx.schema.version.is_none_or(|v| v.at_least(12))
                && cx.schema.proves_not_null(table, &column);
            a.scan = Tri::from_bool(!proven);
        }
        _ => {}
    }
    a
}

fn type_change_rewrite(cx: &Cx, to: &SqlType, from: Option<&SqlType>, using: bool) -> Tri {
    let utc = || match cx.schema.timezone_is_utc() {
        Some(is_utc) => Tri::from_bool(!is_utc),
        None => Tri::Depends("the session TimeZone: no rewrite only when it is UTC".into()),
    };
    if using {
        return Tri::Yes;
    }
    match from {
        Some(from) => match to.rewrite_from(from, cx.schema.version) {
            Rewrite::No => Tri::No,
            Rewrite::Yes => Tri::Yes,
            Rewrite::UnlessUtc => utc(),
        },
        // Without the current type, only targets that some type reaches
        // binary-coercibly are uncertain; `bigint` from anything rewrites.
        None => match to.name.as_str() {
            "varchar" | "text" | "numeric" | "varbit" | "inet" => Tri::Depends(format!(
                "the current type: binary-coercible changes to {to} (e.g. a wider varchar) do not rewrite"
            )),
            "timestamptz" | "timestamp" if cx.schema.version.is_none_or(|v| v.at_least(12)) => {
                utc()
            }
            _ => Tri::Yes,
        },
    }
}

fn add_constraint(cx: &Cx, table: &str, clause: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let c = clause.children().next();
    let kind = match c.as_ref().map(|c| c.kind()) {
        Some(FOREIGN_KEY_CONSTRAINT) => ConstraintKind::ForeignKey,
        Some(CHECK_CONSTRAINT) => ConstraintKind::Check,
        Some(UNIQUE_CONSTRAINT) => ConstraintKind::Unique,
        Some(PRIMARY_KEY_CONSTRAINT) => ConstraintKind::PrimaryKey,
        Some(EXCLUDE_CONSTRAINT) => ConstraintKind::Exclude,
        Some(NOT_NULL_CONSTRAINT) => ConstraintKind::NotNull,
        _ => {
            let mut a = cx.action(ActionKind::Other, Some(table.to_string()), clause);
            a.locks.push(Cx::lock(table, Ael));
            return a;
        }
    };
    let c = c.expect("matched Some");
    let not_valid = has_desc(&c, NOT_VALID);
    let using_index = has_desc(&c, USING_INDEX_NAME) || has_desc(&c, USING_INDEX);
    let references = (kind == ConstraintKind::ForeignKey)
        .then(|| child(&c, TABLE_NAME_REF).map(|n| qualified(&n)))
        .flatten();
    let mut a = cx.action(
        ActionKind::AddConstraint {
            kind,
            name: name_in(&c, &[CONSTRAINT_NAME]),
            not_valid,
            using_index,
            references: references.clone(),
            not_null_check: (kind == ConstraintKind::Check)
                .then(|| not_null_check(&c))
                .flatten(),
        },
        Some(table.to_string()),
        clause,
    );
    match kind {
        // A foreign key blocks writes on both tables while it validates.
        ConstraintKind::ForeignKey => {
            a.locks.push(Cx::lock(table, Sre));
            if let Some(r) = &references {
                a.locks.push(Cx::lock(r, Sre));
            }
            a.scan = Tri::from_bool(!not_valid);
        }
        ConstraintKind::Check | ConstraintKind::NotNull => {
            a.locks.push(Cx::lock(table, Ael));
            a.scan = Tri::from_bool(!not_valid);
        }
        ConstraintKind::Unique | ConstraintKind::PrimaryKey => {
            a.locks.push(Cx::lock(table, Ael));
            a.scan = Tri::from_bool(!using_index);
        }
        ConstraintKind::Exclude => {
            a.locks.push(Cx::lock(table, Ael));
            a.scan = Tri::Yes;
        }
    }
    a
}

/// `CHECK (col IS NOT NULL)` → `col`.
fn not_null_check(check: &SyntaxNode) -> Option<String> {
    use SyntaxKind::*;
    let expr = check
        .children()
        .find(|n| !matches!(n.kind(), CONSTRAINT_NAME_CLAUSE | NOT_VALID))?;
    let is_not_null = expr.kind() == BIN_EXPR
        && expr.children().any(|n| n.kind() == IS_NOT)
        && expr
            .children()
            .any(|n| n.kind() == LITERAL && has_desc(&n, NULL_KW));
    let column = find(&expr, &[NAME_REF])?;
    is_not_null.then(|| qualified(&column))
}
