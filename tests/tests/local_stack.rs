//! The local stack over real TCP sockets: what a developer's curl or browser sees.

use coedit_tests::stack::{Options, Routes, Stack, dynamodb_local};
use hyper::Method;
use serde_json::json;

/// A body sent as bytes, with the stack's API key.
async fn send(
    routes: &Routes,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    routes.send(method, path, body, Some(&routes.key)).await
}

async fn create_get_and_gateway_answers(stack: Stack) {
    let routes = &stack.routes;
    let template = json!({"page": {"rows": [{"columns": [{"modules": [{"type": "text"}]}]}]}});
    let body = serde_json::to_vec(&json!({"template": template, "userid": "me"})).unwrap();
    let (status, created) = send(routes, Method::POST, "/v1/coedit/session", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["sessionId"].as_str().unwrap();

    let (status, got) = send(
        routes,
        Method::GET,
        &format!("/v1/coedit/session/{id}"),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["template"], created["template"]);
    assert_eq!(got["version"], 1);

    let (status, missing) = send(
        routes,
        Method::GET,
        &format!("/v1/coedit/session/{}", uuid::Uuid::new_v4()),
        vec![],
    )
    .await;
    assert_eq!((status, missing["code"].as_u64()), (404, Some(5150)));

    // Answers API Gateway gives before any function runs.
    let (status, body) = send(routes, Method::DELETE, "/v1/coedit/session", vec![]).await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    let huge = vec![b' '; coedit_local::rest::API_GATEWAY_MAX_BODY + 1];
    let (status, body) = send(routes, Method::POST, "/v1/coedit/session", huge).await;
    assert_eq!(
        (status, body),
        (413, json!({"message": "Request Entity Too Large"}))
    );
}

#[tokio::test]
async fn over_http_with_the_embedded_store() {
    create_get_and_gateway_answers(Stack::start(Options::embedded()).await).await;
}

#[tokio::test]
async fn over_http_with_dynamodb_local() {
    let stack = Stack::start(Options::on(Some(&dynamodb_local()))).await;
    create_get_and_gateway_answers(stack).await;
}

/// A chosen dev key must look like an API key: one that does not would pass the
/// key routes but be taken for a join token by the routes that accept both.
#[tokio::test]
async fn a_chosen_dev_key_works_on_every_route_or_is_refused_at_start() {
    let stack = Stack::start(Options::embedded()).await;
    let refused = coedit_local::register_dev_key(&stack.app, "dev-abc123", 20)
        .await
        .unwrap_err();
    assert_eq!(refused.code.number(), 4000);
    assert!(refused.detail.contains("'ck_'"), "{}", refused.detail);
    assert!(!refused.detail.contains("dev-abc123"), "{}", refused.detail);

    let key = "ck_dev-0123456789abcdef";
    coedit_local::register_dev_key(&stack.app, key, 20)
        .await
        .unwrap();
    let routes = Routes::new(&stack.routes.base, key);
    let template = json!({"page": {"rows": []}});
    let (id, _) = routes.create(&template).await;
    let (status, got) = routes
        .call(
            Method::GET,
            &format!("/v1/coedit/session/{id}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(routes.join(&id, 1).await.0, 200);
}
