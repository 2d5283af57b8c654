//! `create-index-blocking`: CREATE INDEX without CONCURRENTLY blocks writes
//! for the whole build; CONCURRENTLY itself is unsafe on 14.0–14.3.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;
use crate::analysis::version::PgVersion;

pub(crate) const RULE: Rule = Rule {
    id: "create-index-blocking",
    severity: Severity::Error,
    summary: "CREATE INDEX without CONCURRENTLY on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::CreateIndex {
            concurrently,
            unique,
            name,
            only,
            partitioned,
            shape,
            ..
        } = &a.kind
        else {
            continue;
        };
        // A down that builds again an index its up dropped restores it.
        let restores = cx.is_down()
            && name
                .as_ref()
                .is_some_and(|n| cx.created.dropped_indexes.contains(n));
        if !a.on_existing_table() || restores || *only {
            continue;
        }
        let table = a.target();
        if *partitioned {
            out.push(partitioned_finding(
                cx,
                (op, a),
                *concurrently,
                (name, shape),
            ));
        } else if !concurrently {
            let unique = if *unique { "UNIQUE " } else { "" };
            let name = name.clone().unwrap_or_else(|| "…".into());
            out.push(cx.finding(
                &RULE,
                op,
                a,
                format!(
                    "CREATE INDEX on {table} takes a SHARE lock and scans the whole table: every \
                     INSERT, UPDATE and DELETE waits until the index is built"
                ),
                format!(
                    "`{built}` in its own migration with `transaction = false` in migration.toml; \
                     keel drops the INVALID index a failed build leaves",
                    built = crate::analysis::sql_name::concurrently(&op.sql).unwrap_or_else(
                        || format!(
                            "CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {n} ON {t} …",
                            t = crate::analysis::sql_name::relation(&table),
                            n = crate::analysis::sql_name::ident(&name)
                        )
                    ),
                ),
            ));
        } else if cx
            .version
            .is_some_and(|v| v >= PgVersion::new(14, 0) && v < PgVersion::new(14, 4))
        {
            let mut f = cx.finding(
                &RULE,
                op,
                a,
                format!(
                    "CREATE INDEX CONCURRENTLY on PostgreSQL 14.0–14.3 can silently build a corrupt \
                     index on {table} (fixed in 14.4)"
                ),
                "upgrade the server to 14.4 or later first, or REINDEX CONCURRENTLY after upgrading",
            );
            f.severity = Severity::Warning;
            out.push(f);
        }
    }
}

/// An index on a partitioned table: PostgreSQL builds it on every
/// partition under the same lock, and refuses CONCURRENTLY. The way that
/// does not block writes: the parent's index `ON ONLY` (instant, invalid),
/// each partition's built concurrently, attached one by one.
fn partitioned_finding(
    cx: &FileCx,
    (op, a): (
        &crate::analysis::operation::Operation,
        &crate::analysis::operation::Action,
    ),
    concurrently: bool,
    (name, shape): (&Option<String>, &Option<String>),
) -> Finding {
    let table = a.target();
    let message = match concurrently {
        true => format!(
            "{table} is partitioned: PostgreSQL refuses CREATE INDEX CONCURRENTLY on it \
             (\"cannot create index on partitioned table concurrently\")"
        ),
        false => format!(
            "CREATE INDEX on the partitioned table {table} builds the index on every partition \
             under a SHARE lock: every INSERT, UPDATE and DELETE waits until all are built"
        ),
    };
    let name = name.as_deref().unwrap_or("<index>");
    let shape = shape.as_deref().unwrap_or("(…)");
    let parent = crate::analysis::sql_name::on_only(&op.sql)
        .unwrap_or_else(|| format!("CREATE INDEX {name} ON ONLY {table} {shape}"));
    let fix = format!(
        "`{parent}` (instant: the parent's index, invalid for now); then for each partition, \
         outside a transaction, `CREATE INDEX CONCURRENTLY IF NOT EXISTS {name}_<partition> ON \
         <partition> {shape}` and `ALTER INDEX {index} ATTACH PARTITION {name}_<partition>`: \
         the parent's index becomes valid when every partition's is attached",
        index = crate::analysis::sql_name::ident(name),
    );
    cx.finding(&RULE, op, a, message, fix)
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_blocking_index_build() {
        let f = only(
            "create-index-blocking",
            up("CREATE INDEX users_email_idx ON users (email);"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn concurrently_on_14_3_is_a_warning() {
        let sql = "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);";
        let f = only(
            "create-index-blocking",
            lint(sql, None, false, Some("14.3")),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
        assert_clean(&lint(sql, None, false, Some("14.4")));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);",
            None,
            false,
            Some("15"),
        ));
        assert_clean(&up(
            "CREATE TABLE t (a bigint);\nCREATE INDEX t_a_idx ON t (a);",
        ));
    }
}
