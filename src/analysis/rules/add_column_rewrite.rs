//! `add-column-rewrite`: ADD COLUMN whose value differs per row rewrites
//! the table (volatile default, serial, identity, GENERATED … STORED).

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, DefaultValue, Generated, Tri};

pub(crate) const RULE: Rule = Rule {
    id: "add-column-rewrite",
    severity: Severity::Error,
    summary: "ADD COLUMN that rewrites an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::AddColumn(def) = &a.kind else {
            continue;
        };
        if !a.on_existing_table() || a.rewrite == Tri::No {
            continue;
        }
        let why = match (&def.generated, &def.default) {
            (Some(Generated::Identity), _) => "an identity column".to_string(),
            (Some(Generated::Stored), _) => "a GENERATED … STORED column".to_string(),
            _ if def.ty.as_ref().is_some_and(|t| t.is_serial()) => "a serial column".to_string(),
            (_, Some(DefaultValue::Volatile(f) | DefaultValue::Unknown(f))) => {
                format!("a default of {f}(), evaluated per row,")
            }
            _ => "a non-null default before PostgreSQL 11".to_string(),
        };
        let mut f = cx.finding(
            &RULE,
            op,
            a,
            format!(
                "adding {} with {why} writes a value into every existing row: the table is \
                 rewritten under an ACCESS EXCLUSIVE lock and reads and writes wait",
                a.target()
            ),
            "add the column nullable without the default, `ALTER COLUMN … SET DEFAULT` for new \
             rows, then fill existing rows with a batched [backfill]",
        );
        if let Tri::Depends(on) = &a.rewrite {
            f.severity = Severity::Warning;
            f.message = format!("{} (whether it does depends on {on})", f.message);
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_volatile_default() {
        let f = only(
            "add-column-rewrite",
            up("ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn flags_serial_identity_and_stored_generated() {
        let f = only(
            "add-column-rewrite",
            up(
                "ALTER TABLE users ADD COLUMN n bigserial, ADD COLUMN m bigint GENERATED ALWAYS AS IDENTITY, ADD COLUMN g int GENERATED ALWAYS AS (id * 2) STORED;",
            ),
        );
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn constant_default_rewrites_only_before_11() {
        let sql = "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;";
        assert_clean(&lint(sql, None, true, Some("11")));
        assert_eq!(
            only("add-column-rewrite", lint(sql, None, true, Some("10"))).len(),
            1
        );
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "ALTER TABLE users ADD COLUMN token uuid;\nALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();",
        ));
        assert_clean(&up(
            "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();",
        ));
    }
}
