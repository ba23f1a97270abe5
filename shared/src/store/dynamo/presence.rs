//! Presence: seats, connections (`C#<connId>`), their reverse lookup
//! (`CONN#<connId>`), heartbeats and departures.
//!
//! A seat is an entry of META's `seated` map (editors) or `watching` map
//! (viewers): connection id -> when claimed. A join claims one with a single
//! conditional update of META (`size(seated) < limit`), then stores its
//! connection items; a departure removes its connection
//! first (that write decides who departs), then its locks and its seat. No
//! transaction holds the session's head, so simultaneous joins do not queue on it.
//! A join or departure that stops half-way leaves a seat claimed without its
//! connection; the sweeper gives such seats back (`reclaim_seats`). Removing an
//! entry is idempotent, so a seat is never given back twice.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use futures_util::future::join_all;

use super::DynamoStore;
use super::items::{
    Item, connection_item, connection_lookup_item, find_meta, members_from_items, n, s, seat_map,
    seated, session_from_meta, session_of_lookup,
};
use super::keys::{self, SweepKind};
use super::requests::{Precondition, store_error};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::EMPTY_SESSION_LIFETIME;
use crate::session::presence::{self, Departure, PRESENCE_CHECK_INTERVAL};
use crate::session::{Role, SessionId, SessionMembers};
use crate::store::{JoinOutcome, LeaveOutcome, PresenceStore, Seat, TouchOutcome};

#[async_trait]
impl PresenceStore for DynamoStore {
    async fn read_members(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionMembers>> {
        let items = self.member_items(id, "reading a session's members").await?;
        members_from_items(id, &items, now)
    }

    async fn join(&self, seat: &Seat) -> Result<JoinOutcome> {
        let id = &seat.session;
        let c = &seat.connection;
        let check_at = seat.now.plus(PRESENCE_CHECK_INTERVAL);
        let role = c.user.role;
        let map = seat_map(role);
        let claimed = self
            .update_meta(id)
            .update_expression("SET #map.#c = :now REMOVE expiresAt")
            .condition_expression(
                "attribute_exists(pk) AND tenant = :tenant AND size(#map) < :max \
                 AND attribute_not_exists(#map.#c) \
                 AND (attribute_not_exists(expiresAt) OR expiresAt > :now) \
                 AND createdAt > :born_after",
            )
            .expression_attribute_names("#map", map)
            .expression_attribute_names("#c", &c.id)
            .expression_attribute_values(":now", n(seat.now.millis()))
            .expression_attribute_values(":born_after", n(born_after(seat.now)))
            .expression_attribute_values(":tenant", s(seat.tenant.as_str()))
            .expression_attribute_values(":max", n(presence::seat_limit(role, seat.max_editors)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let first = match claimed {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                out.attributes.as_ref().map(occupancy).transpose()? == Some(1)
            }
            Err(e) => {
                let refused = match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(f)) => {
                        Some(f.item().cloned())
                    }
                    _ => None,
                };
                let Some(old) = refused else {
                    return Err(store_error("taking a seat", e));
                };
                self.meter.write(&[]);
                return why_no_seat(seat, old.as_ref());
            }
        };
        // The first one in: the sweeper now looks for stale connections instead of
        // erasing. Only then: moving the sweep index entry costs two index writes.
        if first {
            self.start_presence_checks(id, check_at).await?;
        }
        // The seat is ours: now the connection and its reverse lookup.
        let stored = futures_util::join!(
            async {
                let out = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(connection_item(id, c)))
                    .condition_expression("attribute_not_exists(pk)")
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                self.precondition(out, "storing a connection")
            },
            async {
                let out = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(connection_lookup_item(&c.id, id)))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                self.precondition(out, "storing a connection")
            }
        );
        let failed = match stored {
            (Ok(Precondition::Held), Ok(_)) => return Ok(JoinOutcome::Joined),
            (Ok(Precondition::Failed), _) => {
                Error::unexpected("this connection id is in the session already")
            }
            (Err(e), _) | (_, Err(e)) => e,
        };
        // Give the seat back; if that fails too, the sweeper will.
        if let Err(e) = self.give_back_seat(id, &c.id, role, None, seat.now).await {
            tracing::warn!(detail = %e.detail, "giving back a seat failed");
        }
        Err(failed)
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
        let id = &members.session.id;
        let Some(leaving) = members.connection(connection_id).cloned() else {
            return Ok(LeaveOutcome::NotThere);
        };
        if departure == Departure::Stale && leaving.is_present(now) {
            return Ok(LeaveOutcome::NotThere);
        }
        // The connection first: this write decides who removes it, once.
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::session_pk(id)))
            .key("sk", s(keys::connection_sk(connection_id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let delete = match departure {
            Departure::Left => delete.condition_expression("attribute_exists(pk)"),
            // A stale connection that pinged just in time stays.
            Departure::Stale => delete
                .condition_expression("lastSeen <= :cutoff")
                .expression_attribute_values(":cutoff", n(presence::presence_cutoff(now).millis())),
        };
        if self.precondition(delete.send().await, "removing a connection")? == Precondition::Failed
        {
            return Ok(LeaveOutcome::NotThere);
        }
        // Then what it held. A failure here leaves a lock that is free anyway (its
        // holder is not present) or a seat the sweeper gives back.
        let lookup = async {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(keys::connection_pk(connection_id)))
                .key("sk", s(keys::CONNECTION_LOOKUP))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            self.precondition(out, "removing a connection").map(|_| ())
        };
        let locks = members.locks_held_by(connection_id).map(|lock| async move {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(keys::session_pk(id)))
                .key("sk", s(keys::lock_sk(&lock.element)))
                .condition_expression("holder = :me")
                .expression_attribute_values(":me", s(connection_id))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            self.precondition(out, "releasing a lock").map(|_| ())
        });
        let seat = async {
            self.give_back_seat(id, connection_id, leaving.user.role, None, now)
                .await
                .map(|_| ())
        };
        let (lookup, locks, seat) = futures_util::join!(lookup, join_all(locks), seat);
        for result in std::iter::once(lookup)
            .chain(locks)
            .chain(std::iter::once(seat))
        {
            if let Err(e) = result {
                tracing::warn!(detail = %e.detail, "cleaning up after a departure failed");
            }
        }
        Ok(LeaveOutcome::Left(leaving))
    }

    async fn reclaim_seats(&self, id: &SessionId, now: Timestamp) -> Result<usize> {
        let items = self.member_items(id, "reading a session's seats").await?;
        let Some(members) = members_from_items(id, &items, now)? else {
            return Ok(0);
        };
        let Some(meta) = find_meta(&items) else {
            return Ok(0);
        };
        let mut given = 0;
        for role in [Role::Editor, Role::Viewer] {
            let claimed = seated(meta, role)?;
            for (connection, at) in presence::leaked_seats(&claimed, &members.connections, now) {
                if self
                    .give_back_seat(id, connection, role, Some(*at), now)
                    .await?
                {
                    tracing::warn!(session = %id, connection, "a leaked seat was given back");
                    given += 1;
                }
            }
        }
        Ok(given)
    }
}

impl DynamoStore {
    /// A session's connections, locks and head: `C#` < `L#` < `META`, one Query of
    /// the small items, never the snapshot parts or the log.
    async fn member_items(&self, id: &SessionId, operation: &str) -> Result<Vec<Item>> {
        let pk = keys::session_pk(id);
        self.query_range(&pk, keys::MEMBERS_START, keys::META, None, operation)
            .await
    }

    /// Removes `connection`'s seat (only the one claimed at `claimed`, when given);
    /// whether it was there. The last one out starts the countdown to erasure.
    async fn give_back_seat(
        &self,
        id: &SessionId,
        connection: &str,
        role: Role,
        claimed: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool> {
        let request = self
            .update_meta(id)
            .update_expression("REMOVE #map.#c")
            .expression_attribute_names("#map", seat_map(role))
            .expression_attribute_names("#c", connection)
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let request = match claimed {
            None => request.condition_expression("attribute_exists(#map.#c)"),
            Some(at) => request
                .condition_expression("#map.#c = :claimed")
                .expression_attribute_values(":claimed", n(at.millis())),
        };
        let Some(out) = self.conditional(request.send().await, "giving a seat back")? else {
            return Ok(false);
        };
        let left = out.attributes.as_ref().map(occupancy).transpose()?;
        if left.unwrap_or_default() == 0 {
            self.start_countdown(id, now).await?;
        }
        Ok(true)
    }

    /// The session is occupied: list it for presence checks from `at` on.
    async fn start_presence_checks(&self, id: &SessionId, at: Timestamp) -> Result<()> {
        let out = self
            .update_meta(id)
            .update_expression("SET sweepShard = :shard, sweepAt = :at")
            // Emptied again meanwhile: its entry is the erasure time.
            .condition_expression(
                "attribute_exists(pk) AND (size(seated) > :zero OR size(watching) > :zero)",
            )
            .expression_attribute_values(
                ":shard",
                s(keys::sweep_shard(SweepKind::CheckPresence, id)),
            )
            .expression_attribute_values(":at", n(at.millis()))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        self.precondition(out, "scheduling presence checks")?;
        Ok(())
    }

    /// The session is empty: it is erased `EMPTY_SESSION_LIFETIME` from now unless
    /// somebody joins (a join in between makes this a no-op).
    async fn start_countdown(&self, id: &SessionId, now: Timestamp) -> Result<()> {
        let at = now.plus(EMPTY_SESSION_LIFETIME);
        let out = self
            .update_meta(id)
            .update_expression("SET expiresAt = :at, sweepShard = :shard, sweepAt = :at")
            .condition_expression(
                "attribute_exists(pk) AND size(seated) = :zero \
                 AND (attribute_not_exists(watching) OR size(watching) = :zero)",
            )
            .expression_attribute_values(":at", n(at.millis()))
            .expression_attribute_values(":shard", s(keys::sweep_shard(SweepKind::Erase, id)))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        self.precondition(out, "starting the countdown to erasure")?;
        Ok(())
    }
}

/// Sessions created at or before this are past `MAX_SESSION_AGE` at `now`.
pub(super) fn born_after(now: Timestamp) -> i64 {
    now.millis() - crate::session::MAX_SESSION_AGE.as_millis() as i64
}

/// Why the seat write's condition failed, from the head as it was.
fn why_no_seat(seat: &Seat, old: Option<&Item>) -> Result<JoinOutcome> {
    let Some(meta) = old else {
        return Ok(JoinOutcome::NotFound);
    };
    let session = session_from_meta(&seat.session, meta)?;
    if session.tenant != seat.tenant || session.is_expired(seat.now) {
        return Ok(JoinOutcome::NotFound);
    }
    if seated(meta, seat.connection.user.role)?
        .iter()
        .any(|(c, _)| *c == seat.connection.id)
    {
        return Err(Error::unexpected(
            "this connection id is in the session already",
        ));
    }
    Ok(JoinOutcome::Full)
}

/// Seats of both kinds claimed in a head.
fn occupancy(meta: &Item) -> Result<usize> {
    Ok(seated(meta, Role::Editor)?.len() + seated(meta, Role::Viewer)?.len())
}
