//! Realistic, messy person names for `users.name`.
//!
//! Messy on purpose: later migrations split `name` into first and last name,
//! and a split that only ever saw "Maria Garcia" proves nothing. Most names
//! are two words, but the generator also gives three and more words
//! ("John van der Berg", "José María López García"), single words ("Cher"),
//! empty strings, NULL, whitespace-only values, leading, trailing and
//! doubled spaces, and the pools carry accents, apostrophes and hyphens.

use super::rng::Rng;

/// What kind of name a value is; the weights below are per mille.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// "Maria Garcia", "Seán O'Brien", "Emma Smith-Jones"
    TwoWords,
    /// "John van der Berg"
    Particle,
    /// "Mary Anne Smith"
    DoubleFirst,
    /// "José María López García"
    DoubleSurname,
    /// "John F. Kennedy"
    Initial,
    /// "Cher"
    Single,
    /// ''
    Empty,
    /// NULL
    Null,
    /// "  Maria Garcia", "Maria Garcia "
    Padded,
    /// "Maria  Garcia"
    DoubleSpace,
    /// "   "
    Blank,
}

const WEIGHTS: [(Kind, u64); 11] = [
    (Kind::TwoWords, 660),
    (Kind::Particle, 40),
    (Kind::DoubleFirst, 40),
    (Kind::DoubleSurname, 30),
    (Kind::Initial, 20),
    (Kind::Single, 40),
    (Kind::Empty, 30),
    (Kind::Null, 50),
    (Kind::Padded, 50),
    (Kind::DoubleSpace, 30),
    (Kind::Blank, 10),
];

/// The first rows of every seed run: one of each edge case, so that even
/// `keel seed --users 20` has them all. Random names follow.
pub(crate) const SHOWCASE: [Option<&str>; 16] = [
    Some("Maria Garcia"),
    Some("John van der Berg"),
    Some("Mary Anne Smith"),
    Some("José María López García"),
    Some("Prince"),
    Some(""),
    None,
    Some("Seán O'Brien"),
    Some("Chiara D'Angelo"),
    Some("Emma Smith-Jones"),
    Some("Søren Müller"),
    Some("  Maria Garcia"),
    Some("Maria Garcia "),
    Some("Maria  Garcia"),
    Some("John F. Kennedy"),
    Some("   "),
];

const FIRST: &[&str] = &[
    "Maria",
    "John",
    "José",
    "Zoë",
    "Søren",
    "Björn",
    "Chloé",
    "Łukasz",
    "François",
    "Renée",
    "Siobhán",
    "Aoife",
    "Mohammed",
    "Wei",
    "Yuki",
    "Priya",
    "Olga",
    "Ana",
    "Liam",
    "Emma",
    "Noah",
    "Olivia",
    "Mateo",
    "Sofía",
    "Lucía",
    "Jürgen",
    "Ingrid",
    "Núria",
    "Ahmet",
    "Fatima",
    "James",
    "Mary",
    "David",
    "Sarah",
    "Michael",
    "Laura",
    "Daniel",
    "Anna",
    "Thomas",
    "Julia",
    "Pedro",
    "Camille",
    "Jean-Luc",
    "Anne-Marie",
    "D'Andre",
    "Kwame",
    "Amara",
    "Hiroshi",
    "Elena",
    "Mia",
];

const LAST: &[&str] = &[
    "Garcia",
    "Smith",
    "O'Brien",
    "D'Angelo",
    "Müller",
    "Núñez",
    "Smith-Jones",
    "López",
    "Østergaard",
    "Nguyen",
    "Kowalski",
    "Dubois",
    "Johansson",
    "Brown",
    "Wilson",
    "Rossi",
    "Schmidt",
    "Yamamoto",
    "Kim",
    "Patel",
    "O'Connor",
    "García-Márquez",
    "Lefèvre",
    "Çelik",
    "Silva",
    "Ivanova",
    "Taylor",
    "Anderson",
    "Okafor",
    "Hernández",
    "Jones",
    "Williams",
    "Martin",
    "Lee",
    "Walker",
    "Young",
    "Fischer",
    "Weiß",
    "Novák",
    "Andersen",
    "Costa",
    "Mensah",
    "Lloyd-Webber",
    "MacDonald",
    "Fitzgerald",
    "Papadopoulos",
    "Horvat",
    "Tanaka",
    "Sørensen",
    "Zhang",
    "D’Souza",
];

const PARTICLE_SURNAMES: &[&str] = &[
    "van der Berg",
    "de la Cruz",
    "von Neumann",
    "da Silva",
    "van Dijk",
    "de los Santos",
    "del Río",
    "di Stefano",
    "le Roux",
    "ter Horst",
    "van den Broek",
    "dos Santos",
];

const DOUBLE_FIRST: &[&str] = &[
    "Mary Anne",
    "Jean Paul",
    "José María",
    "Anna Lena",
    "Maria José",
    "John Paul",
    "Sarah Jane",
    "Juan Carlos",
    "Ana Sofía",
    "Karl Heinz",
];

const SINGLE: &[&str] = &[
    "Prince", "Cher", "Madonna", "Björk", "Sting", "Pelé", "Zendaya", "Rihanna", "Adele",
    "Beyoncé", "Moby", "Shakira",
];

/// Picks a kind by the weights above.
pub(crate) fn kind(rng: &mut Rng) -> Kind {
    let mut roll = rng.below(1000);
    for (kind, weight) in WEIGHTS {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    Kind::TwoWords
}

/// The name of the `index`-th user of a run: the showcase first, then random.
pub(crate) fn name(rng: &mut Rng, index: u64) -> Option<String> {
    if let Some(fixed) = SHOWCASE.get(index as usize) {
        return fixed.map(str::to_string);
    }
    random(rng)
}

/// One random name.
pub(crate) fn random(rng: &mut Rng) -> Option<String> {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let name = match kind(rng) {
        Kind::TwoWords => format!("{first} {last}"),
        Kind::Particle => format!("{first} {}", rng.pick(PARTICLE_SURNAMES)),
        Kind::DoubleFirst => format!("{} {last}", rng.pick(DOUBLE_FIRST)),
        Kind::DoubleSurname => {
            // Half of them with a double first name: "José María López García".
            let first = if rng.chance(500) {
                rng.pick(DOUBLE_FIRST)
            } else {
                first
            };
            format!("{first} {last} {}", rng.pick(LAST))
        }
        Kind::Initial => {
            let initial = (b'A' + rng.below(26) as u8) as char;
            format!("{first} {initial}. {last}")
        }
        Kind::Single => rng.pick(SINGLE).to_string(),
        Kind::Empty => String::new(),
        Kind::Null => return None,
        Kind::Padded => match rng.below(3) {
            0 => format!(" {first} {last}"),
            1 => format!("{first} {last}  "),
            _ => format!("  {first} {last} "),
        },
        Kind::DoubleSpace => format!("{first}  {last}"),
        Kind::Blank => " ".repeat(1 + rng.below(3) as usize),
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Share (in %) of `n` random names that satisfy `f`.
    fn share(f: impl Fn(Option<&str>) -> bool) -> f64 {
        let n = 20_000;
        let mut rng = Rng::new(42);
        let hits = (0..n).filter(|_| f(random(&mut rng).as_deref())).count();
        hits as f64 * 100.0 / n as f64
    }

    /// What, lowest and highest share in %, and the test.
    type Case = (&'static str, f64, f64, fn(Option<&str>) -> bool);

    fn words(s: Option<&str>) -> Option<usize> {
        s.map(|s| s.split_whitespace().count())
    }

    #[test]
    fn mostly_two_words() {
        let two = share(|s| words(s) == Some(2));
        assert!((70.0..85.0).contains(&two), "two words: {two:.1}%");
    }

    #[test]
    fn every_edge_case_has_a_real_share() {
        let cases: [Case; 11] = [
            ("NULL", 3.5, 6.5, |s| s.is_none()),
            ("empty", 2.0, 4.0, |s| s == Some("")),
            ("blank", 0.5, 1.5, |s| {
                s.is_some_and(|s| !s.is_empty() && s.trim().is_empty())
            }),
            ("one word", 3.0, 5.5, |s| words(s) == Some(1)),
            ("three or more words", 10.0, 16.0, |s| {
                words(s).is_some_and(|n| n >= 3)
            }),
            ("four or more words", 2.0, 4.0, |s| {
                words(s).is_some_and(|n| n >= 4)
            }),
            ("accents", 15.0, 60.0, |s| s.is_some_and(|s| !s.is_ascii())),
            ("apostrophes", 3.0, 20.0, |s| {
                s.is_some_and(|s| s.contains('\''))
            }),
            ("hyphens", 3.0, 20.0, |s| s.is_some_and(|s| s.contains('-'))),
            ("leading or trailing space", 4.0, 7.5, |s| {
                s.is_some_and(|s| !s.trim().is_empty() && s.trim() != s)
            }),
            ("double space inside", 2.0, 4.5, |s| {
                s.is_some_and(|s| s.trim().contains("  "))
            }),
        ];
        for (what, lo, hi, f) in cases {
            let got = share(f);
            assert!(
                (lo..hi).contains(&got),
                "{what}: {got:.2}% not in {lo}..{hi}"
            );
        }
    }

    #[test]
    fn no_tabs_or_newlines() {
        assert_eq!(
            share(|s| s.is_some_and(|s| s.contains(['\t', '\n', '\r']))),
            0.0
        );
    }

    #[test]
    fn showcase_comes_first_then_random() {
        let mut rng = Rng::new(1);
        let names: Vec<Option<String>> = (0..20).map(|i| name(&mut rng, i)).collect();
        assert_eq!(names[0].as_deref(), Some("Maria Garcia"));
        assert_eq!(names[6], None);
        assert_eq!(names[5].as_deref(), Some(""));
        let mut again = Rng::new(1);
        let second: Vec<Option<String>> = (0..20).map(|i| name(&mut again, i)).collect();
        assert_eq!(names, second, "same seed, same names");
    }
}
