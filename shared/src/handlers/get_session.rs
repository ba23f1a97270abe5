//! `GET /v1/coedit/session/{id}` (seed): the session's newest template, the users
//! present now, and its version. Takes an API key, or a join token issued for this
//! session (a browser reading the template it joins).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

use super::history;
use super::http::{authorization, json_object, json_response, respond, to_json};
use crate::app::{App, Credential};
use crate::error::{Error, Result};
use crate::session::SessionId;

/// The read routes: the session, its history, or one of its versions.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = if req.path_parameters().first("n").is_some() {
        history::version_at(app, &req).await
    } else if req.uri().path().ends_with("/history") {
        history::history(app, &req).await
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
    ]);
    Ok(json_response(StatusCode::OK, json))
}
