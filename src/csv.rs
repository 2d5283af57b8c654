//! The CSV dialect of backups: RFC 4180 as PostgreSQL's `COPY … WITH (FORMAT
//! csv, HEADER)` writes and reads it, so `psql \copy` can load every file.
//!
//! Comma separated, `"` quoted with `""` inside, `\n` line ends. NULL is an
//! empty unquoted field and the empty string is `""`: the one distinction
//! plain CSV readers lose, and the reason keel reads CSV with its own reader.

use std::io::{self, BufRead};

/// Appends one field. `None` is NULL.
pub(crate) fn push_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(v) = value else { return };
    // PostgreSQL quotes the empty string (to tell it from NULL), anything with
    // a delimiter, quote or line break, and a lone `\.` (its end-of-data mark).
    let needs_quotes =
        v.is_empty() || v == b"\\." || v.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        out.extend_from_slice(v);
        return;
    }
    out.push(b'"');
    for &b in v {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// One CSV line (with its `\n`) from fields, `None` as NULL.
pub(crate) fn push_record<'a>(
    out: &mut Vec<u8>,
    fields: impl IntoIterator<Item = Option<&'a [u8]>>,
) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_field(out, f);
    }
    out.push(b'\n');
}

/// The header line keel expects for `columns`, as PostgreSQL writes it.
pub(crate) fn header(columns: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    push_record(&mut out, columns.iter().map(|c| Some(c.as_bytes())));
    out
}

/// Counts records in CSV arriving in arbitrary chunks: a line break ends a
/// record only outside quotes.
#[derive(Debug, Default, Clone)]
pub(crate) struct RecordCounter {
    in_quotes: bool,
    records: u64,
    /// Whether the bytes since the last record break are a partial record.
    pending: bool,
}

impl RecordCounter {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if !self.in_quotes && !chunk.contains(&b'"') {
            // The common case (no quoting in this chunk): a plain count that
            // the compiler vectorises.
            self.records += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        } else {
            for &b in chunk {
                match b {
                    b'"' => self.in_quotes = !self.in_quotes,
                    b'\n' if !self.in_quotes => self.records += 1,
                    _ => {}
                }
            }
        }
        self.pending = chunk.last() != Some(&b'\n') || self.in_quotes;
    }

    /// Records seen, counting a last line without a line break.
    pub(crate) fn records(&self) -> u64 {
        self.records + u64::from(self.pending)
    }

    /// True when the data ended inside a quoted field: the file is cut short.
    pub(crate) fn unterminated(&self) -> bool {
        self.in_quotes
    }
}

/// Reads records one at a time from a buffered reader.
pub(crate) struct Reader<R> {
    inner: R,
    line: u64,
}

/// What is wrong with a CSV record, with the 1-based line it starts on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl<R: BufRead> Reader<R> {
    pub(crate) fn new(inner: R) -> Reader<R> {
        Reader { inner, line: 0 }
    }

    /// The next record, `None` at the end. Fields are `None` for NULL.
    pub(crate) fn next_record(&mut self) -> Result<Option<Vec<Option<String>>>, ReadError> {
        let start = self.line + 1;
        let mut raw = Vec::new();
        // A record may span lines while a quote is open.
        loop {
            let n = self.inner.read_until(b'\n', &mut raw)?;
            if n == 0 {
                break;
            }
            self.line += 1;
            if raw.iter().filter(|&&b| b == b'"').count() % 2 == 0 {
                break;
            }
        }
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.last() == Some(&b'\n') {
            raw.pop();
            if raw.last() == Some(&b'\r') {
                raw.pop();
            }
        }
        parse_record(&raw)
            .map(Some)
            .map_err(|message| ReadError::Malformed {
                line: start,
                message,
            })
    }
}

fn parse_record(raw: &[u8]) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if raw.get(i) == Some(&b'"') {
            let mut value = Vec::new();
            i += 1;
            loop {
                match raw.get(i) {
                    None => return Err("a quoted field is not closed".into()),
                    Some(b'"') if raw.get(i + 1) == Some(&b'"') => {
                        value.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            fields.push(Some(utf8(value)?));
            match raw.get(i) {
                None => return Ok(fields),
                Some(b',') => i += 1,
                Some(_) => return Err("text after a closing quote".into()),
            }
        } else {
            let end = raw[i..]
                .iter()
                .position(|&b| b == b',')
                .map_or(raw.len(), |p| i + p);
            let value = &raw[i..end];
            if value.contains(&b'"') {
                return Err("a quote inside an unquoted field".into());
            }
            fields.push(
                (!value.is_empty())
                    .then(|| utf8(value.to_vec()))
                    .transpose()?,
            );
            if end == raw.len() {
                return Ok(fields);
            }
            i = end + 1;
        }
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "a field is not valid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(fields: &[Option<&str>]) -> String {
        let mut out = Vec::new();
        push_record(&mut out, fields.iter().map(|f| f.map(str::as_bytes)));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn null_and_empty_differ_and_round_trip() {
        let fields = [
            Some("1"),
            None,
            Some(""),
            Some("a,b"),
            Some("say \"hi\"\nbye"),
            Some("\\."),
            Some("ünï"),
        ];
        let line = write(&fields);
        assert_eq!(
            line,
            "1,,\"\",\"a,b\",\"say \"\"hi\"\"\nbye\",\"\\.\",ünï\n"
        );
        let mut r = Reader::new(line.as_bytes());
        let back = r.next_record().unwrap().unwrap();
        let expect: Vec<Option<String>> = fields.iter().map(|f| f.map(String::from)).collect();
        assert_eq!(back, expect);
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn counts_records_across_chunk_boundaries() {
        let text = "id,bio\n1,\"two\nlines\"\n2,\n3,\"\"\"q\"\"\"\n";
        for split in 0..text.len() {
            let mut c = RecordCounter::default();
            c.feed(&text.as_bytes()[..split]);
            c.feed(&text.as_bytes()[split..]);
            assert_eq!(c.records(), 4, "split at {split}");
            assert!(!c.unterminated());
        }
        let mut cut = RecordCounter::default();
        cut.feed(b"id,bio\n1,\"open");
        assert!(cut.unterminated());
    }

    #[test]
    fn malformed_lines_say_where() {
        let mut r = Reader::new("a,b\n1,x\"y\n".as_bytes());
        r.next_record().unwrap();
        let err = r.next_record().unwrap_err().to_string();
        assert_eq!(err, "line 2: a quote inside an unquoted field");
    }
}
