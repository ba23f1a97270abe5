//! The sweeper's side of the table: the sparse `sweep` index (`sweepShard`,
//! `sweepAt` on the heads that need a visit), presence checks scheduled on it,
//! and the erasure of expired sessions.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use futures_util::future::join_all;

use super::DynamoStore;
use super::items::{n, s, session_from_meta};
use super::keys::{self, SWEEP_SHARDS, SweepKind};
use super::requests::{Precondition, store_error};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::{Ended, Session, SessionId, Version};
use crate::store::{ERASE_PAGE, EraseOutcome, SweepStore, SweepTask};

#[async_trait]
impl SweepStore for DynamoStore {
    async fn sweep_due(&self, now: Timestamp, limit: usize) -> Result<Vec<SweepTask>> {
        let shards = SweepKind::ALL
            .into_iter()
            .flat_map(|kind| (0..SWEEP_SHARDS).map(move |shard| (kind, shard)));
        let queries = shards.map(|(kind, shard)| async move {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("sweep")
                .key_condition_expression("sweepShard = :shard AND sweepAt <= :now")
                .expression_attribute_values(":shard", s(keys::sweep_partition(kind, shard)))
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
                    let id = keys::session_of_pk(item.get("pk")?.as_s().ok()?)?;
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

    async fn schedule_presence_check(&self, id: &SessionId, at: Timestamp) -> Result<()> {
        let out = self
            .update_meta(id)
            .update_expression("SET sweepAt = :at")
            // Only while occupied: an empty session's entry is its erasure time.
            .condition_expression("sweepShard = :shard")
            .expression_attribute_values(":at", n(at.millis()))
            .expression_attribute_values(
                ":shard",
                s(keys::sweep_shard(SweepKind::CheckPresence, id)),
            )
            .send()
            .await;
        // Emptied meanwhile: its erasure entry stays as it is.
        self.precondition(out, "scheduling a presence check")?;
        Ok(())
    }

    async fn mark_ended(&self, session: &Session, ended: Ended) -> Result<()> {
        let id = &session.id;
        let out = self
            .update_meta(id)
            .update_expression("SET endedAt = :at, keptUntil = :kept, sweepAt = :kept")
            .condition_expression(
                "attribute_exists(pk) AND (expiresAt <= :at OR createdAt <= :born_after)",
            )
            .expression_attribute_values(":at", n(ended.at.millis()))
            .expression_attribute_values(":kept", n(ended.kept_until.millis()))
            .expression_attribute_values(":born_after", n(super::presence::born_after(ended.at)))
            .send()
            .await;
        if self.precondition(out, "marking a session ended")? == Precondition::Failed {
            return Err(Error::unexpected(
                "marking a session ended: it is missing or not expired",
            ));
        }
        if let Some(key) = &session.template_key {
            // The key is free for a new session, unless one took it over already.
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(keys::template_claim_pk(&session.tenant, key)))
                .key("sk", s(keys::TEMPLATE_CLAIM))
                .condition_expression("sessionId = :id")
                .expression_attribute_values(":id", s(id.as_str()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            self.precondition(out, "freeing a template key")?;
        }
        Ok(())
    }

    async fn mark_reported(&self, id: &SessionId, version: Version, at: Timestamp) -> Result<()> {
        let out = self
            .update_meta(id)
            .update_expression("SET reportedVersion = :v, reportedAt = :at")
            .condition_expression(
                "attribute_exists(pk) AND \
                 (attribute_not_exists(reportedVersion) OR reportedVersion < :v)",
            )
            .expression_attribute_values(":v", n(version.0))
            .expression_attribute_values(":at", n(at.millis()))
            .send()
            .await;
        // Gone, or a newer version reported meanwhile: nothing to record.
        self.precondition(out, "recording a reported version")?;
        Ok(())
    }

    /// Deletes the log (its first version up to the newest, keys computed, not read),
    /// whatever the range from the members to the snapshot parts holds, then the
    /// head itself, last, so an interrupted erasure is found and finished by the
    /// next sweep.
    async fn erase_session(&self, id: &SessionId, now: Timestamp) -> Result<EraseOutcome> {
        let pk = keys::session_pk(id);
        let Some(meta) = self
            .get_item(pk.clone(), keys::META, "reading a session to erase")
            .await?
        else {
            return Ok(EraseOutcome::NotDue);
        };
        let session = session_from_meta(id, &meta)?;
        if !session.is_due_for_erasure(now) {
            return Ok(EraseOutcome::NotDue);
        }
        // The log newest first, then connections, locks and snapshot parts; the
        // head last, so a session erased half-way stays due and the next call goes
        // on from what is left (the keys are read again: nothing is deleted twice).
        let ranges = [
            (keys::HISTORY_START, keys::HISTORY_END, false),
            (keys::MEMBERS_START, keys::PARTS_END, true),
        ];
        for (lo, hi, ascending) in ranges {
            let (found, more) = self.sort_keys(&pk, lo, hi, ERASE_PAGE, ascending).await?;
            let doomed: Vec<String> = found.into_iter().filter(|k| k != keys::META).collect();
            self.delete_all(&pk, &doomed, "erasing a session").await?;
            // A connection's lookup item lives in its own partition.
            for connection in doomed.iter().filter_map(|k| keys::connection_of(k)) {
                let lookup = [keys::CONNECTION_LOOKUP.to_owned()];
                self.delete_all(
                    &keys::connection_pk(connection),
                    &lookup,
                    "erasing a session",
                )
                .await?;
            }
            if more {
                return Ok(EraseOutcome::MoreLeft);
            }
        }

        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(keys::META))
            // Ended (which required it expired) and no longer kept.
            .condition_expression("keptUntil <= :now")
            .expression_attribute_values(":now", n(now.millis()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        Ok(match self.precondition(out, "erasing a session")? {
            Precondition::Held => EraseOutcome::Erased,
            Precondition::Failed => EraseOutcome::NotDue,
        })
    }
}
