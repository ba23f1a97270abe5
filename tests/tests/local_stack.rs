//! The local stack over real TCP sockets: what a developer's curl or browser sees.

use std::sync::Arc;

use coedit::App;
use coedit::clock::SystemClock;
use coedit::config::Config;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;

struct Stack {
    base: String,
    key: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn start(dynamodb_endpoint: Option<&str>) -> Stack {
    let table = format!("local-{}", uuid::Uuid::new_v4().simple());
    let store = coedit_local::open_store(dynamodb_endpoint, &table)
        .await
        .unwrap();
    let app = Arc::new(App::new(
        Config::default(),
        store,
        Arc::new(coedit::notify::LocalConnections::new()),
        Arc::new(SystemClock),
    ));
    let key = coedit::auth::generate_api_key().unwrap();
    coedit_local::register_dev_key(&app, &key, 20)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coedit_local::rest::serve(listener, app, None));
    Stack {
        base,
        key,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl Stack {
    async fn send(&self, method: Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = self.client.request(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

async fn create_get_and_gateway_answers(stack: Stack) {
    let template = json!({"page": {"rows": [{"columns": [{"modules": [{"type": "text"}]}]}]}});
    let body = serde_json::to_vec(&json!({"template": template, "userid": "me"})).unwrap();
    let (status, created) = stack.send(Method::POST, "/v1/coedit/session", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["sessionId"].as_str().unwrap();

    let (status, got) = stack
        .send(Method::GET, &format!("/v1/coedit/session/{id}"), vec![])
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["template"], created["template"]);
    assert_eq!(got["version"], 1);

    let (status, missing) = stack
        .send(
            Method::GET,
            &format!("/v1/coedit/session/{}", uuid::Uuid::new_v4()),
            vec![],
        )
        .await;
    assert_eq!((status, missing["code"].as_u64()), (404, Some(5150)));

    // Answers API Gateway gives before any function runs.
    let (status, body) = stack
        .send(Method::DELETE, "/v1/coedit/session", vec![])
        .await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    let huge = vec![b' '; coedit_local::rest::API_GATEWAY_MAX_BODY + 1];
    let (status, body) = stack.send(Method::POST, "/v1/coedit/session", huge).await;
    assert_eq!(
        (status, body),
        (413, json!({"message": "Request Entity Too Large"}))
    );
}

#[tokio::test]
async fn over_http_with_the_embedded_store() {
    create_get_and_gateway_answers(start(None).await).await;
}

#[tokio::test]
async fn over_http_with_dynamodb_local() {
    let endpoint = std::env::var("COEDIT_TEST_DYNAMODB_ENDPOINT")
        .expect("COEDIT_TEST_DYNAMODB_ENDPOINT is not set: run the suite with scripts/test");
    create_get_and_gateway_answers(start(Some(&endpoint)).await).await;
}
