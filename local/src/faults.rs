//! Fault injection for the local stack (`--faults RATE`) and the fault tests: a
//! store that fails a share of its calls the ways DynamoDB does (throttling,
//! internal errors, timeouts), half of them after the call went through (the
//! answer is lost, the write is not), and a notifier that drops or delays a share
//! of its posts. Both wrap the real parts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use coedit::api_key::{ApiKeyRecord, KeyHash};
use coedit::clock::Timestamp;
use coedit::events::{HostEvent, HostEvents};
use coedit::notify::{Delivery, Notifier};
use coedit::patch::Lockable;
use coedit::session::presence::Departure;
use coedit::session::{
    Ended, HistoryEntry, Lock, NewSession, Session, SessionId, SessionMembers, SessionState,
    Template, TemplateKey, TenantId, Version,
};
use coedit::store::{
    ApiKeyStore, AppendOutcome, Catchup, CreateOutcome, EraseOutcome, JoinOutcome, LeaveOutcome,
    LockOutcome, LockStore, PresenceStore, ReleaseOutcome, RevokeOutcome, Seat, SessionLogStore,
    SessionStore, SnapshotOutcome, SnapshotStore, SweepStore, SweepTask, TouchOutcome,
};
use coedit::{Error, Result};

/// A share in millionths, changeable while running.
#[derive(Default)]
pub struct Rate(AtomicU64);

impl Rate {
    pub fn new(share: f64) -> Rate {
        let r = Rate::default();
        r.set(share);
        r
    }

    pub fn set(&self, share: f64) {
        self.0
            .store((share.clamp(0.0, 1.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Whether this call is one that fails.
    fn hit(&self) -> Option<u64> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).ok()?;
        let draw = u64::from_le_bytes(b);
        (draw % 1_000_000 < self.0.load(Ordering::Relaxed)).then_some(draw)
    }
}

/// How many faults were injected, by kind.
#[derive(Default, Debug)]
pub struct Injected {
    pub before: AtomicU64,
    pub after: AtomicU64,
    pub dropped_posts: AtomicU64,
    pub delayed_posts: AtomicU64,
}

pub struct FaultyStore {
    pub inner: Arc<dyn SessionStore>,
    pub rate: Arc<Rate>,
    pub injected: Arc<Injected>,
    /// Fail only this operation (as named in store errors, e.g. "taking a seat"),
    /// and always before it reaches the store: a fault placed on purpose.
    pub only: Option<&'static str>,
}

impl FaultyStore {
    /// Fails a share of every call, before or after it reached the store.
    pub fn new(inner: Arc<dyn SessionStore>, rate: Arc<Rate>, injected: Arc<Injected>) -> Self {
        FaultyStore {
            inner,
            rate,
            injected,
            only: None,
        }
    }
}

impl FaultyStore {
    fn error(draw: u64, operation: &str) -> Error {
        match draw / 1_000_000 % 3 {
            0 => Error::unavailable(format!(
                "{operation}: the store is busy (ThrottlingException)"
            )),
            1 => Error::unavailable(format!(
                "{operation}: the store is busy (InternalServerError)"
            )),
            _ => Error::unavailable(format!("{operation}: the store did not answer")),
        }
    }

    /// Runs `call`, failing it before or after it reached the store.
    async fn run<T: Send>(
        &self,
        operation: &str,
        call: impl std::future::Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        if self.only.is_some_and(|only| only != operation) {
            return call.await;
        }
        let Some(draw) = self.rate.hit() else {
            return call.await;
        };
        if draw / 3_000_000 % 3 == 2 {
            // A timeout takes time before it fails.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if draw % 2 == 0 || self.only.is_some() {
            self.injected.before.fetch_add(1, Ordering::Relaxed);
            Err(Self::error(draw, operation))
        } else {
            let _ = call.await;
            self.injected.after.fetch_add(1, Ordering::Relaxed);
            Err(Self::error(draw, operation))
        }
    }
}

#[async_trait]
impl SessionLogStore for FaultyStore {
    async fn create_session(&self, new: &NewSession) -> Result<CreateOutcome> {
        self.run("creating a session", self.inner.create_session(new))
            .await
    }
    async fn find_template_session(
        &self,
        tenant: &TenantId,
        key: &TemplateKey,
    ) -> Result<Option<SessionId>> {
        self.run(
            "finding a template's session",
            self.inner.find_template_session(tenant, key),
        )
        .await
    }
    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        self.run("reading a session", self.inner.read_session(id, now))
            .await
    }
    async fn read_expired(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>> {
        self.run("reading a session", self.inner.read_expired(id, now))
            .await
    }
    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.run(
            "reading history",
            self.inner.history(id, since, limit, max_bytes),
        )
        .await
    }
    async fn history_before(
        &self,
        id: &SessionId,
        before: Option<Version>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.run(
            "reading history",
            self.inner.history_before(id, before, limit),
        )
        .await
    }
    async fn head_version(&self, id: &SessionId) -> Result<Option<Version>> {
        self.run("reading the newest version", self.inner.head_version(id))
            .await
    }
    async fn read_since(
        &self,
        id: &SessionId,
        since: Version,
        now: Timestamp,
    ) -> Result<Option<Catchup>> {
        self.run(
            "reading a session's newest changes",
            self.inner.read_since(id, since, now),
        )
        .await
    }
    async fn append_change(&self, id: &SessionId, entry: &HistoryEntry) -> Result<AppendOutcome> {
        self.run("storing a change", self.inner.append_change(id, entry))
            .await
    }
}

#[async_trait]
impl SnapshotStore for FaultyStore {
    async fn write_snapshot(
        &self,
        id: &SessionId,
        version: Version,
        template: &Template,
    ) -> Result<SnapshotOutcome> {
        self.run(
            "storing a snapshot",
            self.inner.write_snapshot(id, version, template),
        )
        .await
    }
    async fn kept_template(
        &self,
        session: &Session,
        at: Version,
    ) -> Result<Option<(Version, Template)>> {
        self.run(
            "reading a kept template",
            self.inner.kept_template(session, at),
        )
        .await
    }
}

#[async_trait]
impl PresenceStore for FaultyStore {
    async fn read_members(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionMembers>> {
        self.run(
            "reading a session's members",
            self.inner.read_members(id, now),
        )
        .await
    }
    async fn join(&self, seat: &Seat) -> Result<JoinOutcome> {
        self.run("taking a seat", self.inner.join(seat)).await
    }
    async fn find_connection(&self, connection_id: &str) -> Result<Option<SessionId>> {
        self.run(
            "finding a connection",
            self.inner.find_connection(connection_id),
        )
        .await
    }
    async fn touch(
        &self,
        id: &SessionId,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<TouchOutcome> {
        self.run(
            "marking a connection alive",
            self.inner.touch(id, connection_id, now),
        )
        .await
    }
    async fn leave(
        &self,
        members: &SessionMembers,
        connection_id: &str,
        departure: Departure,
        now: Timestamp,
    ) -> Result<LeaveOutcome> {
        self.run(
            "removing a connection",
            self.inner.leave(members, connection_id, departure, now),
        )
        .await
    }
    async fn reclaim_seats(&self, id: &SessionId, now: Timestamp) -> Result<usize> {
        self.run("reclaiming seats", self.inner.reclaim_seats(id, now))
            .await
    }
}

#[async_trait]
impl LockStore for FaultyStore {
    async fn take_lock(
        &self,
        members: &SessionMembers,
        lock: &Lock,
        target: &Lockable,
        now: Timestamp,
    ) -> Result<LockOutcome> {
        self.run(
            "taking a lock",
            self.inner.take_lock(members, lock, target, now),
        )
        .await
    }
    async fn release_lock(
        &self,
        id: &SessionId,
        element: &str,
        connection_id: &str,
    ) -> Result<ReleaseOutcome> {
        self.run(
            "releasing a lock",
            self.inner.release_lock(id, element, connection_id),
        )
        .await
    }
}

#[async_trait]
impl SweepStore for FaultyStore {
    async fn sweep_due(&self, now: Timestamp, limit: usize) -> Result<Vec<SweepTask>> {
        self.run(
            "listing sessions to sweep",
            self.inner.sweep_due(now, limit),
        )
        .await
    }
    async fn schedule_presence_check(&self, id: &SessionId, at: Timestamp) -> Result<()> {
        self.run(
            "scheduling a presence check",
            self.inner.schedule_presence_check(id, at),
        )
        .await
    }
    async fn mark_ended(&self, session: &Session, ended: Ended) -> Result<()> {
        self.run(
            "marking a session ended",
            self.inner.mark_ended(session, ended),
        )
        .await
    }
    async fn mark_reported(&self, id: &SessionId, version: Version, at: Timestamp) -> Result<()> {
        self.run(
            "recording a reported version",
            self.inner.mark_reported(id, version, at),
        )
        .await
    }
    async fn erase_session(&self, id: &SessionId, now: Timestamp) -> Result<EraseOutcome> {
        self.run("erasing a session", self.inner.erase_session(id, now))
            .await
    }
}

#[async_trait]
impl ApiKeyStore for FaultyStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()> {
        self.inner.put_api_key(record).await
    }
    async fn find_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>> {
        self.run("reading an API key", self.inner.find_api_key(hash))
            .await
    }
    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<RevokeOutcome> {
        self.inner.revoke_api_key(hash).await
    }
}

/// Drops or delays a share of the posts to connections (closes go through).
pub struct FaultyNotifier {
    pub inner: Arc<dyn Notifier>,
    pub rate: Arc<Rate>,
    pub injected: Arc<Injected>,
}

#[async_trait]
impl Notifier for FaultyNotifier {
    async fn post(&self, connection_id: &str, message: &str) -> Result<Delivery> {
        match self.rate.hit() {
            Some(draw) if draw % 2 == 0 => {
                // Lost on the way: the caller believes it was sent.
                self.injected.dropped_posts.fetch_add(1, Ordering::Relaxed);
                Ok(Delivery::Sent)
            }
            Some(_) => {
                self.injected.delayed_posts.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.inner.post(connection_id, message).await
            }
            None => self.inner.post(connection_id, message).await,
        }
    }

    async fn close(&self, connection_id: &str) -> Result<Delivery> {
        self.inner.close(connection_id).await
    }
}

/// Holds each post back for a random 0 to `max`, so pushes to one connection
/// overtake each other as posts from different function instances do on AWS: a
/// client then sees a change before a lower version, or its own ack first.
pub struct ReorderingNotifier {
    pub inner: Arc<dyn Notifier>,
    pub max: Duration,
}

#[async_trait]
impl Notifier for ReorderingNotifier {
    async fn post(&self, connection_id: &str, message: &str) -> Result<Delivery> {
        let mut b = [0u8; 8];
        let draw = getrandom::fill(&mut b).map_or(0, |()| u64::from_le_bytes(b));
        let max_us = self.max.as_micros().max(1) as u64;
        tokio::time::sleep(Duration::from_micros(draw % max_us)).await;
        self.inner.post(connection_id, message).await
    }

    async fn close(&self, connection_id: &str) -> Result<Delivery> {
        self.inner.close(connection_id).await
    }
}

/// Host events that fail while `failing` is set (EventBridge unreachable), and
/// otherwise go to `inner`.
pub struct FailingEvents {
    pub inner: Arc<dyn HostEvents>,
    pub failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl HostEvents for FailingEvents {
    async fn publish(&self, event: &HostEvent) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "publishing a host event failed (injected)",
            ));
        }
        self.inner.publish(event).await
    }
}
