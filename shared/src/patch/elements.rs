//! Elements (rows and modules, named by their `uuid`) that an op touches: the ones
//! its paths lead through, and, for an op that removes or overwrites something,
//! every element inside what it removes. A lock on any of them stops the op.

use serde_json::Value;

use super::{Op, Path, index};

/// Arrays whose members are lockable elements.
const ELEMENT_ARRAYS: [&str; 2] = ["rows", "modules"];

/// The ids of the elements `op` touches in `doc`, as `doc` is before the op.
pub fn touched_elements(doc: &Value, op: &Op) -> Vec<String> {
    let mut ids = Vec::new();
    match op {
        Op::Remove { path } | Op::Replace { path, .. } => along(doc, path, true, &mut ids),
        Op::Add { path, .. } | Op::Copy { path, .. } => written(doc, path, &mut ids),
        Op::Move { from, path } => {
            along(doc, from, true, &mut ids);
            written(doc, path, &mut ids);
        }
        Op::Test { path, .. } => along(doc, path, false, &mut ids),
    }
    ids
}

/// Where an add writes: an insert into an array touches the array's owners only;
/// onto an object member it overwrites whatever is there.
fn written(doc: &Value, path: &Path, ids: &mut Vec<String>) {
    if let Some((parent, last)) = path.split_last() {
        let parent = Path(parent.to_vec());
        let into_array = super::apply::get(doc, parent.tokens()).is_some_and(Value::is_array);
        if into_array && (last == "-" || index(last).is_some()) {
            return along(doc, &parent, false, ids);
        }
    }
    along(doc, path, true, ids)
}

/// Collects the elements on the way to `path` and, when `removes`, inside its target.
fn along(doc: &Value, path: &Path, removes: bool, ids: &mut Vec<String>) {
    let mut here = doc;
    let mut parent_key: Option<&str> = None;
    for token in path.tokens() {
        let next = match here {
            Value::Object(m) => m.get(token),
            Value::Array(a) => index(token).and_then(|i| a.get(i)),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        if here.is_array() && parent_key.is_some_and(|k| ELEMENT_ARRAYS.contains(&k)) {
            push_id(next, ids);
        }
        parent_key = Some(token);
        here = next;
    }
    if removes {
        inside(here, parent_key, ids);
    }
}

/// Elements anywhere inside `value` (reached under key `key`).
fn inside(value: &Value, key: Option<&str>, ids: &mut Vec<String>) {
    match value {
        Value::Array(a) => {
            let elements = key.is_some_and(|k| ELEMENT_ARRAYS.contains(&k));
            for v in a {
                if elements {
                    push_id(v, ids);
                }
                inside(v, None, ids);
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                if v.is_array() || v.is_object() {
                    inside(v, Some(k), ids);
                }
            }
        }
        _ => {}
    }
}

fn push_id(element: &Value, ids: &mut Vec<String>) {
    if let Some(id) = element.get("uuid").and_then(Value::as_str)
        && !ids.iter().any(|i| i == id)
    {
        ids.push(id.to_owned());
    }
}

/// A row or a module of a template, with the elements a lock on it overlaps: a
/// row's modules, or a module's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockable {
    pub id: String,
    pub overlaps: Vec<String>,
}

/// The row or module of `doc` whose uuid is `id` (rows under `page.rows`, modules
/// under their `columns[].modules`); `None` when there is none. Columns are not
/// lockable: their uuids are not unique in real templates.
pub fn find_lockable(doc: &Value, id: &str) -> Option<Lockable> {
    let uuid = |v: &Value| v.get("uuid").and_then(Value::as_str).map(str::to_owned);
    let rows = doc.pointer("/page/rows")?.as_array()?;
    for row in rows {
        let modules: Vec<String> = row
            .get("columns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("modules").and_then(Value::as_array))
            .flatten()
            .filter_map(uuid)
            .collect();
        let row_id = uuid(row);
        if row_id.as_deref() == Some(id) {
            return Some(Lockable {
                id: id.to_owned(),
                overlaps: modules,
            });
        }
        if modules.iter().any(|m| m == id) {
            return Some(Lockable {
                id: id.to_owned(),
                overlaps: row_id.into_iter().collect(),
            });
        }
    }
    None
}

#[cfg(test)]
mod lockable_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_and_modules_are_found_with_what_they_overlap() {
        let doc = json!({"page": {"rows": [
            {"uuid": "r0", "columns": [{"uuid": "col", "modules": [{"uuid": "m0"}, {"uuid": "m1"}]}, {"uuid": "col", "modules": [{"uuid": "m2"}]}]},
            {"uuid": "r1", "columns": []}
        ]}});
        assert_eq!(
            find_lockable(&doc, "r0"),
            Some(Lockable {
                id: "r0".into(),
                overlaps: vec!["m0".into(), "m1".into(), "m2".into()]
            })
        );
        assert_eq!(
            find_lockable(&doc, "m2"),
            Some(Lockable {
                id: "m2".into(),
                overlaps: vec!["r0".into()]
            })
        );
        assert_eq!(
            find_lockable(&doc, "r1").unwrap().overlaps,
            Vec::<String>::new()
        );
        assert_eq!(find_lockable(&doc, "col"), None);
        assert_eq!(find_lockable(&doc, "nothing"), None);
        assert_eq!(find_lockable(&json!({"page": {}}), "r0"), None);
    }
}
