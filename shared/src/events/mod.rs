//! Host events: what a host backend learns about its sessions without polling
//! (docs/PROTOCOL.md, Host events). A session's start, each user joining and
//! leaving, its progress (at most once a minute) and its end with the final
//! template. Published through `HostEvents`: EventBridge in AWS (`eventbridge`),
//! the local stack's printer, keeper and webhook poster locally.

pub mod eventbridge;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::session::{SessionId, Template, TemplateKey, TenantId, User, Version};

/// The `source` of every event.
pub const SOURCE: &str = "coedit";

/// EventBridge takes entries up to 256 KB; a final template larger than this is
/// kept for the host to read instead of carried in its `ended` event.
pub const MAX_INLINE_TEMPLATE: usize = 200 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    SessionStarted,
    UserJoined,
    UserLeft,
    SessionUpdated,
    SessionEnded,
}

impl EventKind {
    /// The event's `detail-type`, what a host's rule matches on.
    pub fn detail_type(self) -> &'static str {
        match self {
            EventKind::SessionStarted => "coedit.session.started",
            EventKind::UserJoined => "coedit.user.joined",
            EventKind::UserLeft => "coedit.user.left",
            EventKind::SessionUpdated => "coedit.session.updated",
            EventKind::SessionEnded => "coedit.session.ended",
        }
    }
}

/// What every event says: whose session, which, at what version, when, and how
/// many users are present.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    pub tenant: TenantId,
    pub session_id: SessionId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_key: Option<TemplateKey>,
    pub version: Version,
    pub time: String,
    /// Users present (connections).
    pub users: usize,
    /// Who joined or left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// `ended`: the final template, when it fits in the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<Box<RawValue>>,
    /// `ended`: where the final template is kept when it does not fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_template: Option<KeptTemplate>,
}

/// A final template kept for the host: `GET <path>` with an API key until `until`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptTemplate {
    pub path: String,
    pub until: String,
}

#[derive(Debug, Clone)]
pub struct HostEvent {
    pub kind: EventKind,
    pub detail: EventDetail,
}

impl HostEvent {
    pub fn new(kind: EventKind, detail: EventDetail) -> HostEvent {
        HostEvent { kind, detail }
    }

    /// The `detail` as JSON text.
    pub fn detail_json(&self) -> Result<String> {
        serde_json::to_string(&self.detail)
            .map_err(|e| Error::unexpected(format!("serializing a host event: {e}")))
    }
}

impl EventDetail {
    pub fn new(
        tenant: &TenantId,
        session_id: &SessionId,
        template_key: Option<&TemplateKey>,
        version: Version,
        time: Timestamp,
        users: usize,
    ) -> EventDetail {
        EventDetail {
            tenant: tenant.clone(),
            session_id: session_id.clone(),
            template_key: template_key.cloned(),
            version,
            time: time.to_rfc3339(),
            users,
            user: None,
            template: None,
            kept_template: None,
        }
    }

    /// Carries the final template whole.
    pub fn with_template(mut self, template: &Template) -> Result<EventDetail> {
        let raw = RawValue::from_string(template.as_str().to_owned())
            .map_err(|e| Error::unexpected(format!("a stored template is not JSON: {e}")))?;
        self.template = Some(raw);
        Ok(self)
    }
}

/// The path a kept final template is read from.
pub fn final_template_path(id: &SessionId) -> String {
    format!("/v1/coedit/session/{id}/final")
}

/// Where host events go.
#[async_trait]
pub trait HostEvents: Send + Sync {
    /// Publishes one event; an error means it may not have been delivered.
    async fn publish(&self, event: &HostEvent) -> Result<()>;
}

/// A deployment without an event bus: every publish fails, so a session's end is
/// never taken as told (and its data never erased) while events go nowhere.
pub struct Unconfigured;

#[async_trait]
impl HostEvents for Unconfigured {
    async fn publish(&self, _event: &HostEvent) -> Result<()> {
        Err(Error::unexpected(
            "configuration: COEDIT_EVENT_BUS_NAME is not set; host events cannot be published",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_detail_names_what_the_host_needs() {
        let id = SessionId::generate();
        let detail = EventDetail::new(
            &TenantId::parse("acme").unwrap(),
            &id,
            Some(&TemplateKey::parse("welcome").unwrap()),
            Version(42),
            Timestamp(0),
            2,
        )
        .with_template(&Template::from_canonical_json(r#"{"page":{}}"#.into()))
        .unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &HostEvent::new(EventKind::SessionEnded, detail)
                .detail_json()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "tenant": "acme", "sessionId": id.as_str(), "templateKey": "welcome",
                "version": 42, "time": "1970-01-01T00:00:00.000Z", "users": 2,
                "template": {"page": {}}
            })
        );
    }
}
