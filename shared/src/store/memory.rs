//! The embedded store: everything in one process's memory, behind one lock. Used by
//! the local stack and the tests; it keeps templates as the DynamoDB store does
//! (compressed snapshots, the same size limit), so both answer alike.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::snapshot::{Snapshot, is_kept};
use super::{
    ApiKeyStore, AppendOutcome, Catchup, CreateOutcome, ERASE_PAGE, EraseOutcome, JoinOutcome,
    LeaveOutcome, LockOutcome, LockStore, PresenceStore, ReleaseOutcome, RevokeOutcome, Seat,
    SessionLogStore, SnapshotOutcome, SnapshotStore, SweepStore, SweepTask, TouchOutcome,
};
use crate::api_key::{ApiKeyRecord, KeyHash};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::patch::Lockable;
use crate::session::locks::{self, LockDecision};
use crate::session::presence::{self, Departure, PRESENCE_CHECK_INTERVAL};
use crate::session::{
    Connection, Ended, HistoryEntry, Lock, NewSession, Role, Session, SessionId, SessionMembers,
    SessionState, Template, TemplateKey, TenantId, Version,
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
    /// Connection id -> session: the reverse lookup `$disconnect` and `ping` need.
    connections: HashMap<String, SessionId>,
    /// A tenant's template key -> the session it names.
    claims: HashMap<(TenantId, TemplateKey), SessionId>,
}

struct StoredSession {
    session: Session,
    history: BTreeMap<Version, HistoryEntry>,
    snapshot: Snapshot,
    /// The snapshot's number: 0 for the first template, one more each compaction.
    snapshot_number: u64,
    /// Snapshots compaction kept (`snapshot::is_kept`), the first among them.
    kept: BTreeMap<Version, Snapshot>,
    connections: BTreeMap<String, Connection>,
    locks: BTreeMap<String, Lock>,
    /// When the sweeper should next look for stale connections (occupied sessions).
    presence_check_at: Option<Timestamp>,
}

impl StoredSession {
    fn live(&self, now: Timestamp) -> bool {
        !self.session.is_expired(now)
    }

    fn members(&self) -> SessionMembers {
        SessionMembers {
            session: self.session.clone(),
            connections: self.connections.values().cloned().collect(),
            locks: self.locks.values().cloned().collect(),
        }
    }
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

    /// A live session (`expired` false) or an expired one still stored.
    fn read_state(
        &self,
        id: &SessionId,
        now: Timestamp,
        expired: bool,
    ) -> Result<Option<SessionState>> {
        let (session, connections, snapshot, tail) = {
            let inner = self.lock();
            let Some(stored) = inner.sessions.get(id) else {
                return Ok(None);
            };
            if stored.session.is_expired(now) != expired {
                return Ok(None);
            }
            let present = stored
                .connections
                .values()
                .filter(|c| c.is_present(now))
                .cloned()
                .collect();
            let tail = stored
                .history
                .range(stored.session.snapshot_version.next()..)
                .map(|(_, e)| e.clone())
                .collect();
            (
                stored.session.clone(),
                present,
                stored.snapshot.clone(),
                tail,
            )
        };
        // Decompress outside the lock.
        let parts: Vec<&[u8]> = snapshot.parts.iter().map(Vec::as_slice).collect();
        let template = Snapshot::decode(&parts, snapshot.compressed_len())?;
        Ok(Some(SessionState {
            session,
            connections,
            snapshot: template,
            tail,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave half-applied state: every change below is
        // made after all its checks.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SessionLogStore for MemoryStore {
    async fn create_session(&self, new: &NewSession) -> Result<CreateOutcome> {
        let snapshot = Snapshot::encode_to_create(&new.template)?;
        let mut inner = self.lock();
        if inner.sessions.contains_key(&new.session.id) {
            return Err(Error::unexpected("a session with this id exists already"));
        }
        if let Some(key) = &new.session.template_key {
            let claim = (new.session.tenant.clone(), key.clone());
            if inner.claims.get(&claim) != new.replaces.as_ref() {
                return Ok(CreateOutcome::KeyTaken);
            }
            inner.claims.insert(claim, new.session.id.clone());
        }
        inner.sessions.insert(
            new.session.id.clone(),
            StoredSession {
                session: new.session.clone(),
                history: BTreeMap::from([(new.first_entry.version, new.first_entry.clone())]),
                snapshot_number: 0,
                kept: BTreeMap::new(),
                snapshot,
                connections: BTreeMap::new(),
                locks: BTreeMap::new(),
                presence_check_at: None,
            },
        );
        self.wrote();
        Ok(CreateOutcome::Created)
    }

    async fn find_template_session(
        &self,
        tenant: &TenantId,
        key: &TemplateKey,
    ) -> Result<Option<SessionId>> {
        let claim = (tenant.clone(), key.clone());
        Ok(self.lock().claims.get(&claim).cloned())
    }

    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        self.read_state(id, now, false)
    }

    async fn read_expired(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        self.read_state(id, now, true)
    }

    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let inner = self.lock();
        let mut entries = Vec::new();
        let mut bytes = 0;
        let log = inner.sessions.get(id).map(|s| &s.history);
        for (_, entry) in log.into_iter().flat_map(|h| h.range(since.next()..)) {
            if entries.len() == limit || bytes > max_bytes {
                break;
            }
            bytes += crate::patch::json_bytes(entry);
            entries.push(entry.clone());
        }
        Ok(entries)
    }

    async fn history_before(
        &self,
        id: &SessionId,
        before: Option<Version>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let inner = self.lock();
        let end = before.unwrap_or(Version(u64::MAX));
        Ok(inner
            .sessions
            .get(id)
            .map(|s| {
                s.history
                    .range(..end)
                    .rev()
                    .take(limit)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn head_version(&self, id: &SessionId) -> Result<Option<Version>> {
        let inner = self.lock();
        Ok(inner
            .sessions
            .get(id)
            .and_then(|s| s.history.keys().next_back().copied()))
    }

    async fn read_since(
        &self,
        id: &SessionId,
        since: Version,
        now: Timestamp,
    ) -> Result<Option<Catchup>> {
        let inner = self.lock();
        Ok(inner
            .sessions
            .get(id)
            .filter(|s| s.live(now))
            .map(|s| Catchup {
                members: s.members(),
                entries: s
                    .history
                    .range(since.next()..)
                    .map(|(_, e)| e.clone())
                    .collect(),
            }))
    }

    async fn append_change(&self, id: &SessionId, entry: &HistoryEntry) -> Result<AppendOutcome> {
        let mut inner = self.lock();
        let Some(stored) = inner.sessions.get_mut(id) else {
            return Err(Error::session_not_found());
        };
        if stored.history.contains_key(&entry.version) {
            return Ok(AppendOutcome::VersionTaken);
        }
        stored.history.insert(entry.version, entry.clone());
        self.wrote();
        Ok(AppendOutcome::Appended)
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn write_snapshot(
        &self,
        id: &SessionId,
        version: Version,
        template: &Template,
    ) -> Result<SnapshotOutcome> {
        let snapshot = Snapshot::encode(template)?;
        let mut inner = self.lock();
        let Some(stored) = inner.sessions.get_mut(id) else {
            return Ok(SnapshotOutcome::NewerStored);
        };
        if stored.session.snapshot_version >= version {
            return Ok(SnapshotOutcome::NewerStored);
        }
        let old = std::mem::replace(&mut stored.snapshot, snapshot);
        if is_kept(stored.snapshot_number) {
            stored.kept.insert(stored.session.snapshot_version, old);
        }
        stored.snapshot_number += 1;
        stored.session.snapshot_version = version;
        self.wrote();
        Ok(SnapshotOutcome::Stored)
    }

    async fn kept_template(
        &self,
        session: &Session,
        at: Version,
    ) -> Result<Option<(Version, Template)>> {
        let nearest = self.lock().sessions.get(&session.id).and_then(|s| {
            let current = (s.session.snapshot_version <= at)
                .then(|| (s.session.snapshot_version, s.snapshot.clone()));
            let kept = s
                .kept
                .range(..=at)
                .next_back()
                .map(|(v, k)| (*v, k.clone()));
            current.or(kept)
        });
        nearest
            .map(|(version, snapshot)| {
                let parts: Vec<&[u8]> = snapshot.parts.iter().map(Vec::as_slice).collect();
                Ok((
                    version,
                    Snapshot::decode(&parts, snapshot.compressed_len())?,
                ))
            })
            .transpose()
    }
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn read_members(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionMembers>> {
        let inner = self.lock();
        Ok(inner
            .sessions
            .get(id)
            .filter(|s| s.live(now))
            .map(StoredSession::members))
    }

    async fn join(&self, seat: &Seat) -> Result<JoinOutcome> {
        let mut inner = self.lock();
        let Some(stored) = inner
            .sessions
            .get_mut(&seat.session)
            .filter(|s| s.live(seat.now) && s.session.tenant == seat.tenant)
        else {
            return Ok(JoinOutcome::NotFound);
        };
        let role = seat.connection.user.role;
        if !presence::has_free_seat(&stored.session, role, seat.max_editors) {
            return Ok(JoinOutcome::Full);
        }
        match role {
            Role::Editor => stored.session.seats += 1,
            Role::Viewer => stored.session.viewers += 1,
        }
        stored.session.expires_at = None;
        stored.presence_check_at = Some(seat.now.plus(PRESENCE_CHECK_INTERVAL));
        stored
            .connections
            .insert(seat.connection.id.clone(), seat.connection.clone());
        inner
            .connections
            .insert(seat.connection.id.clone(), seat.session.clone());
        self.wrote();
        Ok(JoinOutcome::Joined)
    }

    async fn find_connection(&self, connection_id: &str) -> Result<Option<SessionId>> {
        Ok(self.lock().connections.get(connection_id).cloned())
    }

    async fn touch(
        &self,
        id: &SessionId,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<TouchOutcome> {
        let mut inner = self.lock();
        let connection = inner
            .sessions
            .get_mut(id)
            .and_then(|s| s.connections.get_mut(connection_id))
            .filter(|c| c.is_present(now));
        match connection {
            Some(c) => {
                c.last_seen = now;
                self.wrote();
                Ok(TouchOutcome::Alive)
            }
            None => Ok(TouchOutcome::NotPresent),
        }
    }

    async fn leave(
        &self,
        members: &SessionMembers,
        connection_id: &str,
        departure: Departure,
        now: Timestamp,
    ) -> Result<LeaveOutcome> {
        let mut inner = self.lock();
        let Some(stored) = inner.sessions.get_mut(&members.session.id) else {
            return Ok(LeaveOutcome::NotThere);
        };
        let leaving = match stored.connections.get(connection_id) {
            Some(c) if departure == Departure::Left || !c.is_present(now) => c.clone(),
            _ => return Ok(LeaveOutcome::NotThere),
        };
        stored.connections.remove(connection_id);
        stored.locks.retain(|_, l| l.connection_id != connection_id);
        presence::give_back_seat(&mut stored.session, leaving.user.role, now);
        if stored.session.expires_at.is_some() {
            stored.presence_check_at = None;
        }
        inner.connections.remove(connection_id);
        self.wrote();
        Ok(LeaveOutcome::Left(leaving))
    }

    async fn reclaim_seats(&self, _id: &SessionId, _now: Timestamp) -> Result<usize> {
        // Joins and departures happen under one lock here: no seat is ever left
        // half-taken.
        Ok(0)
    }
}

#[async_trait]
impl LockStore for MemoryStore {
    async fn take_lock(
        &self,
        members: &SessionMembers,
        lock: &Lock,
        target: &Lockable,
        now: Timestamp,
    ) -> Result<LockOutcome> {
        let mut inner = self.lock();
        let Some(stored) = inner.sessions.get_mut(&members.session.id) else {
            return Err(Error::session_not_found());
        };
        // Decided on the session as it is now: this store writes under one lock.
        match locks::decide(&stored.members(), lock, target, now) {
            LockDecision::HeldBy(held) => Ok(LockOutcome::HeldBy(held)),
            LockDecision::Refused(e) => Err(e),
            LockDecision::Take { .. } => {
                stored.locks.insert(lock.element.clone(), lock.clone());
                self.wrote();
                Ok(LockOutcome::Granted)
            }
        }
    }

    async fn release_lock(
        &self,
        id: &SessionId,
        element: &str,
        connection_id: &str,
    ) -> Result<ReleaseOutcome> {
        let mut inner = self.lock();
        let Some(stored) = inner.sessions.get_mut(id) else {
            return Ok(ReleaseOutcome::NotHeld);
        };
        if stored
            .locks
            .get(element)
            .is_some_and(|l| l.connection_id == connection_id)
        {
            stored.locks.remove(element);
            self.wrote();
            return Ok(ReleaseOutcome::Released);
        }
        Ok(ReleaseOutcome::NotHeld)
    }
}

#[async_trait]
impl SweepStore for MemoryStore {
    async fn sweep_due(&self, now: Timestamp, limit: usize) -> Result<Vec<SweepTask>> {
        // The embedded store has no index to keep; looking at every session is its
        // equivalent of the DynamoDB store's sparse index queries.
        let inner = self.lock();
        let mut due: Vec<SweepTask> = inner
            .sessions
            .values()
            .filter_map(|s| {
                let kept = s.session.ended.is_some_and(|e| now < e.kept_until);
                if s.session.is_expired(now) && !kept {
                    Some(SweepTask::Erase(s.session.id.clone()))
                } else if s.presence_check_at.is_some_and(|at| at <= now) {
                    Some(SweepTask::CheckPresence(s.session.id.clone()))
                } else {
                    None
                }
            })
            .collect();
        due.truncate(limit);
        Ok(due)
    }

    async fn schedule_presence_check(&self, id: &SessionId, at: Timestamp) -> Result<()> {
        let mut inner = self.lock();
        let occupied = |s: &&mut StoredSession| s.session.seats + s.session.viewers > 0;
        if let Some(stored) = inner.sessions.get_mut(id).filter(occupied) {
            stored.presence_check_at = Some(at);
            self.wrote();
        }
        Ok(())
    }

    async fn mark_ended(&self, session: &Session, ended: Ended) -> Result<()> {
        let mut inner = self.lock();
        let Some(stored) = inner
            .sessions
            .get_mut(&session.id)
            .filter(|s| s.session.is_expired(ended.at))
        else {
            return Err(Error::unexpected(
                "marking a session ended: it is missing or not expired",
            ));
        };
        stored.session.ended = Some(ended);
        if let Some(key) = &session.template_key {
            let claim = (session.tenant.clone(), key.clone());
            if inner.claims.get(&claim) == Some(&session.id) {
                inner.claims.remove(&claim);
            }
        }
        self.wrote();
        Ok(())
    }

    async fn mark_reported(&self, id: &SessionId, version: Version, at: Timestamp) -> Result<()> {
        let mut inner = self.lock();
        if let Some(stored) = inner.sessions.get_mut(id)
            && stored.session.reported.is_none_or(|(v, _)| v < version)
        {
            stored.session.reported = Some((version, at));
            self.wrote();
        }
        Ok(())
    }

    async fn erase_session(&self, id: &SessionId, now: Timestamp) -> Result<EraseOutcome> {
        let mut inner = self.lock();
        let Some(stored) = inner.sessions.get_mut(id) else {
            return Ok(EraseOutcome::NotDue);
        };
        if !stored.session.is_due_for_erasure(now) {
            return Ok(EraseOutcome::NotDue);
        }
        // As DynamoDB's: the log newest first, a page at a time.
        if stored.history.len() > ERASE_PAGE {
            for _ in 0..ERASE_PAGE {
                stored.history.pop_last();
            }
            self.wrote();
            return Ok(EraseOutcome::MoreLeft);
        }
        if let Some(stored) = inner.sessions.remove(id) {
            for connection in stored.connections.keys() {
                inner.connections.remove(connection);
            }
        }
        self.wrote();
        Ok(EraseOutcome::Erased)
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
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

    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<RevokeOutcome> {
        let removed = self.lock().keys.remove(hash).is_some();
        if removed {
            self.wrote();
        }
        Ok(if removed {
            RevokeOutcome::Revoked
        } else {
            RevokeOutcome::NotFound
        })
    }
}
