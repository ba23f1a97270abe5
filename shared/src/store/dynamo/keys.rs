//! The table's key layout, and only here: every partition and sort key, every
//! prefix and every key range the store reads.
//!
//! | pk              | sk                | holds                                        |
//! |-----------------|-------------------|----------------------------------------------|
//! | `S#<sid>`       | `A#<version>`     | a history entry (the log)                    |
//! | `S#<sid>`       | `C#<connId>`      | a present user's connection                  |
//! | `S#<sid>`       | `L#<element>`     | a lock                                       |
//! | `S#<sid>`       | `META`            | tenant, snapshot pointer, seats, expiry      |
//! | `S#<sid>`       | `T#<version>#<p>` | part p of the compressed template at version |
//! | `CONN#<connId>` | `CONN`            | the reverse lookup for ping and `$disconnect`|
//! | `KEY#<sha256>`  | `KEY`             | an API key's tenant and plan                 |
//! | `TK#<tenant>#<templateKey>` | `TK`  | the session a tenant's template key names    |
//!
//! The log sorts first (`A#` < `C#` < `L#` < `META` < `T#`), so one Query from the
//! first entry an editor has not seen up to `META` reads the entries it missed,
//! the connections to send the change to, the locks and the head: a change costs
//! one read and one small write. Another from `C#` to the end of `T#` reads the
//! members, the head and the snapshot without the log.

use crate::api_key::KeyHash;
use crate::session::{SessionId, TemplateKey, TenantId, Version};

/// The sort key of a session's head.
pub const META: &str = "META";

/// The sort key of a connection's reverse lookup item.
pub const CONNECTION_LOOKUP: &str = "CONN";

/// The sort key of an API key's item.
pub const API_KEY: &str = "KEY";

/// The sort key of a template key's claim.
pub const TEMPLATE_CLAIM: &str = "TK";

const SESSION: &str = "S#";
const HISTORY: &str = "A#";
const CONNECTION: &str = "C#";
const LOCK: &str = "L#";
const PART: &str = "T#";
const CONNECTION_PK: &str = "CONN#";
const API_KEY_PK: &str = "KEY#";
const TEMPLATE_CLAIM_PK: &str = "TK#";

/// Sweeper work is spread over this many index partitions so no key gets hot (each
/// takes ~1000 writes/s). An idle sweep costs one Query per shard and kind.
pub const SWEEP_SHARDS: u32 = 4;

pub fn session_pk(id: &SessionId) -> String {
    format!("{SESSION}{id}")
}

/// The session a partition key names, if it names one.
pub fn session_of_pk(pk: &str) -> Option<SessionId> {
    SessionId::parse(pk.strip_prefix(SESSION)?)
}

pub fn history_sk(v: Version) -> String {
    format!("{HISTORY}{:012}", v.0)
}

/// Sorts after every history key and before everything else of the session.
pub const HISTORY_END: &str = "A$";

/// The lowest history key: a Query from here reads the log from its start.
pub const HISTORY_START: &str = HISTORY;

pub fn is_history(sk: &str) -> bool {
    sk.starts_with(HISTORY)
}

/// The version a history key holds.
pub fn version_of_history(sk: &str) -> Option<Version> {
    sk.strip_prefix(HISTORY)?.parse().ok().map(Version)
}

pub fn connection_sk(connection_id: &str) -> String {
    format!("{CONNECTION}{connection_id}")
}

/// The connection id a connection key names.
pub fn connection_of(sk: &str) -> Option<&str> {
    sk.strip_prefix(CONNECTION)
}

pub fn connection_pk(connection_id: &str) -> String {
    format!("{CONNECTION_PK}{connection_id}")
}

pub fn lock_sk(element: &str) -> String {
    format!("{LOCK}{element}")
}

/// The element a lock key names.
pub fn element_of(sk: &str) -> Option<&str> {
    sk.strip_prefix(LOCK)
}

pub fn part_sk(v: Version, part: usize) -> String {
    format!("{}{part:03}", parts_prefix(v))
}

/// The version a snapshot part's key holds.
pub fn version_of_part(sk: &str) -> Option<Version> {
    let rest = sk.strip_prefix(PART)?;
    rest.split('#').next()?.parse().ok().map(Version)
}

/// What every part key of the snapshot at `v` starts with.
pub fn parts_prefix(v: Version) -> String {
    format!("{PART}{:012}#", v.0)
}

/// Sorts after every part key of the snapshot at `v`.
pub fn parts_end(v: Version) -> String {
    format!("{}~", parts_prefix(v))
}

/// The first of a session's small items (connections, locks, head): a Query from
/// here to `META` reads the members without the log or the snapshot.
pub const MEMBERS_START: &str = CONNECTION;

/// Sorts after every snapshot part: a Query from `MEMBERS_START` to here reads the
/// members, the head and every stored snapshot.
pub const PARTS_END: &str = "T$";

pub fn api_key_pk(hash: &KeyHash) -> String {
    format!("{API_KEY_PK}{}", hash.to_hex())
}

/// The claim on a tenant's template key. Tenant ids hold no `#`, so two tenants'
/// equal keys never share an item.
pub fn template_claim_pk(tenant: &TenantId, key: &TemplateKey) -> String {
    format!(
        "{TEMPLATE_CLAIM_PK}{tenant}#{key}",
        tenant = tenant.as_str()
    )
}

/// What the sweeper is to do with a session listed in its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKind {
    /// Expired: erase it (`E#<shard>`).
    Erase,
    /// Occupied: look for stale connections (`P#<shard>`).
    CheckPresence,
}

impl SweepKind {
    pub const ALL: [SweepKind; 2] = [SweepKind::Erase, SweepKind::CheckPresence];

    fn prefix(self) -> &'static str {
        match self {
            SweepKind::Erase => "E",
            SweepKind::CheckPresence => "P",
        }
    }
}

/// The sweep index partition (`sweepShard`) a session is listed under.
pub fn sweep_shard(kind: SweepKind, id: &SessionId) -> String {
    let shard = id
        .as_str()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
        % SWEEP_SHARDS;
    sweep_partition(kind, shard)
}

/// One partition of the sweep index.
pub fn sweep_partition(kind: SweepKind, shard: u32) -> String {
    format!("{}#{shard}", kind.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_the_queries_need() {
        let v = Version(7);
        let mut keys = [
            META.to_owned(),
            part_sk(v, 0),
            lock_sk("m"),
            connection_sk("c"),
            history_sk(v),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                history_sk(v),
                connection_sk("c"),
                lock_sk("m"),
                META.to_owned(),
                part_sk(v, 0)
            ]
        );
        assert!(history_sk(Version(u64::from(u32::MAX))).as_str() < HISTORY_END);
        assert!(HISTORY_END < MEMBERS_START);
        assert!(part_sk(Version(999_999_999_999), 999).as_str() < PARTS_END);
        assert!(part_sk(v, 999) < parts_end(v) && parts_end(v) < part_sk(Version(8), 0));
        assert_eq!(version_of_history(&history_sk(v)), Some(v));
        assert_eq!(connection_of(&connection_sk("abc=")), Some("abc="));
        assert_eq!(element_of(&lock_sk("row-1")), Some("row-1"));
    }
}
