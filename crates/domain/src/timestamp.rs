//! Timestamps as pipelines send them, stored as UTC.
//!
//! Accepted:
//! - RFC 3339 with or without a fraction and with `Z` or an offset
//!   (`2025-11-19T10:20:32Z`, `2025-11-19T10:20:32.846+02:00`); a space may stand for the `T`.
//! - The same without an offset (`2025-11-19T10:20:32`), read as UTC.
//! - Epoch seconds or epoch milliseconds, as JSON numbers or numeric strings
//!   (`1700385632`, `1700385632846`). Values of 100 000 000 000 and more are milliseconds
//!   (as seconds they would lie after the year 5000; as milliseconds they lie after 1973).
//!
//! Precision is kept to the microsecond, so a value survives every storage backend unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Epoch values at or above this are milliseconds.
pub const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// A point in time, in UTC, to the microsecond.
///
/// Held as microseconds since the Unix epoch: DORA queries compare, sort and convert hundreds of
/// thousands of these per request, and an `OffsetDateTime` made each of those a calendar
/// computation (`cargo xtask bench dora`, docs/benchmarks.md). `time` is used at the edges:
/// parsing, formatting and durations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = DateTime, example = "2025-11-19T10:20:32.846Z"))]
pub struct Timestamp(i64);

/// The last microsecond `time` formats without its `large-dates` feature:
/// 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A value that is not a timestamp shiplog can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a timestamp: send RFC 3339 (2025-11-19T10:20:32Z or 2025-11-19T10:20:32.846Z) or epoch seconds or milliseconds (1700385632 or 1700385632846), at or after 1970"
)]
pub struct InvalidTimestamp {
    /// What was sent (cut to 64 characters).
    pub given: String,
}

impl InvalidTimestamp {
    fn new(given: &str) -> Self {
        Self {
            given: given.chars().take(64).collect(),
        }
    }
}

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Self = Self(0);

    /// Reads any accepted text form: RFC 3339 with any offset, or epoch seconds or
    /// milliseconds as digits.
    ///
    /// ```
    /// use shiplog_domain::timestamp::Timestamp;
    /// let a = Timestamp::parse("2025-03-03T12:00:00+02:00").unwrap();
    /// let b = Timestamp::parse("1740996000").unwrap();
    /// assert_eq!(a, b);
    /// assert_eq!(a.to_string(), "2025-03-03T10:00:00Z");
    /// assert!(Timestamp::parse("yesterday").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Self, InvalidTimestamp> {
        let trimmed = value.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let number: i64 = trimmed.parse().map_err(|_| InvalidTimestamp::new(value))?;
            return Self::from_epoch(number).map_err(|_| InvalidTimestamp::new(value));
        }
        let mut text = trimmed.to_ascii_uppercase();
        if text.len() > 10 && text.as_bytes().get(10) == Some(&b' ') {
            text.replace_range(10..11, "T");
        }
        let parsed = OffsetDateTime::parse(&text, &Rfc3339).or_else(|_| {
            let naive = format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
            );
            PrimitiveDateTime::parse(&text, naive).map(PrimitiveDateTime::assume_utc)
        });
        parsed
            .ok()
            .and_then(|at| Self::from_offset(at).ok())
            .ok_or_else(|| InvalidTimestamp::new(value))
    }

    /// Reads epoch seconds or milliseconds, told apart by magnitude.
    pub fn from_epoch(value: i64) -> Result<Self, InvalidTimestamp> {
        let unit = if value >= MILLIS_THRESHOLD {
            1_000
        } else {
            MICROS_PER_SECOND
        };
        value
            .checked_mul(unit)
            .and_then(Self::in_range)
            .ok_or_else(|| InvalidTimestamp::new(&value.to_string()))
    }

    /// Reads a JSON number that may carry a fraction of a second.
    pub fn from_epoch_f64(value: f64) -> Result<Self, InvalidTimestamp> {
        let invalid = || InvalidTimestamp::new(&value.to_string());
        if !(0.0..=1e16).contains(&value) {
            return Err(invalid());
        }
        let seconds = if value >= MILLIS_THRESHOLD as f64 {
            value / 1000.0
        } else {
            value
        };
        let micros = (seconds * 1_000_000.0).round();
        if micros > MAX_MICROS as f64 {
            return Err(invalid());
        }
        // Within 0..=MAX_MICROS by the checks above, so the cast is exact enough and in range.
        Self::in_range(micros as i64).ok_or_else(invalid)
    }

    /// Converts any offset to UTC and drops sub-microsecond digits.
    pub fn from_offset(at: OffsetDateTime) -> Result<Self, InvalidTimestamp> {
        let utc = at.to_offset(UtcOffset::UTC);
        i64::try_from(utc.unix_timestamp_nanos().div_euclid(1000))
            .ok()
            .and_then(Self::in_range)
            .ok_or_else(|| InvalidTimestamp::new(&utc.to_string()))
    }

    /// Builds from whole Unix seconds (tests, fixtures, the clock adapter).
    pub fn from_unix_seconds(seconds: i64) -> Result<Self, InvalidTimestamp> {
        seconds
            .checked_mul(MICROS_PER_SECOND)
            .and_then(Self::in_range)
            .ok_or_else(|| InvalidTimestamp::new(&seconds.to_string()))
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Builds from microseconds since the Unix epoch (storage adapters).
    pub fn from_unix_micros(micros: i64) -> Result<Self, InvalidTimestamp> {
        Self::in_range(micros).ok_or_else(|| InvalidTimestamp::new(&micros.to_string()))
    }

    /// Whole seconds since the Unix epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SECOND)
    }

    /// The underlying `time` value, in UTC.
    pub fn as_offset_date_time(self) -> OffsetDateTime {
        // Every value in range is one `time` represents (MAX_MICROS is its last).
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `self - earlier`.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::microseconds(self.0 - earlier.0)
    }

    /// `self + duration` (to the microsecond), or `None` outside 1970 to 9999.
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        i64::try_from(duration.whole_microseconds())
            .ok()
            .and_then(|micros| self.0.checked_add(micros))
            .and_then(Self::in_range)
    }

    /// RFC 3339 in UTC (`2025-11-19T10:20:32.846Z`).
    pub fn to_rfc3339(self) -> String {
        // Formatting a UTC value within years 1970..=9999 as RFC 3339 cannot fail.
        self.as_offset_date_time()
            .format(&Rfc3339)
            .unwrap_or_default()
    }

    /// `micros` as a timestamp when it lies from 1970 to the end of 9999.
    const fn in_range(micros: i64) -> Option<Self> {
        if micros >= 0 && micros <= MAX_MICROS {
            Some(Self(micros))
        } else {
            None
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// Accepts every form [`Timestamp::parse`] does, as a string or a JSON number.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or epoch seconds or milliseconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Timestamp::from_epoch(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                let v = i64::try_from(v)
                    .map_err(|_| E::custom(InvalidTimestamp::new(&v.to_string())))?;
                Timestamp::from_epoch(v).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_epoch_f64(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> String {
        Timestamp::parse(s).unwrap().to_rfc3339()
    }

    #[test]
    fn the_seeds_formats_agree() {
        assert_eq!(ts("2025-11-19T10:20:32Z"), "2025-11-19T10:20:32Z");
        assert_eq!(ts("2025-11-19T10:20:32.846Z"), "2025-11-19T10:20:32.846Z");
        // The Hivel document gives these two epoch values as examples of the same moment
        // in its two precisions; 1700385632 is 2023-11-19T09:20:32Z.
        assert_eq!(ts("1700385632"), "2023-11-19T09:20:32Z");
        assert_eq!(ts("1700385632846"), "2023-11-19T09:20:32.846Z");
        assert_eq!(ts("2024-01-15T10:30:00Z"), "2024-01-15T10:30:00Z");
        assert_eq!(ts("2025-09-22T12:15:30Z"), "2025-09-22T12:15:30Z");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(ts("2025-11-19T12:20:32+02:00"), "2025-11-19T10:20:32Z");
        assert_eq!(ts("2025-11-19T05:20:32.5-05:00"), "2025-11-19T10:20:32.5Z");
    }

    #[test]
    fn missing_offset_means_utc_and_space_or_lowercase_are_fine() {
        assert_eq!(ts("2025-11-19T10:20:32"), "2025-11-19T10:20:32Z");
        assert_eq!(
            ts("2025-11-19T10:20:32.123456"),
            "2025-11-19T10:20:32.123456Z"
        );
        assert_eq!(ts("2025-11-19 10:20:32Z"), "2025-11-19T10:20:32Z");
        assert_eq!(ts(" 2025-11-19t10:20:32z "), "2025-11-19T10:20:32Z");
    }

    #[test]
    fn precision_stops_at_microseconds() {
        assert_eq!(
            ts("2025-11-19T10:20:32.123456789Z"),
            "2025-11-19T10:20:32.123456Z"
        );
    }

    #[test]
    fn json_numbers_and_strings_deserialize_alike() {
        let a: Timestamp = serde_json::from_str("1700385632846").unwrap();
        let b: Timestamp = serde_json::from_str("\"1700385632846\"").unwrap();
        let c: Timestamp = serde_json::from_str("1700385632.846").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"2023-11-19T09:20:32.846Z\""
        );
    }

    #[test]
    fn bad_values_are_errors_with_the_fix() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-11-19",
            "-5",
            "1969-12-31T23:59:59Z",
            "99999999999999999999",
            "1e10",
        ] {
            let err = Timestamp::parse(bad).unwrap_err();
            assert!(err.to_string().contains("send RFC 3339"), "{bad:?}");
        }
        assert!(Timestamp::from_epoch(-1).is_err());
        assert!(Timestamp::from_epoch(i64::MAX).is_err());
        assert!(Timestamp::from_epoch_f64(f64::NAN).is_err());
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }

    #[test]
    fn the_threshold_separates_seconds_from_milliseconds() {
        let below = Timestamp::from_epoch(MILLIS_THRESHOLD - 1).unwrap();
        let at = Timestamp::from_epoch(MILLIS_THRESHOLD).unwrap();
        assert!(below.to_rfc3339().starts_with("5138-"));
        assert!(at.to_rfc3339().starts_with("1973-"));
    }

    #[test]
    fn the_range_is_1970_to_the_end_of_9999() {
        let last = Timestamp::parse("9999-12-31T23:59:59.999999Z").unwrap();
        assert_eq!(last.unix_micros(), MAX_MICROS);
        assert!(Timestamp::from_unix_micros(MAX_MICROS + 1).is_err());
        assert!(Timestamp::from_unix_micros(-1).is_err());
        assert_eq!(
            Timestamp::from_unix_micros(0).unwrap(),
            Timestamp::UNIX_EPOCH
        );
        assert!(last.checked_add(Duration::microseconds(1)).is_none());
        assert!(Timestamp::from_unix_seconds(253_402_300_800).is_err());
        assert!(
            Timestamp::from_epoch_f64(9e15).is_err(),
            "after 9999 in milliseconds"
        );
        assert_eq!(
            format!("{last:?}"),
            "Timestamp(9999-12-31T23:59:59.999999Z)"
        );
    }

    #[test]
    fn order_and_durations_follow_time() {
        let a = Timestamp::parse("2025-11-19T10:20:32.000001Z").unwrap();
        let b = Timestamp::parse("2025-11-19T12:20:32+02:00").unwrap();
        assert!(b < a);
        assert_eq!(a.since(b), Duration::microseconds(1));
        assert_eq!(b.checked_add(Duration::microseconds(1)), Some(a));
        assert_eq!(a.unix_seconds(), 1_763_547_632);
        assert_eq!(a.as_offset_date_time().microsecond(), 1);
    }

    #[test]
    fn micros_round_trip() {
        let t = Timestamp::parse("2025-11-19T10:20:32.846123Z").unwrap();
        assert_eq!(Timestamp::from_unix_micros(t.unix_micros()).unwrap(), t);
    }
}
