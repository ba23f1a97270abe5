//! Opening a session: `POST /v1/coedit/session` (seed), a new session from a
//! template, and `PUT /v1/coedit/templates/{templateKey}/session`, the one session
//! of a template: joined when live, else started.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::Value;

use super::get_session::seats_json;
use super::http::{authorization, body_bytes, json_object, parse_json_object, respond, to_json};
use crate::app::App;
use crate::auth::Caller;
use crate::error::Result;
use crate::session::{self, NewSession, Opening, Template, TemplateKey, Version};
use crate::usecase::sessions::{self, Started};

#[derive(Debug, Deserialize)]
struct OpenRequest {
    template: Value,
    /// Spelled `userid` in the seed request.
    userid: String,
    /// The host's latest saved version of the template; the session numbers on
    /// from it.
    #[serde(default)]
    version: Option<Value>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    if req.method() == Method::PUT {
        respond(start_or_join(app, &req).await)
    } else {
        respond(create(app, &req).await)
    }
}

async fn create(app: &App, req: &Request) -> Result<Response<Body>> {
    let (_, opening) = opening(app, req).await?;
    let new = sessions::create(app, opening).await?;
    tracing::info!(session = %new.session.id, bytes = new.template.len(), "session created");
    created(&new, false)
}

async fn start_or_join(app: &App, req: &Request) -> Result<Response<Body>> {
    let key = TemplateKey::parse(req.path_parameters().first("templateKey").unwrap_or(""))?;
    let (caller, opening) = opening(app, req).await?;
    match sessions::start_or_join(app, key, opening).await? {
        Started::Created(new) => {
            tracing::info!(session = %new.session.id, bytes = new.template.len(), "session started by key");
            created(&new, true)
        }
        Started::Joined(state) => {
            let (version, template) = state.current()?;
            let json = json_object(&[
                ("created", "false"),
                ("sessionId", &to_json(&state.session.id)?),
                ("template", template.as_str()),
                ("version", &to_json(&version)?),
                ("users", &to_json(&state.users_by_id())?),
                ("seats", &seats_json(&state, caller.max_editors)?),
            ]);
            Ok(super::http::json_response(StatusCode::OK, json))
        }
    }
}

/// The caller and what it opens a session with, checked.
async fn opening(app: &App, req: &Request) -> Result<(Caller, Opening)> {
    let caller = app.authenticate(authorization(req)).await?;
    caller.require_coediting()?;
    let body: OpenRequest = parse_json_object(body_bytes(req, app.config.max_body_bytes)?)?;
    session::check_user_id("userid", &body.userid)?;
    let version = Version::parse_start(body.version.as_ref())?;
    let template = Template::prepare(body.template, "/template", app.config.template_limits())?;
    let opening = Opening {
        tenant: caller.tenant.clone(),
        user_id: body.userid,
        template,
        version,
        template_key: None,
    };
    Ok((caller, opening))
}

/// 201 with the seed's create shape; by key, `"created": true` first.
fn created(new: &NewSession, by_key: bool) -> Result<Response<Body>> {
    let entry = to_json(&new.first_entry)?;
    let id = to_json(&new.session.id)?;
    let mut fields = Vec::with_capacity(4);
    if by_key {
        fields.push(("created", "true"));
    }
    fields.extend([
        ("historyEntry", entry.as_str()),
        ("sessionId", id.as_str()),
        ("template", new.template.as_str()),
    ]);
    Ok(super::http::json_response(
        StatusCode::CREATED,
        json_object(&fields),
    ))
}
