//! The `--functions` mode: the local stack's gateway sends each WebSocket event to
//! the real function binaries under `cargo lambda watch`, which post back through
//! the stack's `@connections` endpoint and share a DynamoDB Local with it.
//!
//! Slow (cargo lambda builds each function on its first event) and it needs
//! cargo-lambda on the PATH, so it is not part of every run:
//!
//!   pip install cargo-lambda
//!   cargo test -p coedit-tests --test functions_mode -- --ignored

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use coedit_local::functions::Remote;
use coedit_tests::stack::{Options, Stack, next_message, open, send};
use serde_json::{Value, json};

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

/// The next message; the first can take minutes (cargo lambda builds on first use).
async fn next(socket: &mut coedit_tests::stack::Socket) -> Value {
    next_message(socket, Duration::from_secs(300))
        .await
        .expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo-lambda; builds the function binaries (minutes)"]
async fn the_real_binaries_serve_the_websocket_api() {
    let dynamodb = coedit_local::DynamoDbLocal::start().await.unwrap();
    let secret = coedit::api_key::generate_api_key().unwrap();
    let invoke_port = free_port();
    let remote = Remote::new(&format!("http://127.0.0.1:{invoke_port}"));
    let stack = Stack::start(Options {
        functions: Some(Arc::new(remote)),
        secret: Some(secret.clone()),
        ..Options::on(Some(&dynamodb.endpoint))
    })
    .await;
    let app = stack.app.clone();

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let _watch = Watch(
        Command::new("cargo")
            .args(["lambda", "watch", "--invoke-port", &invoke_port.to_string()])
            .current_dir(root)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb.endpoint)
            .env("COEDIT_TABLE_NAME", &stack.table)
            .env("COEDIT_JOIN_TOKEN_SECRET", &secret)
            .env(
                "COEDIT_CONNECTIONS_ENDPOINT",
                format!("http://{}/local", stack.ws),
            )
            .env("COEDIT_EVENT_BUS_NAME", "coedit-local")
            .env(
                "AWS_ENDPOINT_URL_EVENTBRIDGE",
                format!("{}/local/eventbridge", stack.routes.base),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("cargo lambda is installed"),
    );

    // The host side in-process (same store), the WebSocket side in the binaries.
    let template = json!({"page": {"rows": [{"uuid": "r", "columns": [{"modules": [
        {"uuid": "m", "descriptor": {"text": {"html": "<p>a</p>"}}}]}]}]}});
    let opening = coedit::session::Opening {
        tenant: coedit::session::TenantId::parse("dev").unwrap(),
        user_id: "host".into(),
        template: coedit::session::Template::prepare(template, "/template").unwrap(),
        version: coedit::session::Version::FIRST,
        template_key: None,
    };
    let new = coedit::session::new_session(opening, app.now());
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
                role: Default::default(),
            },
            max_editors: 20,
            expires_at: app.now().plus(Duration::from_secs(900)),
        };
        coedit::auth::join_token::issue(app.config.signing_secret().unwrap(), &grant, app.now())
            .unwrap()
    };
    let url = |n: usize| format!("ws://{}/local?token={}", stack.ws, token(n));
    let mut ann = open(&url(1)).await.unwrap();
    let mut bob = open(&url(2)).await.unwrap();
    assert_eq!(next(&mut ann).await["change"]["type"], "USER_JOINED");
    let edit = json!({"action": "edit", "changeId": "c1", "baseVersion": 1,
        "patch": [{"op": "replace", "path": "/page/rows/0/columns/0/modules/0/descriptor/text/html", "value": "<p>b</p>"}]});
    send(&mut ann, &edit).await;
    assert_eq!(
        next(&mut ann).await,
        json!({"type": "ack", "changeId": "c1", "version": 2})
    );
    assert_eq!(next(&mut bob).await["historyEntry"]["version"], 2);
    send(&mut bob, &json!({"action": "ping"})).await;
    assert_eq!(next(&mut bob).await, json!({"type": "pong", "version": 2}));
    ann.close(None).await.unwrap();
    assert_eq!(next(&mut bob).await["change"]["type"], "USER_LEFT");
}
