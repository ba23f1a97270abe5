//! The application: configuration, store and clock, built once per process (at a
//! Lambda's cold start, or when the local stack starts) and shared by every request.

use std::sync::Arc;

use crate::auth::{ApiKeys, Caller, bearer};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{DynamoStore, SessionStore};

pub struct App {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    api_keys: ApiKeys,
}

impl App {
    pub fn new(config: Config, store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>) -> App {
        let api_keys = ApiKeys::new(config.key_cache_ttl);
        App {
            config,
            store,
            clock,
            api_keys,
        }
    }

    /// What a Lambda function runs with: configuration from the environment and
    /// the DynamoDB table it names.
    pub fn from_lambda_env() -> Result<App> {
        let config = Config::from_env()?;
        let table = config
            .table_name
            .clone()
            .ok_or_else(|| Error::unexpected("configuration: COEDIT_TABLE_NAME is not set"))?;
        let store = DynamoStore::from_lambda_env(table)?;
        Ok(App::new(config, Arc::new(store), Arc::new(SystemClock)))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The caller behind an `Authorization: Bearer <API key>` header.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller> {
        let key = bearer(authorization)?;
        self.api_keys
            .authenticate(self.store.as_ref(), &self.config, key, self.now())
            .await
    }
}
