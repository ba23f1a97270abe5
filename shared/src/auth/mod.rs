//! Credentials: API keys (who is calling, for which tenant, on which plan) and join
//! tokens (`join_token`: one user in one session, for browsers).
//!
//! A key is shown once when created and stored only as its SHA-256, so a leaked
//! table does not leak keys. The stored hash is compared in constant time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::session::TenantId;
use crate::store::SessionStore;

pub mod join_token;

pub use join_token::JoinGrant;

const KEY_PREFIX: &str = "ck_";

/// Generates a new API key: `ck_` and 256 random bits in hex.
pub fn generate_api_key() -> Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| Error::unexpected(format!("the system's random source failed: {e}")))?;
    Ok(format!("{KEY_PREFIX}{}", to_hex(&secret)))
}

/// The SHA-256 of an API key: how keys are stored and looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn of(api_key: &str) -> KeyHash {
        KeyHash(Sha256::digest(api_key.as_bytes()).into())
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<KeyHash> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(KeyHash(out))
    }

    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Never print a key's hash in full by accident: logs get the first 8 hex digits.
impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a tenant paid for: how many co-editors may be present in one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// No co-editing at all: every co-editing call answers 5500.
    None,
    /// The small plan (5 co-editors unless configured otherwise).
    Small,
    /// The large plan (20 co-editors unless configured otherwise).
    Large,
}

impl Plan {
    pub fn parse(text: &str) -> Option<Plan> {
        match text {
            "none" => Some(Plan::None),
            "small" => Some(Plan::Small),
            "large" => Some(Plan::Large),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::None => "none",
            Plan::Small => "small",
            Plan::Large => "large",
        }
    }
}

/// A stored API key: its hash, its tenant and plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub hash: KeyHash,
    pub tenant: TenantId,
    pub plan: Plan,
    /// Overrides the plan's co-editor limit for this key (e.g. a trial).
    pub max_editors: Option<u32>,
    pub created_at: Timestamp,
}

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

/// Whether a bearer credential is an API key (`ck_…`) rather than a join token.
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
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
    fn keys_are_random_and_hash_round_trips() {
        let a = generate_api_key().unwrap();
        let b = generate_api_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("ck_") && a.len() == 3 + 64);
        let h = KeyHash::of(&a);
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert!(h.matches(&KeyHash::of(&a)));
        assert!(!h.matches(&KeyHash::of(&b)));
        assert!(KeyHash::from_hex("zz").is_none());
        assert!(!format!("{h:?}").contains(&h.to_hex()));
    }

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
