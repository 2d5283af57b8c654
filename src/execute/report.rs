//! The "Execution record" section `execute` appends to the runbook: who ran
//! it where, when, with what outcome, every step with its timing, and the
//! signed record's path. Every value is escaped for Markdown.

use crate::record::{Outcome, Record, StepOutcome};
use crate::runbook::markdown::{code, inline};

pub(crate) fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Applied => "applied",
        Outcome::RolledBack => "rolled back",
        Outcome::Failed => "failed",
        Outcome::Refused => "refused",
        Outcome::Started => "started",
        Outcome::Interrupted => "interrupted",
    }
}

pub(crate) fn step_word(o: StepOutcome) -> &'static str {
    match o {
        StepOutcome::Ok => "ok",
        StepOutcome::Failed => "FAILED",
        StepOutcome::Skipped => "skipped",
        StepOutcome::Confirmed => "confirmed",
    }
}

/// `12 ms`, `1.2 s`, `3 min 4 s`.
pub(crate) fn ms(n: u64) -> String {
    if n < 1000 {
        format!("{n} ms")
    } else if n < 60_000 {
        format!("{:.1} s", n as f64 / 1000.0)
    } else {
        format!("{} min {} s", n / 60_000, (n % 60_000) / 1000)
    }
}

/// The Markdown section for one run.
pub(crate) fn section(rec: &Record, record_path: &str, signed: bool) -> String {
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let took = (rec.finished_at - rec.started_at).num_milliseconds().max(0) as u64;
    let mut s = format!(
        "### {}: {}, {}\n\n",
        inline(&rec.environment),
        outcome_word(rec.outcome),
        stamp(rec.started_at)
    );
    if let Some(summary) = super::aftermath::summary(rec) {
        s.push_str(&summary);
        s.push('\n');
    }
    s.push_str(&format!("- Environment: {}\n", code(&rec.environment)));
    s.push_str(&format!("- Database: {}\n", code(&rec.database)));
    s.push_str(&format!("- Operator: {}\n", code(&rec.operator)));
    s.push_str(&format!("- Started: {}\n", stamp(rec.started_at)));
    s.push_str(&format!(
        "- Finished: {} ({})\n",
        stamp(rec.finished_at),
        ms(took)
    ));
    s.push_str(&format!("- Outcome: **{}**\n", outcome_word(rec.outcome)));
    s.push_str(&format!(
        "- Migration checksum: {}\n",
        code(&rec.migration.checksum)
    ));
    if let Some(snap) = &rec.snapshot {
        s.push_str(&format!(
            "- Snapshot: {} (SHA-256 {})\n",
            code(&snap.path),
            code(&snap.sha256)
        ));
    }
    for b in &rec.backups {
        s.push_str(&format!(
            "- Backup: {} (SHA-256 {})\n",
            code(&b.path),
            code(&b.sha256)
        ));
    }
    let signature = match (&rec.signer, signed) {
        (Some(who), true) => format!(", signed by {}", code(who)),
        _ => ", unsigned".to_string(),
    };
    s.push_str(&format!("- Record: {}{signature}\n\n", code(record_path)));
    s.push_str("| step | outcome | time | detail |\n|---|---|---|---|\n");
    for step in &rec.steps {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            inline(&step.name),
            if super::aftermath::undone(rec, step) {
                super::aftermath::undone_word(rec)
            } else {
                step_word(step.outcome)
            },
            ms(step.duration_ms),
            inline(step.detail.as_deref().unwrap_or(""))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_one_clean_table() {
        let m = crate::migration::Migration {
            version: "20260101000000".parse().unwrap(),
            name: "x".into(),
            dir: "migrations/20260101000000_x".into(),
            up: String::new(),
            down: None,
            meta: Default::default(),
            checksum: "0".repeat(64),
        };
        let mut rec = Record::start("prod|uction", &m, "sqlite://keel.db");
        rec.step(
            "smoke",
            StepOutcome::Failed,
            chrono::Utc::now(),
            Some("a | b\n# c".into()),
        );
        let text = section(&rec, "records/x/prod-1.json", false);
        let table: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 3, "{text}");
        assert!(table[2].contains("a \\| b \\# c"), "{text}");
        assert!(text.starts_with("### prod\\|uction: failed, "), "{text}");
    }
}
