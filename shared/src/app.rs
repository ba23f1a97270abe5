//! The application: configuration, store, notifier and clock, built once per
//! process (at a Lambda's cold start, or when the local stack starts) and shared by
//! every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::api_key::is_api_key;
use crate::auth::{ApiKeys, Caller, JoinGrant, bearer, join_token};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{self, HostEvents, eventbridge::EventBridgeEvents};
use crate::notify::{ApiGatewayNotifier, Notifier, Unconfigured};
use crate::session::change::Head;
use crate::session::rate::{Admission, Bucket};
use crate::session::{SessionId, TenantId};
use crate::store::{DynamoStore, SessionStore};

pub struct App {
    pub config: Config,
    pub store: Arc<dyn SessionStore>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// Where host events go (`with_events`); none configured: publishing fails.
    pub events: Arc<dyn HostEvents>,
    api_keys: ApiKeys,
    /// Connection id -> session, learnt on a warm instance: a connection never
    /// changes session, so pings skip the reverse lookup after the first.
    known_connections: Mutex<HashMap<String, SessionId>>,
    /// Templates this instance has built, by session: a warm function catches up
    /// by reading only the changes it missed, never the whole template again.
    heads: Mutex<HashMap<SessionId, HeadSlot>>,
    /// Each connection's message budget on this instance (`session::rate`).
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// One session's template on this instance; the lock also lines up this
/// instance's changes to the session one after the other.
pub type HeadSlot = Arc<tokio::sync::Mutex<Option<Head>>>;

/// Most sessions whose templates one instance keeps, and most bytes of them (as
/// JSON: as values they take about 8 times that, within the edit function's
/// 1024 MB even when every one is at the 5 MiB limit).
const HEADS_CAPACITY: usize = 32;
const HEADS_BYTES: usize = 64 * 1024 * 1024;

/// Who is calling a REST route that both kinds of credential may use.
#[derive(Debug, Clone)]
pub enum Credential {
    ApiKey(Caller),
    JoinToken(JoinGrant),
}

const KNOWN_CONNECTIONS_CAPACITY: usize = 10_000;

/// Buckets kept before full ones (forgetting them loses nothing) are dropped.
const BUCKETS_CAPACITY: usize = 10_000;

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn SessionStore>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> App {
        let api_keys = ApiKeys::new(config.key_cache_ttl);
        App {
            config,
            store,
            notifier,
            clock,
            events: Arc::new(events::Unconfigured),
            api_keys,
            known_connections: Mutex::new(HashMap::new()),
            heads: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one message from the connection's budget on this instance. A
    /// connection's messages may land on several instances, so it may send up to
    /// that many times its budget; the API's route throttling bounds the sum.
    pub fn admit_message(&self, connection_id: &str) -> Admission {
        let budget = self.config.message_budget;
        let now = self.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= BUCKETS_CAPACITY && !buckets.contains_key(connection_id) {
            buckets.retain(|_, b| !b.is_full(budget, now));
        }
        buckets
            .entry(connection_id.to_owned())
            .or_insert_with(|| Bucket::full(budget, now))
            .admit(budget, now)
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
        let notifier: Arc<dyn Notifier> = match &config.connections_endpoint {
            Some(endpoint) => Arc::new(ApiGatewayNotifier::from_lambda_env(endpoint)?),
            None => Arc::new(Unconfigured),
        };
        let events: Arc<dyn HostEvents> = match &config.event_bus_name {
            Some(bus) => Arc::new(EventBridgeEvents::from_lambda_env(bus)?),
            None => Arc::new(events::Unconfigured),
        };
        Ok(App::new(config, Arc::new(store), notifier, Arc::new(SystemClock)).with_events(events))
    }

    /// The same app, publishing host events to `events`.
    pub fn with_events(mut self, events: Arc<dyn HostEvents>) -> App {
        self.events = events;
        self
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

    /// The caller behind `Authorization: Bearer <API key or join token>`.
    pub async fn credential(&self, authorization: Option<&str>) -> Result<Credential> {
        let credential = bearer(authorization)?;
        if is_api_key(credential) {
            Ok(Credential::ApiKey(self.authenticate(authorization).await?))
        } else {
            Ok(Credential::JoinToken(self.verify_join_token(credential)?))
        }
    }

    /// The user behind `Authorization: Bearer <join token>`, for routes only a
    /// user may call: an API key is refused as such without being looked up (the
    /// functions of those routes may not read API keys at all).
    pub fn join_grant(&self, authorization: Option<&str>) -> Result<JoinGrant> {
        let credential = bearer(authorization)?;
        if is_api_key(credential) {
            return Err(Error::new(
                crate::error::Code::TokenNotValid,
                "a change is made by a user: send it with that user's join token",
            ));
        }
        self.verify_join_token(credential)
    }

    pub fn verify_join_token(&self, token: &str) -> Result<JoinGrant> {
        join_token::verify(&self.config.accepted_secrets()?, token, self.now())
    }

    /// The session a connection is in, from this instance's memory or the store.
    pub async fn session_of(&self, connection_id: &str) -> Result<Option<SessionId>> {
        if let Some(id) = self.known().get(connection_id) {
            return Ok(Some(id.clone()));
        }
        let found = self.store.find_connection(connection_id).await?;
        if let Some(id) = &found {
            self.remember_connection(connection_id, id);
        }
        Ok(found)
    }

    pub fn remember_connection(&self, connection_id: &str, id: &SessionId) {
        let mut known = self.known();
        if known.len() >= KNOWN_CONNECTIONS_CAPACITY {
            known.clear();
        }
        known.insert(connection_id.to_owned(), id.clone());
    }

    pub fn forget_connection(&self, connection_id: &str) {
        self.known().remove(connection_id);
    }

    /// This instance's slot for a session's template (empty until first loaded).
    pub fn head_slot(&self, id: &SessionId) -> HeadSlot {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = heads.get(id) {
            return slot.clone();
        }
        // A template being used is locked and counts as nothing: it cannot be
        // forgotten anyway.
        let held: usize = heads
            .values()
            .filter_map(|slot| {
                slot.try_lock()
                    .ok()
                    .and_then(|h| h.as_ref().map(Head::size))
            })
            .sum();
        if heads.len() >= HEADS_CAPACITY || held >= HEADS_BYTES {
            // Forget templates nobody is using right now.
            heads.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        let slot = HeadSlot::default();
        heads.insert(id.clone(), slot.clone());
        slot
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionId>> {
        self.known_connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Credential {
    /// The tenant whose sessions this credential may read.
    pub fn tenant(&self) -> &TenantId {
        match self {
            Credential::ApiKey(caller) => &caller.tenant,
            Credential::JoinToken(grant) => &grant.tenant,
        }
    }

    /// The co-editor limit of the plan behind this credential.
    pub fn max_editors(&self) -> u32 {
        match self {
            Credential::ApiKey(caller) => caller.max_editors,
            Credential::JoinToken(grant) => grant.max_editors,
        }
    }
}
