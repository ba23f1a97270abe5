//! Credentials: API keys (who is calling, for which tenant, on which plan; the
//! keys themselves are `api_key`) and join tokens (`join_token`: one user in one
//! session, for browsers).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::api_key::{ApiKeyRecord, KeyHash, Plan};
use crate::clock::Timestamp;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::session::TenantId;
use crate::store::SessionStore;

pub mod join_token;

pub use join_token::JoinGrant;

/// An authenticated caller of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    /// How many co-editors may be present at once; 0 means no co-editing.
    pub max_editors: u32,
}

impl Caller {
    fn from_record(record: &ApiKeyRecord, config: &Config) -> Caller {
        let plan_limit = match record.plan {
            Plan::None => 0,
            Plan::Small => config.small_plan_editors,
            Plan::Large => config.large_plan_editors,
        };
        Caller {
            tenant: record.tenant.clone(),
            max_editors: if record.plan == Plan::None {
                0
            } else {
                record.max_editors.unwrap_or(plan_limit)
            },
        }
    }

    /// Co-editing calls need a plan that has it.
    pub fn require_coediting(&self) -> Result<()> {
        if self.max_editors == 0 {
            return Err(Error::new(
                Code::PlanWithoutCoediting,
                "this API key's plan does not include co-editing",
            ));
        }
        Ok(())
    }
}

/// The bearer credential of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str> {
    let header = header.ok_or_else(|| {
        Error::unauthorized(
            "the Authorization header is missing; send 'Authorization: Bearer <API key>'",
        )
    })?;
    let (scheme, credential) = header.trim().split_once(' ').ok_or_else(|| {
        Error::unauthorized("the Authorization header must be 'Bearer <credential>'")
    })?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(Error::unauthorized(
            "the Authorization header must be 'Bearer <credential>'",
        ));
    }
    Ok(credential)
}

/// Looks API keys up, remembering answers for a short while: a warm function then
/// pays no store read per request. A revoked key stops working within `ttl`.
pub struct ApiKeys {
    ttl: Duration,
    cache: Mutex<HashMap<KeyHash, (Option<ApiKeyRecord>, Timestamp)>>,
}

/// Unknown keys are remembered briefly, so a key created a moment ago works at once
/// while a flood of bad keys still costs few reads.
const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(5);
const CACHE_CAPACITY: usize = 10_000;

impl ApiKeys {
    pub fn new(ttl: Duration) -> Self {
        ApiKeys {
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(
        &self,
        store: &dyn SessionStore,
        config: &Config,
        api_key: &str,
        now: Timestamp,
    ) -> Result<Caller> {
        let hash = KeyHash::of(api_key);
        let record = match self.cached(&hash, now) {
            Some(record) => record,
            None => {
                let record = store.find_api_key(&hash).await?;
                self.remember(hash, record.clone(), now);
                record
            }
        };
        match record {
            Some(record) if record.hash.matches(&hash) => Ok(Caller::from_record(&record, config)),
            _ => Err(Error::unauthorized("the API key is not valid")),
        }
    }

    fn cached(&self, hash: &KeyHash, now: Timestamp) -> Option<Option<ApiKeyRecord>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (record, fetched) = cache.get(hash)?;
        let ttl = if record.is_some() {
            self.ttl
        } else {
            UNKNOWN_KEY_TTL
        };
        (now < fetched.plus(ttl)).then(|| record.clone())
    }

    fn remember(&self, hash: KeyHash, record: Option<ApiKeyRecord>, now: Timestamp) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, (record, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer  abc ")).unwrap(), "abc");
        for bad in [
            None,
            Some(""),
            Some("Basic abc"),
            Some("Bearer"),
            Some("Bearer  "),
        ] {
            assert_eq!(bearer(bad).unwrap_err().code, Code::Unauthorized, "{bad:?}");
        }
    }

    #[test]
    fn plans_map_to_limits() {
        let config = Config::default();
        let record = |plan, max_editors| ApiKeyRecord {
            hash: KeyHash::of("k"),
            tenant: TenantId::parse("t").unwrap(),
            plan,
            max_editors,
            created_at: Timestamp(0),
        };
        assert_eq!(
            Caller::from_record(&record(Plan::Small, None), &config).max_editors,
            5
        );
        assert_eq!(
            Caller::from_record(&record(Plan::Large, None), &config).max_editors,
            20
        );
        assert_eq!(
            Caller::from_record(&record(Plan::Large, Some(3)), &config).max_editors,
            3
        );
        let none = Caller::from_record(&record(Plan::None, Some(3)), &config);
        assert_eq!(none.require_coediting().unwrap_err().code.number(), 5500);
    }
}
