//! The record of one skipped entry: which site, which field, what value, and
//! why. It is what `/status`, `check` and the metrics show an operator, so it
//! must name things the way the admin store's document does.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// Longest value text kept in a [`Quarantined`] record, in characters. Enough
/// to recognise a range or a timestamp; keeps one huge bogus value from
/// bloating `/status`.
const MAX_VALUE_CHARS: usize = 100;

/// What kind of problem got an entry quarantined: a fixed set, usable as a
/// metrics label ([`QuarantineKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineKind {
    /// An element of `sites` that is not an object.
    SiteNotObject,
    /// A site `id` that is missing, not a string, empty, too long or has
    /// characters outside `[A-Za-z0-9_-]`.
    BadSiteId,
    /// A site id seen before in the document (the first one counts).
    DuplicateSiteId,
    /// A field of the wrong JSON type, or a required field that is missing
    /// (`name` not a string, `ranges` not an array, exception not an object...).
    BadField,
    /// A range that is not a strict address or CIDR (or not a string at all).
    MalformedRange,
    /// A range with bits set after the prefix (`192.0.2.5/24`).
    HostBitsSet,
    /// A range broader than the configured `max_prefix`.
    PrefixTooBroad,
    /// An IPv6 range that overlaps `::ffff:0:0/96`, which is matched as IPv4.
    MappedSpace,
    /// An exception time that is not RFC 3339 with an offset.
    BadTime,
    /// An exception whose `not_before` is not before its `not_after`.
    EmptyWindow,
    /// More sites or exceptions than a u32 index can hold.
    TooMany,
}

impl QuarantineKind {
    /// Stable snake_case name, for metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::SiteNotObject => "site_not_object",
            QuarantineKind::BadSiteId => "bad_site_id",
            QuarantineKind::DuplicateSiteId => "duplicate_site_id",
            QuarantineKind::BadField => "bad_field",
            QuarantineKind::MalformedRange => "malformed_range",
            QuarantineKind::HostBitsSet => "host_bits_set",
            QuarantineKind::PrefixTooBroad => "prefix_too_broad",
            QuarantineKind::MappedSpace => "mapped_space",
            QuarantineKind::BadTime => "bad_time",
            QuarantineKind::EmptyWindow => "empty_window",
            QuarantineKind::TooMany => "too_many",
        }
    }
}

/// One entry that was skipped while compiling, with enough detail for an
/// operator to find and fix it in the admin store.
///
/// Displays as
/// `site 12AB00, ranges[2] = "192.0.2.5/24": host bits set (did you mean 192.0.2.0/24?)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// The site id, or `sites[7]` when the id itself is missing or bad.
    pub site: String,
    /// Where inside the site: `ranges[2]`, `exceptions[0].not_after`, `id`,
    /// `name`... Empty when the whole site element is the problem.
    pub field: String,
    /// The offending value as JSON text, truncated to 100 characters. For a
    /// missing field it is the object the field is missing from.
    pub value: String,
    /// What is wrong, in words.
    pub problem: String,
    /// The problem's category (metrics label).
    pub kind: QuarantineKind,
}

impl Quarantined {
    pub(crate) fn new(
        kind: QuarantineKind,
        site: impl Into<String>,
        field: impl Into<String>,
        value: &Value,
        problem: impl Into<String>,
    ) -> Self {
        Quarantined {
            site: site.into(),
            field: field.into(),
            value: value_text(value),
            problem: problem.into(),
            kind,
        }
    }
}

impl fmt::Display for Quarantined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "site {} = {}: {}", self.site, self.value, self.problem)
        } else {
            write!(
                f,
                "site {}, {} = {}: {}",
                self.site, self.field, self.value, self.problem
            )
        }
    }
}

/// The value as compact JSON text, cut to [`MAX_VALUE_CHARS`] characters
/// (the last one an ellipsis when cut), always on a char boundary.
pub(crate) fn value_text(value: &Value) -> String {
    // Serialising a `Value` cannot fail (all keys are strings); fall back to a
    // marker rather than panic anyway.
    let text = serde_json::to_string(value).unwrap_or_else(|_| "<unprintable>".to_string());
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_with_field() {
        let q = Quarantined::new(
            QuarantineKind::HostBitsSet,
            "12AB00",
            "ranges[2]",
            &json!("192.0.2.5/24"),
            "host bits set (did you mean 192.0.2.0/24?)",
        );
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, ranges[2] = "192.0.2.5/24": host bits set (did you mean 192.0.2.0/24?)"#
        );
    }

    #[test]
    fn display_without_field() {
        let q = Quarantined::new(
            QuarantineKind::SiteNotObject,
            "sites[3]",
            "",
            &json!(42),
            "site entry is not an object",
        );
        assert_eq!(
            q.to_string(),
            "site sites[3] = 42: site entry is not an object"
        );
    }

    #[test]
    fn long_values_are_truncated_to_100_chars() {
        let long = "x".repeat(500);
        let q = Quarantined::new(
            QuarantineKind::MalformedRange,
            "A",
            "ranges[0]",
            &json!(long),
            "p",
        );
        assert_eq!(q.value.chars().count(), 100);
        assert!(q.value.starts_with("\"xxx"));
        assert!(q.value.ends_with('…'));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let long = "é".repeat(300);
        let q = Quarantined::new(
            QuarantineKind::MalformedRange,
            "A",
            "ranges[0]",
            &json!(long),
            "p",
        );
        assert_eq!(q.value.chars().count(), 100);
    }

    #[test]
    fn short_values_are_kept_whole() {
        let v = json!({"a": [1, 2]});
        let q = Quarantined::new(QuarantineKind::BadField, "A", "x", &v, "p");
        assert_eq!(q.value, r#"{"a":[1,2]}"#);
        let exactly = "y".repeat(98); // plus two quotes = 100 chars
        let q = Quarantined::new(QuarantineKind::BadField, "A", "x", &json!(exactly), "p");
        assert_eq!(q.value.chars().count(), 100);
        assert!(q.value.ends_with('"'));
    }

    #[test]
    fn kind_labels_are_snake_case() {
        assert_eq!(QuarantineKind::HostBitsSet.as_str(), "host_bits_set");
        assert_eq!(
            serde_json::to_string(&QuarantineKind::PrefixTooBroad)
                .ok()
                .as_deref(),
            Some("\"prefix_too_broad\"")
        );
    }
}
