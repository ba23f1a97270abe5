//! The notifier Lambda functions use: API Gateway's management API
//! (`POST`/`DELETE /@connections/{id}`) through `aws-sdk-apigatewaymanagement`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use super::{Delivery, Notifier};
use crate::error::{Error, Result};

pub struct ApiGatewayNotifier {
    client: Client,
}

/// Throttling (`LimitExceededException`, 429) is retried by the SDK with jittered
/// backoff; these bounds keep a live broadcast from stalling for seconds.
fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(4)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1))
}

impl ApiGatewayNotifier {
    pub fn new(client: Client) -> Self {
        ApiGatewayNotifier { client }
    }

    /// For Lambda: region and credentials from the variables Lambda sets, the
    /// endpoint from configuration (`COEDIT_CONNECTIONS_ENDPOINT`).
    pub fn from_lambda_env(endpoint: &str) -> Result<Self> {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .map_err(|_| Error::unexpected("configuration: AWS_REGION is not set"))?;
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .http_client(crate::store::dynamo::http_client())
            .region(aws_sdk_apigatewaymanagement::config::Region::new(region))
            .timeout_config(crate::store::dynamo::aws_call_timeouts())
            .credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            )
            .endpoint_url(endpoint)
            .retry_config(retry_config())
            .build();
        Ok(ApiGatewayNotifier::new(Client::from_conf(config)))
    }

    /// A client for a local `@connections` server, with fixed dummy credentials.
    pub fn local(endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .http_client(crate::store::dynamo::http_client())
            .region(aws_sdk_apigatewaymanagement::config::Region::new(
                "us-east-1",
            ))
            .credentials_provider(crate::store::dynamo::local_credentials())
            .endpoint_url(endpoint)
            .retry_config(retry_config())
            .build();
        ApiGatewayNotifier::new(Client::from_conf(config))
    }
}

#[async_trait]
impl Notifier for ApiGatewayNotifier {
    async fn post(&self, connection_id: &str, message: &str) -> Result<Delivery> {
        let out = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message.as_bytes()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(Delivery::Sent),
            // Match the modelled error, not a status code.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PostToConnectionError::GoneException(_))
                ) =>
            {
                Ok(Delivery::Gone)
            }
            Err(e) => Err(notify_error("posting to a connection", e)),
        }
    }

    async fn close(&self, connection_id: &str) -> Result<Delivery> {
        let out = self
            .client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Delivery::Sent),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteConnectionError::GoneException(_))
                ) =>
            {
                Ok(Delivery::Gone)
            }
            Err(e) => Err(notify_error("closing a connection", e)),
        }
    }
}

fn notify_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    tracing::error!(operation, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err), "management API call failed");
    match (&err, err.code()) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            Error::unavailable(format!("{operation}: API Gateway did not answer"))
        }
        (_, Some("LimitExceededException")) => {
            Error::unavailable(format!("{operation}: throttled past retries"))
        }
        (_, Some(code)) => Error::unexpected(format!("{operation}: API Gateway answered {code}")),
        _ => Error::unexpected(format!("{operation}: the call failed")),
    }
}
