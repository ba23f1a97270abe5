//! The version a client holds, kept exactly as `clients/js/coedit.js` keeps it:
//! the highest version with nothing missing below it. Changes above a gap, and the
//! client's own acknowledged versions, wait until the gap fills; a gap is asked for
//! with `sync`. Tests and the load generator send `baseVersion` from here, so they
//! exercise what users' browsers send.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct VersionBook {
    version: u64,
    /// Version -> someone else's entry, or `None` for one of ours.
    waiting: BTreeMap<u64, Option<Value>>,
    /// Change ids of our own changes (sent, acknowledged or not).
    own: HashSet<String>,
}

impl VersionBook {
    /// A client that loaded the template at `version`.
    pub fn new(version: u64) -> VersionBook {
        VersionBook {
            version,
            waiting: BTreeMap::new(),
            own: HashSet::new(),
        }
    }

    /// The version to send as `baseVersion` and `sinceVersion`.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A change of ours is on its way (its id tells it from the others' later).
    pub fn sent(&mut self, change_id: &str) {
        self.own.insert(change_id.to_owned());
    }

    /// Our change got `version`: the others' entries it releases, in order.
    pub fn acked(&mut self, version: u64) -> Vec<Value> {
        if version > self.version {
            self.waiting.insert(version, None);
        }
        self.advance()
    }

    /// A history entry from `change` or `changes`: the others' entries it
    /// releases, in order (ours are in the copy already).
    pub fn received(&mut self, entry: &Value) -> Vec<Value> {
        let version = entry["version"].as_u64().unwrap_or(0);
        if version <= self.version {
            return Vec::new();
        }
        let ours = entry["changeId"]
            .as_str()
            .is_some_and(|id| self.own.contains(id));
        self.waiting.insert(version, (!ours).then(|| entry.clone()));
        self.advance()
    }

    /// Whether something waits above a gap: then the client sends `sync`.
    pub fn has_gap(&self) -> bool {
        !self.waiting.is_empty() && !self.waiting.contains_key(&(self.version + 1))
    }

    fn advance(&mut self) -> Vec<Value> {
        let mut released = Vec::new();
        while let Some(next) = self.waiting.remove(&(self.version + 1)) {
            self.version += 1;
            released.extend(next);
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn own_acks_above_a_gap_wait_and_the_base_stays_below_them() {
        let mut book = VersionBook::new(1);
        book.sent("a1");
        // Our ack (3) arrives before someone else's change (2).
        assert!(book.acked(3).is_empty());
        assert_eq!(book.version(), 1);
        assert!(book.has_gap());
        let two = json!({"version": 2, "changeId": "b1"});
        assert_eq!(book.received(&two), vec![two.clone()]);
        assert_eq!(book.version(), 3);
        assert!(!book.has_gap());
        // A sync answer repeats what we have: nothing new; ours are not applied twice.
        assert!(
            book.received(&json!({"version": 3, "changeId": "a1"}))
                .is_empty()
        );
        book.sent("a2");
        assert!(
            book.received(&json!({"version": 5, "changeId": "a2"}))
                .is_empty()
        );
        assert_eq!(book.version(), 3);
        let four = json!({"version": 4, "changeId": "c1"});
        assert_eq!(book.received(&four), vec![four]);
        assert_eq!(book.version(), 5);
    }
}
