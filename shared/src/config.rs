//! Configuration, read once from the environment at start (cold start on Lambda).

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// The key join tokens are signed with. Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

/// HS256 keys shorter than the hash output weaken the signature (RFC 7518, 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

impl SigningSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(Error::unexpected(format!(
                "configuration: COEDIT_JOIN_TOKEN_SECRET must have at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(SigningSecret(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id join tokens name this secret by (their `kid`): 16 hex digits of a
    /// hash of it, which tell secrets apart without revealing them.
    pub fn key_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"coedit join token key id\0")
            .chain_update(&self.0)
            .finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({} bytes)", self.0.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The DynamoDB table (`COEDIT_TABLE_NAME`); unset for the embedded store.
    pub table_name: Option<String>,
    /// The largest request body a REST route accepts (`COEDIT_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Co-editor limits of the two paid plans (`COEDIT_SMALL_PLAN_EDITORS`,
    /// `COEDIT_LARGE_PLAN_EDITORS`).
    pub small_plan_editors: u32,
    pub large_plan_editors: u32,
    /// How long a warm instance trusts an API key lookup (`COEDIT_KEY_CACHE_SECONDS`):
    /// the delay until a revoked key stops working.
    pub key_cache_ttl: Duration,
    /// Signs and checks join tokens (`COEDIT_JOIN_TOKEN_SECRET`); the routes that
    /// need it answer 5001 without it.
    pub join_token_secret: Option<SigningSecret>,
    /// The secret signed with before the last rotation, still accepted
    /// (`COEDIT_JOIN_TOKEN_SECRET_PREVIOUS`) until the tokens it signed expire.
    pub previous_join_token_secret: Option<SigningSecret>,
    /// How long a join token opens the session (`COEDIT_JOIN_TOKEN_SECONDS`).
    pub join_token_ttl: Duration,
    /// The WebSocket URL a join answer points browsers to (`COEDIT_WEBSOCKET_URL`).
    pub websocket_url: Option<String>,
    /// The API Gateway management endpoint that posts to connections
    /// (`COEDIT_CONNECTIONS_ENDPOINT`, `https://<api>.execute-api.<region>.amazonaws.com/<stage>`).
    pub connections_endpoint: Option<String>,
    /// The EventBridge bus host events go to (`COEDIT_EVENT_BUS_NAME`).
    pub event_bus_name: Option<String>,
    /// How long a final template too large for its `coedit.session.ended` event
    /// stays readable by the host (`COEDIT_FINAL_TEMPLATE_HOURS`).
    pub final_template_retention: Duration,
    /// The largest template, as compact JSON, a session holds
    /// (`COEDIT_MAX_TEMPLATE_BYTES`); changes are checked against it op by op.
    pub max_template_bytes: usize,
    /// What one WebSocket connection may send (`COEDIT_CONNECTION_MESSAGES_PER_SECOND`,
    /// `COEDIT_CONNECTION_MESSAGE_BURST`), counted on each function instance.
    pub message_budget: crate::session::rate::MessageBudget,
}

/// Lambda's synchronous payload limit is 6 MB; stay under it with the event envelope.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            table_name: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            small_plan_editors: 5,
            large_plan_editors: 20,
            key_cache_ttl: Duration::from_secs(60),
            join_token_secret: None,
            previous_join_token_secret: None,
            join_token_ttl: Duration::from_secs(15 * 60),
            websocket_url: None,
            connections_endpoint: None,
            event_bus_name: None,
            final_template_retention: Duration::from_secs(24 * 3600),
            max_template_bytes: crate::patch::DEFAULT_MAX_TEMPLATE_BYTES,
            message_budget: Default::default(),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let defaults = Config::default();
        let number = |name: &str, default: u64| -> Result<u64> {
            match get(name) {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|_| {
                    Error::unexpected(format!("configuration: {name} must be a whole number"))
                }),
            }
        };
        Ok(Config {
            table_name: get("COEDIT_TABLE_NAME").filter(|t| !t.is_empty()),
            max_body_bytes: number("COEDIT_MAX_BODY_BYTES", defaults.max_body_bytes as u64)?
                as usize,
            small_plan_editors: number(
                "COEDIT_SMALL_PLAN_EDITORS",
                defaults.small_plan_editors.into(),
            )? as u32,
            large_plan_editors: number(
                "COEDIT_LARGE_PLAN_EDITORS",
                defaults.large_plan_editors.into(),
            )? as u32,
            key_cache_ttl: Duration::from_secs(number(
                "COEDIT_KEY_CACHE_SECONDS",
                defaults.key_cache_ttl.as_secs(),
            )?),
            join_token_secret: get("COEDIT_JOIN_TOKEN_SECRET")
                .filter(|s| !s.is_empty())
                .map(SigningSecret::new)
                .transpose()?,
            previous_join_token_secret: get("COEDIT_JOIN_TOKEN_SECRET_PREVIOUS")
                .filter(|s| !s.is_empty())
                .map(SigningSecret::new)
                .transpose()?,
            join_token_ttl: Duration::from_secs(number(
                "COEDIT_JOIN_TOKEN_SECONDS",
                defaults.join_token_ttl.as_secs(),
            )?),
            websocket_url: get("COEDIT_WEBSOCKET_URL").filter(|t| !t.is_empty()),
            connections_endpoint: get("COEDIT_CONNECTIONS_ENDPOINT").filter(|t| !t.is_empty()),
            event_bus_name: get("COEDIT_EVENT_BUS_NAME").filter(|t| !t.is_empty()),
            final_template_retention: Duration::from_secs(
                number(
                    "COEDIT_FINAL_TEMPLATE_HOURS",
                    defaults.final_template_retention.as_secs() / 3600,
                )? * 3600,
            )
            .min(crate::session::MAX_FINAL_TEMPLATE_KEEP),
            max_template_bytes: number(
                "COEDIT_MAX_TEMPLATE_BYTES",
                defaults.max_template_bytes as u64,
            )? as usize,
            message_budget: crate::session::rate::MessageBudget {
                per_second: number(
                    "COEDIT_CONNECTION_MESSAGES_PER_SECOND",
                    defaults.message_budget.per_second.into(),
                )?
                .max(1) as u32,
                burst: number(
                    "COEDIT_CONNECTION_MESSAGE_BURST",
                    defaults.message_budget.burst.into(),
                )?
                .max(1) as u32,
            },
        })
    }

    /// What a template and a change to it may be (size, depth, work).
    pub fn template_limits(&self) -> crate::patch::Limits {
        crate::patch::Limits::for_template_bytes(self.max_template_bytes)
    }

    /// The secrets a join token may be signed with: the current one, and the
    /// previous one while a rotation overlaps.
    pub fn accepted_secrets(&self) -> Result<Vec<&SigningSecret>> {
        let mut accepted = vec![self.signing_secret()?];
        accepted.extend(&self.previous_join_token_secret);
        Ok(accepted)
    }

    /// The join token secret, or the error a misconfigured deployment answers with.
    pub fn signing_secret(&self) -> Result<&SigningSecret> {
        self.join_token_secret
            .as_ref()
            .ok_or_else(|| Error::unexpected("configuration: COEDIT_JOIN_TOKEN_SECRET is not set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_refuses_garbage() {
        let c = Config::from_lookup(|n| match n {
            "COEDIT_TABLE_NAME" => Some("coedit".into()),
            "COEDIT_SMALL_PLAN_EDITORS" => Some("7".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.table_name.as_deref(), Some("coedit"));
        assert_eq!(c.small_plan_editors, 7);
        assert_eq!(c.large_plan_editors, 20);
        let err = Config::from_lookup(|n| (n == "COEDIT_MAX_BODY_BYTES").then(|| "lots".into()))
            .unwrap_err();
        assert!(err.detail.contains("COEDIT_MAX_BODY_BYTES"));
    }

    #[test]
    fn a_short_secret_is_refused_and_never_printed() {
        let short =
            Config::from_lookup(|n| (n == "COEDIT_JOIN_TOKEN_SECRET").then(|| "too-short".into()));
        assert!(short.unwrap_err().detail.contains("at least 32 bytes"));
        let secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
        let c = Config::from_lookup(|n| (n == "COEDIT_JOIN_TOKEN_SECRET").then(|| secret.into()))
            .unwrap();
        assert!(!format!("{c:?}").contains(secret));
        assert_eq!(c.signing_secret().unwrap().as_bytes(), secret.as_bytes());
    }
}
