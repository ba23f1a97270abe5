//! Pushing messages to WebSocket connections. One trait, two implementations: API
//! Gateway's management API (`apigw`, what Lambda functions use) and the in-process
//! hub (`local`, what the local stack and the tests use).

pub mod apigw;
pub mod local;

use async_trait::async_trait;
use futures_util::future::join_all;

use crate::error::{Error, Result};

pub use apigw::ApiGatewayNotifier;
pub use local::LocalConnections;

/// What became of a message or a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The connection does not exist any more (API Gateway's 410 `GoneException`).
    Gone,
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one text message to one connection.
    async fn post(&self, connection_id: &str, message: &str) -> Result<Delivery>;

    /// Closes a connection from the server side.
    async fn close(&self, connection_id: &str) -> Result<Delivery>;
}

/// Sends `message` to every connection in `targets` at once. Returns the ones that
/// turned out to be gone, for the caller to drop. Other failures are logged and
/// skipped: one unreachable peer must not fail the change that was announced.
pub async fn broadcast(notifier: &dyn Notifier, targets: &[&str], message: &str) -> Vec<String> {
    let sends = targets.iter().map(|id| async move {
        let outcome = notifier.post(id, message).await;
        (*id, outcome)
    });
    let mut gone = Vec::new();
    for (id, outcome) in join_all(sends).await {
        match outcome {
            Ok(Delivery::Sent) => {}
            Ok(Delivery::Gone) => {
                crate::metrics::record(crate::metrics::Metric::GoneConnections, 1);
                gone.push(id.to_owned())
            }
            Err(e) => {
                tracing::warn!(code = e.code.number(), detail = %e.detail, "a message could not be delivered")
            }
        }
    }
    gone
}

/// A notifier for functions that never push (the REST routes) or deployments that
/// have not set `COEDIT_CONNECTIONS_ENDPOINT`: every call says so.
pub struct Unconfigured;

#[async_trait]
impl Notifier for Unconfigured {
    async fn post(&self, _: &str, _: &str) -> Result<Delivery> {
        Err(unconfigured())
    }

    async fn close(&self, _: &str) -> Result<Delivery> {
        Err(unconfigured())
    }
}

fn unconfigured() -> Error {
    Error::unexpected("configuration: COEDIT_CONNECTIONS_ENDPOINT is not set")
}
