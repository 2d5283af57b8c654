//! What a run that did not go through left behind, said at the top of its
//! runbook section: that it was rolled back (or failed, or was
//! interrupted), why, when and by what, and which checklist items still
//! hold. A rollback undoes the migration and spends its backup, so the
//! run does not tick `backup-verified` and the section strikes it and the
//! undone steps through with a note. Everything here is read from the
//! record alone, so a section written later from the record (an
//! interrupted run's, by the next `execute`) says the same.

use crate::record::{Outcome, Record, Step, StepOutcome};
use crate::runbook::check_id::CheckId;
use crate::runbook::markdown::{code, inline};

/// Where the migration stands once the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Applied,
    /// Never committed, or keel's rollback reverted it (and checked that).
    NotApplied,
    /// The rollback ran but did not check out.
    Unsure,
}

/// Where the migration stands after the run `rec` records.
pub(crate) fn end(rec: &Record) -> End {
    match rec.outcome {
        Outcome::Applied => return End::Applied,
        Outcome::RolledBack => return End::NotApplied,
        _ => {}
    }
    let last = |name: &str| {
        rec.steps
            .iter()
            .rev()
            .find(|s| s.name == name)
            .map(|s| s.outcome)
    };
    match (last("rollback"), last("rollback-verified"), last("migrate")) {
        (Some(StepOutcome::Ok), Some(StepOutcome::Ok), _) => End::NotApplied,
        (Some(StepOutcome::Ok), _, _) => End::Unsure,
        (Some(_), _, _) => End::Applied,
        // A run finished after an interruption: its migrate step is in
        // the intent, and the `resumed` step says it had committed.
        (None, _, Some(StepOutcome::Ok)) => End::Applied,
        (None, _, _) if last("resumed") == Some(StepOutcome::Ok) => End::Applied,
        (None, _, _) => End::NotApplied,
    }
}

/// The steps whose effect is gone when the migration did not stay applied.
const UNDONE_STEPS: &[&str] = &["backup-verified", "migrate", "backfill"];

/// How the steps table shows a step the run's end undid.
pub(crate) fn undone_word(rec: &Record) -> &'static str {
    if rec.outcome == Outcome::RolledBack {
        "ok, undone by the rollback"
    } else {
        "ok, no longer holds"
    }
}

/// Whether `step` of the run `rec` is undone by how the run ended.
pub(crate) fn undone(rec: &Record, step: &Step) -> bool {
    step.outcome == StepOutcome::Ok
        && end(rec) == End::NotApplied
        && UNDONE_STEPS.contains(&step.name.as_str())
}

/// The checklist items the run `rec` ticks, from those it had ticked
/// (`tick`): all of them, unless the migration did not stay applied, when
/// `backup-verified` no longer holds.
pub(crate) fn held(rec: &Record, tick: &[String]) -> Vec<String> {
    let spent = CheckId::BackupVerified.as_str();
    tick.iter()
        .filter(|id| end(rec) != End::NotApplied || id.as_str() != spent)
        .cloned()
        .collect()
}

/// The paragraphs at the top of the section of a run that did not go
/// through; `None` for an applied run, whose section is as it always was.
pub(crate) fn summary(rec: &Record) -> Option<String> {
    if rec.outcome == Outcome::Applied {
        return None;
    }
    let end = end(rec);
    let mut s = format!("{}\n\n", headline(rec, end));
    let ticked: Vec<String> = rec
        .runbook
        .as_ref()
        .map(|r| r.ticked.iter().map(|id| code(id)).collect())
        .unwrap_or_default();
    s.push_str("What still holds after this run:\n\n");
    if ticked.is_empty() {
        s.push_str("- Held: no checklist item was ticked by this run\n");
    } else {
        s.push_str(&format!(
            "- Held (done before the migration ran and still true, ticked): {}\n",
            ticked.join(", ")
        ));
    }
    for step in rec.steps.iter().filter(|st| undone(rec, st)) {
        s.push_str(&format!(
            "- {}: ~~{}~~ ({}): {}\n",
            if rec.outcome == Outcome::RolledBack {
                "Undone by the rollback"
            } else {
                "No longer holds"
            },
            code(&step.name),
            stamp(step),
            why_undone(rec, &step.name)
        ));
    }
    Some(s)
}

/// The first paragraph: what happened, in bold, then why, when and by what.
fn headline(rec: &Record, end: End) -> String {
    let id = code(&rec.migration.id);
    let find = |name: &str| rec.steps.iter().rev().find(|s| s.name == name);
    let signal = find("signal")
        .map(|s| format!(" {}.", sentence(s)))
        .unwrap_or_default();
    let rollback = |verb: &str| match (find("rollback"), find("rollback-verified")) {
        (Some(r), Some(v)) => format!(" {verb} at {}: {}; {}.", stamp(r), detail(r), detail(v)),
        (Some(r), None) => format!(" {verb} at {}: {}.", stamp(r), detail(r)),
        _ => String::new(),
    };
    let causes = causes(rec);
    match (rec.outcome, end) {
        (Outcome::RolledBack, _) => format!(
            "**Rolled back: this run did not go through, and {id} is not applied.** {causes}{}{signal}",
            rollback("keel rolled the migration back on its own")
        ),
        (_, End::NotApplied) if find("rollback").is_some() => format!(
            "**Failed, rolled back: {id} is not applied.** {causes}{}{signal}",
            rollback("keel rolled the migration back")
        ),
        (Outcome::Interrupted, _) => {
            format!("**Interrupted: {id} is not applied.** {causes}{signal}")
        }
        (_, End::NotApplied) => format!("**Failed: {id} did not apply.** {causes}{signal}"),
        (_, End::Unsure) => format!(
            "**Failed: the rollback of {id} ran but does not check out.** {causes}{}{signal}",
            rollback("keel rolled the migration back")
        ),
        (_, End::Applied) if find("rollback").is_some() => format!(
            "**Failed: the automatic rollback failed, and {id} is still applied.** {causes}{}{signal}",
            rollback("The rollback failed")
        ),
        (_, End::Applied) => {
            format!("**Failed: {id} is applied, but the run did not finish.** {causes}{signal}")
        }
    }
}

/// The failed steps before any rollback, as sentences.
fn causes(rec: &Record) -> String {
    let failed: Vec<String> = rec
        .steps
        .iter()
        .take_while(|s| s.name != "rollback")
        .filter(|s| s.outcome == StepOutcome::Failed)
        .map(sentence)
        .collect();
    if failed.is_empty() {
        String::new()
    } else {
        format!("{}.", failed.join("; "))
    }
}

/// `At 12:00:03 UTC the post-migration check `smoke` failed: …`.
fn sentence(s: &Step) -> String {
    let what = match s.name.as_str() {
        "signal" => return format!("The operator's signal came at {}: {}", stamp(s), detail(s)),
        "migrate" => "the migration itself".to_string(),
        "backfill" => "the backfill".to_string(),
        "interrupted" => {
            return format!(
                "At {} keel found the run interrupted: {}",
                stamp(s),
                detail(s)
            );
        }
        "connection" | "row-counts" | "smoke" | "health" => {
            format!("the post-migration check {}", code(&s.name))
        }
        other => format!("the step {}", code(other)),
    };
    format!("At {} {what} failed: {}", stamp(s), detail(s))
}

fn why_undone(rec: &Record, step: &str) -> String {
    let how = if rec.outcome == Outcome::RolledBack {
        "the rollback"
    } else {
        "the end of the run"
    };
    match step {
        "migrate" => format!(
            "{} was applied, and {how} reverted it; it is pending again",
            code(&rec.migration.id)
        ),
        "backfill" => format!("its rows went back with the migration through {how}"),
        "backup-verified" if rec.outcome == Outcome::RolledBack => {
            "the rollback put the backup's data back, so it covers no run now; not ticked by this run, the next run exports and verifies a new backup".into()
        }
        "backup-verified" => {
            "the migration did not apply, so the backup covers no change; not ticked by this run, the next run exports and verifies a new backup".into()
        }
        other => format!("{} no longer holds", code(other)),
    }
}

/// A step's detail on one line: an error's indented lines run on.
fn detail(s: &Step) -> String {
    let text = s.detail.as_deref().unwrap_or("");
    let words: Vec<&str> = text.split_whitespace().collect();
    inline(words.join(" ").trim_end_matches('.'))
}

fn stamp(s: &Step) -> String {
    s.started_at.format("%H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome, steps: &[(&str, StepOutcome)]) -> Record {
        let m = crate::migration::Migration {
            version: "20260101000000".parse().unwrap(),
            name: "x".into(),
            dir: "migrations/20260101000000_x".into(),
            up: String::new(),
            down: None,
            meta: Default::default(),
            checksum: "0".repeat(64),
        };
        let mut rec = Record::start("prod", &m, "sqlite://keel.db");
        for (name, o) in steps {
            rec.step(
                name,
                *o,
                chrono::Utc::now(),
                Some(format!("{name}\n  detail")),
            );
        }
        rec.outcome = outcome;
        rec
    }

    #[test]
    fn where_the_migration_stands_is_read_from_the_steps() {
        use StepOutcome::{Failed, Ok};
        let applied = run(Outcome::Applied, &[("migrate", Ok)]);
        assert_eq!(end(&applied), End::Applied);
        assert_eq!(summary(&applied), None);
        let rolled = &[("migrate", Ok), ("smoke", Failed), ("rollback", Ok)];
        assert_eq!(end(&run(Outcome::RolledBack, rolled)), End::NotApplied);
        let never = run(
            Outcome::Failed,
            &[("backup-verified", Ok), ("migrate", Failed)],
        );
        assert_eq!(end(&never), End::NotApplied);
        let stuck = &[("migrate", Ok), ("smoke", Failed), ("rollback", Failed)];
        assert_eq!(end(&run(Outcome::Failed, stuck)), End::Applied);
        let unsure = &[
            ("migrate", Ok),
            ("rollback", Ok),
            ("rollback-verified", Failed),
        ];
        assert_eq!(end(&run(Outcome::Failed, unsure)), End::Unsure);
        let backfill_left = &[("migrate", Ok), ("backfill", Failed)];
        assert_eq!(end(&run(Outcome::Failed, backfill_left)), End::Applied);
    }

    #[test]
    fn only_a_migration_that_did_not_stay_applied_spends_its_backup() {
        use StepOutcome::{Failed, Ok};
        let tick = vec!["backup-verified".to_string(), "rollback-tested".to_string()];
        let never = run(
            Outcome::Failed,
            &[("backup-verified", Ok), ("migrate", Failed)],
        );
        assert_eq!(held(&never, &tick), ["rollback-tested"]);
        let stuck = run(
            Outcome::Failed,
            &[
                ("backup-verified", Ok),
                ("migrate", Ok),
                ("rollback", Failed),
            ],
        );
        assert_eq!(held(&stuck, &tick), tick);
        let text = summary(&stuck).unwrap();
        assert!(
            text.starts_with("**Failed: the automatic rollback failed, and `20260101000000_x` is still applied.**"),
            "{text}"
        );
        assert!(!text.contains("~~"), "nothing was undone: {text}");
        let text = summary(&never).unwrap();
        assert!(
            text.contains("the migration itself failed: migrate detail"),
            "{text}"
        );
        assert!(
            text.contains("- No longer holds: ~~`backup-verified`~~"),
            "{text}"
        );
    }
}
