//! Locks: one holder per row or module. Taking one is a conditional write in the
//! store; the others are told (`LOCKED`, `UNLOCKED`), and connections found gone
//! while telling them are dropped.

use super::presence::{announce_lock, drop_gone};
use super::{change, present_self, session_of};
use crate::app::App;
use crate::error::{Error, Result};
use crate::patch::find_lockable;
use crate::session::message::ChangeKind;
use crate::session::{Lock, User};
use crate::store::{LockOutcome, ReleaseOutcome};

/// An element id as clients send it: a row's or module's uuid.
fn check_target(target: &str) -> Result<()> {
    if target.is_empty() || target.len() > 128 {
        return Err(Error::malformed(format!(
            "target: must be an element id of 1 to 128 bytes, is {}",
            target.len()
        )));
    }
    Ok(())
}

/// Gives `target` (a row or module uuid of the template as it is now) to the
/// connection, as `session::locks` rules: `None` when granted, else the holder of
/// it or of an element it overlaps.
pub async fn lock(app: &App, connection_id: &str, target: &str) -> Result<Option<User>> {
    check_target(target)?;
    let id = session_of(app, connection_id).await?;
    let now = app.now();
    // The template as it is now: only its rows and modules can be locked.
    let (members, lockable) = {
        let slot = app.head_slot(&id);
        let mut cached = slot.lock().await;
        let (head, members) = change::catch_up(app, &id, &mut cached, now).await?;
        (members, find_lockable(&head.doc, target))
    };
    let me = present_self(&members, connection_id, now)?.clone();
    me.user.role.require_editor("lock an element")?;
    let lockable = lockable.ok_or_else(|| {
        Error::malformed(format!(
            "target: no row or module of the template has the uuid '{target}'"
        ))
    })?;
    let already_mine = members
        .locks
        .iter()
        .any(|l| l.element == target && l.connection_id == connection_id);
    let lock = Lock {
        element: target.to_owned(),
        connection_id: connection_id.to_owned(),
        user: me.user.clone(),
        since: now,
    };
    match app.store.take_lock(&members, &lock, &lockable, now).await? {
        LockOutcome::HeldBy(holder) => Ok(Some(holder.user)),
        LockOutcome::Granted => {
            if !already_mine {
                let gone = announce_lock(
                    app,
                    &members,
                    ChangeKind::Locked,
                    &me.user,
                    target,
                    Some(connection_id),
                )
                .await;
                drop_gone(app, &members, gone).await;
            }
            Ok(None)
        }
    }
}

/// Releases `target` if the connection holds it, and tells the others.
pub async fn unlock(app: &App, connection_id: &str, target: &str) -> Result<()> {
    check_target(target)?;
    let id = session_of(app, connection_id).await?;
    if app.store.release_lock(&id, target, connection_id).await? == ReleaseOutcome::NotHeld {
        return Ok(());
    }
    let now = app.now();
    if let Some(members) = app.store.read_members(&id, now).await?
        && let Some(me) = members.connection(connection_id)
    {
        let gone = announce_lock(
            app,
            &members,
            ChangeKind::Unlocked,
            &me.user,
            target,
            Some(connection_id),
        )
        .await;
        drop_gone(app, &members, gone).await;
    }
    Ok(())
}
