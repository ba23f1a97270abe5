//! The `edit` function: WebSocket routes `edit`, `lock`, `unlock`, `sync` and
//! `$default`. Changes get the next version with one conditional write; the sender
//! is answered in the route response, everyone else gets the change pushed.

use super::ping;
use super::presence::{announce_lock, close_with, depart, stale_error};
use super::websocket::{
    WebSocketEvent, WebSocketResponse, body, connection_id, ok, refuse, reply, reply_json,
};
use crate::app::App;
use crate::clock::Timestamp;
use crate::error::{Code, Error, Result};
use crate::notify;
use crate::session::change::{Edit, Head, Outcome};
use crate::session::message::{ChangeKind, ClientMessage, MAX_MESSAGE_BYTES, ServerMessage};
use crate::session::presence::Departure;
use crate::session::{Connection, HistoryEntry, Lock, SessionId, SessionMembers, User, Version};
use crate::store::{LockOutcome, backoff};

/// The snapshot is rewritten once this many changes were made since the last one,
/// so reading a session never replays more than this many.
pub const COMPACT_EVERY: u64 = 200;

/// How often a change is decided again after another took its version. Each lost
/// race is someone else's progress, so this bounds unfairness, not livelock:
/// with four instances racing flat out, losing 100 in a row is a 1e-12 event.
const VERSION_ATTEMPTS: usize = 100;

/// Most entries one `changes` answer carries; further back, the client resyncs.
pub const MAX_SYNC_ENTRIES: usize = 200;

pub async fn handle(app: &App, event: WebSocketEvent) -> WebSocketResponse {
    let connection_id = match connection_id(&event) {
        Ok(id) => id.to_owned(),
        Err(e) => return refuse(&e),
    };
    let text = match body(&event) {
        Ok(text) => text,
        Err(e) => return reply(&ServerMessage::error(&e)),
    };
    let message = match ClientMessage::parse(&text) {
        Ok(m) => m,
        Err(e) => {
            let change_id = change_id_of(&text);
            return reply(&ServerMessage::edit_error(&e, change_id.as_deref()));
        }
    };
    let result = match message {
        ClientMessage::Ping {} => return ping::handle(app, event).await,
        ClientMessage::Edit(m) => {
            let edit = Edit::new(
                m.change_id.clone(),
                m.base_version,
                &m.patch,
                m.label,
                m.kind,
            );
            match edit {
                Ok(edit) => apply_edit(app, &connection_id, &edit).await,
                Err(e) => Err(e),
            }
            .or_else(|e| match e.code {
                // Not in the session any more: told and closed below.
                Code::ConnectionLost => Err(e),
                _ => Ok(reply(&ServerMessage::edit_error(&e, Some(&m.change_id)))),
            })
        }
        ClientMessage::Lock { target } => lock(app, &connection_id, &target).await,
        ClientMessage::Unlock { target } => unlock(app, &connection_id, &target).await,
        ClientMessage::Sync { since_version } => {
            sync(app, &connection_id, Version(since_version)).await
        }
    };
    match result {
        Ok(response) => response,
        Err(e) => {
            if e.code == Code::ConnectionLost {
                close_with(app, &connection_id, &e).await;
                return ok();
            }
            reply(&ServerMessage::error(&e))
        }
    }
}

/// The `changeId` of a message that did not parse, when it has one, so the client
/// knows which change was refused.
fn change_id_of(text: &str) -> Option<String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("changeId")?.as_str().map(str::to_owned)
}

/// The session of a connection and its present self, or 5300 when it is not in
/// a session any more.
fn present_self<'a>(
    members: &'a SessionMembers,
    connection_id: &str,
    now: Timestamp,
) -> Result<&'a Connection> {
    members
        .connection(connection_id)
        .filter(|c| c.is_present(now))
        .ok_or_else(stale_error)
}

async fn session_of(app: &App, connection_id: &str) -> Result<SessionId> {
    app.session_of(connection_id).await?.ok_or_else(|| {
        Error::new(
            Code::ConnectionLost,
            "this connection is not in a session any more; reconnect to rejoin",
        )
    })
}

async fn apply_edit(app: &App, connection_id: &str, edit: &Edit) -> Result<WebSocketResponse> {
    let id = session_of(app, connection_id).await?;
    let version = match accept(app, &id, &Author::Connection(connection_id), edit).await? {
        Accepted::Duplicate(version) => version,
        Accepted::New(entry, members) => {
            broadcast_change(app, &members, &entry, Some(connection_id)).await;
            entry.version
        }
    };
    Ok(reply(&ServerMessage::Ack {
        change_id: &edit.change_id,
        version,
    }))
}

/// Who makes a change: a connection of the session (WebSocket), or a user holding
/// a join token for it (REST, for changes too large for a WebSocket message).
pub enum Author<'a> {
    Connection(&'a str),
    User(&'a User),
}

pub enum Accepted {
    Duplicate(Version),
    New(HistoryEntry, Box<SessionMembers>),
}

/// Decides a change on this instance's template of the session and stores it
/// under the next version; on a lost race, catches up and tries again.
pub async fn accept(
    app: &App,
    id: &SessionId,
    author: &Author<'_>,
    edit: &Edit,
) -> Result<Accepted> {
    let slot = app.head_slot(id);
    let mut cached = slot.lock().await;
    for attempt in 0..VERSION_ATTEMPTS {
        let now = app.now();
        let head = match cached.as_mut() {
            Some(head) => head,
            None => cached.insert(load_head(app, id, now).await?),
        };
        let Some(catchup) = app.store.read_since(id, head.version, now).await? else {
            *cached = None;
            return Err(Error::session_not_found());
        };
        if let Err(e) = head.catch_up(&catchup.entries) {
            *cached = None;
            return Err(e);
        }
        let members = catchup.members;
        let me = match author {
            Author::Connection(connection_id) => {
                present_self(&members, connection_id, now)?.user.clone()
            }
            Author::User(user) => (*user).clone(),
        };
        let older = if head.remembers_since(edit.base_version) {
            Vec::new()
        } else {
            let behind = head.version.0.saturating_sub(edit.base_version.0) as usize;
            app.store.history(id, edit.base_version, behind).await?
        };
        let locked_by = |element: &str| holder_other_than(&members, &me, element, now);
        let accepted = match head.accept(edit, &me, locked_by, &older, now)? {
            Outcome::Duplicate(version) => return Ok(Accepted::Duplicate(version)),
            Outcome::Accepted(accepted) => accepted,
        };
        let entry = accepted.entry.clone();
        match app.store.append_change(id, &entry).await {
            Ok(true) => {
                head.commit(accepted);
                // Exactly one instance stores each version, so exactly one compacts
                // at each multiple; a failed compaction is tried again 200 later
                // rather than on every change.
                let since_snapshot = head.version.0 - members.session.snapshot_version.0;
                if since_snapshot > 0 && since_snapshot % COMPACT_EVERY == 0 {
                    compact(app, id, head).await;
                }
                return Ok(Accepted::New(entry, Box::new(members)));
            }
            Ok(false) => {
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

/// The template at the newest stored snapshot and the log after it (a cold start).
async fn load_head(app: &App, id: &SessionId, now: Timestamp) -> Result<Head> {
    let state = app
        .store
        .read_session(id, now)
        .await?
        .ok_or_else(Error::session_not_found)?;
    let mut head = Head::new(&state.snapshot, state.session.snapshot_version)?;
    head.catch_up(&state.tail)?;
    Ok(head)
}

/// Who holds `element`, when it is a present connection of another user.
fn holder_other_than(
    members: &SessionMembers,
    me: &User,
    element: &str,
    now: Timestamp,
) -> Option<User> {
    members
        .locks
        .iter()
        .find(|l| l.element == element && l.user.user_id != me.user_id)
        .filter(|l| {
            members
                .connection(&l.connection_id)
                .is_some_and(|c| c.is_present(now))
        })
        .map(|l| l.user.clone())
}

/// Rewrites the stored snapshot at the head's version. A failure costs nothing
/// but a longer log to read: it is logged, and the next change tries again.
async fn compact(app: &App, id: &SessionId, head: &Head) {
    let result = match head.template() {
        Ok(template) => app.store.write_snapshot(id, head.version, &template).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(moved) => {
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
pub async fn broadcast_change(
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
    let gone = notify::broadcast(app.notifier.as_ref(), &targets, &message).await;
    drop_gone(app, members, gone).await;
}

async fn drop_gone(app: &App, members: &SessionMembers, gone: Vec<String>) {
    if gone.is_empty() {
        return;
    }
    let mut members = members.clone();
    for id in gone {
        if let Err(e) = depart(app, &mut members, &id, Departure::Left, None).await {
            tracing::warn!(detail = %e.detail, "dropping a gone connection failed");
        }
    }
}

/// An element id as clients send it: a row's or module's uuid.
fn check_target(target: &str) -> Result<()> {
    if target.is_empty() || target.len() > 128 {
        return Err(Error::malformed(format!(
            "target: must be an element id of 1 to 128 bytes, is {}",
            target.len()
        )));
    }
    Ok(())
}

async fn lock(app: &App, connection_id: &str, target: &str) -> Result<WebSocketResponse> {
    check_target(target)?;
    let id = session_of(app, connection_id).await?;
    let now = app.now();
    let members = app
        .store
        .read_members(&id, now)
        .await?
        .ok_or_else(Error::session_not_found)?;
    let me = present_self(&members, connection_id, now)?.clone();
    let already_mine = members
        .locks
        .iter()
        .any(|l| l.element == target && l.connection_id == connection_id);
    let lock = Lock {
        element: target.to_owned(),
        connection_id: connection_id.to_owned(),
        user: me.user.clone(),
        since: now,
    };
    match app.store.take_lock(&members, &lock, now).await? {
        LockOutcome::HeldBy(holder) => Ok(reply(&ServerMessage::Lock {
            target,
            granted: false,
            held_by: Some(&holder.user),
        })),
        LockOutcome::Granted => {
            if !already_mine {
                let gone = announce_lock(
                    app,
                    &members,
                    ChangeKind::Locked,
                    &me.user,
                    target,
                    Some(connection_id),
                )
                .await;
                drop_gone(app, &members, gone).await;
            }
            Ok(reply(&ServerMessage::Lock {
                target,
                granted: true,
                held_by: None,
            }))
        }
    }
}

async fn unlock(app: &App, connection_id: &str, target: &str) -> Result<WebSocketResponse> {
    check_target(target)?;
    let id = session_of(app, connection_id).await?;
    if app.store.release_lock(&id, target, connection_id).await? {
        let now = app.now();
        if let Some(members) = app.store.read_members(&id, now).await?
            && let Some(me) = members.connection(connection_id)
        {
            let gone = announce_lock(
                app,
                &members,
                ChangeKind::Unlocked,
                &me.user,
                target,
                Some(connection_id),
            )
            .await;
            drop_gone(app, &members, gone).await;
        }
    }
    Ok(ok())
}

/// The entries after `since`, or `resync` when there are too many to send.
async fn sync(app: &App, connection_id: &str, since: Version) -> Result<WebSocketResponse> {
    let id = session_of(app, connection_id).await?;
    let entries = app
        .store
        .history(&id, since, MAX_SYNC_ENTRIES + 1)
        .await
        .map_err(|e| match e.code {
            Code::Unavailable => e,
            _ => Error::new(Code::OpenFailed, e.detail),
        })?;
    let message = ServerMessage::Changes { entries: &entries }.to_json();
    if entries.len() <= MAX_SYNC_ENTRIES && message.len() <= MAX_MESSAGE_BYTES {
        return Ok(reply_json(message));
    }
    let head = app.store.head_version(&id).await?.unwrap_or(since);
    Ok(reply(&ServerMessage::Resync { version: head }))
}
