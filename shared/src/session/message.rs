//! WebSocket messages (docs/PROTOCOL.md, "WebSocket"): what clients send, parsed with an
//! answer that says what is wrong and where, and what the server sends, in the
//! seed shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use serde_json::Value;

use super::{HistoryEntry, User, Version};
use crate::error::{Error, Result};

/// API Gateway refuses larger messages; anything bigger never reaches a function.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// A message from a client, selected by its `action`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Ping {},
    Edit(EditMessage),
    Lock {
        target: String,
    },
    Unlock {
        target: String,
    },
    Sync {
        since_version: u64,
    },
    /// Who is here: answered with the session change a newcomer missed while its
    /// `$connect` ran (its own `USER_JOINED` with the whole `sessionData`).
    Presence {},
}

/// An `edit` as sent; `Edit::new` checks it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    pub change_id: String,
    pub base_version: u64,
    /// RFC 6902 ops, parsed by `patch::parse` for answers that name the op.
    pub patch: Value,
    #[serde(default)]
    pub label: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Deserialize)]
struct TargetFields {
    target: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncFields {
    since_version: u64,
}

const ACTIONS: &str = "`ping`, `edit`, `lock`, `unlock`, `sync`, `presence`";

impl ClientMessage {
    /// Parses a message, or says what is wrong and where (4000), or that it is too
    /// large (4013). The JSON is read first, then the fields of its action, so a
    /// wrong field is named by its path.
    pub fn parse(body: &str) -> Result<ClientMessage> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(Error::too_large(format!(
                "the message has {} bytes; at most {MAX_MESSAGE_BYTES} are accepted",
                body.len()
            )));
        }
        match body.trim_start().as_bytes().first() {
            None => return Err(Error::malformed("the message is empty")),
            Some(b'{') => {}
            Some(_) => {
                return Err(Error::malformed(
                    "message: must be a JSON object with an \"action\"",
                ));
            }
        }
        let value: Value =
            serde_json::from_str(body).map_err(|e| Error::malformed(format!("message: {e}")))?;
        let action = match value.get("action") {
            None => return Err(Error::malformed("message: missing field `action`")),
            Some(Value::String(a)) => a.clone(),
            Some(_) => {
                return Err(Error::malformed(format!(
                    "action: must be one of {ACTIONS}"
                )));
            }
        };
        Ok(match action.as_str() {
            "ping" => ClientMessage::Ping {},
            "edit" => ClientMessage::Edit(fields(value)?),
            "lock" => ClientMessage::Lock {
                target: fields::<TargetFields>(value)?.target,
            },
            "unlock" => ClientMessage::Unlock {
                target: fields::<TargetFields>(value)?.target,
            },
            "sync" => ClientMessage::Sync {
                since_version: fields::<SyncFields>(value)?.since_version,
            },
            "presence" => ClientMessage::Presence {},
            other => {
                return Err(Error::malformed(format!(
                    "action: unknown variant `{}`, expected one of {ACTIONS}",
                    other.chars().take(64).collect::<String>()
                )));
            }
        })
    }
}

/// The fields of one action, with the path of a wrong one in the answer.
fn fields<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::malformed(format!("message: {inner}"))
        } else {
            Error::malformed(format!("{path}: {inner}"))
        }
    })
}

/// The kinds of session change (seed: the SDK's `onSessionChange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    UserJoined,
    UserLeft,
    Locked,
    Unlocked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change<'a> {
    #[serde(rename = "type")]
    pub kind: ChangeKind,
    pub value: &'a User,
    /// The element, for `LOCKED` and `UNLOCKED` (ours, beyond the seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionData<'a> {
    /// Present users keyed by connection id.
    pub users: BTreeMap<&'a str, &'a User>,
}

/// A message from the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage<'a> {
    Pong {
        version: Version,
    },
    #[serde(rename_all = "camelCase")]
    SessionChange {
        change: Change<'a>,
        session_data: SessionData<'a>,
    },
    #[serde(rename_all = "camelCase")]
    Error {
        code: u16,
        message: &'static str,
        detail: &'a str,
        recoverable: bool,
        /// The change refused, when the error answers an `edit`.
        #[serde(skip_serializing_if = "Option::is_none")]
        change_id: Option<&'a str>,
    },
    #[serde(rename_all = "camelCase")]
    Ack {
        change_id: &'a str,
        version: Version,
        /// The ops as applied, when they differ from the ones sent.
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<&'a [Value]>,
    },
    #[serde(rename_all = "camelCase")]
    Change {
        history_entry: &'a HistoryEntry,
    },
    Changes {
        entries: &'a [HistoryEntry],
    },
    /// The log cannot be sent (too far back or too large): read the template with GET.
    Resync {
        version: Version,
    },
    #[serde(rename_all = "camelCase")]
    Lock {
        target: &'a str,
        granted: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        held_by: Option<&'a User>,
    },
}

impl ServerMessage<'_> {
    pub fn error(err: &Error) -> ServerMessage<'_> {
        ServerMessage::edit_error(err, None)
    }

    /// An error answering the edit `change_id`.
    pub fn edit_error<'a>(err: &'a Error, change_id: Option<&'a str>) -> ServerMessage<'a> {
        ServerMessage::Error {
            code: err.code.number(),
            message: err.code.message(),
            detail: &err.detail,
            recoverable: err.code.recoverable(),
            change_id,
        }
    }

    pub fn to_json(&self) -> String {
        // Plain structs, strings and maps: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_change_has_the_seed_shape() {
        let ann = User {
            user_id: "johndoe".into(),
            username: "John Doe".into(),
            user_color: "#c0ffee".into(),
            role: Default::default(),
        };
        let msg = ServerMessage::SessionChange {
            change: Change {
                kind: ChangeKind::UserJoined,
                value: &ann,
                target: None,
            },
            session_data: SessionData {
                users: BTreeMap::from([("668bf8aa", &ann)]),
            },
        };
        assert_eq!(
            msg.to_json(),
            r##"{"type":"sessionChange","change":{"type":"USER_JOINED","value":{"userId":"johndoe","username":"John Doe","userColor":"#c0ffee"}},"sessionData":{"users":{"668bf8aa":{"userId":"johndoe","username":"John Doe","userColor":"#c0ffee"}}}}"##
        );
    }

    #[test]
    fn pong_and_error_shapes() {
        let pong: serde_json::Value = serde_json::from_str(
            &ServerMessage::Pong {
                version: Version(7),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(pong, json!({"type": "pong", "version": 7}));
        let err = Error::malformed("action: unknown");
        let v: serde_json::Value =
            serde_json::from_str(&ServerMessage::error(&err).to_json()).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "code": 4000, "message": "Malformed message.",
                   "detail": "action: unknown", "recoverable": false})
        );
    }

    #[test]
    fn client_messages_parse_or_say_what_is_wrong() {
        assert_eq!(
            ClientMessage::parse(r#"{"action":"ping"}"#).unwrap(),
            ClientMessage::Ping {}
        );
        let cases = [
            ("", "empty"),
            ("ping", "JSON object"),
            ("[1]", "JSON object"),
            (r#"{"action":"ping""#, "EOF"),
            (r#"{"nothing":1}"#, "missing field `action`"),
            (r#"{"action":"dance"}"#, "unknown variant `dance`"),
            (r#"{"action":7}"#, "action"),
            (r#"{"action":"ping"} {}"#, "trailing"),
        ];
        for (body, expected) in cases {
            let e = ClientMessage::parse(body).unwrap_err();
            assert_eq!(e.code.number(), 4000, "{body}");
            assert!(e.detail.contains(expected), "{body}: {}", e.detail);
        }
        let big = format!(
            r#"{{"action":"ping","x":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(ClientMessage::parse(&big).unwrap_err().code.number(), 4013);
    }
}
