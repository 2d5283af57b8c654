//! Plausible post titles, bodies, comments and profile fields. Words are
//! drawn from short lists; the point is realistic lengths and shapes, not
//! prose.

use super::rng::Rng;

const TOPICS: &[&str] = &[
    "PostgreSQL",
    "SQLite",
    "Rust",
    "database migrations",
    "indexes",
    "backups",
    "on-call",
    "deploys",
    "code review",
    "caching",
    "query plans",
    "connection pools",
    "feature flags",
    "runbooks",
    "observability",
    "sourdough",
    "gardening",
    "travel in Portugal",
    "remote work",
    "espresso",
    "zero-downtime changes",
    "load testing",
];

const TITLES: &[&str] = &[
    "Notes on {}",
    "What I learned about {}",
    "Five mistakes with {}",
    "A gentle introduction to {}",
    "Why we moved to {}",
    "How we cut our {} time in half",
    "The case against {}",
    "{}: a checklist",
    "Ask me anything about {}",
    "Lessons from a year of {}",
    "{} in production",
    "Getting started with {}",
];

const WORDS: &[&str] = &[
    "the", "a", "we", "our", "team", "database", "table", "query", "index", "lock", "minute",
    "users", "traffic", "change", "review", "plan", "step", "night", "morning", "release", "fast",
    "slow", "safe", "careful", "simple", "small", "large", "again", "first", "after", "before",
    "because", "while", "with", "without", "never", "always", "often", "ran", "broke", "fixed",
    "tested", "measured", "learned", "wrote", "moved", "split", "rolled", "back", "forward",
    "column", "row", "batch", "coffee", "garden", "bread", "city", "train", "weekend", "budget",
];

const COMMENTS: &[&str] = &[
    "Great post!",
    "Thanks, this helped a lot.",
    "I disagree with the part about {}.",
    "We tried the same thing with {} last year.",
    "Do you have numbers for {}?",
    "Bookmarked.",
    "This matches what we saw with {}.",
    "Could you write a follow-up on {}?",
    "+1",
    "Typo in the second paragraph, otherwise spot on.",
];

const CITIES: &[&str] = &[
    "Lisbon",
    "São Paulo",
    "Zürich",
    "Kraków",
    "Montréal",
    "Reykjavík",
    "New York",
    "Tokyo",
    "Lagos",
    "Berlin",
    "Melbourne",
    "Mexico City",
];

pub(crate) fn title(rng: &mut Rng) -> String {
    let topic = rng.pick(TOPICS);
    rng.pick(TITLES).replacen("{}", topic, 1)
}

/// One sentence of 5 to 15 words, capitalised, with a full stop.
pub(crate) fn sentence(rng: &mut Rng) -> String {
    let n = rng.between(5, 15);
    let mut s = String::with_capacity(96);
    for i in 0..n {
        let word = rng.pick(WORDS);
        if i == 0 {
            let mut chars = word.chars();
            if let Some(c) = chars.next() {
                s.extend(c.to_uppercase());
                s.push_str(chars.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(word);
        }
    }
    s.push('.');
    s
}

/// `lo` to `hi` sentences.
pub(crate) fn paragraph(rng: &mut Rng, lo: u64, hi: u64) -> String {
    let n = rng.between(lo, hi);
    (0..n).map(|_| sentence(rng)).collect::<Vec<_>>().join(" ")
}

pub(crate) fn comment(rng: &mut Rng) -> String {
    if rng.chance(300) {
        return paragraph(rng, 1, 3);
    }
    let topic = rng.pick(TOPICS);
    rng.pick(COMMENTS).replacen("{}", topic, 1)
}

pub(crate) fn city(rng: &mut Rng) -> &'static str {
    rng.pick(CITIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_capitalised_and_end_with_a_stop() {
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let s = sentence(&mut rng);
            assert!(s.ends_with('.'));
            assert!(s.chars().next().unwrap().is_uppercase(), "{s}");
            let words = s.split(' ').count();
            assert!((5..=15).contains(&words), "{s}");
        }
        assert!(!title(&mut rng).contains("{}"));
        assert!(!comment(&mut rng).contains("{}"));
    }
}
