//! API Gateway's WebSocket API on 127.0.0.1, which neither `sam local` nor
//! `cargo lambda watch` offers: the upgrade is refused unless `$connect` answers
//! 2xx; each text frame is routed on `$request.body.action` (or `$default`) to its
//! function, whose response body goes back as the route response; `$disconnect`
//! follows every close, clean or not; messages over 128 KB close the connection
//! with 1009 and an idle connection is closed after 10 minutes, as API Gateway
//! does. The management endpoint (`/{stage}/@connections/{id}`) is served on the
//! same port, as on AWS, so functions post through it unchanged.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use coedit::handlers::websocket::{Incoming as GatewayEvent, WebSocketEvent, WebSocketResponse};
use coedit::notify::LocalConnections;
use coedit::notify::local::Outbound;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::connections::{self, ConnectionsApi, MAX_MESSAGE_BYTES};
use crate::functions::Functions;
use crate::metrics::Metrics;

/// The route keys the stack's WebSocket API has besides `$connect`,
/// `$disconnect` and `$default` (infra/template.yaml).
pub const ROUTE_KEYS: [&str; 5] = ["ping", "edit", "lock", "unlock", "sync"];

/// API Gateway closes a connection that has been idle this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Gateway {
    pub functions: Arc<dyn Functions>,
    pub hub: Arc<LocalConnections>,
    pub management: Arc<ConnectionsApi>,
    pub stage: String,
    pub idle_timeout: Duration,
    /// Counts messages in and out, when set (the load generator reads them).
    pub metrics: Option<Arc<Metrics>>,
}

impl Gateway {
    pub fn new(functions: Arc<dyn Functions>, hub: Arc<LocalConnections>, stage: &str) -> Self {
        Gateway {
            functions,
            management: Arc::new(ConnectionsApi::new(hub.clone())),
            hub,
            stage: stage.to_owned(),
            idle_timeout: IDLE_TIMEOUT,
            metrics: None,
        }
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> std::io::Result<()> {
    let domain = listener.local_addr()?.to_string();
    let domain: Arc<str> = domain.into();
    loop {
        let (stream, peer) = listener.accept().await?;
        // Small messages must go out at once, not wait on Nagle and delayed ACKs
        // (a 40 ms stall per message otherwise).
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let domain = domain.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                let domain = domain.clone();
                let ip = peer.ip().to_string();
                async move { Ok::<_, Infallible>(handle(gateway, &domain, &ip, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

async fn handle(
    gateway: Arc<Gateway>,
    domain: &str,
    source_ip: &str,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.contains("/@connections/") {
        return connections::handle(&gateway.management, req).await;
    }
    let stage_path = format!("/{}", gateway.stage);
    if path.trim_end_matches('/') != stage_path {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    let key = req.headers().get(SEC_WEBSOCKET_KEY).cloned();
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = key.filter(|_| upgrade) else {
        return plain(StatusCode::UPGRADE_REQUIRED, "Upgrade Required");
    };
    connect(gateway, domain, source_ip, req, key.as_bytes()).await
}

/// `$connect`: the function decides; only a 2xx answer upgrades the connection.
async fn connect(
    gateway: Arc<Gateway>,
    domain: &str,
    source_ip: &str,
    mut req: Request<Incoming>,
    key: &[u8],
) -> Response<Full<Bytes>> {
    let connection_id = new_connection_id();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect()
        })
        .unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let now = now_ms();
    let place = Place {
        connection_id: connection_id.clone(),
        stage: gateway.stage.clone(),
        domain: domain.to_owned(),
        source_ip: source_ip.to_owned(),
        connected_at: now,
    };
    let event = place.event("$connect", &query, &headers, None, None);
    let answer = match event {
        Ok(event) => gateway.functions.invoke(event).await,
        Err(e) => Err(e),
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(detail = %e.detail, "$connect failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
    };
    if !(200..300).contains(&answer.status_code) {
        // API Gateway answers the handshake with the function's status and body.
        let status = StatusCode::from_u16(answer.status_code as u16)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return plain(status, &body_text(&answer).unwrap_or_default());
    }
    // The connection exists from here on: posts to it are delivered.
    let outbound = gateway.hub.open(&connection_id);
    if let Some(m) = &gateway.metrics {
        m.connection_opened();
    }
    let upgrading = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(MAX_MESSAGE_BYTES))
                    .max_frame_size(Some(MAX_MESSAGE_BYTES));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                run_connection(&gateway, &place, ws, outbound).await;
            }
            Err(e) => {
                tracing::debug!("upgrade failed: {e}");
                gateway.hub.forget(&place.connection_id);
                disconnect(&gateway, &place, 1006, "Upgrade failed").await;
            }
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key)) {
        h.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}

/// Where a connection lives: what every event of it carries.
struct Place {
    connection_id: String,
    stage: String,
    domain: String,
    source_ip: String,
    connected_at: i64,
}

impl Place {
    fn event(
        &self,
        route: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        body: Option<&str>,
        close: Option<(u16, &str)>,
    ) -> coedit::Result<WebSocketEvent> {
        GatewayEvent {
            route,
            connection_id: &self.connection_id,
            stage: &self.stage,
            domain: &self.domain,
            source_ip: &self.source_ip,
            connected_at: self.connected_at,
            request_time: now_ms(),
            query,
            headers,
            body,
            close,
        }
        .to_event()
    }
}

/// Frames in, pushes out, until either side closes; then `$disconnect`.
async fn run_connection<S>(
    gateway: &Gateway,
    place: &Place,
    ws: WebSocketStream<S>,
    mut outbound: UnboundedReceiver<Outbound>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut frames) = ws.split();
    let (code, reason): (u16, String) = loop {
        tokio::select! {
            frame = tokio::time::timeout(gateway.idle_timeout, frames.next()) => {
                let text = match frame {
                    Err(_) => {
                        let _ = sink.send(close(CloseCode::Away, "Going away")).await;
                        break (1001, "Idle timeout".into());
                    }
                    Ok(None) => break (1006, "Connection lost".into()),
                    Ok(Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(_)))) => {
                        let _ = sink.send(close(CloseCode::Size, "Message too big")).await;
                        break (1009, "Message too big".into());
                    }
                    Ok(Some(Err(_))) => break (1006, "Connection lost".into()),
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        let _ = sink.send(Message::Close(None)).await;
                        break (code, reason);
                    }
                    Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
                    Ok(Some(Ok(Message::Binary(bytes)))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Ok(Some(Ok(_))) => continue,
                };
                if let Some(m) = &gateway.metrics {
                    m.message_in(text.len());
                }
                let route = select_route(&text);
                let answer = match place.event(route, &[], &[], Some(&text), None) {
                    Ok(event) => gateway.functions.invoke(event).await,
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(answer) => {
                        if let Some(reply) = body_text(&answer).filter(|b| !b.is_empty()) {
                            if let Some(m) = &gateway.metrics {
                                m.message_out(reply.len());
                            }
                            if sink.send(Message::text(reply)).await.is_err() {
                                break (1006, "Connection lost".into());
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(route, detail = %e.detail, "a route failed");
                        let internal = r#"{"message": "Internal server error"}"#;
                        let _ = sink.send(Message::text(internal)).await;
                    }
                }
            }
            pushed = outbound.recv() => match pushed {
                Some(Outbound::Message(text)) => {
                    if let Some(m) = &gateway.metrics {
                        m.message_out(text.len());
                    }
                    if sink.send(Message::text(text)).await.is_err() {
                        break (1006, "Connection lost".into());
                    }
                }
                // Closed through the management API (DELETE @connections/{id}).
                Some(Outbound::Close) | None => {
                    let _ = sink.send(close(CloseCode::Normal, "Connection closed by server")).await;
                    break (1000, "Connection closed by server".into());
                }
            }
        }
    };
    gateway.hub.forget(&place.connection_id);
    disconnect(gateway, place, code, &reason).await;
}

async fn disconnect(gateway: &Gateway, place: &Place, code: u16, reason: &str) {
    let event = place.event("$disconnect", &[], &[], None, Some((code, reason)));
    let result = match event {
        Ok(event) => gateway.functions.invoke(event).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(detail = %e.detail, "$disconnect failed");
    }
}

/// `$request.body.action` when it names a route, else `$default`.
pub fn select_route(body: &str) -> &'static str {
    let action = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
    action
        .and_then(|a| ROUTE_KEYS.iter().find(|k| **k == a).copied())
        .unwrap_or("$default")
}

fn close(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn body_text(res: &WebSocketResponse) -> Option<String> {
    match &res.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => Some(t.clone()),
        Some(aws_lambda_events::encodings::Body::Binary(b)) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

fn plain(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_owned())));
    *res.status_mut() = status;
    res
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// A connection id shaped like API Gateway's: 16 characters of base64.
fn new_connection_id() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..11])
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
