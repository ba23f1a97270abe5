//! The `--functions` mode: the local stack's gateway sends each WebSocket event to
//! the real function binaries under `cargo lambda watch`, which post back through
//! the stack's `@connections` endpoint and share a DynamoDB Local with it.
//!
//! Slow (cargo lambda builds each function on its first event) and it needs
//! cargo-lambda on the PATH, so it is not part of every run:
//!
//!   pip install cargo-lambda
//!   cargo test -p coedit-local --test functions_mode -- --ignored

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use coedit::App;
use coedit::clock::SystemClock;
use coedit::config::{Config, SigningSecret};
use coedit::notify::LocalConnections;
use coedit_local::functions::Remote;
use coedit_local::gateway::Gateway;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn next(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(300), ws.next())
            .await
            .expect("a message")
            .expect("open")
            .unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo-lambda; builds the function binaries (minutes)"]
async fn the_real_binaries_serve_the_websocket_api() {
    let dynamodb = coedit_local::DynamoDbLocal::start().await.unwrap();
    let table = "functions-mode";
    let store = coedit_local::open_store(Some(&dynamodb.endpoint), table)
        .await
        .unwrap();
    let secret = coedit::auth::generate_api_key().unwrap();
    let ws_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_addr = ws_listener.local_addr().unwrap();
    let invoke_port = free_port();

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let _watch = Watch(
        Command::new("cargo")
            .args(["lambda", "watch", "--invoke-port", &invoke_port.to_string()])
            .current_dir(root)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb.endpoint)
            .env("COEDIT_TABLE_NAME", table)
            .env("COEDIT_JOIN_TOKEN_SECRET", &secret)
            .env(
                "COEDIT_CONNECTIONS_ENDPOINT",
                format!("http://{ws_addr}/local"),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("cargo lambda is installed"),
    );

    let config = Config {
        join_token_secret: Some(SigningSecret::new(secret.into_bytes()).unwrap()),
        websocket_url: Some(format!("ws://{ws_addr}/local")),
        ..Config::default()
    };
    let hub = Arc::new(LocalConnections::new());
    let app = Arc::new(App::new(config, store, hub.clone(), Arc::new(SystemClock)));
    let key = coedit::auth::generate_api_key().unwrap();
    coedit_local::register_dev_key(&app, &key, 20)
        .await
        .unwrap();
    let remote = Remote::new(&format!("http://127.0.0.1:{invoke_port}"));
    tokio::spawn(coedit_local::gateway::serve(
        ws_listener,
        Arc::new(Gateway::new(Arc::new(remote), hub, "local")),
    ));

    // The host side in-process (same store), the WebSocket side in the binaries.
    let template = json!({"page": {"rows": [{"uuid": "r", "columns": [{"modules": [
        {"uuid": "m", "descriptor": {"text": {"html": "<p>a</p>"}}}]}]}]}});
    let new = coedit::session::new_session(
        coedit::session::TenantId::parse("dev").unwrap(),
        "host",
        coedit::session::Template::prepare(template, "/template").unwrap(),
        app.now(),
    );
    app.store.create_session(&new).await.unwrap();
    let id = new.session.id.clone();
    let token = |n: usize| {
        let grant = coedit::auth::JoinGrant {
            tenant: new.session.tenant.clone(),
            session: id.clone(),
            user: coedit::session::User {
                user_id: format!("u{n}"),
                username: format!("U{n}"),
                user_color: "#000".into(),
            },
            max_editors: 20,
            expires_at: app.now().plus(Duration::from_secs(900)),
        };
        coedit::auth::join_token::issue(app.config.signing_secret().unwrap(), &grant, app.now())
            .unwrap()
    };
    let open = |n: usize| {
        let url = format!("ws://{ws_addr}/local?token={}", token(n));
        async move {
            let stream = TcpStream::connect(ws_addr).await.unwrap();
            tokio_tungstenite::client_async(url, stream)
                .await
                .unwrap()
                .0
        }
    };
    let mut ann = open(1).await;
    let mut bob = open(2).await;
    assert_eq!(next(&mut ann).await["change"]["type"], "USER_JOINED");
    let edit = json!({"action": "edit", "changeId": "c1", "baseVersion": 1,
        "patch": [{"op": "replace", "path": "/page/rows/0/columns/0/modules/0/descriptor/text/html", "value": "<p>b</p>"}]});
    ann.send(Message::text(edit.to_string())).await.unwrap();
    assert_eq!(
        next(&mut ann).await,
        json!({"type": "ack", "changeId": "c1", "version": 2})
    );
    assert_eq!(next(&mut bob).await["historyEntry"]["version"], 2);
    bob.send(Message::text(r#"{"action":"ping"}"#))
        .await
        .unwrap();
    assert_eq!(next(&mut bob).await, json!({"type": "pong", "version": 2}));
    ann.close(None).await.unwrap();
    assert_eq!(next(&mut bob).await["change"]["type"], "USER_LEFT");
}
