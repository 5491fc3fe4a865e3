//! Timestamps as EC2 writes them: ISO 8601 UTC with milliseconds (`2026-11-26T06:26:20.000Z`).

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// Milliseconds since the Unix epoch, the unit the store keeps.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats epoch milliseconds the way EC2 does in XML (`yyyy-mm-ddThh:mm:ss.sssZ`).
pub fn ec2_timestamp(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_ec2_timestamp(&mut out, ms);
    out
}

/// Appends [`ec2_timestamp`]'s text to `out`. Answers carry several timestamps per
/// record (a page of instances has thousands), so the date is computed by integer
/// arithmetic and written digit by digit rather than through a formatter.
/// Out-of-range instants (before year 0 or after 9999) are written as the epoch.
pub fn write_ec2_timestamp(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let (year, month, day, sod, milli) = if (0..=9999).contains(&year) {
        (
            year,
            month,
            day,
            secs.rem_euclid(86_400),
            ms.rem_euclid(1000),
        )
    } else {
        (1970, 1, 1, 0, 0)
    };
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 3, milli);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&b).unwrap_or("1970-01-01T00:00:00.000Z"));
}

/// (year, month, day) of a count of days since 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The human form EC2 puts in `StateTransitionReason` (`2026-11-26 06:26:20 GMT`).
pub fn ec2_reason_time(ms: i64) -> String {
    let s = ec2_timestamp(ms);
    format!("{} {} GMT", &s[0..10], &s[11..19])
}

/// Parses an RFC 3339 timestamp into epoch milliseconds (used by `launch-time` filters).
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `time` crate's formatting, the definition the fast path must match.
    fn reference(ms: i64) -> String {
        let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }

    proptest::proptest! {
        #[test]
        fn fast_timestamps_match_the_calendar(ms in -62_167_219_200_000i64..253_402_300_799_999) {
            proptest::prop_assert_eq!(ec2_timestamp(ms), reference(ms));
        }
    }

    #[test]
    fn formats_like_ec2() {
        assert_eq!(ec2_timestamp(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(ec2_timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ec2_timestamp(i64::MAX), "1970-01-01T00:00:00.000Z");
        assert_eq!(ec2_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ec2_timestamp(1_764_138_380_123), "2025-11-26T06:26:20.123Z");
        assert_eq!(
            ec2_reason_time(1_764_138_380_123),
            "2025-11-26 06:26:20 GMT"
        );
        assert_eq!(
            parse_rfc3339_ms("2025-11-26T06:26:20.123Z"),
            Some(1_764_138_380_123)
        );
    }
}
