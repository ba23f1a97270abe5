//! The DynamoDB store: one table, one partition per session (DESIGN.md, "Storage").
//!
//! | pk            | sk               | holds                                        |
//! |---------------|------------------|----------------------------------------------|
//! | `S#<sid>`     | `A#<version>`    | a history entry (the log)                    |
//! | `S#<sid>`     | `C#<connId>`     | a present user's connection                  |
//! | `S#<sid>`     | `L#<element>`    | a lock                                       |
//! | `S#<sid>`     | `META`           | tenant, snapshot pointer, seats, expiry      |
//! | `S#<sid>`     | `T#<version>#<p>`| part p of the compressed template at version |
//!
//! The log sorts first (`A#` < `C#` < `L#` < `META`), so one Query from the first
//! entry an editor has not seen up to `META` reads the entries it missed, the
//! connections to send the change to, the locks and the head: a change costs one
//! read and one small write. DESIGN.md named the log `V#`; it sorted after the
//! snapshot parts, which would have put them between the two.
//! | `KEY#<sha256>`| `KEY`            | an API key's tenant and plan                 |
//!
//! Every request asks for its consumed capacity, which `CapacityMeter` adds up:
//! cost is measured, not guessed.

mod members;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem,
};

use super::snapshot::Snapshot;
use super::{Catchup, JoinOutcome, LeaveOutcome, LockOutcome, Seat, SessionStore, SweepTask};
use crate::auth::{ApiKeyRecord, KeyHash, Plan};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::presence::Departure;
use crate::session::{
    Connection, HistoryEntry, Lock, NewSession, Session, SessionId, SessionMembers, SessionState,
    Template, TenantId, User, Version,
};

type Item = HashMap<String, AttributeValue>;

/// Sweeper work is spread over this many index partitions so no key gets hot (each
/// takes ~1000 writes/s). An idle sweep costs one Query per shard and kind.
const SWEEP_SHARDS: u32 = 4;

/// A read can overlap a compaction that replaces the snapshot it is reading; it
/// then sees an incomplete snapshot and reads again, at most this often.
const TORN_READ_ATTEMPTS: usize = 3;

pub struct DynamoStore {
    client: Client,
    table: String,
    meter: Arc<CapacityMeter>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            meter: Arc::new(CapacityMeter::default()),
        }
    }

    /// The client a Lambda function needs, built once at cold start: region and
    /// credentials from the variables Lambda sets, and `AWS_ENDPOINT_URL_DYNAMODB`
    /// (or `AWS_ENDPOINT_URL`) when set, e.g. under `cargo lambda watch`. It skips
    /// aws-config's full provider chain (profiles, STS, SSO, instance metadata):
    /// Lambda never needs it, and it would add megabytes and start-up time.
    pub fn from_lambda_env(table: impl Into<String>) -> Result<Self> {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .map_err(|_| Error::unexpected("configuration: AWS_REGION is not set"))?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok();
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http_client())
            .region(aws_sdk_dynamodb::config::Region::new(region))
            .credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        let config = config.build();
        Ok(DynamoStore::new(Client::from_conf(config), table))
    }

    /// The client as the full AWS environment configures it (profiles, SSO-less
    /// assume-role, instance metadata, `AWS_ENDPOINT_URL_DYNAMODB`): for tools run
    /// by people, such as `coedit-admin`.
    pub async fn from_aws_config(table: impl Into<String>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http_client())
            .load()
            .await;
        DynamoStore::new(Client::new(&config), table)
    }

    /// A client for DynamoDB Local (or any endpoint) with fixed dummy credentials,
    /// independent of the environment.
    pub fn local_client(endpoint: &str) -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(http_client())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "coedit-local",
            ))
            .build();
        Client::from_conf(config)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The requests and capacity units this store has used so far.
    pub fn meter(&self) -> &Arc<CapacityMeter> {
        &self.meter
    }
}

/// HTTPS for the SDK: rustls on ring. The SDK's default uses aws-lc-rs, which
/// roughly doubles a function's binary.
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

fn session_pk(id: &SessionId) -> String {
    format!("S#{id}")
}

fn history_sk(v: Version) -> String {
    format!("A#{:012}", v.0)
}

/// Past every history key.
const HISTORY_END: &str = "A$";

fn part_sk(v: Version, part: usize) -> String {
    format!("T#{:012}#{part:03}", v.0)
}

fn key_pk(hash: &KeyHash) -> String {
    format!("KEY#{}", hash.to_hex())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// What the sweeper is to do with a session listed in its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SweepKind {
    /// Expired: erase it (`E#<shard>`).
    Erase,
    /// Occupied: look for stale connections (`P#<shard>`).
    CheckPresence,
}

impl SweepKind {
    fn prefix(self) -> &'static str {
        match self {
            SweepKind::Erase => "E",
            SweepKind::CheckPresence => "P",
        }
    }
}

fn sweep_shard(kind: SweepKind, id: &SessionId) -> String {
    let shard = id
        .as_str()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
        % SWEEP_SHARDS;
    format!("{}#{shard}", kind.prefix())
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(&self, new: &NewSession) -> Result<()> {
        let snapshot = Snapshot::encode(&new.template)?;
        let pk = session_pk(&new.session.id);
        let version = new.session.snapshot_version;

        let mut meta = session_meta_item(&new.session);
        meta.insert("pk".into(), s(&pk));
        meta.insert("sk".into(), s("META"));
        meta.insert("snapParts".into(), n(snapshot.parts.len()));
        meta.insert("snapBytes".into(), n(snapshot.compressed_len()));
        meta.insert("seats".into(), n(0));

        let entry_item = history_item(&pk, &new.first_entry)?;

        let mut writes = vec![
            put(&self.table, meta, Some("attribute_not_exists(pk)"))?,
            put(&self.table, entry_item, None)?,
        ];
        for (i, part) in snapshot.parts.iter().enumerate() {
            let item = Item::from([
                ("pk".into(), s(&pk)),
                ("sk".into(), s(part_sk(version, i))),
                ("part".into(), AttributeValue::B(Blob::new(part.clone()))),
            ]);
            writes.push(put(&self.table, item, None)?);
        }

        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            // Makes the SDK's own retries of this transaction idempotent.
            .client_request_token(new.session.id.as_str())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(())
            }
            Err(err) => {
                let cancelled_by_condition = err
                    .as_service_error()
                    .and_then(|e| match e {
                        TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    })
                    .is_some_and(|e| {
                        e.cancellation_reasons()
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                    });
                if cancelled_by_condition {
                    Err(Error::unexpected("a session with this id exists already"))
                } else {
                    Err(store_error("creating a session", err))
                }
            }
        }
    }

    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        for _ in 0..TORN_READ_ATTEMPTS {
            match self.read_session_once(id, now).await {
                Err(ReadError::Torn) => continue,
                Err(ReadError::Store(e)) => return Err(e),
                Ok(state) => return Ok(state),
            }
        }
        Err(Error::unexpected(
            "the session's template kept changing while it was read",
        ))
    }

    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_range(
                &session_pk(id),
                &history_sk(since.next()),
                HISTORY_END,
                Some(limit),
                "reading history",
            )
            .await?;
        items.iter().map(history_from_item).collect()
    }

    async fn history_before(
        &self,
        id: &SessionId,
        before: Option<Version>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let hi = match before {
            Some(v) if v.0 <= 1 => return Ok(Vec::new()),
            Some(v) => history_sk(Version(v.0 - 1)),
            None => HISTORY_END.to_owned(),
        };
        let items = self
            .query_newest_first(&session_pk(id), &hi, limit, true, "reading history")
            .await?;
        items.iter().map(history_from_item).collect()
    }

    async fn head_version(&self, id: &SessionId) -> Result<Option<Version>> {
        let items = self
            .query_newest_first(
                &session_pk(id),
                HISTORY_END,
                1,
                false,
                "reading the newest version",
            )
            .await?;
        items.first().map(history_version).transpose()
    }

    async fn read_since(
        &self,
        id: &SessionId,
        since: Version,
        now: Timestamp,
    ) -> Result<Option<Catchup>> {
        let items = self
            .query_range(
                &session_pk(id),
                &history_sk(since.next()),
                "META",
                None,
                "reading a session's newest changes",
            )
            .await?;
        let Some(members) = members::members_from_items(id, &items, now)? else {
            return Ok(None);
        };
        let entries = items
            .iter()
            .filter(|i| sk(i).is_some_and(|k| k.starts_with("A#")))
            .map(history_from_item)
            .collect::<Result<_>>()?;
        Ok(Some(Catchup { members, entries }))
    }

    async fn append_change(&self, id: &SessionId, entry: &HistoryEntry) -> Result<bool> {
        let item = history_item(&session_pk(id), entry)?;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_write(out, "storing a change")
    }

    async fn write_snapshot(
        &self,
        id: &SessionId,
        version: Version,
        template: &Template,
    ) -> Result<bool> {
        self.write_snapshot_now(id, version, template).await
    }

    async fn first_template(&self, id: &SessionId) -> Result<Option<Template>> {
        let prefix = format!("T#{:012}#", Version::FIRST.0);
        let items = self
            .query_range(
                &session_pk(id),
                &prefix,
                &format!("{prefix}~"),
                None,
                "reading the first template",
            )
            .await?;
        if items.is_empty() {
            return Ok(None);
        }
        let parts: Vec<&[u8]> = items
            .iter()
            .filter_map(|i| match i.get("part") {
                Some(AttributeValue::B(b)) => Some(b.as_ref()),
                _ => None,
            })
            .collect();
        let len = parts.iter().map(|p| p.len()).sum();
        Snapshot::decode(&parts, len).map(Some)
    }

    async fn read_members(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionMembers>> {
        self.read_members_now(id, now).await
    }

    async fn join(&self, seat: &Seat) -> Result<JoinOutcome> {
        self.join_now(seat).await
    }

    async fn find_connection(&self, connection_id: &str) -> Result<Option<SessionId>> {
        self.find_connection_now(connection_id).await
    }

    async fn touch(&self, id: &SessionId, connection_id: &str, now: Timestamp) -> Result<bool> {
        self.touch_now(id, connection_id, now).await
    }

    async fn leave(
        &self,
        members: &SessionMembers,
        connection_id: &str,
        departure: Departure,
        now: Timestamp,
    ) -> Result<LeaveOutcome> {
        self.leave_now(members, connection_id, departure, now).await
    }

    async fn take_lock(
        &self,
        members: &SessionMembers,
        lock: &Lock,
        now: Timestamp,
    ) -> Result<LockOutcome> {
        self.take_lock_now(members, lock, now).await
    }

    async fn release_lock(
        &self,
        id: &SessionId,
        element: &str,
        connection_id: &str,
    ) -> Result<bool> {
        self.release_lock_now(id, element, connection_id).await
    }

    async fn sweep_due(&self, now: Timestamp, limit: usize) -> Result<Vec<SweepTask>> {
        self.sweep_due_now(now, limit).await
    }

    async fn schedule_presence_check(&self, id: &SessionId, at: Timestamp) -> Result<()> {
        self.schedule_presence_check_now(id, at).await
    }

    async fn erase_session(&self, id: &SessionId, now: Timestamp) -> Result<bool> {
        self.erase_session_now(id, now).await
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let mut item = Item::from([
            ("pk".into(), s(key_pk(&record.hash))),
            ("sk".into(), s("KEY")),
            ("keyHash".into(), s(record.hash.to_hex())),
            ("tenant".into(), s(record.tenant.as_str())),
            ("plan".into(), s(record.plan.as_str())),
            ("createdAt".into(), n(record.created_at.millis())),
        ]);
        if let Some(max) = record.max_editors {
            item.insert("maxEditors".into(), n(max));
        }
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if self.conditional_write(out, "storing an API key")? {
            Ok(())
        } else {
            Err(Error::unexpected("this API key exists already"))
        }
    }

    async fn find_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>> {
        let item = self
            .get_item(key_pk(hash), "KEY", "reading an API key")
            .await?;
        item.as_ref().map(api_key_from_item).transpose()
    }

    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key_pk(hash)))
            .key("sk", s("KEY"))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("revoking an API key", e))?;
        self.meter.write(out.consumed_capacity());
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}

enum ReadError {
    /// The snapshot's parts did not match its head: read again.
    Torn,
    Store(Error),
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Store(e)
    }
}

impl DynamoStore {
    /// One Query reads the head, the connections, the locks and the snapshot parts
    /// (`C#`, `L#`, `META`, `T#` sort together), a second the log after the snapshot.
    async fn read_session_once(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> std::result::Result<Option<SessionState>, ReadError> {
        let items = self
            .query_range(&session_pk(id), "C#", "T$", None, "reading a session")
            .await?;

        let Some(meta) = items.iter().find(|i| sk(i) == Some("META")) else {
            return Ok(None);
        };
        let session = session_from_meta(id, meta)?;
        if session.is_expired(now) {
            return Ok(None);
        }
        let snap_version = session.snapshot_version;
        let snap_parts = number(meta, "snapParts")? as usize;
        let snap_bytes = number(meta, "snapBytes")? as usize;

        let prefix = format!("T#{:012}#", snap_version.0);
        let parts: Vec<&[u8]> = items
            .iter()
            .filter(|i| sk(i).is_some_and(|k| k.starts_with(&prefix)))
            .filter_map(|i| match i.get("part") {
                Some(AttributeValue::B(b)) => Some(b.as_ref()),
                _ => None,
            })
            .collect();
        if parts.len() != snap_parts || parts.iter().map(|p| p.len()).sum::<usize>() != snap_bytes {
            return Err(ReadError::Torn);
        }
        let template = Snapshot::decode(&parts, snap_bytes)?;

        let mut connections = Vec::new();
        for item in items
            .iter()
            .filter(|i| sk(i).is_some_and(|k| k.starts_with("C#")))
        {
            let connection = connection_from_item(item)?;
            if connection.is_present(now) {
                connections.push(connection);
            }
        }
        // The log after the snapshot: bounded by compaction, so this read stays
        // small however long the session ran.
        let tail = self.history(id, snap_version, usize::MAX).await?;
        Ok(Some(SessionState {
            session,
            connections,
            snapshot: template,
            tail,
        }))
    }
}

impl DynamoStore {
    /// One item by its key, strongly consistent, metered.
    async fn get_item(&self, pk: String, sk: &str, operation: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error(operation, e))?;
        self.meter.read(out.consumed_capacity());
        Ok(out.item)
    }

    /// The newest history items at or before `hi`, newest first, at most `limit`;
    /// `consistent: false` halves the cost where a moment's lag does not matter.
    async fn query_newest_first(
        &self,
        pk: &str,
        hi: &str,
        limit: usize,
        consistent: bool,
        operation: &str,
    ) -> Result<Vec<Item>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.query(pk, "A#", hi, Some(limit), false, consistent, operation)
            .await
    }

    /// The items of one partition whose sort keys lie in `lo..=hi`, in order, all
    /// pages or the first `limit` items. Strongly consistent: readers must see what
    /// a write acknowledged a moment ago.
    async fn query_range(
        &self,
        pk: &str,
        lo: &str,
        hi: &str,
        limit: Option<usize>,
        operation: &str,
    ) -> Result<Vec<Item>> {
        self.query(pk, lo, hi, limit, true, true, operation).await
    }

    /// One partition's items with sort keys in `lo..=hi`, in either order, every
    /// page or the first `limit` items, metered.
    #[allow(clippy::too_many_arguments)]
    async fn query(
        &self,
        pk: &str,
        lo: &str,
        hi: &str,
        limit: Option<usize>,
        ascending: bool,
        consistent: bool,
        operation: &str,
    ) -> Result<Vec<Item>> {
        let mut items: Vec<Item> = Vec::new();
        let mut start = None;
        loop {
            let page_limit = limit.map(|l| (l - items.len()).min(1000) as i32);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":lo", s(lo))
                .expression_attribute_values(":hi", s(hi))
                .scan_index_forward(ascending)
                .consistent_read(consistent)
                .set_limit(page_limit)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error(operation, e))?;
            self.meter.read(out.consumed_capacity());
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| items.len() >= l) {
                return Ok(items);
            }
        }
    }
}

/// The head's attributes that describe the session itself.
fn session_meta_item(session: &Session) -> Item {
    let mut item = Item::from([
        ("tenant".into(), s(session.tenant.as_str())),
        ("snapVersion".into(), n(session.snapshot_version.0)),
        ("createdAt".into(), n(session.created_at.millis())),
    ]);
    if let Some(at) = session.expires_at {
        item.insert("expiresAt".into(), n(at.millis()));
        // The TTL only reclaims space, late; expiry itself is `Session::is_expired`.
        item.insert("ttl".into(), n(at.epoch_seconds_ceil()));
        // The sparse index the sweeper reads to erase sessions on time.
        item.insert(
            "sweepShard".into(),
            s(sweep_shard(SweepKind::Erase, &session.id)),
        );
        item.insert("sweepAt".into(), n(at.millis()));
    }
    item
}

fn session_from_meta(id: &SessionId, meta: &Item) -> Result<Session> {
    Ok(Session {
        id: id.clone(),
        tenant: TenantId::parse(string(meta, "tenant")?)?,
        snapshot_version: Version(number(meta, "snapVersion")?),
        created_at: Timestamp(number(meta, "createdAt")? as i64),
        expires_at: optional_number(meta, "expiresAt")?.map(|v| Timestamp(v as i64)),
        seats: optional_number(meta, "seats")?.unwrap_or(0) as u32,
    })
}

fn history_item(pk: &str, entry: &HistoryEntry) -> Result<Item> {
    let text = serde_json::to_string(entry)
        .map_err(|e| Error::unexpected(format!("serializing a history entry: {e}")))?;
    Ok(Item::from([
        ("pk".into(), s(pk)),
        ("sk".into(), s(history_sk(entry.version))),
        ("changeId".into(), s(&entry.change_id)),
        ("entry".into(), s(text)),
    ]))
}

fn history_from_item(item: &Item) -> Result<HistoryEntry> {
    serde_json::from_str(string(item, "entry")?)
        .map_err(|e| Error::unexpected(format!("a stored history entry does not parse: {e}")))
}

fn history_version(item: &Item) -> Result<Version> {
    sk(item)
        .and_then(|k| k.strip_prefix("A#"))
        .and_then(|v| v.parse().ok())
        .map(Version)
        .ok_or_else(|| Error::unexpected("a stored history key is malformed"))
}

fn connection_from_item(item: &Item) -> Result<Connection> {
    Ok(Connection {
        id: sk(item)
            .unwrap_or_default()
            .trim_start_matches("C#")
            .to_owned(),
        user: User {
            user_id: string(item, "userId")?.to_owned(),
            username: string(item, "username")?.to_owned(),
            user_color: string(item, "userColor")?.to_owned(),
        },
        connected_at: Timestamp(number(item, "connectedAt")? as i64),
        last_seen: Timestamp(number(item, "lastSeen")? as i64),
    })
}

fn api_key_from_item(item: &Item) -> Result<ApiKeyRecord> {
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

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(|e| Error::unexpected(format!("building a write: {e}")))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn sk(item: &Item) -> Option<&str> {
    item.get("sk")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(Error::unexpected(format!(
            "a stored item lacks the string attribute '{name}'"
        ))),
    }
}

fn optional_number(item: &Item, name: &str) -> Result<Option<u64>> {
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

fn number(item: &Item, name: &str) -> Result<u64> {
    optional_number(item, name)?.ok_or_else(|| {
        Error::unexpected(format!("a stored item lacks the number attribute '{name}'"))
    })
}

/// The outputs of single-item writes, which all report consumed capacity.
trait WriteOutput {
    fn consumed(&self) -> Option<&ConsumedCapacity>;
}

/// The errors of single-item writes, which all have a "condition failed" case.
trait WriteError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {
    fn condition_failed(&self) -> bool;
}

macro_rules! single_item_write {
    ($($output:ty => $error:ty),* $(,)?) => {$(
        impl WriteOutput for $output {
            fn consumed(&self) -> Option<&ConsumedCapacity> {
                self.consumed_capacity()
            }
        }
        impl WriteError for $error {
            fn condition_failed(&self) -> bool {
                self.is_conditional_check_failed_exception()
            }
        }
    )*};
}

single_item_write!(
    aws_sdk_dynamodb::operation::put_item::PutItemOutput =>
        aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput =>
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
    aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput =>
        aws_sdk_dynamodb::operation::delete_item::DeleteItemError,
);

impl DynamoStore {
    /// The outcome of a conditional single-item write, metered: `false` when its
    /// condition did not hold (nothing was written).
    fn conditional_write<O: WriteOutput, E: WriteError, R: std::fmt::Debug>(
        &self,
        out: std::result::Result<O, SdkError<E, R>>,
        operation: &str,
    ) -> Result<bool> {
        match out {
            Ok(out) => {
                self.meter.write(out.consumed());
                Ok(true)
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.condition_failed()) => {
                self.meter.write(&[]);
                Ok(false)
            }
            Err(e) => Err(store_error(operation, e)),
        }
    }
}

/// Maps an SDK failure to the protocol: the store being unreachable, slow or
/// throttling past the SDK's retries is 5600; anything else is unexpected (5001).
/// The detail names the operation, never an item's contents.
fn store_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    const UNAVAILABLE: &[&str] = &[
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    ];
    let code = err.code().map(str::to_owned);
    tracing::error!(operation, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "store call failed");
    match (&err, code.as_deref()) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            Error::unavailable(format!("{operation}: the store did not answer"))
        }
        (_, Some(code)) if UNAVAILABLE.contains(&code) => {
            Error::unavailable(format!("{operation}: the store is busy ({code})"))
        }
        (_, Some(code)) => Error::unexpected(format!("{operation}: the store answered {code}")),
        _ => Error::unexpected(format!("{operation}: the store call failed")),
    }
}

/// Adds up the requests and capacity units a store used, as DynamoDB reports them.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    totals: Mutex<Capacity>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub read_requests: u64,
    pub write_requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

impl std::ops::Sub for Capacity {
    type Output = Capacity;
    fn sub(self, o: Capacity) -> Capacity {
        Capacity {
            read_requests: self.read_requests - o.read_requests,
            write_requests: self.write_requests - o.write_requests,
            read_units: self.read_units - o.read_units,
            write_units: self.write_units - o.write_units,
        }
    }
}

fn units<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
    consumed
        .into_iter()
        .filter_map(|c| c.capacity_units())
        .sum()
}

impl CapacityMeter {
    pub fn totals(&self) -> Capacity {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.read_requests += 1;
        t.read_units += units(consumed);
    }

    fn write<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.write_requests += 1;
        t.write_units += units(consumed);
    }
}
