//! Dollars from what a run used, at AWS list prices for us-east-1, arm64 Lambda,
//! DynamoDB on demand. All prices live here, with the date they were taken.

use serde_json::{Value, json};

pub const PRICES_AS_OF: &str = "2026-11-23 (us-east-1 list prices)";
/// Lambda on arm64: per GB-second, and per request.
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
/// API Gateway WebSocket: per message (32 KB units), per connection-minute.
const WS_MESSAGE: f64 = 1.00 / 1e6;
const WS_CONNECTION_MINUTE: f64 = 0.25 / 1e6;
/// DynamoDB on demand: per read and write request unit.
const DDB_READ_UNIT: f64 = 0.125 / 1e6;
const DDB_WRITE_UNIT: f64 = 0.625 / 1e6;

/// Memory (MB) of each function in infra/template.yaml.
fn memory_mb(function: &str) -> f64 {
    match function {
        "edit" | "post-change" => 1024.0,
        _ => 256.0,
    }
}

/// The measured cost of a ping (the other half of a session-hour): one write, 1.5
/// read units, a message each way, one short invocation (tests/lifecycle.rs).
const PING_WRITE_UNITS: f64 = 1.0;
const PING_READ_UNITS: f64 = 1.5;
const PING_MS: f64 = 3.0;

/// A 5-user session-hour: each user pings every 10 s and edits every 10 s.
const SESSION_USERS: f64 = 5.0;
const EDITS_PER_USER_HOUR: f64 = 360.0;
const PINGS_PER_USER_HOUR: f64 = 360.0;

/// The run's cost per operation (edit or join), in dollars, by part.
fn per_operation(report: &Value) -> Option<(f64, Value)> {
    let server = &report["server"];
    let ops = report["acked"]
        .as_f64()
        .or_else(|| report["joined"].as_f64())?
        .max(1.0);
    let f = |k: &str| server[k].as_f64().unwrap_or(0.0);
    let dynamodb = f("readUnits") * DDB_READ_UNIT + f("writeUnits") * DDB_WRITE_UNIT;
    let websocket = (f("unitsIn") + f("unitsOut")) * WS_MESSAGE;
    let mut lambda = 0.0;
    for (name, v) in server["invocations"].as_object().into_iter().flatten() {
        let count = v["count"].as_f64().unwrap_or(0.0);
        let seconds = v["totalMs"].as_f64().unwrap_or(0.0) / 1000.0;
        lambda += count * LAMBDA_REQUEST + seconds * memory_mb(name) / 1024.0 * LAMBDA_GB_SECOND;
    }
    let parts =
        json!({"dynamodb": dynamodb / ops, "websocket": websocket / ops, "lambda": lambda / ops});
    Some(((dynamodb + websocket + lambda) / ops, parts))
}

pub fn report(report: &Value) -> Value {
    let Some((per_op, parts)) = per_operation(report) else {
        return json!({"pricesAsOf": PRICES_AS_OF});
    };
    let mut out = json!({"pricesAsOf": PRICES_AS_OF, "perOperation": per_op, "parts": parts});
    if report["scenario"] == "edit-storm" {
        let per_1000 = per_op * 1000.0;
        let ping = PING_WRITE_UNITS * DDB_WRITE_UNIT
            + PING_READ_UNITS * DDB_READ_UNIT
            + 2.0 * WS_MESSAGE
            + LAMBDA_REQUEST
            + PING_MS / 1000.0 * 0.25 * LAMBDA_GB_SECOND;
        let hour = SESSION_USERS
            * (EDITS_PER_USER_HOUR * per_op
                + PINGS_PER_USER_HOUR * ping
                + 60.0 * WS_CONNECTION_MINUTE);
        out["per1000Edits"] = per_1000.into();
        out["perFiveUserSessionHour"] = hour.into();
        out["sessionHourAssumes"] = "5 users, each editing and pinging every 10 s".into();
        out["summary"] =
            format!("${per_1000:.4} per 1,000 edits, ${hour:.4} per 5-user session-hour").into();
    } else {
        out["summary"] = format!("${:.6} per join", per_op).into();
    }
    out
}
