//! `$disconnect`: the connection leaves its session, with its locks and its seat;
//! the others get `USER_LEFT`. API Gateway may deliver this late, twice or never:
//! a connection already gone is a no-op, and the heartbeat covers the "never".

use super::websocket::{WebSocketEvent, WebSocketResponse, connection_id, ok, refuse};
use crate::app::App;
use crate::error::Result;
use crate::session::presence::Departure;
use crate::usecase::presence::depart;

pub async fn handle(app: &App, event: WebSocketEvent) -> WebSocketResponse {
    match disconnect(app, &event).await {
        Ok(()) => ok(),
        Err(e) => refuse(&e),
    }
}

async fn disconnect(app: &App, event: &WebSocketEvent) -> Result<()> {
    let connection_id = connection_id(event)?;
    let Some(session) = app.session_of(connection_id).await? else {
        return Ok(());
    };
    app.forget_connection(connection_id);
    let Some(mut members) = app.store.read_members(&session, app.now()).await? else {
        return Ok(());
    };
    depart(app, &mut members, connection_id, Departure::Left, None).await?;
    Ok(())
}
