//! What a host backend relies on: one session per template key (start or join,
//! however many race), versions that continue from the host's, and host events
//! for a session's whole life, the final template included, before anything is
//! erased. Both stores.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use coedit::App;
use coedit::api_key::Plan;
use coedit::handlers::{create_session, get_session, sweeper};
use coedit::session::{Role, SessionId, TemplateKey, TenantId, User};
use coedit_local::faults::FailingEvents;
use coedit_tests::*;
use serde_json::{Value, json};

both_stores!(
    twenty_concurrent_starts_make_one_session,
    a_live_session_is_joined_with_its_version_users_and_seats,
    tenants_keep_their_keys_apart,
    an_expired_session_hands_its_key_and_its_last_changes_on,
    a_session_numbers_on_from_the_hosts_version,
    bad_keys_and_versions_are_refused_with_the_field_named,
    events_tell_a_small_sessions_whole_life,
    a_large_final_template_is_kept_for_the_host,
    a_failing_publisher_delays_erasure_until_it_succeeds,
    a_viewer_watches_but_never_changes_anything,
    viewers_take_no_seat_and_stop_at_one_hundred,
);

fn opening(template: &Value, version: Option<u64>) -> Vec<u8> {
    let mut body = json!({"template": template, "userid": "host"});
    if let Some(v) = version {
        body["version"] = v.into();
    }
    body.to_string().into_bytes()
}

async fn start(t: &TestApp, key: &str, template: &Value, version: Option<u64>) -> Answer {
    start_as(t, &t.api_key, key, template, version).await
}

async fn start_as(
    t: &TestApp,
    api_key: &str,
    key: &str,
    template: &Value,
    version: Option<u64>,
) -> Answer {
    call(
        &t.app,
        create_session::handle,
        Event::start_session(Some(api_key), key, opening(template, version)),
    )
    .await
}

/// A 3 KB template: one text module to edit, and filler.
fn small_template() -> Value {
    let module = |uuid: &str, html: String| {
        json!({"uuid": uuid, "type": "mailup-bee-newsletter-modules-text",
               "descriptor": {"text": {"html": html}}})
    };
    json!({"page": {"rows": [
        {"uuid": "r1", "columns": [{"modules": [module("m1", "<p>a</p>".into())]}]},
        {"uuid": "r2", "columns": [{"modules": [module("m2", "x".repeat(2800))]}]}
    ]}})
}

/// The host events published so far: (detail-type, detail).
fn events(t: &TestApp) -> Vec<(String, Value)> {
    t.events
        .recent()
        .into_iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap().to_owned(),
                e["detail"].clone(),
            )
        })
        .collect()
}

fn kinds(t: &TestApp) -> Vec<String> {
    events(t).into_iter().map(|(kind, _)| kind).collect()
}

fn text_edit(change_id: &str, base: u64, html: &str) -> Value {
    json!({
        "action": "edit", "changeId": change_id, "baseVersion": base,
        "patch": [{"op": "replace",
                   "path": "/page/rows/0/columns/0/modules/0/descriptor/text/html",
                   "value": html}],
        "label": "Text changed", "type": "text"
    })
}

async fn twenty_concurrent_starts_make_one_session(store: TestStore) {
    let t = Arc::new(TestApp::new(store).await);
    let template = small_template();
    let calls = (0..20).map(|_| {
        let t = t.clone();
        let template = template.clone();
        tokio::spawn(async move { start(&t, "spring-newsletter", &template, None).await })
    });
    let answers: Vec<Answer> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    let id = created[0].json()["sessionId"].clone();
    assert_eq!(created[0].json()["created"], true);
    for a in &answers {
        assert!(a.status == 200 || a.status == 201, "{}", a.body);
        assert_eq!(a.json()["sessionId"], id, "two sessions for one key");
    }
    let joined = answers.iter().find(|a| a.status == 200).unwrap().json();
    assert_eq!(joined["created"], false);
    let started = kinds(&t)
        .iter()
        .filter(|k| *k == "coedit.session.started")
        .count();
    assert_eq!(started, 1);
}

async fn a_live_session_is_joined_with_its_version_users_and_seats(store: TestStore) {
    let t = TestApp::new(store).await;
    let template = small_template();
    let first = start(&t, "promo", &template, Some(7)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let created = first.json();
    let keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["created", "historyEntry", "sessionId", "template"]);
    assert_eq!(created["historyEntry"]["version"], 7);
    assert_eq!(created["template"]["comments"], json!({}));
    let id = created["sessionId"].as_str().unwrap();

    let ann = t.connect(id, &ws::user(1)).await;
    let ack = t.send(&ann, &text_edit("c1", 7, "<p>hello</p>")).await;
    assert_eq!(ack["version"], 8, "{ack}");

    // The host's own template is ignored: the live one wins.
    let again = start(&t, "promo", &json!({"page": {"rows": []}}), Some(3)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let joined = again.json();
    let keys: Vec<&str> = joined
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created",
            "sessionId",
            "template",
            "version",
            "users",
            "seats"
        ]
    );
    assert_eq!(joined["sessionId"], id);
    assert_eq!(joined["version"], 8);
    assert_eq!(
        joined["template"]["page"]["rows"][0]["columns"][0]["modules"][0]["descriptor"]["text"]["html"],
        "<p>hello</p>"
    );
    assert_eq!(joined["users"]["user-1"]["username"], "User 1");
    assert_eq!(joined["seats"], json!({"used": 1, "limit": 20}));
    let got = t.get(&t.api_key, id).await.json();
    assert_eq!(got["seats"], json!({"used": 1, "limit": 20}));
}

async fn tenants_keep_their_keys_apart(store: TestStore) {
    let t = TestApp::new(store).await;
    let other = t.add_key("globex", Plan::Large).await;
    let ours = start(&t, "welcome", &small_template(), None).await;
    let theirs = start_as(&t, &other, "welcome", &small_template(), None).await;
    assert_eq!((ours.status, theirs.status), (201, 201));
    let (a, b) = (
        ours.json()["sessionId"].clone(),
        theirs.json()["sessionId"].clone(),
    );
    assert_ne!(a, b);
    // Each tenant joins its own.
    let again = start_as(&t, &other, "welcome", &small_template(), None).await;
    assert_eq!(again.json()["sessionId"], b);
    // And cannot read the other's.
    let foreign = t.get(&other, a.as_str().unwrap()).await;
    foreign.assert_error(404, 5150, "");
}

async fn an_expired_session_hands_its_key_and_its_last_changes_on(store: TestStore) {
    let t = TestApp::new(store).await;
    let first = start(&t, "report", &small_template(), Some(41))
        .await
        .json();
    let old = first["sessionId"].as_str().unwrap().to_owned();
    let ann = t.connect(&old, &ws::user(1)).await;
    let ack = t
        .send(&ann, &text_edit("c1", 41, "<p>last words</p>"))
        .await;
    assert_eq!(ack["version"], 42, "{ack}");
    t.disconnect(&ann).await;
    // A minute with nobody in it: expired, its end not told yet (no sweep ran).
    t.clock.advance(Duration::from_secs(61));

    // The host did not save version 42 yet and starts from 41: no change is lost.
    let next = start(&t, "report", &small_template(), Some(41)).await;
    assert_eq!(next.status, 201, "{}", next.body);
    let next = next.json();
    let new = next["sessionId"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(next["historyEntry"]["version"], 42);
    assert_eq!(
        next["template"]["page"]["rows"][0]["columns"][0]["modules"][0]["descriptor"]["text"]["html"],
        "<p>last words</p>"
    );

    // The old one's end is told (final version 42), and it is erased; the key
    // stays with the new one.
    let report = sweeper::run(&t.app).await;
    assert_eq!(
        (report.ended, report.erased, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    let ended: Vec<Value> = events(&t)
        .into_iter()
        .filter(|(kind, _)| kind == "coedit.session.ended")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["sessionId"], old.as_str());
    assert_eq!(ended[0]["version"], 42);
    let again = start(&t, "report", &small_template(), None).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["sessionId"], new.as_str());

    // Once that one ends too, the key is free: a fresh session at the host's version.
    t.clock.advance(Duration::from_secs(61));
    sweeper::run(&t.app).await;
    let tenant = TenantId::parse("acme").unwrap();
    let key = TemplateKey::parse("report").unwrap();
    assert_eq!(
        t.app
            .store
            .find_template_session(&tenant, &key)
            .await
            .unwrap(),
        None
    );
    let fresh = start(&t, "report", &small_template(), Some(50)).await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    assert_eq!(fresh.json()["historyEntry"]["version"], 50);
}

async fn a_session_numbers_on_from_the_hosts_version(store: TestStore) {
    let t = TestApp::new(store).await;
    // POST takes the version too.
    let created = call(
        &t.app,
        create_session::handle,
        Event::create_session(Some(&t.api_key), opening(&small_template(), Some(41))),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    assert_eq!(created["historyEntry"]["version"], 41);
    let id = created["sessionId"].as_str().unwrap();
    let ann = t.connect(id, &ws::user(1)).await;
    let mut bob = t.connect(id, &ws::user(2)).await;
    bob.received();
    let ack = t.send(&ann, &text_edit("c1", 41, "<p>42</p>")).await;
    assert_eq!(ack["version"], 42, "{ack}");
    let pushed = bob.received();
    assert_eq!(pushed[0]["historyEntry"]["version"], 42, "{pushed:?}");

    let got = t.get(&t.api_key, id).await.json();
    assert_eq!(got["version"], 42);
    let sync = t
        .send(&bob, &json!({"action": "sync", "sinceVersion": 41}))
        .await;
    assert_eq!(sync["entries"][0]["version"], 42, "{sync}");
    let history = call(
        &t.app,
        get_session::handle,
        Event::history(Some(&t.api_key), id, ""),
    )
    .await
    .json();
    let versions: Vec<u64> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [42, 41]);
    assert_eq!(history["nextBefore"], Value::Null);
    let at_41 = call(
        &t.app,
        get_session::handle,
        Event::version(Some(&t.api_key), id, "41"),
    )
    .await;
    assert_eq!(at_41.status, 200, "{}", at_41.body);
    assert_eq!(at_41.json()["template"], created["template"]);
    let before = call(
        &t.app,
        get_session::handle,
        Event::version(Some(&t.api_key), id, "40"),
    )
    .await;
    before.assert_error(400, 4000, "versions are 41 to 42");
}

async fn bad_keys_and_versions_are_refused_with_the_field_named(store: TestStore) {
    let t = TestApp::new(store).await;
    let long = "k".repeat(257);
    for (key, says) in [
        ("", "templateKey: must be 1 to 256 bytes"),
        (
            long.as_str(),
            "templateKey: must be 1 to 256 bytes long, is 257",
        ),
        ("a b", "templateKey: byte 1 is not URL-safe"),
        ("caf\u{e9}", "templateKey: byte 3 is not URL-safe"),
        ("a%2Fb", "templateKey: byte 1 is not URL-safe"),
    ] {
        let before = t.store.writes();
        let res = start(&t, key, &small_template(), None).await;
        res.assert_error(400, 4000, says);
        assert_eq!(t.store.writes(), before, "{key:?} wrote");
    }
    for version in [json!(0), json!(-1), json!(1.5), json!("7"), json!(true)] {
        let body = json!({"template": small_template(), "userid": "host", "version": version});
        for event in [
            Event::start_session(Some(&t.api_key), "ok-key", body.to_string()),
            Event::create_session(Some(&t.api_key), body.to_string()),
        ] {
            let before = t.store.writes();
            let res = call(&t.app, create_session::handle, event).await;
            res.assert_error(400, 4000, "version: must be a whole number from 1");
            assert_eq!(t.store.writes(), before, "{version} wrote");
        }
    }
    assert!(kinds(&t).is_empty(), "nothing started: {:?}", kinds(&t));
}

/// Runs a session's whole life through the host's eyes: start, a join, changes,
/// progress, the last one out, the end with the final template, erasure.
async fn events_tell_a_small_sessions_whole_life(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let started = start(&t, "life", &small_template(), Some(10)).await.json();
    let id = started["sessionId"].as_str().unwrap().to_owned();
    let mut ann = t.connect(&id, &ws::user(1)).await;
    let mut version = 10;
    for i in 0..3 {
        let ack = t
            .send(
                &ann,
                &text_edit(&format!("c{i}"), version, &format!("<p>{i}</p>")),
            )
            .await;
        version = ack["version"].as_u64().unwrap();
    }
    assert_eq!(version, 13);
    // A sweep a minute on: the host hears of version 13, once.
    t.clock.advance(Duration::from_secs(40));
    t.ping(&ann).await;
    t.clock.advance(Duration::from_secs(25));
    t.ping(&ann).await;
    let report = sweeper::run(&t.app).await;
    assert_eq!(report.updated, 1, "{report:?}");
    assert_eq!(
        sweeper::run(&t.app).await.updated,
        0,
        "at most one a minute"
    );
    ann.received();
    let last = t.get(&t.api_key, &id).await.json();
    t.disconnect(&ann).await;
    t.clock.advance(Duration::from_secs(61));
    let report = sweeper::run(&t.app).await;
    assert_eq!((report.ended, report.erased), (1, 1), "{report:?}");
    assert_eq!(items_left(&store, &id).await, 0);

    let seen = events(&t);
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "coedit.session.started",
            "coedit.user.joined",
            "coedit.session.updated",
            "coedit.user.left",
            "coedit.session.ended"
        ]
    );
    for (kind, detail) in &seen {
        assert_eq!(detail["tenant"], "acme", "{kind}");
        assert_eq!(detail["sessionId"], id.as_str(), "{kind}");
        assert_eq!(detail["templateKey"], "life", "{kind}");
        assert!(
            detail["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{kind}"
        );
    }
    let detail = |i: usize| &seen[i].1;
    assert_eq!(detail(0)["version"], 10);
    assert_eq!(detail(1)["user"]["userId"], "user-1");
    assert_eq!(detail(1)["users"], 1);
    assert_eq!(detail(2)["version"], 13);
    assert_eq!(detail(3)["users"], 0);
    assert_eq!(detail(4)["version"], 13);
    assert_eq!(
        detail(4)["template"],
        last["template"],
        "the final template"
    );
    assert!(detail(4).get("keptTemplate").is_none());
}

async fn a_large_final_template_is_kept_for_the_host(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let big = large_template(1_500_000);
    let started = start(&t, "big", &big, None).await;
    assert_eq!(started.status, 201, "{}", started.body.len());
    let id = started.json()["sessionId"].as_str().unwrap().to_owned();
    let last = t.get(&t.api_key, &id).await.json();
    // Nobody ever opened it: it ends a minute later all the same.
    t.clock.advance(Duration::from_secs(61));
    let report = sweeper::run(&t.app).await;
    assert_eq!((report.ended, report.erased), (1, 0), "{report:?}");
    let (kind, ended) = events(&t).pop().unwrap();
    assert_eq!(kind, "coedit.session.ended");
    assert!(ended.get("template").is_none());
    let path = format!("/v1/coedit/session/{id}/final");
    assert_eq!(ended["keptTemplate"]["path"], path.as_str());
    let envelope = t.events.recent().pop().unwrap().to_string();
    assert!(envelope.len() < 256 * 1024, "{} bytes", envelope.len());

    // Readable by the host's API key, nobody else's, until the retention ends.
    let read = call(
        &t.app,
        get_session::handle,
        Event::final_template(Some(&t.api_key), &id),
    )
    .await;
    assert_eq!(read.status, 200);
    let read = read.json();
    assert_eq!(read["template"], last["template"]);
    assert_eq!(read["version"], 1);
    assert_eq!(read["templateKey"], "big");
    let other = t.add_key("globex", Plan::Large).await;
    call(
        &t.app,
        get_session::handle,
        Event::final_template(Some(&other), &id),
    )
    .await
    .assert_error(404, 5150, "");
    // The session itself is over: no GET, no join.
    t.get(&t.api_key, &id).await.assert_error(404, 5150, "");
    // The key is free at once.
    let next = start(&t, "big", &small_template(), None).await;
    assert_eq!(next.status, 201, "{}", next.body);

    t.clock.advance(Duration::from_secs(24 * 3600));
    let report = sweeper::run(&t.app).await;
    assert!(report.erased >= 1, "{report:?}");
    assert_eq!(items_left(&store, &id).await, 0);
    call(
        &t.app,
        get_session::handle,
        Event::final_template(Some(&t.api_key), &id),
    )
    .await
    .assert_error(404, 5150, "");
}

async fn a_failing_publisher_delays_erasure_until_it_succeeds(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let failing = Arc::new(FailingEvents {
        inner: t.events.clone(),
        failing: true.into(),
    });
    let sweeping = App::new(
        t.app.config.clone(),
        t.store.store(),
        t.hub.clone(),
        t.clock.clone(),
    )
    .with_events(failing.clone());
    let started = start(&t, "flaky", &small_template(), None).await.json();
    let id = started["sessionId"].as_str().unwrap().to_owned();
    t.clock.advance(Duration::from_secs(61));
    for _ in 0..3 {
        let report = sweeper::run(&sweeping).await;
        assert_eq!(
            (report.ended, report.erased, report.failed),
            (0, 0, 1),
            "{report:?}"
        );
        t.clock.advance(Duration::from_secs(60));
    }
    // Still all there, and still the key's: a start now continues from it.
    assert!(items_left(&store, &id).await > 0);
    let session = SessionId::parse(&id).unwrap();
    assert!(
        t.app
            .store
            .read_expired(&session, t.app.now())
            .await
            .unwrap()
            .is_some()
    );
    assert!(!kinds(&t).contains(&"coedit.session.ended".to_owned()));

    failing.failing.store(false, Ordering::SeqCst);
    let report = sweeper::run(&sweeping).await;
    assert_eq!(
        (report.ended, report.erased, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(items_left(&store, &id).await, 0);
    let ended = events(&t).pop().unwrap();
    assert_eq!(ended.0, "coedit.session.ended");
    assert_eq!(ended.1["template"], started["template"]);
}

fn viewer(n: usize) -> User {
    User {
        role: Role::Viewer,
        ..ws::user(n)
    }
}

async fn a_viewer_watches_but_never_changes_anything(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = start(&t, "watched", &small_template(), None).await.json()["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ann = t.connect(&id, &ws::user(1)).await;
    let vic_token = t.join_token(&id, &viewer(2)).await;
    let (res, vic) = t.open(Some(&vic_token)).await;
    assert_eq!(res.status_code, 200, "{:?}", res.body);
    let mut vic = vic.unwrap();
    // Presence shows the role (editors keep the seed's shape).
    let joined = ann.received();
    assert_eq!(joined[0]["change"]["type"], "USER_JOINED");
    assert_eq!(joined[0]["change"]["value"]["role"], "viewer");
    let users = joined[0]["sessionData"]["users"].as_object().unwrap();
    let ann_entry = &users[&ann.id];
    assert!(ann_entry.get("role").is_none(), "{ann_entry}");
    assert_eq!(users[&vic.id]["role"], "viewer");

    let session = SessionId::parse(&id).unwrap();
    let head = || async { t.app.store.head_version(&session).await.unwrap() };
    let before = (head().await, t.store.writes());
    let refused = t.send(&vic, &text_edit("v1", 1, "<p>mine</p>")).await;
    assert_eq!(refused["code"], 4030, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("viewer"),
        "{refused}"
    );
    let refused = t
        .send(&vic, &json!({"action": "lock", "target": "m1"}))
        .await;
    assert_eq!(refused["code"], 4030, "{refused}");
    let body = json!({"changeId": "v2", "baseVersion": 1, "label": "l", "type": "t",
                      "patch": [{"op": "add", "path": "/page/x", "value": 1}]});
    call(
        &t.app,
        coedit::handlers::post_change::handle,
        Event::post_change(Some(&vic_token), &id, body.to_string()),
    )
    .await
    .assert_error(403, 4030, "viewer");
    assert_eq!(
        (head().await, t.store.writes()),
        before,
        "a viewer's refusal wrote"
    );
    assert!(ann.received().is_empty(), "nothing was announced");

    // It watches: pings, changes, syncs.
    assert_eq!(body_of(&t.ping(&vic).await)["type"], "pong");
    let ack = t.send(&ann, &text_edit("a1", 1, "<p>ann</p>")).await;
    assert_eq!(ack["version"], 2, "{ack}");
    let pushed = vic.received();
    assert_eq!(pushed[0]["historyEntry"]["version"], 2, "{pushed:?}");
    let sync = t
        .send(&vic, &json!({"action": "sync", "sinceVersion": 1}))
        .await;
    assert_eq!(sync["entries"][0]["version"], 2, "{sync}");
    // And takes no co-editor seat.
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(got["seats"]["used"], 1);

    // An unknown role is refused with the field named.
    let body = json!({"userId": "u9", "username": "U", "userColor": "#000", "role": "owner"});
    call(
        &t.app,
        coedit::handlers::join_session::handle,
        Event::join_session(Some(&t.api_key), &id, body.to_string()),
    )
    .await
    .assert_error(400, 4000, "role");
}

fn body_of(res: &coedit::handlers::websocket::WebSocketResponse) -> Value {
    ws::body_json(res)
}

async fn viewers_take_no_seat_and_stop_at_one_hundred(store: TestStore) {
    let t = TestApp::new(store).await;
    let small = t.add_key("acme", Plan::Small).await;
    let t = TestApp {
        api_key: small,
        ..t
    };
    let id = start(&t, "crowd", &small_template(), None).await.json()["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..5 {
        t.connect(&id, &ws::user(n)).await;
    }
    // Every co-editor seat is taken; a sixth editor is refused, viewers are not.
    let body = serde_json::to_vec(&ws::user(5)).unwrap();
    call(
        &t.app,
        coedit::handlers::join_session::handle,
        Event::join_session(Some(&t.api_key), &id, body),
    )
    .await
    .assert_error(429, 4029, "co-editor seats");
    // 101 viewers with tokens race to connect: exactly 100 get in.
    let mut tokens = Vec::new();
    for n in 0..101 {
        tokens.push(t.join_token(&id, &viewer(100 + n)).await);
    }
    let t = Arc::new(t);
    let opens = tokens.into_iter().map(|token| {
        let t = t.clone();
        tokio::spawn(async move { t.open(Some(&token)).await.0 })
    });
    let answers: Vec<_> = futures_util::future::join_all(opens)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let admitted = answers.iter().filter(|r| r.status_code == 200).count();
    assert_eq!(admitted, 100);
    let refused = answers.iter().find(|r| r.status_code != 200).unwrap();
    assert_eq!(refused.status_code, 429);
    assert_eq!(body_of(refused)["code"], 4029);
    assert!(
        body_of(refused)["detail"]
            .as_str()
            .unwrap()
            .contains("100 viewer places")
    );
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(got["seats"], json!({"used": 5, "limit": 5}));
    // The REST join says so too, before a browser tries.
    let body = serde_json::to_vec(&viewer(999)).unwrap();
    call(
        &t.app,
        coedit::handlers::join_session::handle,
        Event::join_session(Some(&t.api_key), &id, body),
    )
    .await
    .assert_error(429, 4029, "viewer places");
}
