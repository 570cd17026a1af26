//! The last N accepted allowlist changes, newest first in `/status`, so
//! support can answer "this address was removed yesterday at 16:02" without
//! digging through logs. In memory only: it explains recent changes, it is
//! not an audit trail (the log lines are).

use std::collections::VecDeque;

use serde::ser::{Serialize, SerializeSeq, Serializer};
use time::OffsetDateTime;

use super::diff::SnapshotChange;

/// Entries kept when the config does not say otherwise. Each entry is
/// bounded by the diff caps, so this bounds the memory too.
pub const DEFAULT_CAPACITY: usize = 20;

/// One accepted snapshot and what it changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// When the snapshot was swapped in.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The document's `version`, if it had one.
    pub version: Option<String>,
    /// The HTTP ETag it was served with, if any.
    pub etag: Option<String>,
    /// Where it came from: the URL, the file path, `last_good`...
    pub source: String,
    pub change: SnapshotChange,
}

/// Ring buffer of the last `capacity` [`HistoryEntry`]s.
#[derive(Debug, Clone)]
pub struct History {
    capacity: usize,
    /// Oldest at the front.
    entries: VecDeque<HistoryEntry>,
}

impl History {
    /// An empty history keeping at most `capacity` entries (0 keeps none).
    pub fn new(capacity: usize) -> History {
        History {
            capacity,
            entries: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY * 4)),
        }
    }

    /// Record an entry, dropping the oldest when full.
    pub fn push(&mut self, entry: HistoryEntry) {
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Entries, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &HistoryEntry> + '_ {
        self.entries.iter().rev()
    }

    /// The most recent entry.
    pub fn latest(&self) -> Option<&HistoryEntry> {
        self.entries.back()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for History {
    fn default() -> History {
        History::new(DEFAULT_CAPACITY)
    }
}

/// A JSON array, newest first: what a reader of `/status` wants on top.
impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.entries.len()))?;
        for entry in self.iter() {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(minute: u8) -> HistoryEntry {
        HistoryEntry {
            at: datetime!(2026-12-01 16:00:00 +01:00) + time::Duration::minutes(minute.into()),
            version: Some(format!("v{minute}")),
            etag: None,
            source: "https://admin.example.nl/allowlist".into(),
            change: SnapshotChange::default(),
        }
    }

    #[test]
    fn keeps_only_the_last_n_newest_first() {
        let mut h = History::new(3);
        for m in 0..5 {
            h.push(entry(m));
        }
        assert_eq!(h.len(), 3);
        let versions: Vec<_> = h.iter().filter_map(|e| e.version.as_deref()).collect();
        assert_eq!(versions, vec!["v4", "v3", "v2"]);
        assert_eq!(h.latest().and_then(|e| e.version.as_deref()), Some("v4"));
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut h = History::new(0);
        h.push(entry(1));
        assert!(h.is_empty());
        assert!(h.latest().is_none());
    }

    #[test]
    fn serializes_newest_first_with_rfc3339_times() {
        let mut h = History::new(5);
        h.push(entry(1));
        h.push(entry(2));
        let v = serde_json::to_value(&h).expect("json");
        let list = v.as_array().expect("array");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["at"], "2026-12-01T16:02:00+01:00");
        assert_eq!(list[0]["version"], "v2");
        assert_eq!(list[1]["at"], "2026-12-01T16:01:00+01:00");
        assert_eq!(list[0]["etag"], serde_json::Value::Null);
        assert_eq!(list[0]["source"], "https://admin.example.nl/allowlist");
        assert_eq!(list[0]["change"]["truncated"], false);
    }
}
