//! The `--functions` mode: the local stack's gateway sends each WebSocket event to
//! the real function binaries under `cargo lambda watch`, which post back through
//! the stack's `@connections` endpoint, publish host events to the stack's
//! EventBridge emulation and share a DynamoDB Local with it.
//!
//! Needs cargo-lambda (requirements-ci.txt pins it; `.ci/run` installs it). Without
//! it the test is skipped, except under CI, where it must run. `scripts/test` runs
//! it after the other suites, once the binaries are built as the watcher builds
//! them, so the watcher starts them without compiling. The watcher's output goes to
//! `target/functions-mode-watch.log`. A second test runs the ping binary under a
//! Runtime API of its own and reads its log lines.

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

/// A function binary under a Runtime API of our own (as Lambda runs it): its log
/// lines are JSON, each with the invocation's request id, and it answers the
/// invocation. The ping binary, with a DynamoDB endpoint that refuses connections,
/// logs the failed store call and answers 5600.
#[tokio::test]
async fn a_function_logs_json_lines_with_the_request_id() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let binary = format!("{root}/target/debug/ping");
    if !std::path::Path::new(&binary).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "scripts/test builds the function binaries before this suite"
        );
        eprintln!("skipped: {binary} is not built (cargo build --bin ping)");
        return;
    }
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = free_port();
    let child = tokio::process::Command::new(&binary)
        .env_clear()
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            api.local_addr().unwrap().to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "ping")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env(
            "AWS_ENDPOINT_URL_DYNAMODB",
            format!("http://127.0.0.1:{closed}"),
        )
        .env("COEDIT_TABLE_NAME", "coedit-sessions")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    /// Reads one HTTP request: its head and body.
    async fn request(stream: &mut tokio::net::TcpStream) -> (String, String) {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    return (
                        text[..end].to_owned(),
                        text[end + 4..end + 4 + length].to_owned(),
                    );
                }
            }
        }
    }
    let request_id = "6f7f0a0d-5c1e-4b3a-9d1c-0c0ffee00001";
    let event = json!({
        "requestContext": {"routeKey": "ping", "eventType": "MESSAGE", "connectionId": "abc=",
            "requestId": "r", "apiId": "a", "stage": "v1", "domainName": "x", "messageDirection": "IN",
            "connectedAt": 0, "requestTimeEpoch": 0, "extendedRequestId": "e", "requestTime": "t", "identity": {"sourceIp": "1.2.3.4"}},
        "body": "{\"action\":\"ping\"}",
        "isBase64Encoded": false
    })
    .to_string();
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        // The first call for work gets the event; the next carries the answer.
        let (mut stream, _) = api.accept().await.unwrap();
        let (head, _) = request(&mut stream).await;
        assert!(head.starts_with("GET /2018-06-01/runtime/invocation/next"), "{head}");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {request_id}\r\nlambda-runtime-deadline-ms: {deadline_ms}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:ping\r\nlambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\ncontent-length: {}\r\n\r\n{event}",
            event.len()
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        loop {
            let (head, body) = request(&mut stream).await;
            if head.starts_with(&format!("POST /2018-06-01/runtime/invocation/{request_id}/response")) {
                stream.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                return body;
            }
            assert!(!head.contains("/error"), "the invocation failed: {head} {body}");
        }
    })
    .await
    .expect("the function answered");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["code"], 5600, "{body}");

    let mut child = child;
    let _ = child.start_kill();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let failed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "store call failed")
        .collect();
    assert!(!failed.is_empty(), "{stdout}");
    for line in failed {
        assert_eq!(line["span"]["requestId"], request_id, "{line}");
    }
}
