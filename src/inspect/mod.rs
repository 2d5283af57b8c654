//! `keel inspect`: the schema and the data distribution of the database,
//! the baseline to look at before writing a migration that transforms data.
//!
//! Three levels, one report type each: every table ([`Overview`]), one
//! table in detail ([`TableReport`] with per-column [`ColumnStats`]), and
//! one column ([`ColumnAnalysis`]). Text columns are profiled by streaming
//! them through [`TextProfile`], so memory stays flat on large tables.
//! [`render`] turns a report into text; JSON is the reports' serde form.

pub(crate) mod digest;
mod error;
pub(crate) mod profile;
pub(crate) mod render;

pub(crate) use error::InspectError;
pub(crate) use profile::TextProfile;

use crate::db::{ColumnInfo, ConstraintInfo, Database, IndexInfo};
use serde::Serialize;

/// Nulls, range and, for text, the [`TextProfile`] of one column.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ColumnStats {
    pub(crate) rows: i64,
    pub(crate) nulls: i64,
    pub(crate) min: Option<String>,
    pub(crate) max: Option<String>,
    /// For text columns only.
    pub(crate) text: Option<TextProfile>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ColumnReport {
    #[serde(flatten)]
    pub(crate) info: ColumnInfo,
    /// Present when one table or column is inspected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<ColumnStats>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableReport {
    pub(crate) table: String,
    pub(crate) rows: i64,
    pub(crate) columns: Vec<ColumnReport>,
    pub(crate) constraints: Vec<ConstraintInfo>,
    pub(crate) indexes: Vec<IndexInfo>,
}

/// Every table, schema and row counts.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Overview {
    pub(crate) tables: Vec<TableReport>,
}

/// One column, for planning a transformation of it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ColumnAnalysis {
    pub(crate) table: String,
    #[serde(flatten)]
    pub(crate) column: ColumnReport,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Report {
    Overview(Overview),
    Table(TableReport),
    Column(Box<ColumnAnalysis>),
}

impl Report {
    pub(crate) fn to_text(&self) -> String {
        match self {
            Report::Overview(o) => render::overview(o),
            Report::Table(t) => render::table(t),
            Report::Column(c) => render::column(c),
        }
    }
}

/// Inspects what `target` names: nothing (every table), `TABLE`, or
/// `TABLE.COLUMN`.
pub(crate) async fn inspect(
    db: &mut dyn Database,
    target: Option<&str>,
) -> Result<Report, InspectError> {
    let tables = db.tables().await?;
    let Some(target) = target else {
        let mut reports = Vec::new();
        for table in &tables {
            reports.push(schema(db, table).await?);
        }
        return Ok(Report::Overview(Overview { tables: reports }));
    };
    if tables.iter().any(|t| t == target) {
        return Ok(Report::Table(table(db, target).await?));
    }
    match target.rsplit_once('.') {
        Some((table, column)) if tables.iter().any(|t| t == table) => Ok(Report::Column(Box::new(
            analyse_column(db, table, column).await?,
        ))),
        Some((table, _)) => Err(InspectError::UnknownTable {
            name: table.to_string(),
            tables,
        }),
        None => Err(InspectError::UnknownTable {
            name: target.to_string(),
            tables,
        }),
    }
}

/// Columns, constraints, indexes and the row count of one table.
async fn schema(db: &mut dyn Database, table: &str) -> Result<TableReport, InspectError> {
    Ok(TableReport {
        table: table.to_string(),
        rows: db.count_rows(table).await?,
        columns: db
            .columns(table)
            .await?
            .into_iter()
            .map(|info| ColumnReport { info, stats: None })
            .collect(),
        constraints: db.constraints(table).await?,
        indexes: db.indexes(table).await?,
    })
}

/// The schema plus every column's stats.
pub(crate) async fn table(db: &mut dyn Database, table: &str) -> Result<TableReport, InspectError> {
    let mut report = schema(db, table).await?;
    for column in &mut report.columns {
        column.stats = Some(stats(db, table, &column.info).await?);
    }
    Ok(report)
}

pub(crate) async fn analyse_column(
    db: &mut dyn Database,
    table: &str,
    column: &str,
) -> Result<ColumnAnalysis, InspectError> {
    let columns = db.columns(table).await?;
    let Some(info) = columns.iter().find(|c| c.name == column).cloned() else {
        return Err(InspectError::UnknownColumn {
            table: table.to_string(),
            column: column.to_string(),
            columns: columns.into_iter().map(|c| c.name).collect(),
        });
    };
    let stats = stats(db, table, &info).await?;
    Ok(ColumnAnalysis {
        table: table.to_string(),
        column: ColumnReport {
            info,
            stats: Some(stats),
        },
    })
}

async fn stats(
    db: &mut dyn Database,
    table: &str,
    column: &ColumnInfo,
) -> Result<ColumnStats, InspectError> {
    let summary = db.summarize(table, &column.name).await?;
    let text = if column.is_text {
        let mut profile = TextProfile::default();
        db.scan_text(table, &column.name, &mut |v| profile.observe(v))
            .await?;
        Some(profile)
    } else {
        None
    };
    Ok(ColumnStats {
        rows: summary.rows,
        nulls: summary.nulls,
        min: summary.min,
        max: summary.max,
        text,
    })
}
