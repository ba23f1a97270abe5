//! Opening sessions: a new one from a template (`POST .../session`), or the one
//! session of a tenant's template key, joined when live and started otherwise
//! (`PUT .../templates/{key}/session`).

use crate::app::App;
use crate::error::{Error, Result};
use crate::session::{NewSession, Opening, SessionState, TemplateKey, new_session};
use crate::store::{CreateOutcome, RACE_ATTEMPTS, backoff};
use crate::usecase::host;

/// What start-or-join did.
#[derive(Debug)]
pub enum Started {
    /// No live session had the key: this one was created.
    Created(NewSession),
    /// The key's live session.
    Joined(SessionState),
}

/// A new session, without a template key.
pub async fn create(app: &App, opening: Opening) -> Result<NewSession> {
    let new = new_session(
        Opening {
            template_key: None,
            ..opening
        },
        app.now(),
    );
    match app.store.create_session(&new).await? {
        CreateOutcome::Created => {
            host::session_started(app, &new).await;
            Ok(new)
        }
        CreateOutcome::KeyTaken => Err(Error::unexpected(
            "a session without a key was refused its key",
        )),
    }
}

/// The live session of `key`, or a new one made from `opening`. The key's claim
/// decides between racing calls: exactly one creates, the others join it. A
/// session that expired takes no more users; the new one takes over its key, and
/// starts from its final template when that is newer than the host's (the host may
/// not have heard of its end yet), so no change is lost between the two.
pub async fn start_or_join(app: &App, key: TemplateKey, opening: Opening) -> Result<Started> {
    let tenant = opening.tenant.clone();
    for attempt in 0..RACE_ATTEMPTS {
        let now = app.now();
        let mut start = Opening {
            template_key: Some(key.clone()),
            ..opening.clone()
        };
        let mut replaces = None;
        if let Some(id) = app.store.find_template_session(&tenant, &key).await? {
            if let Some(live) = app.store.read_session(&id, now).await? {
                return Ok(Started::Joined(live));
            }
            if let Some(last) = app.store.read_expired(&id, now).await? {
                let (version, template) = last.current()?;
                if version > start.version {
                    start.version = version;
                    start.template = template;
                }
            }
            replaces = Some(id);
        }
        let new = NewSession {
            replaces,
            ..new_session(start, now)
        };
        match app.store.create_session(&new).await? {
            CreateOutcome::Created => {
                host::session_started(app, &new).await;
                return Ok(Started::Created(new));
            }
            // Another call created the key's session (or took it over) since it
            // was read: join that one.
            CreateOutcome::KeyTaken => backoff(attempt).await,
        }
    }
    Err(Error::unavailable(
        "starting the template's session: too many calls raced for it; try again",
    ))
}
