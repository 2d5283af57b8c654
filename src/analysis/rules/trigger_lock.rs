//! `trigger-lock`: CREATE TRIGGER and ENABLE/DISABLE TRIGGER block writes
//! while they wait for and hold their lock.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "trigger-lock",
    severity: Severity::Warning,
    summary: "CREATE / ENABLE / DISABLE TRIGGER on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let what = match &a.kind {
            ActionKind::CreateTrigger { name } => format!("CREATE TRIGGER {name}"),
            ActionKind::EnableDisableTrigger => "ENABLE/DISABLE TRIGGER".to_string(),
            _ => continue,
        };
        if !a.on_existing_table() {
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "{what} takes a SHARE ROW EXCLUSIVE lock on {}: brief once granted, but it waits \
                 behind long transactions and every write queues behind it",
                a.target()
            ),
            "keep lock_timeout short (keel sets it and retries) and run it when traffic is low",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_trigger_on_existing_table() {
        let f = only(
            "trigger-lock",
            up(
                "CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();",
            ),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE audit (id bigint);\nCREATE TRIGGER audit_touch BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION touch();",
        ));
    }
}
