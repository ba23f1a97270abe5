//! `GET /v1/coedit/session/{id}/history` (entries without diffs, newest first,
//! paged with `before` and `limit`) and `GET /v1/coedit/session/{id}/versions/{n}`
//! (the template as it was at version n). Same credentials as reading the session.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::http::{authorization, json_object, json_response, to_json};
use crate::app::{App, Credential};
use crate::error::{Error, Result};
use crate::session::{SessionId, Version};

/// Entries per page unless `limit` asks for fewer or more.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 500;

/// A history entry without its diff.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    version: Version,
    timestamp: &'a str,
    change_id: &'a str,
    label: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    user_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    entries: Vec<Summary<'a>>,
    /// Pass as `before` for the next (older) page; `null` on the last one.
    next_before: Option<Version>,
}

/// The session named in the path, checked against the caller's credential.
async fn session_id(app: &App, req: &Request) -> Result<(Credential, SessionId)> {
    let credential = app.credential(authorization(req)).await?;
    let id = req
        .path_parameters()
        .first("id")
        .and_then(SessionId::parse)
        .ok_or_else(Error::session_not_found)?;
    if let Credential::JoinToken(grant) = &credential {
        grant.require_session(&id)?;
    }
    Ok((credential, id))
}

fn number_param(req: &Request, name: &str) -> Result<Option<u64>> {
    match req.query_string_parameters().first(name) {
        None => Ok(None),
        Some(text) => text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::malformed(format!("{name}: must be a whole number, is {text:?}"))),
    }
}

pub async fn history(app: &App, req: &Request) -> Result<Response<Body>> {
    let (credential, id) = session_id(app, req).await?;
    let before = number_param(req, "before")?.map(Version);
    let limit = match number_param(req, "limit")? {
        None => DEFAULT_PAGE,
        Some(n) if (1..=MAX_PAGE as u64).contains(&n) => n as usize,
        Some(n) => {
            return Err(Error::malformed(format!(
                "limit: must be 1 to {MAX_PAGE}, is {n}"
            )));
        }
    };
    let now = app.now();
    let (members, entries) = tokio::join!(
        app.store.read_members(&id, now),
        app.store.history_before(&id, before, limit)
    );
    let members = members?
        .filter(|m| &m.session.tenant == credential.tenant())
        .ok_or_else(Error::session_not_found)?;
    let entries = entries?;
    let next_before = entries
        .last()
        .filter(|e| entries.len() == limit && e.version > members.session.first_version)
        .map(|e| e.version);
    let page = Page {
        entries: entries
            .iter()
            .map(|e| Summary {
                version: e.version,
                timestamp: &e.timestamp,
                change_id: &e.change_id,
                label: &e.label,
                kind: &e.kind,
                user_id: &e.user_id,
            })
            .collect(),
        next_before,
    };
    Ok(json_response(StatusCode::OK, to_json(&page)?))
}

pub async fn version_at(app: &App, req: &Request) -> Result<Response<Body>> {
    let (credential, id) = session_id(app, req).await?;
    let n = req
        .path_parameters()
        .first("n")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n >= 1)
        .map(Version)
        .ok_or_else(|| Error::malformed("n: must be a version, a whole number from 1"))?;
    let template = crate::usecase::sessions::template_at(app, credential.tenant(), &id, n).await?;
    let json = json_object(&[("template", template.as_str()), ("version", &to_json(&n)?)]);
    Ok(json_response(StatusCode::OK, json))
}
