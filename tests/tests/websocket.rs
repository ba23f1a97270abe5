//! The local stack's WebSocket API over real sockets (tokio-tungstenite clients):
//! the whole seed flow, and the places where it must behave like API Gateway.

use std::sync::Arc;
use std::time::Duration;

use coedit::clock::ManualClock;
use coedit_tests::stack::{Options, Routes, Stack, ask, next, next_of_type, open, send};
use futures_util::SinkExt;
use hyper::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn start() -> Stack {
    start_with_idle_timeout(coedit_local::gateway::IDLE_TIMEOUT).await
}

async fn start_with_idle_timeout(idle: Duration) -> Stack {
    Stack::start(Options {
        clock: Some(Arc::new(ManualClock::starting_now())),
        idle_timeout: Some(idle),
        ..Options::embedded()
    })
    .await
}

/// A session of two rows with a text module each.
async fn create(stack: &Stack) -> (String, Value) {
    let template = json!({"page": {"rows": [
        {"uuid": "row-a", "columns": [{"modules": [{"uuid": "mod-a", "type": "text", "descriptor": {"text": {"html": "<p>Hello</p>"}}}]}]},
        {"uuid": "row-b", "columns": [{"modules": [{"uuid": "mod-b", "type": "text", "descriptor": {"text": {"html": "<p>World</p>"}}}]}]}
    ]}});
    stack.routes.create(&template).await
}

/// Moves the stack's clock.
fn advance(stack: &Stack, by: Duration) {
    stack.clock.as_ref().unwrap().advance(by);
}

fn change_type(m: &Value) -> &str {
    m["change"]["type"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_flow_over_real_websockets() {
    let stack = start().await;
    let (id, template) = create(&stack).await;
    assert_eq!(template["page"]["rows"][0]["uuid"], "row-a");

    // Three users join; those already in hear each arrival with everyone present.
    let mut ann = stack.connect(&id, 1).await;
    let mut bob = stack.connect(&id, 2).await;
    let joined = next(&mut ann).await;
    assert_eq!(change_type(&joined), "USER_JOINED");
    assert_eq!(joined["change"]["value"]["userId"], "u2");
    assert_eq!(joined["sessionData"]["users"].as_object().unwrap().len(), 2);
    let mut cid = stack.connect(&id, 3).await;
    for s in [&mut ann, &mut bob] {
        let m = next(s).await;
        assert_eq!(
            (change_type(&m), m["change"]["value"]["userId"].as_str()),
            ("USER_JOINED", Some("u3"))
        );
        assert_eq!(m["sessionData"]["users"].as_object().unwrap().len(), 3);
    }
    let (_, got) = stack
        .routes
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(got["users"].as_object().unwrap().len(), 3);

    // Ann locks a module: the others see it locked in her color.
    let lock = ask(&mut ann, &json!({"action": "lock", "target": "mod-a"})).await;
    assert_eq!(
        lock,
        json!({"type": "lock", "target": "mod-a", "granted": true})
    );
    for s in [&mut bob, &mut cid] {
        let m = next(s).await;
        assert_eq!(
            (change_type(&m), m["change"]["target"].as_str()),
            ("LOCKED", Some("mod-a"))
        );
        assert_eq!(m["change"]["value"]["userColor"], "#3366ff");
    }
    let taken = ask(&mut bob, &json!({"action": "lock", "target": "mod-a"})).await;
    assert_eq!(taken["granted"], false);
    assert_eq!(taken["heldBy"]["userId"], "u1");

    // Bob cannot change it; Ann can, and everyone else gets her change.
    let path = "/page/rows/0/columns/0/modules/0/descriptor/text/html";
    let edit = |id: &str, value: &str| {
        json!({"action": "edit", "changeId": id, "baseVersion": 1,
        "patch": [{"op": "replace", "path": path, "value": value}], "label": "Text", "type": "text"})
    };
    let refused = ask(&mut bob, &edit("b1", "<p>Bob</p>")).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_u64()),
        (Some("error"), Some(4023))
    );
    let ack = ask(&mut ann, &edit("a1", "<p>Hello, team</p>")).await;
    assert_eq!(ack, json!({"type": "ack", "changeId": "a1", "version": 2}));
    for s in [&mut bob, &mut cid] {
        let m = next(s).await;
        assert_eq!(m["type"], "change");
        assert_eq!(m["historyEntry"]["version"], 2);
        assert_eq!(m["historyEntry"]["diff"][0]["value"], "<p>Hello, team</p>");
    }

    // She lets go; a heartbeat says version 2.
    send(&mut ann, &json!({"action": "unlock", "target": "mod-a"})).await;
    for s in [&mut bob, &mut cid] {
        assert_eq!(change_type(&next(s).await), "UNLOCKED");
    }
    assert_eq!(
        ask(&mut bob, &json!({"action": "ping"})).await,
        json!({"type": "pong", "version": 2})
    );
    let synced = ask(&mut cid, &json!({"action": "sync", "sinceVersion": 1})).await;
    assert_eq!(synced["entries"][0]["changeId"], "a1");

    // Cid leaves: the others hear it through $disconnect.
    cid.close(None).await.unwrap();
    for s in [&mut ann, &mut bob] {
        let m = next(s).await;
        assert_eq!(
            (change_type(&m), m["change"]["value"]["userId"].as_str()),
            ("USER_LEFT", Some("u3"))
        );
    }
    ann.close(None).await.unwrap();
    assert_eq!(change_type(&next(&mut bob).await), "USER_LEFT");
    bob.close(None).await.unwrap();
    // Give $disconnect of the last one time to land.
    let session_url = format!("/v1/coedit/session/{id}");
    for _ in 0..100 {
        let (_, got) = stack
            .routes
            .call(Method::GET, &session_url, Value::Null)
            .await;
        if got["users"].as_object().is_some_and(|u| u.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, got) = stack
        .routes
        .call(Method::GET, &session_url, Value::Null)
        .await;
    assert_eq!((status, got["version"].as_u64()), (200, Some(2)));

    // Sixty seconds after the last one left, the sweeper erases it.
    advance(&stack, Duration::from_secs(59));
    assert_eq!(coedit::handlers::sweeper::run(&stack.app).await.erased, 0);
    advance(&stack, Duration::from_secs(1));
    assert_eq!(coedit::handlers::sweeper::run(&stack.app).await.erased, 1);
    let (status, gone) = stack
        .routes
        .call(Method::GET, &session_url, Value::Null)
        .await;
    assert_eq!((status, gone["code"].as_u64()), (404, Some(5150)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_behaves_like_api_gateway() {
    let stack = start().await;
    let (id, _) = create(&stack).await;
    let (_, joined) = stack.routes.join(&id, 1).await;
    let url = joined["url"].as_str().unwrap().to_owned();

    // $connect refusals answer the handshake with the function's status.
    assert_eq!(open(&url).await.err(), Some(401));
    assert_eq!(open(&format!("{url}?token=forged")).await.err(), Some(401));
    let wrong_stage = url.replace("/local", "/prod");
    assert_eq!(
        open(&format!("{wrong_stage}?token=x")).await.err(),
        Some(404)
    );

    let mut ann = stack.connect(&id, 1).await;
    let mut bob = stack.connect(&id, 2).await;
    let ann_joined = next(&mut ann).await;
    let bob_id = ann_joined["sessionData"]["users"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, u)| u["userId"] == "u2")
        .map(|(k, _)| k.clone())
        .unwrap();

    // The management endpoint on the same host posts to a connection...
    let connections = Routes::new(&format!("http://{}/local/@connections/", stack.ws), "");
    let encoded = bob_id
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let (status, _) = connections
        .call(Method::POST, &format!("/{encoded}"), json!({"hello": 1}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(next(&mut bob).await, json!({"hello": 1}));
    let (status, _) = connections
        .call(Method::GET, &format!("/{encoded}"), Value::Null)
        .await;
    assert_eq!(status, 200);

    // A message over 128 KB closes the connection with 1009, and $disconnect runs.
    let big = json!({"action": "edit", "x": "y".repeat(130 * 1024)});
    bob.send(Message::text(big.to_string())).await.unwrap();
    assert_eq!(next(&mut bob).await, json!({"closed": 1009}));
    let left = next(&mut ann).await;
    assert_eq!(
        (
            change_type(&left),
            left["change"]["value"]["userId"].as_str()
        ),
        ("USER_LEFT", Some("u2"))
    );
    // ...and answers 410 once it is gone.
    let (status, _) = connections
        .call(Method::POST, &format!("/{encoded}"), json!({}))
        .await;
    assert_eq!(status, 410);

    // An unclean close (the TCP connection drops without a close frame) also runs
    // $disconnect.
    let cid = stack.connect(&id, 3).await;
    assert_eq!(change_type(&next(&mut ann).await), "USER_JOINED");
    drop(cid);
    let left = next(&mut ann).await;
    assert_eq!(
        (
            change_type(&left),
            left["change"]["value"]["userId"].as_str()
        ),
        ("USER_LEFT", Some("u3"))
    );

    // Unknown actions go to $default, which says what is wrong.
    let answer = ask(&mut ann, &json!({"action": "dance"})).await;
    assert_eq!(answer["code"], 4000);
    assert!(answer["detail"].as_str().unwrap().contains("dance"));
    let answer = ask(&mut ann, &json!(["not", "an", "object"])).await;
    assert_eq!(answer["code"], 4000);

    // DELETE @connections closes the socket from the server side.
    let mut dan = stack.connect(&id, 4).await;
    let m = next(&mut ann).await;
    let dan_id = m["sessionData"]["users"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, u)| u["userId"] == "u4")
        .map(|(k, _)| k.clone())
        .unwrap();
    let encoded = dan_id
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let (status, _) = connections
        .call(Method::DELETE, &format!("/{encoded}"), Value::Null)
        .await;
    assert_eq!(status, 204);
    assert_eq!(next(&mut dan).await, json!({"closed": 1000}));
    assert_eq!(change_type(&next(&mut ann).await), "USER_LEFT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_like_api_gateway_does() {
    // API Gateway's is 10 minutes; shortened here, the same code path.
    let stack = start_with_idle_timeout(Duration::from_millis(700)).await;
    let (id, _) = create(&stack).await;
    let mut ann = stack.connect(&id, 1).await;
    let mut bob = stack.connect(&id, 2).await;
    assert_eq!(change_type(&next(&mut ann).await), "USER_JOINED");
    // Ann keeps talking; Bob says nothing and is closed with 1001, then announced gone.
    let mut heard = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&mut ann, &json!({"action": "ping"})).await;
        loop {
            let m = next(&mut ann).await;
            if m["type"] == "pong" {
                break;
            }
            heard.push(m);
        }
    }
    assert_eq!(next(&mut bob).await, json!({"closed": 1001}));
    if heard.is_empty() {
        heard.push(next(&mut ann).await);
    }
    assert_eq!(heard.len(), 1, "{heard:?}");
    let left = &heard[0];
    assert_eq!(
        (
            change_type(left),
            left["change"]["value"]["userId"].as_str()
        ),
        ("USER_LEFT", Some("u2"))
    );
}

/// A connection gets 50 messages at once and 20 a second after (on a clock that
/// stands still here: 50 in all); further messages are answered 4029 with their
/// `changeId`, and one that keeps sending (100 refusals within 10 s) is closed.
/// Another connection of the session is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_its_message_budget_is_refused_then_closed() {
    let stack = start().await;
    let (id, _) = create(&stack).await;
    let mut ann = stack.connect(&id, 1).await;
    let mut bob = stack.connect(&id, 2).await;
    let _ = next(&mut ann).await; // Bob joined.
    let sync = json!({"action": "sync", "sinceVersion": 1});
    for _ in 0..50 {
        assert_eq!(ask(&mut ann, &sync).await["type"], "changes");
    }
    let edit = json!({"action": "edit", "changeId": "over", "baseVersion": 1,
        "patch": [{"op": "add", "path": "/page/x", "value": 1}]});
    let refused = ask(&mut ann, &edit).await;
    assert_eq!(
        (refused["code"].as_u64(), refused["changeId"].as_str()),
        (Some(4029), Some("over")),
        "{refused}"
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .starts_with("rate limited")
    );
    // Nothing was stored.
    let (_, got) = stack
        .routes
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(got["version"], 1);
    // Bob's budget is his own.
    assert_eq!(ask(&mut bob, &sync).await["type"], "changes");

    // 99 more refusals, then the 101st closes the connection with 5300.
    for _ in 0..99 {
        assert_eq!(ask(&mut ann, &sync).await["code"], 4029);
    }
    send(&mut ann, &sync).await;
    let told = next(&mut ann).await;
    assert_eq!(told["code"], 5300, "{told}");
    assert!(
        told["detail"]
            .as_str()
            .unwrap()
            .contains("over the rate limit")
    );
    let closed = next(&mut ann).await;
    assert!(closed.get("closed").is_some(), "{closed}");
    // Bob hears Ann left.
    let left = next_of_type(&mut bob, "sessionChange", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(change_type(&left), "USER_LEFT");

    // Time refills the budget of a connection that slowed down.
    advance(&stack, Duration::from_secs(3));
    for _ in 0..50 {
        assert_eq!(ask(&mut bob, &sync).await["type"], "changes");
    }
}
