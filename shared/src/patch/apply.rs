//! Applying ops one at a time, in place, with an exact undo: a change that fails
//! half-way (a bad op, a locked element, a lost race for its version) leaves the
//! template as it was, byte for byte, without ever copying it.

use serde_json::{Map, Value};

use super::{Op, Path, index};

/// Why an op could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The op does not fit the template (missing location, bad index, wrong type).
    Invalid(String),
    /// A `test` op found another value.
    TestFailed,
}

/// One inverse step, replayed backwards to undo.
#[derive(Debug, Clone)]
enum Step {
    /// Remove what an add inserted into an array, or a key it created.
    Remove(Path),
    /// Put back a value that was overwritten.
    Put(Path, Value),
    /// Put back an array element that was removed.
    InsertAt(Path, Value),
    /// Put back an object member at its old position.
    InsertKey(Path, usize, Value),
}

/// The ops applied so far, as applied (an append's `-` resolved to its index), and
/// how to take them back.
#[derive(Debug, Default)]
pub struct Applied {
    pub ops: Vec<Op>,
    steps: Vec<Step>,
}

impl Applied {
    pub fn new() -> Self {
        Applied::default()
    }

    /// Applies one op to `doc`. On failure `doc` is as it was before this op (the
    /// ops applied before it stay; `undo` takes them back).
    pub fn push(&mut self, doc: &mut Value, op: &Op) -> Result<(), Failure> {
        let mark = self.steps.len();
        let applied = match apply_one(doc, op, &mut self.steps) {
            Ok(applied) => applied,
            Err(e) => {
                for step in self.steps.drain(mark..).rev() {
                    replay(doc, step);
                }
                return Err(e);
            }
        };
        self.ops.push(applied);
        Ok(())
    }
}

/// Applies a whole patch (a stored change): all of it, or, on failure, none of it.
pub fn apply(doc: &mut Value, ops: &[Op]) -> Result<Applied, (usize, Failure)> {
    let mut applied = Applied::new();
    for (i, op) in ops.iter().enumerate() {
        if let Err(e) = applied.push(doc, op) {
            undo(doc, applied);
            return Err((i, e));
        }
    }
    Ok(applied)
}

/// Takes back every op of `applied`, newest first.
pub fn undo(doc: &mut Value, applied: Applied) {
    for step in applied.steps.into_iter().rev() {
        replay(doc, step);
    }
}

fn apply_one(doc: &mut Value, op: &Op, steps: &mut Vec<Step>) -> Result<Op, Failure> {
    match op {
        Op::Add { path, value } => {
            let (path, step) = add(doc, path, value.clone())?;
            steps.push(step);
            Ok(Op::Add {
                path,
                value: value.clone(),
            })
        }
        Op::Remove { path } => {
            let (_, step) = remove(doc, path)?;
            steps.push(step);
            Ok(op.clone())
        }
        Op::Replace { path, value } => {
            let target = get_mut(doc, path.tokens())
                .ok_or_else(|| Failure::Invalid(format!("{path} does not exist")))?;
            let old = std::mem::replace(target, value.clone());
            steps.push(Step::Put(path.clone(), old));
            Ok(op.clone())
        }
        Op::Move { from, path } => {
            if path.starts_with(from) && path != from {
                return Err(Failure::Invalid(format!(
                    "cannot move {from} into itself ({path})"
                )));
            }
            let (value, removed) = remove(doc, from)?;
            match add(doc, path, value) {
                Ok((path, added)) => {
                    steps.push(removed);
                    steps.push(added);
                    Ok(Op::Move {
                        from: from.clone(),
                        path,
                    })
                }
                Err(e) => {
                    replay(doc, removed);
                    Err(e)
                }
            }
        }
        Op::Copy { from, path } => {
            let value = get(doc, from.tokens())
                .ok_or_else(|| Failure::Invalid(format!("from {from} does not exist")))?
                .clone();
            let (path, step) = add(doc, path, value)?;
            steps.push(step);
            Ok(Op::Copy {
                from: from.clone(),
                path,
            })
        }
        Op::Test { path, value } => match get(doc, path.tokens()) {
            Some(found) if found == value => Ok(op.clone()),
            Some(_) => Err(Failure::TestFailed),
            None => Err(Failure::Invalid(format!("{path} does not exist"))),
        },
    }
}

pub(super) fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => index(t).and_then(|i| a.get(i)),
        _ => None,
    })
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => index(t).and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

fn parent_of<'a>(doc: &'a mut Value, path: &Path) -> Result<(&'a mut Value, String), Failure> {
    let (parent, last) = path
        .split_last()
        .ok_or_else(|| Failure::Invalid("the root cannot be changed".into()))?;
    let last = last.to_owned();
    let container = get_mut(doc, parent).ok_or_else(|| {
        Failure::Invalid(format!(
            "{path}: its parent {} does not exist",
            Path(parent.to_vec())
        ))
    })?;
    Ok((container, last))
}

fn add(doc: &mut Value, path: &Path, value: Value) -> Result<(Path, Step), Failure> {
    let (container, last) = parent_of(doc, path)?;
    match container {
        Value::Array(a) => {
            let at = if last == "-" {
                a.len()
            } else {
                index(&last)
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| bad_index(path, &last, a.len() + 1))?
            };
            a.insert(at, value);
            let mut resolved = path.clone();
            if let Some(t) = resolved.0.last_mut() {
                *t = at.to_string();
            }
            Ok((resolved.clone(), Step::Remove(resolved)))
        }
        Value::Object(m) => match m.get_mut(&last) {
            Some(existing) => {
                let old = std::mem::replace(existing, value);
                Ok((path.clone(), Step::Put(path.clone(), old)))
            }
            None => {
                m.insert(last, value);
                Ok((path.clone(), Step::Remove(path.clone())))
            }
        },
        _ => Err(not_container(path)),
    }
}

fn remove(doc: &mut Value, path: &Path) -> Result<(Value, Step), Failure> {
    let (container, last) = parent_of(doc, path)?;
    match container {
        Value::Array(a) => {
            let at = index(&last)
                .filter(|i| *i < a.len())
                .ok_or_else(|| bad_index(path, &last, a.len()))?;
            let value = a.remove(at);
            Ok((value.clone(), Step::InsertAt(path.clone(), value)))
        }
        Value::Object(m) => {
            let at = m
                .keys()
                .position(|k| *k == last)
                .ok_or_else(|| Failure::Invalid(format!("{path} does not exist")))?;
            let value = m.shift_remove(&last).unwrap_or(Value::Null);
            Ok((value.clone(), Step::InsertKey(path.clone(), at, value)))
        }
        _ => Err(not_container(path)),
    }
}

fn bad_index(path: &Path, token: &str, len: usize) -> Failure {
    Failure::Invalid(format!(
        "{path}: '{token}' is not an index of this array (0 to {})",
        len.saturating_sub(1)
    ))
}

fn not_container(path: &Path) -> Failure {
    Failure::Invalid(format!(
        "{path}: its parent is neither an object nor an array"
    ))
}

/// Replays one inverse step. The steps were recorded against exactly this state,
/// so they always fit; a mismatch would be a bug, and is ignored rather than
/// panicking inside a request.
fn replay(doc: &mut Value, step: Step) {
    match step {
        Step::Remove(path) => {
            let _ = remove(doc, &path);
        }
        Step::Put(path, value) => {
            if let Some(target) = get_mut(doc, path.tokens()) {
                *target = value;
            }
        }
        Step::InsertAt(path, value) => {
            if let Ok((Value::Array(a), last)) = parent_of(doc, &path)
                && let Some(at) = index(&last).filter(|i| *i <= a.len())
            {
                a.insert(at, value);
            }
        }
        Step::InsertKey(path, at, value) => {
            if let Ok((Value::Object(m), last)) = parent_of(doc, &path) {
                insert_key(m, at, last, value);
            }
        }
    }
}

fn insert_key(m: &mut Map<String, Value>, at: usize, key: String, value: Value) {
    let at = at.min(m.len());
    m.shift_insert(at, key, value);
}
