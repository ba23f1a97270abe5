//! Prints the DynamoDB requests and capacity units that create and get use for each
//! fixture template and a synthetic 1.5 MB one, and what connect, ping, disconnect
//! and the sweeper use as sessions fill up, as DynamoDB Local reports them.
//!
//! `COEDIT_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo run --release -p coedit-tests --example capacity`

use coedit::handlers::{create_session, get_session};
use coedit::session::Template;
use coedit::store::snapshot::Snapshot;
use coedit_tests::*;
use serde_json::json;

#[tokio::main]
async fn main() {
    rest().await;
    lifecycle().await;
    host().await;
}

/// What start-or-join and host events add, on a 3 KB template.
async fn host() {
    use coedit_tests::ws::user;
    use std::time::Duration;

    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let show = |what: &str, c: coedit::store::dynamo::Capacity, events: usize| {
        println!(
            "| {what} | {}, {:.1} | {}, {:.1} | {events} |",
            c.read_requests, c.read_units, c.write_requests, c.write_units
        );
    };
    let template = json!({"page": {"rows": [{"uuid": "r1", "columns": [{"modules": [
        {"uuid": "m1", "descriptor": {"text": {"html": "x".repeat(3000)}}}]}]}]}});
    let body = serde_json::to_vec(&json!({"template": template, "userid": "u"})).unwrap();
    let events = || t.events.recent().len();
    println!();
    println!(
        "| operation (3 KB template) | reads: requests, RCU | writes: requests, WCU | host events |"
    );
    println!("|---|---|---|---:|");
    // The API key is looked up (and cached) first, so only each route's own work
    // counts. The POST-created session lives in another table, so that its end
    // does not show in the sweeps below.
    let posting = TestApp::new(TestStore::dynamo().await).await;
    let TestStore::Dynamo(posting_store) = &posting.store else {
        unreachable!()
    };
    for app in [&t, &posting] {
        app.get(&app.api_key, "00000000-0000-4000-8000-000000000000")
            .await;
    }
    let posted = posting_store.meter().clone();
    let before = posted.totals();
    let res = call(
        &posting.app,
        create_session::handle,
        Event::create_session(Some(&posting.api_key), body.clone()),
    )
    .await;
    assert_eq!(res.status, 201);
    show("POST create", posted.totals() - before, 1);
    let (before, sent) = (meter.totals(), events());
    let res = call(
        &t.app,
        create_session::handle,
        Event::start_session(Some(&t.api_key), "k", body.clone()),
    )
    .await;
    assert_eq!(res.status, 201);
    show(
        "PUT start-or-join: starts",
        meter.totals() - before,
        events() - sent,
    );
    let id = res.json()["sessionId"].as_str().unwrap().to_owned();
    let (before, sent) = (meter.totals(), events());
    let res = call(
        &t.app,
        create_session::handle,
        Event::start_session(Some(&t.api_key), "k", body.clone()),
    )
    .await;
    assert_eq!(res.status, 200);
    show(
        "PUT start-or-join: joins the live one",
        meter.totals() - before,
        events() - sent,
    );

    let token = t.join_token(&id, &user(1)).await;
    let (before, sent) = (meter.totals(), events());
    let (_, ann) = t.open(Some(&token)).await;
    let ann = ann.unwrap();
    show(
        "connect (with coedit.user.joined)",
        meter.totals() - before,
        events() - sent,
    );
    let change = json!({"action": "edit", "changeId": "c1", "baseVersion": 1,
        "patch": [{"op": "replace", "path": "/page/rows/0/columns/0/modules/0/descriptor/text/html", "value": "<p>hi</p>"}]});
    let (before, sent) = (meter.totals(), events());
    coedit_tests::ws::send_to(&t.app, &ann.id, &change.to_string()).await;
    show("edit (no event)", meter.totals() - before, events() - sent);
    for _ in 0..2 {
        for _ in 0..2 {
            t.clock.advance(Duration::from_secs(31));
            t.ping(&ann).await;
        }
        let (before, sent) = (meter.totals(), events());
        let report = coedit::handlers::sweeper::run(&t.app).await;
        let what = if report.updated == 1 {
            "sweep: presence check with coedit.session.updated"
        } else {
            "sweep: presence check, nothing new"
        };
        show(what, meter.totals() - before, events() - sent);
    }
    let (before, sent) = (meter.totals(), events());
    t.disconnect(&ann).await;
    show(
        "disconnect (with coedit.user.left)",
        meter.totals() - before,
        events() - sent,
    );
    t.clock.advance(Duration::from_secs(61));
    let (before, sent) = (meter.totals(), events());
    let report = coedit::handlers::sweeper::run(&t.app).await;
    assert_eq!((report.ended, report.erased), (1, 1));
    show(
        "sweep: coedit.session.ended with the template, then erase",
        meter.totals() - before,
        events() - sent,
    );
}

async fn rest() {
    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let mut templates = fixture_templates();
    templates.push(("synthetic-1.5MB".into(), large_template(1_500_000)));

    println!(
        "| template | raw bytes | compressed | parts | create: requests, WCU | get: requests, RCU |"
    );
    println!("|---|---:|---:|---:|---|---|");
    for (name, template) in templates {
        let prepared = Template::prepare(
            template.clone(),
            "/template",
            coedit::patch::Limits::default(),
        )
        .unwrap();
        let snapshot = Snapshot::encode(&prepared).unwrap();
        let body = serde_json::to_vec(&json!({"template": template, "userid": "u"})).unwrap();

        let before = meter.totals();
        let res = call(
            &t.app,
            create_session::handle,
            Event::create_session(Some(&t.api_key), body),
        )
        .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let created = meter.totals() - before;
        let id = res.json()["sessionId"].as_str().unwrap().to_owned();

        let before = meter.totals();
        let res = call(
            &t.app,
            get_session::handle,
            Event::get_session(Some(&t.api_key), &id),
        )
        .await;
        assert_eq!(res.status, 200);
        let read = meter.totals() - before;

        println!(
            "| {name} | {} | {} | {} | {}, {:.1} | {}, {:.1} |",
            prepared.len(),
            snapshot.compressed_len(),
            snapshot.parts.len(),
            created.write_requests + created.read_requests,
            created.write_units,
            read.read_requests + read.write_requests,
            read.read_units,
        );
    }
}

async fn lifecycle() {
    use coedit_tests::ws::user;
    use std::time::Duration;

    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let show = |what: &str, present: usize, c: coedit::store::dynamo::Capacity| {
        println!(
            "| {what} | {present} | {}, {:.1} | {}, {:.1} |",
            c.read_requests, c.read_units, c.write_requests, c.write_units
        );
    };
    println!();
    println!("| operation | users present before | reads: requests, RCU | writes: requests, WCU |");
    println!("|---|---:|---|---|");
    let id = t.create_session().await;
    let mut clients = Vec::new();
    for n in 0..20 {
        let token = t.join_token(&id, &user(n)).await;
        let before = meter.totals();
        let (res, client) = t.open(Some(&token)).await;
        assert_eq!(res.status_code, 200);
        if [0, 1, 9, 19].contains(&n) {
            show("connect", n, meter.totals() - before);
        }
        clients.push(client.unwrap());
    }
    // A fresh instance does not know the connection yet: one lookup more.
    let cold = coedit::App::new(test_config(), store.store(), t.hub.clone(), t.clock.clone());
    let before = meter.totals();
    let ping = r#"{"action":"ping"}"#;
    let event = coedit_tests::ws::ws_event("ping", &clients[0].id, None, Some(ping));
    coedit::handlers::ping::handle(&cold, event).await;
    show("ping (cold instance)", 20, meter.totals() - before);
    let before = meter.totals();
    t.ping(&clients[0]).await;
    show("ping (warm instance)", 20, meter.totals() - before);
    // Editing: a fresh instance builds the template first; then each change is one
    // read of what it missed and one conditional write.
    let editor = coedit::App::new(test_config(), store.store(), t.hub.clone(), t.clock.clone());
    let path = "/page/rows/0/columns/0/modules/0/coeditText";
    for (k, what) in ["edit (cold instance)", "edit (warm instance)"]
        .iter()
        .enumerate()
    {
        let change = json!({"action": "edit", "changeId": format!("c{k}"), "baseVersion": k + 1,
                            "patch": [{"op": "add", "path": path, "value": format!("<p>{}</p>", "text ".repeat(60))}]});
        let before = meter.totals();
        let answer = coedit_tests::ws::send_to(&editor, &clients[0].id, &change.to_string()).await;
        assert_eq!(answer["type"], "ack", "{answer}");
        show(what, 20, meter.totals() - before);
    }
    // The module the edits went to: only rows and modules of the template lock.
    let got = t.get(&t.api_key, &id).await.json();
    let module = got["template"]
        .pointer("/page/rows/0/columns/0/modules/0/uuid")
        .cloned()
        .unwrap();
    for (what, message) in [
        ("lock", json!({"action": "lock", "target": module})),
        ("unlock", json!({"action": "unlock", "target": module})),
        (
            "sync (2 entries)",
            json!({"action": "sync", "sinceVersion": 1}),
        ),
    ] {
        let before = meter.totals();
        coedit_tests::ws::send_to(&editor, &clients[0].id, &message.to_string()).await;
        show(what, 20, meter.totals() - before);
    }
    while clients.len() > 1 {
        let c = clients.pop().unwrap();
        let present = clients.len() + 1;
        let before = meter.totals();
        t.disconnect(&c).await;
        if [20, 10, 2].contains(&present) {
            show("disconnect", present, meter.totals() - before);
        }
    }
    // The last one goes silent: the sweeper drops them, then erases the session.
    t.hub.forget(&clients[0].id);
    t.clock.advance(Duration::from_secs(61));
    let before = meter.totals();
    let report = coedit::handlers::sweeper::run(&t.app).await;
    show(
        &format!("sweep: drop a stale user ({report:?})"),
        1,
        meter.totals() - before,
    );
    t.clock.advance(Duration::from_secs(60));
    let before = meter.totals();
    let report = coedit::handlers::sweeper::run(&t.app).await;
    show(
        &format!("sweep: erase the hackathon session ({report:?})"),
        0,
        meter.totals() - before,
    );

    let big =
        serde_json::to_vec(&json!({"template": large_template(1_500_000), "userid": "u"})).unwrap();
    let res = call(
        &t.app,
        create_session::handle,
        Event::create_session(Some(&t.api_key), big),
    )
    .await;
    assert_eq!(res.status, 201);
    t.clock.advance(Duration::from_secs(60));
    let before = meter.totals();
    let report = coedit::handlers::sweeper::run(&t.app).await;
    show(
        &format!("sweep: erase a 1.5 MB session ({report:?})"),
        0,
        meter.totals() - before,
    );
    let before = meter.totals();
    coedit::handlers::sweeper::run(&t.app).await;
    show(
        "sweep: nothing to do (one index query per shard and kind)",
        0,
        meter.totals() - before,
    );
}
