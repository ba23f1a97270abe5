//! Applying ops one at a time, in place, with an exact undo: a change that fails
//! half-way (a bad op, a locked element, a lost race for its version, a limit)
//! leaves the template as it was, byte for byte, without ever copying it. The
//! template's size is kept up to date op by op, so the limits are checked without
//! serializing the template.

use serde_json::Value;

use super::limits::{Limits, depth, json_bytes, key_bytes};
use super::{Op, Path, index};

/// Why an op could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The op does not fit the template (missing location, bad index, wrong type).
    Invalid(String),
    /// A `test` op found another value.
    TestFailed,
    /// The template, or what the change handles, would pass its size limit.
    TooLarge(String),
    /// The template would nest deeper than its limit.
    TooDeep(String),
}

/// Where a removed value was: its index in its array, or its key's position.
#[derive(Debug, Clone, Copy)]
struct Slot(usize);

/// One inverse step, replayed backwards to undo.
#[derive(Debug, Clone)]
enum Step {
    /// Remove what an add inserted into an array, or a key it created.
    Remove(Path),
    /// Put back a value that was overwritten.
    Put(Path, Value),
    /// Put back a removed value at its old position.
    Restore(Path, Slot, Value),
    /// Take a moved value from where it went (`to`, resolved; putting back what it
    /// displaced there) and put it back where it was: no copy of it is kept.
    MoveBack {
        to: Path,
        displaced: Option<Value>,
        from: Path,
        slot: Slot,
    },
}

/// How an op changed the template's size: bytes added and taken away.
#[derive(Debug, Clone, Copy, Default)]
struct Delta {
    grow: usize,
    shrink: usize,
}

/// The ops applied so far, as applied (an append's `-` resolved to its index), and
/// how to take them back.
#[derive(Debug)]
pub struct Applied {
    pub ops: Vec<Op>,
    steps: Vec<Step>,
    limits: Limits,
    /// The template's size as compact JSON after the ops applied.
    size: usize,
    /// Bytes of values copied so far (`Limits::max_copied`).
    copied: usize,
    /// Bytes of values handled so far (`Limits::max_handled`).
    handled: usize,
}

impl Applied {
    /// Nothing applied yet to a template of `size` bytes.
    pub fn new(size: usize, limits: Limits) -> Self {
        Applied {
            ops: Vec::new(),
            steps: Vec::new(),
            limits,
            size,
            copied: 0,
            handled: 0,
        }
    }

    /// The template's size after the ops applied.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Applies one op to `doc`. On failure `doc` is as it was before this op (the
    /// ops applied before it stay; `undo` takes them back).
    pub fn push(&mut self, doc: &mut Value, op: &Op) -> Result<(), Failure> {
        let mark = (self.steps.len(), self.size, self.copied, self.handled);
        match self.apply_one(doc, op) {
            Ok(applied) => {
                self.ops.push(applied);
                Ok(())
            }
            Err(e) => {
                for step in self.steps.drain(mark.0..).rev() {
                    replay(doc, step);
                }
                (self.size, self.copied, self.handled) = (mark.1, mark.2, mark.3);
                Err(e)
            }
        }
    }

    fn apply_one(&mut self, doc: &mut Value, op: &Op) -> Result<Op, Failure> {
        match op {
            Op::Add { path, value } => {
                self.check_depth(path, value)?;
                let bytes = self.handle(json_bytes(value))?;
                let (resolved, displaced, delta) =
                    add(doc, path, value.clone(), bytes).map_err(|(e, _)| e)?;
                self.steps.push(match displaced {
                    Some(old) => Step::Put(resolved.clone(), old),
                    None => Step::Remove(resolved.clone()),
                });
                self.resize(delta)?;
                Ok(Op::Add {
                    path: resolved,
                    value: value.clone(),
                })
            }
            Op::Remove { path } => {
                let (value, slot, bytes, delta) = remove(doc, path)?;
                self.steps.push(Step::Restore(path.clone(), slot, value));
                self.handle(bytes)?;
                self.resize(delta)?;
                Ok(op.clone())
            }
            Op::Replace { path, value } => {
                self.check_depth(path, value)?;
                let bytes = self.handle(json_bytes(value))?;
                let target = get_mut(doc, path.tokens())
                    .ok_or_else(|| Failure::Invalid(format!("{path} does not exist")))?;
                let old = std::mem::replace(target, value.clone());
                let delta = Delta {
                    grow: bytes,
                    shrink: json_bytes(&old),
                };
                self.steps.push(Step::Put(path.clone(), old));
                self.handle(delta.shrink)?;
                self.resize(delta)?;
                Ok(op.clone())
            }
            Op::Move { from, path } => {
                if path.starts_with(from) && path != from {
                    return Err(Failure::Invalid(format!(
                        "cannot move {from} into itself ({path})"
                    )));
                }
                let (value, slot, bytes, removed) = remove(doc, from)?;
                if path.len() > from.len() {
                    // Deeper than it was: it may pass the depth limit.
                    if let Err(e) = self.check_depth(path, &value) {
                        restore(doc, from, slot, value);
                        return Err(e);
                    }
                }
                match add(doc, path, value, bytes) {
                    Ok((to, displaced, added)) => {
                        self.steps.push(Step::MoveBack {
                            to: to.clone(),
                            displaced,
                            from: from.clone(),
                            slot,
                        });
                        self.handle(bytes + added.shrink)?;
                        self.resize(Delta {
                            grow: added.grow,
                            shrink: removed.shrink + added.shrink,
                        })?;
                        Ok(Op::Move {
                            from: from.clone(),
                            path: to,
                        })
                    }
                    Err((e, value)) => {
                        restore(doc, from, slot, value);
                        Err(e)
                    }
                }
            }
            Op::Copy { from, path } => {
                let source = get(doc, from.tokens())
                    .ok_or_else(|| Failure::Invalid(format!("from {from} does not exist")))?;
                // Measured before it is copied: a copy past a limit is never made.
                let bytes = self.handle(json_bytes(source))?;
                self.copied = self.copied.saturating_add(bytes);
                if self.copied > self.limits.max_copied {
                    return Err(Failure::TooLarge(format!(
                        "the change copies more than {} bytes",
                        self.limits.max_copied
                    )));
                }
                let overwritten = get(doc, path.tokens())
                    .filter(|_| !into_array(doc, path))
                    .map_or(0, json_bytes);
                if (self.size + bytes).saturating_sub(overwritten) > self.limits.max_bytes {
                    return Err(self.too_large(self.size + bytes - overwritten));
                }
                self.check_depth(path, source)?;
                let value = source.clone();
                let (resolved, displaced, delta) =
                    add(doc, path, value, bytes).map_err(|(e, _)| e)?;
                self.steps.push(match displaced {
                    Some(old) => Step::Put(resolved.clone(), old),
                    None => Step::Remove(resolved.clone()),
                });
                self.handle(delta.shrink)?;
                self.resize(delta)?;
                Ok(Op::Copy {
                    from: from.clone(),
                    path: resolved,
                })
            }
            Op::Test { path, value } => match get(doc, path.tokens()) {
                Some(found) if found == value => Ok(op.clone()),
                Some(_) => Err(Failure::TestFailed),
                None => Err(Failure::Invalid(format!("{path} does not exist"))),
            },
        }
    }

    /// Counts `bytes` against what one change may handle; answers them back.
    fn handle(&mut self, bytes: usize) -> Result<usize, Failure> {
        self.handled = self.handled.saturating_add(bytes);
        if self.handled > self.limits.max_handled {
            return Err(Failure::TooLarge(format!(
                "the change handles more than {} bytes of values (what it adds, copies, moves, replaces and removes)",
                self.limits.max_handled
            )));
        }
        Ok(bytes)
    }

    fn resize(&mut self, delta: Delta) -> Result<(), Failure> {
        let size = (self.size + delta.grow).saturating_sub(delta.shrink);
        if size > self.limits.max_bytes {
            return Err(self.too_large(size));
        }
        self.size = size;
        Ok(())
    }

    fn too_large(&self, size: usize) -> Failure {
        Failure::TooLarge(format!(
            "the template would be {size} bytes; at most {} are accepted",
            self.limits.max_bytes
        ))
    }

    /// A value put at `path` nests in the template as deep as the path is long
    /// (the root and each container on the way) plus its own nesting.
    fn check_depth(&self, path: &Path, value: &Value) -> Result<(), Failure> {
        let room = self.limits.max_depth.saturating_sub(path.len());
        if path.len() > self.limits.max_depth || depth(value, room) > room {
            return Err(Failure::TooDeep(format!(
                "the template would nest more than {} levels deep",
                self.limits.max_depth
            )));
        }
        Ok(())
    }
}

/// Applies a whole patch (a stored change) to a template of `size` bytes: all of
/// it, or, on failure, none of it.
pub fn apply(doc: &mut Value, size: usize, ops: &[Op]) -> Result<Applied, (usize, Failure)> {
    let mut applied = Applied::new(size, Limits::NONE);
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

/// Whether an add at `path` inserts into an array (rather than writing a member).
fn into_array(doc: &Value, path: &Path) -> bool {
    path.split_last()
        .and_then(|(parent, _)| get(doc, parent))
        .is_some_and(Value::is_array)
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

/// A comma before a member, unless it is the container's only one.
fn comma(others: usize) -> usize {
    usize::from(others > 0)
}

/// Adds `value` (of `bytes` bytes) at `path`: the path as resolved (an append's `-`
/// is its index), what it overwrote (an object member), and the size change. On
/// failure the value is handed back.
fn add(
    doc: &mut Value,
    path: &Path,
    value: Value,
    bytes: usize,
) -> Result<(Path, Option<Value>, Delta), (Failure, Value)> {
    let (container, last) = match parent_of(doc, path) {
        Ok(found) => found,
        Err(e) => return Err((e, value)),
    };
    match container {
        Value::Array(a) => {
            let at = if last == "-" {
                a.len()
            } else {
                match index(&last).filter(|i| *i <= a.len()) {
                    Some(at) => at,
                    None => return Err((bad_index(path, &last, a.len() + 1), value)),
                }
            };
            let grow = bytes + comma(a.len());
            a.insert(at, value);
            let mut resolved = path.clone();
            if let Some(t) = resolved.0.last_mut() {
                *t = at.to_string();
            }
            Ok((resolved, None, Delta { grow, shrink: 0 }))
        }
        Value::Object(m) => match m.get_mut(&last) {
            Some(existing) => {
                let old = std::mem::replace(existing, value);
                let shrink = json_bytes(&old);
                Ok((
                    path.clone(),
                    Some(old),
                    Delta {
                        grow: bytes,
                        shrink,
                    },
                ))
            }
            None => {
                let grow = key_bytes(&last) + 1 + bytes + comma(m.len());
                m.insert(last, value);
                Ok((path.clone(), None, Delta { grow, shrink: 0 }))
            }
        },
        _ => Err((not_container(path), value)),
    }
}

/// Removes the value at `path`: the value, where it was, its bytes, and the size
/// change (its bytes and those of its key and comma).
fn remove(doc: &mut Value, path: &Path) -> Result<(Value, Slot, usize, Delta), Failure> {
    let (container, last) = parent_of(doc, path)?;
    match container {
        Value::Array(a) => {
            let at = index(&last)
                .filter(|i| *i < a.len())
                .ok_or_else(|| bad_index(path, &last, a.len()))?;
            let value = a.remove(at);
            let bytes = json_bytes(&value);
            let shrink = bytes + comma(a.len());
            Ok((value, Slot(at), bytes, Delta { grow: 0, shrink }))
        }
        Value::Object(m) => {
            let at = m
                .keys()
                .position(|k| *k == last)
                .ok_or_else(|| Failure::Invalid(format!("{path} does not exist")))?;
            let value = m.shift_remove(&last).unwrap_or(Value::Null);
            let bytes = json_bytes(&value);
            let shrink = key_bytes(&last) + 1 + bytes + comma(m.len());
            Ok((value, Slot(at), bytes, Delta { grow: 0, shrink }))
        }
        _ => Err(not_container(path)),
    }
}

/// Puts a removed value back where it was.
fn restore(doc: &mut Value, path: &Path, slot: Slot, value: Value) {
    match parent_of(doc, path) {
        Ok((Value::Array(a), _)) => a.insert(slot.0.min(a.len()), value),
        Ok((Value::Object(m), last)) => {
            let at = slot.0.min(m.len());
            m.shift_insert(at, last, value);
        }
        _ => {}
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
        Step::Restore(path, slot, value) => restore(doc, &path, slot, value),
        Step::MoveBack {
            to,
            displaced,
            from,
            slot,
        } => {
            let moved = match displaced {
                Some(old) => get_mut(doc, to.tokens()).map(|t| std::mem::replace(t, old)),
                None => remove(doc, &to).ok().map(|(v, ..)| v),
            };
            if let Some(value) = moved {
                restore(doc, &from, slot, value);
            }
        }
    }
}
