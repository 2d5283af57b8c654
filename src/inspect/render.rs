//! Text form of the inspect reports. Values that are strings are shown
//! JSON-quoted, so leading, trailing and doubled spaces stay visible.

use super::profile::{Bucket, TextProfile};
use super::{ColumnAnalysis, ColumnReport, ColumnStats, Overview, TableReport};

/// Width of the label column in column blocks.
const LABEL: usize = 24;

pub(crate) fn overview(o: &Overview) -> String {
    if o.tables.is_empty() {
        return "no tables in this database yet; run `keel up` to create the schema\n".into();
    }
    o.tables.iter().map(schema).collect::<Vec<_>>().join("\n")
}

pub(crate) fn table(t: &TableReport) -> String {
    let mut out = schema(t);
    for c in &t.columns {
        out.push('\n');
        out.push_str(&column_block(&c.info.name, c));
    }
    out
}

pub(crate) fn column(c: &ColumnAnalysis) -> String {
    column_block(&format!("{}.{}", c.table, c.column.info.name), &c.column)
}

/// Row count, columns, constraints and indexes of one table.
fn schema(t: &TableReport) -> String {
    let mut out = format!("{}: {}\n", t.table, plural(t.rows, "row"));
    out.push_str("  columns\n");
    let columns: Vec<Vec<String>> = t
        .columns
        .iter()
        .map(|c| {
            vec![
                c.info.name.clone(),
                c.info.data_type.clone(),
                nullability(c.info.nullable).into(),
                c.info
                    .default
                    .as_ref()
                    .map(|d| format!("default {d}"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&aligned(&columns, "    "));
    if !t.constraints.is_empty() {
        out.push_str("  constraints\n");
        let rows: Vec<Vec<String>> = t
            .constraints
            .iter()
            .map(|c| vec![c.name.clone(), c.kind.clone(), c.definition.clone()])
            .collect();
        out.push_str(&aligned(&rows, "    "));
    }
    if !t.indexes.is_empty() {
        out.push_str("  indexes\n");
        let rows: Vec<Vec<String>> = t
            .indexes
            .iter()
            .map(|i| {
                let invalid = if i.valid { "" } else { "  INVALID" };
                vec![i.name.clone(), format!("{}{invalid}", i.definition)]
            })
            .collect();
        out.push_str(&aligned(&rows, "    "));
    }
    out
}

/// One column's data: nulls, range, and for text the profile.
fn column_block(title: &str, c: &ColumnReport) -> String {
    let info = &c.info;
    let mut out = format!(
        "{title}: {}, {}\n",
        info.data_type,
        nullability(info.nullable)
    );
    let Some(s) = &c.stats else {
        return out;
    };
    let lines = Lines::new(s);
    out.push_str(&lines.value("rows", &s.rows.to_string()));
    out.push_str(&lines.count("nulls", s.nulls.max(0) as u64, &[]));
    if let Some(p) = &s.text {
        out.push_str(&lines.bucket("empty ('')", &p.empty));
        out.push_str(&lines.bucket("blank (only spaces)", &p.blank));
        out.push_str(&lines.bucket("1 word", &p.words.one));
        out.push_str(&lines.bucket("2 words", &p.words.two));
        out.push_str(&lines.bucket("3+ words", &p.words.three_plus));
    }
    let show = |v: &Option<String>| match v {
        None => "-".to_string(),
        Some(v) if info.is_text => quote(&super::profile::shorten(v)),
        Some(v) => v.clone(),
    };
    out.push_str(&lines.value("min", &show(&s.min)));
    out.push_str(&lines.value("max", &show(&s.max)));
    if let Some(p) = &s.text {
        out.push_str(&special(&lines, p));
    }
    out
}

fn special(lines: &Lines, p: &TextProfile) -> String {
    let mut out = String::new();
    if let Some(l) = p.length {
        out.push_str(&lines.value("length", &format!("{}..{} characters", l.min, l.max)));
    }
    out.push_str("  special characters (one value can be in several)\n");
    let sp = &p.special;
    for (label, bucket) in [
        ("non-ASCII (accents)", &sp.non_ascii),
        ("apostrophes", &sp.apostrophe),
        ("hyphens", &sp.hyphen),
        ("other punctuation", &sp.other_punctuation),
        ("leading/trailing space", &sp.edge_whitespace),
        ("repeated/odd space", &sp.inner_whitespace),
    ] {
        out.push_str("  ");
        out.push_str(&lines.bucket_at(label, bucket, LABEL - 2));
    }
    out
}

/// Formats the lines of one column block with the counts right-aligned.
struct Lines {
    total: u64,
    width: usize,
}

impl Lines {
    fn new(s: &ColumnStats) -> Lines {
        let total = s.rows.max(0) as u64;
        Lines {
            total,
            width: total.to_string().len(),
        }
    }

    fn value(&self, label: &str, value: &str) -> String {
        format!("  {label:<LABEL$}{value}\n")
    }

    fn count(&self, label: &str, n: u64, examples: &[String]) -> String {
        self.count_at(label, n, examples, LABEL)
    }

    fn bucket(&self, label: &str, b: &Bucket) -> String {
        self.count(label, b.count, &b.examples)
    }

    fn bucket_at(&self, label: &str, b: &Bucket, label_width: usize) -> String {
        self.count_at(label, b.count, &b.examples, label_width)
    }

    fn count_at(&self, label: &str, n: u64, examples: &[String], label_width: usize) -> String {
        let pct = if self.total == 0 {
            String::new()
        } else {
            format!("{:.1}%", n as f64 * 100.0 / self.total as f64)
        };
        let examples = if examples.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = examples.iter().map(|e| quote(e)).collect();
            format!("  {}", quoted.join(", "))
        };
        let line = format!(
            "  {label:<label_width$}{n:>w$}  {pct:>6}{examples}",
            w = self.width
        );
        format!("{}\n", line.trim_end())
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

fn nullability(nullable: bool) -> &'static str {
    if nullable { "nullable" } else { "not null" }
}

fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Left-aligned columns separated by two spaces, each line indented.
fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(indent);
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
