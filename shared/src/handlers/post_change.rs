//! `POST /v1/coedit/session/{id}/changes`: the `edit` message over REST, for a
//! change too large for one WebSocket message (128 KB). A browser sends it with
//! its join token; the answer is the `ack` (or the error) the WebSocket would give,
//! and the others get the change (or, when it is too large for them too, `resync`).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

use super::http::{authorization, body_bytes, json_response, parse_json_object, respond};
use crate::app::App;
use crate::error::{Error, Result};
use crate::session::SessionId;
use crate::session::change::{Edit, MAX_ENTRY_BYTES};
use crate::session::message::{EditMessage, ServerMessage};
use crate::usecase::change::{Sender, submit};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(post(app, &req).await)
}

async fn post(app: &App, req: &Request) -> Result<Response<Body>> {
    let grant = app.join_grant(authorization(req))?;
    let id = req
        .path_parameters()
        .first("id")
        .and_then(SessionId::parse)
        .ok_or_else(Error::session_not_found)?;
    grant.require_session(&id)?;
    let message: EditMessage = parse_json_object(body_bytes(req, MAX_ENTRY_BYTES)?)?;
    let edit = Edit::new(
        message.change_id,
        message.base_version,
        &message.patch,
        message.label,
        message.kind,
    )?;
    let done = submit(app, &id, &Sender::User(&grant.user), &edit).await?;
    let ack = ServerMessage::Ack {
        change_id: &edit.change_id,
        version: done.version,
        diff: done.applied.as_deref(),
    };
    Ok(json_response(StatusCode::OK, ack.to_json()))
}
