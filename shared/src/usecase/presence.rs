//! Presence as the routes carry it out: announcing joins and departures to the
//! users present, and dropping connections that left, went stale or are gone.
//! Used by `connect`, `disconnect`, `ping`, `sweeper` and every use case that
//! finds a connection gone.

use crate::app::App;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::notify::{self, Delivery};
use crate::session::message::{Change, ChangeKind, ServerMessage, SessionData};
use crate::session::presence::{Departure, give_back_seat, gone_for_good};
use crate::session::{Lock, SessionMembers, User};
use crate::store::LeaveOutcome;
use crate::usecase::host;

/// Sends a session change (seed shape) to every present connection but `skip`.
/// Returns the connections API Gateway reported gone for good (not those that
/// may still be joining).
pub async fn announce(
    app: &App,
    members: &SessionMembers,
    kind: ChangeKind,
    user: &User,
    skip: Option<&str>,
) -> Vec<String> {
    announce_change(
        app,
        members,
        Change {
            kind,
            value: user,
            target: None,
        },
        skip,
    )
    .await
}

/// Sends a session change about an element (`LOCKED`, `UNLOCKED`) to every present
/// connection but `skip`. Returns the connections API Gateway reported gone.
pub async fn announce_lock(
    app: &App,
    members: &SessionMembers,
    kind: ChangeKind,
    user: &User,
    element: &str,
    skip: Option<&str>,
) -> Vec<String> {
    let change = Change {
        kind,
        value: user,
        target: Some(element),
    };
    announce_change(app, members, change, skip).await
}

async fn announce_change(
    app: &App,
    members: &SessionMembers,
    change: Change<'_>,
    skip: Option<&str>,
) -> Vec<String> {
    let now = app.now();
    let message = ServerMessage::SessionChange {
        change,
        session_data: SessionData {
            users: members.users_by_connection(now),
        },
    }
    .to_json();
    let targets: Vec<&str> = members
        .present(now)
        .map(|c| c.id.as_str())
        .filter(|id| Some(*id) != skip)
        .collect();
    let gone = notify::broadcast(app.notifier.as_ref(), &targets, &message).await;
    gone_for_good(members, gone, now)
}

/// Removes a connection from the session and tells the others (`USER_LEFT`). A
/// stale connection is first told why (5300) and then closed. Connections found
/// gone while announcing are dropped the same way, until none is left to drop.
/// `members` is kept up to date with every drop. `newcomer` is a connection inside
/// its own `$connect`, which cannot be posted to yet (it would answer Gone).
/// Returns how many connections were dropped.
pub async fn depart(
    app: &App,
    members: &mut SessionMembers,
    connection_id: &str,
    departure: Departure,
    newcomer: Option<&str>,
) -> Result<usize> {
    let mut work = vec![(connection_id.to_owned(), departure)];
    let mut dropped = 0;
    while let Some((id, departure)) = work.pop() {
        let now = app.now();
        let left = match app.store.leave(members, &id, departure, now).await? {
            LeaveOutcome::NotThere => continue,
            LeaveOutcome::Left(left) => left,
        };
        dropped += 1;
        app.forget_connection(&id);
        tracing::info!(session = %members.session.id, connection = %id, ?departure, "connection dropped");
        give_back_seat(&mut members.session, left.user.role, now);
        members.connections.retain(|c| c.id != id);
        let released: Vec<Lock> = members.locks_held_by(&id).cloned().collect();
        members.locks.retain(|l| l.connection_id != id);

        if departure == Departure::Stale {
            close_with(app, &id, &stale_error()).await;
        }
        let (mut gone, ()) = tokio::join!(
            announce(app, members, ChangeKind::UserLeft, &left.user, newcomer),
            host::user_came_or_went(app, EventKind::UserLeft, members, &left.user)
        );
        // Its locks went with it: the others may take those elements now.
        for lock in &released {
            let more = announce_lock(
                app,
                members,
                ChangeKind::Unlocked,
                &lock.user,
                &lock.element,
                newcomer,
            )
            .await;
            for g in more {
                if !gone.contains(&g) {
                    gone.push(g);
                }
            }
        }
        work.extend(gone.into_iter().map(|g| (g, Departure::Left)));
    }
    Ok(dropped)
}

/// Drops the connections a broadcast found gone (each announced as `USER_LEFT`).
/// Best effort: the sender's request has succeeded already.
pub async fn drop_gone(app: &App, members: &SessionMembers, gone: Vec<String>) {
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

/// Drops every stale connection of a session: done whenever a session is touched,
/// and by the sweeper for sessions nobody touches.
pub async fn drop_stale(app: &App, members: &SessionMembers) -> Result<usize> {
    let now = app.now();
    let stale: Vec<String> = members.stale(now).map(|c| c.id.clone()).collect();
    let mut dropped = 0;
    let mut members = members.clone();
    for id in stale {
        dropped += depart(app, &mut members, &id, Departure::Stale, None).await?;
    }
    Ok(dropped)
}

/// Tells a connection why it is being closed, then closes it. Best effort: it may
/// be gone already.
pub async fn close_with(app: &App, connection_id: &str, err: &Error) {
    let message = ServerMessage::error(err).to_json();
    if let Ok(Delivery::Sent) = app.notifier.post(connection_id, &message).await
        && let Err(e) = app.notifier.close(connection_id).await
    {
        tracing::warn!(detail = %e.detail, "closing a connection failed");
    }
}

pub fn stale_error() -> Error {
    Error::new(
        crate::error::Code::ConnectionLost,
        "no ping for 50 seconds: the connection was dropped; reconnect to rejoin",
    )
}

/// What a newcomer could not be told during its `$connect`: the session change of
/// its own joining, with everyone present (seed shape), as JSON.
pub async fn roll_call(app: &App, connection_id: &str) -> Result<String> {
    let id = super::session_of(app, connection_id).await?;
    let now = app.now();
    let members = app
        .store
        .read_members(&id, now)
        .await?
        .ok_or_else(Error::session_not_found)?;
    let me = super::present_self(&members, connection_id, now)?;
    Ok(ServerMessage::SessionChange {
        change: Change {
            kind: ChangeKind::UserJoined,
            value: &me.user,
            target: None,
        },
        session_data: SessionData {
            users: members.users_by_connection(now),
        },
    }
    .to_json())
}
