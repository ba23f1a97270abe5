//! Where sessions live. One trait per concern (the log, snapshots, presence,
//! locks, the sweep, API keys), together `SessionStore`; two implementations that
//! behave the same: the embedded in-process store (`memory`) and DynamoDB
//! (`dynamo`). The conformance suite in `tests/tests/store_conformance.rs` runs
//! against both, and against the local stack's fault-injecting wrapper.

pub mod dynamo;
pub mod memory;
pub mod snapshot;

use async_trait::async_trait;

use crate::api_key::{ApiKeyRecord, KeyHash};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::patch::Lockable;
use crate::session::presence::Departure;
use crate::session::{
    Connection, Ended, HistoryEntry, Lock, NewSession, Session, SessionId, SessionMembers,
    SessionState, Template, TemplateKey, TenantId, Version,
};

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// Sessions and their log: creating a session, reading it, and appending changes.
#[async_trait]
pub trait SessionLogStore: Send + Sync {
    /// Writes a new session, its first history entry and its template, and with a
    /// template key the key's claim, all at once or not at all. The claim decides
    /// between racing starts: the key must be unclaimed, or still name
    /// `new.replaces`, else nothing is written (`KeyTaken`). Fails if a session
    /// with that id exists.
    async fn create_session(&self, new: &NewSession) -> Result<CreateOutcome>;

    /// The session a tenant's template key names, if it is claimed. The session
    /// may have expired since: the claim lasts until the host is told it ended.
    async fn find_template_session(
        &self,
        tenant: &TenantId,
        key: &TemplateKey,
    ) -> Result<Option<SessionId>>;

    /// The session as it is at `now`: `None` when it does not exist or has expired
    /// (whether or not its data has been erased yet). Lists only present connections.
    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>>;

    /// A session that has expired but is still stored (its end not yet told, or
    /// its final template kept for the host): its last state. `None` when it is
    /// live or gone.
    async fn read_expired(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>>;

    /// History entries newer than `since`, oldest first, at most `limit` of them,
    /// and none after the one that brings their stored JSON past `max_bytes`: a
    /// caller that gets fewer than it asked for read its budget's worth.
    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<HistoryEntry>>;

    /// History entries older than `before` (all when `None`), newest first, at most
    /// `limit` of them: a page of `GET .../history`.
    async fn history_before(
        &self,
        id: &SessionId,
        before: Option<Version>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>>;

    /// The session's newest version (its newest log entry); `None` when it has no log.
    /// It may lag a change written a moment ago (an eventually consistent read, at
    /// half the cost): good for `pong` and for erasing, never for deciding a change.
    async fn head_version(&self, id: &SessionId) -> Result<Option<Version>>;

    /// What an editor holding the template at `since` needs to decide a change, in
    /// one read: the session's members and locks, and the log after `since`.
    /// `None` when the session does not exist or has expired.
    async fn read_since(
        &self,
        id: &SessionId,
        since: Version,
        now: Timestamp,
    ) -> Result<Option<Catchup>>;

    /// Writes a change under its version, only if no change holds that version yet
    /// (else nothing is written). One small write, whatever the template's size.
    async fn append_change(&self, id: &SessionId, entry: &HistoryEntry) -> Result<AppendOutcome>;
}

/// Snapshots: the template rewritten whole every so many changes (compaction).
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Stores `template` as the session's snapshot at `version`, if it is newer
    /// than the stored one, and drops the one it replaces unless that is one to
    /// keep (`snapshot::is_kept`).
    async fn write_snapshot(
        &self,
        id: &SessionId,
        version: Version,
        template: &Template,
    ) -> Result<SnapshotOutcome>;

    /// The nearest template stored at or before `at` (the first template, one
    /// compaction kept, or the current snapshot) and its version: the base for
    /// rebuilding an older version. `None` when there is none (an erased session).
    async fn kept_template(
        &self,
        session: &Session,
        at: Version,
    ) -> Result<Option<(Version, Template)>>;
}

/// Presence: who is in a session, their seats and their heartbeats.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// The session's head, its connections (present or stale) and its locks, without
    /// the template: what presence decisions need, at a cost that does not grow with
    /// the template. `None` when the session does not exist or has expired.
    async fn read_members(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionMembers>>;

    /// Takes a seat for a new connection: only if the session exists, belongs to
    /// the tenant, has not expired and has a free seat, decided by one conditional
    /// write of the session's head (never a transaction over it), then stores the
    /// connection. Clears the session's pending expiry. Never more seats than
    /// `max_editors`, however many race.
    async fn join(&self, seat: &Seat) -> Result<JoinOutcome>;

    /// The session a connection is in, if it is still stored.
    async fn find_connection(&self, connection_id: &str) -> Result<Option<SessionId>>;

    /// Marks a connection alive (a ping); a stale connection is not revived. One
    /// small write.
    async fn touch(
        &self,
        id: &SessionId,
        connection_id: &str,
        now: Timestamp,
    ) -> Result<TouchOutcome>;

    /// Removes a connection (one conditional write decides who removes it), then
    /// its locks (those `members` lists) and its seat; the last one out starts the
    /// session's countdown to erasure.
    async fn leave(
        &self,
        members: &SessionMembers,
        connection_id: &str,
        departure: Departure,
        now: Timestamp,
    ) -> Result<LeaveOutcome>;

    /// Gives back seats that a join or departure stopped half-way left claimed
    /// without their connection (`session::presence::leaked_seats`); how many.
    async fn reclaim_seats(&self, id: &SessionId, now: Timestamp) -> Result<usize>;
}

/// Locks: one holder per element.
#[async_trait]
pub trait LockStore: Send + Sync {
    /// Gives `lock.element` (the template's `target`) to `lock.connection_id` as
    /// `session::locks::decide` rules, on the members as stored when the write
    /// lands (`members` is what the caller read; the store reads again when it
    /// changed). A request over a limit is an error (4029).
    async fn take_lock(
        &self,
        members: &SessionMembers,
        lock: &Lock,
        target: &Lockable,
        now: Timestamp,
    ) -> Result<LockOutcome>;

    /// Releases `element` if `connection_id` holds it.
    async fn release_lock(
        &self,
        id: &SessionId,
        element: &str,
        connection_id: &str,
    ) -> Result<ReleaseOutcome>;
}

/// The sweeper's work: finding sessions due, and erasing expired ones.
#[async_trait]
pub trait SweepStore: Send + Sync {
    /// Sessions the sweeper must look at now, found through an index (never a Scan):
    /// expired ones to erase and occupied ones whose presence check is due.
    async fn sweep_due(&self, now: Timestamp, limit: usize) -> Result<Vec<SweepTask>>;

    /// When the sweeper should next look for stale connections in an occupied session.
    async fn schedule_presence_check(&self, id: &SessionId, at: Timestamp) -> Result<()>;

    /// Records that the host was told `session` ended (it has expired): frees its
    /// template key, if the claim still names it, and lists it for erasure at
    /// `ended.kept_until`. Repeating it changes nothing.
    async fn mark_ended(&self, session: &Session, ended: Ended) -> Result<()>;

    /// Records that a `coedit.session.updated` event told the host of `version`.
    async fn mark_reported(&self, id: &SessionId, version: Version, at: Timestamp) -> Result<()>;

    /// Deletes every item of a session that has ended and is no longer kept by
    /// `now`; nothing otherwise (live, rejoined, its end not yet told, or kept).
    async fn erase_session(&self, id: &SessionId, now: Timestamp) -> Result<EraseOutcome>;
}

/// API keys, stored by hash.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new API key; fails if that key exists already.
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()>;

    async fn find_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>>;

    /// Removes an API key.
    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<RevokeOutcome>;
}

/// Everything the application keeps: each part a trait of its own, so a backend
/// implements each part in its own module, and a caller names the part it uses.
pub trait SessionStore:
    SessionLogStore + SnapshotStore + PresenceStore + LockStore + SweepStore + ApiKeyStore
{
}

impl<T> SessionStore for T where
    T: SessionLogStore + SnapshotStore + PresenceStore + LockStore + SweepStore + ApiKeyStore
{
}

/// The members of a session and the log entries an editor has not seen yet.
#[derive(Debug, Clone)]
pub struct Catchup {
    pub members: SessionMembers,
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
}

/// A seat request: this connection wants into this tenant's session.
#[derive(Debug, Clone)]
pub struct Seat {
    pub session: SessionId,
    pub tenant: TenantId,
    pub connection: Connection,
    pub max_editors: u32,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined,
    /// Missing, expired or another tenant's: all the same to the caller.
    NotFound,
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// The connection was removed; these are its details as stored.
    Left(Connection),
    /// It was removed already (a late or repeated `$disconnect`), or, for a stale
    /// departure, it pinged in time.
    NotThere,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Granted,
    HeldBy(Lock),
}

/// Whether a change was stored under its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended,
    /// Another change holds that version; nothing was written.
    VersionTaken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The template key is claimed by another session: nothing was written.
    KeyTaken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Stored,
    /// A snapshot as new or newer is stored already; this one was not kept.
    NewerStored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    Alive,
    /// Gone, or stale already: nothing was written.
    NotPresent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    /// The connection did not hold it; nothing was written.
    NotHeld,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseOutcome {
    Erased,
    /// `ERASE_PAGE` items were deleted, newest first, and more are left: call
    /// again (the session stays due, so a later sweep goes on where this stopped).
    MoreLeft,
    /// Missing, not expired (somebody rejoined), its end not yet told or its
    /// final template still kept: nothing was deleted.
    NotDue,
}

/// Most items one `erase_session` call deletes, so a call's time is bounded
/// however long the session's log.
pub const ERASE_PAGE: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepTask {
    /// Expired: tell the host it ended, then erase it (once no longer kept).
    Erase(SessionId),
    CheckPresence(SessionId),
}

/// How often a write that lost a race (a transaction conflict, or a condition that
/// depended on what was read) is tried again before the caller gets 5100/5600.
pub const RACE_ATTEMPTS: usize = 12;

/// Jittered exponential backoff between attempts of a write that lost a race.
pub async fn backoff(attempt: usize) {
    let cap_ms = (5u64 << attempt.min(6)).min(250);
    let mut byte = [0u8; 2];
    let jitter = match getrandom::fill(&mut byte) {
        Ok(()) => u64::from(u16::from_le_bytes(byte)) % cap_ms.max(1),
        Err(_) => cap_ms / 2,
    };
    tokio::time::sleep(std::time::Duration::from_millis(jitter + 1)).await;
}
