//! How the domain's values are written as DynamoDB items and read back: one pair
//! of functions per kind of item, and the attribute accessors they share.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{self, SweepKind};
use crate::api_key::{ApiKeyRecord, KeyHash, Plan};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::{
    Connection, Ended, HistoryEntry, Lock, Role, Session, SessionId, SessionMembers, TemplateKey,
    TenantId, User, Version,
};
use crate::store::snapshot::Snapshot;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An item's primary key.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

pub fn sk(item: &Item) -> Option<&str> {
    item.get("sk")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::unexpected(format!(
            "a stored item lacks the string attribute '{name}'"
        ))),
    }
}

pub fn optional_string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn optional_number(item: &Item, name: &str) -> Result<Option<u64>> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
            Error::unexpected(format!(
                "the stored attribute '{name}' is not a whole number"
            ))
        }),
        Some(_) => Err(Error::unexpected(format!(
            "the stored attribute '{name}' is not a number"
        ))),
    }
}

pub fn number(item: &Item, name: &str) -> Result<u64> {
    optional_number(item, name)?.ok_or_else(|| {
        Error::unexpected(format!("a stored item lacks the number attribute '{name}'"))
    })
}

/// A tenant's claim on a template key: the session it names.
/// A key of an item of a session, with the TTL that reclaims it were the sweeper
/// never to erase it (`session::RECLAIM_AFTER` from now: the real time, whatever
/// clock the caller runs on).
pub fn session_key(pk: String, sk: impl Into<String>) -> Item {
    use crate::clock::Clock as _;
    let mut item = key(pk, sk);
    let reclaim = crate::clock::SystemClock
        .now()
        .plus(crate::session::RECLAIM_AFTER);
    item.insert("ttl".into(), n(reclaim.epoch_seconds_ceil()));
    item
}

pub fn template_claim_item(session: &Session, template_key: &TemplateKey) -> Item {
    let mut item = session_key(
        keys::template_claim_pk(&session.tenant, template_key),
        keys::TEMPLATE_CLAIM,
    );
    item.insert("sessionId".into(), s(session.id.as_str()));
    item
}

/// The session a template key's claim names.
pub fn session_of_claim(item: &Item) -> Result<SessionId> {
    SessionId::parse(string(item, "sessionId")?)
        .ok_or_else(|| Error::unexpected("a template key's claim names no session"))
}

/// The session's head as first written: the session itself, its snapshot's size
/// and no seats taken.
pub fn meta_item(session: &Session, snapshot_parts: usize, snapshot_bytes: usize) -> Item {
    let mut item = session_key(keys::session_pk(&session.id), keys::META);
    item.extend([
        ("tenant".into(), s(session.tenant.as_str())),
        ("firstVersion".into(), n(session.first_version.0)),
        ("snapVersion".into(), n(session.snapshot_version.0)),
        ("snapParts".into(), n(snapshot_parts)),
        ("snapBytes".into(), n(snapshot_bytes)),
        ("createdAt".into(), n(session.created_at.millis())),
        // Connection id -> when its seat was claimed; its size is the seat count.
        ("seated".into(), AttributeValue::M(Item::new())),
        ("watching".into(), AttributeValue::M(Item::new())),
    ]);
    if let Some(key) = &session.template_key {
        item.insert("templateKey".into(), s(key.as_str()));
    }
    if let Some(at) = session.expires_at {
        item.insert("expiresAt".into(), n(at.millis()));
        // The sparse index the sweeper reads to erase sessions on time.
        item.insert(
            "sweepShard".into(),
            s(keys::sweep_shard(SweepKind::Erase, &session.id)),
        );
        item.insert("sweepAt".into(), n(at.millis()));
    }
    item
}

pub fn session_from_meta(id: &SessionId, meta: &Item) -> Result<Session> {
    let time = |name| Ok::<_, Error>(optional_number(meta, name)?.map(|v| Timestamp(v as i64)));
    let reported = match (
        optional_number(meta, "reportedVersion")?,
        time("reportedAt")?,
    ) {
        (Some(v), Some(at)) => Some((Version(v), at)),
        _ => None,
    };
    let ended = match (time("endedAt")?, time("keptUntil")?) {
        (Some(at), Some(kept_until)) => Some(Ended { at, kept_until }),
        _ => None,
    };
    Ok(Session {
        id: id.clone(),
        tenant: TenantId::parse(string(meta, "tenant")?)?,
        template_key: optional_string(meta, "templateKey")
            .map(TemplateKey::parse)
            .transpose()?,
        first_version: Version(optional_number(meta, "firstVersion")?.unwrap_or(1)),
        snapshot_version: Version(number(meta, "snapVersion")?),
        created_at: Timestamp(number(meta, "createdAt")? as i64),
        expires_at: time("expiresAt")?,
        seats: seated(meta, Role::Editor)?.len() as u32,
        viewers: seated(meta, Role::Viewer)?.len() as u32,
        reported,
        ended,
    })
}

/// The seats of `role` claimed in a session's head: connection id and when.
pub fn seated(meta: &Item, role: Role) -> Result<Vec<(String, Timestamp)>> {
    match meta.get(seat_map(role)) {
        None => Ok(Vec::new()),
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(id, at)| match at {
                AttributeValue::N(v) => v
                    .parse()
                    .map(|ms| (id.clone(), Timestamp(ms)))
                    .map_err(|_| Error::unexpected("a stored seat's time is not a number")),
                _ => Err(Error::unexpected("a stored seat's time is not a number")),
            })
            .collect(),
        Some(_) => Err(Error::unexpected("a stored seat map is not a map")),
    }
}

/// The head among a Query's items.
pub fn find_meta(items: &[Item]) -> Option<&Item> {
    items.iter().find(|i| sk(i) == Some(keys::META))
}

/// The snapshot's size as the head records it: (parts, compressed bytes).
pub fn snapshot_size(meta: &Item) -> Result<(usize, usize)> {
    Ok((
        number(meta, "snapParts")? as usize,
        number(meta, "snapBytes")? as usize,
    ))
}

pub fn history_item(id: &SessionId, entry: &HistoryEntry) -> Result<Item> {
    let text = serde_json::to_string(entry)
        .map_err(|e| Error::unexpected(format!("serializing a history entry: {e}")))?;
    let mut item = session_key(keys::session_pk(id), keys::history_sk(entry.version));
    item.insert("changeId".into(), s(&entry.change_id));
    item.insert("entry".into(), s(text));
    if let Some(connection) = &entry.connection {
        item.insert("connection".into(), s(connection));
    }
    Ok(item)
}

pub fn history_from_item(item: &Item) -> Result<HistoryEntry> {
    let mut entry: HistoryEntry = serde_json::from_str(string(item, "entry")?)
        .map_err(|e| Error::unexpected(format!("a stored history entry does not parse: {e}")))?;
    entry.connection = match item.get("connection") {
        Some(AttributeValue::S(c)) => Some(c.clone()),
        _ => None,
    };
    Ok(entry)
}

/// Bytes of a stored history entry's JSON (its `entry` attribute).
pub fn history_bytes(item: &Item) -> usize {
    match item.get("entry") {
        Some(AttributeValue::S(text)) => text.len(),
        _ => 0,
    }
}

pub fn history_version(item: &Item) -> Result<Version> {
    sk(item)
        .and_then(keys::version_of_history)
        .ok_or_else(|| Error::unexpected("a stored history key is malformed"))
}

/// The items of the snapshot at `version`, one per part. The first also says how
/// many parts and bytes the whole has, so a kept snapshot reads back without META.
pub fn part_items(id: &SessionId, version: Version, snapshot: &Snapshot) -> Vec<Item> {
    let pk = keys::session_pk(id);
    snapshot
        .parts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            let mut item = session_key(pk.clone(), keys::part_sk(version, index));
            item.insert("part".into(), AttributeValue::B(Blob::new(part.as_slice())));
            if index == 0 {
                item.insert("snapParts".into(), n(snapshot.parts.len()));
                item.insert("snapBytes".into(), n(snapshot.compressed_len()));
            }
            item
        })
        .collect()
}

/// The bytes of the parts among `items` whose keys start with `prefix`, in order.
pub fn parts_with_prefix<'a>(items: &'a [Item], prefix: &str) -> Vec<&'a [u8]> {
    items
        .iter()
        .filter(|i| sk(i).is_some_and(|k| k.starts_with(prefix)))
        .filter_map(|i| match i.get("part") {
            Some(AttributeValue::B(b)) => Some(b.as_ref()),
            _ => None,
        })
        .collect()
}

fn user_attributes(user: &User) -> Item {
    let mut item = Item::from([
        ("userId".into(), s(&user.user_id)),
        ("username".into(), s(&user.username)),
        ("userColor".into(), s(&user.user_color)),
    ]);
    if user.role == Role::Viewer {
        item.insert("role".into(), s("viewer"));
    }
    item
}

fn user_from_item(item: &Item) -> Result<User> {
    Ok(User {
        user_id: string(item, "userId")?.to_owned(),
        username: string(item, "username")?.to_owned(),
        user_color: string(item, "userColor")?.to_owned(),
        role: match optional_string(item, "role") {
            Some("viewer") => Role::Viewer,
            _ => Role::Editor,
        },
    })
}

/// The head's map of the seats a role takes: connection id -> when claimed; its
/// size is the count the limit is checked against.
pub fn seat_map(role: Role) -> &'static str {
    match role {
        Role::Editor => "seated",
        Role::Viewer => "watching",
    }
}

pub fn connection_item(id: &SessionId, c: &Connection) -> Item {
    let mut item = session_key(keys::session_pk(id), keys::connection_sk(&c.id));
    item.extend(user_attributes(&c.user));
    item.insert("connectedAt".into(), n(c.connected_at.millis()));
    item.insert("lastSeen".into(), n(c.last_seen.millis()));
    item
}

pub fn connection_from_item(item: &Item) -> Result<Connection> {
    Ok(Connection {
        id: sk(item)
            .and_then(keys::connection_of)
            .ok_or_else(|| Error::unexpected("a stored connection key is malformed"))?
            .to_owned(),
        user: user_from_item(item)?,
        connected_at: Timestamp(number(item, "connectedAt")? as i64),
        last_seen: Timestamp(number(item, "lastSeen")? as i64),
    })
}

/// The reverse lookup: which session a connection is in.
pub fn connection_lookup_item(connection_id: &str, id: &SessionId) -> Item {
    let mut item = session_key(keys::connection_pk(connection_id), keys::CONNECTION_LOOKUP);
    item.insert("session".into(), s(id.as_str()));
    item
}

pub fn session_of_lookup(item: &Item) -> Result<SessionId> {
    SessionId::parse(string(item, "session")?)
        .ok_or_else(|| Error::unexpected("a stored connection names a malformed session"))
}

pub fn lock_item(id: &SessionId, lock: &Lock) -> Item {
    let mut item = session_key(keys::session_pk(id), keys::lock_sk(&lock.element));
    item.extend(user_attributes(&lock.user));
    item.insert("holder".into(), s(&lock.connection_id));
    item.insert("since".into(), n(lock.since.millis()));
    item
}

pub fn lock_from_item(item: &Item) -> Result<Lock> {
    Ok(Lock {
        element: sk(item)
            .and_then(keys::element_of)
            .ok_or_else(|| Error::unexpected("a stored lock key is malformed"))?
            .to_owned(),
        connection_id: string(item, "holder")?.to_owned(),
        user: user_from_item(item)?,
        since: Timestamp(number(item, "since")? as i64),
    })
}

/// The members of a session from the items of a Query that reached `META`;
/// `None` when the session does not exist or has expired.
pub fn members_from_items(
    id: &SessionId,
    items: &[Item],
    now: Timestamp,
) -> Result<Option<SessionMembers>> {
    let Some(meta) = find_meta(items) else {
        return Ok(None);
    };
    let session = session_from_meta(id, meta)?;
    if session.is_expired(now) {
        return Ok(None);
    }
    let mut connections = Vec::new();
    let mut locks = Vec::new();
    for item in items {
        let Some(k) = sk(item) else { continue };
        if keys::connection_of(k).is_some() {
            connections.push(connection_from_item(item)?);
        } else if keys::element_of(k).is_some() {
            locks.push(lock_from_item(item)?);
        }
    }
    Ok(Some(SessionMembers {
        session,
        connections,
        locks,
    }))
}

pub fn api_key_item(record: &ApiKeyRecord) -> Item {
    let mut item = key(keys::api_key_pk(&record.hash), keys::API_KEY);
    item.extend([
        ("keyHash".into(), s(record.hash.to_hex())),
        ("tenant".into(), s(record.tenant.as_str())),
        ("plan".into(), s(record.plan.as_str())),
        ("createdAt".into(), n(record.created_at.millis())),
    ]);
    if let Some(max) = record.max_editors {
        item.insert("maxEditors".into(), n(max));
    }
    item
}

pub fn api_key_from_item(item: &Item) -> Result<ApiKeyRecord> {
    let hash = KeyHash::from_hex(string(item, "keyHash")?)
        .ok_or_else(|| Error::unexpected("a stored API key hash is not 64 hex digits"))?;
    let plan = Plan::parse(string(item, "plan")?)
        .ok_or_else(|| Error::unexpected("a stored API key has an unknown plan"))?;
    Ok(ApiKeyRecord {
        hash,
        tenant: TenantId::parse(string(item, "tenant")?)?,
        plan,
        max_editors: optional_number(item, "maxEditors")?.map(|v| v as u32),
        created_at: Timestamp(number(item, "createdAt")? as i64),
    })
}
