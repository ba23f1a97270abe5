//! WebSocket side of the tests: API Gateway WebSocket events as API Gateway sends
//! them, and clients that read what the app pushes through the local hub.

use coedit::handlers::websocket::{Incoming, WebSocketEvent, WebSocketResponse};
use coedit::handlers::{connect, disconnect, edit, join_session, ping};
use coedit::notify::local::Outbound;
use coedit::session::User;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Event, TestApp, call};

/// A connection id shaped like API Gateway's (16 characters of base64).
pub fn new_connection_id() -> String {
    use base64::Engine as _;
    let bytes = uuid::Uuid::new_v4().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..11])
}

/// A WebSocket event (`$connect`, `$disconnect` or a message route) as API
/// Gateway sends it.
pub fn ws_event(
    route: &str,
    connection_id: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> WebSocketEvent {
    let query: Vec<(String, String)> = token
        .map(|t| vec![("token".to_owned(), t.to_owned())])
        .unwrap_or_default();
    let headers = [
        (
            "Host".to_owned(),
            "abc123.execute-api.eu-west-1.amazonaws.com".to_owned(),
        ),
        ("Sec-WebSocket-Version".to_owned(), "13".to_owned()),
    ];
    Incoming {
        route,
        connection_id,
        stage: "prod",
        domain: "abc123.execute-api.eu-west-1.amazonaws.com",
        source_ip: "192.0.2.10",
        connected_at: 1_795_428_000_000,
        request_time: 1_795_428_000_000,
        query: &query,
        headers: &headers,
        body,
        close: (route == "$disconnect").then_some((1001, "Going away")),
    }
    .to_event()
    .expect("a valid WebSocket event")
}

pub fn body_json(res: &WebSocketResponse) -> Value {
    match &res.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

pub fn user(n: usize) -> User {
    User {
        user_id: format!("user-{n}"),
        username: format!("User {n}"),
        user_color: format!("#{:06x}", n * 0x1f1f),
        role: Default::default(),
    }
}

/// A browser in a session, as the test sees it.
pub struct Client {
    pub id: String,
    pub user: User,
    inbox: UnboundedReceiver<Outbound>,
    closed: bool,
}

impl Client {
    /// Everything pushed to this client since the last call, as JSON.
    pub fn received(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(m) = self.inbox.try_recv() {
            match m {
                Outbound::Message(text) => out.push(serde_json::from_str(&text).unwrap()),
                Outbound::Close => self.closed = true,
            }
        }
        out
    }

    pub fn was_closed(&mut self) -> bool {
        self.received_into_nothing();
        self.closed
    }

    fn received_into_nothing(&mut self) {
        let pending = self.received();
        assert!(
            pending.is_empty() || self.closed,
            "unread messages: {pending:?}"
        );
    }
}

impl TestApp {
    /// A join token for `user` through `POST /join`, as a host backend gets one.
    pub async fn join_token(&self, session: &str, user: &User) -> String {
        let body = serde_json::to_vec(user).unwrap();
        let res = call(
            &self.app,
            join_session::handle,
            Event::join_session(Some(&self.api_key), session, body),
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.body);
        res.json()["token"].as_str().unwrap().to_owned()
    }

    /// Opens a WebSocket with `token`: `$connect`, then, when accepted, the
    /// connection exists and can be posted to (as with API Gateway).
    pub async fn open(&self, token: Option<&str>) -> (WebSocketResponse, Option<Client>) {
        let id = new_connection_id();
        let res = connect::handle(&self.app, ws_event("$connect", &id, token, None)).await;
        if res.status_code != 200 {
            return (res, None);
        }
        let inbox = self.hub.open(&id);
        let grant = self.app.verify_join_token(token.unwrap()).unwrap();
        let client = Client {
            id,
            user: grant.user,
            inbox,
            closed: false,
        };
        (res, Some(client))
    }

    /// Joins `session` as `user`; panics when refused.
    pub async fn connect(&self, session: &str, user: &User) -> Client {
        let token = self.join_token(session, user).await;
        let (res, client) = self.open(Some(&token)).await;
        assert_eq!(res.status_code, 200, "{:?}", res.body);
        client.unwrap()
    }

    pub async fn disconnect(&self, client: &Client) -> WebSocketResponse {
        self.hub.forget(&client.id);
        disconnect::handle(&self.app, ws_event("$disconnect", &client.id, None, None)).await
    }

    pub async fn ping_raw(&self, connection_id: &str, body: &str) -> WebSocketResponse {
        ping::handle(&self.app, ws_event("ping", connection_id, None, Some(body))).await
    }

    pub async fn ping(&self, client: &Client) -> WebSocketResponse {
        self.ping_raw(&client.id, r#"{"action":"ping"}"#).await
    }
}

/// The route API Gateway selects for a message: its `action`, or `$default`.
pub fn route_of(body: &str) -> String {
    let action = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
    match action.as_deref() {
        Some(a @ ("ping" | "edit" | "lock" | "unlock" | "sync")) => a.to_owned(),
        _ => "$default".to_owned(),
    }
}

/// Sends a message on a connection as API Gateway would route it, to `app`; the
/// route response's body as JSON (`Null` when there is none).
pub async fn send_to(app: &coedit::App, connection_id: &str, body: &str) -> Value {
    let route = route_of(body);
    let event = ws_event(&route, connection_id, None, Some(body));
    let res = if route == "ping" {
        ping::handle(app, event).await
    } else {
        edit::handle(app, event).await
    };
    match &res.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    }
}

impl TestApp {
    /// Sends `body` on `client`'s connection; the route response as JSON.
    pub async fn send(&self, client: &Client, body: &Value) -> Value {
        send_to(&self.app, &client.id, &body.to_string()).await
    }
}
