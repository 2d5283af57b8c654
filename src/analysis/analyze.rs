//! One migration, analysed: its up and down classified, every rule run,
//! the reversibility derived and the backup plan listed. `keel lint`,
//! `up --dry-run` and (later) `plan` all start here.

use super::classify::{Classified, Parsed, classify};
use super::finding::{self, Finding};
use super::layout::Layout;
use super::live::LiveSchema;
use super::reversibility::{self, BackupItem};
use super::rules::{self, FileCx, FileKind};
use super::schema::{Created, Schema};
use super::version::PgVersion;
use crate::migration::{Meta, Migration, Reversibility};
use std::path::Path;
use std::sync::Arc;

/// Everything the analysis knows about one migration.
#[derive(Debug, Clone)]
pub(crate) struct MigrationAnalysis {
    pub(crate) up: Classified,
    pub(crate) down: Option<Classified>,
    /// Active and silenced findings, sorted by file and position.
    pub(crate) findings: Vec<Finding>,
    /// Derived from the operations (what the files really do).
    pub(crate) reversibility: Reversibility,
    /// What a backup must capture before the up runs.
    pub(crate) backups: Vec<BackupItem>,
}

/// The files of one migration folder as read from disk.
pub(crate) struct MigrationFiles<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) up: &'a str,
    /// `None` when down.sql does not exist.
    pub(crate) down: Option<&'a str>,
    pub(crate) meta: &'a Meta,
    /// Another tool's folder (diesel's): fixes in its terms. `None`: keel's.
    pub(crate) layout: Option<Layout>,
}

/// Analyses one migration. `schema` carries what earlier migrations of the
/// same pending set created; it is left as it is after this migration's up.
pub(crate) fn analyze(
    files: &MigrationFiles,
    schema: &mut Schema,
    version: Option<PgVersion>,
) -> MigrationAnalysis {
    let tx = files.meta.transaction;
    analyze_with(files, schema, version, |part, schema| match part {
        Part::Up => classify(files.up, schema, tx),
        Part::Down => classify(files.down.unwrap_or_default(), schema, tx),
    })
}

/// Which file of a migration.
enum Part {
    Up,
    Down,
}

/// A migration's files, each statement parsed once (see [`Parsed`]).
#[derive(Clone)]
pub(crate) struct ParsedFiles {
    pub(crate) up: Parsed,
    pub(crate) down: Option<Parsed>,
}

impl ParsedFiles {
    pub(crate) fn new(m: &Migration) -> ParsedFiles {
        ParsedFiles {
            up: Parsed::new(&m.up),
            down: m.down.as_deref().map(Parsed::new),
        }
    }
}

/// [`analyze`] from parses made before: the same migration analysed again
/// (with other facts about the server) without parsing it again.
pub(crate) fn analyze_parsed(
    files: &MigrationFiles,
    parsed: &ParsedFiles,
    schema: &mut Schema,
    version: Option<PgVersion>,
) -> MigrationAnalysis {
    let tx = files.meta.transaction;
    analyze_with(files, schema, version, |part, schema| {
        match (part, &parsed.down) {
            (Part::Up, _) => parsed.up.classify(schema, tx),
            (Part::Down, Some(down)) => down.classify(schema, tx),
            (Part::Down, None) => Classified::default(),
        }
    })
}

fn analyze_with(
    files: &MigrationFiles,
    schema: &mut Schema,
    version: Option<PgVersion>,
    mut classify: impl FnMut(Part, &mut Schema) -> Classified,
) -> MigrationAnalysis {
    schema.version = version;
    schema.begin_migration();
    let up = classify(Part::Up, schema);
    let created = Created::from_ops(&up.ops);
    let up_path = files.dir.join("up.sql").display().to_string();
    let mut findings = rules::check_file(&FileCx {
        file: &up_path,
        kind: FileKind::Up,
        ops: &up.ops,
        version,
        created: &created,
        syntax: &up.syntax,
        layout: files.layout,
    });

    if let Some(live) = &schema.live {
        super::sizes::annotate(&mut findings, &up_path, &up.ops, live);
    }

    let down = files.down.map(|_| {
        // The down runs after the up: the up's tables exist and hold data.
        let mut after = schema.after_up_for(&up.ops);
        classify(Part::Down, &mut after)
    });
    if let Some(d) = &down {
        let down_path = files.dir.join("down.sql").display().to_string();
        let mut down_findings = rules::check_file(&FileCx {
            file: &down_path,
            kind: FileKind::Down,
            ops: &d.ops,
            version,
            created: &created,
            syntax: &d.syntax,
            layout: files.layout,
        });
        if let Some(live) = &schema.live {
            super::sizes::annotate(&mut down_findings, &down_path, &d.ops, live);
        }
        findings.extend(down_findings);
    }

    let has_down = down.as_ref().is_some_and(|d| !d.ops.is_empty());
    let declared = files.meta.reversibility;
    findings.extend(
        rules::missing_down::check(files.dir, files.down, has_down, declared).map(|mut f| {
            if let Some(layout) = files.layout {
                f.suggestion = super::layout::in_own_terms(layout, f.suggestion);
            }
            f
        }),
    );
    findings.extend(rules::reversibility_mismatch::check(
        files.dir, &up.ops, declared,
    ));
    finding::sort(&mut findings);
    MigrationAnalysis {
        reversibility: reversibility::derive(&up.ops, has_down),
        backups: reversibility::backup_plan(&up.ops),
        up,
        down,
        findings,
    }
}

/// Analyses the migrations of one run, each once, in the order they run,
/// with what the server says about itself ([`Facts`]). Going up they are one
/// pending set: a table an earlier one creates is new for the later ones
/// (lint), though its rows, made by then, are data a later one destroys
/// (backups). Going down each stands alone (its down runs against its up's
/// tables).
pub(crate) struct Analyzer {
    facts: Facts,
    up: bool,
    pending: Schema,
}

/// What the server says that the analysis reads: its version, and on
/// PostgreSQL the live schema (current column types decide whether a type
/// change loses data; sizes feed the estimates). Both `None` offline and on
/// SQLite.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) version: Option<PgVersion>,
    pub(crate) live: Option<Arc<LiveSchema>>,
}

impl Analyzer {
    pub(crate) fn new(facts: Facts, up: bool) -> Analyzer {
        Analyzer {
            pending: Schema::with_live(facts.version, facts.live.clone()),
            facts,
            up,
        }
    }

    /// Without a server: what the files alone say (lint, the runbook).
    pub(crate) fn offline(up: bool) -> Analyzer {
        Analyzer::new(Facts::default(), up)
    }

    /// The next migration of the run.
    pub(crate) fn analyze(&mut self, m: &Migration) -> MigrationAnalysis {
        let files = MigrationFiles::of(m);
        let version = self.facts.version;
        analyze(&files, self.schema(), version)
    }

    /// [`Analyzer::analyze`] from parses made before.
    pub(crate) fn analyze_parsed(
        &mut self,
        m: &Migration,
        parsed: &ParsedFiles,
    ) -> MigrationAnalysis {
        let files = MigrationFiles::of(m);
        let version = self.facts.version;
        analyze_parsed(&files, parsed, self.schema(), version)
    }

    fn schema(&mut self) -> &mut Schema {
        if !self.up {
            self.pending = Schema::with_live(self.facts.version, self.facts.live.clone());
        }
        &mut self.pending
    }
}

impl<'a> MigrationFiles<'a> {
    pub(crate) fn of(m: &'a Migration) -> MigrationFiles<'a> {
        MigrationFiles {
            dir: &m.dir,
            up: &m.up,
            down: m.down.as_deref(),
            meta: &m.meta,
            layout: None,
        }
    }
}

/// Analyses a plain .sql file: no migration around it, so no down policy.
/// `transaction`: its tool (`layout`, see [`super::layout`]) runs it in
/// one; else none unless the file opens one with BEGIN.
pub(crate) fn analyze_sql(
    path: &str,
    text: &str,
    (schema, transaction, layout): (&mut Schema, bool, Option<Layout>),
    version: Option<PgVersion>,
) -> Vec<Finding> {
    schema.version = version;
    let c = classify(text, schema, transaction);
    let created = Created::from_ops(&c.ops);
    let mut findings = rules::check_file(&FileCx {
        file: path,
        kind: FileKind::Plain,
        ops: &c.ops,
        version,
        created: &created,
        syntax: &c.syntax,
        layout,
    });
    if let Some(live) = &schema.live {
        super::sizes::annotate(&mut findings, path, &c.ops, live);
    }
    finding::sort(&mut findings);
    findings
}

/// A plain up file and its down file, as golang-migrate, sqlx and others
/// lay them out (`NAME.up.sql` beside `NAME.down.sql`).
pub(crate) struct PlainPair<'a> {
    pub(crate) up_path: &'a str,
    pub(crate) up: &'a str,
    /// Whether the up's own findings are reported (false when only the
    /// down was given: the up is read for context).
    pub(crate) report_up: bool,
    pub(crate) down_path: &'a str,
    pub(crate) down: &'a str,
    /// Whether its tool runs the up, and the down, in a transaction.
    pub(crate) transaction: (bool, bool),
    /// Its tool's layout (`None`: unknown, a plain pair).
    pub(crate) layout: Option<Layout>,
}

/// Analyses a plain up/down pair: each file is classified once; the down
/// gets the down policy, with what the up created as what it may drop.
/// Each runs in a transaction as `pair.transaction` says.
#[cfg(test)]
pub(crate) fn analyze_sql_pair(pair: &PlainPair, version: Option<PgVersion>) -> Vec<Finding> {
    analyze_sql_pair_from(pair, Schema::new(version))
}

/// [`analyze_sql_pair`] from `schema`: what earlier migrations left (lint
/// reading a folder as a history).
pub(crate) fn analyze_sql_pair_from(pair: &PlainPair, mut schema: Schema) -> Vec<Finding> {
    let version = schema.version;
    let up = classify(pair.up, &mut schema, pair.transaction.0);
    let created = Created::from_ops(&up.ops);
    let mut findings = if pair.report_up {
        rules::check_file(&FileCx {
            file: pair.up_path,
            kind: FileKind::Plain,
            ops: &up.ops,
            version,
            created: &created,
            syntax: &up.syntax,
            layout: pair.layout,
        })
    } else {
        Vec::new()
    };
    let mut after = schema.after_up();
    let down = classify(pair.down, &mut after, pair.transaction.1);
    findings.extend(rules::check_file(&FileCx {
        file: pair.down_path,
        kind: FileKind::Down,
        ops: &down.ops,
        version,
        created: &created,
        syntax: &down.syntax,
        layout: pair.layout,
    }));
    finding::sort(&mut findings);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(up: &'a str, down: Option<&'a str>, meta: &'a Meta) -> MigrationFiles<'a> {
        MigrationFiles {
            dir: Path::new("m"),
            up,
            down,
            meta,
            layout: None,
        }
    }

    #[test]
    fn down_policy_and_file_rules_together() {
        let meta = Meta {
            transaction: true,
            reversibility: Some(Reversibility::Full),
            ..Meta::default()
        };
        let a = analyze(
            &files(
                "CREATE TABLE profiles (id bigint PRIMARY KEY);\nALTER TABLE users DROP COLUMN bio;",
                Some("DROP TABLE profiles;\nALTER TABLE users ADD COLUMN bio text;"),
                &meta,
            ),
            &mut Schema::default(),
            None,
        );
        let rules: Vec<&str> = a.findings.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["reversibility-mismatch", "drop-column"]);
        assert_eq!(a.reversibility, Reversibility::Partial);
        assert_eq!(a.backups.len(), 1);
    }

    #[test]
    fn pending_set_carries_new_tables() {
        let meta = Meta {
            transaction: true,
            ..Meta::default()
        };
        let mut schema = Schema::default();
        analyze(
            &files("CREATE TABLE t (id bigint);", Some("DROP TABLE t;"), &meta),
            &mut schema,
            None,
        );
        let second = analyze(
            &files(
                "CREATE INDEX t_id ON t (id);",
                Some("DROP INDEX t_id;"),
                &meta,
            ),
            &mut schema,
            None,
        );
        assert!(second.findings.is_empty(), "{:?}", second.findings);
    }

    #[test]
    fn plain_pair_down_drops_what_its_up_created() {
        let pair = PlainPair {
            up_path: "1_a.up.sql",
            up: "CREATE TABLE t (id bigint);\nALTER TABLE users ADD COLUMN bio text;",
            report_up: true,
            down_path: "1_a.down.sql",
            down: "DROP TABLE t;\nALTER TABLE users DROP COLUMN bio;\nALTER TABLE users DROP COLUMN email;",
            transaction: (false, false),
            layout: None,
        };
        let findings = analyze_sql_pair(&pair, None);
        let got: Vec<(&str, &str, usize)> = findings
            .iter()
            .map(|f| (f.file.as_str(), f.rule, f.line))
            .collect();
        assert_eq!(got, [("1_a.down.sql", "drop-column", 3)]);
    }

    #[test]
    fn a_down_may_change_back_what_its_up_changed() {
        let pair = PlainPair {
            up_path: "2_b.up.sql",
            up: "ALTER TABLE jobs ALTER COLUMN data TYPE jsonb USING data::jsonb;\nDROP INDEX ix;\nALTER TABLE t ALTER COLUMN c DROP NOT NULL;",
            report_up: false,
            down_path: "2_b.down.sql",
            down: "ALTER TABLE jobs ALTER COLUMN data TYPE varchar(1024);\nCREATE INDEX ix ON t (c);\nALTER TABLE t ALTER COLUMN c SET NOT NULL;\nCREATE INDEX other ON t (d);\nALTER TABLE t ALTER COLUMN e TYPE int;",
            transaction: (false, false),
            layout: None,
        };
        let got: Vec<(&str, usize)> = analyze_sql_pair(&pair, Some("15".parse().unwrap()))
            .iter()
            .map(|f| (f.rule, f.line))
            .collect();
        assert_eq!(
            got,
            [("create-index-blocking", 4), ("change-column-type", 5)]
        );
    }
}
