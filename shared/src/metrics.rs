//! Metrics in CloudWatch's embedded metric format (EMF): each one is a JSON line on
//! stdout that CloudWatch Logs turns into a metric in the stack's namespace
//! (`COEDIT_METRICS_NAMESPACE`), with no API call and no SDK. Without a namespace
//! (the local stack, tests) nothing is written, unless a test captures them.
//!
//! What is counted (docs/DESIGN.md, "Operations"): stored changes, the fan-out of
//! each, refusals by code, conflicts, gone connections, seat refusals, store
//! faults, and each sweep's results.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use crate::clock::{Clock, SystemClock};
use crate::error::{Code, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A change stored.
    Changes,
    /// Connections a stored change was sent to.
    FanOut,
    /// An error answered (also counted by code, the `Code` dimension).
    Refusals,
    /// A change refused as conflicting (4009).
    Conflicts,
    /// Connections found gone when a message was posted to them.
    GoneConnections,
    /// A join refused for want of a seat.
    SeatRefusals,
    /// A store call that failed (throttling past retries, unavailable, timed out).
    StoreFaults,
    SweepEnded,
    SweepErased,
    SweepDropped,
    SweepUpdated,
    SweepFailures,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Changes => "Changes",
            Metric::FanOut => "FanOut",
            Metric::Refusals => "Refusals",
            Metric::Conflicts => "Conflicts",
            Metric::GoneConnections => "GoneConnections",
            Metric::SeatRefusals => "SeatRefusals",
            Metric::StoreFaults => "StoreFaults",
            Metric::SweepEnded => "SweepEnded",
            Metric::SweepErased => "SweepErased",
            Metric::SweepDropped => "SweepDropped",
            Metric::SweepUpdated => "SweepUpdated",
            Metric::SweepFailures => "SweepFailures",
        }
    }
}

enum Sink {
    Stdout { namespace: String },
    Captured(Arc<Mutex<Vec<Value>>>),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Writes metrics to stdout in `namespace` (a Lambda function's start).
pub fn enable(namespace: String) {
    let _ = SINK.set(Sink::Stdout { namespace });
}

/// Keeps every metric document written from now on, for a test to read.
pub fn capture() -> Arc<Mutex<Vec<Value>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let _ = SINK.set(Sink::Captured(kept.clone()));
    match SINK.get() {
        Some(Sink::Captured(k)) => k.clone(),
        _ => kept,
    }
}

/// Counts `value` of one metric.
pub fn record(metric: Metric, value: u64) {
    write(&[(metric, value)], None);
}

/// Counts several metrics at once, in one document (a sweep's results).
pub fn record_all(values: &[(Metric, u64)]) {
    write(values, None);
}

/// An error answered to a client: a refusal by its code, and a conflict as such.
/// (Store faults are counted where the store call fails.)
pub fn refused(err: &Error) {
    write(&[(Metric::Refusals, 1)], Some(err.code));
    if err.code == Code::Conflict {
        record(Metric::Conflicts, 1);
    }
}

fn write(values: &[(Metric, u64)], code: Option<Code>) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let namespace = match sink {
        Sink::Stdout { namespace } => namespace.as_str(),
        Sink::Captured(_) => "test",
    };
    let document = emf(namespace, values, code);
    match sink {
        // One line each: CloudWatch reads a document per log event.
        Sink::Stdout { .. } => println!("{document}"),
        Sink::Captured(kept) => kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(document),
    }
}

/// One EMF document.
fn emf(namespace: &str, values: &[(Metric, u64)], code: Option<Code>) -> Value {
    let dimensions: Vec<Vec<&str>> = match code {
        Some(_) => vec![vec!["Code"]],
        None => vec![vec![]],
    };
    let metrics: Vec<Value> = values
        .iter()
        .map(|(m, _)| json!({"Name": m.name(), "Unit": "Count"}))
        .collect();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": SystemClock.now().millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": metrics,
            }],
        }),
    );
    if let Some(code) = code {
        document.insert("Code".into(), code.number().to_string().into());
    }
    for (metric, value) in values {
        document.insert(metric.name().into(), (*value).into());
    }
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let d = emf(
            "coedit/prod",
            &[(Metric::Refusals, 1)],
            Some(Code::Conflict),
        );
        let directive = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "coedit/prod");
        assert_eq!(directive["Dimensions"], json!([["Code"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Refusals", "Unit": "Count"}])
        );
        assert_eq!((&d["Code"], &d["Refusals"]), (&json!("4009"), &json!(1)));
        assert!(d["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);

        let d = emf(
            "n",
            &[(Metric::SweepEnded, 2), (Metric::SweepErased, 3)],
            None,
        );
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(
            (&d["SweepEnded"], &d["SweepErased"]),
            (&json!(2), &json!(3))
        );
    }
}
