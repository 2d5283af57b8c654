/// Quotes an identifier for PostgreSQL and SQLite (both use double quotes,
/// with an embedded quote doubled). Every identifier keel puts into SQL goes
/// through here; values never do: they travel as bind parameters.
///
/// A dotted name (`schema.table`) is quoted part by part.
pub fn quote_ident(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("public.users"), "\"public\".\"users\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
