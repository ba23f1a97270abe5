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
