//! Timestamp parsing and formatting.
//!
//! Hand-written rather than `time`'s format descriptions: `[year]` can be
//! widened to six digits when another crate in the build enables
//! `large-dates`, which would make `20150830T…` parse ambiguously, and these
//! formats are small enough that a fixed-position parser is clearer.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn build(year: u32, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses the ISO 8601 basic form SigV4 uses, `yyyyMMddTHHmmssZ`.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    build(
        digits(&b[0..4])?,
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[9..11])?,
        digits(&b[11..13])?,
        digits(&b[13..15])?,
    )
}

/// Parses an HTTP `Date` header in IMF-fixdate form,
/// `Sun, 06 Nov 1994 08:49:37 GMT`. The obsolete RFC 850 and asctime forms
/// are not accepted: no SigV4 client emits them.
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [wkday, day, mon, year, hms, zone] = parts.as_slice() else {
        return None;
    };
    if wkday.len() != 4 || !wkday.ends_with(',') || *zone != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == mon)? as u32 + 1;
    let hb = hms.as_bytes();
    if hb.len() != 8 || hb[2] != b':' || hb[5] != b':' || day.len() != 2 || year.len() != 4 {
        return None;
    }
    build(
        digits(year.as_bytes())?,
        month,
        digits(day.as_bytes())?,
        digits(&hb[0..2])?,
        digits(&hb[3..5])?,
        digits(&hb[6..8])?,
    )
}

fn utc(t: OffsetDateTime) -> OffsetDateTime {
    // Only an instant at the very edge of `time`'s range can fail to convert;
    // keeping the original offset then is better than panicking.
    t.checked_to_offset(UtcOffset::UTC).unwrap_or(t)
}

/// `yyyyMMddTHHmmssZ`, the form used in `X-Amz-Date` and the string to sign.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `yyyy-MM-ddTHH:mm:ssZ`, the form EC2 uses in its error messages.
pub(crate) fn format_iso(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn amz_date_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, datetime!(2015-08-30 12:36:00 UTC));
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(format_iso(t), "2015-08-30T12:36:00Z");
    }

    #[test]
    fn amz_date_converts_offsets_to_utc() {
        let t = datetime!(2015-08-30 14:36:00 +02:00);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
    }

    #[test]
    fn amz_date_rejects_malformed() {
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015083AT123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T253600Z",
            "+0150830T123600Z",
            "20150830T12360éZ",
            "2015-08-30T12:36:00Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(datetime!(2015-08-30 12:36:00 UTC))
        );
        for bad in [
            "",
            "Sun, 30 Aug 2015 12:36:00",
            "Sun, 30 Aug 2015 12:36:00 PST",
            "Sunday, 30-Aug-15 12:36:00 GMT",
            "Sun Aug 30 12:36:00 2015",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36 GMT",
        ] {
            assert!(parse_http_date(bad).is_none(), "{bad:?} accepted");
        }
    }
}
