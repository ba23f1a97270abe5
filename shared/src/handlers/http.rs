//! What the REST handlers share: reading bodies and credentials, writing JSON
//! answers and protocol errors.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The request's `Authorization` header, if it is text.
pub fn authorization(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The body's bytes, refused before parsing when larger than `limit`.
pub fn body_bytes(req: &Request, limit: usize) -> Result<&[u8]> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(Error::too_large(format!(
            "the request body has {} bytes; at most {limit} are accepted",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Parses a JSON object body into `T`; the error says what is wrong and where, as
/// a JSON path (`template.page`) plus line and column.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(Error::malformed(
                "the request body is empty; a JSON object is expected",
            ));
        }
        // serde would also build a struct from an array; the protocol has none.
        Some(b'[') => {
            return Err(Error::malformed(
                "body: must be a JSON object, not an array",
            ));
        }
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::malformed(format!("body: {inner}"))
        } else {
            Error::malformed(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| Error::malformed(format!("body: {e}")))?;
    Ok(value)
}

/// A JSON response from already-serialized JSON text.
pub fn json_response(status: StatusCode, json: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(json));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Session state changes every moment and is private to its tenant.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The REST answer for a protocol error: its HTTP status and `{code, message, detail}`.
pub fn error_response(err: &Error) -> Response<Body> {
    crate::metrics::refused(err);
    let status =
        StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(code = err.code.number(), detail = %err.detail, "request failed");
    } else {
        // A refusal's detail quotes the request: kept out of the INFO log.
        tracing::info!(code = err.code.number(), "request refused");
        tracing::debug!(code = err.code.number(), detail = %err.detail, "request refused");
    }
    let body = serde_json::to_string(&err.to_rest_body()).unwrap_or_else(|_| {
        r#"{"code":5001,"message":"Unexpected error occurred during co-editing.","detail":""}"#
            .into()
    });
    let mut res = json_response(status, body);
    if err.code == crate::error::Code::Unauthorized {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

/// Writes a JSON object whose fields are already JSON text, in the given order.
/// Templates are stored as canonical JSON; splicing them in avoids parsing and
/// re-serializing megabytes per request.
pub fn json_object(fields: &[(&str, &str)]) -> String {
    let len = fields
        .iter()
        .map(|(k, v)| k.len() + v.len() + 4)
        .sum::<usize>()
        + 2;
    let mut out = String::with_capacity(len);
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Keys are fixed protocol names; serde_json quotes them correctly anyway.
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

/// Runs a handler body, turning its error into the protocol's REST answer.
pub fn respond(result: Result<Response<Body>>) -> Response<Body> {
    result.unwrap_or_else(|e| error_response(&e))
}

/// Serializes a value that cannot fail to serialize (plain structs and maps).
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::unexpected(format!("serializing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        userid: String,
        template: serde_json::Value,
    }

    #[test]
    fn parse_errors_say_where() {
        let e = parse_json_object::<Body>(br#"{"userid": 5, "template": {}}"#).unwrap_err();
        assert!(
            e.detail.starts_with("userid: invalid type: integer `5`"),
            "{}",
            e.detail
        );
        let e = parse_json_object::<Body>(br#"{"userid": "u""#).unwrap_err();
        assert!(e.detail.contains("EOF"), "{}", e.detail);
        let e = parse_json_object::<Body>(br#"{"userid": "u"}"#).unwrap_err();
        assert!(
            e.detail.contains("missing field `template`"),
            "{}",
            e.detail
        );
        let e = parse_json_object::<Body>(br#"{"userid": "u", "template": {}} x"#).unwrap_err();
        assert!(e.detail.contains("trailing characters"), "{}", e.detail);
        let e = parse_json_object::<Body>(b"").unwrap_err();
        assert!(e.detail.contains("empty"), "{}", e.detail);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!(
            r#"{{"userid":"u","template":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = parse_json_object::<Body>(deep.as_bytes()).unwrap_err();
        assert!(e.detail.contains("recursion limit"), "{}", e.detail);
    }

    #[test]
    fn json_object_splices_in_order() {
        assert_eq!(
            json_object(&[("b", "1"), ("a", r#"{"x":[]}"#)]),
            r#"{"b":1,"a":{"x":[]}}"#
        );
    }
}
