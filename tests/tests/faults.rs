//! Under faults: 10 % of store calls fail (throttling, 500s, timeouts; half of them
//! after the write went through), 10 % of pushes are dropped or delayed, and
//! clients lose their connections uncleanly now and then. Clients do what the
//! protocol tells them: retry the same changeId on 5xxx, reconnect and resync.
//! Afterwards: no acknowledged change lost, none applied twice, no version skipped
//! or repeated, and the template is the log replayed. On the embedded store and on
//! DynamoDB Local.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use coedit::App;
use coedit::clock::SystemClock;
use coedit::config::{Config, SigningSecret};
use coedit::notify::LocalConnections;
use coedit_local::faults::{FaultyNotifier, FaultyStore, Injected, Rate};
use coedit_local::functions::InProcess;
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

type Socket = WebSocketStream<TcpStream>;

const CLIENTS: usize = 5;
const EDITS: usize = 60;

struct Stack {
    rest: String,
    key: String,
    http: Client<HttpConnector, Full<Bytes>>,
    store_rate: Arc<Rate>,
    post_rate: Arc<Rate>,
    injected: Arc<Injected>,
    app: Arc<App>,
}

async fn start(dynamodb: Option<&str>) -> Stack {
    let table = format!("faults-{}", uuid::Uuid::new_v4().simple());
    let real = coedit_local::open_store(dynamodb, &table).await.unwrap();
    let store_rate = Arc::new(Rate::new(0.0));
    let post_rate = Arc::new(Rate::new(0.0));
    let injected = Arc::new(Injected::default());
    let store = Arc::new(FaultyStore {
        inner: real,
        rate: store_rate.clone(),
        injected: injected.clone(),
    });
    let hub = Arc::new(LocalConnections::new());
    let notifier = Arc::new(FaultyNotifier {
        inner: hub.clone(),
        rate: post_rate.clone(),
        injected: injected.clone(),
    });
    let rest_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        join_token_secret: Some(
            SigningSecret::new(coedit::auth::generate_api_key().unwrap().into_bytes()).unwrap(),
        ),
        websocket_url: Some(format!("ws://{}/local", ws_listener.local_addr().unwrap())),
        ..Config::default()
    };
    let app = Arc::new(App::new(config, store, notifier, Arc::new(SystemClock)));
    let key = coedit::auth::generate_api_key().unwrap();
    coedit_local::register_dev_key(&app, &key, 20)
        .await
        .unwrap();
    let rest = format!("http://{}", rest_listener.local_addr().unwrap());
    tokio::spawn(coedit_local::rest::serve(rest_listener, app.clone(), None));
    let gateway = Gateway::new(Arc::new(InProcess(app.clone())), hub, "local");
    tokio::spawn(coedit_local::gateway::serve(ws_listener, Arc::new(gateway)));
    Stack {
        rest,
        key,
        http: Client::builder(TokioExecutor::new()).build_http(),
        store_rate,
        post_rate,
        injected,
        app,
    }
}

impl Stack {
    async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.rest))
            .header("authorization", format!("Bearer {}", self.key))
            .body(Full::new(Bytes::from(if body.is_null() {
                String::new()
            } else {
                body.to_string()
            })))
            .unwrap();
        let res = self.http.request(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Joins and connects, retrying through faults as a browser would.
    async fn connect(&self, session: &str, n: usize) -> (Socket, u32) {
        let mut retries = 0;
        loop {
            let user = json!({"userId": format!("f{n}"), "username": format!("F{n}"), "userColor": "#000"});
            let (status, joined) = self
                .call(
                    Method::POST,
                    &format!("/v1/coedit/session/{session}/join"),
                    user,
                )
                .await;
            if status == 200 {
                let url = format!(
                    "{}?token={}",
                    joined["url"].as_str().unwrap(),
                    joined["token"].as_str().unwrap()
                );
                let host = url
                    .trim_start_matches("ws://")
                    .split('/')
                    .next()
                    .unwrap()
                    .to_owned();
                let stream = TcpStream::connect(host).await.unwrap();
                if let Ok((socket, _)) = tokio_tungstenite::client_async(url, stream).await {
                    return (socket, retries);
                }
            } else {
                assert!([503].contains(&status), "join: {status} {joined}");
            }
            retries += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn no_change_is_lost_or_doubled_under_faults(dynamodb: Option<&str>) {
    let stack = Arc::new(start(dynamodb).await);
    let rows: Vec<Value> = (0..CLIENTS)
        .map(|n| json!({"uuid": format!("row-{n}"), "columns": [{"modules": [{"uuid": format!("m-{n}"), "descriptor": {"text": {"html": ""}}}]}]}))
        .collect();
    let (status, created) = stack
        .call(
            Method::POST,
            "/v1/coedit/session",
            json!({"template": {"page": {"rows": rows}}, "userid": "host"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let session = created["sessionId"].as_str().unwrap().to_owned();
    let initial = created["template"].clone();
    stack.store_rate.set(0.10);
    stack.post_rate.set(0.10);

    let clients = (0..CLIENTS).map(|n| {
        let stack = stack.clone();
        let session = session.clone();
        async move {
            let mut codes: HashMap<u64, usize> = HashMap::new();
            let mut acked: BTreeMap<String, u64> = BTreeMap::new();
            let (mut socket, mut reconnects) = stack.connect(&session, n).await;
            let mut version = 1u64;
            for k in 0..EDITS {
                let change_id = format!("f{n}-{k}");
                let patch = json!([{"op": "replace", "path": format!("/page/rows/{n}/columns/0/modules/0/descriptor/text/html"), "value": format!("<p>{k}</p>")}]);
                loop {
                    let edit = json!({"action": "edit", "changeId": change_id, "baseVersion": version, "patch": patch});
                    let mut answered = false;
                    if socket.send(Message::text(edit.to_string())).await.is_ok() {
                        while let Some(m) = next(&mut socket, Duration::from_secs(2)).await {
                            match m["type"].as_str() {
                                Some("change") => version = version.max(m["historyEntry"]["version"].as_u64().unwrap_or(0)),
                                Some("ack") if m["changeId"] == change_id.as_str() => {
                                    let v = m["version"].as_u64().unwrap();
                                    assert!(acked.insert(change_id.clone(), v).is_none());
                                    version = version.max(v);
                                    answered = true;
                                    break;
                                }
                                Some("error") if m["changeId"] == change_id.as_str() || m["code"] == 5300 => {
                                    let code = m["code"].as_u64().unwrap();
                                    assert!([5001, 5100, 5200, 5300, 5600].contains(&code), "{m}");
                                    *codes.entry(code).or_default() += 1;
                                    break;
                                }
                                _ => {}
                            }
                        }
                    }
                    if answered {
                        break;
                    }
                    // No answer, a 5xxx, or the connection went: reconnect and resend
                    // the same change (the server applies each changeId once).
                    if socket.send(Message::text(r#"{"action":"ping"}"#)).await.is_err()
                        || next(&mut socket, Duration::from_millis(500)).await.is_none()
                    {
                        let (s, r) = stack.connect(&session, n).await;
                        socket = s;
                        reconnects += r + 1;
                    }
                }
                // Now and then the network drops the connection without a goodbye.
                if k % 13 == n {
                    drop(socket);
                    let (s, r) = stack.connect(&session, n).await;
                    socket = s;
                    reconnects += r + 1;
                }
            }
            let _ = socket.close(None).await;
            (acked, codes, reconnects)
        }
    });
    let results = futures_util::future::join_all(clients).await;
    stack.store_rate.set(0.0);
    stack.post_rate.set(0.0);

    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut codes: HashMap<u64, usize> = HashMap::new();
    let mut reconnects = 0;
    for (a, c, r) in results {
        acked.extend(a);
        for (code, count) in c {
            *codes.entry(code).or_default() += count;
        }
        reconnects += r;
    }
    assert_eq!(
        acked.len(),
        CLIENTS * EDITS,
        "every change was acknowledged"
    );

    let id = coedit::session::SessionId::parse(&session).unwrap();
    let log = stack
        .app
        .store
        .history(&id, coedit::session::Version(0), usize::MAX)
        .await
        .unwrap();
    let versions: Vec<u64> = log.iter().map(|e| e.version.0).collect();
    assert_eq!(
        versions,
        (1..=(CLIENTS * EDITS + 1) as u64).collect::<Vec<_>>(),
        "no version skipped or repeated, no change doubled"
    );
    for e in &log[1..] {
        assert_eq!(
            acked.get(&e.change_id),
            Some(&e.version.0),
            "{} stored at {} but acked otherwise",
            e.change_id,
            e.version
        );
    }
    let (_, got) = stack
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{session}"),
            Value::Null,
        )
        .await;
    let mut replayed = initial.clone();
    for e in &log[1..] {
        let ops = coedit::patch::parse(&Value::Array(e.diff.clone())).unwrap();
        coedit::patch::apply(&mut replayed, &ops).unwrap();
    }
    assert_eq!(got["template"], replayed);
    for n in 0..CLIENTS {
        assert_eq!(
            got["template"]["page"]["rows"][n]["columns"][0]["modules"][0]["descriptor"]["text"]["html"],
            format!("<p>{}</p>", EDITS - 1)
        );
    }
    let injected = &stack.injected;
    let before = injected.before.load(Ordering::Relaxed);
    let after = injected.after.load(Ordering::Relaxed);
    println!(
        "faults: {} store faults ({before} before, {after} after the call), {} posts dropped, {} delayed; \
         clients saw {codes:?}, reconnected {reconnects} times; {} changes, all acknowledged once, versions 2..={}",
        before + after,
        injected.dropped_posts.load(Ordering::Relaxed),
        injected.delayed_posts.load(Ordering::Relaxed),
        CLIENTS * EDITS,
        CLIENTS * EDITS + 1
    );
    assert!(before + after > 50, "faults were injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_under_faults() {
    no_change_is_lost_or_doubled_under_faults(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_local_under_faults() {
    let endpoint = std::env::var("COEDIT_TEST_DYNAMODB_ENDPOINT")
        .expect("COEDIT_TEST_DYNAMODB_ENDPOINT is not set: run the suite with scripts/test");
    no_change_is_lost_or_doubled_under_faults(Some(&endpoint)).await;
}
