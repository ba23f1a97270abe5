//! Sessions and their log: the head (`META`), the first snapshot and the first
//! entry written in one transaction; the log (`A#<version>`) appended one
//! conditional put per change; reads of the session, its history and its newest
//! version.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::DynamoStore;
use super::items::{
    connection_from_item, find_meta, history_bytes, history_from_item, history_item,
    history_version, members_from_items, meta_item, part_items, parts_with_prefix, s,
    session_from_meta, session_of_claim, sk, snapshot_size, template_claim_item,
};
use super::keys;
use super::requests::{Precondition, Take, Transaction, failed_condition, put};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::{
    HistoryEntry, NewSession, SessionId, SessionState, TemplateKey, TenantId, Version,
};
use crate::store::snapshot::Snapshot;
use crate::store::{AppendOutcome, Catchup, CreateOutcome, SessionLogStore};

/// Which sessions a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Live,
    Expired,
}

/// A read can overlap a compaction that replaces the snapshot it is reading; it
/// then sees an incomplete snapshot and reads again, at most this often.
pub(super) const TORN_READ_ATTEMPTS: usize = 3;

#[async_trait]
impl SessionLogStore for DynamoStore {
    async fn create_session(&self, new: &NewSession) -> Result<CreateOutcome> {
        let id = &new.session.id;
        let snapshot = Snapshot::encode_to_create(&new.template)?;
        let meta = meta_item(
            &new.session,
            snapshot.parts.len(),
            snapshot.compressed_len(),
        );
        let mut writes = vec![
            put(&self.table, meta, Some("attribute_not_exists(pk)"), &[])?,
            put(&self.table, history_item(id, &new.first_entry)?, None, &[])?,
        ];
        // The claim on the template key decides which of racing starts creates
        // the key's session: it must be free, or still name the expired session
        // this one takes over from.
        let claim = new.session.template_key.as_ref().map(|key| {
            let item = template_claim_item(&new.session, key);
            match &new.replaces {
                None => put(&self.table, item, Some("attribute_not_exists(pk)"), &[]),
                Some(old) => put(
                    &self.table,
                    item,
                    Some("sessionId = :old"),
                    &[(":old", s(old.as_str()))],
                ),
            }
        });
        let claim_at = writes.len();
        if let Some(claim) = claim {
            writes.push(claim?);
        }
        for item in part_items(id, new.session.snapshot_version, &snapshot) {
            writes.push(put(&self.table, item, None, &[])?);
        }

        // The session id makes the SDK's own retries of this transaction idempotent.
        let token = Some(id.as_str().to_owned());
        match self.transact(writes, token, "creating a session").await? {
            Transaction::Done => Ok(CreateOutcome::Created),
            Transaction::Cancelled(reasons)
                if new.session.template_key.is_some()
                    && reasons.get(claim_at).is_some_and(failed_condition) =>
            {
                Ok(CreateOutcome::KeyTaken)
            }
            Transaction::Cancelled(reasons) if reasons.iter().any(failed_condition) => {
                Err(Error::unexpected("a session with this id exists already"))
            }
            Transaction::Cancelled(_) => Err(Error::unavailable(
                "creating a session: the store was busy; try again",
            )),
        }
    }

    async fn find_template_session(
        &self,
        tenant: &TenantId,
        key: &TemplateKey,
    ) -> Result<Option<SessionId>> {
        let item = self
            .get_item(
                keys::template_claim_pk(tenant, key),
                keys::TEMPLATE_CLAIM,
                "finding a template's session",
            )
            .await?;
        item.as_ref().map(session_of_claim).transpose()
    }

    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        self.read_state(id, now, Wanted::Live).await
    }

    async fn read_expired(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        self.read_state(id, now, Wanted::Expired).await
    }

    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let take = Take {
            items: Some(limit),
            bytes: Some((max_bytes, history_bytes)),
        };
        let items = self
            .query_range(
                &keys::session_pk(id),
                &keys::history_sk(since.next()),
                keys::HISTORY_END,
                take,
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
            Some(v) => keys::history_sk(Version(v.0 - 1)),
            None => keys::HISTORY_END.to_owned(),
        };
        let items = self
            .newest_history(id, &hi, limit, true, "reading history")
            .await?;
        items.iter().map(history_from_item).collect()
    }

    async fn head_version(&self, id: &SessionId) -> Result<Option<Version>> {
        let items = self
            .newest_history(
                id,
                keys::HISTORY_END,
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
                &keys::session_pk(id),
                &keys::history_sk(since.next()),
                keys::META,
                None,
                "reading a session's newest changes",
            )
            .await?;
        let Some(members) = members_from_items(id, &items, now)? else {
            return Ok(None);
        };
        let entries = items
            .iter()
            .filter(|i| sk(i).is_some_and(keys::is_history))
            .map(history_from_item)
            .collect::<Result<_>>()?;
        Ok(Some(Catchup { members, entries }))
    }

    async fn append_change(&self, id: &SessionId, entry: &HistoryEntry) -> Result<AppendOutcome> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(history_item(id, entry)?))
            .condition_expression("attribute_not_exists(sk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        Ok(match self.precondition(out, "storing a change")? {
            Precondition::Held => AppendOutcome::Appended,
            Precondition::Failed => AppendOutcome::VersionTaken,
        })
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
    /// The newest history items at or before `hi`, newest first, at most `limit`.
    async fn newest_history(
        &self,
        id: &SessionId,
        hi: &str,
        limit: usize,
        consistent: bool,
        operation: &str,
    ) -> Result<Vec<super::items::Item>> {
        let pk = keys::session_pk(id);
        self.query(
            &pk,
            keys::HISTORY_START,
            hi,
            Some(limit),
            false,
            consistent,
            operation,
        )
        .await
    }

    /// One Query reads the head, the connections, the locks and the snapshot parts
    /// (`C#`, `L#`, `META`, `T#` sort together), a second the log after the snapshot.
    async fn read_state(
        &self,
        id: &SessionId,
        now: Timestamp,
        wanted: Wanted,
    ) -> Result<Option<SessionState>> {
        for _ in 0..TORN_READ_ATTEMPTS {
            match self.read_state_once(id, now, wanted).await {
                Err(ReadError::Torn) => continue,
                Err(ReadError::Store(e)) => return Err(e),
                Ok(state) => return Ok(state),
            }
        }
        Err(Error::unexpected(
            "the session's template kept changing while it was read",
        ))
    }

    async fn read_state_once(
        &self,
        id: &SessionId,
        now: Timestamp,
        wanted: Wanted,
    ) -> std::result::Result<Option<SessionState>, ReadError> {
        let items = self
            .query_range(
                &keys::session_pk(id),
                keys::MEMBERS_START,
                keys::PARTS_END,
                None,
                "reading a session",
            )
            .await?;
        let Some(meta) = find_meta(&items) else {
            return Ok(None);
        };
        let session = session_from_meta(id, meta)?;
        if session.is_expired(now) != (wanted == Wanted::Expired) {
            return Ok(None);
        }
        let (snap_parts, snap_bytes) = snapshot_size(meta)?;
        let parts = parts_with_prefix(&items, &keys::parts_prefix(session.snapshot_version));
        if parts.len() != snap_parts || parts.iter().map(|p| p.len()).sum::<usize>() != snap_bytes {
            return Err(ReadError::Torn);
        }
        let template = Snapshot::decode(&parts, snap_bytes)?;

        let mut connections = Vec::new();
        for item in items
            .iter()
            .filter(|i| sk(i).and_then(keys::connection_of).is_some())
        {
            let connection = connection_from_item(item)?;
            if connection.is_present(now) {
                connections.push(connection);
            }
        }
        // The log after the snapshot: bounded by compaction, so this read stays
        // small however long the session ran.
        let tail = self
            .history(id, session.snapshot_version, usize::MAX, usize::MAX)
            .await?;
        Ok(Some(SessionState {
            session,
            connections,
            snapshot: template,
            tail,
        }))
    }
}
