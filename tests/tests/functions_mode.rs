//! The `--functions` mode: the local stack's gateway sends each WebSocket event to
//! the real function binaries under `cargo lambda watch`, which post back through
//! the stack's `@connections` endpoint, publish host events to the stack's
//! EventBridge emulation and share a DynamoDB Local with it.
//!
//! Needs cargo-lambda (requirements-ci.txt pins it; `.ci/run` installs it). Without
//! it the test is skipped, except under CI, where it must run. `scripts/test` runs
//! it after the other suites, once the binaries are built as the watcher builds
//! them, so the watcher starts them without compiling. The watcher's output goes to
//! `target/functions-mode-watch.log`.

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

/// Whether `cargo lambda` runs here.
fn cargo_lambda_installed() -> bool {
    Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binaries_serve_the_websocket_api() {
    if !cargo_lambda_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo-lambda is required in CI (requirements-ci.txt)"
        );
        eprintln!("skipped: cargo-lambda is not installed (pip install -r requirements-ci.txt)");
        return;
    }
    let dynamodb = coedit_local::DynamoDbLocal::start().await.unwrap();
    let secret = coedit::api_key::generate_api_key().unwrap();
    let invoke_port = free_port();
    let remote = Remote::new(&format!("http://127.0.0.1:{invoke_port}"));
    let stack = Stack::start(Options {
        functions: Some(Arc::new(remote.clone())),
        secret: Some(secret.clone()),
        ..Options::on(Some(&dynamodb.endpoint))
    })
    .await;
    let app = stack.app.clone();

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let log = std::fs::File::create(format!("{root}/target/functions-mode-watch.log")).unwrap();
    // Without the variables `cargo test` sets for this test (CARGO_MANIFEST_DIR,
    // CARGO_PKG_NAME, ...): build scripts such as ring's rerun when those differ,
    // and the watcher's `cargo run` would rebuild what scripts/test prebuilt, as
    // it never does from a developer's shell.
    let mut watch = Command::new("cargo");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if (name.starts_with("CARGO_") && name != "CARGO_HOME") || name == "OUT_DIR" {
            watch.env_remove(name);
        }
    }
    let _watch = Watch(
        watch
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
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cargo lambda is installed"),
    );

    // As the local stack does before it says it is ready: every function answers
    // before the session is created (it would expire during a long first build).
    let waited = remote
        .warm_up(Duration::from_secs(1800), |name, after| {
            eprintln!("{name} answered after {} s", after.as_secs());
        })
        .await
        .unwrap();
    eprintln!(
        "the function binaries answered after {} s",
        waited.as_secs()
    );

    // The host side in-process (same store), the WebSocket side in the binaries.
    let template = json!({"page": {"rows": [{"uuid": "r", "columns": [{"modules": [
        {"uuid": "m", "descriptor": {"text": {"html": "<p>a</p>"}}}]}]}]}});
    let opening = coedit::session::Opening {
        tenant: coedit::session::TenantId::parse("dev").unwrap(),
        user_id: "host".into(),
        template: coedit::session::Template::prepare(
            template,
            "/template",
            coedit::patch::Limits::default(),
        )
        .unwrap(),
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
    send(&mut ann, &json!({"action": "lock", "target": "m"})).await;
    assert_eq!(
        next(&mut ann).await,
        json!({"type": "lock", "target": "m", "granted": true})
    );
    let locked = next(&mut bob).await;
    assert_eq!(locked["change"]["type"], "LOCKED", "{locked}");
    assert_eq!(locked["change"]["target"], "m");
    ann.close(None).await.unwrap();
    let mut after: Vec<Value> = vec![next(&mut bob).await, next(&mut bob).await];
    after.sort_by_key(|m| m["change"]["type"].as_str().unwrap_or_default().to_owned());
    assert_eq!(after[0]["change"]["type"], "UNLOCKED", "{after:?}");
    assert_eq!(after[1]["change"]["type"], "USER_LEFT", "{after:?}");

    // The binaries published host events through the AWS SDK to the stack.
    let kinds: Vec<String> = stack
        .events
        .recent()
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "coedit.user.joined",
            "coedit.user.joined",
            "coedit.user.left"
        ]
    );
}
