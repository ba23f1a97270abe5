//! An HTTP server in the shape of API Gateway's HTTP API: routes matched on method
//! and path, path parameters extracted, each request handed to the same handler
//! the Lambda function runs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use coedit::App;

use crate::demo::{self, Demo};
use crate::events::LocalEvents;
use coedit::handlers::{create_session, get_session, join_session, post_change};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use serde_json::Value;
use tokio::net::TcpListener;

/// API Gateway refuses larger payloads before any function runs.
pub const API_GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;

/// Serves until the task is dropped.
/// `demo`, when given, also serves the demo page and its host routes; `events`,
/// the host events (`GET /local/events`, `POST /local/eventbridge`).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    demo: Option<Arc<Demo>>,
    events: Option<Arc<LocalEvents>>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let app = app.clone();
        let demo = demo.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                let demo = demo.clone();
                let events = events.clone();
                async move {
                    Ok::<_, Infallible>(route(&app, demo.as_deref(), events.as_deref(), req).await)
                }
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

enum Route {
    DemoPage,
    DemoClient,
    DemoTemplates,
    DemoSession,
    DemoJoin,
    Metrics,
    Events,
    PutEvents,
    Create,
    StartOrJoin(String),
    Get(String),
    History(String),
    Version(String, String),
    Final(String),
    Join(String),
    PostChange(String),
}

fn match_route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, [""]) => Some(Route::DemoPage),
        (&Method::GET, ["coedit.js"]) => Some(Route::DemoClient),
        (&Method::GET, ["demo", "templates"]) => Some(Route::DemoTemplates),
        (&Method::POST, ["demo", "session"]) => Some(Route::DemoSession),
        (&Method::POST, ["demo", "join"]) => Some(Route::DemoJoin),
        (&Method::GET, ["local", "metrics"]) => Some(Route::Metrics),
        (&Method::GET, ["local", "events"]) => Some(Route::Events),
        // The SDK posts to the endpoint's path with a trailing slash.
        (&Method::POST, ["local", "eventbridge"] | ["local", "eventbridge", ""]) => {
            Some(Route::PutEvents)
        }
        (&Method::POST, ["v1", "coedit", "session"]) => Some(Route::Create),
        (&Method::PUT, ["v1", "coedit", "templates", key, "session"]) => {
            Some(Route::StartOrJoin((*key).to_owned()))
        }
        (&Method::GET, ["v1", "coedit", "session", id]) if !id.is_empty() => {
            Some(Route::Get((*id).to_owned()))
        }
        (&Method::GET, ["v1", "coedit", "session", id, "history"]) if !id.is_empty() => {
            Some(Route::History((*id).to_owned()))
        }
        (&Method::GET, ["v1", "coedit", "session", id, "versions", n])
            if !id.is_empty() && !n.is_empty() =>
        {
            Some(Route::Version((*id).to_owned(), (*n).to_owned()))
        }
        (&Method::GET, ["v1", "coedit", "session", id, "final"]) if !id.is_empty() => {
            Some(Route::Final((*id).to_owned()))
        }
        (&Method::POST, ["v1", "coedit", "session", id, "join"]) if !id.is_empty() => {
            Some(Route::Join((*id).to_owned()))
        }
        (&Method::POST, ["v1", "coedit", "session", id, "changes"]) if !id.is_empty() => {
            Some(Route::PostChange((*id).to_owned()))
        }
        _ => None,
    }
}

async fn route(
    app: &App,
    demo: Option<&Demo>,
    events: Option<&LocalEvents>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    // CORS: the local stack lets a page of any origin call it, as a deployment
    // does for the origins its `CorsAllowedOrigins` names. API Gateway answers
    // preflights itself, before any function runs.
    if req.method() == Method::OPTIONS {
        return with_cors(
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header("access-control-allow-methods", "GET, POST, PUT, OPTIONS")
                .header(
                    "access-control-allow-headers",
                    "authorization, content-type",
                )
                .header("access-control-max-age", "600")
                .body(Full::new(Bytes::new()))
                .unwrap_or_default(),
        );
    }
    with_cors(answer(app, demo, events, req).await)
}

fn with_cors(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(
        "access-control-allow-origin",
        hyper::header::HeaderValue::from_static("*"),
    );
    response
}

async fn answer(
    app: &App,
    demo: Option<&Demo>,
    events: Option<&LocalEvents>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(route) = match_route(req.method(), req.uri().path()) else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
    };
    let is_demo = matches!(
        route,
        Route::DemoPage
            | Route::DemoClient
            | Route::DemoTemplates
            | Route::DemoSession
            | Route::DemoJoin
    );
    let demo = match demo {
        Some(demo) => Some(demo),
        None if is_demo => return gateway_answer(StatusCode::NOT_FOUND, "Not Found"),
        None => None,
    };
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, API_GATEWAY_MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return gateway_answer(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
    };
    // HTTP API hands text bodies over as text and anything else base64-encoded,
    // which lambda_http decodes to binary.
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => lambda_http::Body::Empty,
        Ok(text) => lambda_http::Body::Text(text),
        Err(e) => lambda_http::Body::Binary(e.into_bytes()),
    };
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let request = lambda_http::Request::from_parts(parts, body).with_query_string_parameters(query);

    match (&route, events) {
        (Route::Events, Some(events)) => {
            return content(
                &Value::from(events.recent()).to_string(),
                "application/json",
            );
        }
        (Route::PutEvents, Some(events)) => {
            let (status, answer) = events.put_events(&bytes);
            let mut response = content(&answer.to_string(), "application/x-amz-json-1.1");
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return response;
        }
        (Route::Events | Route::PutEvents, None) => {
            return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
        }
        _ => {}
    }
    let response = match (route, demo) {
        (Route::DemoPage, _) => return content(demo::INDEX_HTML, "text/html; charset=utf-8"),
        (Route::DemoClient, _) => {
            return content(demo::CLIENT_JS, "text/javascript; charset=utf-8");
        }
        (Route::DemoTemplates, Some(demo)) => {
            let names = serde_json::to_string(&demo.template_names()).unwrap_or_default();
            return content(&names, "application/json");
        }
        (Route::DemoSession, Some(demo)) => demo.create(app, &bytes).await,
        (Route::Metrics, Some(demo)) => {
            let metrics = demo.metrics.as_ref().map(|m| m.to_json());
            return content(&metrics.unwrap_or_default().to_string(), "application/json");
        }
        (Route::DemoJoin, Some(demo)) => demo.join(app, &bytes).await,
        (Route::DemoTemplates | Route::DemoSession | Route::DemoJoin | Route::Metrics, None) => {
            return gateway_answer(StatusCode::NOT_FOUND, "Not Found");
        }
        (Route::Create, _) => create_session::handle(app, request).await,
        (Route::StartOrJoin(key), _) => {
            let params = HashMap::from([("templateKey".to_owned(), key)]);
            create_session::handle(app, request.with_path_parameters(params)).await
        }
        (Route::Get(id), _) => {
            let params = HashMap::from([("id".to_owned(), id)]);
            get_session::handle(app, request.with_path_parameters(params)).await
        }
        (Route::History(id), _) => {
            let params = HashMap::from([("id".to_owned(), id)]);
            get_session::handle(app, request.with_path_parameters(params)).await
        }
        (Route::Final(id), _) => {
            let params = HashMap::from([("id".to_owned(), id)]);
            get_session::handle(app, request.with_path_parameters(params)).await
        }
        // Answered above.
        (Route::Events | Route::PutEvents, _) => lambda_http::Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(lambda_http::Body::Empty)
            .unwrap_or_default(),
        (Route::Version(id, n), _) => {
            let params = HashMap::from([("id".to_owned(), id), ("n".to_owned(), n)]);
            get_session::handle(app, request.with_path_parameters(params)).await
        }
        (Route::Join(id), _) => {
            let params = HashMap::from([("id".to_owned(), id)]);
            join_session::handle(app, request.with_path_parameters(params)).await
        }
        (Route::PostChange(id), _) => {
            let params = HashMap::from([("id".to_owned(), id)]);
            post_change::handle(app, request.with_path_parameters(params)).await
        }
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}

fn content(body: &str, content_type: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_default()
}

/// An answer API Gateway gives itself, before any function runs.
fn gateway_answer(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"message":"{message}"}}"#);
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_the_http_api() {
        assert!(matches!(
            match_route(&Method::POST, "/v1/coedit/session"),
            Some(Route::Create)
        ));
        assert!(matches!(
            match_route(&Method::GET, "/v1/coedit/session/abc"),
            Some(Route::Get(id)) if id == "abc"
        ));
        assert!(matches!(
            match_route(&Method::POST, "/v1/coedit/session/abc/join"),
            Some(Route::Join(id)) if id == "abc"
        ));
        assert!(match_route(&Method::GET, "/v1/coedit/session/").is_none());
        assert!(match_route(&Method::PUT, "/v1/coedit/session").is_none());
        assert!(match_route(&Method::GET, "/v1/coedit/session/a/b").is_none());
    }
}
