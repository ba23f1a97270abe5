//! Every AWS call a function makes is bounded (`aws_call_timeouts`): against an
//! endpoint that accepts connections and never answers, DynamoDB, the management
//! API and EventBridge calls each fail with a clear error instead of holding the
//! function until Lambda kills it. The clients are built exactly as the Lambda
//! functions build them, from the environment (hence a test binary of its own).

use std::time::Duration;

use coedit::Code;
use coedit::events::eventbridge::EventBridgeEvents;
use coedit::events::{EventDetail, EventKind, HostEvent, HostEvents};
use coedit::notify::{ApiGatewayNotifier, Notifier};
use coedit::session::{SessionId, TenantId, Version};
use coedit::store::{DynamoStore, SessionLogStore};

/// Accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// The call, which must end by itself: the guard is far beyond the bounds and
/// only keeps a regression from hanging the suite.
async fn ends<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("an AWS call outlived every bound")
}

#[tokio::test]
async fn calls_to_an_endpoint_that_never_answers_fail_instead_of_hanging() {
    let url = black_hole().await;
    // SAFETY: set before any client reads them; this test binary has one test.
    unsafe {
        std::env::set_var("AWS_REGION", "eu-west-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &url);
        std::env::set_var("AWS_ENDPOINT_URL_EVENTBRIDGE", &url);
    }

    let store = DynamoStore::from_lambda_env("coedit").unwrap();
    let err = ends(store.head_version(&SessionId::generate()))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{}", err.detail);

    let notifier = ApiGatewayNotifier::from_lambda_env(&url).unwrap();
    assert!(ends(notifier.post("abc=", "{}")).await.is_err());

    let events = EventBridgeEvents::from_lambda_env("coedit").unwrap();
    let detail = EventDetail::new(
        &TenantId::parse("t").unwrap(),
        &SessionId::generate(),
        None,
        Version(1),
        coedit::clock::Timestamp(0),
        0,
    );
    let err = ends(events.publish(&HostEvent::new(EventKind::SessionUpdated, detail)))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{}", err.detail);
}
