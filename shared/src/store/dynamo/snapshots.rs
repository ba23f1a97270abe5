//! Snapshots (`T#<version>#<part>`): compaction writes the new snapshot's parts,
//! then moves the head's pointer forward (counting the snapshots in `snapCount`),
//! then deletes the old parts unless the old snapshot is one compaction keeps
//! (`snapshot::is_kept`: the first template and every fifth after it), which
//! versions older than the current snapshot are rebuilt from.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};

use super::DynamoStore;
use super::items::{n, number, optional_number, part_items, parts_with_prefix, sk};
use super::keys;
use super::sessions::TORN_READ_ATTEMPTS;
use crate::error::{Error, Result};
use crate::session::{Session, SessionId, Template, Version};
use crate::store::snapshot::{Snapshot, is_kept};
use crate::store::{SnapshotOutcome, SnapshotStore};

#[async_trait]
impl SnapshotStore for DynamoStore {
    /// A reader between two steps sees the old snapshot whole, or the new one whole
    /// (its read checks the parts against the pointer and reads again when they do
    /// not match).
    async fn write_snapshot(
        &self,
        id: &SessionId,
        version: Version,
        template: &Template,
    ) -> Result<SnapshotOutcome> {
        let snapshot = Snapshot::encode(template)?;
        let pk = keys::session_pk(id);
        for item in part_items(id, version, &snapshot) {
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            // Unconditional: the parts of one version are the same whoever writes them.
            self.conditional(out, "storing a snapshot")?;
        }
        let out = self
            .update_meta(id)
            .update_expression(
                "SET snapVersion = :v, snapParts = :parts, snapBytes = :bytes ADD snapCount :one",
            )
            .condition_expression("attribute_exists(pk) AND snapVersion < :v")
            .expression_attribute_values(":v", n(version.0))
            .expression_attribute_values(":parts", n(snapshot.parts.len()))
            .expression_attribute_values(":bytes", n(snapshot.compressed_len()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let Some(moved) = self.conditional(out, "storing a snapshot")? else {
            // A newer snapshot is in place. These parts are left for erasure:
            // deleting them could race a writer of the same version.
            return Ok(SnapshotOutcome::NewerStored);
        };
        let old = moved.attributes.unwrap_or_default();
        let old_number = optional_number(&old, "snapCount")?.unwrap_or(0);
        if is_kept(old_number) {
            return Ok(SnapshotOutcome::Stored);
        }
        let old_version = Version(number(&old, "snapVersion")?);
        let old_keys: Vec<String> = (0..number(&old, "snapParts")? as usize)
            .map(|p| keys::part_sk(old_version, p))
            .collect();
        self.delete_all(&pk, &old_keys, "dropping an old snapshot")
            .await?;
        Ok(SnapshotOutcome::Stored)
    }

    async fn kept_template(
        &self,
        session: &Session,
        at: Version,
    ) -> Result<Option<(Version, Template)>> {
        let pk = keys::session_pk(&session.id);
        let lowest = keys::parts_prefix(session.first_version);
        let mut highest = keys::parts_end(at);
        // The newest part key at or before `at` names the nearest snapshot. One
        // being replaced or half written reads incomplete: then the one before.
        for _ in 0..TORN_READ_ATTEMPTS {
            let newest = self
                .query(
                    &pk,
                    &lowest,
                    &highest,
                    Some(1),
                    false,
                    true,
                    "finding a kept template",
                )
                .await?;
            let Some(version) = newest.first().and_then(sk).and_then(keys::version_of_part) else {
                return Ok(None);
            };
            let prefix = keys::parts_prefix(version);
            let items = self
                .query_range(
                    &pk,
                    &prefix,
                    &keys::parts_end(version),
                    None,
                    "reading a kept template",
                )
                .await?;
            let parts = parts_with_prefix(&items, &prefix);
            let whole = items.first().map(|i| optional_number(i, "snapBytes"));
            if let Some(Ok(Some(bytes))) = whole
                && let Ok(template) = Snapshot::decode(&parts, bytes as usize)
            {
                return Ok(Some((version, template)));
            }
            highest = prefix;
        }
        Err(Error::unavailable(
            "reading a kept template: it kept changing; try again",
        ))
    }
}
