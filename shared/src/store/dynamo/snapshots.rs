//! Snapshots (`T#<version>#<part>`): compaction writes the new snapshot's parts,
//! then moves the head's pointer forward, then deletes the old parts. The first
//! template (the session's first version) is kept for reading older versions.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};

use super::DynamoStore;
use super::items::{n, number, optional_number, part_item, parts_with_prefix};
use super::keys;
use crate::error::Result;
use crate::session::{Session, SessionId, Template, Version};
use crate::store::snapshot::Snapshot;
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
        for (i, part) in snapshot.parts.iter().enumerate() {
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(part_item(id, version, i, part)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            // Unconditional: the parts of one version are the same whoever writes them.
            self.conditional(out, "storing a snapshot")?;
        }
        let out = self
            .update_meta(id)
            .update_expression("SET snapVersion = :v, snapParts = :parts, snapBytes = :bytes")
            .condition_expression("attribute_exists(pk) AND snapVersion < :v")
            .expression_attribute_values(":v", n(version.0))
            .expression_attribute_values(":parts", n(snapshot.parts.len()))
            .expression_attribute_values(":bytes", n(snapshot.compressed_len()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let Some(moved) = self.conditional(out, "storing a snapshot")? else {
            // A newer snapshot is in place. These parts are left for erasure:
            // deleting them could race a writer of the same version.
            return Ok(SnapshotOutcome::NewerStored);
        };
        let old = moved.attributes.unwrap_or_default();
        let old_version = Version(number(&old, "snapVersion")?);
        // The first template stays: versions older than the snapshot are read from it.
        let first = Version(optional_number(&old, "firstVersion")?.unwrap_or(1));
        let old_parts = if old_version == first {
            0
        } else {
            number(&old, "snapParts")? as usize
        };
        let old_keys: Vec<String> = (0..old_parts)
            .map(|p| keys::part_sk(old_version, p))
            .collect();
        self.delete_all(&pk, &old_keys, "dropping an old snapshot")
            .await?;
        Ok(SnapshotOutcome::Stored)
    }

    async fn first_template(&self, session: &Session) -> Result<Option<Template>> {
        let first = session.first_version;
        let items = self
            .query_range(
                &keys::session_pk(&session.id),
                &keys::parts_prefix(first),
                &keys::parts_end(first),
                None,
                "reading the first template",
            )
            .await?;
        if items.is_empty() {
            return Ok(None);
        }
        let parts = parts_with_prefix(&items, &keys::parts_prefix(first));
        let len = parts.iter().map(|p| p.len()).sum();
        Snapshot::decode(&parts, len).map(Some)
    }
}
