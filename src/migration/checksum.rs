use sha2::{Digest, Sha256};

/// SHA-256 over a migration's files, hex encoded.
///
/// Each present file contributes its name, its length and its content with
/// CRLF normalised to LF, so a checkout with `core.autocrlf` gives the same
/// checksum and moving text between files changes it.
pub(crate) fn checksum(up: &str, down: Option<&str>, toml: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for (name, content) in [
        ("up.sql", Some(up)),
        ("down.sql", down),
        ("migration.toml", toml),
    ] {
        let Some(content) = content else { continue };
        let normalised = content.replace("\r\n", "\n");
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update((normalised.len() as u64).to_le_bytes());
        hasher.update(normalised.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_do_not_change_the_checksum() {
        assert_eq!(
            checksum("SELECT 1;\r\n", Some("SELECT 2;\r\n"), None),
            checksum("SELECT 1;\n", Some("SELECT 2;\n"), None)
        );
    }

    #[test]
    fn every_file_counts() {
        let base = checksum("a", Some("b"), Some("c"));
        assert_ne!(base, checksum("a", Some("b"), Some("d")));
        assert_ne!(base, checksum("a", Some("x"), Some("c")));
        assert_ne!(base, checksum("a", None, Some("c")));
        // Moving text from one file to another is a change.
        assert_ne!(
            checksum("ab", Some(""), None),
            checksum("a", Some("b"), None)
        );
    }
}
