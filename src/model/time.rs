//! Timestamps on the wire: ISO-8601 in UTC with millisecond precision, as JavaScript's
//! `Date.toISOString()` writes them (`2026-11-26T08:05:58.178Z`).

use super::Timestamp;
use serde::Serializer;

/// Serializes a timestamp as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
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

    #[derive(serde::Serialize)]
    struct Wrap(#[serde(serialize_with = "super::iso")] super::Timestamp);
}
