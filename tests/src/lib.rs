//! What the integration tests share: the two stores, apps with an API key, real
//! API Gateway HTTP API events, and the fixture templates from `tests/fixtures`.

pub mod stack;
pub mod versions;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use coedit::App;
use coedit::api_key::{ApiKeyRecord, KeyHash, Plan, generate_api_key};
use coedit::clock::{Clock, ManualClock};
use coedit::config::{Config, SigningSecret};
use coedit::notify::LocalConnections;
use coedit::session::SessionId;
use coedit::session::TenantId;
use coedit::store::dynamo::keys::session_pk;
use coedit::store::dynamo::schema::TableDefinition;
use coedit::store::{DynamoStore, MemoryStore, PresenceStore, SessionLogStore, SessionStore};
use coedit_local::events::LocalEvents;
use coedit_local::faults::{FaultyStore, Rate};
use serde_json::{Value, json};

pub const DYNAMODB_ENDPOINT_VAR: &str = "COEDIT_TEST_DYNAMODB_ENDPOINT";

/// Which store a test runs against.
#[derive(Clone)]
pub enum TestStore {
    Memory(Arc<MemoryStore>),
    Dynamo(Arc<DynamoStore>),
    /// The local stack's fault-injecting wrapper (faults off) over an embedded store.
    Faulty(Arc<FaultyStore>, Arc<MemoryStore>),
}

impl TestStore {
    pub fn memory() -> TestStore {
        TestStore::Memory(Arc::new(MemoryStore::new()))
    }

    /// A fresh table, created from infra/template.yaml, on the DynamoDB Local that
    /// the test command started.
    pub async fn dynamo() -> TestStore {
        let endpoint = std::env::var(DYNAMODB_ENDPOINT_VAR).unwrap_or_else(|_| {
            panic!(
                "{DYNAMODB_ENDPOINT_VAR} is not set: run the suite with scripts/test, which starts DynamoDB Local"
            )
        });
        let client = DynamoStore::local_client(&endpoint);
        let table = format!("t-{}", uuid::Uuid::new_v4().simple());
        TableDefinition::coedit()
            .unwrap()
            .create(&client, &table)
            .await
            .unwrap();
        TestStore::Dynamo(Arc::new(DynamoStore::new(client, table)))
    }

    /// The fault-injecting wrapper with its faults off: it must behave as what it
    /// wraps, or the fault tests would test something else.
    pub fn faulty() -> TestStore {
        let inner = Arc::new(MemoryStore::new());
        let faulty = FaultyStore::new(inner.clone(), Arc::new(Rate::new(0.0)), Default::default());
        TestStore::Faulty(Arc::new(faulty), inner)
    }

    pub fn store(&self) -> Arc<dyn SessionStore> {
        match self {
            TestStore::Faulty(s, _) => s.clone(),
            TestStore::Memory(s) => s.clone(),
            TestStore::Dynamo(s) => s.clone(),
        }
    }

    /// Requests that changed stored data so far: for checking that a refused
    /// request wrote nothing.
    pub fn writes(&self) -> u64 {
        match self {
            TestStore::Memory(s) | TestStore::Faulty(_, s) => s.write_count(),
            TestStore::Dynamo(s) => s.meter().totals().write_requests,
        }
    }
}

/// A DynamoDB store pointed at a loopback port where nothing listens.
pub fn unreachable_dynamo() -> Arc<DynamoStore> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    Arc::new(DynamoStore::new(
        DynamoStore::local_client(&endpoint),
        "coedit",
    ))
}

/// Runs each named test body against both stores:
/// `both_stores!(name, ...)` with `async fn name(store: TestStore)` in scope.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::TestStore::memory()).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::TestStore::dynamo().await).await
                }
            )*
        }
    };
}

/// Runs each named test body against every store: the two real ones and the
/// fault-injecting wrapper with its faults off. For the store's own contract.
#[macro_export]
macro_rules! every_store {
    ($($name:ident),* $(,)?) => {
        $crate::both_stores!($($name),*);
        mod faulty {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::TestStore::faulty()).await
                }
            )*
        }
    };
}

pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub store: TestStore,
    /// The connections the app pushes to, as the local stack keeps them.
    pub hub: Arc<LocalConnections>,
    /// A key of tenant `acme` on the large plan.
    pub api_key: String,
    /// The host events every instance of this app published.
    pub events: Arc<LocalEvents>,
}

/// The join token secret of test apps (random per run; tests that forge tokens
/// read it from here).
pub fn test_secret() -> SigningSecret {
    static SECRET: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let bytes = SECRET.get_or_init(|| {
        (0..4)
            .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
            .collect()
    });
    SigningSecret::new(bytes.clone()).unwrap()
}

pub const TEST_WEBSOCKET_URL: &str = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod";

pub fn test_config() -> Config {
    Config {
        join_token_secret: Some(test_secret()),
        websocket_url: Some(TEST_WEBSOCKET_URL.into()),
        // A test app's clock stands still unless the test moves it, so a budget per
        // second would be a budget per test: these suites send hundreds of
        // messages a connection. The budget itself is tested over real sockets
        // (tests/tests/websocket.rs), with the deployment's default.
        message_budget: coedit::session::rate::MessageBudget {
            per_second: 20,
            burst: 1_000_000,
        },
        ..Config::default()
    }
}

impl TestApp {
    pub async fn new(store: TestStore) -> TestApp {
        TestApp::with_config(store, test_config()).await
    }

    pub async fn with_config(store: TestStore, config: Config) -> TestApp {
        let clock = Arc::new(ManualClock::starting_now());
        let hub = Arc::new(LocalConnections::new());
        let events = Arc::new(LocalEvents::new(false));
        let app = Arc::new(
            App::new(config, store.store(), hub.clone(), clock.clone()).with_events(events.clone()),
        );
        let t = TestApp {
            app,
            clock,
            store,
            hub,
            api_key: String::new(),
            events,
        };
        let api_key = t.add_key("acme", Plan::Large).await;
        TestApp { api_key, ..t }
    }

    /// A new session of tenant `acme` from the hackathon fixture; its id.
    pub async fn create_session(&self) -> String {
        let body = serde_json::to_vec(
            &json!({"template": fixture("hackathon-playground-template.json"), "userid": "host"}),
        )
        .unwrap();
        let res = call(
            &self.app,
            coedit::handlers::create_session::handle,
            Event::create_session(Some(&self.api_key), body),
        )
        .await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.json()["sessionId"].as_str().unwrap().to_owned()
    }

    /// A new session of tenant `acme` from `template`; its id.
    pub async fn create_session_from(&self, template: &Value) -> String {
        let body = serde_json::to_vec(&json!({"template": template, "userid": "host"})).unwrap();
        let res = call(
            &self.app,
            coedit::handlers::create_session::handle,
            Event::create_session(Some(&self.api_key), body),
        )
        .await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.json()["sessionId"].as_str().unwrap().to_owned()
    }

    /// Another warm function instance: its own memory (templates, connection
    /// lookups), the same store, clock and connections.
    pub fn another_instance(&self) -> Arc<App> {
        Arc::new(
            App::new(
                self.app.config.clone(),
                self.store.store(),
                self.hub.clone(),
                self.clock.clone(),
            )
            .with_events(self.events.clone()),
        )
    }

    /// `GET /v1/coedit/session/{id}` with `credential` (an API key or a join token).
    pub async fn get(&self, credential: &str, id: &str) -> Answer {
        call(
            &self.app,
            coedit::handlers::get_session::handle,
            Event::get_session(Some(credential), id),
        )
        .await
    }

    pub async fn add_key(&self, tenant: &str, plan: Plan) -> String {
        let key = generate_api_key().unwrap();
        self.app
            .store
            .put_api_key(&ApiKeyRecord {
                hash: KeyHash::of(&key),
                tenant: TenantId::parse(tenant).unwrap(),
                plan,
                max_editors: None,
                created_at: self.clock.now(),
            })
            .await
            .unwrap();
        key
    }
}

/// An HTTP API (payload format 2.0) event as API Gateway sends it to a function,
/// parsed the way lambda_http parses it in production.
pub struct Event {
    pub method: &'static str,
    pub route_key: &'static str,
    pub path: String,
    pub path_parameters: Option<Value>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub base64: bool,
    /// `a=1&b=2`, as API Gateway passes it on.
    pub query: String,
}

impl Event {
    pub fn create_session(api_key: Option<&str>, body: impl Into<Vec<u8>>) -> Event {
        Event {
            method: "POST",
            route_key: "POST /v1/coedit/session",
            path: "/v1/coedit/session".into(),
            path_parameters: None,
            headers: bearer(api_key),
            body: Some(body.into()),
            base64: false,
            query: String::new(),
        }
    }

    /// `PUT /v1/coedit/templates/{templateKey}/session`: start or join by key.
    pub fn start_session(api_key: Option<&str>, key: &str, body: impl Into<Vec<u8>>) -> Event {
        Event {
            method: "PUT",
            route_key: "PUT /v1/coedit/templates/{templateKey}/session",
            path: format!("/v1/coedit/templates/{key}/session"),
            path_parameters: Some(json!({ "templateKey": key })),
            headers: bearer(api_key),
            body: Some(body.into()),
            base64: false,
            query: String::new(),
        }
    }

    /// `GET /v1/coedit/session/{id}/final`.
    pub fn final_template(api_key: Option<&str>, id: &str) -> Event {
        let route = "GET /v1/coedit/session/{id}/final";
        Event::on_session("GET", route, "/final", id, api_key, None)
    }

    pub fn join_session(api_key: Option<&str>, id: &str, body: impl Into<Vec<u8>>) -> Event {
        Event::on_session(
            "POST",
            "POST /v1/coedit/session/{id}/join",
            "/join",
            id,
            api_key,
            Some(body.into()),
        )
    }

    pub fn get_session(api_key: Option<&str>, id: &str) -> Event {
        Event::on_session("GET", "GET /v1/coedit/session/{id}", "", id, api_key, None)
    }

    /// A route under `/v1/coedit/session/{id}`; `suffix` is what follows the id.
    fn on_session(
        method: &'static str,
        route_key: &'static str,
        suffix: &str,
        id: &str,
        credential: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Event {
        Event {
            method,
            route_key,
            path: format!("/v1/coedit/session/{id}{suffix}"),
            path_parameters: Some(json!({ "id": id })),
            headers: bearer(credential),
            body,
            base64: false,
            query: String::new(),
        }
    }

    /// `GET /v1/coedit/session/{id}/history?<query>`.
    pub fn history(credential: Option<&str>, id: &str, query: &str) -> Event {
        let route = "GET /v1/coedit/session/{id}/history";
        let mut e = Event::on_session("GET", route, "/history", id, credential, None);
        e.query = query.to_owned();
        e
    }

    /// `GET /v1/coedit/session/{id}/versions/{n}`.
    pub fn version(credential: Option<&str>, id: &str, n: &str) -> Event {
        let route = "GET /v1/coedit/session/{id}/versions/{n}";
        let mut e = Event::on_session(
            "GET",
            route,
            &format!("/versions/{n}"),
            id,
            credential,
            None,
        );
        e.path_parameters = Some(json!({ "id": id, "n": n }));
        e
    }

    /// `POST /v1/coedit/session/{id}/changes`.
    pub fn post_change(credential: Option<&str>, id: &str, body: impl Into<Vec<u8>>) -> Event {
        let route = "POST /v1/coedit/session/{id}/changes";
        Event::on_session("POST", route, "/changes", id, credential, Some(body.into()))
    }

    pub fn request(&self) -> lambda_http::Request {
        use base64::Engine as _;
        let mut headers = serde_json::Map::new();
        headers.insert(
            "host".into(),
            "abc123.execute-api.eu-west-1.amazonaws.com".into(),
        );
        headers.insert("user-agent".into(), "curl/8.5.0".into());
        headers.insert("content-type".into(), "application/json".into());
        for (k, v) in &self.headers {
            headers.insert(k.to_lowercase(), v.clone().into());
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.10",
                    "userAgent": "curl/8.5.0"
                },
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": self.route_key,
                "stage": "$default",
                "time": "23/Nov/2026:10:00:00 +0000",
                "timeEpoch": 1795428000000u64
            },
            "isBase64Encoded": self.base64
        });
        if let Some(p) = &self.path_parameters {
            event["pathParameters"] = p.clone();
        }
        if !self.query.is_empty() {
            event["rawQueryString"] = self.query.clone().into();
            let params: serde_json::Map<String, Value> = self
                .query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), Value::from(v)))
                .collect();
            event["queryStringParameters"] = params.into();
        }
        if let Some(body) = &self.body {
            event["body"] = if self.base64 {
                base64::engine::general_purpose::STANDARD
                    .encode(body)
                    .into()
            } else {
                String::from_utf8(body.clone()).expect("a text body").into()
            };
        }
        lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API event")
    }
}

fn bearer(api_key: Option<&str>) -> Vec<(String, String)> {
    api_key
        .map(|k| vec![("Authorization".to_owned(), format!("Bearer {k}"))])
        .unwrap_or_default()
}

pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts a protocol error answer: status, code, and a detail containing `says`.
    pub fn assert_error(&self, status: u16, code: u16, says: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        assert_eq!(v["code"], code, "{}", self.body);
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "detail {detail:?} lacks {says:?}");
    }
}

pub async fn call(
    app: &App,
    handler: impl AsyncFnOnce(&App, lambda_http::Request) -> lambda_http::Response<lambda_http::Body>,
    event: Event,
) -> Answer {
    let res = handler(app, event.request()).await;
    let status = res.status().as_u16();
    let body = match res.into_body() {
        lambda_http::Body::Text(t) => t,
        lambda_http::Body::Binary(b) => String::from_utf8(b).unwrap(),
        _ => String::new(),
    };
    Answer { status, body }
}

/// Items stored under a session's partition, read straight from the store.
pub async fn items_left(store: &TestStore, id: &str) -> usize {
    match store {
        TestStore::Memory(m) | TestStore::Faulty(_, m) => {
            let far_past = coedit::clock::Timestamp(0);
            let exists = m
                .read_members(&coedit::session::SessionId::parse(id).unwrap(), far_past)
                .await
                .unwrap()
                .is_some()
                || !m
                    .history(
                        &coedit::session::SessionId::parse(id).unwrap(),
                        coedit::session::Version(0),
                        10,
                        usize::MAX,
                    )
                    .await
                    .unwrap()
                    .is_empty();
            usize::from(exists)
        }
        TestStore::Dynamo(d) => session_items(d, &SessionId::parse(id).unwrap()).await.len(),
    }
}

/// Every item in a session's partition on DynamoDB (one consistent Query page).
pub async fn session_items(
    d: &DynamoStore,
    id: &SessionId,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    d.client()
        .query()
        .table_name(d.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(session_pk(id)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

/// The repository's root (`infra/`, `docs/`, `clients/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The environment variables the functions' configuration reads, as it reads them.
pub fn config_variables() -> Vec<String> {
    let asked = std::sync::Mutex::new(Vec::new());
    let _ = coedit::config::Config::from_lookup(|name| {
        asked.lock().unwrap().push(name.to_owned());
        None
    });
    asked.into_inner().unwrap()
}

pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("COEDIT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/templates"))
}

/// Every fixture template (the `json_data` of wrapper files), by file name.
pub fn fixture_templates() -> Vec<(String, Value)> {
    let dir = fixtures_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if let Some(inner) = v.get_mut("json_data") {
                v = inner.take();
            }
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 6,
        "expected the fixture templates in {}",
        dir.display()
    );
    out
}

pub fn fixture(name: &str) -> Value {
    fixture_templates()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

/// A template of at least `bytes` bytes: the playground fixture's rows repeated,
/// each copy with new row and module uuids, as a long real email would be.
pub fn large_template(bytes: usize) -> Value {
    let mut t = fixture("playground-template.json");
    let rows = t["page"]["rows"].as_array().unwrap().clone();
    let mut size = serde_json::to_string(&t).unwrap().len();
    let mut i = 0;
    while size < bytes {
        let mut row = rows[i % rows.len()].clone();
        row["uuid"] = uuid::Uuid::new_v4().to_string().into();
        for column in row["columns"].as_array_mut().into_iter().flatten() {
            for module in column["modules"].as_array_mut().into_iter().flatten() {
                module["uuid"] = uuid::Uuid::new_v4().to_string().into();
            }
        }
        size += serde_json::to_string(&row).unwrap().len() + 1;
        t["page"]["rows"].as_array_mut().unwrap().push(row);
        i += 1;
    }
    t
}

/// A template that compresses poorly, so its snapshot needs several parts.
pub fn incompressible_template(bytes: usize) -> Value {
    let mut noise = vec![0u8; bytes / 2];
    getrandom_fill(&mut noise);
    let text: String = noise.iter().map(|b| format!("{b:02x}")).collect();
    json!({"page": {"rows": [{"uuid": "r", "columns": [{"modules": [
        {"uuid": "m", "type": "mailup-bee-newsletter-modules-text", "descriptor": {"text": {"html": text}}}
    ]}]}]}})
}

fn getrandom_fill(buf: &mut [u8]) {
    // uuid v4s are random: enough noise for a test without another dependency.
    for chunk in buf.chunks_mut(16) {
        let r = uuid::Uuid::new_v4().into_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
}

/// The canonical form a template is stored and returned in: compact, key order kept.
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// A template as the server keeps it: with `comments` (`{}` when it had none).
pub fn with_comments(template: &Value) -> Value {
    let mut kept = template.clone();
    if let Some(root) = kept.as_object_mut() {
        root.entry("comments").or_insert_with(|| json!({}));
    }
    kept
}
