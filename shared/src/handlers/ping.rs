//! `ping`: the heartbeat. Marks the connection alive with one small write, answers
//! `pong` with the session's version, and drops members that went stale. A
//! connection that was itself dropped, or went stale, is told so (5300) and closed.

use super::websocket::{
    WebSocketEvent, WebSocketResponse, answer_error, body, connection_id, ok, refuse, reply,
};
use crate::app::App;
use crate::error::{Error, Result};
use crate::session::message::{ClientMessage, ServerMessage};
use crate::session::presence::Departure;
use crate::store::TouchOutcome;
use crate::usecase::presence::{close_with, depart, drop_stale, stale_error};

pub async fn handle(app: &App, event: WebSocketEvent) -> WebSocketResponse {
    if let (Ok(connection_id), Some(text)) = (connection_id(&event), event.body.as_deref())
        && let Some(refused) = super::edit::over_budget(app, connection_id, text).await
    {
        return refused;
    }
    answer(app, event).await
}

/// A ping whose message was counted against its connection's budget already.
pub async fn answer(app: &App, event: WebSocketEvent) -> WebSocketResponse {
    match ping(app, &event).await {
        Ok(response) => response,
        Err(e) => answer_error(&e, None),
    }
}

async fn ping(app: &App, event: &WebSocketEvent) -> Result<WebSocketResponse> {
    let connection_id = match connection_id(event) {
        Ok(id) => id,
        Err(e) => return Ok(refuse(&e)),
    };
    // A malformed ping changes nothing, not even the heartbeat.
    let ClientMessage::Ping {} = ClientMessage::parse(&body(event)?)? else {
        return Err(Error::malformed("action: this route takes only \"ping\""));
    };

    let now = app.now();
    let Some(session) = app.session_of(connection_id).await? else {
        close_with(app, connection_id, &dropped_error()).await;
        return Ok(ok());
    };
    let touched = app.store.touch(&session, connection_id, now).await?;
    // The newest version is the newest log entry, read beside the members.
    let (members, head) = tokio::join!(
        app.store.read_members(&session, now),
        app.store.head_version(&session)
    );
    let members = members?;
    if touched == TouchOutcome::NotPresent {
        // Dropped already, or stale and not yet dropped: either way, not present.
        match members {
            Some(mut m) if m.connection(connection_id).is_some() => {
                depart(app, &mut m, connection_id, Departure::Stale, None).await?;
            }
            _ => close_with(app, connection_id, &dropped_error()).await,
        }
        return Ok(ok());
    }
    let Some(members) = members else {
        return Err(Error::session_not_found());
    };
    drop_stale(app, &members).await?;
    Ok(reply(&ServerMessage::Pong {
        version: head?.unwrap_or(members.session.snapshot_version),
    }))
}

fn dropped_error() -> Error {
    let mut e = stale_error();
    e.detail = "this connection is not in a session any more; reconnect to rejoin".into();
    e
}
