//! The local stack over real sockets, as the end-to-end suites and the load
//! generator use it: start one in this process (or reach one by its URLs), call a
//! REST route, open a WebSocket, read the next message (of a type).

use std::sync::Arc;
use std::time::Duration;

use coedit::App;
use coedit::api_key::generate_api_key;
use coedit::clock::{Clock, ManualClock, SystemClock};
use coedit::config::{Config, SigningSecret};
use coedit::notify::{LocalConnections, Notifier};
use coedit::store::SessionStore;
use coedit_local::events::LocalEvents;
use coedit_local::faults::{FaultyNotifier, FaultyStore, Injected, Rate};
use coedit_local::functions::{Functions, InProcess};
use coedit_local::gateway::Gateway;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub type Socket = WebSocketStream<TcpStream>;

/// How to start a stack in this process.
pub struct Options {
    /// A DynamoDB endpoint (a fresh table on it), else the embedded store.
    pub dynamodb: Option<String>,
    /// A clock the test moves, else the system's.
    pub clock: Option<Arc<ManualClock>>,
    /// The gateway's idle timeout, else API Gateway's 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// Wrap the store and the notifier in the fault injectors (rates start at 0).
    pub faults: bool,
    /// The WebSocket routes' functions, given the app, else the handlers in-process.
    pub functions: Option<Arc<dyn Functions>>,
    /// The join token secret, else a random one.
    pub secret: Option<String>,
}

impl Options {
    pub fn embedded() -> Options {
        Options {
            dynamodb: None,
            clock: None,
            idle_timeout: None,
            faults: false,
            functions: None,
            secret: None,
        }
    }

    /// On the embedded store, or on `endpoint` when given.
    pub fn on(dynamodb: Option<&str>) -> Options {
        Options {
            dynamodb: dynamodb.map(str::to_owned),
            ..Options::embedded()
        }
    }
}

/// The DynamoDB Local endpoint the test command started.
pub fn dynamodb_local() -> String {
    std::env::var(crate::DYNAMODB_ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!(
            "{} is not set: run the suite with scripts/test, which starts DynamoDB Local",
            crate::DYNAMODB_ENDPOINT_VAR
        )
    })
}

/// The fault injectors of a stack started with `faults: true`.
pub struct Faults {
    pub store: Arc<Rate>,
    pub posts: Arc<Rate>,
    pub injected: Arc<Injected>,
}

/// A local stack running in this process.
pub struct Stack {
    pub routes: Routes,
    /// The table, when on DynamoDB.
    pub table: String,
    /// `host:port` of the WebSocket API.
    pub ws: String,
    pub app: Arc<App>,
    /// The host events the stack published (also at `GET /local/events`).
    pub events: Arc<LocalEvents>,
    pub clock: Option<Arc<ManualClock>>,
    pub faults: Option<Faults>,
}

impl Stack {
    pub async fn start(options: Options) -> Stack {
        let table = format!("stack-{}", uuid::Uuid::new_v4().simple());
        let real = coedit_local::open_store(options.dynamodb.as_deref(), &table)
            .await
            .unwrap();
        let hub = Arc::new(LocalConnections::new());
        let (store, notifier, faults): (Arc<dyn SessionStore>, Arc<dyn Notifier>, _) =
            if options.faults {
                let faults = Faults {
                    store: Arc::new(Rate::new(0.0)),
                    posts: Arc::new(Rate::new(0.0)),
                    injected: Arc::new(Injected::default()),
                };
                let store = Arc::new(FaultyStore::new(
                    real,
                    faults.store.clone(),
                    faults.injected.clone(),
                ));
                let notifier = Arc::new(FaultyNotifier {
                    inner: hub.clone(),
                    rate: faults.posts.clone(),
                    injected: faults.injected.clone(),
                });
                (store, notifier, Some(faults))
            } else {
                (real, hub.clone(), None)
            };
        let rest_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws = ws_listener.local_addr().unwrap().to_string();
        let secret = match options.secret {
            Some(secret) => secret,
            None => generate_api_key().unwrap(),
        };
        let config = Config {
            join_token_secret: Some(SigningSecret::new(secret.into_bytes()).unwrap()),
            websocket_url: Some(format!("ws://{ws}/local")),
            ..Config::default()
        };
        let clock: Arc<dyn Clock> = match &options.clock {
            Some(manual) => manual.clone(),
            None => Arc::new(SystemClock),
        };
        let events = Arc::new(LocalEvents::new(false));
        let app = Arc::new(App::new(config, store, notifier, clock).with_events(events.clone()));
        let key = generate_api_key().unwrap();
        coedit_local::register_dev_key(&app, &key, 20)
            .await
            .unwrap();
        let rest = format!("http://{}", rest_listener.local_addr().unwrap());
        tokio::spawn(coedit_local::rest::serve(
            rest_listener,
            app.clone(),
            None,
            Some(events.clone()),
        ));
        let functions = options
            .functions
            .unwrap_or_else(|| Arc::new(InProcess(app.clone())));
        let mut gateway = Gateway::new(functions, hub, "local");
        if let Some(idle) = options.idle_timeout {
            gateway.idle_timeout = idle;
        }
        tokio::spawn(coedit_local::gateway::serve(ws_listener, Arc::new(gateway)));
        Stack {
            routes: Routes::new(&rest, &key),
            table,
            ws,
            app,
            events,
            clock: options.clock,
            faults,
        }
    }

    /// Joins as user `n` and opens the WebSocket; panics when refused.
    pub async fn connect(&self, session: &str, n: usize) -> Socket {
        let joined = self.routes.join(session, n).await;
        assert_eq!(joined.0, 200, "join: {}", joined.1);
        open(&socket_url(&joined.1)).await.unwrap()
    }
}

/// A stack's REST API, reached over HTTP with its API key.
#[derive(Clone)]
pub struct Routes {
    pub base: String,
    pub key: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Routes {
    pub fn new(base: &str, key: &str) -> Routes {
        Routes {
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Calls a route with the API key and a JSON body (none when `Null`): the
    /// status and the JSON answer (`Null` when it is not JSON).
    pub async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.send(method, path, body, Some(&self.key)).await
    }

    /// Calls a route with any body and credential.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        credential: Option<&str>,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(credential) = credential {
            req = req.header("authorization", format!("Bearer {credential}"));
        }
        let res = self
            .http
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Creates a session of `template`: its id and the template as stored.
    pub async fn create(&self, template: &Value) -> (String, Value) {
        let (status, created) = self
            .call(
                Method::POST,
                "/v1/coedit/session",
                json!({"template": template, "userid": "host"}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        (
            created["sessionId"].as_str().unwrap().to_owned(),
            created["template"].clone(),
        )
    }

    /// Asks for a join token for user `n` (`u<n>`, "User <n>"): status and answer.
    pub async fn join(&self, session: &str, n: usize) -> (u16, Value) {
        let user = json!({"userId": format!("u{n}"), "username": format!("User {n}"), "userColor": "#3366ff"});
        self.call(
            Method::POST,
            &format!("/v1/coedit/session/{session}/join"),
            user,
        )
        .await
    }
}

/// The WebSocket URL a join answer points to, with its token.
pub fn socket_url(joined: &Value) -> String {
    format!(
        "{}?token={}",
        joined["url"].as_str().unwrap(),
        joined["token"].as_str().unwrap()
    )
}

/// Opens a WebSocket (`ws://host:port/stage?...`); the HTTP status when refused.
pub async fn open(url: &str) -> Result<Socket, u16> {
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let stream = TcpStream::connect(host).await.map_err(|_| 0u16)?;
    stream.set_nodelay(true).map_err(|_| 0u16)?;
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(_) => Err(0),
    }
}

/// The next message within `wait`: its JSON, or `{"closed": code}` when the server
/// closed the connection; `None` when nothing came or the socket broke.
pub async fn next_message(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(f)))) => {
                return Some(json!({"closed": f.map(|f| u16::from(f.code))}));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
        }
    }
}

/// The next message whose `type` is `kind` within `wait`, skipping others.
pub async fn next_of_type(socket: &mut Socket, kind: &str, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next_message(socket, left).await?;
        if message["type"] == kind {
            return Some(message);
        }
    }
}

/// The next message, which must come within 5 s.
pub async fn next(socket: &mut Socket) -> Value {
    next_message(socket, Duration::from_secs(5))
        .await
        .expect("a message within 5 s")
}

pub async fn send(socket: &mut Socket, message: &Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// Sends a message and reads the route response.
pub async fn ask(socket: &mut Socket, message: &Value) -> Value {
    send(socket, message).await;
    next(socket).await
}
