//! The words PostgreSQL refuses as a bare table, column, index or
//! constraint name. One list, so that `keel new` quotes exactly what the
//! `quote-identifier` rule flags.
//!
//! It is the PostgreSQL column of the documentation's Appendix C ("SQL Key
//! Words", PostgreSQL 18): every word marked *reserved*, and every word
//! marked *reserved (can be function or type)*, which is still refused as a
//! table or column name (`CREATE TABLE t (left int)` is a syntax error). In
//! the server's `kwlist.h` these are `RESERVED_KEYWORD` and
//! `TYPE_FUNC_NAME_KEYWORD`. Non-reserved words, including those that
//! "cannot be function or type" (`between`, `int`, `values`), are fine as
//! names and are not here. `system_user` became reserved in PostgreSQL 16;
//! quoting it is harmless on older servers.

/// Appendix C's reserved words (both kinds), lower case, sorted.
pub(crate) const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// True when `word` (any case) is one of PostgreSQL's reserved words, so a
/// name spelled that way must be double-quoted.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED
        .binary_search(&word.to_ascii_lowercase().as_str())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_lower_case_and_complete() {
        assert!(
            RESERVED.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        assert!(RESERVED.iter().all(|w| *w == w.to_ascii_lowercase()));
        // Appendix C of PostgreSQL 18: 78 reserved, 23 reserved (can be
        // function or type).
        assert_eq!(RESERVED.len(), 101);
        assert!(is_reserved("USER") && is_reserved("left") && is_reserved("system_user"));
        for fine in [
            "id", "name", "between", "int", "values", "value", "text", "year",
        ] {
            assert!(!is_reserved(fine), "{fine} is a fine name");
        }
    }

    /// The parser keel uses (squawk, whose keyword tables are generated
    /// from PostgreSQL's kwlist.h) reserves exactly these words.
    #[test]
    fn is_the_parsers_list() {
        use squawk_parser::{SyntaxKind, is_reserved_keyword, is_type_func_name_keyword};
        let mut parser: Vec<String> = (0..SyntaxKind::__LAST as u16)
            .map(SyntaxKind::from)
            .filter(|k| is_reserved_keyword(*k) || is_type_func_name_keyword(*k))
            .map(|k| {
                format!("{k:?}")
                    .trim_end_matches("_KW")
                    .to_ascii_lowercase()
            })
            .collect();
        parser.sort();
        assert_eq!(parser, RESERVED);
    }
}
