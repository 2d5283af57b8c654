//! What the steps of one guarded run share: the request, the connection, the
//! migration's analysis (computed once, here) and what earlier steps found.

use super::guard::CheckedRunbook;
use super::step::Log;
use super::{ExecuteError, Request, Ui, at};
use crate::analysis::analyze::{Analyzer, Facts, MigrationAnalysis, ParsedFiles};
use crate::backup::Created;
use crate::db::{Database, Timeouts};
use crate::migration::Migration;
use crate::migrator::Runner;
use crate::record::{Outcome, Record, Signer, Written};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One guarded run as its steps see it.
pub(crate) struct Context<'a> {
    pub(crate) request: &'a Request<'a>,
    pub(crate) ui: &'a Ui<'a>,
    pub(crate) db: &'a mut dyn Database,
    operator: String,
    pub(crate) log: Log<'a>,
    pub(crate) timeouts: Timeouts,
    /// runbooks/…md in the project, and as messages show it.
    pub(crate) runbook_path: PathBuf,
    pub(crate) runbook_shown: PathBuf,
    pub(crate) records_dir: PathBuf,
    /// The migration classified offline, as its reviewed runbook shows it.
    pub(crate) reviewed: MigrationAnalysis,
    /// The run's one analysis of the migration, with what the server says:
    /// the dry run, the backup, the row counts, the runner and the rollback
    /// all read it.
    pub(crate) analysis: MigrationAnalysis,
    pub(crate) signer: Option<Signer>,
    pub(crate) runbook: Option<CheckedRunbook>,
    pub(crate) snapshot_done: bool,
    /// The reviewed checklist has `backup-verified`: ticked once the backup
    /// step has done (or had nothing to do).
    pub(crate) backup_item: bool,
    /// The checklist ids the runbook gets ticked.
    pub(crate) tick: Vec<String>,
    pub(crate) backup: Option<Created>,
    /// Row counts taken before the migration, which the checks compare to.
    pub(crate) before: BTreeMap<String, i64>,
    /// The schema right before the migration, which a rollback must give
    /// back exactly; `None` for a run resumed after a stop.
    pub(crate) schema_before: Option<crate::db::Fingerprint>,
    /// The migration has a backfill to run (or finish) after its commit.
    pub(crate) backfill: bool,
    pub(crate) intent_written: bool,
    /// What failed after the commit; the migration is rolled back.
    pub(crate) failures: Vec<String>,
    /// How the run ended, once it has; `problem` is empty when applied.
    pub(crate) outcome: Outcome,
    pub(crate) problem: String,
    /// The first signal received during the run and when it came.
    pub(crate) signal: Option<(&'static str, DateTime<Utc>)>,
    /// The final record as written, once it is.
    pub(crate) written: Option<(Written, Record)>,
    /// The runbook section of the final record.
    pub(crate) section: String,
    /// The server's pulse before the migration (monitoring window only).
    pub(crate) pulses_before: Vec<crate::db::Pulse>,
    /// How many signals came, once the run may change the database: the
    /// monitoring window ends at the first.
    pub(crate) watching: Option<tokio::sync::watch::Receiver<u32>>,
}

impl<'a> Context<'a> {
    /// A run of `plan.migration`, its record started as `rec`. Parses the
    /// migration's SQL once and analyses it offline (for the runbook check)
    /// and with the server's facts (for the run).
    pub(crate) async fn new(
        db: &'a mut dyn Database,
        request: &'a Request<'a>,
        ui: &'a Ui<'a>,
        rec: Record,
    ) -> Result<Context<'a>, ExecuteError> {
        let m = request.migration;
        let parsed = ParsedFiles::new(m);
        let reviewed = Analyzer::offline(true).analyze_parsed(m, &parsed);
        let facts = Facts::read(db, &crate::analysis::reach::reach_analysed(&reviewed))
            .await
            .map_err(ExecuteError::Db)?;
        let analysis = Analyzer::new(facts, true).analyze_parsed(m, &parsed);
        Ok(Context {
            request,
            ui,
            db,
            operator: crate::migrator::operator(),
            log: Log { rec, say: ui.say },
            timeouts: request.settings.timeouts(m),
            runbook_path: crate::runbook::path_for(&at(&request.project, "runbooks"), m),
            runbook_shown: crate::runbook::path_for(Path::new("runbooks"), m),
            records_dir: at(&request.project, "records"),
            reviewed,
            analysis,
            signer: None,
            runbook: None,
            snapshot_done: false,
            backup_item: false,
            tick: Vec::new(),
            backup: None,
            before: BTreeMap::new(),
            schema_before: None,
            backfill: m.meta.backfill.is_some(),
            intent_written: false,
            failures: Vec::new(),
            outcome: Outcome::Failed,
            problem: String::new(),
            signal: None,
            written: None,
            section: String::new(),
            pulses_before: Vec::new(),
            watching: None,
        })
    }

    pub(crate) fn migration(&self) -> &'a Migration {
        self.request.migration
    }

    pub(crate) fn env_name(&self) -> &'a str {
        self.request.env_name
    }

    /// The migrator, on this run's connection.
    pub(crate) fn runner(&mut self) -> Runner<'_> {
        Runner {
            db: &mut *self.db,
            settings: self.request.settings,
            operator: self.operator.clone(),
            on_event: self.ui.on_event,
            reach: None,
            alone: false,
        }
    }

    /// The migrator, and the analysis it runs the migration with.
    pub(crate) fn runner_with_analysis(&mut self) -> (Runner<'_>, &MigrationAnalysis) {
        let runner = Runner {
            db: &mut *self.db,
            settings: self.request.settings,
            operator: self.operator.clone(),
            on_event: self.ui.on_event,
            reach: None,
            alone: false,
        };
        (runner, &self.analysis)
    }

    /// `path` relative to the project, as messages show it.
    pub(crate) fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.request.project)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}
