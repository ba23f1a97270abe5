//! What the host is told (`events`): a session started, a user joined or left,
//! its progress at most once a minute, and its end with the final template.
//! Progress and ends are the sweeper's work, so publishing adds nothing to the
//! edit path. `started`, `joined`, `left` and `updated` are best effort (a failure
//! is logged); `ended` is published at least once before the session is erased.

use std::time::Duration;

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::{
    EventDetail, EventKind, HostEvent, KeptTemplate, MAX_INLINE_TEMPLATE, final_template_path,
};
use crate::session::{Ended, NewSession, Session, SessionId, SessionMembers, User, Version};

/// The least time between two `coedit.session.updated` events of one session.
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(60);

pub async fn session_started(app: &App, new: &NewSession) {
    let s = &new.session;
    let detail = about(s, new.first_entry.version, app.now(), 0);
    publish_best_effort(app, HostEvent::new(EventKind::SessionStarted, detail)).await;
}

/// A user joined (`UserJoined`) or left (`UserLeft`); `members` as they are after.
pub async fn user_came_or_went(app: &App, kind: EventKind, members: &SessionMembers, user: &User) {
    let now = app.now();
    let s = &members.session;
    // The log's newest entry, read eventually consistent: half a read unit.
    let version = match app.store.head_version(&s.id).await {
        Ok(v) => v.unwrap_or(s.snapshot_version),
        Err(e) => {
            tracing::warn!(detail = %e.detail, "reading the version for a host event failed");
            s.snapshot_version
        }
    };
    let mut detail = about(s, version, now, members.present(now).count());
    detail.user = Some(user.clone());
    publish_best_effort(app, HostEvent::new(kind, detail)).await;
}

/// Tells the host the session's newest version, if it moved since it was last
/// told and that was a minute ago or more. Returns whether an event went out.
pub async fn report_progress(app: &App, members: &SessionMembers) -> Result<bool> {
    let now = app.now();
    let s = &members.session;
    if s.reported
        .is_some_and(|(_, at)| now < at.plus(UPDATE_INTERVAL))
    {
        return Ok(false);
    }
    let Some(version) = app.store.head_version(&s.id).await? else {
        return Ok(false);
    };
    let known = s.reported.map_or(s.first_version, |(v, _)| v);
    if version <= known {
        return Ok(false);
    }
    let detail = about(s, version, now, members.present(now).count());
    app.events
        .publish(&HostEvent::new(EventKind::SessionUpdated, detail))
        .await?;
    app.store.mark_reported(&s.id, version, now).await?;
    Ok(true)
}

/// Tells the host an expired session ended, with its final template (or where it
/// is kept, when too large for the event), and records that it was told, which
/// frees its template key and lets it be erased. Nothing when it is live, gone,
/// or told already. An error leaves it to the next sweep, the session readable.
pub async fn end_session(app: &App, id: &SessionId) -> Result<bool> {
    let now = app.now();
    let Some(last) = app.store.read_expired(id, now).await? else {
        return Ok(false);
    };
    if last.session.ended.is_some() {
        return Ok(false);
    }
    let s = &last.session;
    let (version, template) = last.current()?;
    let detail = about(s, version, now, 0);
    let (detail, kept_until) = if template.len() <= MAX_INLINE_TEMPLATE {
        (detail.with_template(&template)?, now)
    } else {
        let until = now.plus(app.config.final_template_retention);
        let kept = KeptTemplate {
            path: final_template_path(id),
            until: until.to_rfc3339(),
        };
        (
            EventDetail {
                kept_template: Some(kept),
                ..detail
            },
            until,
        )
    };
    app.events
        .publish(&HostEvent::new(EventKind::SessionEnded, detail))
        .await?;
    let ended = Ended {
        at: now,
        kept_until,
    };
    app.store.mark_ended(s, ended).await?;
    tracing::info!(session = %id, %version, kept = kept_until > now, "session ended; host told");
    Ok(true)
}

/// What every event says of `session`.
fn about(session: &Session, version: Version, now: Timestamp, users: usize) -> EventDetail {
    EventDetail::new(
        &session.tenant,
        &session.id,
        session.template_key.as_ref(),
        version,
        now,
        users,
    )
}

async fn publish_best_effort(app: &App, event: HostEvent) {
    if let Err(e) = app.events.publish(&event).await {
        tracing::warn!(
            detail = %e.detail,
            event = event.kind.detail_type(),
            "publishing a host event failed"
        );
    }
}
