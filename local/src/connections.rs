//! API Gateway's management endpoint (`/@connections/{id}`) over HTTP, backed by the
//! in-process hub, so `aws-sdk-apigatewaymanagement` (and the functions' own
//! `ApiGatewayNotifier`) work unchanged against the local stack.
//!
//! `POST` sends the body to the connection, `DELETE` closes it, `GET` describes it;
//! an unknown id answers 410 `GoneException`, as API Gateway does. The path may
//! carry a stage prefix (`/prod/@connections/...`); ids arrive percent-encoded.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coedit::notify::{Delivery, LocalConnections, Notifier};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// API Gateway's limit for one WebSocket message.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// The management endpoint's state: the hub, and a fault knob for tests and
/// demos of throttling.
pub struct ConnectionsApi {
    hub: Arc<LocalConnections>,
    throttle_next: AtomicUsize,
}

impl ConnectionsApi {
    pub fn new(hub: Arc<LocalConnections>) -> Self {
        ConnectionsApi {
            hub,
            throttle_next: AtomicUsize::new(0),
        }
    }

    /// Answers the next `n` calls with 429 `LimitExceededException`, as API
    /// Gateway does when a client is flooded.
    pub fn throttle_next(&self, n: usize) {
        self.throttle_next.store(n, Ordering::SeqCst);
    }

    fn take_throttle(&self) -> bool {
        self.throttle_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, api: Arc<ConnectionsApi>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(handle(&api, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

pub async fn handle(api: &ConnectionsApi, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(encoded) = path
        .split_once("/@connections/")
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty() && !id.contains('/'))
    else {
        return error(StatusCode::NOT_FOUND, "NotFoundException", "Not Found");
    };
    let id = percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned();
    if api.take_throttle() {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "Rate exceeded",
        );
    }
    let method = req.method().clone();
    let delivery = match method {
        Method::POST => {
            let bytes = match Limited::new(req.into_body(), MAX_MESSAGE_BYTES)
                .collect()
                .await
            {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PayloadTooLargeException",
                        "Message too long",
                    );
                }
            };
            let text = String::from_utf8_lossy(&bytes);
            api.hub.post(&id, &text).await
        }
        Method::DELETE => api.hub.close(&id).await,
        Method::GET if api.hub.is_open(&id) => Ok(Delivery::Sent),
        Method::GET => Ok(Delivery::Gone),
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequestException",
                "Method not allowed",
            );
        }
    };
    match delivery {
        Ok(Delivery::Sent) if method == Method::GET => json(
            StatusCode::OK,
            r#"{"identity":{"sourceIp":"127.0.0.1"}}"#.into(),
        ),
        Ok(Delivery::Sent) if method == Method::DELETE => {
            json(StatusCode::NO_CONTENT, String::new())
        }
        Ok(Delivery::Sent) => json(StatusCode::OK, String::new()),
        Ok(Delivery::Gone) => error(StatusCode::GONE, "GoneException", "Gone"),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            &e.detail,
        ),
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

/// An error the way API Gateway's REST-JSON services send one: the type in
/// `x-amzn-ErrorType`, a message in the body.
fn error(status: StatusCode, kind: &'static str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut res = json(status, body);
    res.headers_mut().insert(
        "x-amzn-ErrorType",
        hyper::header::HeaderValue::from_static(kind),
    );
    res
}
