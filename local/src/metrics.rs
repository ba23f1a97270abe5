//! What the local stack counts while it runs, for the load generator and the cost
//! report (`GET /local/metrics`): WebSocket messages in and out (and in API
//! Gateway's 32 KB billing units), function invocations and their durations,
//! DynamoDB requests and capacity units as DynamoDB reports them, and the
//! process's CPU time and peak memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use coedit::handlers::websocket::{WebSocketEvent, WebSocketResponse};
use coedit::store::dynamo::CapacityMeter;
use serde_json::{Value, json};

use crate::functions::{Functions, function_for};

/// API Gateway bills WebSocket messages in 32 KB increments.
const BILLING_UNIT: usize = 32 * 1024;

#[derive(Default)]
pub struct Metrics {
    messages_in: AtomicU64,
    units_in: AtomicU64,
    messages_out: AtomicU64,
    units_out: AtomicU64,
    connections: AtomicU64,
    /// Function name -> (invocations, total µs, longest µs).
    invocations: Mutex<BTreeMap<&'static str, (u64, u64, u64)>>,
    /// The store's meter, when the store is DynamoDB.
    pub dynamodb: Option<Arc<CapacityMeter>>,
}

fn units(len: usize) -> u64 {
    len.div_ceil(BILLING_UNIT).max(1) as u64
}

impl Metrics {
    pub fn new(dynamodb: Option<Arc<CapacityMeter>>) -> Metrics {
        Metrics {
            dynamodb,
            ..Metrics::default()
        }
    }

    pub fn message_in(&self, len: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.units_in.fetch_add(units(len), Ordering::Relaxed);
    }

    pub fn message_out(&self, len: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.units_out.fetch_add(units(len), Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    fn invoked(&self, function: &'static str, micros: u64) {
        let mut all = self.invocations.lock().unwrap_or_else(|e| e.into_inner());
        let entry = all.entry(function).or_default();
        entry.0 += 1;
        entry.1 += micros;
        entry.2 = entry.2.max(micros);
    }

    pub fn to_json(&self) -> Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let invocations: serde_json::Map<String, Value> = self
            .invocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, (count, total, max))| {
                (
                    (*name).to_owned(),
                    json!({"count": count, "totalMs": *total as f64 / 1000.0, "maxMs": *max as f64 / 1000.0}),
                )
            })
            .collect();
        let dynamodb = self.dynamodb.as_ref().map(|m| {
            let c = m.totals();
            json!({"readRequests": c.read_requests, "writeRequests": c.write_requests,
                   "readUnits": c.read_units, "writeUnits": c.write_units})
        });
        let (cpu_ms, peak_rss_kb) = process_usage();
        json!({
            "websocket": {
                "connections": get(&self.connections),
                "messagesIn": get(&self.messages_in), "unitsIn": get(&self.units_in),
                "messagesOut": get(&self.messages_out), "unitsOut": get(&self.units_out),
            },
            "invocations": invocations,
            "dynamodb": dynamodb,
            "process": {"cpuMs": cpu_ms, "peakRssKb": peak_rss_kb},
        })
    }
}

/// This process's CPU time (user + system, ms) and peak resident memory (KB), from
/// /proc; zeros where there is none.
fn process_usage() -> (u64, u64) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces).
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 10) // USER_HZ is 100 on Linux
        })
        .unwrap_or(0);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    (cpu, rss)
}

/// Functions that count their invocations and durations.
pub struct Metered<F> {
    pub inner: F,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl<F: Functions> Functions for Metered<F> {
    async fn invoke(&self, event: WebSocketEvent) -> coedit::Result<WebSocketResponse> {
        let name = function_for(
            event
                .request_context
                .route_key
                .as_deref()
                .unwrap_or_default(),
        );
        let started = Instant::now();
        let result = self.inner.invoke(event).await;
        self.metrics
            .invoked(name, started.elapsed().as_micros() as u64);
        result
    }
}
