//! RFC 6902 patches on templates, free of I/O: parsing with answers that say which
//! op is wrong and why, applying op by op with an exact undo, rebasing a change over
//! the changes its sender missed, and finding the elements (rows, modules) a change
//! touches. `json-patch` supplies the op types and their JSON form; applying is done
//! here because the server needs what the library does not give: the concrete index
//! an append landed at, an inverse for every step, and key order kept on removal.

mod apply;
mod elements;
mod limits;
mod rebase;

use std::fmt;

use json_patch::PatchOperation;
use jsonptr::PointerBuf;
use serde_json::Value;

use crate::error::{Code, Error, Result};

pub use apply::{Applied, Failure, apply, undo};
pub use elements::{Lockable, find_lockable, touched_elements};
pub use limits::{DEFAULT_MAX_TEMPLATE_BYTES, Limits, MAX_DEPTH, depth, json_bytes};
pub use rebase::{Conflict, rebase, transform_missed};

/// Most ops one change may carry; a real editor sends a handful.
pub const MAX_OPS: usize = 1000;

/// A JSON Pointer as its decoded tokens (`/a~1b/0` is `["a/b", "0"]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<String>);

impl Path {
    pub fn parse(pointer: &str) -> Option<Path> {
        let p = jsonptr::Pointer::parse(pointer).ok()?;
        Some(Path(p.tokens().map(|t| t.decoded().into_owned()).collect()))
    }

    pub fn tokens(&self) -> &[String] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The parent and the last token; `None` for the root.
    pub fn split_last(&self) -> Option<(&[String], &str)> {
        self.0
            .split_last()
            .map(|(last, parent)| (parent, last.as_str()))
    }

    fn pointer(&self) -> PointerBuf {
        PointerBuf::from_tokens(self.0.iter().map(|t| jsonptr::Token::new(t.as_str())))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pointer().as_str())
    }
}

/// An array index token as RFC 6901 writes it: `0`, or digits without a leading zero.
pub fn index(token: &str) -> Option<usize> {
    let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
    if canonical && token.bytes().all(|b| b.is_ascii_digit()) {
        token.parse().ok()
    } else {
        None
    }
}

/// One RFC 6902 operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Add { path: Path, value: Value },
    Remove { path: Path },
    Replace { path: Path, value: Value },
    Move { from: Path, path: Path },
    Copy { from: Path, path: Path },
    Test { path: Path, value: Value },
}

impl Op {
    pub fn path(&self) -> &Path {
        match self {
            Op::Add { path, .. }
            | Op::Remove { path }
            | Op::Replace { path, .. }
            | Op::Move { path, .. }
            | Op::Copy { path, .. }
            | Op::Test { path, .. } => path,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
            Op::Replace { .. } => "replace",
            Op::Move { .. } => "move",
            Op::Copy { .. } => "copy",
            Op::Test { .. } => "test",
        }
    }

    pub fn to_json(&self) -> Value {
        // Plain values and strings: serializing cannot fail.
        serde_json::to_value(self.to_library()).unwrap_or(Value::Null)
    }

    fn to_library(&self) -> PatchOperation {
        use json_patch::*;
        match self.clone() {
            Op::Add { path, value } => PatchOperation::Add(AddOperation {
                path: path.pointer(),
                value,
            }),
            Op::Remove { path } => PatchOperation::Remove(RemoveOperation {
                path: path.pointer(),
            }),
            Op::Replace { path, value } => PatchOperation::Replace(ReplaceOperation {
                path: path.pointer(),
                value,
            }),
            Op::Move { from, path } => PatchOperation::Move(MoveOperation {
                from: from.pointer(),
                path: path.pointer(),
            }),
            Op::Copy { from, path } => PatchOperation::Copy(CopyOperation {
                from: from.pointer(),
                path: path.pointer(),
            }),
            Op::Test { path, value } => PatchOperation::Test(TestOperation {
                path: path.pointer(),
                value,
            }),
        }
    }

    fn from_library(op: PatchOperation) -> Op {
        let path = |p: &PointerBuf| Path(p.tokens().map(|t| t.decoded().into_owned()).collect());
        match op {
            PatchOperation::Add(o) => Op::Add {
                path: path(&o.path),
                value: o.value,
            },
            PatchOperation::Remove(o) => Op::Remove {
                path: path(&o.path),
            },
            PatchOperation::Replace(o) => Op::Replace {
                path: path(&o.path),
                value: o.value,
            },
            PatchOperation::Move(o) => Op::Move {
                from: path(&o.from),
                path: path(&o.path),
            },
            PatchOperation::Copy(o) => Op::Copy {
                from: path(&o.from),
                path: path(&o.path),
            },
            PatchOperation::Test(o) => Op::Test {
                path: path(&o.path),
                value: o.value,
            },
        }
    }

    /// What this op says about itself in an error detail: `patch[2] (remove /page/rows/9)`.
    fn describe(&self, at: usize) -> String {
        format!("patch[{at}] ({} {})", self.name(), self.path())
    }
}

/// Parses a patch as clients send it: a JSON array of RFC 6902 ops. A wrong op
/// answers 4001 with its index and what is wrong with it. Ops that would change the
/// template's root are refused: a change edits `page` or `comments`, never the
/// whole template.
pub fn parse(value: &Value) -> Result<Vec<Op>> {
    let ops = value
        .as_array()
        .ok_or_else(|| invalid("patch: must be an array of RFC 6902 operations"))?;
    if ops.is_empty() {
        return Err(invalid("patch: has no operations"));
    }
    if ops.len() > MAX_OPS {
        return Err(invalid(format!(
            "patch: has {} operations; at most {MAX_OPS} are accepted",
            ops.len()
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            if !op.is_object() {
                return Err(invalid(format!("patch[{i}]: must be an object")));
            }
            let op: PatchOperation = serde_json::from_value(op.clone())
                .map_err(|e| invalid(format!("patch[{i}]: {e}")))?;
            let op = Op::from_library(op);
            let root = match &op {
                Op::Move { from, path } | Op::Copy { from, path } => {
                    from.is_empty() || path.is_empty()
                }
                Op::Test { .. } => false,
                other => other.path().is_empty(),
            };
            if root {
                return Err(invalid(format!(
                    "{}: cannot change the template's root; change /page or /comments",
                    op.describe(i)
                )));
            }
            Ok(op)
        })
        .collect()
}

pub fn to_json(ops: &[Op]) -> Vec<Value> {
    ops.iter().map(Op::to_json).collect()
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(Code::InvalidPatch, detail)
}

#[cfg(test)]
mod tests;
