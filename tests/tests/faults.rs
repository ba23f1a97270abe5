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

use coedit_tests::stack::{Options, Socket, Stack, dynamodb_local, next_message, open, socket_url};
use futures_util::SinkExt;
use hyper::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 5;
const EDITS: usize = 60;

/// Joins and connects, retrying through faults as a browser would; how many
/// retries it took.
async fn connect(stack: &Stack, session: &str, n: usize) -> (Socket, u32) {
    let mut retries = 0;
    loop {
        let (status, joined) = stack.routes.join(session, n).await;
        if status == 200 {
            if let Ok(socket) = open(&socket_url(&joined)).await {
                return (socket, retries);
            }
        } else {
            assert!([503].contains(&status), "join: {status} {joined}");
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn no_change_is_lost_or_doubled_under_faults(dynamodb: Option<&str>) {
    let stack = Arc::new(
        Stack::start(Options {
            faults: true,
            ..Options::on(dynamodb)
        })
        .await,
    );
    let faults = stack.faults.as_ref().unwrap();
    let rows: Vec<Value> = (0..CLIENTS)
        .map(|n| json!({"uuid": format!("row-{n}"), "columns": [{"modules": [{"uuid": format!("m-{n}"), "descriptor": {"text": {"html": ""}}}]}]}))
        .collect();
    let (status, created) = stack
        .routes
        .call(
            Method::POST,
            "/v1/coedit/session",
            json!({"template": {"page": {"rows": rows}}, "userid": "host"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let session = created["sessionId"].as_str().unwrap().to_owned();
    let initial = created["template"].clone();
    faults.store.set(0.10);
    faults.posts.set(0.10);

    let clients = (0..CLIENTS).map(|n| {
        let stack = stack.clone();
        let session = session.clone();
        async move {
            let mut codes: HashMap<u64, usize> = HashMap::new();
            let mut acked: BTreeMap<String, u64> = BTreeMap::new();
            let (mut socket, mut reconnects) = connect(&stack, &session, n).await;
            let mut version = 1u64;
            for k in 0..EDITS {
                let change_id = format!("f{n}-{k}");
                let patch = json!([{"op": "replace", "path": format!("/page/rows/{n}/columns/0/modules/0/descriptor/text/html"), "value": format!("<p>{k}</p>")}]);
                loop {
                    let edit = json!({"action": "edit", "changeId": change_id, "baseVersion": version, "patch": patch});
                    let mut answered = false;
                    if socket.send(Message::text(edit.to_string())).await.is_ok() {
                        while let Some(m) = next_message(&mut socket, Duration::from_secs(2)).await {
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
                        || next_message(&mut socket, Duration::from_millis(500)).await.is_none()
                    {
                        let (s, r) = connect(&stack, &session, n).await;
                        socket = s;
                        reconnects += r + 1;
                    }
                }
                // Now and then the network drops the connection without a goodbye.
                if k % 13 == n {
                    drop(socket);
                    let (s, r) = connect(&stack, &session, n).await;
                    socket = s;
                    reconnects += r + 1;
                }
            }
            let _ = socket.close(None).await;
            (acked, codes, reconnects)
        }
    });
    let results = futures_util::future::join_all(clients).await;
    faults.store.set(0.0);
    faults.posts.set(0.0);

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
        .history(&id, coedit::session::Version(0), usize::MAX, usize::MAX)
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
        .routes
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{session}"),
            Value::Null,
        )
        .await;
    let mut replayed = initial.clone();
    for e in &log[1..] {
        let ops = coedit::patch::parse(&Value::Array(e.diff.clone())).unwrap();
        coedit::patch::apply(&mut replayed, 0, &ops).unwrap();
    }
    assert_eq!(got["template"], replayed);
    for n in 0..CLIENTS {
        assert_eq!(
            got["template"]["page"]["rows"][n]["columns"][0]["modules"][0]["descriptor"]["text"]["html"],
            format!("<p>{}</p>", EDITS - 1)
        );
    }
    let injected = &faults.injected;
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
    no_change_is_lost_or_doubled_under_faults(Some(&dynamodb_local())).await;
}
