//! The demo page and the little host backend it needs: the page never holds an
//! API key, so creating a session and getting join tokens go through these routes,
//! which call the same handlers with the stack's dev key, as a host app would.

use std::path::PathBuf;

use coedit::App;
use coedit::handlers::{create_session, join_session};
use lambda_http::RequestExt;
use serde_json::{Value, json};

pub const INDEX_HTML: &str = include_str!("../demo/index.html");
pub const CLIENT_JS: &str = include_str!("../../clients/js/coedit.js");

/// A small template to start from when no fixtures are around.
fn starter() -> Value {
    let module = |uuid: &str, kind: &str, field: (&str, &str), text: &str| {
        json!({"uuid": uuid, "type": format!("mailup-bee-newsletter-modules-{kind}"),
               "descriptor": {field.0: {field.1: text}}})
    };
    json!({"page": {"rows": [
        {"uuid": "row-title", "columns": [{"modules": [
            module("mod-title", "heading", ("heading", "text"), "Our November newsletter")]}]},
        {"uuid": "row-body", "columns": [
            {"modules": [module("mod-left", "text", ("text", "html"), "<p>What we shipped this month.</p>")]},
            {"modules": [module("mod-right", "text", ("text", "html"), "<p>What comes next.</p>")]}]},
        {"uuid": "row-cta", "columns": [{"modules": [
            module("mod-button", "button", ("button", "label"), "Read more")]}]}
    ]}, "comments": {}})
}

pub struct Demo {
    pub api_key: String,
    /// Served at `GET /local/metrics`, when set.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// Fixture templates (`*.json`, optionally wrapped in `json_data`) offered
    /// besides the starter: `COEDIT_FIXTURES`, else the repository's `tests/fixtures/templates`.
    pub fixtures: Option<PathBuf>,
}

impl Demo {
    pub fn new(api_key: String) -> Demo {
        let fixtures = std::env::var_os("COEDIT_FIXTURES")
            .map(PathBuf::from)
            .or_else(|| {
                Some(PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/fixtures/templates"
                )))
            })
            .filter(|p| p.is_dir());
        Demo {
            api_key,
            fixtures,
            metrics: None,
        }
    }

    pub fn template_names(&self) -> Vec<String> {
        let mut names = vec!["starter".to_owned()];
        if let Some(dir) = &self.fixtures
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut found: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json") && !n.ends_with(".template.json"))
                .collect();
            found.sort();
            names.extend(found);
        }
        names
    }

    fn template(&self, name: &str) -> Option<Value> {
        if name == "starter" {
            return Some(starter());
        }
        if !self.template_names().iter().any(|n| n == name) {
            return None;
        }
        let text = std::fs::read(self.fixtures.as_ref()?.join(name)).ok()?;
        let mut value: Value = serde_json::from_slice(&text).ok()?;
        if let Some(inner) = value.get_mut("json_data") {
            value = inner.take();
        }
        Some(value)
    }

    /// `POST /demo/session {"template": name}`: a session from that template.
    pub async fn create(&self, app: &App, body: &[u8]) -> lambda_http::Response<lambda_http::Body> {
        let name = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["template"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "starter".to_owned());
        let Some(template) = self.template(&name) else {
            return not_found();
        };
        let body = json!({"template": template, "userid": "demo"}).to_string();
        create_session::handle(app, self.request(body, None)).await
    }

    /// `POST /demo/join {"sessionId", "userId", "username", "userColor"}`: a join token.
    pub async fn join(&self, app: &App, body: &[u8]) -> lambda_http::Response<lambda_http::Body> {
        let Ok(mut user) = serde_json::from_slice::<Value>(body) else {
            return not_found();
        };
        let Some(id) = user["sessionId"].as_str().map(str::to_owned) else {
            return not_found();
        };
        if let Some(u) = user.as_object_mut() {
            u.remove("sessionId");
        }
        join_session::handle(app, self.request(user.to_string(), Some(id))).await
    }

    fn request(&self, body: String, session: Option<String>) -> lambda_http::Request {
        let mut req = lambda_http::Request::new(lambda_http::Body::Text(body));
        if let Ok(v) = format!("Bearer {}", self.api_key).parse() {
            req.headers_mut().insert("authorization", v);
        }
        match session {
            Some(id) => {
                req.with_path_parameters(std::collections::HashMap::from([("id".to_owned(), id)]))
            }
            None => req,
        }
    }
}

fn not_found() -> lambda_http::Response<lambda_http::Body> {
    let mut res =
        lambda_http::Response::new(lambda_http::Body::Text(r#"{"message":"Not Found"}"#.into()));
    *res.status_mut() = lambda_http::http::StatusCode::NOT_FOUND;
    res
}
