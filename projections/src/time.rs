//! Timestamps as integer milliseconds since the Unix epoch, written as RFC 3339 in JSON.
//!
//! The pure crate never reads a clock: every time it sees arrives in a command or an entry.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 0000-01-01T00:00:00.000Z, the first instant RFC 3339 can write in UTC.
const RFC3339_FIRST_MS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write in UTC.
const RFC3339_LAST_MS: i64 = 253_402_300_799_999;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn milliseconds(self) -> i64 {
        self.0
    }

    pub fn plus_milliseconds(self, milliseconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(milliseconds))
    }

    /// RFC 3339 text with millisecond precision in UTC, e.g. `2026-11-23T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(moment) => moment.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => format!("@{}ms", self.0),
        }
    }

    /// Parses RFC 3339 as the protocol writes it: `T` between date and time, upper-case `Z` or a
    /// numeric offset, so that every reader agrees on the instant (chrono alone would also take a
    /// space and a lower-case `z`). Digits beyond the millisecond are dropped, as PROTOCOL.md
    /// says: Python's `isoformat()` writes six, and truncation (not rounding) keeps the instant
    /// inside the second the client named.
    ///
    /// The instant must fall in the years 0000 to 9999 in UTC, the only ones RFC 3339 can write:
    /// `0000-01-01T00:00:00+01:00` is in year −1 in UTC and `9999-12-31T23:00:00-01:00` in year
    /// 10000, and neither could be written back in the UTC form veche writes.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 || bytes[10] != b'T' || text.contains(['t', 'z', ' ']) {
            return None;
        }
        if let Some(dot) = text.find('.') {
            let digits = text[dot + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                return None;
            }
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|moment| Timestamp(moment.timestamp_millis()))
            .filter(|moment| (RFC3339_FIRST_MS..=RFC3339_LAST_MS).contains(&moment.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix time has no leap seconds, so second 60 (RFC 3339 allows it) is read as the first
    /// second of the next minute, as PROTOCOL.md says: both name the same millisecond and are
    /// written back as `:00`.
    #[test]
    fn a_leap_second_reads_as_the_first_second_of_the_next_minute() {
        let read = |text| Timestamp::parse_rfc3339(text).map(Timestamp::to_rfc3339);
        assert_eq!(
            read("2016-12-31T23:59:60.500Z").as_deref(),
            Some("2017-01-01T00:00:00.500Z")
        );
        assert_eq!(
            read("2026-06-30T23:59:60Z").as_deref(),
            Some("2026-07-01T00:00:00.000Z")
        );
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339_text() {
        let moment = Timestamp(1_795_000_000_123);
        let text = moment.to_rfc3339();
        assert_eq!(text, "2026-11-18T11:06:40.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&text), Some(moment));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T14:06:40.123+03:00"),
            Some(Timestamp(1_795_000_000_123))
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18 11:06:40.123Z"), None);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T11:06:40.123z"), None);
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18T11:06:40.Z"), None);
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T11:06:40Z"),
            Some(Timestamp(1_795_000_000_000))
        );
    }

    #[test]
    fn digits_beyond_the_millisecond_are_dropped_not_rounded() {
        // Python's `datetime.isoformat()` writes microseconds.
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T11:06:40.123999+00:00"),
            Some(Timestamp(1_795_000_000_123))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T11:06:40.1234Z"),
            Some(Timestamp(1_795_000_000_123))
        );
        // Before 1970 truncation still moves towards the earlier millisecond of the same second.
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59.999999Z"),
            Some(Timestamp(-1))
        );
    }

    #[test]
    fn an_instant_outside_years_0000_to_9999_in_utc_is_refused() {
        // Found by the `envelope` fuzz target's round trip: these parsed, and were then written
        // as `-0001-12-31T23:59:00.000Z` and `+10000-01-01T00:59:59.000Z`, which do not parse.
        assert_eq!(
            Timestamp::parse_rfc3339("0000-01-01T00:00:00.000+00:01"),
            None
        );
        assert_eq!(Timestamp::parse_rfc3339("9999-12-31T23:59:59-01:00"), None);
        for edge in ["0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"] {
            let moment = Timestamp::parse_rfc3339(edge);
            assert_eq!(moment.map(Timestamp::to_rfc3339).as_deref(), Some(edge));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("0000-01-01T00:00:00-00:01").map(Timestamp::to_rfc3339),
            Some("0000-01-01T00:01:00.000Z".to_owned())
        );
    }
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Timestamp {
    /// Day of the week in UTC, Monday = 0 … Sunday = 6.
    pub fn weekday(self) -> i64 {
        // 1970-01-01 was a Thursday (3).
        (self.0.div_euclid(DAY_MS) + 3).rem_euclid(7)
    }

    /// The same time of day `days` working days (Monday to Friday, UTC) later. Public holidays
    /// are not modelled: a city that needs them publishes a longer SLA.
    pub fn plus_working_days(self, days: u32) -> Timestamp {
        let mut moment = self;
        let mut remaining = days;
        while remaining > 0 {
            moment = moment.plus_milliseconds(DAY_MS);
            if moment.weekday() < 5 {
                remaining -= 1;
            }
        }
        moment
    }

    /// The UTC calendar month, `YYYY-MM`.
    pub fn month(self) -> String {
        self.to_rfc3339().chars().take(7).collect()
    }
}

#[cfg(test)]
mod calendar_tests {
    use super::*;

    #[test]
    fn working_days_skip_the_weekend() {
        // 2026-11-20 is a Friday.
        let friday = Timestamp::parse_rfc3339("2026-11-20T09:00:00Z").unwrap_or_default();
        assert_eq!(friday.weekday(), 4);
        assert_eq!(
            friday.plus_working_days(1).to_rfc3339(),
            "2026-11-23T09:00:00.000Z"
        );
        assert_eq!(
            friday.plus_working_days(8).to_rfc3339(),
            "2026-12-02T09:00:00.000Z"
        );
        assert_eq!(friday.month(), "2026-11");
    }
}
