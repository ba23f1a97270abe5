//! Changes: a client's edit checked, rebased over what its sender missed, checked
//! against locks and applied to the newest template, giving the history entry the
//! store must write under the next version. Pure: the handler reads and writes.

use std::collections::VecDeque;

use serde_json::Value;

use super::{HistoryEntry, Template, User, Version};
use crate::clock::Timestamp;
use crate::error::{Code, Error, Result};
use crate::patch::{self, Applied, Limits, Op};

/// How many recent changes a warm template keeps for rebasing and for recognising
/// a resent change whatever its base; older ones are read from the store when
/// needed (for rebasing, and to recognise a resend made on the same base).
pub const RECENT_CHANGES: usize = 512;

/// A change further behind than this is refused (resync and redo): rebasing over
/// thousands of changes would be slow and almost surely conflict.
pub const MAX_BEHIND: u64 = 2000;

/// Largest history entry stored for one change: DynamoDB's item limit is 400 KB.
pub const MAX_ENTRY_BYTES: usize = 350 * 1024;

/// The snapshot is rewritten once this many changes were made since the last one,
/// or once they pass `COMPACT_BYTES`, so reading a session never replays more.
pub const COMPACT_EVERY: u64 = 200;
pub const COMPACT_BYTES: usize = 1024 * 1024;

/// Most bytes of logged changes read to rebase one change that its instance no
/// longer remembers the base of; more missed than this, and the client resyncs.
pub const MAX_REBASE_READ_BYTES: usize = 2 * 1024 * 1024;

/// A change as a client sends it (docs/PROTOCOL.md, `edit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub change_id: String,
    pub base_version: Version,
    pub patch: Vec<Op>,
    pub label: String,
    pub kind: String,
}

impl Edit {
    /// Checks the fields a client sent; the patch as JSON is parsed here too, so a
    /// bad op is answered with 4001 and its index.
    pub fn new(
        change_id: String,
        base_version: u64,
        patch: &Value,
        label: String,
        kind: String,
    ) -> Result<Edit> {
        check("changeId", &change_id, 1, 128)?;
        check("label", &label, 0, 512)?;
        check("type", &kind, 0, 128)?;
        if base_version == 0 {
            return Err(Error::malformed(
                "baseVersion: must be a version of the session (1 or more)",
            ));
        }
        Ok(Edit {
            change_id,
            base_version: Version(base_version),
            patch: patch::parse(patch)?,
            label,
            kind,
        })
    }
}

fn check(field: &str, text: &str, min: usize, max: usize) -> Result<()> {
    if text.len() < min || text.len() > max {
        return Err(Error::malformed(format!(
            "{field}: must be {min} to {max} bytes long, is {}",
            text.len()
        )));
    }
    Ok(())
}

/// Who makes a change. Their own changes in the log never count as missed: a
/// sender's base may be below its own acknowledged changes (a lower version by
/// someone else has not reached it yet), and its copy has them already.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub user: &'a User,
    /// The WebSocket connection it comes from: its own changes are the ones that
    /// connection made. `None` over REST: then they are all that user's.
    pub connection: Option<&'a str>,
}

impl Author<'_> {
    fn made(&self, connection: Option<&str>, user_id: &str) -> bool {
        match self.connection {
            Some(mine) => connection == Some(mine),
            None => user_id == self.user.user_id,
        }
    }
}

/// A change already in the log: its version, id, ops and who made it.
#[derive(Debug, Clone)]
struct Recent {
    version: Version,
    change_id: String,
    ops: Vec<Op>,
    connection: Option<String>,
    user_id: String,
    /// The entry's stored JSON, for compaction by bytes.
    bytes: usize,
}

/// The template at a version, as a warm function keeps it between requests, with
/// the recent changes that led there.
#[derive(Debug)]
pub struct Head {
    pub version: Version,
    pub doc: Value,
    /// The template's size as compact JSON, kept op by op.
    size: usize,
    /// What a change may do to the template (the deployment's limits).
    pub limits: Limits,
    recent: VecDeque<Recent>,
}

/// What `accept` decided. Returned once per change and taken apart at once, so
/// the size of `Accepted` costs nothing worth an allocation.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Applied to the head; write `entry`, then `commit` (or `roll_back`).
    Accepted(Accepted),
    /// This change is in the log already (a resend): acknowledge this version.
    Duplicate(Version),
}

#[derive(Debug)]
pub struct Accepted {
    pub entry: HistoryEntry,
    applied: Applied,
}

impl Head {
    /// The template at `version` (a snapshot), before any later change.
    pub fn new(template: &Template, version: Version) -> Result<Head> {
        Ok(Head {
            version,
            doc: template.to_value()?,
            size: template.len(),
            limits: Limits::default(),
            recent: VecDeque::new(),
        })
    }

    /// Applies the log's entries after this head, in order. An entry that does not
    /// apply means the stored log and this template disagree: an internal fault.
    pub fn catch_up<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a HistoryEntry>,
    ) -> Result<()> {
        for entry in entries {
            if entry.version <= self.version {
                continue;
            }
            if entry.version != self.version.next() {
                return Err(Error::unexpected(format!(
                    "the log skips from version {} to {}",
                    self.version, entry.version
                )));
            }
            let ops = stored_ops(entry)?;
            let applied = patch::apply(&mut self.doc, self.size, &ops).map_err(|(i, why)| {
                Error::unexpected(format!(
                    "stored change {} does not apply at op {i}: {why:?}",
                    entry.version
                ))
            })?;
            self.size = applied.size();
            self.remember(entry, ops);
        }
        Ok(())
    }

    pub fn template(&self) -> Result<Template> {
        Template::from_value(&self.doc)
    }

    /// The template's size as compact JSON.
    pub fn size(&self) -> usize {
        self.size
    }

    fn remember(&mut self, entry: &HistoryEntry, ops: Vec<Op>) {
        self.version = entry.version;
        if self.recent.len() == RECENT_CHANGES {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            version: entry.version,
            change_id: entry.change_id.clone(),
            ops,
            connection: entry.connection.clone(),
            user_id: entry.user_id.clone(),
            bytes: patch::json_bytes(entry),
        });
    }

    /// Whether the change just made (the head's version) is the one that makes
    /// the log after the snapshot at `snapshot` due for compaction: the
    /// `COMPACT_EVERY`th since it, or the one that takes it past `COMPACT_BYTES`.
    /// Every instance decides alike, so one compacts.
    pub fn compaction_due(&self, snapshot: Version) -> bool {
        let since = self.version.0.saturating_sub(snapshot.0);
        if since == 0 {
            return false;
        }
        if since.is_multiple_of(COMPACT_EVERY) {
            return true;
        }
        let (count, total) = self
            .recent
            .iter()
            .filter(|r| r.version > snapshot)
            .fold((0, 0), |(count, total), r| (count + 1, total + r.bytes));
        // Not remembered back to the snapshot (a cold instance): the count decides.
        if count != since {
            return false;
        }
        let newest = self.recent.back().map_or(0, |r| r.bytes);
        total > COMPACT_BYTES && total - newest <= COMPACT_BYTES
    }

    /// Refuses a base newer than the head, or too far behind it to rebase over:
    /// checked before anything is read for it.
    pub fn check_base(&self, base: Version) -> Result<()> {
        if base > self.version {
            return Err(Error::malformed(format!(
                "baseVersion: {base} is newer than the session's version {}",
                self.version
            )));
        }
        if self.version.0 - base.0 > MAX_BEHIND {
            return Err(Error::new(
                Code::Conflict,
                format!(
                    "baseVersion {base} is {} versions behind; resync and redo the change",
                    self.version.0 - base.0
                ),
            ));
        }
        Ok(())
    }

    /// Whether the head still has every change after `base` (else the caller
    /// reads them from the store and passes them to `accept`).
    pub fn remembers_since(&self, base: Version) -> bool {
        base >= self.version
            || self
                .recent
                .front()
                .is_some_and(|r| r.version.0 <= base.0 + 1)
    }

    /// Decides a change on this head: a resend of a logged change, or the change
    /// rebased over what its author missed and applied, unless it conflicts, touches
    /// an element `locked_by` names another holder for, or does not fit the
    /// template. On any refusal the head is as it was. `older` holds the logged
    /// entries after `edit.base_version` when `remembers_since` said it needs them.
    pub fn accept(
        &mut self,
        edit: &Edit,
        author: &Author<'_>,
        locked_by: impl Fn(&str) -> Option<User>,
        older: &[HistoryEntry],
        now: Timestamp,
    ) -> Result<Outcome> {
        let base = edit.base_version;
        self.check_base(base)?;
        // A resend is recognised by its id among every change remembered, not only
        // those after its base: a client that learnt of newer versions while its
        // ack was lost may resend on a newer base (the fault test caught that).
        if let Some(r) = self.recent.iter().find(|r| r.change_id == edit.change_id) {
            return Ok(Outcome::Duplicate(r.version));
        }
        // What the author missed, as it applies to the author's copy: everyone
        // else's changes after the base, each moved over the author's own changes
        // that came after it (the author's copy has those already).
        let mut missed: Vec<Op> = Vec::new();
        if self.remembers_since(base) {
            for r in self.recent.iter().filter(|r| r.version > base) {
                let own = author.made(r.connection.as_deref(), &r.user_id);
                if let Some(v) = fold_missed(
                    &mut missed,
                    edit,
                    r.version,
                    &r.change_id,
                    &r.ops,
                    own,
                    &self.doc,
                )? {
                    return Ok(Outcome::Duplicate(v));
                }
            }
        } else {
            for e in older.iter().filter(|e| e.version > base) {
                let own = author.made(e.connection.as_deref(), &e.user_id);
                let ops = stored_ops(e)?;
                if let Some(v) = fold_missed(
                    &mut missed,
                    edit,
                    e.version,
                    &e.change_id,
                    &ops,
                    own,
                    &self.doc,
                )? {
                    return Ok(Outcome::Duplicate(v));
                }
            }
        }
        let rebased = !missed.is_empty();

        let mut applied = Applied::new(self.size, self.limits);
        let result = self.apply_rebased(edit, &mut missed, rebased, &mut applied, &locked_by);
        if let Err(e) = result {
            patch::undo(&mut self.doc, applied);
            return Err(e);
        }
        let entry = HistoryEntry {
            version: self.version.next(),
            timestamp: now.to_rfc3339(),
            change_id: edit.change_id.clone(),
            label: edit.label.clone(),
            kind: edit.kind.clone(),
            user_id: author.user.user_id.clone(),
            diff: patch::to_json(&applied.ops),
            connection: author.connection.map(str::to_owned),
        };
        let size = serde_json::to_string(&entry).map_or(usize::MAX, |s| s.len());
        if size > MAX_ENTRY_BYTES {
            patch::undo(&mut self.doc, applied);
            return Err(Error::too_large(format!(
                "the change is {size} bytes as stored; at most {MAX_ENTRY_BYTES} are accepted"
            )));
        }
        Ok(Outcome::Accepted(Accepted { entry, applied }))
    }

    fn apply_rebased(
        &mut self,
        edit: &Edit,
        missed: &mut [Op],
        rebased: bool,
        applied: &mut Applied,
        locked_by: &impl Fn(&str) -> Option<User>,
    ) -> Result<()> {
        for (i, op) in edit.patch.iter().enumerate() {
            let op = patch::rebase(op, missed, &self.doc).map_err(|c| {
                Error::new(
                    Code::Conflict,
                    format!(
                        "patch[{i}] ({} {}): {}; resync and redo",
                        op.name(),
                        c.path,
                        c.reason
                    ),
                )
            })?;
            // Decided on the template before the op, answered after it is known to
            // fit: a patch that can never apply says so rather than "locked".
            let locked = patch::touched_elements(&self.doc, &op)
                .into_iter()
                .find_map(|id| locked_by(&id).map(|holder| (id, holder)));
            if let Err(why) = applied.push(&mut self.doc, &op) {
                let at = format!("patch[{i}] ({} {})", op.name(), op.path());
                return Err(match why {
                    patch::Failure::TestFailed => Error::new(
                        Code::Conflict,
                        format!("{at}: the value is not the one tested for; resync and redo"),
                    ),
                    // Rebased onto changes it did not see: most likely one of them
                    // moved what it refers to.
                    patch::Failure::Invalid(m) if rebased => Error::new(
                        Code::Conflict,
                        format!("{at}: {m} after newer changes; resync and redo"),
                    ),
                    patch::Failure::Invalid(m) => {
                        Error::new(Code::InvalidPatch, format!("{at}: {m}"))
                    }
                    patch::Failure::TooLarge(m) => Error::too_large(format!("{at}: {m}")),
                    patch::Failure::TooDeep(m) => {
                        Error::new(Code::InvalidPatch, format!("{at}: {m}"))
                    }
                });
            }
            if !self.doc.get("page").is_some_and(Value::is_object) {
                return Err(Error::new(
                    Code::InvalidPatch,
                    format!(
                        "patch[{i}] ({} {}): the template's page must stay an object",
                        op.name(),
                        op.path()
                    ),
                ));
            }
            if let Some((id, holder)) = locked {
                return Err(Error::new(
                    Code::Locked,
                    format!(
                        "patch[{i}] ({} {}): element {id} is locked by {}",
                        op.name(),
                        op.path(),
                        holder.username
                    ),
                ));
            }
            if let (false, Some(last)) = (missed.is_empty(), applied.ops.last()) {
                patch::transform_missed(missed, last, &self.doc).map_err(|c| {
                    Error::new(
                        Code::Conflict,
                        format!("patch[{i}]: {} at {}; resync and redo", c.reason, c.path),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The accepted change was stored: it is now the head's newest version.
    pub fn commit(&mut self, accepted: Accepted) {
        let Accepted { entry, applied } = accepted;
        self.size = applied.size();
        self.remember(&entry, applied.ops);
    }

    /// The accepted change could not be stored (another took its version): take
    /// it back.
    pub fn roll_back(&mut self, accepted: Accepted) {
        patch::undo(&mut self.doc, accepted.applied);
    }
}

/// Adds one logged change to what an author missed: another's ops join it; the
/// author's own move what was missed before them over them. `Some(version)` when
/// the logged change is the edit itself (a resend).
fn fold_missed(
    missed: &mut Vec<Op>,
    edit: &Edit,
    version: Version,
    change_id: &str,
    ops: &[Op],
    own: bool,
    doc: &Value,
) -> Result<Option<Version>> {
    if change_id == edit.change_id {
        return Ok(Some(version));
    }
    if !own {
        missed.extend(ops.iter().cloned());
        return Ok(None);
    }
    for op in ops {
        patch::transform_missed(missed, op, doc).map_err(|c| {
            Error::new(
                Code::Conflict,
                format!(
                    "{}: {} (by a change you had not seen, before your change {version}); resync and redo",
                    c.path, c.reason
                ),
            )
        })?;
    }
    Ok(None)
}

fn stored_ops(entry: &HistoryEntry) -> Result<Vec<Op>> {
    if entry.diff.is_empty() {
        return Ok(Vec::new());
    }
    patch::parse(&Value::Array(entry.diff.clone())).map_err(|e| {
        Error::unexpected(format!(
            "stored change {} does not parse: {}",
            entry.version, e.detail
        ))
    })
}

/// The template at the newest version: a snapshot and the log after it.
pub fn current(
    snapshot: &Template,
    snapshot_version: Version,
    tail: &[HistoryEntry],
) -> Result<(Version, Template)> {
    if tail.is_empty() {
        return Ok((snapshot_version, snapshot.clone()));
    }
    let mut head = Head::new(snapshot, snapshot_version)?;
    head.catch_up(tail)?;
    Ok((head.version, head.template()?))
}

#[cfg(test)]
mod tests;
