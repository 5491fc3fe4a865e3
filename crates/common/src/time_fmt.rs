//! Timestamps as EC2 writes them: ISO 8601 UTC with milliseconds (`2026-11-26T06:26:20.000Z`).

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// Milliseconds since the Unix epoch, the unit the store keeps.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats epoch milliseconds the way EC2 does in XML (`yyyy-mm-ddThh:mm:ss.sssZ`).
pub fn ec2_timestamp(ms: i64) -> String {
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

    #[test]
    fn formats_like_ec2() {
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
