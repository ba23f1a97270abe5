//! Where sessions live. One trait, two implementations that behave the same: the
//! embedded in-process store (`memory`) and DynamoDB (`dynamo`). The conformance
//! suite in `shared/tests/store_conformance.rs` runs against both.

pub mod dynamo;
pub mod memory;
pub mod snapshot;

use async_trait::async_trait;

use crate::auth::{ApiKeyRecord, KeyHash};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::session::{HistoryEntry, NewSession, SessionId, SessionState, Version};

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Writes a new session, its first history entry and its template, all at once
    /// or not at all. Fails if a session with that id exists.
    async fn create_session(&self, new: &NewSession) -> Result<()>;

    /// The session as it is at `now`: `None` when it does not exist or has expired
    /// (whether or not its data has been erased yet). Lists only present connections.
    async fn read_session(&self, id: &SessionId, now: Timestamp) -> Result<Option<SessionState>>;

    /// History entries newer than `since`, oldest first, at most `limit` of them.
    async fn history(
        &self,
        id: &SessionId,
        since: Version,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>>;

    /// Stores a new API key; fails if that key exists already.
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()>;

    async fn find_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>>;

    /// Removes an API key; `false` when there was none.
    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<bool>;
}
