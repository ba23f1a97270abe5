//! Configuration, read once from the environment at start (cold start on Lambda).

use std::time::Duration;

use crate::error::{Error, Result};

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
        })
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
}
