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
