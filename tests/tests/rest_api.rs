//! The REST routes, driven by API Gateway HTTP API (payload 2.0) events exactly as
//! lambda_http parses them in production, against both stores.

use coedit_tests::both_stores;
use std::time::Duration;

use coedit::api_key::{KeyHash, Plan};
use coedit::handlers::{create_session, get_session};
use coedit_tests::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

both_stores!(
    create_answers_the_seed_shape,
    get_answers_the_seed_shape_with_version,
    fixtures_round_trip_byte_identical_through_create_and_get,
    base64_encoded_bodies_are_read,
    bad_create_requests_are_refused_and_write_nothing,
    oversized_and_deep_bodies_are_refused_and_write_nothing,
    plan_without_coediting_gets_5500,
    unknown_expired_and_foreign_sessions_answer_alike,
    credentials_are_checked_on_get,
    revoked_keys_stop_working_after_the_cache_ttl,
    fifty_parallel_creates_through_the_api,
);

fn body(template: &Value, userid: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"template": template, "userid": userid})).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The `template` member exactly as the server wrote it.
fn raw_template(body: &str) -> String {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        template: &'a RawValue,
    }
    serde_json::from_str::<Raw>(body)
        .unwrap()
        .template
        .get()
        .to_owned()
}

async fn create(t: &TestApp, template: &Value) -> Answer {
    call(
        &t.app,
        create_session::handle,
        Event::create_session(Some(&t.api_key), body(template, "user-1")),
    )
    .await
}

/// Creates a session from the small fixture and returns its id.
async fn created_id(t: &TestApp) -> String {
    let res = create(t, &fixture("hackathon-playground-template.json")).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()["sessionId"].as_str().unwrap().to_owned()
}

async fn get(t: &TestApp, key: &str, id: &str) -> Answer {
    call(
        &t.app,
        get_session::handle,
        Event::get_session(Some(key), id),
    )
    .await
}

async fn create_answers_the_seed_shape(store: TestStore) {
    let t = TestApp::new(store).await;
    let template = fixture("hackathon-playground-template.json");
    let res = create(&t, &template).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let v = res.json();
    assert_eq!(keys(&v), ["historyEntry", "sessionId", "template"]);
    let entry = &v["historyEntry"];
    assert_eq!(
        keys(entry),
        [
            "version",
            "timestamp",
            "changeId",
            "label",
            "type",
            "userId",
            "diff"
        ]
    );
    assert_eq!(entry["version"], 1);
    assert_eq!(entry["userId"], "user-1");
    assert_eq!(entry["diff"], json!([]));
    let ts = entry["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with('Z') && ts.len() == "2024-08-28T23:43:24.445Z".len(),
        "{ts}"
    );
    let id = v["sessionId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);

    // The hackathon template has no uuids: the answer carries the assigned ones.
    let rows = v["template"]["page"]["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        template["page"]["rows"].as_array().unwrap().len()
    );
    for row in rows {
        assert!(uuid::Uuid::parse_str(row["uuid"].as_str().unwrap()).is_ok());
        for module in row["columns"][0]["modules"].as_array().unwrap() {
            assert!(uuid::Uuid::parse_str(module["uuid"].as_str().unwrap()).is_ok());
        }
    }
    assert_eq!(res.body.len(), res.body.trim().len());
}

async fn get_answers_the_seed_shape_with_version(store: TestStore) {
    let t = TestApp::new(store).await;
    let created = create(&t, &fixture("hackathon-playground-template.json"))
        .await
        .json();
    let id = created["sessionId"].as_str().unwrap();
    let res = get(&t, &t.api_key, id).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let v = res.json();
    assert_eq!(keys(&v), ["template", "users", "version", "seats"]);
    assert_eq!(v["users"], json!({}));
    assert_eq!(v["version"], 1);
    assert_eq!(v["seats"], json!({"used": 0, "limit": 20}));
    assert_eq!(v["template"]["comments"], json!({}));
    assert_eq!(v["template"], created["template"]);
}

async fn fixtures_round_trip_byte_identical_through_create_and_get(store: TestStore) {
    let t = TestApp::new(store).await;
    let mut templates = fixture_templates();
    templates.push(("synthetic-1.5MB".into(), large_template(1_500_000)));
    for (name, template) in templates {
        let created = create(&t, &template).await;
        assert_eq!(created.status, 201, "{name}: {}", created.body);
        let id = created.json()["sessionId"].as_str().unwrap().to_owned();
        let got = get(&t, &t.api_key, &id).await;
        assert_eq!(got.status, 200, "{name}: {}", got.body);
        let (sent, returned) = (raw_template(&created.body), raw_template(&got.body));
        assert_eq!(sent, returned, "{name}: create and get differ");
        if name != "hackathon-playground-template.json" {
            assert_eq!(
                returned,
                canonical(&with_comments(&template)),
                "{name}: not the template sent (with comments)"
            );
        }
    }
}

async fn base64_encoded_bodies_are_read(store: TestStore) {
    let t = TestApp::new(store).await;
    let mut event = Event::create_session(
        Some(&t.api_key),
        body(&fixture("hackathon-playground-template.json"), "u"),
    );
    event.base64 = true;
    let res = call(&t.app, create_session::handle, event).await;
    assert_eq!(res.status, 201, "{}", res.body);
}

/// Each refusal: status, code, a detail that says what and where, and no write.
async fn refuse(t: &TestApp, event: Event, status: u16, code: u16, says: &str) {
    let before = t.store.writes();
    let res = call(&t.app, create_session::handle, event).await;
    res.assert_error(status, code, says);
    assert_eq!(t.store.writes(), before, "a refused request wrote: {says}");
}

async fn bad_create_requests_are_refused_and_write_nothing(store: TestStore) {
    let t = TestApp::new(store).await;
    let key = Some(t.api_key.as_str());
    let ok = fixture("hackathon-playground-template.json");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"template\": {\"page\": {}}, \"userid\": ".to_vec(),
            "EOF while parsing",
        ),
        (b"<html>".to_vec(), "expected value at line 1 column 1"),
        (b"".to_vec(), "body is empty"),
        (
            br#"[{"page": {}}, "u"]"#.to_vec(),
            "must be a JSON object, not an array",
        ),
        (b"5".to_vec(), "invalid type: integer `5`, expected struct"),
        (
            br#"{"template": {"page": {}}, "userid": 42}"#.to_vec(),
            "userid: invalid type: integer `42`",
        ),
        (
            br#"{"template": {"page": {}}}"#.to_vec(),
            "missing field `userid`",
        ),
        (br#"{"userid": "u"}"#.to_vec(), "missing field `template`"),
        (
            br#"{"template": {"page": {}}, "userid": ""}"#.to_vec(),
            "userid: must be 1 to 256 bytes",
        ),
        (
            br#"{"template": "x", "userid": "u"}"#.to_vec(),
            "/template: must be an object",
        ),
        (
            br#"{"template": {"comments": {}}, "userid": "u"}"#.to_vec(),
            "/template/page: is missing",
        ),
        (
            br#"{"template": {"page": []}, "userid": "u"}"#.to_vec(),
            "/template/page: must be an object",
        ),
        (
            br#"{"template": {"page": {"rows": [{"columns": "no"}]}}, "userid": "u"}"#.to_vec(),
            "/template/page/rows/0/columns: must be an array",
        ),
        (
            br#"{"template": {"page": {}}, "userid": "u"} {"again": 1}"#.to_vec(),
            "trailing characters",
        ),
    ];
    for (bytes, says) in cases {
        refuse(&t, Event::create_session(key, bytes), 400, 4000, says).await;
    }
    // Credentials are checked before anything else is read.
    refuse(
        &t,
        Event::create_session(None, body(&ok, "u")),
        401,
        4010,
        "Authorization header is missing",
    )
    .await;
    refuse(
        &t,
        Event::create_session(Some("ck_forged"), body(&ok, "u")),
        401,
        4010,
        "not valid",
    )
    .await;
    let mut basic = Event::create_session(None, body(&ok, "u"));
    basic.headers = vec![("Authorization".into(), format!("Basic {}", t.api_key))];
    refuse(&t, basic, 401, 4010, "Bearer").await;
}

async fn oversized_and_deep_bodies_are_refused_and_write_nothing(store: TestStore) {
    let t = TestApp::new(store).await;
    let key = Some(t.api_key.as_str());
    let limit = t.app.config.max_body_bytes;
    let mut huge = br#"{"userid":"u","template":{"page":{"x":""#.to_vec();
    huge.resize(limit + 1 - 4, b'a');
    huge.extend_from_slice(br#""}}}"#);
    assert_eq!(huge.len(), limit + 1);
    refuse(&t, Event::create_session(key, huge), 413, 4013, "at most").await;

    let deep = format!(
        r#"{{"userid":"u","template":{{"page":{{"x":{}{}}}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    refuse(
        &t,
        Event::create_session(key, deep),
        400,
        4000,
        "recursion limit",
    )
    .await;
}

async fn plan_without_coediting_gets_5500(store: TestStore) {
    let t = TestApp::new(store).await;
    let key = t.add_key("cheap", Plan::None).await;
    let event = Event::create_session(
        Some(&key),
        body(&fixture("hackathon-playground-template.json"), "u"),
    );
    refuse(&t, event, 403, 5500, "does not include co-editing").await;
}

async fn unknown_expired_and_foreign_sessions_answer_alike(store: TestStore) {
    let t = TestApp::new(store).await;
    let other_tenant_key = t.add_key("globex", Plan::Large).await;
    let id = created_id(&t).await;

    let unknown = get(&t, &t.api_key, &uuid::Uuid::new_v4().to_string()).await;
    unknown.assert_error(404, 5150, "no session");
    let foreign = get(&t, &other_tenant_key, &id).await;
    let malformed = get(&t, &t.api_key, "..%2FMETA").await;
    for other in [&foreign, &malformed] {
        assert_eq!(other.status, unknown.status);
        assert_eq!(
            other.body, unknown.body,
            "a foreign or malformed id must look unknown"
        );
    }
    // The owner still sees it; a minute later, with nobody joined, nobody does.
    assert_eq!(get(&t, &t.api_key, &id).await.status, 200);
    t.clock.advance(Duration::from_secs(60));
    let expired = get(&t, &t.api_key, &id).await;
    assert_eq!(expired.body, unknown.body);
}

async fn credentials_are_checked_on_get(store: TestStore) {
    let t = TestApp::new(store).await;
    let id = created_id(&t).await;
    let res = call(&t.app, get_session::handle, Event::get_session(None, &id)).await;
    res.assert_error(401, 4010, "missing");
    let res = get(&t, "ck_0000", &id).await;
    res.assert_error(401, 4010, "not valid");
    assert!(
        !res.body.contains("ck_0000"),
        "the credential must not be echoed"
    );
}

async fn revoked_keys_stop_working_after_the_cache_ttl(store: TestStore) {
    let t = TestApp::new(store).await;
    let template = fixture("hackathon-playground-template.json");
    assert_eq!(create(&t, &template).await.status, 201);
    assert_eq!(
        t.app
            .store
            .revoke_api_key(&KeyHash::of(&t.api_key))
            .await
            .unwrap(),
        coedit::store::RevokeOutcome::Revoked
    );
    t.clock.advance(t.app.config.key_cache_ttl);
    create(&t, &template)
        .await
        .assert_error(401, 4010, "not valid");
}

async fn fifty_parallel_creates_through_the_api(store: TestStore) {
    let t = std::sync::Arc::new(TestApp::new(store).await);
    let template = fixture("playground-template.json");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (t, template) = (t.clone(), template.clone());
            tokio::spawn(async move {
                let res = call(
                    &t.app,
                    create_session::handle,
                    Event::create_session(Some(&t.api_key), body(&template, &format!("u{i}"))),
                )
                .await;
                assert_eq!(res.status, 201, "{}", res.body);
                res.json()["sessionId"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 50);
    for id in &ids {
        let res = get(&t, &t.api_key, id).await;
        assert_eq!(res.status, 200);
        assert_eq!(raw_template(&res.body), canonical(&template));
    }
}

/// Cost: a GET is two Queries whatever the template's size (the head, members and
/// snapshot; the log after the snapshot), and its read units follow the compressed
/// size, not the raw one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_get_is_two_queries_priced_by_compressed_size() {
    let store = TestStore::dynamo().await;
    let TestStore::Dynamo(dynamo) = &store else {
        unreachable!()
    };
    let meter = dynamo.meter().clone();
    let t = TestApp::new(store.clone()).await;
    let template = large_template(1_500_000);
    let raw = canonical(&template).len() as f64;
    let id = create(&t, &template).await.json()["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    // The first GET also looks the API key up; a warm function has it cached.
    assert_eq!(get(&t, &t.api_key, &id).await.status, 200);

    let before = meter.totals();
    assert_eq!(get(&t, &t.api_key, &id).await.status, 200);
    let used = meter.totals() - before;
    assert_eq!(used.read_requests, 2, "{used:?}");
    assert_eq!(used.write_requests, 0, "{used:?}");
    let raw_units = raw / 4096.0;
    assert!(
        used.read_units * 4.0 < raw_units,
        "read units {} should follow the compressed size, raw would cost {raw_units}",
        used.read_units
    );
}

/// The store unreachable (nothing listens on the port): the caller gets 503 with
/// 5600 and a detail naming the operation, not a hang or a 500 with internals.
#[tokio::test]
async fn an_unreachable_store_answers_5600() {
    let store = coedit_tests::unreachable_dynamo();
    let app = coedit::App::new(
        coedit::config::Config::default(),
        store,
        std::sync::Arc::new(coedit::notify::LocalConnections::new()),
        std::sync::Arc::new(coedit::clock::SystemClock),
    );
    let key = "ck_unreachable";
    let event = Event::create_session(
        Some(key),
        body(&fixture("hackathon-playground-template.json"), "u"),
    );
    let res = call(&app, create_session::handle, event).await;
    res.assert_error(503, 5600, "the store did not answer");
    assert!(!res.body.contains(key));
    let res = call(
        &app,
        get_session::handle,
        Event::get_session(Some(key), &uuid::Uuid::new_v4().to_string()),
    )
    .await;
    res.assert_error(503, 5600, "the store did not answer");
}
