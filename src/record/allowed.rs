//! The allowed-signers file of `ssh-keygen -Y verify` (and git):
//! `principals [options] keytype base64 [comment]`, one per line.

use super::RecordError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ssh_key::PublicKey;
use ssh_key::public::KeyData;
use std::path::{Path, PathBuf};

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
pub(crate) struct AllowedSigner {
    /// Comma-separated patterns (`*`, `?`, `!` negation) in the file.
    pub(crate) principals: Vec<String>,
    /// `namespaces="…"`; `None` allows every namespace.
    pub(crate) namespaces: Option<Vec<String>>,
    pub(crate) cert_authority: bool,
    pub(crate) valid_after: Option<DateTime<Utc>>,
    pub(crate) valid_before: Option<DateTime<Utc>>,
    pub(crate) key: PublicKey,
    /// 1-based line in the file.
    pub(crate) line: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct AllowedSigners {
    pub(crate) path: PathBuf,
    pub(crate) entries: Vec<AllowedSigner>,
}

impl AllowedSigners {
    pub(crate) fn load(path: &Path) -> Result<AllowedSigners, RecordError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RecordError::Usage(format!(
                "cannot read the allowed-signers file {}: {e}\n  fix: pass --allowed-signers FILE, or set allowed_signers in keel.toml; each line is `principal ssh-ed25519 AAAA…`",
                path.display()
            ))
        })?;
        Self::parse(&text, path)
    }

    pub(crate) fn parse(text: &str, path: &Path) -> Result<AllowedSigners, RecordError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line, i + 1).map_err(|message| {
                RecordError::Usage(format!(
                    "{}:{}: {message}\n  fix: each line is `principal [namespaces=\"keel-record\"] ssh-ed25519 AAAA… [comment]`",
                    path.display(),
                    i + 1
                ))
            })?;
            entries.push(entry);
        }
        Ok(AllowedSigners {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The entry that allows `principal` to sign in `namespace` with `key`
    /// now, or why none does.
    pub(crate) fn find(
        &self,
        principal: &str,
        key: &KeyData,
        namespace: &str,
    ) -> Result<&AllowedSigner, String> {
        let for_principal: Vec<&AllowedSigner> = self
            .entries
            .iter()
            .filter(|e| principal_matches(&e.principals, principal))
            .collect();
        if for_principal.is_empty() {
            return Err(format!("{principal} is not listed"));
        }
        let with_key: Vec<&AllowedSigner> = for_principal
            .into_iter()
            .filter(|e| !e.cert_authority && e.key.key_data() == key)
            .collect();
        if with_key.is_empty() {
            return Err(format!("{principal} is listed, but with another key"));
        }
        let now = Utc::now();
        let mut why = String::new();
        for e in with_key {
            if let Some(ns) = &e.namespaces
                && !ns.iter().any(|n| n == namespace)
            {
                why = format!("line {} does not allow namespace {namespace}", e.line);
                continue;
            }
            if e.valid_after.is_some_and(|t| now < t) || e.valid_before.is_some_and(|t| now >= t) {
                why = format!(
                    "line {} is not valid now (valid-after/valid-before)",
                    e.line
                );
                continue;
            }
            return Ok(e);
        }
        Err(why)
    }
}

fn parse_line(line: &str, number: usize) -> Result<AllowedSigner, String> {
    let tokens = split_unquoted(line);
    if tokens.len() < 3 {
        return Err("expected principals, then a key type and key".into());
    }
    let principals: Vec<String> = tokens[0]
        .replace('"', "")
        .split(',')
        .map(str::to_string)
        .collect();
    let looks_like_key_type = |t: &str| ["ssh-", "ecdsa-", "sk-"].iter().any(|p| t.starts_with(p));
    let (options, key_at) = if looks_like_key_type(&tokens[1]) {
        (None, 1)
    } else {
        (Some(tokens[1].as_str()), 2)
    };
    let key_text = tokens
        .get(key_at..key_at + 2)
        .map(|t| t.join(" "))
        .ok_or("missing the key after the options")?;
    let key =
        PublicKey::from_openssh(&key_text).map_err(|e| format!("the key does not parse ({e})"))?;
    let mut entry = AllowedSigner {
        principals,
        namespaces: None,
        cert_authority: false,
        valid_after: None,
        valid_before: None,
        key,
        line: number,
    };
    for option in options.map(split_options).unwrap_or_default() {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (
                n.to_ascii_lowercase(),
                Some(v.trim_matches('"').to_string()),
            ),
            None => (option.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => entry.cert_authority = true,
            ("namespaces", Some(v)) => {
                entry.namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect())
            }
            ("valid-after", Some(v)) => entry.valid_after = Some(parse_time(&v)?),
            ("valid-before", Some(v)) => entry.valid_before = Some(parse_time(&v)?),
            (other, _) => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(entry)
}

/// Splits on whitespace outside double quotes.
fn split_unquoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits `a,b="x,y",c` on commas outside quotes.
fn split_options(options: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in options.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.retain(|o| !o.is_empty());
    out
}

/// `YYYYMMDD[HHMM[SS]]`, UTC when it ends in `Z` (local time otherwise in
/// OpenSSH; keel reads it as UTC).
fn parse_time(v: &str) -> Result<DateTime<Utc>, String> {
    let s = v.trim_end_matches(['Z', 'z']);
    let t = match s.len() {
        8 => NaiveDate::parse_from_str(s, "%Y%m%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        12 => NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M").ok(),
        14 => NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok(),
        _ => None,
    };
    t.map(|t| t.and_utc())
        .ok_or_else(|| format!("`{v}` is not a time (YYYYMMDD[HHMM[SS]])"))
}

/// OpenSSH's pattern lists: any positive match and no negated match.
fn principal_matches(patterns: &[String], principal: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg.as_bytes(), principal.as_bytes()) {
                return false;
            }
        } else if glob(p.as_bytes(), principal.as_bytes()) {
            matched = true;
        }
    }
    matched
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvrdrLJJ6QzSGrOWmLYu7yfgBGuBlBjyBzqS8/g/ERv";

    #[test]
    fn reads_git_style_lines_with_options() {
        let text = format!(
            "# auditors\nops@example.com {KEY} laptop\n\"*@example.com\",!bad@example.com namespaces=\"git,keel-record\",valid-after=\"20200101\" {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text, Path::new("allowed_signers")).unwrap();
        assert_eq!(signers.entries.len(), 2);
        assert_eq!(
            signers.entries[1].namespaces.as_deref(),
            Some(&["git".to_string(), "keel-record".to_string()][..])
        );
        let key = signers.entries[0].key.key_data().clone();
        assert!(signers.find("ops@example.com", &key, "keel-record").is_ok());
        assert!(
            signers
                .find("bad@example.com", &key, "keel-record")
                .is_err()
        );
        assert!(
            signers
                .find("nobody@elsewhere", &key, "keel-record")
                .is_err()
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = AllowedSigners::parse("ops@example.com ssh-ed25519 nope\n", Path::new("a"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a:1: "), "{err}");
    }

    #[test]
    fn patterns() {
        assert!(glob(b"*@example.com", b"ops@example.com"));
        assert!(glob(b"op?@*", b"ops@x"));
        assert!(!glob(b"ops", b"ops2"));
    }
}
