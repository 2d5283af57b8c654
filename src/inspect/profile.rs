//! What a text column holds, in the terms a transformation of it needs:
//! empty and blank values, word counts, special characters, lengths.
//! Built one value at a time ([`TextProfile::observe`]) while the column
//! streams past, so memory does not grow with the table.

use serde::Serialize;

/// How many examples each bucket keeps.
pub(crate) const EXAMPLES: usize = 3;
/// Examples longer than this many characters are cut.
const EXAMPLE_CHARS: usize = 60;

/// A count with up to [`EXAMPLES`] distinct example values (the first ones
/// met in scan order).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Bucket {
    pub(crate) count: u64,
    pub(crate) examples: Vec<String>,
}

impl Bucket {
    fn add(&mut self, value: &str) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            let example = shorten(value);
            if !self.examples.contains(&example) {
                self.examples.push(example);
            }
        }
    }
}

/// Cuts a long value for display, marking the cut with `…`.
pub(crate) fn shorten(value: &str) -> String {
    match value.char_indices().nth(EXAMPLE_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// Non-NULL values by how many words they have after trimming.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Words {
    pub(crate) one: Bucket,
    pub(crate) two: Bucket,
    pub(crate) three_plus: Bucket,
}

/// Values with characters a naive transformation trips on. One value can
/// be in several categories.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Special {
    /// Accents and anything else outside ASCII: é, ñ, ü, ø.
    pub(crate) non_ascii: Bucket,
    /// ' and its typographic forms (’ ʼ).
    pub(crate) apostrophe: Bucket,
    /// - and the Unicode hyphens.
    pub(crate) hyphen: Bucket,
    /// Other punctuation: . , ( ) & / and the like.
    pub(crate) other_punctuation: Bucket,
    /// Leading or trailing whitespace (values that are only whitespace are
    /// counted as blank instead).
    pub(crate) edge_whitespace: Bucket,
    /// Whitespace inside the value that is not one plain space: doubled
    /// spaces, tabs, newlines, no-break spaces.
    pub(crate) inner_whitespace: Bucket,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Length {
    pub(crate) min: u64,
    pub(crate) max: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct TextProfile {
    /// Non-NULL values seen.
    pub(crate) values: u64,
    /// Exactly ''.
    pub(crate) empty: Bucket,
    /// Not empty, but only whitespace.
    pub(crate) blank: Bucket,
    pub(crate) words: Words,
    pub(crate) special: Special,
    /// Length in characters of the non-NULL values.
    pub(crate) length: Option<Length>,
}

impl TextProfile {
    pub(crate) fn observe(&mut self, value: Option<&str>) {
        let Some(s) = value else { return };
        self.values += 1;
        let chars = s.chars().count() as u64;
        self.length = Some(match self.length {
            None => Length {
                min: chars,
                max: chars,
            },
            Some(l) => Length {
                min: l.min.min(chars),
                max: l.max.max(chars),
            },
        });
        let trimmed = s.trim();
        if s.is_empty() {
            self.empty.add(s);
        } else if trimmed.is_empty() {
            self.blank.add(s);
        } else {
            match trimmed.split_whitespace().count() {
                1 => self.words.one.add(s),
                2 => self.words.two.add(s),
                _ => self.words.three_plus.add(s),
            }
            if trimmed.len() != s.len() {
                self.special.edge_whitespace.add(s);
            }
            if has_odd_inner_space(trimmed) {
                self.special.inner_whitespace.add(s);
            }
        }
        if !s.is_ascii() {
            self.special.non_ascii.add(s);
        }
        if s.contains(['\'', '’', 'ʼ']) {
            self.special.apostrophe.add(s);
        }
        if s.contains(['-', '\u{2010}', '\u{2011}']) {
            self.special.hyphen.add(s);
        }
        if s.chars().any(is_other_punctuation) {
            self.special.other_punctuation.add(s);
        }
    }
}

fn has_odd_inner_space(trimmed: &str) -> bool {
    let mut previous_space = false;
    for c in trimmed.chars() {
        if c.is_whitespace() {
            if previous_space || c != ' ' {
                return true;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
    }
    false
}

fn is_other_punctuation(c: char) -> bool {
    match c {
        '\'' | '-' | '’' | '\u{2010}' | '\u{2011}' => false,
        c if c.is_ascii_punctuation() => true,
        // General Punctuation (dashes, quotes, bullets, ellipsis) and the
        // Latin-1 ones people type: ¡ ¿ « » ·
        '\u{2012}'..='\u{2027}' | '¡' | '¿' | '«' | '»' | '·' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(values: &[Option<&str>]) -> TextProfile {
        let mut p = TextProfile::default();
        for v in values {
            p.observe(*v);
        }
        p
    }

    #[test]
    fn words_after_trimming() {
        let p = profile(&[
            Some("Cher"),
            Some("  Maria Garcia "),
            Some("Maria  Garcia"),
            Some("John van der Berg"),
            Some(""),
            Some("   "),
            None,
        ]);
        assert_eq!(p.values, 6);
        assert_eq!(p.words.one.count, 1);
        assert_eq!(p.words.two.count, 2);
        assert_eq!(p.words.three_plus.count, 1);
        assert_eq!(p.empty.count, 1);
        assert_eq!(p.blank.count, 1);
        assert_eq!(p.special.edge_whitespace.examples, ["  Maria Garcia "]);
        assert_eq!(p.special.inner_whitespace.examples, ["Maria  Garcia"]);
        assert_eq!(p.length, Some(Length { min: 0, max: 17 }));
    }

    #[test]
    fn special_characters_by_category() {
        let p = profile(&[
            Some("Seán O'Brien"),
            Some("D’Souza"),
            Some("Emma Smith-Jones"),
            Some("John F. Kennedy"),
            Some("Tab\there"),
        ]);
        assert_eq!(p.special.non_ascii.examples, ["Seán O'Brien", "D’Souza"]);
        assert_eq!(p.special.apostrophe.count, 2);
        assert_eq!(p.special.hyphen.examples, ["Emma Smith-Jones"]);
        assert_eq!(p.special.other_punctuation.examples, ["John F. Kennedy"]);
        assert_eq!(p.special.inner_whitespace.examples, ["Tab\there"]);
    }

    #[test]
    fn at_most_three_distinct_examples() {
        let p = profile(&[Some("a"), Some("a"), Some("b"), Some("c"), Some("d")]);
        assert_eq!(p.words.one.count, 5);
        assert_eq!(p.words.one.examples, ["a", "b", "c"]);
        let long = "x".repeat(100);
        let p = profile(&[Some(&long)]);
        assert_eq!(p.words.one.examples[0].chars().count(), EXAMPLE_CHARS + 1);
    }
}
