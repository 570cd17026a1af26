//! Tests of the overrides file through [`compile_overrides`] and the lookups:
//! the contract the decision, `/status` and `check` rely on.

use std::net::IpAddr;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::allowlist::CompileOptions;

/// The load moment used throughout: 2026-12-01 12:00 UTC.
const NOW: OffsetDateTime = datetime!(2026-12-01 12:00:00 UTC);

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formattable")
}

fn compile_at(doc: &Value, opts: &OverrideOptions, now: OffsetDateTime) -> Overrides {
    compile_overrides(doc.to_string().as_bytes(), opts, now).expect("file accepted")
}

fn compile_json(doc: Value) -> Overrides {
    compile_at(&doc, &OverrideOptions::default(), NOW)
}

fn file_error(text: &str) -> OverridesError {
    compile_overrides(text.as_bytes(), &OverrideOptions::default(), NOW)
        .expect_err("file should be rejected")
}

/// A valid allow entry; tests change one field at a time.
fn good() -> Value {
    json!({
        "action": "allow",
        "range": "203.0.113.64/29",
        "site": "12AB00",
        "reason": "new fibre line, admin store not updated yet",
        "expires": "2026-12-02T17:00:00+01:00"
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut entry = good();
    entry[field] = value;
    entry
}

fn without(field: &str) -> Value {
    let mut entry = good();
    entry.as_object_mut().map(|o| o.remove(field));
    entry
}

/// Compile a file holding just `entry` and return its one problem.
fn rejected(entry: Value) -> OverrideProblem {
    let o = compile_json(json!({ "entries": [entry] }));
    assert!(o.entries().is_empty(), "accepted: {:?}", o.entries());
    match o.quarantined() {
        [p] => p.clone(),
        other => panic!("expected one problem, got {other:?}"),
    }
}

/// Compile a file holding just `entry` and return it, accepted.
fn accepted(entry: Value) -> OverrideEntry {
    let o = compile_json(json!({ "entries": [entry] }));
    assert!(o.quarantined().is_empty(), "{:?}", o.quarantined());
    match o.entries() {
        [e] => e.clone(),
        other => panic!("expected one entry, got {other:?}"),
    }
}

fn design_example() -> Value {
    json!({ "entries": [
        { "action": "allow", "range": "203.0.113.64/29", "site": "12AB00",
          "reason": "new fibre line, admin store not updated yet", "expires": "2026-12-02T17:00:00+01:00" },
        { "action": "deny", "range": "198.51.100.0/24", "reason": "reported misuse",
          "expires": "2026-12-31T00:00:00+01:00" } ] })
}

/// Options under which the design example is accepted at [`NOW`]: its deny
/// runs 29 days, beyond the default 14-day cap.
fn wide() -> OverrideOptions {
    OverrideOptions {
        max_days: 30,
        ..OverrideOptions::default()
    }
}

/// The design example, compiled at [`NOW`] with [`wide`] options.
fn design() -> Overrides {
    compile_at(&design_example(), &wide(), NOW)
}

fn assert_send_sync<T: Send + Sync>() {}

// ---- a good file -----------------------------------------------------------

#[test]
fn overrides_are_send_and_sync() {
    assert_send_sync::<Overrides>();
}

#[test]
fn design_example_compiles() {
    let o = design();
    assert!(o.quarantined().is_empty(), "{:?}", o.quarantined());
    assert!(o.unknown_fields().is_empty());
    assert!(!o.is_empty());
    let [allow, deny] = o.entries() else {
        panic!("two entries expected: {:?}", o.entries());
    };
    assert_eq!(
        allow,
        &OverrideEntry {
            index: 0,
            action: OverrideAction::Allow,
            range: "203.0.113.64/29".parse().expect("net"),
            site: Some("12AB00".to_string()),
            reason: "new fibre line, admin store not updated yet".to_string(),
            expires: datetime!(2026-12-02 17:00:00 +01:00),
        }
    );
    assert_eq!(allow.expires, datetime!(2026-12-02 16:00:00 UTC));
    assert_eq!(deny.index, 1);
    assert_eq!(deny.action, OverrideAction::Deny);
    assert_eq!(deny.range.to_string(), "198.51.100.0/24");
    assert_eq!(deny.site, None);
    assert_eq!(deny.reason, "reported misuse");
    assert_eq!(deny.expires, datetime!(2026-12-30 23:00:00 UTC));
    assert_eq!(o.active_count(NOW), 2);
    assert_eq!(o.expired_count(NOW), 0);
}

#[test]
fn design_example_deny_is_over_the_default_cap() {
    // Loaded on 1 December, the example's deny (until 31 December) is more
    // than 14 days ahead; the allow is fine.
    let o = compile_json(design_example());
    assert_eq!(o.entries().len(), 1);
    assert_eq!(o.entries()[0].action, OverrideAction::Allow);
    assert_eq!(o.quarantined()[0].entry, 1);
    assert_eq!(o.quarantined()[0].kind, OverrideProblemKind::ExpiryTooFar);
    // From 17 December on, it is within the cap.
    let later = datetime!(2026-12-17 00:00:00 UTC);
    let o = compile_at(&design_example(), &OverrideOptions::default(), later);
    assert_eq!(o.entries().len(), 2, "{:?}", o.quarantined());
}

#[test]
fn empty_entries_list_is_valid() {
    let o = compile_json(json!({ "entries": [] }));
    assert!(o.is_empty());
    assert!(o.entries().is_empty());
    assert!(o.quarantined().is_empty());
    assert!(o.unknown_fields().is_empty());
    assert_eq!(o, Overrides::empty());
    assert_eq!(o.active_count(NOW), 0);
}

#[test]
fn default_is_empty_and_finds_nothing() {
    let o = Overrides::default();
    assert!(o.is_empty());
    assert_eq!(o.deny_for(ip("198.51.100.1"), NOW), None);
    assert_eq!(o.allows_for(ip("203.0.113.65"), NOW).count(), 0);
    assert_eq!(o.allows_for(ip("2001:db8::1"), NOW).count(), 0);
    assert_eq!(o.active_count(NOW), 0);
    assert_eq!(o.expired_count(NOW), 0);
    assert!(o.entries().is_empty());
    assert!(o.quarantined().is_empty());
    assert!(o.unknown_fields().is_empty());
}

#[test]
fn default_options() {
    let opts = OverrideOptions::default();
    assert_eq!(opts.max_days, 14);
    assert_eq!(opts.compile, CompileOptions::default());
}

#[test]
fn site_is_optional() {
    let e = accepted(without("site"));
    assert_eq!(e.site, None);
    let e = accepted(with("site", Value::Null));
    assert_eq!(e.site, None);
    assert_eq!(e.action, OverrideAction::Allow);
}

#[test]
fn site_on_a_deny_is_kept() {
    let e = accepted(with("action", json!("deny")));
    assert_eq!(e.action, OverrideAction::Deny);
    assert_eq!(e.site.as_deref(), Some("12AB00"));
}

#[test]
fn site_id_limits_accepted() {
    for site in ["A", "a-b_C9", &"x".repeat(64)] {
        assert_eq!(
            accepted(with("site", json!(site))).site.as_deref(),
            Some(site)
        );
    }
}

#[test]
fn reason_is_kept_as_written() {
    let e = accepted(with("reason", json!("  ticket SUP-12 \n")));
    assert_eq!(e.reason, "  ticket SUP-12 \n");
}

#[test]
fn bare_addresses_and_ipv6() {
    assert_eq!(
        accepted(with("range", json!("198.51.100.7")))
            .range
            .to_string(),
        "198.51.100.7/32"
    );
    assert_eq!(
        accepted(with("range", json!("2001:db8:12::/48")))
            .range
            .to_string(),
        "2001:db8:12::/48"
    );
    assert_eq!(
        accepted(with("range", json!("2001:DB8::1")))
            .range
            .to_string(),
        "2001:db8::1/128"
    );
}

#[test]
fn mapped_ranges_become_ipv4() {
    let e = accepted(with("range", json!("::ffff:203.0.113.64/125")));
    assert_eq!(e.range.to_string(), "203.0.113.64/29");
}

#[test]
fn expires_forms() {
    // Z, fractions and the RFC 3339 space separator, like the allowlist.
    let e = accepted(with("expires", json!("2026-12-02T16:00:00Z")));
    assert_eq!(e.expires, datetime!(2026-12-02 16:00:00 UTC));
    let e = accepted(with("expires", json!("2026-12-02T16:00:00.25Z")));
    assert_eq!(e.expires, datetime!(2026-12-02 16:00:00.25 UTC));
    let e = accepted(with("expires", json!("2026-12-02 17:00:00+01:00")));
    assert_eq!(e.expires, datetime!(2026-12-02 16:00:00 UTC));
}

#[test]
fn one_bad_entry_skips_only_itself() {
    let o = compile_json(json!({ "entries": [
        good(),
        with("range", json!("203.0.113.65/29")),
        with("action", json!("deny")),
        42,
    ]}));
    let indices: Vec<usize> = o.entries().iter().map(|e| e.index).collect();
    assert_eq!(indices, [0, 2]);
    let problems: Vec<(usize, OverrideProblemKind)> =
        o.quarantined().iter().map(|p| (p.entry, p.kind)).collect();
    assert_eq!(
        problems,
        [
            (1, OverrideProblemKind::HostBitsSet),
            (3, OverrideProblemKind::EntryNotObject)
        ]
    );
}

#[test]
fn duplicate_entries_are_allowed() {
    let o = compile_json(json!({ "entries": [good(), good()] }));
    assert_eq!(o.entries().len(), 2);
    assert_eq!(o.allows_for(ip("203.0.113.64"), NOW).count(), 2);
}

// ---- file-level errors -----------------------------------------------------

#[test]
fn empty_and_whitespace_files() {
    assert_eq!(file_error(""), OverridesError::Empty);
    assert_eq!(file_error(" \n\t"), OverridesError::Empty);
    assert_eq!(
        file_error("").to_string(),
        r#"overrides file is empty (write {"entries": []} for no overrides)"#
    );
}

#[test]
fn not_json() {
    let e = file_error("action=allow");
    assert!(
        matches!(
            e,
            OverridesError::NotJson {
                line: 1,
                column: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with("overrides file is not valid JSON: "),
        "{msg}"
    );
    assert!(msg.contains("line 1 column 1"), "{msg}");
}

#[test]
fn not_json_names_line_and_column() {
    let e = file_error("{\n  \"entries\": [\n    {},,\n  ]\n}");
    assert!(
        matches!(
            e,
            OverridesError::NotJson {
                line: 3,
                column: 8,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn trailing_garbage_and_bad_utf8_are_not_json() {
    let e = file_error(r#"{"entries": []} {"entries": []}"#);
    assert!(matches!(e, OverridesError::NotJson { .. }), "{e:?}");
    let e = compile_overrides(
        b"{\"entries\": [\"\xff\"]}",
        &OverrideOptions::default(),
        NOW,
    )
    .expect_err("rejected");
    assert!(matches!(e, OverridesError::NotJson { .. }), "{e:?}");
}

#[test]
fn truncated_file() {
    let e = file_error(r#"{"entries": [{"action": "deny", "range": "198.51"#);
    assert!(
        matches!(e, OverridesError::Truncated { line: 1, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("ends early at line 1"), "{e}");
}

#[test]
fn top_level_not_an_object() {
    let e = file_error(r#"[{"entries": []}]"#);
    assert_eq!(e, OverridesError::NotAnObject { found: "an array" });
    assert_eq!(
        e.to_string(),
        "overrides file: top level is not an object (found an array)"
    );
    assert_eq!(
        file_error("null"),
        OverridesError::NotAnObject { found: "null" }
    );
    assert_eq!(
        file_error("7"),
        OverridesError::NotAnObject { found: "a number" }
    );
    assert_eq!(
        file_error(r#""entries""#),
        OverridesError::NotAnObject { found: "a string" }
    );
}

#[test]
fn entries_missing() {
    let e = file_error(r#"{"entry": []}"#);
    assert_eq!(e, OverridesError::EntriesMissing);
    assert_eq!(e.to_string(), "overrides file: `entries` is missing");
    assert_eq!(file_error("{}"), OverridesError::EntriesMissing);
}

#[test]
fn entries_not_an_array() {
    assert_eq!(
        file_error(r#"{"entries": null}"#),
        OverridesError::EntriesNotArray { found: "null" }
    );
    assert_eq!(
        file_error(r#"{"entries": {"0": {}}}"#),
        OverridesError::EntriesNotArray { found: "an object" }
    );
    assert_eq!(
        file_error(r#"{"entries": "none"}"#).to_string(),
        "overrides file: `entries` is not an array (found a string)"
    );
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let text = format!(
        "{{\"entries\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let e = file_error(&text);
    assert!(matches!(e, OverridesError::NotJson { .. }), "{e:?}");
}

// ---- entry-level problems --------------------------------------------------

#[test]
fn entry_not_an_object() {
    for (value, found) in [
        (json!(42), "a number"),
        (json!("deny 198.51.100.0/24"), "a string"),
        (json!([good()]), "an array"),
        (Value::Null, "null"),
        (json!(true), "a boolean"),
    ] {
        let p = rejected(value.clone());
        assert_eq!(p.kind, OverrideProblemKind::EntryNotObject);
        assert_eq!(p.entry, 0);
        assert_eq!(p.field, "");
        assert_eq!(p.problem, format!("entry is not an object (found {found})"));
    }
    assert_eq!(
        rejected(json!(42)).to_string(),
        "entries[0] = 42: entry is not an object (found a number)"
    );
}

#[test]
fn required_fields_missing_show_the_entry() {
    for field in ["action", "range", "reason", "expires"] {
        for entry in [without(field), with(field, Value::Null)] {
            let p = rejected(entry);
            assert_eq!(p.kind, OverrideProblemKind::MissingField, "{field}");
            assert_eq!(p.field, field);
            assert_eq!(p.problem, format!("`{field}` is missing"));
            // The whole entry is shown, so the operator can tell which one.
            assert!(p.value.starts_with('{'), "{}", p.value);
        }
    }
    let p = rejected(without("expires"));
    assert!(
        p.to_string()
            .starts_with(r#"entries[0].expires = {"action":"allow","#),
        "{p}"
    );
    assert!(p.to_string().ends_with(": `expires` is missing"), "{p}");
}

#[test]
fn wrong_types() {
    for (field, value, found) in [
        ("action", json!(1), "a number"),
        ("action", json!(["allow"]), "an array"),
        ("range", json!(["203.0.113.64/29"]), "an array"),
        ("range", json!(3_405_803_840u32), "a number"),
        ("site", json!(1200), "a number"),
        ("site", json!({"id": "12AB00"}), "an object"),
        ("reason", json!(true), "a boolean"),
        ("expires", json!(1_796_000_000), "a number"),
        ("expires", json!({"date": "2026-12-02"}), "an object"),
    ] {
        let p = rejected(with(field, value.clone()));
        assert_eq!(p.kind, OverrideProblemKind::WrongType, "{field}: {p}");
        assert_eq!(p.field, field);
        assert_eq!(p.value, value.to_string());
        assert_eq!(
            p.problem,
            format!("`{field}` is not a string (found {found})")
        );
    }
    assert_eq!(
        rejected(with("site", json!(1200))).to_string(),
        "entries[0].site = 1200: `site` is not a string (found a number)"
    );
}

#[test]
fn unknown_actions() {
    for action in ["Allow", "DENY", "block", "allow ", "", "permit"] {
        let p = rejected(with("action", json!(action)));
        assert_eq!(p.kind, OverrideProblemKind::UnknownAction, "{action:?}");
        assert_eq!(p.field, "action");
        assert_eq!(p.value, format!("{action:?}"));
    }
    assert_eq!(
        rejected(with("action", json!("block"))).to_string(),
        r#"entries[0].action = "block": unknown action (expected "allow" or "deny")"#
    );
}

#[test]
fn malformed_ranges() {
    for range in [
        "",
        "203.0.113",
        "203.0.113.064/29",
        "203.0.113.64/029",
        "203.0.113.64/33",
        " 203.0.113.64/29",
        "fe80::1%eth0",
        "example.org",
        "203.0.113.64-203.0.113.71",
        "[2001:db8::1]",
    ] {
        let p = rejected(with("range", json!(range)));
        assert_eq!(
            p.kind,
            OverrideProblemKind::MalformedRange,
            "{range:?}: {p}"
        );
        assert_eq!(p.field, "range");
        assert_eq!(p.value, format!("{range:?}"));
    }
}

#[test]
fn host_bits_name_entry_and_value() {
    let o = compile_json(json!({ "entries": [
        good(),
        { "action": "deny", "range": "198.51.100.7/24", "reason": "reported misuse",
          "expires": "2026-12-31T00:00:00+01:00" },
    ]}));
    let [p] = o.quarantined() else {
        panic!("{:?}", o.quarantined());
    };
    assert_eq!(p.kind, OverrideProblemKind::HostBitsSet);
    assert_eq!(p.entry, 1);
    assert_eq!(
        p.to_string(),
        r#"entries[1].range = "198.51.100.7/24": host bits set (did you mean 198.51.100.0/24?)"#
    );
    let p = rejected(with("range", json!("2001:db8:12::1/48")));
    assert_eq!(p.kind, OverrideProblemKind::HostBitsSet);
}

#[test]
fn too_broad_never_opens_the_gate() {
    for range in [
        "0.0.0.0/0",
        "10.0.0.0/8",
        "203.0.0.0/15",
        "::/0",
        "2001:d00::/24",
    ] {
        let p = rejected(with("range", json!(range)));
        assert_eq!(p.kind, OverrideProblemKind::PrefixTooBroad, "{range}");
    }
    assert_eq!(
        rejected(with("range", json!("0.0.0.0/0"))).to_string(),
        r#"entries[0].range = "0.0.0.0/0": prefix /0 is broader than the allowed /16"#
    );
    // Limits reached exactly are fine.
    assert_eq!(
        accepted(with("range", json!("203.0.0.0/16")))
            .range
            .to_string(),
        "203.0.0.0/16"
    );
    assert_eq!(
        accepted(with("range", json!("2001:db8::/32")))
            .range
            .to_string(),
        "2001:db8::/32"
    );
}

#[test]
fn deny_follows_the_same_prefix_rules() {
    let deny = |range: &str| {
        let mut e = with("action", json!("deny"));
        e["range"] = json!(range);
        e
    };
    assert_eq!(
        rejected(deny("0.0.0.0/0")).kind,
        OverrideProblemKind::PrefixTooBroad
    );
    assert_eq!(
        rejected(deny("198.0.0.0/8")).kind,
        OverrideProblemKind::PrefixTooBroad
    );
    assert_eq!(
        rejected(deny("198.51.100.7/24")).kind,
        OverrideProblemKind::HostBitsSet
    );
    assert_eq!(accepted(deny("198.51.0.0/16")).action, OverrideAction::Deny);
}

#[test]
fn max_prefix_options_apply() {
    let opts = OverrideOptions {
        compile: CompileOptions {
            max_prefix_v4: 24,
            max_prefix_v6: 48,
        },
        ..OverrideOptions::default()
    };
    let doc = json!({ "entries": [
        with("range", json!("203.0.113.0/24")),
        with("range", json!("203.0.112.0/23")),
        with("range", json!("2001:db8:12::/48")),
        with("range", json!("2001:db8::/47")),
    ]});
    let o = compile_at(&doc, &opts, NOW);
    let kept: Vec<usize> = o.entries().iter().map(|e| e.index).collect();
    assert_eq!(kept, [0, 2]);
    assert!(o
        .quarantined()
        .iter()
        .all(|p| p.kind == OverrideProblemKind::PrefixTooBroad));
    assert_eq!(
        o.quarantined()[0].problem,
        "prefix /23 is broader than the allowed /24"
    );
}

#[test]
fn mapped_space_ranges() {
    let p = rejected(with("range", json!("::/80")));
    assert_eq!(p.kind, OverrideProblemKind::MappedSpace);
    // Judged as IPv4 once unmapped.
    let p = rejected(with("range", json!("::ffff:203.0.113.65/125")));
    assert_eq!(p.kind, OverrideProblemKind::HostBitsSet);
    assert_eq!(p.problem, "host bits set (did you mean 203.0.113.64/29?)");
    let p = rejected(with("range", json!("::ffff:0.0.0.0/96")));
    assert_eq!(p.kind, OverrideProblemKind::PrefixTooBroad);
}

#[test]
fn long_values_are_truncated() {
    let p = rejected(with("range", json!("9".repeat(500))));
    assert_eq!(p.kind, OverrideProblemKind::MalformedRange);
    assert_eq!(p.value.chars().count(), 100);
    assert!(p.value.ends_with('…'));
}

#[test]
fn bad_sites() {
    for (site, problem) in [
        (
            "",
            "`site` is empty (leave it out for \"any registered location\")",
        ),
        (
            "12AB00 ",
            "`site` has characters outside A-Z, a-z, 0-9, `_` and `-`",
        ),
        (
            "12AB/00",
            "`site` has characters outside A-Z, a-z, 0-9, `_` and `-`",
        ),
        (
            "école",
            "`site` has characters outside A-Z, a-z, 0-9, `_` and `-`",
        ),
    ] {
        let p = rejected(with("site", json!(site)));
        assert_eq!(p.kind, OverrideProblemKind::BadSite, "{site:?}");
        assert_eq!(p.field, "site");
        assert_eq!(p.value, format!("{site:?}"));
        assert_eq!(p.problem, problem);
    }
    let p = rejected(with("site", json!("x".repeat(65))));
    assert_eq!(p.kind, OverrideProblemKind::BadSite);
    assert_eq!(p.problem, "`site` is longer than 64 characters");
    // A deny's site is checked too.
    let mut deny = with("action", json!("deny"));
    deny["site"] = json!("");
    assert_eq!(rejected(deny).kind, OverrideProblemKind::BadSite);
}

#[test]
fn empty_reasons() {
    for reason in ["", " ", "\n\t "] {
        let p = rejected(with("reason", json!(reason)));
        assert_eq!(p.kind, OverrideProblemKind::EmptyReason, "{reason:?}");
        assert_eq!(p.field, "reason");
        assert_eq!(p.value, format!("{reason:?}"));
    }
    assert_eq!(
        rejected(with("reason", json!(""))).to_string(),
        r#"entries[0].reason = "": `reason` is empty: say why this override exists"#
    );
}

#[test]
fn expires_must_be_rfc3339_with_offset() {
    for text in [
        "2026-12-02T17:00:00",
        "2026-12-02",
        "2026-12-02T17:00+01:00",
        "2026-12-02T17:00:00+0100",
        "2 december 2026",
        "2026-13-02T17:00:00Z",
        "2026-12-02T17:00:00 +01:00",
        "",
    ] {
        let p = rejected(with("expires", json!(text)));
        assert_eq!(p.kind, OverrideProblemKind::BadTime, "{text:?}");
        assert_eq!(p.field, "expires");
        assert_eq!(p.value, format!("{text:?}"));
    }
    assert_eq!(
        rejected(with("expires", json!("2026-12-02"))).to_string(),
        r#"entries[0].expires = "2026-12-02": not an RFC 3339 time with offset (e.g. 2026-12-02T17:00:00+01:00)"#
    );
}

#[test]
fn first_problem_in_field_order_is_reported() {
    let p = rejected(json!({
        "action": "block", "range": "0.0.0.0/0", "site": "", "reason": "", "expires": "soon"
    }));
    assert_eq!(p.kind, OverrideProblemKind::UnknownAction);
    let p = rejected(json!({
        "action": "allow", "range": "0.0.0.0/0", "site": "", "reason": "", "expires": "soon"
    }));
    assert_eq!(p.kind, OverrideProblemKind::PrefixTooBroad);
    let p = rejected(json!({
        "action": "allow", "range": "203.0.113.64/29", "site": "", "reason": "", "expires": "soon"
    }));
    assert_eq!(p.kind, OverrideProblemKind::BadSite);
    let p = rejected(json!({
        "action": "allow", "range": "203.0.113.64/29", "reason": "", "expires": "soon"
    }));
    assert_eq!(p.kind, OverrideProblemKind::EmptyReason);
}

#[test]
fn kind_labels_are_snake_case() {
    let all = [
        OverrideProblemKind::EntryNotObject,
        OverrideProblemKind::MissingField,
        OverrideProblemKind::WrongType,
        OverrideProblemKind::UnknownAction,
        OverrideProblemKind::MalformedRange,
        OverrideProblemKind::HostBitsSet,
        OverrideProblemKind::PrefixTooBroad,
        OverrideProblemKind::MappedSpace,
        OverrideProblemKind::BadSite,
        OverrideProblemKind::EmptyReason,
        OverrideProblemKind::BadTime,
        OverrideProblemKind::ExpiryTooFar,
    ];
    for kind in all {
        assert_eq!(
            serde_json::to_value(kind).expect("serialises"),
            json!(kind.as_str())
        );
    }
    assert_eq!(OverrideProblemKind::ExpiryTooFar.as_str(), "expiry_too_far");
    assert_eq!(OverrideAction::Allow.as_str(), "allow");
    assert_eq!(
        serde_json::to_value(OverrideAction::Deny).expect("serialises"),
        json!("deny")
    );
}

// ---- the expiry cap (judged at load) --------------------------------------

fn expiring(at: OffsetDateTime) -> Value {
    with("expires", json!(rfc3339(at)))
}

fn compile_one(entry: Value, opts: &OverrideOptions, now: OffsetDateTime) -> Overrides {
    compile_at(&json!({ "entries": [entry] }), opts, now)
}

#[test]
fn cap_boundary_exactly_max_days_is_accepted() {
    let opts = OverrideOptions::default();
    let o = compile_one(expiring(NOW + Duration::days(14)), &opts, NOW);
    assert_eq!(o.entries().len(), 1, "{:?}", o.quarantined());
    assert_eq!(o.entries()[0].expires, datetime!(2026-12-15 12:00:00 UTC));
}

#[test]
fn cap_boundary_one_second_more_is_quarantined() {
    let opts = OverrideOptions::default();
    let o = compile_one(
        expiring(NOW + Duration::days(14) + Duration::seconds(1)),
        &opts,
        NOW,
    );
    assert!(o.entries().is_empty());
    let [p] = o.quarantined() else {
        panic!("{:?}", o.quarantined());
    };
    assert_eq!(p.kind, OverrideProblemKind::ExpiryTooFar);
    assert_eq!(p.field, "expires");
    assert_eq!(
        p.to_string(),
        "entries[0].expires = \"2026-12-15T12:00:01Z\": more than 14 days after the file \
         was loaded (2026-12-01T12:00:00Z); overrides are capped by [allowlist] max_override_days"
    );
    // Even a fraction of a second over is over.
    let o = compile_one(
        expiring(NOW + Duration::days(14) + Duration::milliseconds(1)),
        &opts,
        NOW,
    );
    assert_eq!(o.quarantined()[0].kind, OverrideProblemKind::ExpiryTooFar);
}

#[test]
fn cap_compares_instants_not_wall_clocks() {
    // 14 days after NOW, written in +01:00 and in -05:00: the same instant.
    let opts = OverrideOptions::default();
    for text in ["2026-12-15T13:00:00+01:00", "2026-12-15T07:00:00-05:00"] {
        let o = compile_one(with("expires", json!(text)), &opts, NOW);
        assert_eq!(o.entries().len(), 1, "{text}: {:?}", o.quarantined());
    }
    let o = compile_one(
        with("expires", json!("2026-12-15T13:00:01+01:00")),
        &opts,
        NOW,
    );
    assert_eq!(o.quarantined().len(), 1);
}

#[test]
fn cap_is_measured_from_the_load_moment() {
    let entry = expiring(datetime!(2026-12-20 00:00:00 UTC));
    let opts = OverrideOptions::default();
    assert_eq!(
        compile_one(entry.clone(), &opts, NOW).quarantined().len(),
        1
    );
    let later = datetime!(2026-12-06 00:00:00 UTC);
    assert_eq!(compile_one(entry, &opts, later).entries().len(), 1);
}

#[test]
fn max_days_is_configurable() {
    let opts = OverrideOptions {
        max_days: 1,
        ..OverrideOptions::default()
    };
    assert_eq!(
        compile_one(expiring(NOW + Duration::days(1)), &opts, NOW)
            .entries()
            .len(),
        1
    );
    let o = compile_one(expiring(NOW + Duration::hours(25)), &opts, NOW);
    assert!(o.quarantined()[0].problem.starts_with("more than 1 days"));
    // Zero: only entries already over are accepted.
    let zero = OverrideOptions {
        max_days: 0,
        ..OverrideOptions::default()
    };
    assert_eq!(compile_one(expiring(NOW), &zero, NOW).entries().len(), 1);
    assert_eq!(
        compile_one(expiring(NOW + Duration::seconds(1)), &zero, NOW)
            .quarantined()
            .len(),
        1
    );
    // The largest setting does not overflow.
    let huge = OverrideOptions {
        max_days: u32::MAX,
        ..OverrideOptions::default()
    };
    let o = compile_one(with("expires", json!("9999-12-31T23:59:59Z")), &huge, NOW);
    assert_eq!(o.entries().len(), 1);
}

// ---- validity at decision time (expires is exclusive) --------------------

#[test]
fn expires_is_exclusive() {
    let o = design();
    let deny_ip = ip("198.51.100.9");
    let end = datetime!(2026-12-31 00:00:00 +01:00);
    assert!(o.deny_for(deny_ip, end - Duration::seconds(1)).is_some());
    assert!(o
        .deny_for(deny_ip, end - Duration::nanoseconds(1))
        .is_some());
    assert!(o.deny_for(deny_ip, end).is_none());
    assert!(o
        .deny_for(deny_ip, datetime!(2026-12-30 23:00:00 UTC))
        .is_none());
    assert!(o.deny_for(deny_ip, end + Duration::days(1)).is_none());

    let allow_ip = ip("203.0.113.70");
    let end = datetime!(2026-12-02 16:00:00 UTC);
    assert_eq!(
        o.allows_for(allow_ip, end - Duration::seconds(1)).count(),
        1
    );
    assert_eq!(o.allows_for(allow_ip, end).count(), 0);

    let entry = &o.entries()[0];
    assert!(entry.is_active_at(end - Duration::nanoseconds(1)));
    assert!(!entry.is_active_at(end));
    assert_eq!(o.active_count(end - Duration::seconds(1)), 2);
    assert_eq!(o.active_count(end), 1);
    assert_eq!(o.expired_count(end), 1);
}

#[test]
fn entries_have_no_start_time() {
    // Active at any moment before expiry, even before the load moment
    // (`explain` may ask about the past).
    let o = design();
    assert!(o
        .deny_for(ip("198.51.100.9"), datetime!(2020-01-01 00:00:00 UTC))
        .is_some());
}

#[test]
fn expired_at_load_is_kept_but_inactive() {
    let o = compile_json(json!({ "entries": [
        expiring(NOW - Duration::days(30)),
        expiring(NOW),
        expiring(NOW + Duration::seconds(1)),
    ]}));
    assert!(o.quarantined().is_empty(), "{:?}", o.quarantined());
    assert_eq!(o.entries().len(), 3);
    assert_eq!(o.active_count(NOW), 1);
    assert_eq!(o.expired_count(NOW), 2);
    let active: Vec<usize> = o
        .allows_for(ip("203.0.113.64"), NOW)
        .map(|e| e.index)
        .collect();
    assert_eq!(active, [2]);
    let active: Vec<bool> = o.entries().iter().map(|e| e.is_active_at(NOW)).collect();
    assert_eq!(active, [false, false, true]);
}

// ---- lookups ---------------------------------------------------------------

#[test]
fn deny_for_ipv4_edges() {
    let o = design();
    let deny = o.deny_for(ip("198.51.100.0"), NOW).expect("covered");
    assert_eq!(deny.reason, "reported misuse");
    assert!(o.deny_for(ip("198.51.100.255"), NOW).is_some());
    assert!(o.deny_for(ip("198.51.99.255"), NOW).is_none());
    assert!(o.deny_for(ip("198.51.101.0"), NOW).is_none());
    // An allow entry is never a deny.
    assert!(o.deny_for(ip("203.0.113.64"), NOW).is_none());
}

#[test]
fn allows_for_ipv4_edges() {
    let o = design();
    for addr in ["203.0.113.64", "203.0.113.71"] {
        let found: Vec<&OverrideEntry> = o.allows_for(ip(addr), NOW).collect();
        assert_eq!(found.len(), 1, "{addr}");
        assert_eq!(found[0].site.as_deref(), Some("12AB00"));
    }
    for addr in ["203.0.113.63", "203.0.113.72", "198.51.100.1"] {
        assert_eq!(o.allows_for(ip(addr), NOW).count(), 0, "{addr}");
    }
}

#[test]
fn ipv6_lookups() {
    let o = compile_json(json!({ "entries": [
        with("range", json!("2001:db8:12::/48")),
        { "action": "deny", "range": "2001:db8:66::/64", "reason": "misuse",
          "expires": "2026-12-10T00:00:00Z" },
    ]}));
    assert_eq!(o.allows_for(ip("2001:db8:12::"), NOW).count(), 1);
    assert_eq!(
        o.allows_for(ip("2001:db8:12:ffff:ffff:ffff:ffff:ffff"), NOW)
            .count(),
        1
    );
    assert_eq!(o.allows_for(ip("2001:db8:13::"), NOW).count(), 0);
    assert_eq!(o.allows_for(ip("2001:db8:11:ffff::1"), NOW).count(), 0);
    assert!(o.deny_for(ip("2001:db8:66::1"), NOW).is_some());
    assert!(o.deny_for(ip("2001:db8:66:1::1"), NOW).is_none());
    // An IPv4 address never matches an IPv6 entry.
    assert_eq!(o.allows_for(ip("203.0.113.64"), NOW).count(), 0);
}

#[test]
fn ipv4_mapped_addresses_are_looked_up_as_ipv4() {
    let o = design();
    assert!(o.deny_for(ip("::ffff:198.51.100.9"), NOW).is_some());
    assert_eq!(o.allows_for(ip("::ffff:203.0.113.66"), NOW).count(), 1);
    assert_eq!(o.allows_for(ip("::ffff:203.0.113.72"), NOW).count(), 0);
    // Only the mapped form is unmapped: IPv4-compatible and NAT64 are IPv6.
    assert!(o.deny_for(ip("::198.51.100.9"), NOW).is_none());
    assert!(o.deny_for(ip("64:ff9b::198.51.100.9"), NOW).is_none());
}

#[test]
fn mapped_range_entries_match_plain_and_mapped_addresses() {
    let o = compile_json(json!({ "entries": [
        { "action": "deny", "range": "::ffff:198.51.100.0/120", "reason": "misuse",
          "expires": "2026-12-10T00:00:00Z" },
    ]}));
    assert!(o.deny_for(ip("198.51.100.1"), NOW).is_some());
    assert!(o.deny_for(ip("::ffff:198.51.100.1"), NOW).is_some());
}

#[test]
fn overlapping_deny_and_allow_are_both_seen() {
    // Precedence is the decision's job; both lookups must report.
    let o = compile_json(json!({ "entries": [
        with("range", json!("198.51.100.0/28")),
        { "action": "deny", "range": "198.51.100.0/24", "reason": "reported misuse",
          "expires": "2026-12-10T00:00:00Z" },
        with("site", Value::Null),
    ]}));
    let addr = ip("198.51.100.5");
    assert_eq!(o.deny_for(addr, NOW).map(|e| e.index), Some(1));
    let allows: Vec<usize> = o.allows_for(addr, NOW).map(|e| e.index).collect();
    assert_eq!(allows, [0]);
    // Outside the allow's /28 only the deny applies.
    assert_eq!(
        o.deny_for(ip("198.51.100.200"), NOW).map(|e| e.index),
        Some(1)
    );
    assert_eq!(o.allows_for(ip("198.51.100.200"), NOW).count(), 0);
}

#[test]
fn overlapping_allows_all_reported_in_file_order() {
    let o = compile_json(json!({ "entries": [
        with("range", json!("203.0.113.0/24")),
        with("site", json!("34CD01")),
        with("site", Value::Null),
        with("range", json!("203.0.113.128/25")),
    ]}));
    let found: Vec<(usize, Option<&str>)> = o
        .allows_for(ip("203.0.113.66"), NOW)
        .map(|e| (e.index, e.site.as_deref()))
        .collect();
    assert_eq!(found, [(0, Some("12AB00")), (1, Some("34CD01")), (2, None)]);
}

#[test]
fn deny_for_returns_the_first_active_deny() {
    let deny = |range: &str, expires: &str, reason: &str| json!({"action": "deny", "range": range, "reason": reason, "expires": expires});
    let o = compile_json(json!({ "entries": [
        good(),
        deny("198.51.100.0/24", "2026-12-03T00:00:00Z", "first"),
        deny("198.51.100.0/25", "2026-12-10T00:00:00Z", "second"),
    ]}));
    let addr = ip("198.51.100.1");
    assert_eq!(
        o.deny_for(addr, NOW).map(|e| e.reason.as_str()),
        Some("first")
    );
    // Once the first has expired, the next one covering the address counts.
    let later = datetime!(2026-12-04 00:00:00 UTC);
    assert_eq!(
        o.deny_for(addr, later).map(|e| e.reason.as_str()),
        Some("second")
    );
    assert_eq!(o.deny_for(ip("198.51.100.200"), later), None);
}

// ---- unknown fields --------------------------------------------------------

#[test]
fn unknown_fields_are_tolerated_and_counted() {
    let mut first = good();
    first["ticket"] = json!("SUP-1");
    first["by"] = json!("ops");
    let mut second = with("action", json!("deny"));
    second["ticket"] = json!("SUP-2");
    // Counted even when the entry is quarantined: the field exists.
    let mut third = with("range", json!("0.0.0.0/0"));
    third["ticket"] = json!(null);
    let o = compile_json(json!({
        "comment": "exam week",
        "version": 3,
        "entries": [first, second, third, "not an object"],
    }));
    assert_eq!(
        o.unknown_fields(),
        &[
            ("(top).comment".to_string(), 1),
            ("(top).version".to_string(), 1),
            ("entries[].by".to_string(), 1),
            ("entries[].ticket".to_string(), 3),
        ]
    );
    assert_eq!(o.entries().len(), 2);
    assert_eq!(o.quarantined().len(), 2);
}

// ---- covering (explain) -----------------------------------------------------

#[test]
fn covering_lists_expired_and_active_entries_for_an_address() {
    let mut doc = design_example();
    if let Some(list) = doc["entries"].as_array_mut() {
        list.push(expiring(datetime!(2026-11-30 00:00:00 UTC)));
    }
    let o = compile_at(&doc, &wide(), NOW);
    let at = |text: &str| -> Vec<usize> { o.covering(ip(text)).map(|e| e.index).collect() };
    assert_eq!(at("203.0.113.65"), [0, 2]);
    assert_eq!(at("::ffff:203.0.113.65"), [0, 2]);
    assert_eq!(at("198.51.100.7"), [1]);
    assert!(at("192.0.2.1").is_empty());
}

// ---- robustness ------------------------------------------------------------

mod never_panics {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[ -~]{0,30}".prop_map(Value::String),
            prop_oneof![
                Just("allow"),
                Just("deny"),
                Just("198.51.100.0/24"),
                Just("::ffff:0:0/96"),
                Just("2026-12-02T17:00:00+01:00"),
                Just("9999-12-31T23:59:59Z"),
                Just("0000-01-01T00:00:00Z"),
            ]
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                vec(
                    (
                        prop_oneof![
                            Just("action".to_string()),
                            Just("range".to_string()),
                            Just("site".to_string()),
                            Just("reason".to_string()),
                            Just("expires".to_string()),
                            "[a-z]{1,6}",
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..256)) {
            let _ = compile_overrides(&bytes, &OverrideOptions::default(), NOW);
        }

        #[test]
        fn arbitrary_entries(entries in vec(arb_json(), 0..6), offset in any::<i32>()) {
            let doc = json!({ "entries": entries }).to_string();
            let now = NOW + Duration::seconds(i64::from(offset));
            let o = compile_overrides(doc.as_bytes(), &OverrideOptions::default(), now)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(o.entries().len() + o.quarantined().len(), entries.len());
            prop_assert_eq!(o.active_count(now) + o.expired_count(now), o.entries().len());
            let _ = o.deny_for(ip("198.51.100.1"), now);
            let _ = o.allows_for(ip("::ffff:198.51.100.1"), now).count();
        }
    }
}
