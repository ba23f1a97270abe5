//! One module per function: an event in, a response out. AWS event types stop here;
//! below, everything speaks the domain (`session`, `store`, `notify`).

pub mod connect;
pub mod create_session;
pub mod disconnect;
pub mod edit;
pub mod get_session;
pub mod history;
pub mod http;
pub mod join_session;
pub mod ping;
pub mod post_change;
pub mod sweeper;
pub mod websocket;
