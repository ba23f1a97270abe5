//! Templates: Beefree-style JSON (`{"page": {"rows": [...]}, "comments": {...}}`).
//!
//! A template is kept as canonical JSON text: compact, keys in the order the host
//! sent them. Readers get exactly these bytes back, and a store never needs to parse
//! a template to hand it out.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::patch::{Limits, depth};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    json: Arc<str>,
}

impl Template {
    /// Validates a template a host sent and gives every row and module without a
    /// `uuid` a new one, since locks name elements by uuid. `at` is where the
    /// template sits in the request, for error details (e.g. `/template`). A
    /// template past the size or depth of `limits` is refused, as a change that
    /// made it would be.
    pub fn prepare(mut value: Value, at: &str, limits: Limits) -> Result<Template> {
        if depth(&value, limits.max_depth) > limits.max_depth {
            return Err(Error::malformed(format!(
                "{at}: nests more than {} levels deep",
                limits.max_depth
            )));
        }
        let root = value
            .as_object_mut()
            .ok_or_else(|| Error::malformed(format!("{at}: must be an object")))?;
        let page = root
            .get_mut("page")
            .ok_or_else(|| Error::malformed(format!("{at}/page: is missing")))?
            .as_object_mut()
            .ok_or_else(|| Error::malformed(format!("{at}/page: must be an object")))?;
        if let Some(rows) = array_field(page, "rows", &format!("{at}/page"))? {
            for (r, row) in rows.iter_mut().enumerate() {
                let row_at = format!("{at}/page/rows/{r}");
                let row = object(row, &row_at)?;
                ensure_uuid(row, &row_at)?;
                let Some(columns) = array_field(row, "columns", &row_at)? else {
                    continue;
                };
                for (c, column) in columns.iter_mut().enumerate() {
                    let column_at = format!("{row_at}/columns/{c}");
                    let column = object(column, &column_at)?;
                    let Some(modules) = array_field(column, "modules", &column_at)? else {
                        continue;
                    };
                    for (m, module) in modules.iter_mut().enumerate() {
                        let module_at = format!("{column_at}/modules/{m}");
                        ensure_uuid(object(module, &module_at)?, &module_at)?;
                    }
                }
            }
        }
        // The seed's templates always carry `comments`; a patch on `/comments/<id>`
        // needs the object to exist.
        match root.get("comments") {
            None => {
                root.insert("comments".to_owned(), Value::Object(Default::default()));
            }
            Some(comments) if !comments.is_object() => {
                return Err(Error::malformed(format!(
                    "{at}/comments: must be an object"
                )));
            }
            Some(_) => {}
        }
        let json = serde_json::to_string(&value)
            .map_err(|e| Error::unexpected(format!("serializing the template: {e}")))?;
        if json.len() > limits.max_bytes {
            return Err(Error::too_large(format!(
                "{at}: is {} bytes as compact JSON; at most {} are accepted",
                json.len(),
                limits.max_bytes
            )));
        }
        Ok(Template { json: json.into() })
    }

    /// Wraps JSON text that was produced by `prepare` (or a later change) and stored.
    pub fn from_canonical_json(json: Arc<str>) -> Template {
        Template { json }
    }

    /// The template as a JSON value (parsed from its canonical text).
    pub fn to_value(&self) -> Result<Value> {
        serde_json::from_str(&self.json)
            .map_err(|e| Error::unexpected(format!("a stored template does not parse: {e}")))
    }

    /// The canonical text of a template held as a value (after changes).
    pub fn from_value(value: &Value) -> Result<Template> {
        let json = serde_json::to_string(value)
            .map_err(|e| Error::unexpected(format!("serializing the template: {e}")))?;
        Ok(Template { json: json.into() })
    }

    pub fn as_str(&self) -> &str {
        &self.json
    }

    pub fn len(&self) -> usize {
        self.json.len()
    }

    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }
}

fn object<'a>(value: &'a mut Value, at: &str) -> Result<&'a mut Map<String, Value>> {
    value
        .as_object_mut()
        .ok_or_else(|| Error::malformed(format!("{at}: must be an object")))
}

/// A field that may be absent but, when present, must be an array.
fn array_field<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a mut Vec<Value>>> {
    match parent.get_mut(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(Error::malformed(format!("{at}/{key}: must be an array"))),
    }
}

fn ensure_uuid(element: &mut Map<String, Value>, at: &str) -> Result<()> {
    match element.get("uuid") {
        Some(Value::String(id)) if !id.is_empty() => Ok(()),
        Some(Value::String(_)) | None => {
            element.insert(
                "uuid".to_owned(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            Ok(())
        }
        Some(_) => Err(Error::malformed(format!("{at}/uuid: must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use serde_json::json;

    fn prepared(v: Value) -> Value {
        serde_json::from_str(
            Template::prepare(v, "/template", Limits::default())
                .unwrap()
                .as_str(),
        )
        .unwrap()
    }

    #[test]
    fn keeps_existing_uuids_and_key_order() {
        let input = r#"{"page":{"rows":[{"uuid":"r1","columns":[{"modules":[{"type":"x","uuid":"m1"}]}]}],"body":{}},"comments":{}}"#;
        let t = Template::prepare(
            serde_json::from_str(input).unwrap(),
            "/template",
            Limits::default(),
        )
        .unwrap();
        assert_eq!(t.as_str(), input);
    }

    #[test]
    fn assigns_uuids_to_rows_and_modules_that_lack_them() {
        let out = prepared(json!({"page": {"rows": [
            {"columns": [{"modules": [{"type": "a"}, {"type": "b", "uuid": ""}]}]},
            {"columns": []}
        ]}}));
        let rows = out["page"]["rows"].as_array().unwrap();
        let modules = rows[0]["columns"][0]["modules"].as_array().unwrap();
        let mut ids = vec![
            rows[0]["uuid"].as_str().unwrap(),
            rows[1]["uuid"].as_str().unwrap(),
            modules[0]["uuid"].as_str().unwrap(),
            modules[1]["uuid"].as_str().unwrap(),
        ];
        for id in &ids {
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        // Columns are not lockable and get nothing.
        assert!(rows[0]["columns"][0].get("uuid").is_none());
    }

    #[test]
    fn refuses_broken_shapes_saying_where() {
        let cases = [
            (json!([]), "/template: must be an object"),
            (json!({"comments": {}}), "/template/page: is missing"),
            (json!({"page": "x"}), "/template/page: must be an object"),
            (
                json!({"page": {"rows": {}}}),
                "/template/page/rows: must be an array",
            ),
            (
                json!({"page": {"rows": [1]}}),
                "/template/page/rows/0: must be an object",
            ),
            (
                json!({"page": {"rows": [{"columns": [{"modules": [{}, 7]}]}]}}),
                "/template/page/rows/0/columns/0/modules/1: must be an object",
            ),
            (
                json!({"page": {"rows": [{"uuid": 5}]}}),
                "/template/page/rows/0/uuid: must be a string",
            ),
            (
                json!({"page": {}, "comments": []}),
                "/template/comments: must be an object",
            ),
        ];
        for (input, detail) in cases {
            let err = Template::prepare(input, "/template", Limits::default()).unwrap_err();
            assert_eq!(err.code, Code::Malformed);
            assert_eq!(err.detail, detail);
        }
    }
}
