//! Opening sessions: a new one from a template (`POST .../session`), or the one
//! session of a tenant's template key, joined when live and started otherwise
//! (`PUT .../templates/{key}/session`). And a session's template at an older
//! version.

use crate::app::App;
use crate::error::{Error, Result};
use crate::session::change::Head;
use crate::session::{
    NewSession, Opening, SessionId, SessionState, Template, TemplateKey, TenantId, Version,
    new_session,
};
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

/// Most bytes of the log replayed to rebuild an older version. Compaction every
/// 200 changes or 1 MiB, and a kept template every `KEEP_EVERY` compactions, keep
/// it under about 7 MB unless compactions failed.
pub const MAX_REPLAY_BYTES: usize = 16 * 1024 * 1024;

/// The template as it was at version `n` of a tenant's session: from the nearest
/// template stored at or before it, through the log.
pub async fn template_at(
    app: &App,
    tenant: &TenantId,
    id: &SessionId,
    n: Version,
) -> Result<Template> {
    let state = app
        .store
        .read_session(id, app.now())
        .await?
        .filter(|s| &s.session.tenant == tenant)
        .ok_or_else(Error::session_not_found)?;
    let snapshot = state.session.snapshot_version;
    let first = state.session.first_version;
    let newest = state.tail.last().map_or(snapshot, |e| e.version);
    if n > newest || n < first {
        return Err(Error::malformed(format!(
            "n: the session's versions are {first} to {newest}"
        )));
    }
    let mut head = if n >= snapshot {
        Head::new(&state.snapshot, snapshot)?
    } else {
        // Older than the snapshot: from the nearest kept template, through the
        // log (at most `KEEP_EVERY` compactions of it).
        let (kept, template) = app
            .store
            .kept_template(&state.session, n)
            .await?
            .ok_or_else(|| Error::unexpected("the session's first template is missing"))?;
        let mut head = Head::new(&template, kept)?;
        let wanted = (n.0 - kept.0) as usize;
        let older = app
            .store
            .history(id, kept, wanted, MAX_REPLAY_BYTES)
            .await?;
        if older.len() < wanted {
            return Err(Error::too_large(format!(
                "n: version {n} is more than {MAX_REPLAY_BYTES} bytes of changes after the nearest kept template (version {kept})"
            )));
        }
        head.catch_up(&older)?;
        head
    };
    head.catch_up(state.tail.iter().filter(|e| e.version <= n))?;
    if head.version != n {
        return Err(Error::unexpected(format!(
            "the log ends at {} before version {n}",
            head.version
        )));
    }
    head.template()
}
