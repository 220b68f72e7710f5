//! Latency summaries, error counters and the report every scenario prints.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Errors counted by kind (`http 429 ecto 9000`, `ws close 4008`, `http timeout`, ...).
#[derive(Default)]
pub struct Errors(Mutex<BTreeMap<String, u64>>);

impl Errors {
    pub fn add(&self, kind: impl Into<String>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(kind.into()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Percentiles of a set of durations given in microseconds.
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// Nearest-rank percentiles, in milliseconds. `None` for an empty set.
    pub fn of(mut micros: Vec<u32>) -> Option<Latency> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let n = micros.len();
        let at = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            f64::from(micros[rank - 1]) / 1000.0
        };
        let sum: u64 = micros.iter().map(|&v| u64::from(v)).sum();
        Some(Latency {
            count: n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: f64::from(micros[n - 1]) / 1000.0,
            mean: sum as f64 / n as f64 / 1000.0,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "p50_ms": round3(self.p50),
            "p90_ms": round3(self.p90),
            "p99_ms": round3(self.p99),
            "max_ms": round3(self.max),
            "mean_ms": round3(self.mean),
        })
    }
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Duration as microseconds, saturated to `u32` (about 71 minutes).
pub fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The outcome of one scenario run: printed as a table, or as one JSON object.
pub struct Report {
    scenario: &'static str,
    label: String,
    target: String,
    params: Vec<(String, Value)>,
    results: Vec<(String, Value)>,
    errors: BTreeMap<String, u64>,
}

impl Report {
    pub fn new(scenario: &'static str, label: &str, target: &str) -> Report {
        Report {
            scenario,
            label: label.to_owned(),
            target: target.to_owned(),
            params: Vec::new(),
            results: Vec::new(),
            errors: BTreeMap::new(),
        }
    }

    pub fn param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.push((key.to_owned(), value.into()));
    }

    pub fn result(&mut self, key: &str, value: impl Into<Value>) {
        self.results.push((key.to_owned(), value.into()));
    }

    /// A numeric result recorded earlier.
    pub fn result_f64(&self, key: &str) -> Option<f64> {
        self.results
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_f64())
    }

    pub fn latency(&mut self, key: &str, micros: Vec<u32>) {
        let value = Latency::of(micros).map_or(Value::Null, |l| l.to_json());
        self.results.push((key.to_owned(), value));
    }

    pub fn errors(&mut self, errors: &Errors) {
        self.errors = errors.snapshot();
    }

    pub fn to_json(&self) -> Value {
        let obj = |rows: &[(String, Value)]| {
            Value::Object(rows.iter().cloned().collect::<Map<String, Value>>())
        };
        json!({
            "scenario": self.scenario,
            "label": self.label,
            "target": self.target,
            "params": obj(&self.params),
            "results": obj(&self.results),
            "errors": self.errors,
            "error_total": self.errors.values().sum::<u64>(),
        })
    }

    pub fn to_table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        rows.push(("scenario".into(), self.scenario.into()));
        if !self.label.is_empty() {
            rows.push(("label".into(), self.label.clone()));
        }
        rows.push(("target".into(), self.target.clone()));
        for (k, v) in &self.params {
            rows.push((format!("param {k}"), show(v)));
        }
        for (k, v) in &self.results {
            rows.push((k.clone(), show(v)));
        }
        if self.errors.is_empty() {
            rows.push(("errors".into(), "none".into()));
        } else {
            for (k, v) in &self.errors {
                rows.push((format!("error: {k}"), v.to_string()));
            }
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        let rule = "-".repeat(width + 40);
        out.push_str(&rule);
        out.push('\n');
        for (k, v) in rows {
            out.push_str(&format!("{k:<width$}  {v}\n"));
        }
        out.push_str(&rule);
        out.push('\n');
        out
    }
}

/// A value as a table cell: latency objects as one line of percentiles.
fn show(v: &Value) -> String {
    match v {
        Value::Object(m) if m.contains_key("p50_ms") => {
            let g = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
            format!(
                "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
                g("p50_ms"),
                g("p90_ms"),
                g("p99_ms"),
                g("max_ms"),
                m.get("count").and_then(Value::as_u64).unwrap_or(0)
            )
        }
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:.1}", n.as_f64().unwrap_or(f64::NAN)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latency::of((1..=100).map(|v| v * 1000).collect()).expect("not empty");
        assert_eq!(l.p50, 50.0);
        assert_eq!(l.p90, 90.0);
        assert_eq!(l.p99, 99.0);
        assert_eq!(l.max, 100.0);
        assert!(Latency::of(Vec::new()).is_none());
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let e = Errors::default();
        e.add("http 429 ecto 9000");
        e.add("http 429 ecto 9000");
        e.add("ws close 4008");
        let s = e.snapshot();
        assert_eq!(s.get("http 429 ecto 9000"), Some(&2));
        assert_eq!(s.get("ws close 4008"), Some(&1));
    }
}
