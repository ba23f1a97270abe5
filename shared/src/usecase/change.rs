//! A change, from whichever route it comes (the WebSocket `edit` message or
//! `POST .../changes`): decided on this instance's template of the session, stored
//! under the next version with one conditional write, compacted into a new
//! snapshot every `COMPACT_EVERY` versions or `COMPACT_BYTES`, and sent to everyone else. Also the
//! catch-up a client asks for with `sync`.

use super::presence::drop_gone;
use super::{present_self, session_of};
use serde_json::Value;

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::{Code, Error, Result};
use crate::notify;
use crate::session::change::{Author, Edit, Head, MAX_REBASE_READ_BYTES, Outcome};
use crate::session::locks;
use crate::session::message::{MAX_MESSAGE_BYTES, ServerMessage};
use crate::session::presence::gone_for_good;
use crate::session::{HistoryEntry, SessionId, SessionMembers, User, Version};
use crate::store::{AppendOutcome, SnapshotOutcome, backoff};

/// How often a change is decided again after another took its version. Each lost
/// race is someone else's progress, so this bounds unfairness, not livelock:
/// with four instances racing flat out, losing 100 in a row is a 1e-12 event.
const VERSION_ATTEMPTS: usize = 100;

/// Most entries one `changes` answer carries; further back, the client resyncs.
pub const MAX_SYNC_ENTRIES: usize = 200;

/// Who sends a change: a connection of the session (WebSocket), or a user holding
/// a join token for it (REST, for changes too large for a WebSocket message).
pub enum Sender<'a> {
    Connection(&'a str),
    User(&'a User),
}

/// What a stored change answers its sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub version: Version,
    /// The ops as applied, when they differ from the ones sent (rebased over
    /// changes the sender missed, or an array's `-` resolved), so the sender's
    /// copy of the template ends up equal to the server's. `None` for a resend.
    pub applied: Option<Vec<Value>>,
}

/// Decides, stores and broadcasts a change. A change resent under the same
/// `changeId` gets its first version and is not sent again.
pub async fn submit(
    app: &App,
    id: &SessionId,
    sender: &Sender<'_>,
    edit: &Edit,
) -> Result<Submitted> {
    match accept(app, id, sender, edit).await? {
        Accepted::Duplicate(version) => Ok(Submitted {
            version,
            applied: None,
        }),
        Accepted::New(entry, members) => {
            crate::metrics::record(crate::metrics::Metric::Changes, 1);
            let skip = match sender {
                Sender::Connection(connection_id) => Some(*connection_id),
                Sender::User(_) => None,
            };
            broadcast_change(app, &members, &entry, skip).await;
            let applied =
                (crate::patch::to_json(&edit.patch) != entry.diff).then(|| entry.diff.clone());
            Ok(Submitted {
                version: entry.version,
                applied,
            })
        }
    }
}

/// A change sent by a connection: into the session that connection is in.
pub async fn submit_from_connection(
    app: &App,
    connection_id: &str,
    edit: &Edit,
) -> Result<Submitted> {
    let id = session_of(app, connection_id).await?;
    submit(app, &id, &Sender::Connection(connection_id), edit).await
}

enum Accepted {
    Duplicate(Version),
    New(HistoryEntry, Box<SessionMembers>),
}

/// Decides a change on this instance's template of the session and stores it
/// under the next version; on a lost race, catches up and tries again.
async fn accept(app: &App, id: &SessionId, sender: &Sender<'_>, edit: &Edit) -> Result<Accepted> {
    let slot = app.head_slot(id);
    let mut cached = slot.lock().await;
    for attempt in 0..VERSION_ATTEMPTS {
        let now = app.now();
        let (head, members) = catch_up(app, id, &mut cached, now).await?;
        let (me, connection) = match sender {
            Sender::Connection(connection_id) => (
                present_self(&members, connection_id, now)?.user.clone(),
                Some(*connection_id),
            ),
            Sender::User(user) => ((*user).clone(), None),
        };
        me.role.require_editor("change the template")?;
        let author = Author {
            user: &me,
            connection,
        };
        head.check_base(edit.base_version)?;
        let older = if head.remembers_since(edit.base_version) {
            Vec::new()
        } else {
            let behind = head.version.0.saturating_sub(edit.base_version.0) as usize;
            let older = app
                .store
                .history(id, edit.base_version, behind, MAX_REBASE_READ_BYTES)
                .await?;
            if older.len() < behind {
                return Err(Error::new(
                    Code::Conflict,
                    format!(
                        "the changes after baseVersion {} are more than {MAX_REBASE_READ_BYTES} bytes to rebase over; resync and redo the change",
                        edit.base_version
                    ),
                ));
            }
            older
        };
        let locked_by =
            |element: &str| locks::blocking(&members, element, &me, now).map(|l| l.user.clone());
        let accepted = match head.accept(edit, &author, locked_by, &older, now)? {
            Outcome::Duplicate(version) => return Ok(Accepted::Duplicate(version)),
            Outcome::Accepted(accepted) => accepted,
        };
        let entry = accepted.entry.clone();
        match app.store.append_change(id, &entry).await {
            Ok(AppendOutcome::Appended) => {
                head.commit(accepted);
                // Exactly one instance stores each version, so exactly one compacts;
                // a failed compaction is tried again at the next multiple rather
                // than on every change.
                if head.compaction_due(members.session.snapshot_version) {
                    compact(app, id, head).await;
                }
                return Ok(Accepted::New(entry, Box::new(members)));
            }
            Ok(AppendOutcome::VersionTaken) => {
                // Another instance took this version: catch up and decide again.
                head.roll_back(accepted);
                // Short waits: the winner's entry is readable at once.
                backoff(attempt.min(3)).await;
            }
            Err(e) => {
                head.roll_back(accepted);
                return Err(match e.code {
                    Code::Unavailable => e,
                    _ => Error::new(Code::SyncFailed, e.detail),
                });
            }
        }
    }
    Err(Error::unavailable(
        "storing a change: the session kept changing; try again",
    ))
}

/// This instance's template of the session (`cached`), caught up with the log, and
/// the session's members: one Query on a warm instance, whatever the template's size.
pub(super) async fn catch_up<'h>(
    app: &App,
    id: &SessionId,
    cached: &'h mut Option<Head>,
    now: Timestamp,
) -> Result<(&'h mut Head, SessionMembers)> {
    if cached.is_none() {
        *cached = Some(load_head(app, id, now).await?);
    }
    let version = cached.as_ref().map_or(Version::FIRST, |h| h.version);
    let Some(caught) = app.store.read_since(id, version, now).await? else {
        *cached = None;
        return Err(Error::session_not_found());
    };
    let applied = cached
        .as_mut()
        .map_or(Ok(()), |head| head.catch_up(&caught.entries));
    if let Err(e) = applied {
        // This template and the log disagree: start again from the store next time.
        *cached = None;
        return Err(e);
    }
    let head = cached
        .as_mut()
        .ok_or_else(|| Error::unexpected("the session's template was not loaded"))?;
    Ok((head, caught.members))
}

/// The template at the newest stored snapshot and the log after it (a cold start).
async fn load_head(app: &App, id: &SessionId, now: Timestamp) -> Result<Head> {
    let state = app
        .store
        .read_session(id, now)
        .await?
        .ok_or_else(Error::session_not_found)?;
    let mut head = Head::new(&state.snapshot, state.session.snapshot_version)?;
    head.limits = app.config.template_limits();
    head.catch_up(&state.tail)?;
    Ok(head)
}

/// Rewrites the stored snapshot at the head's version. A failure costs nothing
/// but a longer log to read: it is logged, and the next change tries again.
async fn compact(app: &App, id: &SessionId, head: &Head) {
    let result = match head.template() {
        Ok(template) => app.store.write_snapshot(id, head.version, &template).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(outcome) => {
            let moved = outcome == SnapshotOutcome::Stored;
            tracing::info!(session = %id, version = %head.version, moved, "snapshot compacted")
        }
        Err(e) => {
            tracing::warn!(session = %id, detail = %e.detail, "compacting the snapshot failed")
        }
    }
}

/// Sends a stored change to every present connection but `skip`, in parallel; one
/// too large for a WebSocket message is announced instead, to be fetched with GET.
/// Connections found gone are dropped.
async fn broadcast_change(
    app: &App,
    members: &SessionMembers,
    entry: &HistoryEntry,
    skip: Option<&str>,
) {
    let now = app.now();
    let mut message = ServerMessage::Change {
        history_entry: entry,
    }
    .to_json();
    if message.len() > MAX_MESSAGE_BYTES {
        message = ServerMessage::Resync {
            version: entry.version,
        }
        .to_json();
    }
    let targets: Vec<&str> = members
        .present(now)
        .map(|c| c.id.as_str())
        .filter(|c| Some(*c) != skip)
        .collect();
    crate::metrics::record(crate::metrics::Metric::FanOut, targets.len() as u64);
    let gone = notify::broadcast(app.notifier.as_ref(), &targets, &message).await;
    drop_gone(app, members, gone_for_good(members, gone, now)).await;
}

/// What a connection that missed the changes after `since` is sent: the
/// `changes` message, or `resync` when there are too many to send (the client
/// then reads the template with GET). The message as JSON. No more of the log is
/// read than one message can carry.
pub async fn changes_since(app: &App, connection_id: &str, since: Version) -> Result<String> {
    let id = session_of(app, connection_id).await?;
    let entries = app
        .store
        .history(&id, since, MAX_SYNC_ENTRIES + 1, MAX_MESSAGE_BYTES)
        .await
        .map_err(|e| match e.code {
            Code::Unavailable => e,
            _ => Error::new(Code::OpenFailed, e.detail),
        })?;
    let message = ServerMessage::Changes { entries: &entries }.to_json();
    if entries.len() <= MAX_SYNC_ENTRIES && message.len() <= MAX_MESSAGE_BYTES {
        return Ok(message);
    }
    let head = app.store.head_version(&id).await?.unwrap_or(since);
    Ok(ServerMessage::Resync { version: head }.to_json())
}
