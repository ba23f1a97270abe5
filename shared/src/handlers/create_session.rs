//! `POST /v1/coedit/session` (seed): a new co-editing session from a template.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;

use super::http::{authorization, body_bytes, json_object, parse_json_object, respond, to_json};
use crate::app::App;
use crate::error::Result;
use crate::session::{self, Template};

#[derive(Debug, Deserialize)]
struct CreateSessionRequest {
    template: Value,
    /// Spelled `userid` in the seed request.
    userid: String,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(create(app, &req).await)
}

async fn create(app: &App, req: &Request) -> Result<Response<Body>> {
    let caller = app.authenticate(authorization(req)).await?;
    caller.require_coediting()?;
    let body: CreateSessionRequest =
        parse_json_object(body_bytes(req, app.config.max_body_bytes)?)?;
    session::check_user_id("userid", &body.userid)?;
    let template = Template::prepare(body.template, "/template")?;

    let new = session::new_session(caller.tenant, &body.userid, template, app.now());
    app.store.create_session(&new).await?;
    tracing::info!(session = %new.session.id, bytes = new.template.len(), "session created");

    let json = json_object(&[
        ("historyEntry", &to_json(&new.first_entry)?),
        ("sessionId", &to_json(&new.session.id)?),
        ("template", new.template.as_str()),
    ]);
    Ok(super::http::json_response(StatusCode::CREATED, json))
}
