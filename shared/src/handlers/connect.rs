//! `$connect`: a browser opens the WebSocket with `?token=<join token>`. The token
//! names the session and the user; a seat is taken in one atomic write; the users
//! already there get `USER_JOINED`. Any refusal answers a non-2xx status, so API
//! Gateway never upgrades the connection.

use super::websocket::{WebSocketEvent, WebSocketResponse, connection_id, ok, query, refuse};
use crate::app::App;
use crate::error::{Code, Error, Result};
use crate::events::EventKind;
use crate::session::Connection;
use crate::session::message::ChangeKind;
use crate::session::presence::{self, Departure};
use crate::store::{JoinOutcome, Seat};
use crate::usecase::host;
use crate::usecase::presence::{announce, depart, drop_stale};

pub async fn handle(app: &App, event: WebSocketEvent) -> WebSocketResponse {
    match connect(app, &event).await {
        Ok(()) => ok(),
        Err(e) => refuse(&e),
    }
}

async fn connect(app: &App, event: &WebSocketEvent) -> Result<()> {
    let connection_id = connection_id(event)?;
    let token = query(event, "token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::unauthorized(
                "the join token is missing; open the WebSocket with ?token=<join token>",
            )
        })?;
    let grant = app.verify_join_token(token)?;
    let now = app.now();

    let members = app
        .store
        .read_members(&grant.session, now)
        .await
        .map_err(opening_failed)?
        .filter(|m| m.session.tenant == grant.tenant)
        .ok_or_else(Error::session_not_found)?;
    // Stale members hold seats until dropped; drop them before counting.
    drop_stale(app, &members).await.map_err(opening_failed)?;

    let connection = Connection {
        id: connection_id.to_owned(),
        user: grant.user.clone(),
        connected_at: now,
        last_seen: now,
    };
    let seat = Seat {
        session: grant.session.clone(),
        tenant: grant.tenant.clone(),
        connection: connection.clone(),
        max_editors: grant.max_editors,
        now,
    };
    match app.store.join(&seat).await.map_err(opening_failed)? {
        JoinOutcome::Joined => {}
        JoinOutcome::NotFound => return Err(Error::session_not_found()),
        JoinOutcome::Full => {
            crate::metrics::record(crate::metrics::Metric::SeatRefusals, 1);
            return Err(presence::no_free_seat(grant.user.role, grant.max_editors));
        }
    }
    app.remember_connection(connection_id, &grant.session);
    tracing::info!(session = %grant.session, connection = connection_id, "joined");

    // Tell the others. The newcomer cannot be posted to until `$connect` returns;
    // it reads the session over REST instead. The seat is taken: from here on a
    // fault is logged, never a refusal.
    let mut members = match app.store.read_members(&grant.session, now).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) | Err(_) => members,
    };
    if members.connection(connection_id).is_none() {
        members.connections.push(connection);
    }
    let (gone, ()) = tokio::join!(
        announce(
            app,
            &members,
            ChangeKind::UserJoined,
            &grant.user,
            Some(connection_id),
        ),
        host::user_came_or_went(app, EventKind::UserJoined, &members, &grant.user)
    );
    for id in gone {
        if let Err(e) = depart(app, &mut members, &id, Departure::Left, Some(connection_id)).await {
            tracing::warn!(detail = %e.detail, "dropping a gone connection failed");
        }
    }
    Ok(())
}

/// A store fault while joining is "failed to open" (5100, recoverable): the client
/// may retry. Refusals keep their own codes.
fn opening_failed(err: Error) -> Error {
    match err.code {
        Code::Unexpected | Code::Unavailable => Error::new(Code::OpenFailed, err.detail),
        _ => err,
    }
}
