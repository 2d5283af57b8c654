//! `reversibility-mismatch`: a migration that destroys data but declares
//! `reversibility = "full"`.

use super::Rule;
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::Operation;
use crate::analysis::reversibility::backup_plan;
use crate::migration::Reversibility;
use std::path::Path;

pub(crate) const RULE: Rule = Rule {
    id: "reversibility-mismatch",
    severity: Severity::Error,
    summary: "destroys data but declares reversibility = \"full\"",
    check: None,
};

pub(crate) fn check(
    dir: &Path,
    up: &[Operation],
    declared: Option<Reversibility>,
) -> Option<Finding> {
    if declared != Some(Reversibility::Full) {
        return None;
    }
    let plan = backup_plan(up);
    let first = plan.first()?;
    let what: Vec<String> = plan
        .iter()
        .map(|b| match &b.columns {
            Some(cols) if !cols.is_empty() => format!("{} ({})", b.table, cols.join(", ")),
            _ => b.table.clone(),
        })
        .collect();
    Some(Finding {
        rule: RULE.id,
        severity: RULE.severity,
        file: dir.join("migration.toml").display().to_string(),
        line: 1,
        column: 1,
        statement: String::new(),
        message: format!(
            "migration.toml declares reversibility = \"full\", but up.sql destroys data \
             (line {}: {}; data in {}): down.sql can restore the schema, not the rows",
            first.line,
            first.reason,
            what.join(", ")
        ),
        suggestion: "declare `reversibility = \"partial\"` (keel backs the data up and restores \
                     it on rollback), or keep the data"
            .into(),
        allowed: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Schema, classify};

    #[test]
    fn flags_full_claim_on_destructive_up() {
        let ops = classify(
            "ALTER TABLE users DROP COLUMN bio;",
            &mut Schema::default(),
            true,
        )
        .ops;
        let f = check(
            Path::new("migrations/20260101090000_drop_bio"),
            &ops,
            Some(Reversibility::Full),
        );
        insta::assert_snapshot!(f.unwrap().render());
    }

    #[test]
    fn honest_claims_pass() {
        let ops = classify(
            "ALTER TABLE users DROP COLUMN bio;",
            &mut Schema::default(),
            true,
        )
        .ops;
        assert!(check(Path::new("m"), &ops, Some(Reversibility::Partial)).is_none());
        let ops = classify(
            "ALTER TABLE users ADD COLUMN bio text;",
            &mut Schema::default(),
            true,
        )
        .ops;
        assert!(check(Path::new("m"), &ops, Some(Reversibility::Full)).is_none());
    }
}
