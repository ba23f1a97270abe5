//! Locks (`L#<element>`): one item per held element, taken as `session::locks`
//! decides, with a put conditioned on what was read (nobody's, or the holder as
//! read), released with a delete conditioned on the holder.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::DynamoStore;
use super::items::{lock_item, s};
use super::keys;
use super::requests::Precondition;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::patch::Lockable;
use crate::session::locks::{self, LockDecision};
use crate::session::{Lock, SessionId, SessionMembers};
use crate::store::{LockOutcome, LockStore, PresenceStore, RACE_ATTEMPTS, ReleaseOutcome, backoff};

#[async_trait]
impl LockStore for DynamoStore {
    async fn take_lock(
        &self,
        members: &SessionMembers,
        lock: &Lock,
        target: &Lockable,
        now: Timestamp,
    ) -> Result<LockOutcome> {
        let mut members = members.clone();
        for attempt in 0..RACE_ATTEMPTS {
            let replacing = match locks::decide(&members, lock, target, now) {
                LockDecision::HeldBy(held) => return Ok(LockOutcome::HeldBy(held)),
                LockDecision::Refused(e) => return Err(e),
                LockDecision::Take { replacing } => replacing,
            };
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(lock_item(&members.session.id, lock)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            // Only over what was read: nobody's, or the holder as read.
            let request = match &replacing {
                None => request.condition_expression("attribute_not_exists(pk)"),
                Some(holder) => request
                    .condition_expression("holder = :seen")
                    .expression_attribute_values(":seen", s(holder)),
            };
            if self.precondition(request.send().await, "taking a lock")? == Precondition::Held {
                return Ok(LockOutcome::Granted);
            }
            // Someone else changed the lock since it was read: look again.
            backoff(attempt).await;
            members = self
                .read_members(&members.session.id, now)
                .await?
                .ok_or_else(Error::session_not_found)?;
        }
        Err(Error::unavailable(
            "taking a lock: the session kept changing; try again",
        ))
    }

    async fn release_lock(
        &self,
        id: &SessionId,
        element: &str,
        connection_id: &str,
    ) -> Result<ReleaseOutcome> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::session_pk(id)))
            .key("sk", s(keys::lock_sk(element)))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(connection_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        Ok(match self.precondition(out, "releasing a lock")? {
            Precondition::Held => ReleaseOutcome::Released,
            Precondition::Failed => ReleaseOutcome::NotHeld,
        })
    }
}
