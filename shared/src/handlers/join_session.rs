//! `POST /v1/coedit/session/{id}/join`: the host backend asks for a join token for
//! one of its users, and hands it to that user's browser with the WebSocket URL.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::http::{authorization, body_bytes, json_response, parse_json_object, respond, to_json};
use crate::app::App;
use crate::auth::{JoinGrant, join_token};
use crate::error::{Error, Result};
use crate::session::{self, SessionId, User, presence};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinAnswer<'a> {
    token: &'a str,
    /// Open `<url>?token=<token>`.
    url: &'a str,
    expires_at: String,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(join(app, &req).await)
}

async fn join(app: &App, req: &Request) -> Result<Response<Body>> {
    let caller = app.authenticate(authorization(req)).await?;
    caller.require_coediting()?;
    let secret = app.config.signing_secret()?;
    let url = app
        .config
        .websocket_url
        .as_deref()
        .ok_or_else(|| Error::unexpected("configuration: COEDIT_WEBSOCKET_URL is not set"))?;
    let id = req
        .path_parameters()
        .first("id")
        .and_then(SessionId::parse)
        .ok_or_else(Error::session_not_found)?;
    // The body is the user as others will see them: `{userId, username, userColor}`,
    // and `role`: "editor" (the default) or "viewer".
    let user: User = parse_json_object(body_bytes(req, app.config.max_body_bytes)?)?;
    session::check_user(&user)?;

    let now = app.now();
    let members = app
        .store
        .read_members(&id, now)
        .await?
        .filter(|m| m.session.tenant == caller.tenant)
        .ok_or_else(Error::session_not_found)?;
    // Tell the host now rather than have the browser's upgrade refused later.
    // Stale members are dropped when the browser connects, so they do not count.
    let role = user.role;
    let limit = presence::seat_limit(role, caller.max_editors);
    if members.present(now).filter(|c| c.user.role == role).count() >= limit as usize {
        crate::metrics::record(crate::metrics::Metric::SeatRefusals, 1);
        return Err(presence::no_free_seat(role, caller.max_editors));
    }

    let grant = JoinGrant {
        tenant: caller.tenant,
        session: id,
        user,
        max_editors: caller.max_editors,
        expires_at: now.plus(app.config.join_token_ttl),
    };
    let token = join_token::issue(secret, &grant, now)?;
    let answer = JoinAnswer {
        token: &token,
        url,
        expires_at: crate::clock::Timestamp(grant.expires_at.millis() / 1000 * 1000).to_rfc3339(),
    };
    Ok(json_response(StatusCode::OK, to_json(&answer)?))
}
