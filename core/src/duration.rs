//! Durations written the way Kubernetes and Linkerd write them: `3s`, `500ms`, `1m30s`.
//!
//! Linkerd's `probeSpec.period` is a Go duration and a bare integer (`"3"`) is rejected there; we
//! reject it too, with a message that suggests the fix, so configurations stay portable.

use std::{fmt, str::FromStr, time::Duration as StdDuration};

/// A non-negative duration parsed from and printed as a Go-style duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    /// Milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(StdDuration::from_millis(ms))
    }

    /// The standard-library value, for timers.
    pub const fn as_std(self) -> StdDuration {
        self.0
    }
}

impl From<StdDuration> for Duration {
    fn from(value: StdDuration) -> Self {
        Self(value)
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseDurationError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty; write a number with a unit, e.g. 3s"));
        }
        if s == "0" {
            return Ok(Self::default());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("missing unit; write e.g. \"3s\" for three seconds"));
        }
        let mut total_nanos: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.')
                .count();
            if num_len == 0 {
                return Err(err("expected a number"));
            }
            let number: f64 = rest[..num_len]
                .parse()
                .map_err(|_| err("malformed number"))?;
            rest = &rest[num_len..];
            let unit_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphabetic() || *b == 0xc2 || *b == 0xb5)
                .count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let nanos_per_unit: f64 = match unit {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => return Err(err("missing unit; valid units are ns, us, ms, s, m, h")),
                _ => return Err(err("unknown unit; valid units are ns, us, ms, s, m, h")),
            };
            let nanos = number * nanos_per_unit;
            if !nanos.is_finite() || nanos > 1e20 {
                return Err(err("too large"));
            }
            // Float-to-int is saturating and the bound above keeps it exact enough for durations.
            total_nanos += nanos.round() as u128;
        }
        let nanos = u64::try_from(total_nanos).map_err(|_| err("too large"))?;
        Ok(Self(StdDuration::from_nanos(nanos)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total_ms = self.0.as_millis();
        if total_ms == 0 {
            return f.write_str("0s");
        }
        if !total_ms.is_multiple_of(1000) {
            return write!(f, "{total_ms}ms");
        }
        let mut secs = total_ms / 1000;
        let hours = secs / 3600;
        secs %= 3600;
        let minutes = secs / 60;
        secs %= 60;
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        if secs > 0 {
            write!(f, "{secs}s")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Duration, String> {
        s.parse::<Duration>().map_err(|e| e.to_string())
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0"), Ok(Duration::default()));
    }

    #[test]
    fn bare_integer_is_rejected_with_a_hint() {
        assert_eq!(
            parse("3").unwrap_err(),
            "invalid duration \"3\": missing unit; write e.g. \"3s\" for three seconds"
        );
    }

    #[test]
    fn unknown_unit_is_rejected() {
        assert_eq!(
            parse("3x").unwrap_err(),
            "invalid duration \"3x\": unknown unit; valid units are ns, us, ms, s, m, h"
        );
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["3s", "1m30s", "2h", "250ms", "0s", "1h1m1s"] {
            assert_eq!(parse(s).map(|d| d.to_string()), Ok(s.to_string()));
        }
    }
}
