//! The embedded store: everything in one process's memory, behind one lock. Used by
//! the local stack and the tests; it keeps templates as the DynamoDB store does
//! (compressed snapshots, the same size limit), so both answer alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::SessionStore;
use super::snapshot::Snapshot;
use crate::auth::{ApiKeyRecord, KeyHash};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::{
    Connection, HistoryEntry, NewSession, Session, SessionId, SessionState, Version,
};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    writes: AtomicU64,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, StoredSession>,
    keys: HashMap<KeyHash, ApiKeyRecord>,
}

struct StoredSession {
    session: Session,
    history: BTreeMap<Version, HistoryEntry>,
    snapshot: Snapshot,
    connections: BTreeMap<String, Connection>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// How many writes changed stored data so far.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave half-applied state: every change below is
        // made after all its checks.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, new: &NewSession) -> Result<()> {
        let snapshot = Snapshot::encode(&new.template)?;
        let mut inner = self.lock();
        if inner.sessions.contains_key(&new.session.id) {
            return Err(Error::unexpected("a session with this id exists already"));
        }
        inner.sessions.insert(
            new.session.id.clone(),
            StoredSession {
                session: new.session.clone(),
                history: BTreeMap::from([(new.first_entry.version, new.first_entry.clone())]),
                snapshot,
                connections: BTreeMap::new(),
            },
        );
        self.wrote();
        Ok(())
    }

    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        let (session, connections, snapshot) = {
            let inner = self.lock();
            let Some(stored) = inner.sessions.get(id) else {
                return Ok(None);
            };
            if stored.session.is_expired(now) {
                return Ok(None);
            }
            let present = stored
                .connections
                .values()
                .filter(|c| c.is_present(now))
                .cloned()
                .collect();
            (stored.session.clone(), present, stored.snapshot.clone())
        };
        // Decompress outside the lock.
        let parts: Vec<&[u8]> = snapshot.parts.iter().map(Vec::as_slice).collect();
        let template = Snapshot::decode(&parts, snapshot.compressed_len())?;
        Ok(Some(SessionState {
            session,
            connections,
            template,
        }))
    }

    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let inner = self.lock();
        Ok(inner
            .sessions
            .get(id)
            .map(|s| {
                s.history
                    .range(since.next()..)
                    .take(limit)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let mut inner = self.lock();
        if inner.keys.contains_key(&record.hash) {
            return Err(Error::unexpected("this API key exists already"));
        }
        inner.keys.insert(record.hash, record.clone());
        self.wrote();
        Ok(())
    }

    async fn find_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>> {
        Ok(self.lock().keys.get(hash).cloned())
    }

    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<bool> {
        let removed = self.lock().keys.remove(hash).is_some();
        if removed {
            self.wrote();
        }
        Ok(removed)
    }
}
