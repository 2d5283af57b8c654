//! `syntax-error`: the file does not parse, or uses syntax newer than the
//! target PostgreSQL version.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{Action, ActionKind, ConstraintKind, Generated, Operation};

pub(crate) const RULE: Rule = Rule {
    id: "syntax-error",
    severity: Severity::Error,
    summary: "SQL that does not parse, or needs a newer PostgreSQL",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for p in cx.syntax {
        let statement = if p.statement.is_empty() {
            cx.ops
                .iter()
                .find(|o| o.line <= p.line && p.line <= o.end_line())
                .map(|o| o.sql.clone())
                .unwrap_or_default()
        } else {
            p.statement.clone()
        };
        out.push(Finding {
            rule: RULE.id,
            severity: RULE.severity,
            file: cx.file.to_string(),
            line: p.line,
            column: p.column,
            statement,
            message: format!("syntax error: {}", p.message),
            suggestion: "fix the SQL at this position; keel checks nothing else in a statement \
                         it cannot parse"
                .into(),
            allowed: None,
        });
    }
    let Some(version) = cx.version else { return };
    for op in cx.ops {
        for a in &op.actions {
            if let Some((feature, needs)) = newer_syntax(op, a)
                && version.below(needs)
            {
                out.push(cx.finding(
                    &RULE,
                    op,
                    a,
                    format!("{feature} needs PostgreSQL {needs}; the target is {version}"),
                    "rewrite it for the target version, or raise --pg-version if the server \
                     is newer",
                ));
            }
        }
    }
}

/// Syntax a statement uses and the major version that introduced it.
fn newer_syntax(op: &Operation, a: &Action) -> Option<(&'static str, u32)> {
    match &a.kind {
        ActionKind::Reindex { concurrently: true } => Some(("REINDEX CONCURRENTLY", 12)),
        ActionKind::DetachPartition {
            concurrently: true, ..
        } => Some(("DETACH PARTITION … CONCURRENTLY", 14)),
        ActionKind::AddColumn(def) if def.generated == Some(Generated::Virtual) => {
            Some(("a VIRTUAL generated column", 18))
        }
        ActionKind::AddConstraint {
            kind: ConstraintKind::NotNull,
            ..
        } => Some(("ADD CONSTRAINT … NOT NULL", 18)),
        _ if op.kind == "MERGE" => Some(("MERGE", 15)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn reports_position_of_parse_errors() {
        let f = only(
            "syntax-error",
            up("CREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUMN;\n"),
        );
        assert_eq!(f.len(), 1, "one finding per position");
        assert_eq!((f[0].line, f[0].column), (2, 25));
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn reports_syntax_newer_than_the_target() {
        let f = only(
            "syntax-error",
            lint("REINDEX INDEX CONCURRENTLY ix;", None, false, Some("11")),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn function_bodies_and_do_blocks_parse_clean() {
        // (The DO block's DROP TABLE is found and judged: drop-table.)
        assert!(
            only(
                "syntax-error",
                up(
                    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$\nBEGIN\n  NEW.updated_at := now(); -- ; DROP TABLE users;\n  RETURN NEW;\nEND;\n$body$;\nDO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$;",
                ),
            )
            .is_empty()
        );
    }
}
