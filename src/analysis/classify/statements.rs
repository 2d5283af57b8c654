//! Every statement kind other than ALTER TABLE: what it touches and locks.

use super::columns::column_def;
use super::syntax::{
    child, find, has_desc, has_token, ident, name_in, names, qualified, significant_tokens,
    table_name, table_relation, text, written_relation,
};
use super::{Cx, alter_table, objects};
use crate::analysis::operation::{Action, ActionKind, Lock, ObjectKind, RowFilter, Tri};
use squawk_syntax::{SyntaxKind, SyntaxNode};

use Lock::{AccessExclusive as Ael, ShareUpdateExclusive as Sue};

pub(crate) fn classify(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    let mut actions = statement(cx, node);
    actions.extend(data_changing_ctes(cx, node));
    actions
}

/// The data changes inside a statement's WITH clause (`WITH gone AS
/// (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM gone`), each an
/// action of its own: the rules see the DELETE, and keel backs up what it
/// destroys. Its rows are not selected by its WHERE (which may read the
/// other queries of the clause): the whole table is the backup.
fn data_changing_ctes(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    use SyntaxKind::*;
    let Some(with) = child(node, WITH_CLAUSE) else {
        return Vec::new();
    };
    let mut actions = Vec::new();
    for query in with
        .children()
        .filter(|t| t.kind() == WITH_TABLE)
        .flat_map(|t| t.children())
        .filter(|q| matches!(q.kind(), UPDATE | DELETE | INSERT | MERGE))
    {
        let mut a = dml(cx, &query);
        a.rows = None;
        actions.push(a);
        actions.extend(data_changing_ctes(cx, &query));
    }
    actions
}

fn statement(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    use SyntaxKind::*;
    let one = |kind, table| vec![cx.action(kind, table, node)];
    match node.kind() {
        ALTER_TABLE => alter_table::classify(cx, node),
        CREATE_TABLE | CREATE_TABLE_AS | SELECT_INTO | CREATE_MATERIALIZED_VIEW => {
            vec![create_table(cx, node)]
        }
        DROP_TABLE => destroy_tables(cx, node, relations(node, TABLE_NAME_REF), |cascade| {
            ActionKind::DropTable { cascade }
        }),
        TRUNCATE => {
            let list = child(node, TABLE_LIST).unwrap_or_else(|| node.clone());
            let tables = relations(&list, TABLE_RELATION_NAME);
            destroy_tables(cx, node, tables, |cascade| ActionKind::Truncate { cascade })
        }
        CREATE_INDEX => vec![create_index(cx, node)],
        DROP_INDEX => drop_index(cx, node),
        ALTER_INDEX => vec![alter_index(cx, node)],
        REINDEX => vec![reindex(cx, node)],
        VACUUM => vacuum(cx, node),
        CLUSTER => vec![cluster(cx, node)],
        ALTER_TYPE => vec![alter_type(cx, node)],
        UPDATE | DELETE | INSERT | MERGE => vec![dml(cx, node)],
        CREATE_TRIGGER | DROP_TRIGGER => vec![trigger(cx, node)],
        BEGIN => one(ActionKind::Transaction { begin: true }, None),
        COMMIT_TRANSACTION | ROLLBACK_TRANSACTION => {
            one(ActionKind::Transaction { begin: false }, None)
        }
        CREATE_DATABASE | DROP_DATABASE | CREATE_TABLESPACE | DROP_TABLESPACE | ALTER_SYSTEM => {
            let mut a = cx.action(
                ActionKind::NonTransactional {
                    what: super::statement_kind(node),
                },
                None,
                node,
            );
            a.no_transaction = true;
            vec![a]
        }
        LOCK => objects::lock_table(cx, node),
        COMMENT_ON => vec![comment_on(cx, node)],
        _ => vec![objects::object(cx, node)],
    }
}

/// COMMENT ON a relation or one of its columns takes SHARE UPDATE
/// EXCLUSIVE on it; on a constraint, trigger, rule or policy, ACCESS SHARE
/// on its table (the lock probe's findings): reads and writes go on. A
/// comment on anything else (a function, a type) names no relation.
fn comment_on(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let target = node.children().find_map(|object| match object.kind() {
        OBJECT_TABLE
        | OBJECT_VIEW
        | OBJECT_MATERIALIZED_VIEW
        | OBJECT_FOREIGN_TABLE
        | OBJECT_SEQUENCE
        | OBJECT_INDEX => Some((name_in(&object, &[PATH_REF])?, Sue)),
        // `t.c`: the path of the column's path, without the column.
        OBJECT_COLUMN => {
            let column = find(&object, &[PATH_REF])?;
            Some((qualified(&child(&column, PATH_REF)?), Sue))
        }
        OBJECT_CONSTRAINT | OBJECT_TRIGGER | OBJECT_RULE | OBJECT_POLICY => Some((
            name_in(&object, &[TABLE_NAME_REF, RELATION_NAME_REF])?,
            Lock::AccessShare,
        )),
        _ => None,
    });
    let target = target.filter(|(r, _)| !r.is_empty());
    let mut a = cx.action(
        ActionKind::Other,
        target.as_ref().map(|(r, _)| r.clone()),
        node,
    );
    a.locks
        .extend(target.iter().map(|(r, lock)| Cx::lock(r, *lock)));
    a
}

/// DROP TABLE and TRUNCATE: every table named loses its rows, unless this
/// migration made it.
fn destroy_tables(
    cx: &Cx,
    node: &SyntaxNode,
    tables: Vec<(String, crate::db::Relation)>,
    kind: impl Fn(bool) -> ActionKind,
) -> Vec<Action> {
    let cascade = has_desc(node, SyntaxKind::CASCADE_KW);
    tables
        .into_iter()
        .map(|(t, relation)| {
            let mut a = cx.action(kind(cascade), Some(t.clone()), node);
            a.locks.push(Cx::lock(&t, Ael));
            a.destroys = !cx.schema.is_new_table_here(&t);
            a.relation = Some(relation);
            a
        })
        .collect()
}

fn alter_index(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let index = name_in(node, &[INDEX_REF]).unwrap_or_default();
    let table = cx.schema.index_table(&index).map(str::to_string);
    let renames = child(node, INDEX_RENAME_TO).is_some();
    let kind = if renames {
        ActionKind::RenameIndex
    } else {
        ActionKind::Other
    };
    let mut a = cx.action(kind, table, node);
    // 12+: renaming an index takes SHARE UPDATE EXCLUSIVE only.
    a.locks
        .push(Cx::lock(&index, if renames { Sue } else { Ael }));
    a
}

fn cluster(cx: &Cx, node: &SyntaxNode) -> Action {
    let table = name_in(node, &[SyntaxKind::TABLE_NAME_REF]);
    let Some(t) = table.clone() else {
        let what = "CLUSTER without a table".into();
        return cx.action(ActionKind::NonTransactional { what }, None, node);
    };
    let mut a = cx.action(ActionKind::TableRewrite { what: "CLUSTER" }, table, node);
    a.locks.push(Cx::lock(&t, Ael));
    a.rewrite = Tri::Yes;
    a.scan = Tri::Yes;
    a
}

fn alter_type(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let version = cx.schema.version;
    if let Some(v) = child(node, ADD_VALUE) {
        let value = find(&v, &[LITERAL])
            .map(|l| l.text().to_string())
            .unwrap_or_default();
        let mut a = cx.action(ActionKind::EnumAddValue { value }, None, node);
        // Before 12, ADD VALUE refuses to run inside a transaction block.
        a.no_transaction = version.is_some_and(|v| v.below(12));
        a
    } else if child(node, RENAME_VALUE).is_some() {
        cx.action(ActionKind::EnumRenameValue, None, node)
    } else {
        cx.action(ActionKind::Other, None, node)
    }
}

/// CREATE TRIGGER takes SHARE ROW EXCLUSIVE on its table, DROP TRIGGER
/// ACCESS EXCLUSIVE.
fn trigger(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let table = child(node, ON_RELATION).and_then(|o| name_in(&o, &[RELATION_NAME_REF, PATH_REF]));
    let (kind, lock) = if node.kind() == CREATE_TRIGGER {
        let name = name_in(node, &[TRIGGER]).unwrap_or_default();
        (ActionKind::CreateTrigger { name }, Lock::ShareRowExclusive)
    } else {
        let name = name_in(node, &[TRIGGER_REF]).unwrap_or_default();
        let object = ObjectKind::Trigger;
        (ActionKind::DropObject { object, name }, Ael)
    };
    let mut a = cx.action(kind, table.clone(), node);
    a.locks.extend(table.iter().map(|t| Cx::lock(t, lock)));
    a
}

fn create_table(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let table = name_in(node, &[TABLE_NAME, PATH]).unwrap_or_default();
    let args = child(node, TABLE_ARG_LIST);
    let columns = args
        .iter()
        .flat_map(|a| a.children())
        .filter(|c| c.kind() == COLUMN)
        .map(|c| column_def(&c, cx.lines))
        .collect::<Vec<_>>();
    let mut references: Vec<String> = columns
        .iter()
        .filter_map(|c| c.references.clone())
        .collect();
    for fk in args
        .iter()
        .flat_map(|a| a.children())
        .filter(|c| c.kind() == FOREIGN_KEY_CONSTRAINT)
    {
        references.extend(child(&fk, TABLE_NAME_REF).map(|n| qualified(&n)));
    }
    let parent = child(node, PARTITION_OF).and_then(|p| name_in(&p, &[TABLE_NAME_REF]));
    let if_not_exists = child(node, IF_NOT_EXISTS).is_some();
    let mut a = cx.action(
        ActionKind::CreateTable {
            columns,
            references: references.clone(),
            if_not_exists,
            partitioned: child(node, PARTITION_BY).is_some(),
        },
        Some(table.clone()),
        node,
    );
    a.no_op = if_not_exists && cx.schema.created_table(&table);
    a.new_table = !a.no_op;
    a.locks.push(Cx::lock(&table, Ael));
    // Its foreign keys add triggers on the referenced tables.
    for r in &references {
        a.locks.push(Cx::lock(r, Lock::ShareRowExclusive));
    }
    if let Some(p) = parent {
        a.locks.push(Cx::lock(&p, Ael));
    }
    a
}

fn create_index(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let table = name_in(node, &[TABLE_RELATION_NAME]);
    let concurrently = has_token(node, CONCURRENTLY_KW);
    let name = child(node, INDEX).map(|n| qualified(&n));
    let if_not_exists = child(node, IF_NOT_EXISTS).is_some();
    let exists = name
        .as_deref()
        .is_some_and(|n| cx.schema.index_table(n).is_some());
    let only = find(node, &[TABLE_RELATION_NAME]).is_some_and(|t| has_desc(&t, ONLY_KW));
    let mut a = cx.action(
        ActionKind::CreateIndex {
            name,
            concurrently,
            unique: has_token(node, UNIQUE_KW),
            if_not_exists,
            shape: index_shape(node),
            only,
            partitioned: table
                .as_deref()
                .is_some_and(|t| cx.schema.is_partitioned(t)),
        },
        table.clone(),
        node,
    );
    a.no_op = if_not_exists && exists;
    // SHARE blocks writes for the whole build; CONCURRENTLY builds under
    // SHARE UPDATE EXCLUSIVE and cannot run in a transaction block.
    let lock = if concurrently { Sue } else { Lock::Share };
    a.locks.extend(table.iter().map(|t| Cx::lock(t, lock)));
    // `ON ONLY` a partitioned table builds nothing: the parent has no rows.
    // (Written for a plain table, ONLY changes nothing; nobody does.)
    a.scan = if a.no_op || only { Tri::No } else { Tri::Yes };
    a.no_transaction = concurrently;
    a
}

/// The text of `CREATE INDEX … ON table <shape>` after the table.
fn index_shape(node: &SyntaxNode) -> Option<String> {
    let table = find(node, &[SyntaxKind::TABLE_RELATION_NAME])?;
    let from = usize::from(table.text_range().end() - node.text_range().start());
    let text = node.text().to_string();
    let shape = text.get(from..)?.trim().trim_end_matches(';').trim_end();
    (!shape.is_empty()).then(|| shape.to_string())
}

fn drop_index(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    use SyntaxKind::*;
    let concurrently = has_token(node, CONCURRENTLY_KW);
    names(node, INDEX_REF)
        .into_iter()
        .map(|index| {
            let table = cx.schema.index_table(&index).map(str::to_string);
            let kind = ActionKind::DropIndex {
                name: index.clone(),
                concurrently,
            };
            let mut a = cx.action(kind, table.clone(), node);
            let lock = if concurrently { Sue } else { Ael };
            a.locks
                .push(Cx::lock(table.as_deref().unwrap_or(&index), lock));
            a.no_transaction = concurrently;
            a
        })
        .collect()
}

fn reindex(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let concurrently = has_desc(node, CONCURRENTLY_KW);
    let target = node.children().find(|c| {
        matches!(
            c.kind(),
            REINDEX_TARGET_INDEX
                | REINDEX_TARGET_TABLE
                | REINDEX_TARGET_SCHEMA
                | REINDEX_TARGET_DATABASE
                | REINDEX_TARGET_SYSTEM
        )
    });
    let (table, index) = match target.as_ref().map(|t| t.kind()) {
        Some(REINDEX_TARGET_TABLE) => (target.as_ref().and_then(table_name), None),
        Some(REINDEX_TARGET_INDEX) => {
            let index = target.as_ref().and_then(|t| name_in(t, &[INDEX_REF]));
            let table = index
                .as_deref()
                .and_then(|i| cx.schema.index_table(i))
                .map(str::to_string);
            (table, index)
        }
        _ => (None, None),
    };
    let mut a = cx.action(ActionKind::Reindex { concurrently }, table.clone(), node);
    // SHARE on the table blocks writes; the index itself is locked ACCESS
    // EXCLUSIVE, so reads that would use it wait too.
    let lock = if concurrently { Sue } else { Lock::Share };
    a.locks.extend(table.iter().map(|t| Cx::lock(t, lock)));
    if let Some(i) = &index {
        a.locks
            .push(Cx::lock(i, if concurrently { Sue } else { Ael }));
    }
    a.scan = Tri::Yes;
    a.no_transaction = concurrently || (table.is_none() && index.is_none());
    a
}

fn vacuum(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    use SyntaxKind::*;
    let full = has_token(node, FULL_KW)
        || child(node, VACUUM_OPTION_LIST).is_some_and(|l| has_desc(&l, FULL_KW));
    let tables: Vec<String> = node
        .descendants()
        .filter(|n| n.kind() == TABLE_RELATION_NAME)
        .map(|n| qualified(&n))
        .collect();
    let targets: Vec<Option<String>> = if tables.is_empty() {
        vec![None]
    } else {
        tables.into_iter().map(Some).collect()
    };
    targets
        .into_iter()
        .map(|table| {
            let kind = if full {
                ActionKind::TableRewrite {
                    what: "VACUUM FULL",
                }
            } else {
                ActionKind::NonTransactional {
                    what: "VACUUM".into(),
                }
            };
            let mut a = cx.action(kind, table.clone(), node);
            let lock = if full { Ael } else { Sue };
            a.locks.extend(table.iter().map(|t| Cx::lock(t, lock)));
            a.rewrite = Tri::from_bool(full);
            a.scan = Tri::Yes;
            a.no_transaction = true;
            a
        })
        .collect()
}

/// The names of the direct children of `kind`: for matching, and as written.
fn relations(node: &SyntaxNode, kind: SyntaxKind) -> Vec<(String, crate::db::Relation)> {
    node.children()
        .filter(|c| c.kind() == kind)
        .map(|c| (qualified(&c), written_relation(&c)))
        .filter(|(t, _)| !t.is_empty())
        .collect()
}

/// The rows an UPDATE or DELETE touches, from its own clauses. A WITH
/// clause or `WHERE CURRENT OF` cannot be re-evaluated on its own (a CTE may
/// change data itself): then `None`, and the whole table is the backup.
fn row_filter(node: &SyntaxNode) -> Option<RowFilter> {
    use SyntaxKind::*;
    if child(node, WITH_CLAUSE).is_some() {
        return None;
    }
    let predicate = child(node, WHERE_CLAUSE).and_then(|w| {
        let t = text(&w);
        let p = t.get(5..)?.trim();
        t[..5]
            .eq_ignore_ascii_case("where")
            .then(|| p.to_string())
            .filter(|p| !p.is_empty())
    })?;
    let from = child(node, FROM_CLAUSE)
        .or_else(|| child(node, USING_CLAUSE))
        .and_then(|c| {
            let t = text(&c);
            let (keyword, rest) = t.split_once(char::is_whitespace)?;
            (keyword.eq_ignore_ascii_case("from") || keyword.eq_ignore_ascii_case("using"))
                .then(|| rest.trim().to_string())
        });
    let alias = child(node, OPTIONAL_AS_ALIAS).and_then(|a| {
        significant_tokens(&a)
            .find(|t| t.kind() != AS_KW)
            .map(|t| ident(t.text()))
    });
    Some(RowFilter {
        alias,
        from,
        predicate,
    })
}

fn dml(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    // Its own target, not the first table of its WITH clause's queries.
    let own = || node.children().filter(|c| c.kind() != WITH_CLAUSE);
    let table = own().find_map(|c| table_name(&c));
    let has_where = child(node, WHERE_CLAUSE).is_some();
    let columns: Vec<String> = child(node, SET_CLAUSE)
        .map(|s| {
            s.descendants()
                .filter(|n| n.kind() == COLUMN_TARGET)
                .filter_map(|n| name_in(&n, &[COLUMN_NAME_REF]))
                .collect()
        })
        .unwrap_or_default();
    let kind = match node.kind() {
        UPDATE => ActionKind::Update {
            has_where,
            columns: columns.clone(),
        },
        DELETE => ActionKind::Delete { has_where },
        INSERT => ActionKind::Insert,
        _ => ActionKind::Other,
    };
    let mut a = cx.action(kind, table.clone(), node);
    a.locks
        .extend(table.iter().map(|t| Cx::lock(t, Lock::RowExclusive)));
    let t = table.unwrap_or_default();
    match node.kind() {
        UPDATE | DELETE => {
            a.relation = own().find_map(|c| table_relation(&c));
            a.rows = row_filter(node);
            a.scan = if has_where {
                Tri::Depends("an index on the WHERE clause's columns".into())
            } else {
                Tri::Yes
            };
            // Overwriting a column this migration added loses nothing.
            a.destroys = !cx.schema.is_new_table_here(&t)
                && (node.kind() == DELETE
                    || columns.iter().any(|c| !cx.schema.is_new_column_here(&t, c)));
        }
        _ => {}
    }
    a
}
