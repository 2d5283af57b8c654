//! Database URLs as people see them: never with their password.

/// The URL with its password replaced by `***`, for anything shown,
/// rendered or recorded. A URL that does not parse is reduced to its scheme
/// so that nothing secret can leak through an error message.
pub fn redact(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_string();
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            let mut pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let secret =
                        k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
                    (
                        k.into_owned(),
                        if secret {
                            "***".to_string()
                        } else {
                            v.into_owned()
                        },
                    )
                })
                .collect();
            if !pairs.is_empty() {
                parsed
                    .query_pairs_mut()
                    .clear()
                    .extend_pairs(pairs.drain(..));
            }
            parsed.to_string()
        }
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://(unparseable URL hidden)"),
            None => "(unparseable URL hidden)".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/prod"),
            "postgres://app:***@db:5432/prod"
        );
        assert_eq!(redact("postgres://app@db/prod"), "postgres://app@db/prod");
        assert!(!redact("postgres://app@db/prod?password=s3cret").contains("s3cret"));
        assert!(!redact("postgres://app:s3cret@db:notaport/x").contains("s3cret"));
        assert_eq!(redact("sqlite://keel.db"), "sqlite://keel.db");
    }
}
