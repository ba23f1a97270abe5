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

/// A host backend developed against the local stack: start-or-join over HTTP, the
/// events at `GET /local/events` in EventBridge's envelope, and the real SDK
/// publisher (as the function binaries use it) posting to the stack's
/// EventBridge emulation.
#[tokio::test]
async fn host_events_are_served_as_eventbridge_delivers_them() {
    let stack = Stack::start(Options::embedded()).await;
    let routes = &stack.routes;
    let body = json!({"template": {"page": {"rows": []}}, "userid": "me", "version": 3});
    let path = "/v1/coedit/templates/welcome-mail/session";
    let (status, created) = routes.call(Method::PUT, path, body.clone()).await;
    assert_eq!(status, 201, "{created}");
    let (status, joined) = routes.call(Method::PUT, path, body).await;
    assert_eq!((status, &joined["sessionId"]), (200, &created["sessionId"]));

    let (status, events) = routes.call(Method::GET, "/local/events", json!(null)).await;
    assert_eq!(status, 200);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let started = &events[0];
    for field in [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ] {
        assert!(started.get(field).is_some(), "no {field}: {started}");
    }
    assert_eq!(started["detail-type"], "coedit.session.started");
    assert_eq!(started["source"], "coedit");
    assert_eq!(started["detail"]["sessionId"], created["sessionId"]);
    assert_eq!(started["detail"]["templateKey"], "welcome-mail");
    assert_eq!(started["detail"]["version"], 3);

    // The AWS SDK's PutEvents, unchanged, against the stack.
    use coedit::events::{
        EventDetail, EventKind, HostEvent, HostEvents, eventbridge::EventBridgeEvents,
    };
    let sdk = EventBridgeEvents::local(
        &format!("{}/local/eventbridge", routes.base),
        "coedit-local",
    );
    let detail = EventDetail::new(
        &coedit::session::TenantId::parse("dev").unwrap(),
        &coedit::session::SessionId::generate(),
        None,
        coedit::session::Version(9),
        stack.app.now(),
        2,
    );
    sdk.publish(&HostEvent::new(EventKind::SessionUpdated, detail))
        .await
        .unwrap();
    let (_, events) = routes.call(Method::GET, "/local/events", json!(null)).await;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["detail-type"], "coedit.session.updated");
    assert_eq!(last["detail"]["version"], 9);
    assert_eq!(last["detail"]["users"], 2);
}

/// `--events-webhook URL`: each event is posted to the host's URL, in order, in
/// EventBridge's envelope.
#[tokio::test]
async fn events_are_posted_to_the_webhook_in_order() {
    use coedit::events::{EventDetail, EventKind, HostEvent, HostEvents};
    use coedit_local::events::LocalEvents;
    use http_body_util::BodyExt;
    use hyper::body::Incoming;
    use std::sync::{Arc, Mutex};

    // The host's webhook: keeps every body it is posted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/coedit", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let keep = received.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let keep = keep.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let keep = keep.clone();
                    async move {
                        assert_eq!(req.uri().path(), "/hooks/coedit");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        keep.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(hyper::body::Bytes::new()),
                        ))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });

    let events = LocalEvents::new(false).with_webhook(&url).unwrap();
    let id = coedit::session::SessionId::generate();
    for version in 1..=5 {
        let detail = EventDetail::new(
            &coedit::session::TenantId::parse("dev").unwrap(),
            &id,
            None,
            coedit::session::Version(version),
            coedit::clock::Timestamp(0),
            1,
        );
        events
            .publish(&HostEvent::new(EventKind::SessionUpdated, detail))
            .await
            .unwrap();
    }
    for _ in 0..200 {
        if received.lock().unwrap().len() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let received = received.lock().unwrap().clone();
    let versions: Vec<u64> = received
        .iter()
        .map(|e| e["detail"]["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert_eq!(received[0]["detail-type"], "coedit.session.updated");
    assert_eq!(received[0]["source"], "coedit");
    assert!(received[0]["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(
        LocalEvents::new(false)
            .with_webhook("https://example.com/x")
            .is_err()
    );
}
