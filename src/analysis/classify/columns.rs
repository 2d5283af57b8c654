//! Column definitions (CREATE TABLE, ADD COLUMN) and their defaults.

use super::syntax::{Lines, child, find, has_desc, qualified, start};
use crate::analysis::operation::{ColumnDef, DefaultValue, Generated};
use crate::analysis::sqltype::SqlType;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SyntaxKind, SyntaxNode};

/// Functions that return a new value on every call: as a column default
/// each existing row gets its own value, so ADD COLUMN rewrites the table.
const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "gen_random_bytes",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuid_generate_v7",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
    "pg_current_xact_id",
];

/// Stable or immutable built-ins seen in defaults: evaluated once when the
/// column is added (PostgreSQL 11+ stores the value in the catalog).
const STABLE: &[&str] = &[
    "now",
    "statement_timestamp",
    "transaction_timestamp",
    "current_setting",
    "lower",
    "upper",
    "coalesce",
    "concat",
    "to_char",
    "to_timestamp",
    "to_date",
    "make_interval",
    "make_date",
    "date_trunc",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array_fill",
    "timezone",
    "length",
    "replace",
    "trim",
    "btrim",
    "nullif",
    "greatest",
    "least",
];

/// Reads a `COLUMN` (CREATE TABLE) or `ADD_COLUMN` node.
pub(crate) fn column_def(node: &SyntaxNode, lines: &Lines) -> ColumnDef {
    use SyntaxKind::*;
    let (line, column) = lines.pos(start(node));
    let mut def = ColumnDef {
        line,
        column,
        name: child(node, COLUMN_NAME)
            .map(|n| qualified(&n))
            .unwrap_or_default(),
        ty_sql: node
            .children()
            .find_map(ast::Type::cast)
            .map(|t| t.syntax().text().to_string().trim().to_string()),
        ..ColumnDef::default()
    };
    def.ty = def.ty_sql.as_deref().map(SqlType::parse);
    for c in node.children() {
        match c.kind() {
            NOT_NULL_CONSTRAINT => def.not_null = true,
            PRIMARY_KEY_CONSTRAINT => {
                def.primary_key = true;
                def.not_null = true;
            }
            UNIQUE_CONSTRAINT => def.unique = true,
            CHECK_CONSTRAINT => def.check = true,
            REFERENCES_CONSTRAINT => {
                def.references = find(&c, &[TABLE_NAME_REF, PATH_REF]).map(|n| qualified(&n))
            }
            DEFAULT_CONSTRAINT => {
                def.default = Some(default_value(&c));
                def.default_sql = c
                    .children()
                    .next()
                    .map(|e| e.text().to_string().trim().to_string());
            }
            GENERATED_CONSTRAINT => {
                def.generated = Some(if has_desc(&c, GENERATED_IDENTITY) {
                    Generated::Identity
                } else if has_desc(&c, VIRTUAL_KW) {
                    Generated::Virtual
                } else {
                    Generated::Stored
                })
            }
            _ => {}
        }
    }
    def
}

/// Classifies the expression of a DEFAULT clause.
pub(crate) fn default_value(default: &SyntaxNode) -> DefaultValue {
    let Some(expr) = default.children().next() else {
        return DefaultValue::Constant;
    };
    if expr.kind() == SyntaxKind::LITERAL && has_desc(&expr, SyntaxKind::NULL_KW) {
        return DefaultValue::Null;
    }
    let calls: Vec<String> = expr
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::CALL_EXPR)
        .filter_map(|call| call.children().next())
        .map(|name| {
            let q = qualified(&name);
            q.rsplit('.').next().unwrap_or(&q).to_string()
        })
        .collect();
    if let Some(f) = calls.iter().find(|f| VOLATILE.contains(&f.as_str())) {
        return DefaultValue::Volatile(f.clone());
    }
    match calls.into_iter().find(|f| !STABLE.contains(&f.as_str())) {
        Some(f) => DefaultValue::Unknown(f),
        None => DefaultValue::Constant,
    }
}
