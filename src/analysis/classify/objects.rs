//! LOCK TABLE, and CREATE/DROP of objects other than tables and indexes.

use super::Cx;
use super::syntax::{name_in, names, qualified};
use crate::analysis::operation::{Action, ActionKind, Lock, ObjectKind};
use squawk_syntax::{SyntaxKind, SyntaxNode};

use Lock::{AccessExclusive as Ael, ShareUpdateExclusive as Sue};

pub(crate) fn lock_table(cx: &Cx, node: &SyntaxNode) -> Vec<Action> {
    let mode = node.text().to_string().to_uppercase();
    let mode = mode
        .split_once(" IN ")
        .and_then(|(_, m)| m.split_once(" MODE"))
        .map(|(m, _)| m.split_whitespace().collect::<Vec<_>>().join(" "));
    let lock = match mode.as_deref() {
        Some("ACCESS SHARE") => Lock::AccessShare,
        Some("ROW SHARE") => Lock::RowShare,
        Some("ROW EXCLUSIVE") => Lock::RowExclusive,
        Some("SHARE UPDATE EXCLUSIVE") => Sue,
        Some("SHARE") => Lock::Share,
        Some("SHARE ROW EXCLUSIVE") => Lock::ShareRowExclusive,
        Some("EXCLUSIVE") => Lock::Exclusive,
        _ => Ael,
    };
    node.descendants()
        .filter(|n| n.kind() == SyntaxKind::TABLE_RELATION_NAME)
        .map(|n| {
            let t = qualified(&n);
            let mut a = cx.action(ActionKind::Other, Some(t.clone()), node);
            a.locks.push(Cx::lock(&t, lock));
            a
        })
        .collect()
}

/// CREATE/DROP of functions, views, types, sequences and the rest.
pub(crate) fn object(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    let (create, object) = match node.kind() {
        CREATE_FUNCTION | CREATE_PROCEDURE => (true, ObjectKind::Function),
        DROP_FUNCTION | DROP_PROCEDURE | DROP_ROUTINE | DROP_AGGREGATE => {
            (false, ObjectKind::Function)
        }
        CREATE_VIEW => (true, ObjectKind::View),
        DROP_VIEW | DROP_MATERIALIZED_VIEW => (false, ObjectKind::View),
        CREATE_TYPE | CREATE_DOMAIN => (true, ObjectKind::Type),
        DROP_TYPE | DROP_DOMAIN => (false, ObjectKind::Type),
        CREATE_SEQUENCE => (true, ObjectKind::Sequence),
        DROP_SEQUENCE => (false, ObjectKind::Sequence),
        CREATE_SCHEMA => (true, ObjectKind::Schema),
        DROP_SCHEMA => (false, ObjectKind::Schema),
        DROP_POLICY => (false, ObjectKind::Policy),
        CREATE_POLICY => (true, ObjectKind::Policy),
        DROP_RULE => (false, ObjectKind::Rule),
        CREATE_RULE => (true, ObjectKind::Rule),
        ALTER_POLICY | ALTER_RULE => return on_table(cx, node, ActionKind::Other),
        CREATE_STATISTICS | DROP_STATISTICS => return statistics(cx, node),
        DROP_EXTENSION => (false, ObjectKind::Other),
        CREATE_EXTENSION => (true, ObjectKind::Other),
        _ => return cx.action(ActionKind::Other, None, node),
    };
    let name = node
        .children()
        .find(|c| !matches!(c.kind(), IF_EXISTS | IF_NOT_EXISTS | OR_REPLACE))
        .map(|c| {
            let q = qualified(&c);
            q.split('(').next().unwrap_or(&q).to_string()
        })
        .unwrap_or_default();
    let kind = if create {
        ActionKind::CreateObject { object, name }
    } else {
        ActionKind::DropObject { object, name }
    };
    if matches!(object, ObjectKind::Policy | ObjectKind::Rule) {
        return on_table(cx, node, kind);
    }
    let mut a = cx.action(kind, None, node);
    if let ActionKind::DropObject {
        object: ObjectKind::View | ObjectKind::Sequence,
        name,
    } = &a.kind
    {
        let name = name.clone();
        a.locks.push(Cx::lock(&name, Ael));
    }
    a
}

/// A policy's or a rule's statement: it belongs to the table (or view) in
/// its ON clause, which it locks ACCESS EXCLUSIVE (CREATE, ALTER and DROP
/// alike).
fn on_table(cx: &Cx, node: &SyntaxNode, kind: ActionKind) -> Action {
    use SyntaxKind::*;
    let table = node
        .children()
        .find(|c| matches!(c.kind(), ON_TABLE | ON_RELATION | RULE_ON))
        .and_then(|on| {
            on.children()
                .find(|c| matches!(c.kind(), TABLE_NAME_REF | RELATION_NAME_REF))
        })
        .map(|n| qualified(&n))
        .filter(|t| !t.is_empty());
    let mut a = cx.action(kind, table.clone(), node);
    a.locks.extend(table.iter().map(|t| Cx::lock(t, Ael)));
    a
}

/// Extended statistics lock their table SHARE UPDATE EXCLUSIVE, to CREATE
/// (the table of its FROM) and to DROP; ALTER STATISTICS locks none (the
/// lock probe's findings). A DROP does not name the table: its lock goes on
/// the statistics' name, as a DROP INDEX's on an index the model does not
/// know, and with no table it reaches the whole schema.
fn statistics(cx: &Cx, node: &SyntaxNode) -> Action {
    use SyntaxKind::*;
    if node.kind() == DROP_STATISTICS {
        let mut a = cx.action(ActionKind::Other, None, node);
        a.locks
            .extend(names(node, STATISTICS_REF).iter().map(|s| Cx::lock(s, Sue)));
        return a;
    }
    let table = node
        .children()
        .find(|c| c.kind() == FROM_TABLE)
        .and_then(|from| name_in(&from, &[TABLE_NAME_REF]));
    let mut a = cx.action(ActionKind::Other, table.clone(), node);
    a.locks.extend(table.iter().map(|t| Cx::lock(t, Sue)));
    a
}
