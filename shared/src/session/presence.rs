//! Presence rules: who counts as present, who is stale, who holds what, and what a
//! departure does to the session. Pure: the store applies these decisions with
//! conditional writes, the handlers announce them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Connection, EMPTY_SESSION_LIFETIME, HEARTBEAT_TIMEOUT, Lock, Role, Session, User};
use crate::clock::Timestamp;

/// A session's head with every connection stored for it (present or stale, until
/// dropped) and its locks: what joining, leaving and pinging decide on.
#[derive(Debug, Clone)]
pub struct SessionMembers {
    pub session: Session,
    pub connections: Vec<Connection>,
    pub locks: Vec<Lock>,
}

impl SessionMembers {
    pub fn connection(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn present(&self, now: Timestamp) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(move |c| c.is_present(now))
    }

    /// Connections that stopped pinging: listed nowhere, to be dropped.
    pub fn stale(&self, now: Timestamp) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(move |c| !c.is_present(now))
    }

    pub fn locks_held_by<'a>(&'a self, connection_id: &'a str) -> impl Iterator<Item = &'a Lock> {
        self.locks
            .iter()
            .filter(move |l| l.connection_id == connection_id)
    }

    /// Present users keyed by connection id: `sessionData.users` of the seed shape.
    pub fn users_by_connection(&self, now: Timestamp) -> BTreeMap<&str, &User> {
        self.present(now)
            .map(|c| (c.id.as_str(), &c.user))
            .collect()
    }
}

/// How long after a join (or its last check) the sweeper looks for stale
/// connections in an occupied session that nobody touches.
pub const PRESENCE_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Why a connection leaves a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It said goodbye (`$disconnect`) or API Gateway reported it gone (410).
    Left,
    /// It stopped pinging. Dropped only if it is still silent when the write lands,
    /// so a ping racing the drop wins.
    Stale,
}

/// The oldest `lastSeen` a connection may have and still be present at `now`.
pub fn presence_cutoff(now: Timestamp) -> Timestamp {
    now.minus(HEARTBEAT_TIMEOUT)
}

/// Gives back a seat of the kind `role` takes: the last one out (editor or
/// viewer) starts the countdown to erasure.
pub fn give_back_seat(session: &mut Session, role: Role, now: Timestamp) {
    match role {
        Role::Editor => session.seats = session.seats.saturating_sub(1),
        Role::Viewer => session.viewers = session.viewers.saturating_sub(1),
    }
    session.expires_at =
        (session.seats == 0 && session.viewers == 0).then(|| now.plus(EMPTY_SESSION_LIFETIME));
}

/// How long after its `$connect` began a connection may answer Gone and still be
/// joining: API Gateway opens a connection only when its `$connect` returns, and
/// posts to it fail until then (functions time out after 10 s). Such a connection
/// is not dropped for being Gone; if it never opens, the heartbeat drops it.
pub const CONNECTING_GRACE: Duration = Duration::from_secs(10);

/// The connections a post found Gone that have left for good: not those that may
/// still be inside their `$connect` (a join racing this one).
pub fn gone_for_good(members: &SessionMembers, gone: Vec<String>, now: Timestamp) -> Vec<String> {
    gone.into_iter()
        .filter(|id| {
            members
                .connection(id)
                .is_none_or(|c| now >= c.connected_at.plus(CONNECTING_GRACE))
        })
        .collect()
}

/// How long a seat may be claimed without its connection stored before it counts
/// as leaked (the join or departure that held it stopped half-way): far longer
/// than any function runs (they time out after 10 s).
pub const SEAT_SETTLE: Duration = Duration::from_secs(30);

/// The claimed seats (connection id, claimed at) that no stored connection holds
/// and that were claimed before `SEAT_SETTLE` ago: the sweeper gives them back.
/// A join in flight has claimed its seat but not stored its connection yet; it is
/// never younger than that.
pub fn leaked_seats<'a>(
    claimed: &'a [(String, Timestamp)],
    connections: &[Connection],
    now: Timestamp,
) -> Vec<&'a (String, Timestamp)> {
    claimed
        .iter()
        .filter(|(id, at)| {
            *at <= now.minus(SEAT_SETTLE) && !connections.iter().any(|c| &c.id == id)
        })
        .collect()
}

/// The most viewers one session takes.
pub const MAX_VIEWERS: u32 = 100;

/// Whether one more connection of `role` fits: an editor under the plan's limit,
/// a viewer under `MAX_VIEWERS`.
pub fn has_free_seat(session: &Session, role: Role, max_editors: u32) -> bool {
    match role {
        Role::Editor => session.seats < max_editors,
        Role::Viewer => session.viewers < MAX_VIEWERS,
    }
}

/// The refusal of a join when every seat of `role` is taken (4029).
pub fn no_free_seat(role: Role, max_editors: u32) -> crate::error::Error {
    let detail = match role {
        Role::Editor => format!("the session has all {max_editors} co-editor seats taken"),
        Role::Viewer => format!("the session has all {MAX_VIEWERS} viewer places taken"),
    };
    crate::error::Error::new(crate::error::Code::LimitReached, detail)
}

/// How many seats of `role` a session has.
pub fn seat_limit(role: Role, max_editors: u32) -> u32 {
    match role {
        Role::Editor => max_editors,
        Role::Viewer => MAX_VIEWERS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_still_joining_is_not_gone_for_good() {
        let joining = Connection {
            connected_at: Timestamp(100_000),
            ..connection("joining", 100_000)
        };
        let members = SessionMembers {
            session: session(2),
            connections: vec![joining, connection("old", 100_000)],
            locks: Vec::new(),
        };
        let gone = vec!["joining".to_owned(), "old".to_owned(), "unknown".to_owned()];
        let now = Timestamp(105_000);
        assert_eq!(
            gone_for_good(&members, gone.clone(), now),
            ["old", "unknown"]
        );
        let later = now.plus(CONNECTING_GRACE);
        assert_eq!(gone_for_good(&members, gone, later).len(), 3);
    }

    #[test]
    fn a_seat_is_leaked_only_without_its_connection_and_once_settled() {
        let now = Timestamp(100_000);
        let claimed = vec![
            ("held".to_owned(), Timestamp(0)),
            ("leaked".to_owned(), Timestamp(0)),
            ("joining".to_owned(), now.minus(Duration::from_secs(5))),
        ];
        let connections = [connection("held", 99_000)];
        let leaked: Vec<&str> = leaked_seats(&claimed, &connections, now)
            .into_iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(leaked, ["leaked"]);
    }
    use crate::session::{SessionId, TenantId, Version};

    fn session(seats: u32) -> Session {
        Session {
            id: SessionId::generate(),
            tenant: TenantId::parse("t").unwrap(),
            template_key: None,
            first_version: Version(1),
            snapshot_version: Version(3),
            created_at: Timestamp(0),
            expires_at: None,
            seats,
            viewers: 0,
            reported: None,
            ended: None,
        }
    }

    fn connection(id: &str, last_seen: i64) -> Connection {
        Connection {
            id: id.into(),
            user: User {
                user_id: format!("user-{id}"),
                username: id.into(),
                user_color: "#000".into(),
                role: Default::default(),
            },
            connected_at: Timestamp(0),
            last_seen: Timestamp(last_seen),
        }
    }

    #[test]
    fn the_last_one_out_starts_the_countdown() {
        let now = Timestamp(100_000);
        let mut s = Session {
            viewers: 1,
            ..session(2)
        };
        give_back_seat(&mut s, Role::Editor, now);
        assert_eq!((s.seats, s.viewers, s.expires_at), (1, 1, None));
        give_back_seat(&mut s, Role::Editor, now);
        assert_eq!((s.seats, s.viewers, s.expires_at), (0, 1, None));
        give_back_seat(&mut s, Role::Viewer, now);
        assert_eq!(
            (s.seats, s.viewers, s.expires_at),
            (0, 0, Some(now.plus(Duration::from_secs(60))))
        );
    }

    #[test]
    fn seats_are_counted_against_the_plan_and_viewers_apart() {
        assert!(has_free_seat(&session(4), Role::Editor, 5));
        assert!(!has_free_seat(&session(5), Role::Editor, 5));
        assert!(!has_free_seat(&session(0), Role::Editor, 0));
        // A full session still takes viewers, up to their own cap.
        assert!(has_free_seat(&session(5), Role::Viewer, 5));
        let watched = Session {
            viewers: MAX_VIEWERS,
            ..session(0)
        };
        assert!(!has_free_seat(&watched, Role::Viewer, 5));
        assert!(has_free_seat(&watched, Role::Editor, 5));
    }

    #[test]
    fn stale_members_are_listed_nowhere() {
        let now = Timestamp(100_000);
        let members = SessionMembers {
            session: session(2),
            connections: vec![
                connection("a", now.millis() - 49_999),
                connection("b", now.millis() - 50_000),
            ],
            locks: vec![Lock {
                element: "row-1".into(),
                connection_id: "b".into(),
                user: connection("b", 0).user,
                since: Timestamp(0),
            }],
        };
        let users = members.users_by_connection(now);
        assert_eq!(users.keys().copied().collect::<Vec<_>>(), ["a"]);
        let stale: Vec<_> = members.stale(now).map(|c| c.id.as_str()).collect();
        assert_eq!(stale, ["b"]);
        assert_eq!(members.locks_held_by("b").count(), 1);
        assert_eq!(members.locks_held_by("a").count(), 0);
        assert_eq!(presence_cutoff(now), Timestamp(50_000));
    }
}
