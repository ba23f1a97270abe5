//! API keys as data: their format, their hash (how they are stored and looked up),
//! and the record a key maps to (tenant and plan). Nothing here reads or writes the
//! store; `auth` checks keys against it and `store` keeps the records.
//!
//! A key is shown once when created and stored only as its SHA-256, so a leaked
//! table does not leak keys. The stored hash is compared in constant time.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::TenantId;

/// Every API key starts with this; a bearer credential without it is a join token.
pub const KEY_PREFIX: &str = "ck_";

/// The shortest secret part a key may have (after the prefix).
const MIN_SECRET_CHARS: usize = 16;

/// Generates a new API key: `ck_` and 256 random bits in hex.
pub fn generate_api_key() -> Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| Error::unexpected(format!("the system's random source failed: {e}")))?;
    Ok(format!("{KEY_PREFIX}{}", to_hex(&secret)))
}

/// Whether a bearer credential is an API key (`ck_…`) rather than a join token.
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

/// Checks a key chosen by a person (such as the local stack's dev key): it must be
/// recognisable as an API key everywhere a credential is read.
pub fn check_format(api_key: &str) -> Result<()> {
    let secret = api_key.strip_prefix(KEY_PREFIX).unwrap_or_default();
    let well_formed = is_api_key(api_key)
        && secret.len() >= MIN_SECRET_CHARS
        && secret.len() <= 256
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if well_formed {
        Ok(())
    } else {
        Err(Error::malformed(format!(
            "an API key is '{KEY_PREFIX}' followed by {MIN_SECRET_CHARS} to 256 letters, digits, '_' or '-' \
             (for example the output of `coedit-admin create-key`); this one has {} characters and {} with '{KEY_PREFIX}'",
            api_key.len(),
            if is_api_key(api_key) {
                "starts"
            } else {
                "does not start"
            },
        )))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_round_trips() {
        let a = generate_api_key().unwrap();
        let b = generate_api_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("ck_") && a.len() == 3 + 64);
        check_format(&a).unwrap();
        let h = KeyHash::of(&a);
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert!(h.matches(&KeyHash::of(&a)));
        assert!(!h.matches(&KeyHash::of(&b)));
        assert!(KeyHash::from_hex("zz").is_none());
        assert!(!format!("{h:?}").contains(&h.to_hex()));
    }

    #[test]
    fn a_chosen_key_must_look_like_a_key() {
        check_format("ck_dev_0123456789abcdef").unwrap();
        for bad in [
            "dev-abc123",
            "ck_short",
            "ck_has space in it.....",
            "",
            "ck_",
        ] {
            let e = check_format(bad).unwrap_err();
            assert_eq!(e.code.number(), 4000, "{bad}");
            assert!(e.detail.contains("'ck_'"), "{}", e.detail);
            // A key is a secret: the answer never repeats it.
            assert!(bad.len() < 4 || !e.detail.contains(bad), "{}", e.detail);
        }
    }
}
