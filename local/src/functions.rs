//! How the gateway reaches the functions: in-process (the handlers called
//! directly, the default), or the real function binaries under `cargo lambda watch`
//! through its Lambda invoke endpoint.

use std::sync::Arc;

use async_trait::async_trait;
use coedit::handlers::websocket::{WebSocketEvent, WebSocketResponse};
use coedit::handlers::{connect, disconnect, edit, ping};
use coedit::{App, Result};

/// The function SAM routes a WebSocket route key to (infra/template.yaml).
pub fn function_for(route: &str) -> &'static str {
    match route {
        "$connect" => "connect",
        "$disconnect" => "disconnect",
        "ping" => "ping",
        _ => "edit",
    }
}

#[async_trait]
pub trait Functions: Send + Sync {
    /// Runs the function of the event's route and returns its response.
    async fn invoke(&self, event: WebSocketEvent) -> Result<WebSocketResponse>;
}

/// The handlers, called in this process on one `App`.
pub struct InProcess(pub Arc<App>);

#[async_trait]
impl Functions for InProcess {
    async fn invoke(&self, event: WebSocketEvent) -> Result<WebSocketResponse> {
        let route = event.request_context.route_key.clone().unwrap_or_default();
        let app = &self.0;
        Ok(match function_for(&route) {
            "connect" => connect::handle(app, event).await,
            "disconnect" => disconnect::handle(app, event).await,
            "ping" => ping::handle(app, event).await,
            _ => edit::handle(app, event).await,
        })
    }
}

/// The real function binaries, running under `cargo lambda watch`, reached
/// through its Lambda invoke endpoint (`POST {base}/2015-03-31/functions/{name}/invocations`).
#[derive(Clone)]
pub struct Remote {
    base: String,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<hyper::body::Bytes>,
    >,
}

impl Remote {
    /// `base` is the invoke endpoint, e.g. `http://127.0.0.1:9000`.
    pub fn new(base: &str) -> Remote {
        Remote {
            base: base.trim_end_matches('/').to_owned(),
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        }
    }
}

/// The functions behind the WebSocket routes, as `function_for` names them.
pub const WEBSOCKET_FUNCTIONS: [&str; 4] = ["connect", "disconnect", "ping", "edit"];

impl Remote {
    /// Invokes each WebSocket function once with an event that changes nothing (a
    /// `$connect` without a token, a `$disconnect` and a `ping` of a connection
    /// that does not exist, an empty message), until each has answered or
    /// `deadline` has passed. `cargo lambda watch` builds and starts a binary on
    /// its first invocation, which takes minutes on a cold machine; waiting here
    /// keeps that out of the first real connection. Retries while the watcher is
    /// not up yet. `progress` hears of each function as it answers.
    pub async fn warm_up(
        &self,
        deadline: std::time::Duration,
        progress: impl Fn(&str, std::time::Duration),
    ) -> Result<std::time::Duration> {
        use coedit::Error;
        use coedit::handlers::websocket::Incoming;
        let started = std::time::Instant::now();
        for name in WEBSOCKET_FUNCTIONS {
            let (route, body) = match name {
                "connect" => ("$connect", None),
                "disconnect" => ("$disconnect", None),
                "ping" => ("ping", Some(r#"{"action":"ping"}"#)),
                _ => ("$default", Some("{}")),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let event = Incoming {
                route,
                connection_id: "warm-up-connection=",
                stage: "local",
                domain: "127.0.0.1",
                source_ip: "127.0.0.1",
                connected_at: now,
                request_time: now,
                query: &[],
                headers: &[],
                body,
                close: (route == "$disconnect").then_some((1000, "")),
            }
            .to_event()?;
            loop {
                let left = deadline.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::unavailable(format!(
                        "the function {name} did not answer within {} s: is `cargo lambda watch` running at {}?",
                        deadline.as_secs(),
                        self.base
                    )));
                }
                match tokio::time::timeout(left, self.invoke(event.clone())).await {
                    Ok(Ok(_)) => break,
                    // Not listening yet, or an invocation that gave up while the
                    // binary was building: ask again.
                    Ok(Err(_)) | Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
            progress(name, started.elapsed());
        }
        Ok(started.elapsed())
    }
}

#[async_trait]
impl Functions for Remote {
    async fn invoke(&self, event: WebSocketEvent) -> Result<WebSocketResponse> {
        use coedit::Error;
        use http_body_util::BodyExt;
        let route = event.request_context.route_key.clone().unwrap_or_default();
        let name = function_for(&route);
        let body = serde_json::to_vec(&event)
            .map_err(|e| Error::unexpected(format!("serializing an event: {e}")))?;
        let request = hyper::Request::post(format!(
            "{}/2015-03-31/functions/{name}/invocations",
            self.base
        ))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| Error::unexpected(format!("building an invocation: {e}")))?;
        let response = self.client.request(request).await.map_err(|e| {
            Error::unavailable(format!(
                "invoking {name} at {}: {e} (is `cargo lambda watch` running?)",
                self.base
            ))
        })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::unavailable(format!("reading {name}'s answer: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(Error::unexpected(format!(
                "{name} failed ({status}): {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::unexpected(format!("{name} answered something else: {e}")))
    }
}
