//! What one change may do to a template, checked op by op before the op's value is
//! built: how large the template may grow, how deep it may nest, how many bytes one
//! change may copy and how many it may handle in all. The last two bound a change's
//! memory and work whatever its ops. Every value but a copy comes from the request,
//! so only copies multiply memory: thirty copies of the page cannot double the
//! template thirty times. A template held as `serde_json::Value` takes about 8
//! times its JSON in memory (measured: 2.7 MB of JSON, 22.6 MB), so a change may
//! copy a fifth of the template limit, and refusing any change costs less memory
//! than twice that limit.

use std::io;

use serde_json::Value;

/// Containers nested in a template (`{"page":{}}` nests 2). serde_json refuses to
/// parse past 128, so a template deeper than that could be stored but never read.
pub const MAX_DEPTH: usize = 64;

/// The template size limit by default (`COEDIT_MAX_TEMPLATE_BYTES`): with the
/// response envelope it stays under Lambda's 6 MB response.
pub const DEFAULT_MAX_TEMPLATE_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The template's size as compact JSON, after every op.
    pub max_bytes: usize,
    /// Nesting of the template, after every op.
    pub max_depth: usize,
    /// Bytes of values one change copies.
    pub max_copied: usize,
    /// Bytes of values one change adds, copies, moves, replaces or removes.
    pub max_handled: usize,
}

impl Limits {
    /// The limits of a deployment whose templates may reach `max_bytes`: a change
    /// may copy a fifth of that (1 MiB by default: many rows duplicated at once),
    /// and handle twice that (replace a whole page with another).
    pub fn for_template_bytes(max_bytes: usize) -> Limits {
        Limits {
            max_bytes,
            max_depth: MAX_DEPTH,
            max_copied: max_bytes / 5,
            max_handled: max_bytes.saturating_mul(2),
        }
    }

    /// No limit: for replaying stored changes, which were checked when made.
    pub const NONE: Limits = Limits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_copied: usize::MAX,
        max_handled: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_template_bytes(DEFAULT_MAX_TEMPLATE_BYTES)
    }
}

/// Bytes `value` takes as compact JSON, counted by serde_json's own writer so that
/// escapes and numbers count exactly as stored; nothing is allocated.
pub fn json_bytes(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a Value always serializes.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Bytes of an object key as written (quoted and escaped).
pub(super) fn key_bytes(key: &str) -> usize {
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, key);
    counter.0
}

/// Containers nested in `value` (a scalar nests 0), looking no deeper than
/// `beyond`: the answer is exact up to it and `beyond + 1` past it.
pub fn depth(value: &Value, beyond: usize) -> usize {
    if beyond == 0 {
        return usize::from(value.is_array() || value.is_object());
    }
    let inner = match value {
        Value::Array(items) => items.iter().map(|v| depth(v, beyond - 1)).max(),
        Value::Object(members) => members.values().map(|v| depth(v, beyond - 1)).max(),
        _ => return 0,
    };
    1 + inner.unwrap_or(0)
}

struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_bytes_as_serialized() {
        for v in [
            json!({"page": {"rows": [1, 2.5, "a\"b\n\u{1}é", null, true]}, "k\\": {}}),
            json!([]),
            json!("x"),
            json!(-12345678901234_i64),
        ] {
            assert_eq!(json_bytes(&v), serde_json::to_string(&v).unwrap().len());
        }
        assert_eq!(key_bytes("a\"b"), 6);
    }

    #[test]
    fn depth_is_exact_up_to_the_bound() {
        assert_eq!(depth(&json!(1), 10), 0);
        assert_eq!(depth(&json!({"page": {}}), 10), 2);
        assert_eq!(depth(&json!([[[]], [1]]), 10), 3);
        assert_eq!(depth(&json!([[[[[]]]]]), 2), 3);
    }
}
