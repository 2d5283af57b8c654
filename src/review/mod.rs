//! `keel review`: what a branch does to the database, for the pull request.
//! Each migration the branch adds or changes is read as its runbook reads
//! it (the same [`Runbook`] data: reversibility, locks, rewrites, expected
//! time per environment, findings with their fixes, backups), together with
//! whether its committed runbook is the one keel renders now. The summary
//! is Markdown for a pull request comment ([`github`] posts it, once).

pub(crate) mod changed;
pub(crate) mod github;
pub(crate) mod history;

use crate::runbook::Runbook;
use crate::runbook::markdown::{code, inline, prose};
use changed::Change;
use serde::Serialize;

/// The hidden line that finds keel's comment among a pull request's.
pub(crate) const MARKER: &str = "<!-- keel:review -->";

/// Where a migration's committed runbook stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub(crate) enum RunbookState {
    /// Committed, and what keel renders now.
    Fresh,
    /// Rendered as keel renders it, but not committed as it is.
    Uncommitted,
    Missing,
    /// Not what keel renders now (the reason).
    Stale(String),
}

impl RunbookState {
    pub(crate) fn ok(&self) -> bool {
        *self == RunbookState::Fresh
    }
}

/// One migration of the branch.
#[derive(Debug, Serialize)]
pub(crate) struct Reviewed {
    pub(crate) id: String,
    pub(crate) change: Change,
    /// `None` for a removed migration.
    #[serde(skip)]
    pub(crate) runbook: Option<Runbook>,
    pub(crate) runbook_state: Option<RunbookState>,
    /// Where the runbook is read: a URL on GitHub, else its path.
    pub(crate) link: String,
    /// `--env E` reached: the estimate from its live statistics.
    pub(crate) live_estimate: Option<(String, String)>,
}

/// The comment: a table of every migration, then each one's details.
pub(crate) fn markdown(against: &str, items: &[Reviewed]) -> String {
    let mut s = format!("{MARKER}\n## keel review\n\n");
    if items.is_empty() {
        s.push_str(&format!(
            "No migration added, changed or removed {}.\n",
            inline(against)
        ));
        return s;
    }
    s.push_str(&format!(
        "{} migration(s) {}.\n\n",
        items.len(),
        inline(against)
    ));
    s.push_str("| migration | change | reversibility | strongest lock | rewrites / scans | findings | runbook |\n|---|---|---|---|---|---|---|\n");
    for r in items {
        s.push_str(&row(r));
    }
    for r in items {
        s.push_str(&details(r));
    }
    s
}

fn row(r: &Reviewed) -> String {
    let Some(rb) = &r.runbook else {
        return format!(
            "| {} | removed | | | | | |\n",
            code(&r.id).replace('|', "\\|")
        );
    };
    let lock = strongest(rb);
    let rewrites: Vec<String> = rb
        .blast
        .iter()
        .filter(|t| t.rewrite)
        .map(|t| t.table.clone())
        .collect();
    let scans: Vec<String> = rb
        .blast
        .iter()
        .filter(|t| t.scan && !t.rewrite)
        .map(|t| t.table.clone())
        .collect();
    let cell = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "| {} | {} | {} | {} | {} / {} | {} | {} |\n",
        code(&r.id).replace('|', "\\|"),
        r.change.as_str(),
        inline(&rb.migration.reversibility),
        inline(&lock),
        inline(&cell(&rewrites)),
        inline(&cell(&scans)),
        findings_count(rb),
        state_word(r.runbook_state.as_ref()),
    )
}

/// `ACCESS EXCLUSIVE on users, posts`, or `none`.
fn strongest(rb: &Runbook) -> String {
    let rank = |l: &str| crate::analysis::Lock::from_name(l).map_or(0, |l| l as u8 + 1);
    let top = rb.blast.iter().map(|t| rank(&t.lock)).max().unwrap_or(0);
    if top == 0 {
        return "none".into();
    }
    let tables: Vec<&str> = rb
        .blast
        .iter()
        .filter(|t| rank(&t.lock) == top)
        .map(|t| t.table.as_str())
        .collect();
    let name = rb
        .blast
        .iter()
        .find(|t| rank(&t.lock) == top)
        .map_or("", |t| t.lock.as_str());
    format!("{name} on {}", tables.join(", "))
}

fn findings_count(rb: &Runbook) -> String {
    let open = |sev: &str| {
        rb.findings
            .iter()
            .filter(|f| f.severity == sev && f.allowed_reason.is_none())
            .count()
    };
    let allowed = rb
        .findings
        .iter()
        .filter(|f| f.allowed_reason.is_some())
        .count();
    let mut parts = Vec::new();
    for (n, word) in [(open("error"), "error"), (open("warning"), "warning")] {
        if n > 0 {
            parts.push(format!("{n} {word}{}", if n == 1 { "" } else { "s" }));
        }
    }
    if allowed > 0 {
        parts.push(format!("{allowed} allowed"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn state_word(state: Option<&RunbookState>) -> &'static str {
    match state {
        Some(RunbookState::Fresh) => "fresh",
        Some(RunbookState::Uncommitted) => "**not committed**",
        Some(RunbookState::Missing) => "**missing**",
        Some(RunbookState::Stale(_)) => "**stale**",
        None => "",
    }
}

fn details(r: &Reviewed) -> String {
    let mut s = format!("\n### {} ({})\n\n", code(&r.id), r.change.as_str());
    let Some(rb) = &r.runbook else {
        s.push_str("Its folder is gone from the migrations folder. A migration that was applied anywhere must stay: `keel status` reports it `missing` there.\n");
        return s;
    };
    if let Some(d) = &rb.migration.description {
        s.push_str(&format!("> {}\n\n", inline(d)));
    }
    s.push_str(&format!(
        "- Reversibility: {}\n",
        inline(&rb.migration.reversibility)
    ));
    for t in &rb.blast {
        let mut what = vec![format!("{} lock", t.lock)];
        if t.rewrite {
            what.push("rewrites it".into());
        } else if t.scan {
            what.push("scans it".into());
        }
        let sizes = if t.sizes.is_empty() {
            String::new()
        } else {
            format!("; {}", t.sizes.join("; "))
        };
        let deps = if t.dependents.is_empty() {
            String::new()
        } else {
            format!("; depends on it: {}", t.dependents.join(", "))
        };
        s.push_str(&format!(
            "- Table {}: {}{}\n",
            code(&t.table),
            inline(&what.join(", ")),
            inline(&format!("{sizes}{deps}"))
        ));
    }
    s.push_str("- Expected time:");
    let mut any = false;
    if let Some((env, est)) = &r.live_estimate {
        s.push_str(&format!(" {} (live): {};", inline(env), prose(est)));
        any = true;
    }
    for e in rb.environments.iter().filter(|e| !e.env_flag.is_empty()) {
        match &e.estimate {
            Some(est) => s.push_str(&format!(" {}: {};", inline(&e.name), prose(est))),
            None => s.push_str(&format!(
                " {}: unknown ({});",
                inline(&e.name),
                code(&format!(
                    "keel plan {} {} --save",
                    rb.migration.version, e.env_flag
                ))
            )),
        }
        any = true;
    }
    if !any {
        s.push_str(&format!(
            " unknown ({} against the target)",
            code(&format!("keel plan {}", rb.migration.version))
        ));
    }
    s = s.trim_end_matches(';').to_string();
    s.push('\n');
    if let Some(b) = &rb.backfill {
        s.push_str(&format!(
            "- Backfill: every row of {} in batches of {} by {}, each its own transaction, {} ms apart\n",
            code(&b.table),
            b.batch_size,
            code(&b.key),
            b.delay_ms
        ));
    }
    for b in &rb.backups {
        s.push_str(&format!("- Backs up: {}\n", inline(b)));
    }
    if rb.findings.is_empty() {
        s.push_str("- Findings: none\n");
    }
    for f in &rb.findings {
        s.push_str(&format!(
            "- **{}** {} at line {}: {}\n",
            inline(&f.severity),
            code(&f.rule),
            f.line,
            prose(&f.message)
        ));
        if !f.suggestion.is_empty() {
            s.push_str(&format!("  - Safe alternative: {}\n", prose(&f.suggestion)));
        }
        if let Some(reason) = &f.allowed_reason {
            s.push_str(&format!("  - Allowed: {}\n", inline(reason)));
        }
    }
    let link = format!("[{}]({})", inline(&r.link), r.link.replace(' ', "%20"));
    s.push_str(&match &r.runbook_state {
        Some(RunbookState::Fresh) => format!("- Runbook: {link}, committed and current\n"),
        Some(RunbookState::Uncommitted) => {
            format!("- Runbook: {link} is current but not committed as it is: commit it\n")
        }
        Some(RunbookState::Missing) => format!(
            "- Runbook: **missing**: run {} and commit it\n",
            code(&format!("keel runbook {}", rb.migration.version))
        ),
        Some(RunbookState::Stale(why)) => format!(
            "- Runbook: {link} is **stale** ({}): run {} and commit it\n",
            inline(why),
            code(&format!("keel runbook {}", rb.migration.version))
        ),
        None => String::new(),
    });
    s
}
