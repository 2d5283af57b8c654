//! The target PostgreSQL version, compared numerically: `11` and `11.0`
//! are the same version, `9.6` is older than `10`, `14.3` older than `14.10`.

use std::fmt;
use std::str::FromStr;

/// A PostgreSQL version, for the rules whose locks or rewrites changed
/// between releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgVersion {
    /// `15` in 15.4; `9.6` counts as major 9, minor 6.
    pub major: u32,
    /// `4` in 15.4.
    pub minor: u32,
}

impl PgVersion {
    /// The version `major.minor`.
    pub const fn new(major: u32, minor: u32) -> PgVersion {
        PgVersion { major, minor }
    }

    /// From `server_version_num` (150004 → 15.4, 90624 → 9.6).
    pub fn from_num(num: u32) -> PgVersion {
        if num >= 100_000 {
            PgVersion::new(num / 10_000, num % 10_000)
        } else {
            // 9.6.24 is 90624: before 10 the first two numbers were the major.
            PgVersion::new(num / 10_000, (num / 100) % 100)
        }
    }

    /// This version is `major` or newer.
    pub fn at_least(self, major: u32) -> bool {
        self >= PgVersion::new(major, 0)
    }

    /// This version is older than `major`.
    pub fn below(self, major: u32) -> bool {
        !self.at_least(major)
    }
}

impl FromStr for PgVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("`{s}` is not a PostgreSQL version: write it like 15, 15.4, 11.0 or 9.6");
        let mut parts = s.trim().split('.');
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let second: Option<u32> = match parts.next() {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None => None,
        };
        if let Some(p) = parts.next() {
            p.parse::<u32>().map_err(|_| bad())?;
        }
        if parts.next().is_some() || major == 0 {
            return Err(bad());
        }
        // 9.6 is (9, 6) and 15.4 is (15, 4): tuples sort the way releases do.
        Ok(PgVersion::new(major, second.unwrap_or(0)))
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> PgVersion {
        s.parse().unwrap()
    }

    #[test]
    fn compares_numerically() {
        assert_eq!(v("11"), v("11.0"));
        assert!(v("9.6") < v("10"));
        assert!(v("14.3") < v("14.10"));
        assert!(v("12").at_least(12));
        assert!(v("11.22").below(12));
        assert!(v("9.6").below(10));
        assert!(v("9.6").at_least(9));
        assert_eq!(v("9.6").to_string(), "9.6");
        assert!("fifteen".parse::<PgVersion>().is_err());
        assert!("15.x".parse::<PgVersion>().is_err());
    }

    #[test]
    fn from_server_version_num() {
        assert_eq!(PgVersion::from_num(150004), v("15.4"));
        assert_eq!(PgVersion::from_num(90624), v("9.6"));
    }
}
