//! The rules of a co-editing session, free of I/O: identities, versions, history
//! entries, expiry and presence. Stores and handlers call these; nothing here knows
//! about DynamoDB or API Gateway.

pub mod change;
pub mod locks;
pub mod message;
pub mod presence;
pub mod rate;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
pub use presence::SessionMembers;
pub use template::Template;

/// A session nobody is in is erased this long after it was created or its last
/// user left (docs/PROTOCOL.md, Lifecycle).
pub const EMPTY_SESSION_LIFETIME: Duration = Duration::from_secs(60);

/// A session ends this long after it started, however busy it is: its users are
/// told it is gone (5150) and the host's start-by-key begins the next one from its
/// final template and version. It bounds how long any item of a session must live.
pub const MAX_SESSION_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest a final template is kept for the host after the end
/// (`COEDIT_FINAL_TEMPLATE_HOURS` at most).
pub const MAX_FINAL_TEMPLATE_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// DynamoDB's TTL may reclaim an item of a session this long after it was written:
/// by then the session has ended (`MAX_SESSION_AGE`), its final template is no
/// longer kept, and the sweeper has had a week to erase it. A backstop: were the
/// sweeper down, nothing of a session would stay for good.
pub const RECLAIM_AFTER: Duration = Duration::from_secs(
    MAX_SESSION_AGE.as_secs() + MAX_FINAL_TEMPLATE_KEEP.as_secs() + 7 * 24 * 3600,
);

/// A connection that has not pinged for this long is not present any more
/// (5 missed pings at 10 s).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(50);

/// A session id: a random (v4) UUID, 122 bits from the operating system's CSPRNG,
/// so ids cannot be guessed or enumerated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate() -> Self {
        SessionId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Accepts only the form `generate` produces, so a malformed id is answered
    /// without a store call.
    pub fn parse(text: &str) -> Option<Self> {
        let id = uuid::Uuid::try_parse(text).ok()?;
        let canonical = id.hyphenated().to_string();
        (canonical == text).then_some(SessionId(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host application's customer that owns sessions and API keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// 1 to 64 characters of `A-Z a-z 0-9 . _ -`: tenant ids end up in keys and logs.
    pub fn parse(text: &str) -> Result<Self> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(TenantId(text.to_owned()))
        } else {
            Err(Error::malformed(
                "a tenant id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The host's name for a template (`PUT .../templates/{templateKey}/session`): one
/// live session per key and tenant. 1 to 256 URL-safe bytes (RFC 3986 unreserved:
/// `A-Z a-z 0-9 - . _ ~`), so it reads the same in a path, a key and an event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateKey(String);

impl TemplateKey {
    pub const MAX_LEN: usize = 256;

    pub fn parse(text: &str) -> Result<Self> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(Error::malformed(format!(
                "templateKey: must be 1 to {} bytes long, is {}",
                Self::MAX_LEN,
                text.len()
            )));
        }
        if let Some(at) = text
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')))
        {
            return Err(Error::malformed(format!(
                "templateKey: byte {at} is not URL-safe (allowed: A-Z a-z 0-9 - . _ ~)"
            )));
        }
        Ok(TemplateKey(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The integer version of a session's template: 1 at creation, +1 per accepted change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    pub const FIRST: Version = Version(1);

    /// The highest version a session may start at: the largest integer a browser's
    /// JSON numbers hold exactly (2^53 - 1), less room for a lifetime of changes.
    pub const MAX_START: Version = Version((1 << 53) - 1 - (1 << 32));

    /// The version a host asks a new session to start at (`"version"`: its latest
    /// saved version): a whole number from 1 to `MAX_START`; absent means 1.
    pub fn parse_start(value: Option<&Value>) -> Result<Version> {
        let Some(value) = value else {
            return Ok(Version::FIRST);
        };
        match value.as_u64() {
            Some(v) if (1..=Self::MAX_START.0).contains(&v) => Ok(Version(v)),
            _ => Err(Error::malformed(format!(
                "version: must be a whole number from 1 to {}",
                Self::MAX_START.0
            ))),
        }
    }

    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A co-editor as other users see them (seed shape; `role` only for viewers, so
/// an editor's entry is exactly the seed's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: String,
    pub username: String,
    pub user_color: String,
    #[serde(default, skip_serializing_if = "Role::is_editor")]
    pub role: Role,
}

/// What a user may do in a session. A viewer receives changes and presence,
/// pings and syncs, and takes no co-editor seat; it may not edit or lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Editor,
    Viewer,
}

impl Role {
    pub fn is_editor(&self) -> bool {
        *self == Role::Editor
    }

    /// Refuses what only an editor may do (4030).
    pub fn require_editor(self, what: &str) -> Result<()> {
        match self {
            Role::Editor => Ok(()),
            Role::Viewer => Err(Error::new(
                crate::error::Code::TokenNotValid,
                format!("a viewer may not {what}; join as an editor to change the template"),
            )),
        }
    }
}

/// One accepted change (seed shape). Version 1 is the session's creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub version: Version,
    pub timestamp: String,
    pub change_id: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: String,
    pub diff: Vec<Value>,
    /// The WebSocket connection that made the change (none for the first entry and
    /// for changes over REST). Kept beside the entry in the store, never sent: it
    /// tells a sender's own changes from the ones it missed.
    #[serde(skip)]
    pub connection: Option<String>,
}

/// A session's head record: who owns it, where its stored template snapshot
/// stands, and whether it is waiting to be erased. Its newest version is not kept
/// here (that would be a second write per change): it is the newest entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub tenant: TenantId,
    /// The host's key for the template, when it was started by key.
    pub template_key: Option<TemplateKey>,
    /// The version it started at (the host's latest saved version, else 1).
    pub first_version: Version,
    /// The version of the stored template snapshot; later changes are in the log.
    pub snapshot_version: Version,
    pub created_at: Timestamp,
    /// Set while nobody is present: the session is gone from this instant on.
    pub expires_at: Option<Timestamp>,
    /// Editors' connections holding a co-editor seat, stale ones included until they
    /// are dropped. The plan's limit is checked against this count in the same
    /// write that takes a seat.
    pub seats: u32,
    /// Viewers' connections, counted the same way against `presence::MAX_VIEWERS`.
    pub viewers: u32,
    /// The newest version a `coedit.session.updated` event told the host, and when.
    pub reported: Option<(Version, Timestamp)>,
    /// Set once the `coedit.session.ended` event is published: the session is
    /// over, and only kept (readable by API key) until `kept_until`.
    pub ended: Option<Ended>,
}

/// A session whose end the host has been told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub at: Timestamp,
    /// Its final template stays readable until then (a template too large for the
    /// event), else this is `at`.
    pub kept_until: Timestamp,
}

impl Session {
    /// Expiry is decided here, not by DynamoDB's TTL, which deletes late: empty
    /// past its countdown, or older than `MAX_SESSION_AGE`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now >= at) || now >= self.aged_out_at()
    }

    /// When the session ends, however busy: `MAX_SESSION_AGE` after it started.
    pub fn aged_out_at(&self) -> Timestamp {
        self.created_at.plus(MAX_SESSION_AGE)
    }

    /// Expired, its end told to the host, and no longer kept for it.
    pub fn is_due_for_erasure(&self, now: Timestamp) -> bool {
        self.is_expired(now) && self.ended.is_some_and(|e| now >= e.kept_until)
    }
}

/// An open WebSocket connection of a user in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub user: User,
    pub connected_at: Timestamp,
    pub last_seen: Timestamp,
}

impl Connection {
    pub fn is_present(&self, now: Timestamp) -> bool {
        now < self.last_seen.plus(HEARTBEAT_TIMEOUT)
    }
}

/// An element (row or module) held by one connection, so nobody else edits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub element: String,
    pub connection_id: String,
    pub user: User,
    pub since: Timestamp,
}

/// A session as a reader sees it: its head, who is present, its template snapshot
/// and the changes after it.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub session: Session,
    /// Only connections that are present now.
    pub connections: Vec<Connection>,
    /// The template at `session.snapshot_version`.
    pub snapshot: Template,
    /// The log after the snapshot, oldest first.
    pub tail: Vec<HistoryEntry>,
}

impl SessionState {
    /// The newest version and the template at it.
    pub fn current(&self) -> Result<(Version, Template)> {
        change::current(&self.snapshot, self.session.snapshot_version, &self.tail)
    }

    /// Present users keyed by user id, as GET answers them: one entry per user,
    /// however many tabs they have open.
    pub fn users_by_id(&self) -> BTreeMap<&str, &User> {
        self.connections
            .iter()
            .map(|c| (c.user.user_id.as_str(), &c.user))
            .collect()
    }
}

/// Everything a new session is created with: written at once or not at all.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: Session,
    pub first_entry: HistoryEntry,
    pub template: Template,
    /// With a template key: the expired session whose claim on the key this one
    /// takes over (`None`: the key must be unclaimed).
    pub replaces: Option<SessionId>,
}

/// What a host starts a session with.
#[derive(Debug, Clone)]
pub struct Opening {
    pub tenant: TenantId,
    /// Who opened it (the first history entry's `userId`).
    pub user_id: String,
    pub template: Template,
    /// The template's version: the host's latest saved one, else 1.
    pub version: Version,
    pub template_key: Option<TemplateKey>,
}

/// Builds a session from a prepared template at the version it opens with; nobody
/// has joined yet, so it expires like an abandoned one unless someone does.
pub fn new_session(opening: Opening, now: Timestamp) -> NewSession {
    let session = Session {
        id: SessionId::generate(),
        tenant: opening.tenant,
        template_key: opening.template_key,
        first_version: opening.version,
        snapshot_version: opening.version,
        created_at: now,
        expires_at: Some(now.plus(EMPTY_SESSION_LIFETIME)),
        seats: 0,
        viewers: 0,
        reported: None,
        ended: None,
    };
    let first_entry = HistoryEntry {
        version: opening.version,
        timestamp: now.to_rfc3339(),
        change_id: uuid::Uuid::new_v4().to_string(),
        label: "Session created".to_owned(),
        kind: "create".to_owned(),
        user_id: opening.user_id,
        diff: Vec::new(),
        connection: None,
    };
    NewSession {
        session,
        first_entry,
        template: opening.template,
        replaces: None,
    }
}

/// A user id as the host app sends it: any non-empty string up to 256 bytes.
pub fn check_user_id(field: &str, user_id: &str) -> Result<()> {
    check_text(field, user_id, 256)
}

/// A user as the host app describes it for a join token: an id and a display name
/// (1 to 256 bytes each) and a color every browser draws the same and that can
/// carry nothing else into a page: a hex color or a CSS named color.
pub fn check_user(user: &User) -> Result<()> {
    check_text("userId", &user.user_id, 256)?;
    check_text("username", &user.username, 256)?;
    check_color("userColor", &user.user_color)
}

/// `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa` or a CSS named color (any case).
pub fn check_color(field: &str, color: &str) -> Result<()> {
    let hex = color.strip_prefix('#').is_some_and(|digits| {
        matches!(digits.len(), 3 | 4 | 6 | 8) && digits.bytes().all(|b| b.is_ascii_hexdigit())
    });
    let named = CSS_NAMED_COLORS
        .binary_search(&color.to_ascii_lowercase().as_str())
        .is_ok();
    if hex || named {
        return Ok(());
    }
    Err(Error::malformed(format!(
        "{field}: must be a hex color (#rgb, #rrggbb, with or without alpha) or a CSS named color, is {:?}",
        color.chars().take(32).collect::<String>()
    )))
}

/// CSS Color Module Level 4 named colors, sorted.
const CSS_NAMED_COLORS: [&str; 148] = [
    "aliceblue",
    "antiquewhite",
    "aqua",
    "aquamarine",
    "azure",
    "beige",
    "bisque",
    "black",
    "blanchedalmond",
    "blue",
    "blueviolet",
    "brown",
    "burlywood",
    "cadetblue",
    "chartreuse",
    "chocolate",
    "coral",
    "cornflowerblue",
    "cornsilk",
    "crimson",
    "cyan",
    "darkblue",
    "darkcyan",
    "darkgoldenrod",
    "darkgray",
    "darkgreen",
    "darkgrey",
    "darkkhaki",
    "darkmagenta",
    "darkolivegreen",
    "darkorange",
    "darkorchid",
    "darkred",
    "darksalmon",
    "darkseagreen",
    "darkslateblue",
    "darkslategray",
    "darkslategrey",
    "darkturquoise",
    "darkviolet",
    "deeppink",
    "deepskyblue",
    "dimgray",
    "dimgrey",
    "dodgerblue",
    "firebrick",
    "floralwhite",
    "forestgreen",
    "fuchsia",
    "gainsboro",
    "ghostwhite",
    "gold",
    "goldenrod",
    "gray",
    "green",
    "greenyellow",
    "grey",
    "honeydew",
    "hotpink",
    "indianred",
    "indigo",
    "ivory",
    "khaki",
    "lavender",
    "lavenderblush",
    "lawngreen",
    "lemonchiffon",
    "lightblue",
    "lightcoral",
    "lightcyan",
    "lightgoldenrodyellow",
    "lightgray",
    "lightgreen",
    "lightgrey",
    "lightpink",
    "lightsalmon",
    "lightseagreen",
    "lightskyblue",
    "lightslategray",
    "lightslategrey",
    "lightsteelblue",
    "lightyellow",
    "lime",
    "limegreen",
    "linen",
    "magenta",
    "maroon",
    "mediumaquamarine",
    "mediumblue",
    "mediumorchid",
    "mediumpurple",
    "mediumseagreen",
    "mediumslateblue",
    "mediumspringgreen",
    "mediumturquoise",
    "mediumvioletred",
    "midnightblue",
    "mintcream",
    "mistyrose",
    "moccasin",
    "navajowhite",
    "navy",
    "oldlace",
    "olive",
    "olivedrab",
    "orange",
    "orangered",
    "orchid",
    "palegoldenrod",
    "palegreen",
    "paleturquoise",
    "palevioletred",
    "papayawhip",
    "peachpuff",
    "peru",
    "pink",
    "plum",
    "powderblue",
    "purple",
    "rebeccapurple",
    "red",
    "rosybrown",
    "royalblue",
    "saddlebrown",
    "salmon",
    "sandybrown",
    "seagreen",
    "seashell",
    "sienna",
    "silver",
    "skyblue",
    "slateblue",
    "slategray",
    "slategrey",
    "snow",
    "springgreen",
    "steelblue",
    "tan",
    "teal",
    "thistle",
    "tomato",
    "turquoise",
    "violet",
    "wheat",
    "white",
    "whitesmoke",
    "yellow",
    "yellowgreen",
];

fn check_text(field: &str, text: &str, max: usize) -> Result<()> {
    if text.is_empty() || text.len() > max {
        return Err(Error::malformed(format!(
            "{field}: must be 1 to {max} bytes long, is {}",
            text.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn session_ids_are_unique_and_parse_back() {
        let ids: HashSet<_> = (0..1000).map(|_| SessionId::generate()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(10) {
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Some(id));
            assert_eq!(
                uuid::Uuid::parse_str(id.as_str())
                    .unwrap()
                    .get_version_num(),
                4
            );
        }
    }

    #[test]
    fn session_id_parse_refuses_other_forms() {
        let id = SessionId::generate();
        assert!(SessionId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(SessionId::parse(&id.as_str().replace('-', "")).is_none());
        assert!(SessionId::parse("../META").is_none());
        assert!(SessionId::parse("").is_none());
    }

    #[test]
    fn template_keys_are_url_safe() {
        assert!(TemplateKey::parse("welcome-email_v2.~x").is_ok());
        assert!(TemplateKey::parse(&"k".repeat(256)).is_ok());
        for bad in ["", "a/b", "a b", "a%20b", "é", "a#b"] {
            let e = TemplateKey::parse(bad).unwrap_err();
            assert!(e.detail.starts_with("templateKey: "), "{bad}: {}", e.detail);
        }
        assert!(TemplateKey::parse(&"k".repeat(257)).is_err());
    }

    #[test]
    fn a_start_version_is_a_positive_whole_number() {
        use serde_json::json;
        assert_eq!(Version::parse_start(None).unwrap(), Version(1));
        assert_eq!(Version::parse_start(Some(&json!(41))).unwrap(), Version(41));
        for bad in [
            json!(0),
            json!(-3),
            json!(1.5),
            json!("7"),
            json!(null),
            json!(1u64 << 60),
        ] {
            let e = Version::parse_start(Some(&bad)).unwrap_err();
            assert!(e.detail.starts_with("version: "), "{bad}");
        }
    }

    #[test]
    fn user_colors_are_hex_or_named() {
        for ok in [
            "#c0ffee",
            "#FFF",
            "#0008",
            "#11223344",
            "RebeccaPurple",
            "teal",
        ] {
            assert!(check_color("userColor", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "c0ffee",
            "#c0ffe",
            "#ggg",
            "red;background:url(x)",
            "<b>",
            "rgb(1,2,3)",
            "reddish",
        ] {
            let e = check_color("userColor", bad).unwrap_err();
            assert!(
                e.detail.starts_with("userColor: must be a hex color"),
                "{bad}"
            );
        }
        assert!(CSS_NAMED_COLORS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tenant_ids_are_plain() {
        assert!(TenantId::parse("acme-co_1.eu").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a#b").is_err());
        assert!(TenantId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn a_new_session_expires_a_minute_later_unless_joined() {
        let now = Timestamp(1_000_000);
        let opening = Opening {
            tenant: TenantId::parse("t").unwrap(),
            user_id: "u1".into(),
            template: Template::from_canonical_json(r#"{"page":{}}"#.into()),
            version: Version::FIRST,
            template_key: None,
        };
        let new = new_session(opening, now);
        assert_eq!(new.session.snapshot_version, Version(1));
        assert_eq!(new.first_entry.version, Version(1));
        assert!(new.first_entry.diff.is_empty());
        assert!(
            !new.session
                .is_expired(now.plus(Duration::from_millis(59_999)))
        );
        assert!(new.session.is_expired(now.plus(EMPTY_SESSION_LIFETIME)));
    }

    #[test]
    fn presence_ends_fifty_seconds_after_the_last_ping() {
        let seen = Timestamp(10_000);
        let c = Connection {
            id: "c".into(),
            user: User {
                user_id: "u".into(),
                username: "U".into(),
                user_color: "#fff".into(),
                role: Default::default(),
            },
            connected_at: seen,
            last_seen: seen,
        };
        assert!(c.is_present(seen.plus(Duration::from_millis(49_999))));
        assert!(!c.is_present(seen.plus(HEARTBEAT_TIMEOUT)));
    }

    #[test]
    fn history_entry_has_the_seed_shape() {
        let e = HistoryEntry {
            version: Version(1),
            timestamp: "2024-08-28T23:43:24.445Z".into(),
            change_id: "c".into(),
            label: "l".into(),
            kind: "t".into(),
            user_id: "u".into(),
            diff: vec![],
            connection: Some("c".into()),
        };
        let v = serde_json::to_value(&e).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "version",
                "timestamp",
                "changeId",
                "label",
                "type",
                "userId",
                "diff"
            ]
        );
    }
}
