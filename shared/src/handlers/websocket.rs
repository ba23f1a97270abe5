//! What the WebSocket handlers share: reading API Gateway's WebSocket events and
//! writing the responses it expects.
//!
//! For `$connect`, a non-2xx status refuses the upgrade. For message routes whose
//! route response is enabled (`ping`), the body is sent back to the client.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use lambda_http::http::{HeaderMap, HeaderValue, header};

use crate::error::{Error, Result};
use crate::session::message::ServerMessage;

pub type WebSocketEvent = ApiGatewayWebsocketProxyRequest;
pub type WebSocketResponse = ApiGatewayProxyResponse;

/// The id API Gateway gave the connection.
pub fn connection_id(event: &WebSocketEvent) -> Result<&str> {
    event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or_else(|| Error::unexpected("the event carries no connection id"))
}

/// A query string parameter of `$connect`.
pub fn query<'a>(event: &'a WebSocketEvent, name: &str) -> Option<&'a str> {
    event.query_string_parameters.first(name)
}

/// The message a client sent, as text.
pub fn body(event: &WebSocketEvent) -> Result<String> {
    let text = event.body.clone().unwrap_or_default();
    if event.is_base64_encoded {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| Error::malformed("message: the base64 body does not decode"))?;
        return String::from_utf8(bytes)
            .map_err(|_| Error::malformed("message: must be UTF-8 text"));
    }
    Ok(text)
}

fn response(status: u16, body: Option<String>) -> WebSocketResponse {
    let mut headers = HeaderMap::new();
    if body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let mut res = WebSocketResponse::default();
    res.status_code = status.into();
    res.headers = headers;
    res.body = body.map(Body::Text);
    res
}

/// Accepted, nothing to say.
pub fn ok() -> WebSocketResponse {
    response(200, None)
}

/// Accepted, with a message for the client (the route response).
pub fn reply(message: &ServerMessage<'_>) -> WebSocketResponse {
    response(200, Some(message.to_json()))
}

/// Accepted, with a message already serialized.
pub fn reply_json(message: String) -> WebSocketResponse {
    response(200, Some(message))
}

/// Refused: the error's HTTP status and the protocol's error message.
pub fn refuse(err: &Error) -> WebSocketResponse {
    if err.code.http_status() >= 500 {
        tracing::error!(code = err.code.number(), detail = %err.detail, "websocket request failed");
    } else {
        tracing::info!(code = err.code.number(), detail = %err.detail, "websocket request refused");
    }
    response(
        err.code.http_status(),
        Some(ServerMessage::error(err).to_json()),
    )
}
