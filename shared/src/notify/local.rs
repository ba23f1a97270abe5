//! The in-process notifier: each open connection is a channel. The local stack's
//! WebSocket server drains the channels into real sockets; tests read them directly.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Delivery, Notifier};
use crate::error::Result;

/// What the server pushes to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Message(String),
    /// The server closed the connection.
    Close,
}

#[derive(Default)]
pub struct LocalConnections {
    open: Mutex<HashMap<String, mpsc::UnboundedSender<Outbound>>>,
}

impl LocalConnections {
    pub fn new() -> Self {
        LocalConnections::default()
    }

    /// Opens a connection; what is pushed to it arrives on the receiver.
    pub fn open(&self, connection_id: &str) -> mpsc::UnboundedReceiver<Outbound> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(connection_id.to_owned(), tx);
        rx
    }

    /// Forgets a connection (its client went away): posts to it answer Gone.
    pub fn forget(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    pub fn is_open(&self, connection_id: &str) -> bool {
        self.lock().contains_key(connection_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Outbound>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Notifier for LocalConnections {
    async fn post(&self, connection_id: &str, message: &str) -> Result<Delivery> {
        let open = self.lock();
        match open.get(connection_id) {
            Some(tx) if tx.send(Outbound::Message(message.to_owned())).is_ok() => {
                Ok(Delivery::Sent)
            }
            _ => Ok(Delivery::Gone),
        }
    }

    async fn close(&self, connection_id: &str) -> Result<Delivery> {
        match self.lock().remove(connection_id) {
            Some(tx) => {
                let _ = tx.send(Outbound::Close);
                Ok(Delivery::Sent)
            }
            None => Ok(Delivery::Gone),
        }
    }
}
