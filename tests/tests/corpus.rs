//! The bad-input corpus: hostile or broken inputs across every REST route and
//! WebSocket message, each answered with its documented code, and the store
//! byte-identical before and after the whole corpus (DynamoDB: every item of the
//! table compared; embedded: no write counted). On both stores.

use coedit_tests::both_stores;
use std::time::Duration;

use coedit::auth::{JoinGrant, join_token};
use coedit::clock::Clock as _;
use coedit::config::SigningSecret;
use coedit::handlers::{create_session, get_session, join_session, post_change};
use coedit::session::SessionId;
use coedit_tests::ws::{send_to, user, ws_event};
use coedit_tests::{Event, TestApp, TestStore, call, fixture};
use serde_json::{Value, json};

both_stores!(every_hostile_input_gets_its_code_and_changes_nothing);

/// One input and the answer it must get: HTTP status (REST and `$connect`) or
/// none (a WebSocket message, answered in the route response), and the code.
struct Case {
    name: String,
    input: Input,
    status: Option<u16>,
    code: u16,
}

enum Input {
    Rest(Route, Event),
    Connect(Option<String>),
    Message(String),
}

#[derive(Clone, Copy)]
enum Route {
    Create,
    Get,
    Join,
    Changes,
}

fn case(name: impl Into<String>, input: Input, status: Option<u16>, code: u16) -> Case {
    Case {
        name: name.into(),
        input,
        status,
        code,
    }
}

/// An attribute as text, maps with their keys in order (a map's own order is not
/// the same from one read to the next).
fn attribute(v: &aws_sdk_dynamodb::types::AttributeValue) -> String {
    match v {
        aws_sdk_dynamodb::types::AttributeValue::M(m) => {
            let mut entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", attribute(v)))
                .collect();
            entries.sort();
            format!("M{{{}}}", entries.join(","))
        }
        other => format!("{other:?}"),
    }
}

/// Every item of the store, for comparing before and after.
async fn dump(store: &TestStore) -> Vec<String> {
    match store {
        TestStore::Memory(m) | TestStore::Faulty(_, m) => vec![m.write_count().to_string()],
        TestStore::Dynamo(d) => {
            let mut items = Vec::new();
            let mut start = None;
            loop {
                // A Scan, in a test only: the whole table is what is compared.
                let out = d
                    .client()
                    .scan()
                    .table_name(d.table())
                    .consistent_read(true)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap();
                for item in out.items() {
                    let mut fields: Vec<String> = item
                        .iter()
                        .map(|(k, v)| format!("{k}={}", attribute(v)))
                        .collect();
                    fields.sort();
                    items.push(fields.join(","));
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            items.sort();
            items
        }
    }
}

/// A value nesting `n` arrays; at `/page/<key>` it nests the template n + 2 deep.
fn nested(n: usize) -> Value {
    serde_json::from_str(&format!("{}1{}", "[".repeat(n), "]".repeat(n))).unwrap()
}

/// Each op copies the page into itself, doubling the template: 160 KB passes 5 MB
/// at the 6th.
fn copy_doubling() -> Value {
    (1..=30)
        .map(|i| json!({"op": "copy", "from": "/page", "path": format!("/page/a{i}")}))
        .collect()
}

/// Adds 60 KB, doubles it 4 times (to about 1 MB), then copies it and removes the
/// copy over and over: the template stays under its limit, but a change may handle
/// only twice that. (No rows in what is copied: a copy of a locked module is
/// locked too.)
fn copy_and_remove() -> Value {
    let blob = json!({"op": "add", "path": "/page/blob", "value": {"t": "x".repeat(60_000)}});
    let doubling = (1..=4)
        .map(|i| json!({"op": "copy", "from": "/page/blob", "path": format!("/page/blob/a{i}")}));
    let churn = (0..50).flat_map(|_| {
        [
            json!({"op": "copy", "from": "/page/blob", "path": "/page/again"}),
            json!({"op": "remove", "path": "/page/again"}),
        ]
    });
    std::iter::once(blob).chain(doubling).chain(churn).collect()
}

fn token(secret: &SigningSecret, grant: &JoinGrant, now: coedit::clock::Timestamp) -> String {
    join_token::issue(secret, grant, now).unwrap()
}

async fn every_hostile_input_gets_its_code_and_changes_nothing(store: TestStore) {
    let t = TestApp::new(store.clone()).await;
    let id = t.create_session().await;
    let other_tenant_key = t.add_key("globex", coedit::api_key::Plan::Large).await;
    let no_plan_key = t.add_key("free-co", coedit::api_key::Plan::None).await;
    let foreign_id = {
        // Created with globex's key: the same store, another tenant.
        let body = serde_json::to_vec(
            &json!({"template": fixture("hackathon-playground-template.json"), "userid": "g"}),
        )
        .unwrap();
        let res = call(
            &t.app,
            create_session::handle,
            Event::create_session(Some(&other_tenant_key), body),
        )
        .await;
        res.json()["sessionId"].as_str().unwrap().to_owned()
    };
    let ann = t.connect(&id, &user(1)).await;
    let bob = t.connect(&id, &user(2)).await;
    let (path, element) = {
        let got = t.get(&t.api_key, &id).await.json();
        let row = &got["template"]["page"]["rows"][0];
        let module = &row["columns"][0]["modules"][0];
        (
            "/page/rows/0/columns/0/modules/0".to_owned(),
            module["uuid"].as_str().unwrap().to_owned(),
        )
    };
    let lock = json!({"action": "lock", "target": element}).to_string();
    assert_eq!(send_to(&t.app, &bob.id, &lock).await["granted"], true);

    let now = t.clock.now();
    let secret = coedit_tests::test_secret();
    let grant = JoinGrant {
        tenant: coedit::session::TenantId::parse("acme").unwrap(),
        session: SessionId::parse(&id).unwrap(),
        user: user(7),
        max_editors: 20,
        expires_at: now.plus(Duration::from_secs(900)),
    };
    let valid = token(&secret, &grant, now);
    let expired = {
        let past = coedit::clock::Timestamp(now.millis() - 3_600_000);
        let g = JoinGrant {
            expires_at: past.plus(Duration::from_secs(900)),
            ..grant.clone()
        };
        token(&secret, &g, past)
    };
    let forged = token(&SigningSecret::new(vec![7u8; 48]).unwrap(), &grant, now);
    let other_session = token(
        &secret,
        &JoinGrant {
            session: SessionId::parse(&foreign_id).unwrap(),
            ..grant.clone()
        },
        now,
    );
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        parts.join(".")
    };

    let key = Some(t.api_key.as_str());
    let template = fixture("hackathon-playground-template.json");
    let create_body = |v: Value| serde_json::to_vec(&v).unwrap();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let ten_mb = format!(
        r#"{{"userid":"u","template":{{"page":{{"x":"{}"}}}}}}"#,
        "a".repeat(10 * 1024 * 1024)
    );
    let mut cases: Vec<Case> = Vec::new();

    // Credentials, on every REST route.
    let routes: [(Route, &str); 4] = [
        (Route::Create, "create"),
        (Route::Get, "get"),
        (Route::Join, "join"),
        (Route::Changes, "changes"),
    ];
    let event = |route: Route, credential: Option<&str>, id: &str| -> Event {
        let good = serde_json::to_vec(&json!({"template": template, "userid": "u"})).unwrap();
        match route {
            Route::Create => Event::create_session(credential, good),
            Route::Get => Event::get_session(credential, id),
            Route::Join => Event::join_session(credential, id, serde_json::to_vec(&user(5)).unwrap()),
            Route::Changes => Event::post_change(
                credential,
                id,
                json!({"changeId": "x", "baseVersion": 1, "patch": [{"op": "add", "path": "/page/z", "value": 1}]}).to_string(),
            ),
        }
    };
    for (route, name) in routes {
        cases.push(case(
            format!("{name}: no credential"),
            Input::Rest(route, event(route, None, &id)),
            Some(401),
            4010,
        ));
        // Changes are made by users: any API key is refused as such, unread.
        let (status, code) = match route {
            Route::Changes => (403, 4030),
            _ => (401, 4010),
        };
        cases.push(case(
            format!("{name}: unknown key"),
            Input::Rest(route, event(route, Some("ck_0000"), &id)),
            Some(status),
            code,
        ));
        cases.push(case(
            format!("{name}: forged token"),
            Input::Rest(route, event(route, Some(&forged), &id)),
            Some(401),
            4010,
        ));
        cases.push(case(
            format!("{name}: expired token"),
            Input::Rest(route, event(route, Some(&expired), &id)),
            Some(401),
            4010,
        ));
        cases.push(case(
            format!("{name}: tampered token"),
            Input::Rest(route, event(route, Some(&tampered), &id)),
            Some(401),
            4010,
        ));
        let mut lowercase = event(route, key, &id);
        lowercase.headers = vec![("Authorization".into(), format!("Basic {}", t.api_key))];
        cases.push(case(
            format!("{name}: not a bearer"),
            Input::Rest(route, lowercase),
            Some(401),
            4010,
        ));
    }
    // Sessions that are not the caller's, or not ids at all.
    for (name, sid) in [
        ("another tenant's session", foreign_id.as_str()),
        ("unknown session", "0b3f1a0e-7e4c-4e59-9a2d-5d2c3b1f0a99"),
        ("malformed id", "../META"),
        ("uppercase id", &id.to_uppercase()),
        ("empty id", ""),
    ] {
        cases.push(case(
            format!("get: {name}"),
            Input::Rest(Route::Get, event(Route::Get, key, sid)),
            Some(404),
            5150,
        ));
        cases.push(case(
            format!("join: {name}"),
            Input::Rest(Route::Join, event(Route::Join, key, sid)),
            Some(404),
            5150,
        ));
        cases.push(case(
            format!("history: {name}"),
            Input::Rest(Route::Get, Event::history(key, sid, "")),
            Some(404),
            5150,
        ));
        cases.push(case(
            format!("version: {name}"),
            Input::Rest(Route::Get, Event::version(key, sid, "1")),
            Some(404),
            5150,
        ));
    }
    cases.push(case(
        "get: token for another session",
        Input::Rest(Route::Get, event(Route::Get, Some(&other_session), &id)),
        Some(403),
        4030,
    ));
    cases.push(case(
        "changes: token for another session",
        Input::Rest(
            Route::Changes,
            event(Route::Changes, Some(&other_session), &id),
        ),
        Some(403),
        4030,
    ));
    cases.push(case(
        "changes: an API key",
        Input::Rest(Route::Changes, event(Route::Changes, key, &id)),
        Some(403),
        4030,
    ));
    cases.push(case(
        "join: plan without co-editing",
        Input::Rest(Route::Join, event(Route::Join, Some(&no_plan_key), &id)),
        Some(403),
        5500,
    ));
    cases.push(case(
        "create: join token instead of key",
        Input::Rest(Route::Create, event(Route::Create, Some(&valid), &id)),
        Some(401),
        4010,
    ));

    // Broken bodies.
    let bodies: Vec<(&str, Vec<u8>, u16, u16)> = vec![
        ("empty body", Vec::new(), 400, 4000),
        ("not JSON", b"template=1".to_vec(), 400, 4000),
        (
            "truncated JSON",
            br#"{"template": {"page": {}"#.to_vec(),
            400,
            4000,
        ),
        ("an array", b"[1, 2]".to_vec(), 400, 4000),
        ("a string", br#""hello""#.to_vec(), 400, 4000),
        ("null", b"null".to_vec(), 400, 4000),
        (
            "trailing garbage",
            br#"{"template": {"page": {}}, "userid": "u"} x"#.to_vec(),
            400,
            4000,
        ),
        ("invalid UTF-8", vec![b'{', 0xff, 0xfe, b'}'], 400, 4000),
        (
            "10,000-deep nesting",
            format!(r#"{{"userid":"u","template":{deep}}}"#).into_bytes(),
            400,
            4000,
        ),
        ("10 MB", ten_mb.clone().into_bytes(), 413, 4013),
    ];
    for (name, b, status, code) in &bodies {
        cases.push(case(
            format!("create: {name}"),
            Input::Rest(Route::Create, Event::create_session(key, b.clone())),
            Some(*status),
            *code,
        ));
        cases.push(case(
            format!("join: {name}"),
            Input::Rest(Route::Join, Event::join_session(key, &id, b.clone())),
            Some(*status),
            *code,
        ));
        cases.push(case(
            format!("changes: {name}"),
            Input::Rest(
                Route::Changes,
                Event::post_change(Some(&valid), &id, b.clone()),
            ),
            Some(*status),
            *code,
        ));
    }
    for (name, v, code) in [
        (
            "userid a number",
            json!({"template": template, "userid": 5}),
            4000,
        ),
        ("userid missing", json!({"template": template}), 4000),
        (
            "userid empty",
            json!({"template": template, "userid": ""}),
            4000,
        ),
        ("template missing", json!({"userid": "u"}), 4000),
        (
            "template an array",
            json!({"template": [], "userid": "u"}),
            4000,
        ),
        (
            "page missing",
            json!({"template": {"comments": {}}, "userid": "u"}),
            4000,
        ),
        (
            "page a string",
            json!({"template": {"page": "x"}, "userid": "u"}),
            4000,
        ),
        (
            "rows an object",
            json!({"template": {"page": {"rows": {}}}, "userid": "u"}),
            4000,
        ),
        (
            "uuid a number",
            json!({"template": {"page": {"rows": [{"uuid": 5}]}}, "userid": "u"}),
            4000,
        ),
        (
            "template nested 70 deep (parses, past the limit of 64)",
            json!({"template": {"page": {"a": nested(68)}}, "userid": "u"}),
            4000,
        ),
    ] {
        cases.push(case(
            format!("create: {name}"),
            Input::Rest(Route::Create, Event::create_session(key, create_body(v))),
            Some(400),
            code,
        ));
    }
    for (name, v) in [
        (
            "userId missing",
            json!({"username": "A", "userColor": "#000"}),
        ),
        (
            "username empty",
            json!({"userId": "a", "username": "", "userColor": "#000"}),
        ),
        (
            "userColor a number",
            json!({"userId": "a", "username": "A", "userColor": 1}),
        ),
        (
            "userId 300 bytes",
            json!({"userId": "a".repeat(300), "username": "A", "userColor": "#000"}),
        ),
    ] {
        cases.push(case(
            format!("join: {name}"),
            Input::Rest(Route::Join, Event::join_session(key, &id, create_body(v))),
            Some(400),
            4000,
        ));
    }
    for (name, query, code) in [
        ("limit 0", "limit=0", 4000),
        ("limit huge", "limit=100000", 4000),
        ("before text", "before=abc", 4000),
        ("limit negative", "limit=-1", 4000),
    ] {
        cases.push(case(
            format!("history: {name}"),
            Input::Rest(Route::Get, Event::history(key, &id, query)),
            Some(400),
            code,
        ));
    }
    for (name, n) in [
        ("version 0", "0"),
        ("version text", "x"),
        ("version beyond head", "99"),
        ("version negative", "-1"),
    ] {
        cases.push(case(
            format!("versions: {name}"),
            Input::Rest(Route::Get, Event::version(key, &id, n)),
            Some(400),
            4000,
        ));
    }

    // Changes that would make the template too large or too deep, over REST.
    for (name, patch, status, code) in [
        (
            "30 copies of the page into itself",
            copy_doubling(),
            413,
            4013,
        ),
        (
            "a value nested 70 deep",
            json!([{"op": "add", "path": "/page/deep", "value": nested(68)}]),
            400,
            4001,
        ),
    ] {
        let body = json!({"changeId": "c", "baseVersion": 1, "patch": patch});
        cases.push(case(
            format!("changes: {name}"),
            Input::Rest(
                Route::Changes,
                Event::post_change(Some(&valid), &id, create_body(body)),
            ),
            Some(status),
            code,
        ));
    }

    // Opening the WebSocket.
    for (name, tok, status, code) in [
        ("no token", None, 401, 4010),
        ("forged token", Some(forged.clone()), 401, 4010),
        ("expired token", Some(expired.clone()), 401, 4010),
        ("tampered token", Some(tampered.clone()), 401, 4010),
        ("garbage token", Some("a.b.c".to_owned()), 401, 4010),
        ("an API key", Some(t.api_key.clone()), 401, 4010),
    ] {
        cases.push(case(
            format!("$connect: {name}"),
            Input::Connect(tok),
            Some(status),
            code,
        ));
    }

    // WebSocket messages from a member.
    let edit = |patch: Value| {
        json!({"action": "edit", "changeId": "c", "baseVersion": 1, "patch": patch}).to_string()
    };
    let messages: Vec<(&str, String, u16)> = vec![
        ("empty", String::new(), 4000),
        ("not JSON", "ping".into(), 4000),
        ("an array", "[]".into(), 4000),
        ("no action", "{}".into(), 4000),
        ("action a number", r#"{"action": 1}"#.into(), 4000),
        ("unknown action", r#"{"action": "format-disk"}"#.into(), 4000),
        ("truncated", r#"{"action": "edit", "patch": ["#.into(), 4000),
        ("deep nesting", format!(r#"{{"action":"edit","x":{deep}}}"#), 4000),
        ("over 128 KB", format!(r#"{{"action":"ping","x":"{}"}}"#, "a".repeat(130 * 1024)), 4013),
        ("edit: baseVersion text", r#"{"action":"edit","changeId":"c","baseVersion":"1","patch":[]}"#.into(), 4000),
        ("edit: baseVersion negative", r#"{"action":"edit","changeId":"c","baseVersion":-1,"patch":[]}"#.into(), 4000),
        ("edit: baseVersion 0", edit(json!([{"op": "add", "path": "/page/a", "value": 1}])).replace("\"baseVersion\":1", "\"baseVersion\":0"), 4000),
        ("edit: baseVersion in the future", edit(json!([{"op": "add", "path": "/page/a", "value": 1}])).replace("\"baseVersion\":1", "\"baseVersion\":999"), 4000),
        ("edit: changeId missing", r#"{"action":"edit","baseVersion":1,"patch":[]}"#.into(), 4000),
        ("edit: changeId 200 bytes", edit(json!([{"op": "add", "path": "/page/a", "value": 1}])).replace("\"changeId\":\"c\"", &format!("\"changeId\":\"{}\"", "c".repeat(200))), 4000),
        ("edit: label 1 KB", edit(json!([{"op": "add", "path": "/page/a", "value": 1}])).replacen('{', &format!("{{\"label\":\"{}\",", "l".repeat(1024)), 1), 4000),
        ("edit: patch an object", edit(json!({"op": "add"})), 4001),
        ("edit: patch empty", edit(json!([])), 4001),
        ("edit: 1001 ops", edit(Value::Array(vec![json!({"op": "test", "path": "/page", "value": 1}); 1001])), 4001),
        ("edit: op a string", edit(json!(["add"])), 4001),
        ("edit: unknown op", edit(json!([{"op": "merge", "path": "/page"}])), 4001),
        ("edit: path without slash", edit(json!([{"op": "add", "path": "page/a", "value": 1}])), 4001),
        ("edit: path a number", edit(json!([{"op": "remove", "path": 3}])), 4001),
        ("edit: bad escape", edit(json!([{"op": "remove", "path": "/page/~2"}])), 4001),
        ("edit: value missing", edit(json!([{"op": "replace", "path": "/page/rows"}])), 4001),
        ("edit: from missing", edit(json!([{"op": "move", "path": "/page/a"}])), 4001),
        ("edit: root replace", edit(json!([{"op": "replace", "path": "", "value": {"page": {}}}])), 4001),
        ("edit: remove page", edit(json!([{"op": "remove", "path": "/page"}])), 4001),
        ("edit: page to a string", edit(json!([{"op": "replace", "path": "/page", "value": "x"}])), 4001),
        ("edit: missing path", edit(json!([{"op": "replace", "path": "/page/nope/deeper", "value": 1}])), 4001),
        ("edit: index out of range", edit(json!([{"op": "add", "path": "/page/rows/999", "value": {}}])), 4001),
        ("edit: leading-zero index", edit(json!([{"op": "remove", "path": "/page/rows/00"}])), 4001),
        ("edit: into a string", edit(json!([{"op": "add", "path": "/page/rows/0/uuid/x", "value": 1}])), 4001),
        ("edit: move into itself", edit(json!([{"op": "move", "from": "/page/rows", "path": "/page/rows/0"}])), 4001),
        ("edit: copy from nowhere", edit(json!([{"op": "copy", "from": "/page/nope", "path": "/page/x"}])), 4001),
        ("edit: second op bad", edit(json!([{"op": "add", "path": "/page/a", "value": 1}, {"op": "remove", "path": "/page/nope"}])), 4001),
        ("edit: failing test op", edit(json!([{"op": "test", "path": "/page/rows/0/uuid", "value": "not-it"}])), 4009),
        ("edit: locked module", edit(json!([{"op": "replace", "path": format!("{path}/uuid"), "value": "x"}])), 4023),
        ("edit: row of a locked module", edit(json!([{"op": "remove", "path": "/page/rows/0"}])), 4023),
        ("edit: all rows, one locked", edit(json!([{"op": "replace", "path": "/page/rows", "value": []}])), 4023),
        ("edit: deep value", edit(json!([{"op": "add", "path": "/page/a", "value": serde_json::from_str::<Value>(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).unwrap()}])).replace("[1]", &format!("{}1{}", "[".repeat(200), "]".repeat(200))), 4000),
        ("edit: value nested 70 deep", edit(json!([{"op": "add", "path": "/page/deep", "value": nested(68)}])), 4001),
        ("edit: 30 copies of the page into itself", edit(copy_doubling()), 4013),
        ("edit: copies and removals past what a change may handle", edit(copy_and_remove()), 4013),
        ("lock: target missing", r#"{"action":"lock"}"#.into(), 4000),
        ("lock: target empty", r#"{"action":"lock","target":""}"#.into(), 4000),
        ("lock: target 1 KB", format!(r#"{{"action":"lock","target":"{}"}}"#, "t".repeat(1024)), 4000),
        ("lock: target a number", r#"{"action":"lock","target":5}"#.into(), 4000),
        ("unlock: target missing", r#"{"action":"unlock"}"#.into(), 4000),
        ("sync: sinceVersion missing", r#"{"action":"sync"}"#.into(), 4000),
        ("sync: sinceVersion text", r#"{"action":"sync","sinceVersion":"1"}"#.into(), 4000),
        ("sync: sinceVersion float", r#"{"action":"sync","sinceVersion":1.5}"#.into(), 4000),
    ];
    for (name, body, code) in messages {
        cases.push(case(
            format!("message: {name}"),
            Input::Message(body),
            None,
            code,
        ));
    }

    assert!(cases.len() >= 100, "the corpus has {} inputs", cases.len());
    let before = dump(&store).await;
    let mut failures = Vec::new();
    for c in cases.iter() {
        let (status, body) = match &c.input {
            Input::Rest(route, event) => {
                let event = Event {
                    headers: event.headers.clone(),
                    body: event.body.clone(),
                    path_parameters: event.path_parameters.clone(),
                    path: event.path.clone(),
                    query: event.query.clone(),
                    // API Gateway hands over a body that is not UTF-8 base64-encoded.
                    base64: event
                        .body
                        .as_ref()
                        .is_some_and(|b| std::str::from_utf8(b).is_err()),
                    ..*event
                };
                let res = match route {
                    Route::Create => call(&t.app, create_session::handle, event).await,
                    Route::Get => call(&t.app, get_session::handle, event).await,
                    Route::Join => call(&t.app, join_session::handle, event).await,
                    Route::Changes => call(&t.app, post_change::handle, event).await,
                };
                (Some(res.status), res.body)
            }
            Input::Connect(tok) => {
                let connection = coedit_tests::ws::new_connection_id();
                let res = coedit::handlers::connect::handle(
                    &t.app,
                    ws_event("$connect", &connection, tok.as_deref(), None),
                )
                .await;
                let body = match res.body {
                    Some(aws_lambda_events::encodings::Body::Text(t)) => t,
                    _ => String::new(),
                };
                (Some(res.status_code as u16), body)
            }
            Input::Message(body) => (None, send_to(&t.app, &ann.id, body).await.to_string()),
        };
        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let detail = answer["detail"].as_str().unwrap_or_default();
        let ok = status == c.status
            && answer["code"] == c.code
            && !detail.is_empty()
            && !body.contains(&t.api_key)
            && !body.contains(&valid);
        if !ok {
            failures.push(format!(
                "{}: got {status:?} {}",
                c.name,
                body.chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(dump(&store).await, before, "the corpus changed the store");
    println!(
        "corpus: {} inputs, all answered with their documented code; store unchanged",
        cases.len()
    );
}
