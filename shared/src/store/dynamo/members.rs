//! Presence in DynamoDB: seats, connections, locks, the sweeper's index and erasure.
//!
//! | pk            | sk           | holds                                             |
//! |---------------|--------------|---------------------------------------------------|
//! | `S#<sid>`     | `C#<connId>` | user, connectedAt, lastSeen                       |
//! | `S#<sid>`     | `L#<element>`| holder connection and user, since                 |
//! | `CONN#<connId>` | `CONN`     | the session: the reverse lookup for ping and `$disconnect` |
//!
//! META's `seats` counts the session's stored connections; every write that adds or
//! removes a connection changes it in the same transaction, under a condition, so
//! the count is exact and the plan's limit holds however many race.

use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, DeleteRequest, ReturnValuesOnConditionCheckFailure, Update,
    WriteRequest,
};
use futures_util::future::join_all;

use super::*;
use crate::error::Code;
use crate::session::presence::{self, Departure, PRESENCE_CHECK_INTERVAL};
use crate::session::{Lock, SessionMembers};
use crate::store::{
    JoinOutcome, LeaveOutcome, LockOutcome, RACE_ATTEMPTS, Seat, SweepTask, backoff,
};

fn connection_sk(id: &str) -> String {
    format!("C#{id}")
}

fn connection_pk(id: &str) -> String {
    format!("CONN#{id}")
}

fn lock_sk(element: &str) -> String {
    format!("L#{element}")
}

fn key(pk: String, sk: String) -> Item {
    Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

/// Most locks released in the same transaction as their holder's departure
/// (transactions take 100 items). Locks beyond stay behind, held by a connection
/// that is not present, which `take_lock` treats as free.
const LOCKS_PER_DEPARTURE: usize = 90;

/// BatchWriteItem takes at most 25 requests.
const BATCH: usize = 25;

/// One write of a transaction: an update or a delete with its expression values.
struct Write<'a> {
    key: Item,
    update: Option<&'a str>,
    condition: Option<&'a str>,
    values: Vec<(&'a str, AttributeValue)>,
    /// Return the old item when the condition fails, to tell why.
    old_on_failure: bool,
}

impl<'a> Write<'a> {
    fn new(key: Item) -> Self {
        Write {
            key,
            update: None,
            condition: None,
            values: Vec::new(),
            old_on_failure: false,
        }
    }

    fn update(mut self, expression: &'a str) -> Self {
        self.update = Some(expression);
        self
    }

    fn condition(mut self, expression: &'a str) -> Self {
        self.condition = Some(expression);
        self
    }

    fn value(mut self, name: &'a str, value: AttributeValue) -> Self {
        self.values.push((name, value));
        self
    }

    fn old_on_failure(mut self) -> Self {
        self.old_on_failure = true;
        self
    }

    fn build(self, table: &str) -> Result<TransactWriteItem> {
        let values = (!self.values.is_empty()).then(|| {
            self.values
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Item>()
        });
        // `ttl` is a reserved word; every expression names it through `#ttl`.
        let uses_ttl = self.update.is_some_and(|u| u.contains("#ttl"));
        let names = uses_ttl.then(|| HashMap::from([("#ttl".to_owned(), "ttl".to_owned())]));
        let on_failure = self
            .old_on_failure
            .then_some(ReturnValuesOnConditionCheckFailure::AllOld);
        let built = match self.update {
            Some(update) => Update::builder()
                .table_name(table)
                .set_key(Some(self.key))
                .update_expression(update)
                .set_condition_expression(self.condition.map(str::to_owned))
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(on_failure)
                .build()
                .map(|u| TransactWriteItem::builder().update(u).build()),
            None => Delete::builder()
                .table_name(table)
                .set_key(Some(self.key))
                .set_condition_expression(self.condition.map(str::to_owned))
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(on_failure)
                .build()
                .map(|d| TransactWriteItem::builder().delete(d).build()),
        };
        built.map_err(|e| Error::unexpected(format!("building a write: {e}")))
    }
}

/// How a transaction ended.
enum Transaction {
    Done,
    /// Cancelled; one reason per write, in order.
    Cancelled(Vec<CancellationReason>),
}

fn failed_condition(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

fn conflicted(reasons: &[CancellationReason]) -> bool {
    reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
}

impl DynamoStore {
    async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
        token: Option<String>,
        operation: &str,
    ) -> Result<Transaction> {
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .set_client_request_token(token)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(Transaction::Done)
            }
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    // A cancelled transaction is a request too; DynamoDB reports no units for it.
                    self.meter.write(&[]);
                    Ok(Transaction::Cancelled(c.cancellation_reasons().to_vec()))
                }
                _ => Err(store_error(operation, err)),
            },
        }
    }

    pub(super) async fn read_members_now(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<SessionMembers>> {
        // `C#` < `L#` < `META`: one Query of the small items, never the snapshot
        // parts (`T#`) or the history (`V#`).
        let items = self
            .query_range(
                &session_pk(id),
                "C#",
                "META",
                None,
                "reading a session's members",
            )
            .await?;
        members_from_items(id, &items, now)
    }

    pub(super) async fn join_now(&self, seat: &Seat) -> Result<JoinOutcome> {
        let pk = session_pk(&seat.session);
        let c = &seat.connection;
        let check_at = seat.now.plus(PRESENCE_CHECK_INTERVAL);
        let mut connection = Item::from([
            ("pk".into(), s(&pk)),
            ("sk".into(), s(connection_sk(&c.id))),
        ]);
        connection.extend(user_attributes(&c.user));
        connection.insert("connectedAt".into(), n(c.connected_at.millis()));
        connection.insert("lastSeen".into(), n(c.last_seen.millis()));
        let lookup = Item::from([
            ("pk".into(), s(connection_pk(&c.id))),
            ("sk".into(), s("CONN")),
            ("session".into(), s(seat.session.as_str())),
        ]);

        for attempt in 0..RACE_ATTEMPTS {
            let writes = vec![
                Write::new(key(pk.clone(), "META".into()))
                    .update(
                        "SET seats = seats + :one, sweepShard = :shard, sweepAt = :check \
                         REMOVE expiresAt, #ttl",
                    )
                    .condition(
                        "attribute_exists(pk) AND tenant = :tenant AND seats < :max \
                         AND (attribute_not_exists(expiresAt) OR expiresAt > :now)",
                    )
                    .value(":one", n(1))
                    .value(
                        ":shard",
                        s(sweep_shard(SweepKind::CheckPresence, &seat.session)),
                    )
                    .value(":check", n(check_at.millis()))
                    .value(":tenant", s(seat.tenant.as_str()))
                    .value(":max", n(seat.max_editors))
                    .value(":now", n(seat.now.millis()))
                    .old_on_failure()
                    .build(&self.table)?,
                put(
                    &self.table,
                    connection.clone(),
                    Some("attribute_not_exists(pk)"),
                )?,
                put(&self.table, lookup.clone(), None)?,
            ];
            // Makes the SDK's own retries of one attempt idempotent (at most 36 chars).
            let token: String = format!("j{attempt}-{}", c.id).chars().take(36).collect();
            match self.transact(writes, Some(token), "taking a seat").await? {
                Transaction::Done => return Ok(JoinOutcome::Joined),
                Transaction::Cancelled(reasons) => {
                    if reasons.get(1).is_some_and(failed_condition) {
                        return Err(Error::unexpected(
                            "this connection id is in the session already",
                        ));
                    }
                    if let Some(meta) = reasons.first().filter(|r| failed_condition(r)) {
                        return Ok(why_no_seat(seat, meta.item()));
                    }
                    if !conflicted(&reasons) {
                        return Err(Error::unexpected("taking a seat was refused"));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Err(Error::new(
            Code::OpenFailed,
            "the session was too busy to take a seat; try again",
        ))
    }

    pub(super) async fn find_connection_now(
        &self,
        connection_id: &str,
    ) -> Result<Option<SessionId>> {
        let item = self
            .get_item(connection_pk(connection_id), "CONN", "finding a connection")
            .await?;
        match &item {
            None => Ok(None),
            Some(item) => SessionId::parse(string(item, "session")?)
                .map(Some)
                .ok_or_else(|| Error::unexpected("a stored connection names a malformed session")),
        }
    }

    pub(super) async fn touch_now(
        &self,
        id: &SessionId,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(id)))
            .key("sk", s(connection_sk(connection_id)))
            .update_expression("SET lastSeen = :now")
            // A stale connection stays stale: it is dropped, not revived.
            .condition_expression("attribute_exists(pk) AND lastSeen > :cutoff")
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":cutoff", n(presence::presence_cutoff(now).millis()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_write(out, "marking a connection alive")
    }

    pub(super) async fn leave_now(
        &self,
        members: &SessionMembers,
        connection_id: &str,
        departure: Departure,
        now: Timestamp,
    ) -> Result<LeaveOutcome> {
        let pk = session_pk(&members.session.id);
        let mut members = members.clone();
        for attempt in 0..RACE_ATTEMPTS {
            let Some(leaving) = members.connection(connection_id).cloned() else {
                return Ok(LeaveOutcome::NotThere);
            };
            if departure == Departure::Stale && leaving.is_present(now) {
                return Ok(LeaveOutcome::NotThere);
            }
            let (seats, expires_at) = presence::after_departure(&members.session, now);
            let cutoff = presence::presence_cutoff(now);

            let mut writes = vec![
                match departure {
                    Departure::Left => Write::new(key(pk.clone(), connection_sk(connection_id)))
                        .condition("attribute_exists(pk)"),
                    Departure::Stale => Write::new(key(pk.clone(), connection_sk(connection_id)))
                        .condition("lastSeen <= :cutoff")
                        .value(":cutoff", n(cutoff.millis())),
                }
                .build(&self.table)?,
            ];
            writes.push(
                Write::new(key(connection_pk(connection_id), "CONN".into())).build(&self.table)?,
            );
            for lock in members
                .locks_held_by(connection_id)
                .take(LOCKS_PER_DEPARTURE)
            {
                writes.push(
                    Write::new(key(pk.clone(), lock_sk(&lock.element)))
                        .condition("holder = :me")
                        .value(":me", s(connection_id))
                        .build(&self.table)?,
                );
            }
            let meta = Write::new(key(pk.clone(), "META".into())).value(":one", n(1));
            let meta = match expires_at {
                // The last one out: the session now waits to be erased.
                Some(at) => meta
                    .update(
                        "SET seats = :zero, expiresAt = :at, #ttl = :ttl, \
                         sweepShard = :shard, sweepAt = :at",
                    )
                    .condition("seats = :one")
                    .value(":zero", n(seats))
                    .value(":at", n(at.millis()))
                    .value(":ttl", n(at.epoch_seconds_ceil()))
                    .value(
                        ":shard",
                        s(sweep_shard(SweepKind::Erase, &members.session.id)),
                    ),
                None => meta
                    .update("SET seats = seats - :one")
                    .condition("seats > :one"),
            };
            writes.push(meta.build(&self.table)?);

            match self.transact(writes, None, "removing a connection").await? {
                Transaction::Done => return Ok(LeaveOutcome::Left(leaving)),
                Transaction::Cancelled(reasons) => {
                    // Gone already, or (stale departure) it pinged just in time.
                    if reasons.first().is_some_and(failed_condition) {
                        return Ok(LeaveOutcome::NotThere);
                    }
                    // The seat count or a lock changed since `members` was read.
                    if !conflicted(&reasons) && !reasons.iter().any(failed_condition) {
                        return Err(Error::unexpected("removing a connection was refused"));
                    }
                    backoff(attempt).await;
                    match self.read_members_now(&members.session.id, now).await? {
                        Some(fresh) => members = fresh,
                        None => return Ok(LeaveOutcome::NotThere),
                    }
                }
            }
        }
        Err(Error::unavailable(
            "removing a connection: the session kept changing; try again",
        ))
    }

    pub(super) async fn take_lock_now(
        &self,
        members: &SessionMembers,
        lock: &Lock,
        now: Timestamp,
    ) -> Result<LockOutcome> {
        let pk = session_pk(&members.session.id);
        let mut members = members.clone();
        for attempt in 0..RACE_ATTEMPTS {
            let held = members
                .locks
                .iter()
                .find(|l| l.element == lock.element)
                .cloned();
            if let Some(held) = &held {
                let holder_present = members
                    .connection(&held.connection_id)
                    .is_some_and(|c| c.is_present(now));
                if held.connection_id != lock.connection_id && holder_present {
                    return Ok(LockOutcome::HeldBy(held.clone()));
                }
            }
            let mut item = key(pk.clone(), lock_sk(&lock.element));
            item.extend(user_attributes(&lock.user));
            item.insert("holder".into(), s(&lock.connection_id));
            item.insert("since".into(), n(lock.since.millis()));
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            // Only over what was read: nobody's, or the holder seen not present.
            let request = match &held {
                None => request.condition_expression("attribute_not_exists(pk)"),
                Some(h) => request
                    .condition_expression("holder = :seen")
                    .expression_attribute_values(":seen", s(&h.connection_id)),
            };
            if self.conditional_write(request.send().await, "taking a lock")? {
                return Ok(LockOutcome::Granted);
            }
            // Someone else changed the lock since it was read: look again.
            backoff(attempt).await;
            members = self
                .read_members_now(&members.session.id, now)
                .await?
                .ok_or_else(Error::session_not_found)?;
        }
        Err(Error::unavailable(
            "taking a lock: the session kept changing; try again",
        ))
    }

    pub(super) async fn release_lock_now(
        &self,
        id: &SessionId,
        element: &str,
        connection_id: &str,
    ) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(id)))
            .key("sk", s(lock_sk(element)))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(connection_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_write(out, "releasing a lock")
    }

    pub(super) async fn sweep_due_now(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<SweepTask>> {
        let shards = [SweepKind::Erase, SweepKind::CheckPresence]
            .into_iter()
            .flat_map(|kind| (0..SWEEP_SHARDS).map(move |shard| (kind, shard)));
        let queries = shards.map(|(kind, shard)| async move {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("sweep")
                .key_condition_expression("sweepShard = :shard AND sweepAt <= :now")
                .expression_attribute_values(":shard", s(format!("{}#{shard}", kind.prefix())))
                .expression_attribute_values(":now", n(now.millis()))
                .limit(limit.clamp(1, 1000) as i32)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error("listing sessions to sweep", e))?;
            self.meter.read(out.consumed_capacity());
            let ids: Vec<SweepTask> = out
                .items()
                .iter()
                .filter_map(|item| {
                    let pk = item.get("pk")?.as_s().ok()?;
                    let id = SessionId::parse(pk.strip_prefix("S#")?)?;
                    Some(match kind {
                        SweepKind::Erase => SweepTask::Erase(id),
                        SweepKind::CheckPresence => SweepTask::CheckPresence(id),
                    })
                })
                .collect();
            Ok::<_, Error>(ids)
        });
        let mut due = Vec::new();
        for found in join_all(queries).await {
            due.extend(found?);
        }
        due.truncate(limit);
        Ok(due)
    }

    pub(super) async fn schedule_presence_check_now(
        &self,
        id: &SessionId,
        at: Timestamp,
    ) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(id)))
            .key("sk", s("META"))
            .update_expression("SET sweepAt = :at")
            // Only while occupied: an empty session's entry is its erasure time.
            .condition_expression("sweepShard = :shard")
            .expression_attribute_values(":at", n(at.millis()))
            .expression_attribute_values(":shard", s(sweep_shard(SweepKind::CheckPresence, id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_write(out, "scheduling a presence check")?;
        Ok(())
    }

    /// Deletes every item of an expired session: the log (`A#1` up to the newest
    /// version, keys computed, not read), whatever the range from `C#` to the
    /// snapshot parts holds, then the head itself, last, so an interrupted erasure
    /// is found and finished by the next sweep.
    pub(super) async fn erase_session_now(&self, id: &SessionId, now: Timestamp) -> Result<bool> {
        let pk = session_pk(id);
        let rest = self
            .query_range(&pk, "C#", "T$", None, "reading a session to erase")
            .await?;
        let Some(meta) = rest.iter().find(|i| sk(i) == Some("META")) else {
            return Ok(false);
        };
        let session = session_from_meta(id, meta)?;
        if !session.is_expired(now) {
            return Ok(false);
        }
        let head = self.head_version(id).await?.unwrap_or(Version(0));
        let mut keys: Vec<String> = rest
            .iter()
            .filter_map(|i| sk(i))
            .filter(|k| *k != "META")
            .map(str::to_owned)
            .collect();
        keys.extend((1..=head.0).map(|v| history_sk(Version(v))));
        for chunk in keys.chunks(BATCH) {
            self.delete_batch(&pk, chunk).await?;
        }

        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("META"))
            .condition_expression("expiresAt <= :now")
            .expression_attribute_values(":now", n(now.millis()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.conditional_write(out, "erasing a session")
    }

    /// Compaction: the new snapshot's parts first, then the head's pointer (only
    /// forward), then the old parts. A reader between two steps sees the old
    /// snapshot whole, or the new one whole (its read checks the parts against the
    /// pointer and reads again when they do not match).
    pub(super) async fn write_snapshot_now(
        &self,
        id: &SessionId,
        version: Version,
        template: &Template,
    ) -> Result<bool> {
        let snapshot = Snapshot::encode(template)?;
        let pk = session_pk(id);
        for (i, part) in snapshot.parts.iter().enumerate() {
            let item = Item::from([
                ("pk".into(), s(&pk)),
                ("sk".into(), s(part_sk(version, i))),
                ("part".into(), AttributeValue::B(Blob::new(part.clone()))),
            ]);
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            self.conditional_write(out, "storing a snapshot")?;
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("META"))
            .update_expression("SET snapVersion = :v, snapParts = :parts, snapBytes = :bytes")
            .condition_expression("attribute_exists(pk) AND snapVersion < :v")
            .expression_attribute_values(":v", n(version.0))
            .expression_attribute_values(":parts", n(snapshot.parts.len()))
            .expression_attribute_values(":bytes", n(snapshot.compressed_len()))
            .return_values(ReturnValue::UpdatedOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let old = match out {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                out.attributes.unwrap_or_default()
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // A newer snapshot is in place. These parts are left for erasure:
                // deleting them could race a writer of the same version.
                self.meter.write(&[]);
                return Ok(false);
            }
            Err(e) => return Err(store_error("storing a snapshot", e)),
        };
        let old_version = number(&old, "snapVersion")?;
        // The first template stays: versions older than the snapshot are read from it.
        let old_parts = match old_version {
            1 => 0,
            _ => number(&old, "snapParts")? as usize,
        };
        let keys: Vec<String> = (0..old_parts)
            .map(|p| part_sk(Version(old_version), p))
            .collect();
        for chunk in keys.chunks(BATCH) {
            self.delete_batch(&pk, chunk).await?;
        }
        Ok(true)
    }

    async fn delete_batch(&self, pk: &str, sort_keys: &[String]) -> Result<()> {
        let mut requests: Vec<WriteRequest> = sort_keys
            .iter()
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(key(pk.to_owned(), k.clone())))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| Error::unexpected(format!("building a delete: {e}")))
            })
            .collect::<Result<_>>()?;
        for attempt in 0..RACE_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error("erasing a session", e))?;
            self.meter.write(out.consumed_capacity());
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(Error::unavailable(
            "erasing a session: the store kept deferring deletes",
        ))
    }
}

/// Why the seat write's condition failed, from the head as it was.
fn why_no_seat(seat: &Seat, old: Option<&Item>) -> JoinOutcome {
    let Some(meta) = old else {
        return JoinOutcome::NotFound;
    };
    match session_from_meta(&seat.session, meta) {
        Ok(session) if session.tenant == seat.tenant && !session.is_expired(seat.now) => {
            JoinOutcome::Full
        }
        _ => JoinOutcome::NotFound,
    }
}

fn user_attributes(user: &crate::session::User) -> Item {
    Item::from([
        ("userId".into(), s(&user.user_id)),
        ("username".into(), s(&user.username)),
        ("userColor".into(), s(&user.user_color)),
    ])
}

/// The members of a session from the items of a Query that reached `META`.
pub(super) fn members_from_items(
    id: &SessionId,
    items: &[Item],
    now: Timestamp,
) -> Result<Option<SessionMembers>> {
    let Some(meta) = items.iter().find(|i| sk(i) == Some("META")) else {
        return Ok(None);
    };
    let session = session_from_meta(id, meta)?;
    if session.is_expired(now) {
        return Ok(None);
    }
    let mut connections = Vec::new();
    let mut locks = Vec::new();
    for item in items {
        match sk(item) {
            Some(k) if k.starts_with("C#") => connections.push(connection_from_item(item)?),
            Some(k) if k.starts_with("L#") => locks.push(lock_from_item(item)?),
            _ => {}
        }
    }
    Ok(Some(SessionMembers {
        session,
        connections,
        locks,
    }))
}

fn lock_from_item(item: &Item) -> Result<Lock> {
    Ok(Lock {
        element: sk(item)
            .unwrap_or_default()
            .trim_start_matches("L#")
            .to_owned(),
        connection_id: string(item, "holder")?.to_owned(),
        user: crate::session::User {
            user_id: string(item, "userId")?.to_owned(),
            username: string(item, "username")?.to_owned(),
            user_color: string(item, "userColor")?.to_owned(),
        },
        since: Timestamp(number(item, "since")? as i64),
    })
}
