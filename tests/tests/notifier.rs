//! The functions' notifier (`ApiGatewayNotifier`, aws-sdk-apigatewaymanagement)
//! against the local `@connections` server over real HTTP: posts arrive, unknown
//! connections are Gone (410), closes close, throttling is retried.

use std::sync::Arc;

use coedit::notify::local::Outbound;
use coedit::notify::{ApiGatewayNotifier, Delivery, LocalConnections, Notifier, broadcast};
use coedit_local::connections::{ConnectionsApi, serve};

async fn start() -> (
    Arc<LocalConnections>,
    Arc<ConnectionsApi>,
    ApiGatewayNotifier,
) {
    let hub = Arc::new(LocalConnections::new());
    let api = Arc::new(ConnectionsApi::new(hub.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/prod", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, api.clone()));
    (hub, api, ApiGatewayNotifier::local(&endpoint))
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Outbound>) -> Vec<Outbound> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test]
async fn posts_reach_open_connections_and_unknown_ones_are_gone() {
    let (hub, _, notifier) = start().await;
    // API Gateway ids contain '=', '+' and '/'-free base64: the SDK percent-encodes.
    let id = "L0SM9cOFvHcCIhw=";
    let mut rx = hub.open(id);
    let message = r#"{"type":"pong","version":3,"text":"héllo ✓"}"#;
    assert_eq!(notifier.post(id, message).await.unwrap(), Delivery::Sent);
    assert_eq!(drain(&mut rx), [Outbound::Message(message.into())]);

    assert_eq!(
        notifier.post("unknownId0000A=", "x").await.unwrap(),
        Delivery::Gone
    );
    assert_eq!(notifier.close(id).await.unwrap(), Delivery::Sent);
    assert_eq!(drain(&mut rx), [Outbound::Close]);
    assert_eq!(notifier.post(id, "late").await.unwrap(), Delivery::Gone);
    assert_eq!(notifier.close(id).await.unwrap(), Delivery::Gone);
}

#[tokio::test]
async fn a_broadcast_reaches_everyone_at_once_and_reports_the_gone() {
    let (hub, _, notifier) = start().await;
    let ids: Vec<String> = (0..30).map(|i| format!("conn{i:02}AAAAAAAA=")).collect();
    let mut inboxes: Vec<_> = ids.iter().take(25).map(|id| hub.open(id)).collect();
    let targets: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut gone = broadcast(&notifier, &targets, r#"{"type":"x"}"#).await;
    gone.sort();
    assert_eq!(gone, ids[25..]);
    for rx in &mut inboxes {
        assert_eq!(drain(rx), [Outbound::Message(r#"{"type":"x"}"#.into())]);
    }
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let (hub, api, notifier) = start().await;
    let mut rx = hub.open("abc=");
    api.throttle_next(2);
    assert_eq!(notifier.post("abc=", "once").await.unwrap(), Delivery::Sent);
    assert_eq!(drain(&mut rx), [Outbound::Message("once".into())]);
    // Past the retries, it is an error (5600), not a silent loss or a Gone.
    api.throttle_next(10);
    let e = notifier.post("abc=", "never").await.unwrap_err();
    assert_eq!(e.code.number(), 5600, "{e:?}");
    assert!(drain(&mut rx).is_empty());
}
