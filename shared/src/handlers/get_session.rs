//! `GET /v1/coedit/session/{id}` (seed): the session's newest template, the users
//! present now, and its version. Takes an API key, or a join token issued for this
//! session (a browser reading the template it joins). Also `GET .../final`: an
//! ended session's final template, kept for the host when too large for its
//! `coedit.session.ended` event (API key only).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

use super::history;
use super::http::{authorization, json_object, json_response, respond, to_json};
use crate::app::{App, Credential};
use crate::error::{Code, Error, Result};
use crate::session::{SessionId, SessionState};

/// The read routes: the session, its history, or one of its versions.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = if req.path_parameters().first("n").is_some() {
        history::version_at(app, &req).await
    } else if req.uri().path().ends_with("/history") {
        history::history(app, &req).await
    } else if req.uri().path().ends_with("/final") {
        final_template(app, &req).await
    } else {
        get(app, &req).await
    };
    respond(result)
}

async fn get(app: &App, req: &Request) -> Result<Response<Body>> {
    let credential = app.credential(authorization(req)).await?;
    let params = req.path_parameters();
    // An id we could never have issued is answered like any unknown one, without
    // a store read.
    let id = params
        .first("id")
        .and_then(SessionId::parse)
        .ok_or_else(Error::session_not_found)?;
    if let Credential::JoinToken(grant) = &credential {
        grant.require_session(&id)?;
    }
    let state = app
        .store
        .read_session(&id, app.now())
        .await?
        // Another tenant's session answers exactly like a missing one.
        .filter(|s| &s.session.tenant == credential.tenant())
        .ok_or_else(Error::session_not_found)?;

    let (version, template) = state.current()?;
    let json = json_object(&[
        ("template", template.as_str()),
        ("users", &to_json(&state.users_by_id())?),
        ("version", &to_json(&version)?),
        ("seats", &seats_json(&state, credential.max_editors())?),
    ]);
    Ok(json_response(StatusCode::OK, json))
}

/// `{"used", "limit"}`: co-editor seats taken by editors present now (viewers take
/// none), and the plan's limit, so a host can turn "co-edit" off while it is full.
pub fn seats_json(state: &SessionState, limit: u32) -> Result<String> {
    let editors = state.connections.iter().filter(|c| c.user.role.is_editor());
    to_json(&serde_json::json!({
        "used": editors.count(),
        "limit": limit,
    }))
}

/// `GET /v1/coedit/session/{id}/final` (API key): `{template, version,
/// templateKey, endedAt, keptUntil}` of a session that has ended, while it is kept.
async fn final_template(app: &App, req: &Request) -> Result<Response<Body>> {
    let caller = app.authenticate(authorization(req)).await?;
    let id = req
        .path_parameters()
        .first("id")
        .and_then(SessionId::parse)
        .ok_or_else(Error::session_not_found)?;
    let last = app
        .store
        .read_expired(&id, app.now())
        .await?
        .filter(|s| s.session.tenant == caller.tenant)
        .ok_or_else(Error::session_not_found)?;
    let Some(ended) = last.session.ended else {
        return Err(Error::new(
            Code::SessionNotFound,
            "the session has not ended yet; its end event says when its final template is kept",
        ));
    };
    let (version, template) = last.current()?;
    let json = json_object(&[
        ("template", template.as_str()),
        ("version", &to_json(&version)?),
        ("templateKey", &to_json(&last.session.template_key)?),
        ("endedAt", &to_json(&ended.at.to_rfc3339())?),
        ("keptUntil", &to_json(&ended.kept_until.to_rfc3339())?),
    ]);
    Ok(json_response(StatusCode::OK, json))
}
