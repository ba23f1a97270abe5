//! The WebSocket session lifecycle (docs/PROTOCOL.md, "Lifecycle"): joining with a
//! token, presence in the seed shapes, seats, heartbeat, departures, expiry and
//! erasure; on the embedded store and on DynamoDB Local.

use coedit_tests::both_stores;
use std::sync::Arc;
use std::time::Duration;

use coedit::handlers::sweeper;
use coedit::session::SessionId;
use coedit::store::LockOutcome;
use coedit_local::faults::{FaultyStore, Rate};
use coedit_tests::ws::{Client, body_json, user};
use coedit_tests::{TestApp, TestStore, items_left};
use serde_json::{Value, json};

fn sid(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

fn user_json(u: &coedit::session::User) -> Value {
    json!({"userId": u.user_id, "username": u.username, "userColor": u.user_color})
}

/// The seed's `sessionData.users`: present users keyed by connection id.
fn users_by_connection(clients: &[&Client]) -> Value {
    clients
        .iter()
        .map(|c| (c.id.clone(), user_json(&c.user)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn session_change(kind: &str, who: &Client, present: &[&Client]) -> Value {
    json!({
        "type": "sessionChange",
        "change": {"type": kind, "value": user_json(&who.user)},
        "sessionData": {"users": users_by_connection(present)}
    })
}

async fn members(t: &TestApp, id: &str) -> coedit::session::SessionMembers {
    let members = t.app.store.read_members(&sid(id), t.clock.now()).await;
    members.unwrap().expect("the session exists")
}

/// Takes a lock over the members as they are now.
async fn take_lock(t: &TestApp, id: &str, lock: &coedit::session::Lock) -> LockOutcome {
    let members = members(t, id).await;
    t.app
        .store
        .take_lock(&members, lock, &alone(&lock.element), t.clock.now())
        .await
        .unwrap()
}

/// An element that overlaps no other.
fn alone(element: &str) -> coedit::patch::Lockable {
    coedit::patch::Lockable {
        id: element.to_owned(),
        overlaps: Vec::new(),
    }
}

async fn seats(t: &TestApp, id: &str) -> Option<u32> {
    let members = t
        .app
        .store
        .read_members(&sid(id), t.clock.now())
        .await
        .unwrap();
    members.map(|m| m.session.seats)
}

use coedit::clock::Clock as _;

async fn presence_for_one_to_twenty_users(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let mut clients: Vec<Client> = Vec::new();
    for n in 0..20 {
        let newcomer = t.connect(&id, &user(n)).await;
        let present: Vec<&Client> = clients.iter().chain([&newcomer]).collect();
        let expected = session_change("USER_JOINED", &newcomer, &present);
        for c in &mut clients {
            assert_eq!(
                c.received(),
                std::slice::from_ref(&expected),
                "client {}",
                c.id
            );
        }
        clients.push(newcomer);
        let got = t.get(&t.api_key, &id).await.json();
        assert_eq!(got["users"].as_object().unwrap().len(), n + 1);
        assert_eq!(got["users"][&user(n).user_id], user_json(&user(n)));
    }
    assert_eq!(seats(&t, &id).await, Some(20));

    // They leave one by one; each departure reaches exactly the ones still there.
    while let Some(leaving) = clients.pop() {
        assert_eq!(t.disconnect(&leaving).await.status_code, 200);
        let present: Vec<&Client> = clients.iter().collect();
        let expected = session_change("USER_LEFT", &leaving, &present);
        for c in &mut clients {
            assert_eq!(c.received(), std::slice::from_ref(&expected));
        }
        assert_eq!(seats(&t, &id).await, Some(clients.len() as u32));
    }
    // The last one out started the countdown.
    t.clock.advance(Duration::from_millis(59_999));
    assert_eq!(t.get(&t.api_key, &id).await.status, 200);
    t.clock.advance(Duration::from_millis(1));
    t.get(&t.api_key, &id).await.assert_error(404, 5150, "");
}

async fn twenty_five_race_for_twenty_seats(store: TestStore) {
    let t = std::sync::Arc::new(TestApp::new(store).await);
    for run in 0..50 {
        let id = t.create_session().await;
        let mut tokens = Vec::new();
        for n in 0..25 {
            tokens.push(t.join_token(&id, &user(n)).await);
        }
        let racers = tokens.into_iter().map(|token| {
            let t = t.clone();
            tokio::spawn(async move {
                let (res, client) = t.open(Some(&token)).await;
                (res.status_code, client)
            })
        });
        let mut statuses = Vec::new();
        let mut clients = Vec::new();
        for r in racers {
            let (status, client) = r.await.unwrap();
            statuses.push(status);
            clients.extend(client);
        }
        let joined = statuses.iter().filter(|s| **s == 200).count();
        let full = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((joined, full), (20, 5), "run {run}: {statuses:?}");
        assert_eq!(seats(&t, &id).await, Some(20), "run {run}");
        let got = t.get(&t.api_key, &id).await.json();
        assert_eq!(got["users"].as_object().unwrap().len(), 20);
    }
}

async fn a_full_session_is_refused_up_front_and_at_the_door(store: TestStore) {
    let t = TestApp::new(store).await;
    let small = t.add_key("acme", coedit::api_key::Plan::Small).await;
    let id = t.create_session().await;
    let mut clients = Vec::new();
    for n in 0..20 {
        clients.push(t.connect(&id, &user(n)).await);
    }
    // The host learns it from POST /join ...
    let res = coedit_tests::call(
        &t.app,
        coedit::handlers::join_session::handle,
        coedit_tests::Event::join_session(
            Some(&t.api_key),
            &id,
            serde_json::to_vec(&user(99)).unwrap(),
        ),
    )
    .await;
    res.assert_error(429, 4029, "all 20 co-editor seats taken");
    // ... and a small-plan token (limit 5) is refused at the door.
    let res = coedit_tests::call(
        &t.app,
        coedit::handlers::join_session::handle,
        coedit_tests::Event::join_session(
            Some(&small),
            &id,
            serde_json::to_vec(&user(99)).unwrap(),
        ),
    )
    .await;
    res.assert_error(429, 4029, "all 5 co-editor seats taken");
    // A token issued while there was room still cannot exceed the limit.
    t.disconnect(&clients.pop().unwrap()).await;
    let token = t.join_token(&id, &user(98)).await;
    clients.push(t.connect(&id, &user(97)).await);
    let (res, _) = t.open(Some(&token)).await;
    assert_eq!(res.status_code, 429);
    assert_eq!(body_json(&res)["code"], 4029);
    assert_eq!(seats(&t, &id).await, Some(20));
}

async fn heartbeat_drops_the_silent_and_releases_their_locks(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let mut ann = t.connect(&id, &user(1)).await;
    let mut bob = t.connect(&id, &user(2)).await;
    ann.received();
    let lock = coedit::session::Lock {
        element: "row-1".into(),
        connection_id: ann.id.clone(),
        user: ann.user.clone(),
        since: t.clock.now(),
    };
    assert_eq!(take_lock(&t, &id, &lock).await, LockOutcome::Granted);

    // Bob pings every 10 s; Ann falls silent at 0.
    for _ in 0..4 {
        t.clock.advance(Duration::from_secs(10));
        let pong = body_json(&t.ping(&bob).await);
        assert_eq!(pong, json!({"type": "pong", "version": 1}));
    }
    t.clock.advance(Duration::from_millis(9_999));
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(
        got["users"].as_object().unwrap().len(),
        2,
        "Ann is listed until 50 s"
    );

    t.clock.advance(Duration::from_millis(1));
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(
        got["users"],
        json!({ "user-2": user_json(&bob.user) }),
        "and gone at 50 s"
    );
    // Ann's lock is free for Bob even before she is dropped.
    let bobs = coedit::session::Lock {
        connection_id: bob.id.clone(),
        user: bob.user.clone(),
        ..lock.clone()
    };
    assert_eq!(take_lock(&t, &id, &bobs).await, LockOutcome::Granted);
    let mine = coedit::session::Lock {
        element: "row-2".into(),
        ..lock.clone()
    };
    // Put one more lock on Ann (as stored before she went silent) to see it released.
    take_lock(&t, &id, &mine).await;

    // Bob's next ping drops her: he hears USER_LEFT and that her lock on row-2 is
    // gone (UNLOCKED); she gets 5300 and is closed.
    assert_eq!(body_json(&t.ping(&bob).await)["type"], "pong");
    let mut unlocked = session_change("UNLOCKED", &ann, &[&bob]);
    unlocked["change"]["target"] = "row-2".into();
    assert_eq!(
        bob.received(),
        [session_change("USER_LEFT", &ann, &[&bob]), unlocked]
    );
    let told = ann.received();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["code"], 5300);
    assert_eq!(told[0]["recoverable"], true);
    assert!(ann.was_closed());
    let members = members(&t, &id).await;
    assert_eq!(members.connections.len(), 1);
    assert_eq!(members.session.seats, 1);
    assert!(
        members.locks.iter().all(|l| l.connection_id == bob.id),
        "{:?}",
        members.locks
    );

    // Her own late ping is not a way back in: she is told again and stays out.
    t.hub.open(&ann.id);
    assert_eq!(t.ping(&ann).await.body, None);
    assert_eq!(seats(&t, &id).await, Some(1));
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(got["users"].as_object().unwrap().len(), 1);
    // Her late $disconnect is a no-op: nobody hears about her twice.
    assert_eq!(t.disconnect(&ann).await.status_code, 200);
    assert!(bob.received().is_empty());
}

async fn the_session_is_erased_a_minute_after_the_last_user_left(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    let before = t.get(&t.api_key, &id).await.json();
    t.disconnect(&ann).await;

    // A user returning within the minute finds it intact.
    t.clock.advance(Duration::from_secs(59));
    let mut again = t.connect(&id, &user(1)).await;
    t.clock.advance(Duration::from_secs(30));
    t.ping(&again).await;
    let after = t.get(&t.api_key, &id).await.json();
    assert_eq!(after["template"], before["template"]);
    assert_eq!(after["version"], before["version"]);
    assert!(sweeper::run(&t.app).await.erased == 0);

    // Then everyone leaves; a minute later the sweeper erases every item.
    t.disconnect(&again).await;
    assert!(again.received().is_empty());
    t.clock.advance(Duration::from_secs(59));
    assert_eq!(sweeper::run(&t.app).await.erased, 0);
    t.clock.advance(Duration::from_secs(1));
    t.get(&t.api_key, &id).await.assert_error(404, 5150, "");
    let report = sweeper::run(&t.app).await;
    assert_eq!(report.erased, 1, "{report:?}");
    assert_eq!(sweeper::run(&t.app).await.erased, 0, "erased once");
    assert_eq!(items_left(&store, &id).await, 0);
}

/// Thirty days on, a session ends whoever is in it: one sweep tells the host
/// (with the final template) and erases it, and its users are told it is gone.
async fn a_session_in_use_ends_at_its_age_limit(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let mut ann = t.connect(&id, &user(1)).await;
    t.clock
        .advance(coedit::session::MAX_SESSION_AGE + Duration::from_secs(60));
    let report = sweeper::run(&t.app).await;
    assert_eq!((report.ended, report.erased), (1, 1), "{report:?}");
    let ended: Vec<_> = t
        .events
        .recent()
        .into_iter()
        .filter(|e| e["detail-type"] == "coedit.session.ended")
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["detail"]["sessionId"], id.as_str());
    assert_eq!(items_left(&store, &id).await, 0);
    t.get(&t.api_key, &id).await.assert_error(404, 5150, "");
    // Ann's next ping finds her dropped: told (5300) and closed; her reconnect
    // then hears the session is gone.
    t.ping(&ann).await;
    assert!(ann.received().iter().any(|m| m["code"] == 5300));
    assert!(ann.was_closed());
    let body = json!({"userId": "u1", "username": "Ann", "userColor": "#3366ff"}).to_string();
    coedit_tests::call(
        &t.app,
        coedit::handlers::join_session::handle,
        coedit_tests::Event::join_session(Some(&t.api_key), &id, body),
    )
    .await
    .assert_error(404, 5150, "");
}

async fn a_session_nobody_joins_is_erased_too(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    t.clock.advance(Duration::from_secs(60));
    assert_eq!(sweeper::run(&t.app).await.erased, 1);
    assert_eq!(items_left(&store, &id).await, 0);
}

async fn disconnects_late_twice_or_never(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let mut ann = t.connect(&id, &user(1)).await;
    let bob = t.connect(&id, &user(2)).await;
    let cid = t.connect(&id, &user(3)).await;
    ann.received();

    // Twice: the second changes nothing and announces nothing.
    t.disconnect(&bob).await;
    assert_eq!(ann.received().len(), 1);
    let writes = t.store.writes();
    assert_eq!(t.disconnect(&bob).await.status_code, 200);
    assert!(ann.received().is_empty());
    assert_eq!(t.store.writes(), writes);
    assert_eq!(seats(&t, &id).await, Some(2));

    // Never: Ann and Cid both vanish without a word. The sweeper, finding the
    // session through its index, drops them once they are stale.
    t.hub.forget(&ann.id);
    t.hub.forget(&cid.id);
    t.clock.advance(Duration::from_secs(49));
    let report = sweeper::run(&t.app).await;
    assert_eq!(report.dropped, 0, "{report:?}");
    t.clock.advance(Duration::from_secs(11));
    let report = sweeper::run(&t.app).await;
    assert_eq!((report.checked, report.dropped), (1, 2), "{report:?}");
    assert_eq!(seats(&t, &id).await, Some(0));
    // Late: their $disconnect arrives after the drop: a no-op.
    assert_eq!(t.disconnect(&ann).await.status_code, 200);
    assert_eq!(seats(&t, &id).await, Some(0));
    // With nobody left the countdown runs; the session goes a minute later.
    t.clock.advance(Duration::from_secs(60));
    assert_eq!(sweeper::run(&t.app).await.erased, 1);
    assert_eq!(items_left(&store, &id).await, 0);
}

async fn gone_connections_are_dropped_during_a_broadcast(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let mut ann = t.connect(&id, &user(1)).await;
    let mut bob = t.connect(&id, &user(2)).await;
    let cid = t.connect(&id, &user(3)).await;
    ann.received();
    bob.received();
    // Cid's socket is gone but API Gateway never told us ($disconnect lost), and
    // he joined long enough ago not to be inside his `$connect` any more.
    t.hub.forget(&cid.id);
    t.clock.advance(coedit::session::presence::CONNECTING_GRACE);

    let dan = t.connect(&id, &user(4)).await;
    // Ann and Bob hear Dan join (Cid still listed: he was, as far as anyone knew),
    // then Cid leave, once his 410 came back.
    let joined = session_change("USER_JOINED", &dan, &[&ann, &bob, &cid, &dan]);
    let left = session_change("USER_LEFT", &cid, &[&ann, &bob, &dan]);
    for c in [&mut ann, &mut bob] {
        assert_eq!(c.received(), [joined.clone(), left.clone()]);
    }
    assert_eq!(seats(&t, &id).await, Some(3));
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(got["users"].as_object().unwrap().len(), 3);
}

async fn a_store_fault_while_joining_is_5100_and_writes_nothing(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let mut ann = t.connect(&id, &user(1)).await;
    let token = t.join_token(&id, &user(2)).await;

    let failing = coedit::App::new(
        coedit_tests::test_config(),
        std::sync::Arc::new(FaultyStore {
            only: Some("taking a seat"),
            ..FaultyStore::new(store.store(), Arc::new(Rate::new(1.0)), Default::default())
        }),
        t.hub.clone(),
        t.clock.clone(),
    );
    let writes = t.store.writes();
    let cid = coedit_tests::ws::new_connection_id();
    let res = coedit::handlers::connect::handle(
        &failing,
        coedit_tests::ws::ws_event("$connect", &cid, Some(&token), None),
    )
    .await;
    assert_eq!(res.status_code, 503);
    let answer = body_json(&res);
    assert_eq!(
        (answer["code"].clone(), answer["recoverable"].clone()),
        (json!(5100), json!(true))
    );
    assert_eq!(t.store.writes(), writes);
    assert_eq!(seats(&t, &id).await, Some(1));
    assert!(
        ann.received().is_empty(),
        "nobody was told of a join that did not happen"
    );
    assert_eq!(t.app.store.find_connection(&cid).await.unwrap(), None);

    // The same token works once the store is back.
    let (res, _bob) = t.open(Some(&token)).await;
    assert_eq!(res.status_code, 200);
}

/// Every way a credential can be wrong, at the door and on GET: the documented
/// code, a detail that says which check failed, and nothing written.
async fn bad_tokens_are_refused_and_change_nothing(store: TestStore) {
    use coedit::auth::{JoinGrant, join_token};
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let other = t.create_session().await;
    let beta_key = t.add_key("beta", coedit::api_key::Plan::Large).await;
    let good = t.join_token(&id, &user(1)).await;
    let now = t.clock.now();
    let grant = |session: &str, tenant: &str, ttl: i64| JoinGrant {
        tenant: coedit::session::TenantId::parse(tenant).unwrap(),
        session: sid(session),
        user: user(1),
        max_editors: 20,
        expires_at: coedit::clock::Timestamp(now.millis() + ttl),
    };
    let secret = coedit_tests::test_secret();
    let foreign_secret = coedit::config::SigningSecret::new(vec![7u8; 32]).unwrap();

    let mut tampered = good.clone().into_bytes();
    let middle = good.find('.').unwrap() + 5;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let expired = join_token::issue(&secret, &grant(&id, "acme", 60_000), now).unwrap();
    let forged = join_token::issue(&foreign_secret, &grant(&id, "acme", 600_000), now).unwrap();
    let wrong_tenant = join_token::issue(&secret, &grant(&id, "beta", 600_000), now).unwrap();
    let other_session = t.join_token(&other, &user(1)).await;
    // Keep both sessions alive past the minute: someone is in each, pinging.
    let keep = [
        t.connect(&id, &user(8)).await,
        t.connect(&other, &user(9)).await,
    ];
    for _ in 0..7 {
        t.clock.advance(Duration::from_secs(10));
        for c in &keep {
            t.ping(c).await;
        }
    }
    let writes = t.store.writes();

    let cases: [(Option<&str>, u16, u16, &str); 6] = [
        (None, 401, 4010, "missing"),
        (Some(&tampered), 401, 4010, "not valid"),
        (Some("not-a-jwt"), 401, 4010, "not a well-formed JWT"),
        (Some(&forged), 401, 4010, "does not accept"),
        (Some(&expired), 401, 4010, "expired at"),
        (Some(&wrong_tenant), 404, 5150, ""),
    ];
    for (token, status, code, says) in cases {
        let (res, client) = t.open(token).await;
        assert!(client.is_none());
        assert_eq!(res.status_code, i64::from(status), "{token:?}");
        let body = body_json(&res);
        assert_eq!(body["code"], code, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        if let Some(token) = token {
            assert!(!body.to_string().contains(token));
        }
        if let Some(token) = token.filter(|t| *t != "not-a-jwt") {
            t.get(token, &id).await.assert_error(status, code, says);
        }
    }
    // A token for another session opens that one only.
    t.get(&other_session, &id)
        .await
        .assert_error(403, 4030, "issued for another session");
    assert_eq!(t.get(&other_session, &other).await.status, 200);
    // A key of another tenant sees nothing, and cannot get a token for it.
    t.get(&beta_key, &id).await.assert_error(404, 5150, "");
    let res = coedit_tests::call(
        &t.app,
        coedit::handlers::join_session::handle,
        coedit_tests::Event::join_session(
            Some(&beta_key),
            &id,
            serde_json::to_vec(&user(3)).unwrap(),
        ),
    )
    .await;
    res.assert_error(404, 5150, "");
    assert_eq!(t.store.writes(), writes);
}

async fn join_route_errors_say_what_and_where(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let none = t.add_key("acme", coedit::api_key::Plan::None).await;
    let join = |key: Option<String>, id: String, body: &str| {
        let body = body.as_bytes().to_vec();
        let app = t.app.clone();
        async move {
            coedit_tests::call(
                &app,
                coedit::handlers::join_session::handle,
                coedit_tests::Event::join_session(key.as_deref(), &id, body),
            )
            .await
        }
    };
    let key = Some(t.api_key.clone());
    let ok = r##"{"userId":"u1","username":"Ann","userColor":"#c0ffee"}"##;
    let writes = t.store.writes();
    join(None, id.clone(), ok)
        .await
        .assert_error(401, 4010, "Authorization");
    join(Some(none), id.clone(), ok)
        .await
        .assert_error(403, 5500, "plan");
    join(key.clone(), uuid::Uuid::new_v4().to_string(), ok)
        .await
        .assert_error(404, 5150, "");
    join(key.clone(), "../META".into(), ok)
        .await
        .assert_error(404, 5150, "");
    join(key.clone(), id.clone(), "{")
        .await
        .assert_error(400, 4000, "EOF");
    join(
        key.clone(),
        id.clone(),
        r#"{"userId":"u1","username":"Ann"}"#,
    )
    .await
    .assert_error(400, 4000, "userColor");
    join(
        key.clone(),
        id.clone(),
        r##"{"userId":5,"username":"Ann","userColor":"#fff"}"##,
    )
    .await
    .assert_error(400, 4000, "userId");
    join(
        key.clone(),
        id.clone(),
        r##"{"userId":"","username":"Ann","userColor":"#fff"}"##,
    )
    .await
    .assert_error(400, 4000, "userId: must be 1 to 256 bytes");
    assert_eq!(t.store.writes(), writes);

    let res = join(key, id.clone(), ok).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let v = res.json();
    assert_eq!(v["url"], coedit_tests::TEST_WEBSOCKET_URL);
    let expires = chrono::DateTime::parse_from_rfc3339(v["expiresAt"].as_str().unwrap()).unwrap();
    let ttl = expires.timestamp_millis() - t.clock.now().millis();
    assert!((14 * 60_000..=15 * 60_000).contains(&ttl), "{ttl}");
    // The browser reads the session with it.
    let token = v["token"].as_str().unwrap();
    assert_eq!(t.get(token, &id).await.status, 200);
}

async fn malformed_pings_are_answered_4000_and_change_nothing(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let ann = t.connect(&id, &user(1)).await;
    t.clock.advance(Duration::from_secs(20));
    let writes = t.store.writes();
    for (body, says) in [
        ("", "empty"),
        ("ping", "JSON object"),
        (r#"{"action":"ping""#, "EOF"),
        (r#"{"action":"pong"}"#, "unknown variant `pong`"),
        (r#"{"action":["ping"]}"#, "action"),
        ("[]", "JSON object"),
    ] {
        let res = t.ping_raw(&ann.id, body).await;
        assert_eq!(res.status_code, 200, "the answer goes back over the socket");
        let v = body_json(&res);
        assert_eq!(
            (v["type"].clone(), v["code"].clone()),
            (json!("error"), json!(4000)),
            "{body}"
        );
        assert!(v["detail"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    assert_eq!(t.store.writes(), writes);
    // The heartbeat was not refreshed by them: 30 s later Ann is stale.
    t.clock.advance(Duration::from_secs(30));
    let got = t.get(&t.api_key, &id).await.json();
    assert_eq!(got["users"], json!({}));
}

async fn a_ping_costs_one_write(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = t.create_session().await;
    let clients: Vec<Client> = {
        let mut v = Vec::new();
        for n in 0..5 {
            v.push(t.connect(&id, &user(n)).await);
        }
        v
    };
    let writes = t.store.writes();
    for c in &clients {
        assert_eq!(body_json(&t.ping(c).await)["type"], "pong");
    }
    assert_eq!(t.store.writes() - writes, clients.len() as u64);
}

/// What connect, ping and disconnect cost on DynamoDB, as it reports it: a ping is
/// one small write and 1.5 read units; joining and leaving cost the same with 1 or 19 others present.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_lifecycle_costs_are_flat() {
    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let mut connect_costs = Vec::new();
    let mut clients = Vec::new();
    for n in 0..20 {
        let token = t.join_token(&id, &user(n)).await;
        let before = meter.totals();
        clients.push(t.open(Some(&token)).await.1.unwrap());
        connect_costs.push(meter.totals() - before);
    }
    for c in &clients {
        let before = meter.totals();
        t.ping(c).await;
        let cost = meter.totals() - before;
        assert_eq!(cost.write_requests, 1, "{cost:?}");
        assert!(cost.write_units <= 1.0, "{cost:?}");
        // The members (strongly consistent) and the newest version (eventually).
        assert_eq!(cost.read_requests, 2, "{cost:?}");
        assert!(cost.read_units <= 1.5, "{cost:?}");
    }
    let mut disconnect_costs = Vec::new();
    while clients.len() > 1 {
        let before = meter.totals();
        t.disconnect(&clients.pop().unwrap()).await;
        disconnect_costs.push(meter.totals() - before);
    }
    // The 2nd and the 20th joiner pay the same; so do the 20th and the 2nd leaver.
    let (second, twentieth) = (connect_costs[1], connect_costs[19]);
    assert_eq!(second.write_requests, twentieth.write_requests);
    assert_eq!(second.write_units, twentieth.write_units);
    assert_eq!(second.read_requests, twentieth.read_requests);
    let (first_out, last_but_one) = (disconnect_costs[0], disconnect_costs[18]);
    assert_eq!(first_out.write_units, last_but_one.write_units);
    assert_eq!(first_out.read_requests, last_but_one.read_requests);
}

both_stores!(
    presence_for_one_to_twenty_users,
    twenty_five_race_for_twenty_seats,
    a_full_session_is_refused_up_front_and_at_the_door,
    heartbeat_drops_the_silent_and_releases_their_locks,
    the_session_is_erased_a_minute_after_the_last_user_left,
    a_session_nobody_joins_is_erased_too,
    a_session_in_use_ends_at_its_age_limit,
    disconnects_late_twice_or_never,
    gone_connections_are_dropped_during_a_broadcast,
    a_store_fault_while_joining_is_5100_and_writes_nothing,
    bad_tokens_are_refused_and_change_nothing,
    join_route_errors_say_what_and_where,
    malformed_pings_are_answered_4000_and_change_nothing,
    a_ping_costs_one_write,
);

/// With DynamoDB unreachable, a join is refused as "failed to open" (5100,
/// recoverable), and a ping is answered 5600: never a crash, never a hang.
#[tokio::test]
async fn an_unreachable_store_refuses_joins_with_5100() {
    let store = coedit_tests::unreachable_dynamo();
    let clock = std::sync::Arc::new(coedit::clock::ManualClock::starting_now());
    let app = coedit::App::new(
        coedit_tests::test_config(),
        store,
        std::sync::Arc::new(coedit::notify::LocalConnections::new()),
        clock.clone(),
    );
    let grant = coedit::auth::JoinGrant {
        tenant: coedit::session::TenantId::parse("acme").unwrap(),
        session: SessionId::generate(),
        user: user(1),
        max_editors: 5,
        expires_at: clock.now().plus(Duration::from_secs(600)),
    };
    let token =
        coedit::auth::join_token::issue(&coedit_tests::test_secret(), &grant, clock.now()).unwrap();
    let id = coedit_tests::ws::new_connection_id();
    let res = coedit::handlers::connect::handle(
        &app,
        coedit_tests::ws::ws_event("$connect", &id, Some(&token), None),
    )
    .await;
    assert_eq!(res.status_code, 503);
    let body = body_json(&res);
    assert_eq!(body["code"], 5100);
    assert_eq!(body["recoverable"], true);
    assert!(
        body["detail"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );

    let res = coedit::handlers::ping::handle(
        &app,
        coedit_tests::ws::ws_event("ping", &id, None, Some(r#"{"action":"ping"}"#)),
    )
    .await;
    assert_eq!(body_json(&res)["code"], 5600);
}

/// Rotating the join token secret with overlap: a browser holding a token signed
/// before the rotation still opens its session while the previous secret is
/// accepted, new tokens are signed with the new one, and once the previous is
/// dropped its tokens are refused (4010) and nothing is written.
#[tokio::test]
async fn a_join_token_survives_a_rotation_of_the_secret_until_the_old_one_is_dropped() {
    use coedit::config::SigningSecret;
    let store = TestStore::memory();
    let before = TestApp::new(store.clone()).await;
    let id = before.create_session().await;
    let old_token = before.join_token(&id, &user(1)).await;

    let new_secret = SigningSecret::new(vec![7u8; 48]).unwrap();
    let rotating = coedit::config::Config {
        join_token_secret: Some(new_secret.clone()),
        previous_join_token_secret: Some(coedit_tests::test_secret()),
        ..coedit_tests::test_config()
    };
    let during = TestApp::with_config(store.clone(), rotating).await;
    let (res, _) = during.open(Some(&old_token)).await;
    assert_eq!(res.status_code, 200, "{:?}", res.body);
    let new_token = during.join_token(&id, &user(2)).await;
    assert!(during.app.verify_join_token(&new_token).is_ok());
    let header = new_token.split('.').next().unwrap();
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], new_secret.key_id());

    let after = coedit::config::Config {
        join_token_secret: Some(new_secret),
        ..coedit_tests::test_config()
    };
    let after = TestApp::with_config(store.clone(), after).await;
    let writes = store.writes();
    let (res, _) = after.open(Some(&old_token)).await;
    assert_eq!(res.status_code, 401);
    assert!(
        body_json(&res)["detail"]
            .as_str()
            .unwrap()
            .contains("rotated out")
    );
    assert_eq!(store.writes(), writes);
    let (res, _) = after.open(Some(&new_token)).await;
    assert_eq!(res.status_code, 200, "{:?}", res.body);
}
