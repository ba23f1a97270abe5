//! The lock rule, written once: the stores decide lock requests with it and the
//! edit check asks it who keeps a user off an element.
//!
//! One *user* edits a row or a module at a time: a lock keeps every other user off
//! its element, and off the elements it overlaps (a row's modules, a module's row).
//! A user's tabs are one user: the lock does not stop the holder's other tabs, and
//! one of them asking for it takes it over. A lock whose holder is not present is
//! free. A connection holds at most `MAX_LOCKS_PER_CONNECTION`, a session at most
//! `MAX_LOCKS_PER_SESSION`, so reading a session's locks stays cheap.

use super::presence::SessionMembers;
use super::{Lock, User};
use crate::clock::Timestamp;
use crate::error::{Code, Error};
use crate::patch::Lockable;

pub const MAX_LOCKS_PER_CONNECTION: usize = 5;
pub const MAX_LOCKS_PER_SESSION: usize = 200;

/// Whether `lock` keeps `user` off its element: it is another user's, and its
/// holder is present.
pub fn blocks(members: &SessionMembers, lock: &Lock, user: &User, now: Timestamp) -> bool {
    lock.user.user_id != user.user_id
        && members
            .connection(&lock.connection_id)
            .is_some_and(|c| c.is_present(now))
}

/// The lock on `element` that keeps `user` off it, if any.
pub fn blocking<'a>(
    members: &'a SessionMembers,
    element: &str,
    user: &User,
    now: Timestamp,
) -> Option<&'a Lock> {
    members
        .locks
        .iter()
        .find(|l| l.element == element && blocks(members, l, user, now))
}

/// What to do with a lock request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDecision {
    /// Write the lock: over nothing (`replacing: None`, the item must not exist),
    /// or over the lock item as read (`Some(holder connection)`: the requester's
    /// own, its user's other tab, or a holder no longer present).
    Take { replacing: Option<String> },
    /// Another user holds the element or one it overlaps.
    HeldBy(Lock),
    /// Over a limit: refused with this error (4029).
    Refused(Error),
}

/// Decides `request` (a connection asking for `target`) on the members as read.
pub fn decide(
    members: &SessionMembers,
    request: &Lock,
    target: &Lockable,
    now: Timestamp,
) -> LockDecision {
    let overlapping = std::iter::once(&target.id).chain(&target.overlaps);
    for element in overlapping {
        if let Some(held) = blocking(members, element, &request.user, now) {
            return LockDecision::HeldBy(held.clone());
        }
    }
    let existing = members.locks.iter().find(|l| l.element == target.id);
    if let Some(existing) = existing {
        // The requester's own, its user's other tab's, or a departed holder's.
        return LockDecision::Take {
            replacing: Some(existing.connection_id.clone()),
        };
    }
    let held_by_me = members
        .locks
        .iter()
        .filter(|l| l.connection_id == request.connection_id)
        .count();
    if held_by_me >= MAX_LOCKS_PER_CONNECTION {
        return LockDecision::Refused(Error::new(
            Code::LimitReached,
            format!(
                "this connection holds {held_by_me} locks, the most it may hold; unlock one first"
            ),
        ));
    }
    if members.locks.len() >= MAX_LOCKS_PER_SESSION {
        return LockDecision::Refused(Error::new(
            Code::LimitReached,
            format!(
                "the session holds {} locks, the most it may hold",
                members.locks.len()
            ),
        ));
    }
    LockDecision::Take { replacing: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Connection, Session, SessionId, TenantId, Version};

    fn user(n: u32) -> User {
        User {
            user_id: format!("u{n}"),
            username: format!("User {n}"),
            user_color: "#000".into(),
            role: Default::default(),
        }
    }

    fn connection(id: &str, n: u32, last_seen: i64) -> Connection {
        Connection {
            id: id.into(),
            user: user(n),
            connected_at: Timestamp(0),
            last_seen: Timestamp(last_seen),
        }
    }

    fn lock(element: &str, connection: &str, n: u32) -> Lock {
        Lock {
            element: element.into(),
            connection_id: connection.into(),
            user: user(n),
            since: Timestamp(0),
        }
    }

    fn members(locks: Vec<Lock>) -> SessionMembers {
        SessionMembers {
            session: Session {
                id: SessionId::generate(),
                tenant: TenantId::parse("t").unwrap(),
                template_key: None,
                first_version: Version(1),
                snapshot_version: Version(1),
                created_at: Timestamp(0),
                expires_at: None,
                seats: 4,
                viewers: 0,
                reported: None,
                ended: None,
            },
            connections: vec![
                connection("ann-1", 1, 1000),
                connection("ann-2", 1, 1000),
                connection("bob", 2, 1000),
                // Silent since the start: not present at `NOW`.
                connection("gone", 3, 0),
            ],
            locks,
        }
    }

    const NOW: Timestamp = Timestamp(50_500);

    fn row() -> Lockable {
        Lockable {
            id: "r".into(),
            overlaps: vec!["m1".into(), "m2".into()],
        }
    }

    fn module(id: &str) -> Lockable {
        Lockable {
            id: id.into(),
            overlaps: vec!["r".into()],
        }
    }

    #[test]
    fn another_users_lock_blocks_the_element_and_what_it_overlaps() {
        let m = members(vec![lock("m1", "bob", 2)]);
        for target in [module("m1"), row()] {
            assert_eq!(
                decide(&m, &lock(&target.id, "ann-1", 1), &target, NOW),
                LockDecision::HeldBy(lock("m1", "bob", 2)),
                "{target:?}"
            );
        }
        // Another module of the same row is free.
        assert_eq!(
            decide(&m, &lock("m2", "ann-1", 1), &module("m2"), NOW),
            LockDecision::Take { replacing: None }
        );
        let held_row = members(vec![lock("r", "bob", 2)]);
        assert!(matches!(
            decide(&held_row, &lock("m2", "ann-1", 1), &module("m2"), NOW),
            LockDecision::HeldBy(l) if l.element == "r"
        ));
        // The edit check asks the same rule.
        assert!(blocking(&held_row, "r", &user(1), NOW).is_some());
        assert!(blocking(&held_row, "r", &user(2), NOW).is_none());
    }

    #[test]
    fn a_users_tabs_are_one_user_and_a_departed_holder_holds_nothing() {
        let m = members(vec![lock("m1", "ann-1", 1), lock("m2", "gone", 3)]);
        // Ann's second tab takes her lock over; her edits are not blocked by it.
        assert_eq!(
            decide(&m, &lock("m1", "ann-2", 1), &module("m1"), NOW),
            LockDecision::Take {
                replacing: Some("ann-1".into())
            }
        );
        assert!(blocking(&m, "m1", &user(1), NOW).is_none());
        // The same tab asking again keeps it.
        assert_eq!(
            decide(&m, &lock("m1", "ann-1", 1), &module("m1"), NOW),
            LockDecision::Take {
                replacing: Some("ann-1".into())
            }
        );
        // A lock whose holder stopped pinging is free, over the item as read.
        assert_eq!(
            decide(&m, &lock("m2", "bob", 2), &module("m2"), NOW),
            LockDecision::Take {
                replacing: Some("gone".into())
            }
        );
        assert!(blocking(&m, "m2", &user(2), NOW).is_none());
    }

    #[test]
    fn locks_are_limited_per_connection_and_per_session() {
        let mine: Vec<Lock> = (0..MAX_LOCKS_PER_CONNECTION)
            .map(|i| lock(&format!("x{i}"), "ann-1", 1))
            .collect();
        let m = members(mine.clone());
        match decide(&m, &lock("m1", "ann-1", 1), &module("m1"), NOW) {
            LockDecision::Refused(e) => assert_eq!(e.code.number(), 4029),
            other => panic!("{other:?}"),
        }
        // Re-taking one it holds is not a new lock; the other tab has its own budget.
        assert!(matches!(
            decide(&m, &lock("x0", "ann-1", 1), &module("x0"), NOW),
            LockDecision::Take { .. }
        ));
        assert!(matches!(
            decide(&m, &lock("m1", "ann-2", 1), &module("m1"), NOW),
            LockDecision::Take { replacing: None }
        ));
        let full: Vec<Lock> = (0..MAX_LOCKS_PER_SESSION)
            .map(|i| lock(&format!("y{i}"), &format!("c{i}"), 9))
            .collect();
        match decide(&members(full), &lock("m1", "bob", 2), &module("m1"), NOW) {
            LockDecision::Refused(e) => assert_eq!(e.code.number(), 4029),
            other => panic!("{other:?}"),
        }
    }
}
