//! Host events on an EventBridge bus (`PutEvents`), through `aws-sdk-eventbridge`;
//! the client is built once per instance.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{HostEvent, HostEvents, SOURCE};
use crate::error::{Error, Result};

pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgeEvents {
            client,
            bus: bus.into(),
        }
    }

    /// For Lambda: region and credentials from the variables Lambda sets; the
    /// endpoint from `AWS_ENDPOINT_URL_EVENTBRIDGE` when set (the local stack's
    /// `/local/eventbridge`, for the binaries under `cargo lambda watch`).
    pub fn from_lambda_env(bus: &str) -> Result<Self> {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .map_err(|_| Error::unexpected("configuration: AWS_REGION is not set"))?;
        let mut config = base_config()
            .region(aws_sdk_eventbridge::config::Region::new(region))
            .timeout_config(crate::store::dynamo::aws_call_timeouts())
            .credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        config.set_endpoint_url(
            std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE")
                .ok()
                .filter(|url| !url.is_empty()),
        );
        Ok(EventBridgeEvents::new(
            Client::from_conf(config.build()),
            bus,
        ))
    }

    /// For an EventBridge emulation (the local stack's `/local/eventbridge`),
    /// with fixed dummy credentials.
    pub fn local(endpoint: &str, bus: &str) -> Self {
        let config = base_config()
            .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
            .credentials_provider(crate::store::dynamo::local_credentials())
            .endpoint_url(endpoint)
            .build();
        EventBridgeEvents::new(Client::from_conf(config), bus)
    }
}

fn base_config() -> aws_sdk_eventbridge::config::Builder {
    aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .http_client(crate::store::dynamo::http_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(50)),
        )
}

#[async_trait]
impl HostEvents for EventBridgeEvents {
    async fn publish(&self, event: &HostEvent) -> Result<()> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.kind.detail_type())
            .detail(event.detail_json()?)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                let why = match e.code() {
                    Some(code) => code.to_owned(),
                    None => aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
                };
                Error::unavailable(format!("publishing a host event failed: {why}"))
            })?;
        // PutEvents answers 200 with per-entry failures.
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code())
                .unwrap_or("unknown");
            return Err(Error::unavailable(format!(
                "publishing a host event failed: {code}"
            )));
        }
        Ok(())
    }
}
