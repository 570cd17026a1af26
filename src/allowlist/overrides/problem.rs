//! The record of one skipped override entry: which entry, which field, what
//! value, and why. It is what `/status`, `check` and the metrics show an
//! operator, named the way the overrides file names things (`entries[2].range`).
//!
//! Its own type rather than the allowlist's [`Quarantined`](super::super::Quarantined):
//! an override has no site to be named by (its `site` is optional and may be
//! the very thing that is wrong), and its kinds (`unknown_action`,
//! `expiry_too_far`, ...) are not the allowlist's.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::super::quarantine::value_text;

/// What kind of problem got an override entry quarantined: a fixed set,
/// usable as a metrics label ([`OverrideProblemKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideProblemKind {
    /// An element of `entries` that is not an object.
    EntryNotObject,
    /// A required field (`action`, `range`, `reason`, `expires`) that is
    /// absent or `null`.
    MissingField,
    /// A field that is not a string.
    WrongType,
    /// An `action` other than `"allow"` or `"deny"` (exact spelling).
    UnknownAction,
    /// A range that is not a strict address or CIDR.
    MalformedRange,
    /// A range with bits set after the prefix (`192.0.2.5/24`).
    HostBitsSet,
    /// A range broader than the configured `max_prefix`.
    PrefixTooBroad,
    /// An IPv6 range that overlaps `::ffff:0:0/96`, which is matched as IPv4.
    MappedSpace,
    /// A `site` that is empty or could never be an allowlist site id.
    BadSite,
    /// A `reason` that is empty or only whitespace.
    EmptyReason,
    /// An `expires` that is not RFC 3339 with an offset.
    BadTime,
    /// An `expires` further from the load moment than `max_override_days`.
    ExpiryTooFar,
}

impl OverrideProblemKind {
    /// Stable snake_case name, for metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideProblemKind::EntryNotObject => "entry_not_object",
            OverrideProblemKind::MissingField => "missing_field",
            OverrideProblemKind::WrongType => "wrong_type",
            OverrideProblemKind::UnknownAction => "unknown_action",
            OverrideProblemKind::MalformedRange => "malformed_range",
            OverrideProblemKind::HostBitsSet => "host_bits_set",
            OverrideProblemKind::PrefixTooBroad => "prefix_too_broad",
            OverrideProblemKind::MappedSpace => "mapped_space",
            OverrideProblemKind::BadSite => "bad_site",
            OverrideProblemKind::EmptyReason => "empty_reason",
            OverrideProblemKind::BadTime => "bad_time",
            OverrideProblemKind::ExpiryTooFar => "expiry_too_far",
        }
    }
}

/// One override entry that was skipped, with enough detail for an operator to
/// find and fix it in the file.
///
/// Displays as
/// `entries[1].range = "198.51.100.7/24": host bits set (did you mean 198.51.100.0/24?)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideProblem {
    /// Position in the file's `entries` array.
    pub entry: usize,
    /// The field inside the entry (`range`, `expires`...); empty when the
    /// whole element is the problem.
    pub field: String,
    /// The offending value as JSON text, truncated to 100 characters. For a
    /// missing field it is the entry the field is missing from.
    pub value: String,
    /// What is wrong, in words.
    pub problem: String,
    /// The problem's category (metrics label).
    pub kind: OverrideProblemKind,
}

impl OverrideProblem {
    pub(super) fn new(
        kind: OverrideProblemKind,
        entry: usize,
        field: &str,
        value: &Value,
        problem: impl Into<String>,
    ) -> Self {
        OverrideProblem {
            entry,
            field: field.to_string(),
            value: value_text(value),
            problem: problem.into(),
            kind,
        }
    }
}

impl fmt::Display for OverrideProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(
                f,
                "entries[{}] = {}: {}",
                self.entry, self.value, self.problem
            )
        } else {
            write!(
                f,
                "entries[{}].{} = {}: {}",
                self.entry, self.field, self.value, self.problem
            )
        }
    }
}
