//! The `edit` function: WebSocket routes `edit`, `lock`, `unlock`, `sync` and
//! `$default` (which carries `presence`). Translates each message into its use case (`usecase::change`,
//! `usecase::locks`) and the outcome into the route response (the sender's answer).

use super::ping;
use super::websocket::{
    WebSocketEvent, WebSocketResponse, answer_error, body, connection_id, ok, refuse, reply,
    reply_json,
};
use crate::app::App;
use crate::error::Code;
use crate::session::Version;
use crate::session::change::Edit;
use crate::session::message::{ClientMessage, MAX_MESSAGE_BYTES, ServerMessage};
use crate::session::rate::{Admission, closed_for_flooding, rate_limited};
use crate::usecase::presence::{self, close_with};
use crate::usecase::{change, locks};

pub async fn handle(app: &App, event: WebSocketEvent) -> WebSocketResponse {
    let connection_id = match connection_id(&event) {
        Ok(id) => id.to_owned(),
        Err(e) => return refuse(&e),
    };
    let text = match body(&event) {
        Ok(text) => text,
        Err(e) => return answer_error(&e, None),
    };
    if let Some(refused) = over_budget(app, &connection_id, &text).await {
        return refused;
    }
    let message = match ClientMessage::parse(&text) {
        Ok(m) => m,
        Err(e) => {
            let change_id = change_id_of(&text);
            return answer_error(&e, change_id.as_deref());
        }
    };
    let result = match message {
        ClientMessage::Ping {} => return ping::answer(app, event).await,
        ClientMessage::Edit(m) => {
            let edit = Edit::new(
                m.change_id.clone(),
                m.base_version,
                &m.patch,
                m.label,
                m.kind,
            );
            match edit {
                Ok(edit) => change::submit_from_connection(app, &connection_id, &edit)
                    .await
                    .map(|done| {
                        reply(&ServerMessage::Ack {
                            change_id: &edit.change_id,
                            version: done.version,
                            diff: done.applied.as_deref(),
                        })
                    }),
                Err(e) => Err(e),
            }
            .or_else(|e| match e.code {
                // Not in the session any more: told and closed below.
                Code::ConnectionLost => Err(e),
                _ => Ok(answer_error(&e, Some(&m.change_id))),
            })
        }
        ClientMessage::Lock { target } => {
            locks::lock(app, &connection_id, &target)
                .await
                .map(|holder| {
                    reply(&ServerMessage::Lock {
                        target: &target,
                        granted: holder.is_none(),
                        held_by: holder.as_ref(),
                    })
                })
        }
        ClientMessage::Unlock { target } => locks::unlock(app, &connection_id, &target)
            .await
            .map(|()| ok()),
        ClientMessage::Presence {} => presence::roll_call(app, &connection_id)
            .await
            .map(reply_json),
        ClientMessage::Sync { since_version } => {
            change::changes_since(app, &connection_id, Version(since_version))
                .await
                .map(reply_json)
        }
    };
    match result {
        Ok(response) => response,
        Err(e) => {
            if e.code == Code::ConnectionLost {
                close_with(app, &connection_id, &e).await;
                return ok();
            }
            answer_error(&e, None)
        }
    }
}

/// A message past the connection's budget: refused (with its `changeId`, so the
/// client sends that change again later), or, from a connection that keeps
/// sending while refused, closed.
pub(super) async fn over_budget(
    app: &App,
    connection_id: &str,
    text: &str,
) -> Option<WebSocketResponse> {
    let budget = app.config.message_budget;
    match app.admit_message(connection_id) {
        Admission::Admitted => None,
        Admission::Refused => {
            let change_id = change_id_of(text);
            Some(answer_error(&rate_limited(budget), change_id.as_deref()))
        }
        Admission::Close => {
            tracing::warn!(
                connection = connection_id,
                "closing a connection that floods"
            );
            close_with(app, connection_id, &closed_for_flooding(budget)).await;
            Some(ok())
        }
    }
}

/// The `changeId` of a message that did not parse, when it has one, so the client
/// knows which change was refused.
fn change_id_of(text: &str) -> Option<String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    // Echoed only when it could be a change id (at most 128 bytes).
    let id = value.get("changeId")?.as_str()?;
    (!id.is_empty() && id.len() <= 128).then(|| id.to_owned())
}
