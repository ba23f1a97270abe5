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

/// A message answered with an error (with the `changeId` of the change it
/// refuses), counted by its code.
pub fn answer_error(err: &Error, change_id: Option<&str>) -> WebSocketResponse {
    crate::metrics::refused(err);
    reply(&ServerMessage::edit_error(err, change_id))
}

/// Refused: the error's HTTP status and the protocol's error message.
pub fn refuse(err: &Error) -> WebSocketResponse {
    crate::metrics::refused(err);
    if err.code.http_status() >= 500 {
        tracing::error!(code = err.code.number(), detail = %err.detail, "websocket request failed");
    } else {
        // A refusal's detail quotes the request: kept out of the INFO log.
        tracing::info!(code = err.code.number(), "websocket request refused");
        tracing::debug!(code = err.code.number(), detail = %err.detail, "websocket request refused");
    }
    response(
        err.code.http_status(),
        Some(ServerMessage::error(err).to_json()),
    )
}

/// What an API Gateway WebSocket event is made of, for emulating the gateway (the
/// local stack) and in tests. `to_event` gives the event exactly as a function
/// receives it from API Gateway.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// `$connect`, `$disconnect`, `$default` or a route key such as `ping`.
    pub route: &'a str,
    pub connection_id: &'a str,
    pub stage: &'a str,
    /// The API's host name, e.g. `abc123.execute-api.eu-west-1.amazonaws.com`.
    pub domain: &'a str,
    pub source_ip: &'a str,
    /// When the connection opened and when this event happened, epoch ms.
    pub connected_at: i64,
    pub request_time: i64,
    /// `$connect` only.
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    /// Message routes: the frame's text.
    pub body: Option<&'a str>,
    /// `$disconnect` only: the close code and reason.
    pub close: Option<(u16, &'a str)>,
}

impl Incoming<'_> {
    pub fn to_event(&self) -> Result<WebSocketEvent> {
        use serde_json::{Map, Value, json};
        let event_type = match self.route {
            "$connect" => "CONNECT",
            "$disconnect" => "DISCONNECT",
            _ => "MESSAGE",
        };
        let api_id = self.domain.split('.').next().unwrap_or_default();
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let time = chrono::DateTime::from_timestamp_millis(self.request_time)
            .unwrap_or_default()
            .format("%d/%b/%Y:%H:%M:%S %z")
            .to_string();
        let mut context = json!({
            "routeKey": self.route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": time,
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": self.connected_at,
            "requestTimeEpoch": self.request_time,
            "identity": {"sourceIp": self.source_ip},
            "requestId": request_id,
            "domainName": self.domain,
            "connectionId": self.connection_id,
            "apiId": api_id
        });
        if let Some((code, reason)) = self.close {
            context["disconnectStatusCode"] = code.into();
            context["disconnectReason"] = reason.into();
        }
        let mut event = json!({"requestContext": context, "isBase64Encoded": false});
        if self.route == "$connect" {
            let headers: Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            event["headers"] = headers.into();
            if !self.query.is_empty() {
                let single: Map<String, Value> = self
                    .query
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                let mut multi: Map<String, Value> = Map::new();
                for (k, v) in self.query {
                    let list = multi.entry(k.clone()).or_insert_with(|| json!([]));
                    if let Value::Array(items) = list {
                        items.push(v.as_str().into());
                    }
                }
                event["queryStringParameters"] = single.into();
                event["multiValueQueryStringParameters"] = multi.into();
            }
        }
        if let Some(body) = self.body {
            event["body"] = body.into();
        }
        serde_json::from_value(event)
            .map_err(|e| Error::unexpected(format!("building a WebSocket event: {e}")))
    }
}
