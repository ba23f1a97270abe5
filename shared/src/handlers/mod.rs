//! One module per function: an event in, a response out. AWS event types stop here;
//! below, everything speaks the domain (`session`, `store`).

pub mod create_session;
pub mod get_session;
pub mod http;
