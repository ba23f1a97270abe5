//! Presence: seats, connections (`C#<connId>`), their reverse lookup
//! (`CONN#<connId>`), heartbeats and departures.
//!
//! META's `seats` counts the session's stored connections; every write that adds or
//! removes a connection changes it in the same transaction, under a condition, so
//! the count is exact and the plan's limit holds however many race.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::DynamoStore;
use super::items::{
    Item, connection_item, connection_lookup_item, key, members_from_items, n, s,
    session_from_meta, session_of_lookup,
};
use super::keys::{self, SweepKind};
use super::requests::{Precondition, Transaction, Write, conflicted, failed_condition, put};
use crate::clock::Timestamp;
use crate::error::{Code, Error, Result};
use crate::session::presence::{self, Departure, PRESENCE_CHECK_INTERVAL};
use crate::session::{SessionId, SessionMembers};
use crate::store::{
    JoinOutcome, LeaveOutcome, PresenceStore, RACE_ATTEMPTS, Seat, TouchOutcome, backoff,
};

/// Most locks released in the same transaction as their holder's departure
/// (transactions take 100 items). Locks beyond stay behind, held by a connection
/// that is not present, which `take_lock` treats as free.
const LOCKS_PER_DEPARTURE: usize = 90;

#[async_trait]
impl PresenceStore for DynamoStore {
    async fn read_members(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionMembers>> {
        // `C#` < `L#` < `META`: one Query of the small items, never the snapshot
        // parts or the log.
        let items = self
            .query_range(
                &keys::session_pk(id),
                keys::MEMBERS_START,
                keys::META,
                None,
                "reading a session's members",
            )
            .await?;
        members_from_items(id, &items, now)
    }

    async fn join(&self, seat: &Seat) -> Result<JoinOutcome> {
        let pk = keys::session_pk(&seat.session);
        let c = &seat.connection;
        let check_at = seat.now.plus(PRESENCE_CHECK_INTERVAL);
        let connection = connection_item(&seat.session, c);
        let lookup = connection_lookup_item(&c.id, &seat.session);

        for attempt in 0..RACE_ATTEMPTS {
            let writes = vec![
                Write::new(key(pk.as_str(), keys::META))
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
                        s(keys::sweep_shard(SweepKind::CheckPresence, &seat.session)),
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

    async fn find_connection(&self, connection_id: &str) -> Result<Option<SessionId>> {
        let item = self
            .get_item(
                keys::connection_pk(connection_id),
                keys::CONNECTION_LOOKUP,
                "finding a connection",
            )
            .await?;
        item.as_ref().map(session_of_lookup).transpose()
    }

    async fn touch(
        &self,
        id: &SessionId,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<TouchOutcome> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::session_pk(id)))
            .key("sk", s(keys::connection_sk(connection_id)))
            .update_expression("SET lastSeen = :now")
            // A stale connection stays stale: it is dropped, not revived.
            .condition_expression("attribute_exists(pk) AND lastSeen > :cutoff")
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":cutoff", n(presence::presence_cutoff(now).millis()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        Ok(
            match self.precondition(out, "marking a connection alive")? {
                Precondition::Held => TouchOutcome::Alive,
                Precondition::Failed => TouchOutcome::NotPresent,
            },
        )
    }

    async fn leave(
        &self,
        members: &SessionMembers,
        connection_id: &str,
        departure: Departure,
        now: Timestamp,
    ) -> Result<LeaveOutcome> {
        let pk = keys::session_pk(&members.session.id);
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
            let own = key(pk.as_str(), keys::connection_sk(connection_id));

            let mut writes = vec![
                match departure {
                    Departure::Left => Write::new(own).condition("attribute_exists(pk)"),
                    Departure::Stale => Write::new(own)
                        .condition("lastSeen <= :cutoff")
                        .value(":cutoff", n(cutoff.millis())),
                }
                .build(&self.table)?,
            ];
            writes.push(
                Write::new(key(
                    keys::connection_pk(connection_id),
                    keys::CONNECTION_LOOKUP,
                ))
                .build(&self.table)?,
            );
            for lock in members
                .locks_held_by(connection_id)
                .take(LOCKS_PER_DEPARTURE)
            {
                writes.push(
                    Write::new(key(pk.as_str(), keys::lock_sk(&lock.element)))
                        .condition("holder = :me")
                        .value(":me", s(connection_id))
                        .build(&self.table)?,
                );
            }
            let meta = Write::new(key(pk.as_str(), keys::META)).value(":one", n(1));
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
                        s(keys::sweep_shard(SweepKind::Erase, &members.session.id)),
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
                    match self.read_members(&members.session.id, now).await? {
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
