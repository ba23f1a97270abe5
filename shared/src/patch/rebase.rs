//! Rebasing: moving an op made on an older version onto the newest template, over
//! the ops its sender missed (operational transformation on JSON paths).
//!
//! Every op is seen as the effects it has on locations:
//! - an insert into an array at `P/i` shifts siblings at `i` and after up by one;
//! - a removal from an array at `P/i` shifts those after it down by one, and
//!   whatever was at or under `P/i` is gone;
//! - anything else (replace, add or remove of an object member) sets a location,
//!   so whatever was at or under it changed.
//!
//! A path of the sender's op follows the shifts. It conflicts when it points at or
//! under something that was removed or set in the meantime, and when the sender's
//! op would overwrite or remove a place under which a missed op changed something.
//! Two inserts at the same index keep the order the server accepted them in: the
//! missed one first.

use serde_json::Value;

use super::apply::get;
use super::{Op, Path, index};

/// The op cannot be merged: it touches something changed in the meantime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: Path,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Effect<'a> {
    Insert(&'a [String], usize),
    Delete(&'a [String], usize),
    Set(&'a [String]),
}

impl Effect<'_> {
    /// The location the effect changes.
    fn location(&self) -> (&[String], Option<usize>) {
        match *self {
            Effect::Insert(parent, i) | Effect::Delete(parent, i) => (parent, Some(i)),
            Effect::Set(at) => (at, None),
        }
    }
}

/// How a path is used by its op, which decides how it reacts to effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The place an insert goes (an `add`'s path into an array). `first` says it
    /// goes before another insert at the same index.
    InsertAt { first: bool },
    /// A location the op removes or overwrites.
    Destroys,
    /// A location the op reads or writes below without removing (`test`, `copy` from).
    Reads,
}

/// Whether the container at `parent` in `doc` is an array; a numeric token under a
/// container that is not there any more is taken as an index.
fn is_array(doc: &Value, parent: &[String]) -> bool {
    get(doc, parent).is_none_or(Value::is_array)
}

/// The effects of an op that was applied (its indices resolved), in order.
fn effects<'a>(op: &'a Op, doc: &Value) -> Vec<Effect<'a>> {
    let at = |path: &'a Path, removes: bool| -> Effect<'a> {
        match path.split_last() {
            Some((parent, last)) if is_array(doc, parent) => match index(last) {
                Some(i) if removes => Effect::Delete(parent, i),
                Some(i) => Effect::Insert(parent, i),
                None => Effect::Set(path.tokens()),
            },
            _ => Effect::Set(path.tokens()),
        }
    };
    match op {
        Op::Add { path, .. } | Op::Copy { path, .. } => vec![at(path, false)],
        Op::Remove { path } => vec![at(path, true)],
        Op::Replace { path, .. } => vec![Effect::Set(path.tokens())],
        Op::Move { from, path } => vec![at(from, true), at(path, false)],
        Op::Test { .. } => Vec::new(),
    }
}

/// Moves `path` over one effect; `Err` when it conflicts.
fn follow(path: &mut Path, role: Role, effect: Effect<'_>) -> Result<(), &'static str> {
    // An op that removes or overwrites `path` must not wipe out a change made below it.
    let (location, at) = effect.location();
    if role == Role::Destroys {
        let below = match at {
            Some(_) => location.starts_with(&path.0),
            None => location.len() > path.len() && location.starts_with(&path.0),
        };
        if below {
            return Err("it would overwrite a change made in the meantime");
        }
    }
    match effect {
        Effect::Set(at) => {
            if path.0.starts_with(at) {
                return Err("what it changes was replaced or removed in the meantime");
            }
        }
        Effect::Insert(parent, i) | Effect::Delete(parent, i) => {
            if path.len() <= parent.len() || !path.0.starts_with(parent) {
                return Ok(());
            }
            let depth = parent.len();
            let Some(j) = index(&path.0[depth]) else {
                return Ok(());
            };
            let exact = path.len() == depth + 1;
            let shifted = match effect {
                Effect::Insert(..) => match role {
                    Role::InsertAt { first: true } if exact && j == i => j,
                    _ if j >= i => j + 1,
                    _ => j,
                },
                _ => {
                    if j > i {
                        j - 1
                    } else if j < i || (exact && matches!(role, Role::InsertAt { .. })) {
                        j
                    } else {
                        return Err("what it changes was removed in the meantime");
                    }
                }
            };
            path.0[depth] = shifted.to_string();
        }
    }
    Ok(())
}

/// Each path of `op` with its role. An `add` into an array inserts; onto an object
/// member it overwrites whatever was there.
fn paths_mut(op: &mut Op, first: bool) -> Vec<(&mut Path, Role)> {
    let add_role = |path: &Path| match path.split_last() {
        Some((_, last)) if index(last).is_some() || last == "-" => Role::InsertAt { first },
        _ => Role::Destroys,
    };
    match op {
        Op::Add { path, .. } => {
            let role = add_role(path);
            vec![(path, role)]
        }
        Op::Copy { from, path } => {
            let role = add_role(path);
            vec![(from, Role::Reads), (path, role)]
        }
        Op::Move { from, path } => {
            let role = add_role(path);
            vec![(from, Role::Destroys), (path, role)]
        }
        Op::Remove { path } | Op::Replace { path, .. } => vec![(path, Role::Destroys)],
        Op::Test { path, .. } => vec![(path, Role::Reads)],
    }
}

fn transform(op: &mut Op, first: bool, over: &Op, doc: &Value) -> Result<(), Conflict> {
    for effect in effects(over, doc) {
        // A move within one array reads its destination after its own removal;
        // shifting both ends over another change to that array can scramble the
        // order, so a concurrent reorder is a conflict rather than a guess.
        if let (Op::Move { from, path }, Effect::Insert(parent, _) | Effect::Delete(parent, _)) =
            (&*op, effect)
            && let Some((from_parent, _)) = from.split_last()
            && path.0.starts_with(from_parent)
            && parent == from_parent
        {
            return Err(Conflict {
                path: from.clone(),
                reason: "the array it reorders was changed in the meantime",
            });
        }
        for (path, role) in paths_mut(op, first) {
            if let Err(reason) = follow(path, role, effect) {
                return Err(Conflict {
                    path: path.clone(),
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// `op`, made without seeing `missed` (applied in that order since), as it must be
/// applied after them. `doc` is the template with `missed` applied; it tells
/// arrays from objects whose keys look like numbers.
pub fn rebase(op: &Op, missed: &[Op], doc: &Value) -> Result<Op, Conflict> {
    let mut op = op.clone();
    for m in missed {
        transform(&mut op, false, m, doc)?;
    }
    Ok(op)
}

/// After `applied` (a rebased op) went in, the ops the sender missed as they would
/// apply on top of it: what the sender's next op is rebased over.
pub fn transform_missed(missed: &mut [Op], applied: &Op, doc: &Value) -> Result<(), Conflict> {
    for m in missed.iter_mut() {
        transform(m, true, applied, doc)?;
    }
    Ok(())
}
