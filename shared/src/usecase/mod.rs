//! What the product does, once each, whichever route asks: a change decided,
//! stored, compacted and sent to the others (`change`); locks taken and released
//! (`locks`); joins and departures announced and stale connections dropped
//! (`presence`); sessions opened, by template key or not (`sessions`); what the host is told
//! (`host`). Handlers translate events into these calls and their results back
//! into responses; these call the pure rules (`session`) and the ports (`store`,
//! `notify`) and know nothing of AWS event types.

pub mod change;
pub mod host;
pub mod locks;
pub mod presence;
pub mod sessions;

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::{Code, Error, Result};
use crate::session::{Connection, SessionId, SessionMembers};

/// The session a connection is in, or 5300 when it is not in one any more.
pub async fn session_of(app: &App, connection_id: &str) -> Result<SessionId> {
    app.session_of(connection_id).await?.ok_or_else(|| {
        Error::new(
            Code::ConnectionLost,
            "this connection is not in a session any more; reconnect to rejoin",
        )
    })
}

/// A connection's present self in its session, or 5300 when it is not present.
pub fn present_self<'a>(
    members: &'a SessionMembers,
    connection_id: &str,
    now: Timestamp,
) -> Result<&'a Connection> {
    members
        .connection(connection_id)
        .filter(|c| c.is_present(now))
        .ok_or_else(presence::stale_error)
}
