//! Column types, normalised so that `int4`, `integer` and `int` compare
//! equal, and the PostgreSQL facts about which type changes rewrite.

use super::version::PgVersion;
use std::fmt;

/// A column type, normalised: what type-change and column rules compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqlType {
    /// Canonical name: `integer`, `varchar`, `timestamptz`, `numeric`, …
    pub name: String,
    /// Type modifiers: `varchar(20)` → `[20]`, `numeric(10,2)` → `[10, 2]`.
    pub args: Vec<u32>,
    /// An array of the type (`int4[]`).
    pub array: bool,
}

impl SqlType {
    /// Reads a type as written in SQL (`character varying(20)`, `int4[]`,
    /// `timestamp(3) without time zone`).
    pub fn parse(written: &str) -> SqlType {
        let lower = written.trim().to_lowercase();
        let array = lower.ends_with(']') || lower.contains(" array");
        let mut base = String::new();
        let mut args = String::new();
        let mut depth = 0;
        for c in lower.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '[' => break,
                _ if depth > 0 => args.push(c),
                _ => base.push(c),
            }
        }
        let base = base
            .replace(" array", "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let base = base.strip_prefix("pg_catalog.").unwrap_or(&base);
        let name = match base {
            "int" | "int4" | "integer" => "integer",
            "int2" | "smallint" => "smallint",
            "int8" | "bigint" => "bigint",
            "serial" | "serial4" => "serial",
            "bigserial" | "serial8" => "bigserial",
            "smallserial" | "serial2" => "smallserial",
            "varchar" | "character varying" | "char varying" => "varchar",
            "char" | "character" | "bpchar" | "nchar" | "national character" => "char",
            "decimal" | "numeric" => "numeric",
            "timestamp" | "timestamp without time zone" => "timestamp",
            "timestamptz" | "timestamp with time zone" => "timestamptz",
            "time" | "time without time zone" => "time",
            "timetz" | "time with time zone" => "timetz",
            "float8" | "double precision" | "float" => "double precision",
            "float4" | "real" => "real",
            "bool" | "boolean" => "boolean",
            other => other,
        }
        .to_string();
        let args = args
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        SqlType { name, args, array }
    }

    /// A 32-bit or smaller integer (`smallint`, `integer`, their serials): what
    /// `prefer-bigint` flags on keys.
    pub fn is_integer(&self) -> bool {
        matches!(
            self.name.as_str(),
            "smallint" | "integer" | "serial" | "smallserial"
        )
    }

    /// A `serial` type: an implicit sequence default (prefer identity columns).
    pub fn is_serial(&self) -> bool {
        matches!(self.name.as_str(), "serial" | "bigserial" | "smallserial")
    }

    /// Whether `ALTER COLUMN … TYPE self` from `from` rewrites the table,
    /// as PostgreSQL decides it (binary-coercible changes do not).
    pub fn rewrite_from(&self, from: &SqlType, version: Option<PgVersion>) -> Rewrite {
        if self.array != from.array {
            return Rewrite::Yes;
        }
        let (to_n, from_n) = (self.name.as_str(), from.name.as_str());
        match (from_n, to_n) {
            _ if self == from => Rewrite::No,
            // varchar(n) → varchar(m ≥ n), varchar, text: the length check only widens.
            ("varchar" | "text", "varchar") if self.args.is_empty() => Rewrite::No,
            ("varchar", "varchar") => match (from.args.first(), self.args.first()) {
                (Some(n), Some(m)) if m >= n => Rewrite::No,
                _ => Rewrite::Yes,
            },
            ("varchar" | "char", "text") => Rewrite::No,
            // numeric(p,s) → numeric(q ≥ p, s) or unconstrained numeric.
            ("numeric", "numeric") if self.args.is_empty() => Rewrite::No,
            ("numeric", "numeric") => match (&from.args[..], &self.args[..]) {
                ([p], [q]) | ([p, 0], [q]) | ([p], [q, 0]) if q >= p => Rewrite::No,
                ([p, s], [q, t]) if q >= p && s == t => Rewrite::No,
                _ => Rewrite::Yes,
            },
            // PostgreSQL 12+ skips the rewrite when the session TimeZone is UTC.
            ("timestamp", "timestamptz") | ("timestamptz", "timestamp")
                if version.is_none_or(|v| v >= PgVersion::new(12, 0)) =>
            {
                Rewrite::UnlessUtc
            }
            ("cidr", "inet") | ("varbit", "varbit") if self.args.is_empty() => Rewrite::No,
            _ => Rewrite::Yes,
        }
    }

    /// Values may be lost or altered, not just rejected: fewer decimal
    /// places, dates without times, floats to integers, anything to boolean.
    pub fn loses_data_from(&self, from: &SqlType) -> bool {
        let (to_n, from_n) = (self.name.as_str(), from.name.as_str());
        match (from_n, to_n) {
            ("numeric", "numeric") => match (from.args.get(1), self.args.get(1)) {
                (Some(s), Some(t)) => t < s,
                (None, Some(_)) => true,
                _ => false,
            },
            ("timestamp" | "timestamptz", "date" | "time" | "timetz") => true,
            ("double precision" | "real" | "numeric", "smallint" | "integer" | "bigint") => true,
            ("double precision" | "numeric", "real") => true,
            (_, "boolean") => from_n != "boolean",
            ("char", "char") => self.args.first() < from.args.first(),
            _ => false,
        }
    }
}

/// What a type change does to the table's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// The table is left as it is (binary-coercible, or a looser limit).
    No,
    /// Every row is rewritten.
    Yes,
    /// `timestamp` ↔ `timestamptz` (12+): no rewrite only when the session
    /// TimeZone is UTC.
    UnlessUtc,
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(u32::to_string).collect();
            write!(f, "({})", args.join(","))?;
        }
        if self.array {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> SqlType {
        SqlType::parse(s)
    }

    #[test]
    fn spellings_normalise() {
        assert_eq!(t("INT4"), t("integer"));
        assert_eq!(t("character varying(20)").to_string(), "varchar(20)");
        assert_eq!(
            t("timestamp(3) with time zone").to_string(),
            "timestamptz(3)"
        );
        assert_eq!(t("int[]").to_string(), "integer[]");
        assert_eq!(t("numeric(10, 2)").args, vec![10, 2]);
    }

    #[test]
    fn binary_coercible_changes_do_not_rewrite() {
        let v15 = Some(PgVersion::new(15, 0));
        assert_eq!(
            t("varchar(50)").rewrite_from(&t("varchar(20)"), v15),
            Rewrite::No
        );
        assert_eq!(t("text").rewrite_from(&t("varchar(20)"), v15), Rewrite::No);
        assert_eq!(
            t("varchar(10)").rewrite_from(&t("varchar(20)"), v15),
            Rewrite::Yes
        );
        assert_eq!(
            t("numeric(12,2)").rewrite_from(&t("numeric(10,2)"), v15),
            Rewrite::No
        );
        assert_eq!(t("bigint").rewrite_from(&t("integer"), v15), Rewrite::Yes);
        assert_eq!(
            t("timestamptz").rewrite_from(&t("timestamp"), v15),
            Rewrite::UnlessUtc
        );
        assert_eq!(
            t("timestamptz").rewrite_from(&t("timestamp"), Some(PgVersion::new(11, 0))),
            Rewrite::Yes
        );
    }

    #[test]
    fn lossy_changes() {
        assert!(t("numeric(10,1)").loses_data_from(&t("numeric(10,2)")));
        assert!(t("date").loses_data_from(&t("timestamptz")));
        assert!(!t("bigint").loses_data_from(&t("integer")));
    }
}
