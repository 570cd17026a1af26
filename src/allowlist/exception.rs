//! Exceptions: a temporary extra location for one site (a pupil who may take
//! a test at home), valid in the half-open window `[not_before, not_after)`.
//! This file judges one exception entry; an exception with any bad field is
//! skipped whole, because a half-understood grant must not open the gate.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::document::json_kind;
use super::options::CompileOptions;
use super::quarantine::{QuarantineKind, Quarantined};
use super::range::parse_range;
use super::site::SiteIdx;

/// Path under which unknown exception fields are counted.
pub(crate) const UNKNOWN_PREFIX: &str = "sites[].exceptions[].";

/// A compiled exception: `range` counts as a location of `site` while
/// `not_before <= now < not_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub site: SiteIdx,
    pub range: IpNet,
    pub reason: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Exception {
    /// Is `at` inside the half-open window `[not_before, not_after)`?
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at < self.not_after
    }
}

/// Where an exception sits, for quarantine records.
pub(crate) struct ExceptionPlace<'a> {
    /// Site id (or `sites[N]`), as shown in quarantine records.
    pub site_label: &'a str,
    pub site: SiteIdx,
    /// Position in the site's `exceptions` array.
    pub index: usize,
}

impl ExceptionPlace<'_> {
    /// A quarantine record for field `name` of this exception (`None`: the
    /// exception element itself).
    fn quarantine(
        &self,
        kind: QuarantineKind,
        name: Option<&str>,
        shown: &Value,
        problem: String,
    ) -> Quarantined {
        let field = match name {
            Some(name) => format!("exceptions[{}].{name}", self.index),
            None => format!("exceptions[{}]", self.index),
        };
        Quarantined::new(kind, self.site_label, field, shown, problem)
    }
}

/// Judge one element of a site's `exceptions` array.
pub(crate) fn parse_exception(
    value: &Value,
    place: &ExceptionPlace<'_>,
    opts: &CompileOptions,
    unknown: &mut BTreeMap<String, u64>,
) -> Result<Exception, Quarantined> {
    let Value::Object(obj) = value else {
        return Err(place.quarantine(
            QuarantineKind::BadField,
            None,
            value,
            format!("exception is not an object (found {})", json_kind(value)),
        ));
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "range" | "reason" | "not_before" | "not_after"
        ) {
            *unknown.entry(format!("{UNKNOWN_PREFIX}{key}")).or_insert(0) += 1;
        }
    }

    let range = match obj.get("range") {
        // A missing field is shown with the whole exception, so the admin
        // can recognise which one it is.
        None | Some(Value::Null) => {
            return Err(place.quarantine(
                QuarantineKind::BadField,
                Some("range"),
                value,
                "`range` is missing".to_string(),
            ))
        }
        Some(v @ Value::String(text)) => parse_range(text, opts)
            .map_err(|p| place.quarantine(p.kind(), Some("range"), v, p.message()))?,
        Some(v) => {
            return Err(place.quarantine(
                QuarantineKind::MalformedRange,
                Some("range"),
                v,
                format!("range is not a string (found {})", json_kind(v)),
            ))
        }
    };

    let reason = match obj.get("reason") {
        // `null` reads as absent, like every optional field.
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(place.quarantine(
                QuarantineKind::BadField,
                Some("reason"),
                v,
                format!("`reason` is not a string (found {})", json_kind(v)),
            ))
        }
    };

    let not_before = parse_time(obj, value, "not_before", place)?;
    let not_after = parse_time(obj, value, "not_after", place)?;
    if not_before >= not_after {
        let shown = obj.get("not_after").unwrap_or(&Value::Null);
        let before_text = obj.get("not_before").and_then(Value::as_str).unwrap_or("");
        return Err(place.quarantine(
            QuarantineKind::EmptyWindow,
            Some("not_after"),
            shown,
            format!("`not_after` is not after `not_before` ({before_text}): the exception would never be valid"),
        ));
    }

    Ok(Exception {
        site: place.site,
        range,
        reason,
        not_before,
        not_after,
    })
}

/// A required RFC 3339 time with an explicit offset (`Z` or `+01:00`);
/// a local time without offset is ambiguous and refused.
fn parse_time(
    obj: &Map<String, Value>,
    whole: &Value,
    name: &str,
    place: &ExceptionPlace<'_>,
) -> Result<OffsetDateTime, Quarantined> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(place.quarantine(
            QuarantineKind::BadField,
            Some(name),
            whole,
            format!("`{name}` is missing"),
        )),
        Some(v @ Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            place.quarantine(
                QuarantineKind::BadTime,
                Some(name),
                v,
                "not an RFC 3339 time with offset (e.g. 2026-12-01T08:00:00+01:00)".to_string(),
            )
        }),
        Some(v) => Err(place.quarantine(
            QuarantineKind::BadTime,
            Some(name),
            v,
            format!("`{name}` is not a string (found {})", json_kind(v)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn place() -> ExceptionPlace<'static> {
        ExceptionPlace {
            site_label: "12AB00",
            site: 3,
            index: 1,
        }
    }

    fn parse(v: Value) -> Result<Exception, Quarantined> {
        let mut unknown = BTreeMap::new();
        parse_exception(&v, &place(), &CompileOptions::default(), &mut unknown)
    }

    fn rejected(v: Value) -> Quarantined {
        match parse(v) {
            Ok(e) => panic!("accepted: {e:?}"),
            Err(q) => q,
        }
    }

    fn good() -> Value {
        json!({
            "range": "203.0.113.9",
            "reason": "test at home",
            "not_before": "2026-12-01T08:00:00+01:00",
            "not_after": "2026-12-05T17:00:00+01:00"
        })
    }

    #[test]
    fn valid_exception() {
        let e = parse(good()).expect("valid");
        assert_eq!(e.site, 3);
        assert_eq!(e.range.to_string(), "203.0.113.9/32");
        assert_eq!(e.reason.as_deref(), Some("test at home"));
        assert_eq!(e.not_before, datetime!(2026-12-01 07:00:00 UTC));
        assert_eq!(e.not_after, datetime!(2026-12-05 16:00:00 UTC));
    }

    #[test]
    fn window_is_half_open() {
        let e = parse(good()).expect("valid");
        assert!(!e.is_valid_at(datetime!(2026-12-01 06:59:59.999999999 UTC)));
        assert!(e.is_valid_at(datetime!(2026-12-01 07:00:00 UTC)));
        assert!(e.is_valid_at(datetime!(2026-12-01 08:00:00 +01:00)));
        assert!(e.is_valid_at(datetime!(2026-12-05 15:59:59.999999999 UTC)));
        assert!(!e.is_valid_at(datetime!(2026-12-05 16:00:00 UTC)));
        assert!(!e.is_valid_at(datetime!(2026-12-05 17:00:00 +01:00)));
    }

    #[test]
    fn reason_is_optional() {
        let mut v = good();
        v.as_object_mut().map(|o| o.remove("reason"));
        assert_eq!(parse(v).expect("valid").reason, None);
        let mut v = good();
        v["reason"] = Value::Null;
        assert_eq!(parse(v).expect("valid").reason, None);
    }

    #[test]
    fn not_an_object() {
        let q = rejected(json!("203.0.113.9"));
        assert_eq!(q.kind, QuarantineKind::BadField);
        assert_eq!(q.field, "exceptions[1]");
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, exceptions[1] = "203.0.113.9": exception is not an object (found a string)"#
        );
    }

    #[test]
    fn bad_range_uses_range_rules() {
        let mut v = good();
        v["range"] = json!("203.0.113.9/24");
        let q = rejected(v);
        assert_eq!(q.kind, QuarantineKind::HostBitsSet);
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, exceptions[1].range = "203.0.113.9/24": host bits set (did you mean 203.0.113.0/24?)"#
        );
        let mut v = good();
        v["range"] = json!("0.0.0.0/0");
        assert_eq!(rejected(v).kind, QuarantineKind::PrefixTooBroad);
        let mut v = good();
        v["range"] = json!(["203.0.113.9"]);
        let q = rejected(v);
        assert_eq!(q.kind, QuarantineKind::MalformedRange);
        assert_eq!(q.problem, "range is not a string (found an array)");
    }

    #[test]
    fn missing_range_shows_the_exception() {
        let mut v = good();
        v.as_object_mut().map(|o| o.remove("range"));
        let q = rejected(v);
        assert_eq!(q.kind, QuarantineKind::BadField);
        assert_eq!(q.field, "exceptions[1].range");
        assert_eq!(q.problem, "`range` is missing");
        assert!(
            q.value
                .starts_with(r#"{"not_after":"2026-12-05T17:00:00+01:00""#),
            "{}",
            q.value
        );
    }

    #[test]
    fn reason_not_a_string() {
        let mut v = good();
        v["reason"] = json!(7);
        let q = rejected(v);
        assert_eq!(q.field, "exceptions[1].reason");
        assert_eq!(q.value, "7");
        assert_eq!(q.problem, "`reason` is not a string (found a number)");
    }

    #[test]
    fn times_required() {
        for name in ["not_before", "not_after"] {
            let mut v = good();
            v.as_object_mut().map(|o| o.remove(name));
            let q = rejected(v);
            assert_eq!(q.kind, QuarantineKind::BadField);
            assert_eq!(q.field, format!("exceptions[1].{name}"));
            assert_eq!(q.problem, format!("`{name}` is missing"));
        }
    }

    #[test]
    fn times_must_be_rfc3339_with_offset() {
        for text in [
            "2026-12-01T08:00:00",
            "2026-12-01",
            "2026-12-01T08:00+01:00",
            "2026-12-01T08:00:00+0100",
            "1 december 2026",
            "2026-13-01T08:00:00Z",
            "",
        ] {
            let mut v = good();
            v["not_before"] = json!(text);
            let q = rejected(v);
            assert_eq!(q.kind, QuarantineKind::BadTime, "{text:?}");
            assert_eq!(q.field, "exceptions[1].not_before");
            assert_eq!(q.value, format!("{text:?}"));
        }
        let mut v = good();
        v["not_after"] = json!(1_764_000_000);
        let q = rejected(v);
        assert_eq!(q.kind, QuarantineKind::BadTime);
        assert_eq!(q.problem, "`not_after` is not a string (found a number)");
    }

    #[test]
    fn rfc3339_space_separator_is_accepted() {
        // RFC 3339 section 5.6 allows a space instead of `T`; the time crate
        // follows it, and refusing it would buy nothing.
        let mut v = good();
        v["not_before"] = json!("2026-12-01 08:00:00+01:00");
        assert_eq!(
            parse(v).expect("valid").not_before,
            datetime!(2026-12-01 07:00:00 UTC)
        );
    }

    #[test]
    fn utc_z_and_fractions_are_fine() {
        let mut v = good();
        v["not_before"] = json!("2026-12-01T07:00:00.5Z");
        let e = parse(v).expect("valid");
        assert_eq!(e.not_before, datetime!(2026-12-01 07:00:00.5 UTC));
    }

    #[test]
    fn empty_or_inverted_window() {
        let mut v = good();
        v["not_after"] = json!("2026-12-01T07:00:00Z"); // same instant as not_before
        let q = rejected(v);
        assert_eq!(q.kind, QuarantineKind::EmptyWindow);
        assert_eq!(q.field, "exceptions[1].not_after");
        assert_eq!(q.value, "\"2026-12-01T07:00:00Z\"");
        assert!(
            q.problem.contains("2026-12-01T08:00:00+01:00"),
            "{}",
            q.problem
        );
        let mut v = good();
        v["not_after"] = json!("2026-11-30T00:00:00Z");
        assert_eq!(rejected(v).kind, QuarantineKind::EmptyWindow);
    }

    #[test]
    fn unknown_fields_are_counted() {
        let mut v = good();
        v["ticket"] = json!("SUP-1");
        let mut unknown = BTreeMap::new();
        parse_exception(&v, &place(), &CompileOptions::default(), &mut unknown).expect("valid");
        assert_eq!(unknown.get("sites[].exceptions[].ticket"), Some(&1));
    }
}
