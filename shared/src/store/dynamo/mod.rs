//! The DynamoDB store: one table, one partition per session. Where every item
//! lives is `keys`; how values become items is `items`; the requests, metered, are
//! `requests`. Each concern implements its trait in its own module: `sessions`
//! (the session and its log), `snapshots`, `presence` (seats and heartbeats),
//! `locks`, `sweep` (the sweeper's index and erasure) and `api_keys`.

mod api_keys;
mod items;
pub mod keys;
mod locks;
mod meter;
mod presence;
mod requests;
pub mod schema;
mod sessions;
mod snapshots;
mod sweep;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;

use crate::error::{Error, Result};

pub use meter::{Capacity, CapacityMeter};

pub struct DynamoStore {
    client: Client,
    table: String,
    meter: Arc<CapacityMeter>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            meter: Arc::new(CapacityMeter::default()),
        }
    }

    /// The client a Lambda function needs, built once at cold start: region and
    /// credentials from the variables Lambda sets, and `AWS_ENDPOINT_URL_DYNAMODB`
    /// (or `AWS_ENDPOINT_URL`) when set, e.g. under `cargo lambda watch`. It skips
    /// aws-config's full provider chain (profiles, STS, SSO, instance metadata):
    /// Lambda never needs it, and it would add megabytes and start-up time.
    pub fn from_lambda_env(table: impl Into<String>) -> Result<Self> {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .map_err(|_| Error::unexpected("configuration: AWS_REGION is not set"))?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok();
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http_client())
            .region(aws_sdk_dynamodb::config::Region::new(region))
            .timeout_config(aws_call_timeouts())
            .credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        let config = config.build();
        Ok(DynamoStore::new(Client::from_conf(config), table))
    }

    /// The client as the full AWS environment configures it (profiles, SSO-less
    /// assume-role, instance metadata, `AWS_ENDPOINT_URL_DYNAMODB`): for tools run
    /// by people, such as `coedit-admin`.
    pub async fn from_aws_config(table: impl Into<String>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http_client())
            .load()
            .await;
        DynamoStore::new(Client::new(&config), table)
    }

    /// A client for DynamoDB Local (or any endpoint) with fixed dummy credentials,
    /// independent of the environment.
    pub fn local_client(endpoint: &str) -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http_client())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(local_credentials())
            .build();
        Client::from_conf(config)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The requests and capacity units this store has used so far.
    pub fn meter(&self) -> &Arc<CapacityMeter> {
        &self.meter
    }
}

/// Fixed dummy credentials for local endpoints (DynamoDB Local, the local stack's
/// `@connections` and EventBridge emulation), whatever the environment holds.
pub fn local_credentials() -> aws_sdk_dynamodb::config::Credentials {
    aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "coedit-local")
}

/// Bounds on every AWS call a function makes (DynamoDB, the management API,
/// EventBridge), well inside the functions' 10 s: a connection in 1 s, an attempt
/// in 2 s, a call with its retries in 5 s. A call past them fails (5600) instead
/// of holding the function until Lambda kills it.
pub fn aws_call_timeouts() -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(5))
        .build()
}

/// HTTPS for the SDK: rustls on ring. The SDK's default uses aws-lc-rs, which
/// roughly doubles a function's binary.
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}
