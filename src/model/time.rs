//! Timestamps on the wire: ISO-8601 in UTC with millisecond precision, as JavaScript's
//! `Date.toISOString()` writes them (`2026-11-26T08:05:58.178Z`).

use super::Timestamp;
use serde::Serializer;

/// Serializes a timestamp as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 24];
    match write_iso(ts, &mut buf) {
        Some(text) => s.serialize_str(text),
        // Years past 9999 and leap seconds: chrono's formatter.
        None => s.serialize_str(&ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
    }
}

/// The common case of [`iso`] without the formatting machinery (every event and list carries
/// timestamps, a ready payload hundreds): `None` for what it does not cover.
fn write_iso<'a>(ts: &Timestamp, buf: &'a mut [u8; 24]) -> Option<&'a str> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(ts.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = ts.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, ts.month(), 2);
    put(8, ts.day(), 2);
    put(11, ts.hour(), 2);
    put(14, ts.minute(), 2);
    put(17, ts.second(), 2);
    put(20, nanos / 1_000_000, 3);
    for (at, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        buf[at] = sep;
    }
    buf[23] = b'Z';
    std::str::from_utf8(buf).ok()
}

/// The same for an optional timestamp (`null` when absent).
pub fn iso_opt<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(t) => iso(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_milliseconds_and_z() {
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-26T08:05:58.178895315Z")
            .expect("ts")
            .to_utc();
        let json = serde_json::to_string(&Wrap(ts)).expect("json");
        assert_eq!(json, "\"2026-11-26T08:05:58.178Z\"");
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        use chrono::TimeZone;
        let samples = [
            chrono::Utc.timestamp_opt(0, 0).unwrap(),
            chrono::Utc.timestamp_opt(1_795_702_777, 5_000_000).unwrap(),
            chrono::Utc
                .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .unwrap(),
            chrono::Utc.with_ymd_and_hms(12, 1, 2, 3, 4, 5).unwrap(),
            chrono::Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0).unwrap()
                + chrono::Duration::nanoseconds(999_999_999),
        ];
        for ts in samples {
            let json = serde_json::to_string(&Wrap(ts)).expect("json");
            let chrono = format!("\"{}\"", ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
            assert_eq!(json, chrono);
        }
        // Outside the fast path: chrono writes it.
        let far = chrono::Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            serde_json::to_string(&Wrap(far)).expect("json"),
            format!("\"{}\"", far.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
        );
    }

    #[derive(serde::Serialize)]
    struct Wrap(#[serde(serialize_with = "super::iso")] super::Timestamp);
}
