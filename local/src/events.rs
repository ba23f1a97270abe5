//! Host events on the local stack, as EventBridge would deliver them: each one is
//! printed as one JSON line, the last 1,000 are served at `GET /local/events`,
//! and with `--events-webhook URL` each is posted to that URL, in order. The
//! envelope is EventBridge's (`version`, `id`, `detail-type`, `source`, `account`,
//! `time`, `region`, `resources`, `detail`), so a host backend built against it
//! takes the real ones unchanged. The stack also answers EventBridge's
//! `PutEvents` at `POST /local/eventbridge`, so the real SDK publisher (the
//! function binaries under `cargo lambda watch`) can publish here.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use coedit::events::{HostEvent, HostEvents, SOURCE};
use coedit::{Error, Result};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How many events `GET /local/events` keeps.
pub const KEPT: usize = 1000;

pub struct LocalEvents {
    recent: Mutex<VecDeque<Value>>,
    print: bool,
    webhook: Option<mpsc::UnboundedSender<String>>,
}

impl LocalEvents {
    /// Keeps events; `print` also writes each to stdout as one line.
    pub fn new(print: bool) -> LocalEvents {
        LocalEvents {
            recent: Mutex::new(VecDeque::new()),
            print,
            webhook: None,
        }
    }

    /// Also posts each event to `url` (`http://`), one after the other, in the
    /// order they were published. Must be called inside a Tokio runtime.
    pub fn with_webhook(mut self, url: &str) -> Result<LocalEvents> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| Error::malformed(format!("--events-webhook: {url:?} is not a URL")))?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::malformed(
                "--events-webhook: the local stack posts to http:// URLs only",
            ));
        }
        let (send, receive) = mpsc::unbounded_channel();
        tokio::spawn(post_each(uri, receive));
        self.webhook = Some(send);
        Ok(self)
    }

    /// The kept events, oldest first.
    pub fn recent(&self) -> Vec<Value> {
        self.kept().iter().cloned().collect()
    }

    /// Takes one event as EventBridge would deliver it.
    pub fn record(&self, detail_type: &str, source: &str, detail: Value) {
        let envelope = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": detail_type,
            "source": source,
            "account": "000000000000",
            "time": eventbridge_time(),
            "region": "local",
            "resources": [],
            "detail": detail,
        });
        let line = envelope.to_string();
        if self.print {
            println!("{line}");
        }
        if let Some(webhook) = &self.webhook {
            let _ = webhook.send(line);
        }
        let mut kept = self.kept();
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(envelope);
    }

    /// Answers an EventBridge `PutEvents` request body (JSON 1.1).
    pub fn put_events(&self, body: &[u8]) -> (u16, Value) {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return (
                400,
                json!({"__type": "ValidationException", "message": "not JSON"}),
            );
        };
        let entries = request["Entries"].as_array().cloned().unwrap_or_default();
        let mut answers = Vec::new();
        let mut failed = 0;
        for entry in entries {
            let detail = entry["Detail"]
                .as_str()
                .and_then(|d| serde_json::from_str::<Value>(d).ok());
            match (
                entry["DetailType"].as_str(),
                entry["Source"].as_str(),
                detail,
            ) {
                (Some(kind), Some(source), Some(detail)) => {
                    self.record(kind, source, detail);
                    answers.push(json!({"EventId": uuid::Uuid::new_v4().to_string()}));
                }
                _ => {
                    failed += 1;
                    answers.push(json!({
                        "ErrorCode": "MalformedDetail",
                        "ErrorMessage": "an entry needs Source, DetailType and a JSON Detail"
                    }));
                }
            }
        }
        (200, json!({"FailedEntryCount": failed, "Entries": answers}))
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, VecDeque<Value>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl HostEvents for LocalEvents {
    async fn publish(&self, event: &HostEvent) -> Result<()> {
        let detail = serde_json::from_str(&event.detail_json()?)
            .map_err(|e| Error::unexpected(format!("a host event's detail: {e}")))?;
        self.record(event.kind.detail_type(), SOURCE, detail);
        Ok(())
    }
}

/// EventBridge's `time`: UTC, whole seconds.
fn eventbridge_time() -> String {
    use coedit::clock::Clock;
    let text = coedit::clock::SystemClock.now().to_rfc3339();
    // `2026-12-02T10:00:00.123Z` -> `2026-12-02T10:00:00Z`
    match text.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => text,
    }
}

async fn post_each(url: hyper::Uri, mut events: mpsc::UnboundedReceiver<String>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    while let Some(line) = events.recv().await {
        let request = hyper::Request::post(url.clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(line)));
        let Ok(request) = request else { continue };
        match client.request(request).await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(status = %response.status(), "the events webhook refused an event")
            }
            Err(e) => tracing::warn!("posting an event to the webhook failed: {e}"),
        }
    }
}
