//! Validation and compilation: judge every site, range and exception of a
//! shape-checked document, quarantine what is wrong (skipping only that
//! entry), and build the immutable [`Snapshot`] with its lookup tables.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::document::{json_kind, value_at, DocumentError, RawDocument};
use super::exception::{parse_exception, Exception, ExceptionPlace};
use super::options::CompileOptions;
use super::quarantine::{QuarantineKind, Quarantined};
use super::range::parse_range;
use super::site::{Site, SiteIdx};
use super::snapshot::Snapshot;
use super::table::{IntervalTable, TableOverflow};

/// Longest accepted site id. BRIN + location code is 6; this leaves room for
/// other id schemes without letting an id become a log-line payload.
pub(crate) const MAX_SITE_ID_LEN: usize = 64;

/// Compile a document whose outer shape `document` already checked.
pub(crate) fn compile_document(
    raw: RawDocument<'_>,
    opts: &CompileOptions,
) -> Result<Snapshot, DocumentError> {
    let mut compiler = Compiler::new(opts);
    for name in &raw.unknown_fields {
        compiler.count_unknown(format!("(top).{name}"));
    }
    compiler.ranges.reserve(raw.bytes.len() / 24);
    for (position, site) in raw.sites.iter().enumerate() {
        let fast = serde_json::from_str::<WellFormedSite<'_>>(site.get())
            .ok()
            .is_some_and(|s| compiler.well_formed_site(raw.bytes, position, &s) == Some(true));
        if !fast {
            compiler.site(position, &value_at(raw.bytes, site)?);
        }
    }
    compiler.finish(raw.version)
}

/// A site entry of the common shape, read without building a `Value`: known fields
/// only, each of the right type, strings borrowed from the document. Anything else
/// fails to deserialize and is judged field by field by [`Compiler::site`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WellFormedSite<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    ranges: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    exceptions: Option<&'a RawValue>,
}

struct Compiler<'o> {
    opts: &'o CompileOptions,
    sites: Vec<Site>,
    /// Accepted id -> (index, position in the document's `sites`).
    site_index: HashMap<String, (SiteIdx, usize)>,
    ranges: Vec<(IpNet, SiteIdx)>,
    exceptions: Vec<Exception>,
    quarantined: Vec<Quarantined>,
    unknown: BTreeMap<String, u64>,
}

impl<'o> Compiler<'o> {
    fn new(opts: &'o CompileOptions) -> Self {
        Compiler {
            opts,
            sites: Vec::new(),
            site_index: HashMap::new(),
            ranges: Vec::new(),
            exceptions: Vec::new(),
            quarantined: Vec::new(),
            unknown: BTreeMap::new(),
        }
    }

    fn count_unknown(&mut self, path: String) {
        *self.unknown.entry(path).or_insert(0) += 1;
    }

    fn quarantine(&mut self, q: Quarantined) {
        self.quarantined.push(q);
    }

    /// The fast path for a [`WellFormedSite`] whose id is usable: the same records as
    /// [`Compiler::site`] would make for it. `Some(false)` (before any change) when the
    /// id needs a quarantine record, which `site` makes.
    fn well_formed_site(
        &mut self,
        bytes: &[u8],
        position: usize,
        site: &WellFormedSite<'_>,
    ) -> Option<bool> {
        let id: &str = &site.id;
        if id_problem(id).is_some() || self.site_index.contains_key(id) {
            return Some(false);
        }
        let Ok(idx) = SiteIdx::try_from(self.sites.len()) else {
            return Some(false);
        };
        let exceptions = match site.exceptions {
            Some(raw) => Some(value_at(bytes, raw).ok()?),
            None => None,
        };
        for (j, text) in site.ranges.iter().flatten().enumerate() {
            match parse_range(text, self.opts) {
                Ok(net) => self.ranges.push((net, idx)),
                Err(p) => self.quarantine(Quarantined::new(
                    p.kind(),
                    id,
                    format!("ranges[{j}]"),
                    &Value::String(text.to_string()),
                    p.message(),
                )),
            }
        }
        self.site_exceptions(id, idx, exceptions.as_ref());
        self.site_index.insert(id.to_string(), (idx, position));
        self.sites.push(Site {
            id: id.to_string(),
            name: site.name.as_deref().map(str::to_string),
        });
        Some(true)
    }

    /// Judge one element of `sites`. A bad or repeated id skips the whole
    /// site (without a trustworthy id nothing can be attributed to it);
    /// anything else skips only the offending field or entry.
    fn site(&mut self, position: usize, value: &Value) {
        let label = format!("sites[{position}]");
        let Value::Object(obj) = value else {
            self.quarantine(Quarantined::new(
                QuarantineKind::SiteNotObject,
                label,
                "",
                value,
                format!("site entry is not an object (found {})", json_kind(value)),
            ));
            return;
        };
        for key in obj.keys() {
            if !matches!(key.as_str(), "id" | "name" | "ranges" | "exceptions") {
                self.count_unknown(format!("sites[].{key}"));
            }
        }

        let id = match site_id(obj, value) {
            Ok(id) => id,
            Err((shown, problem)) => {
                self.quarantine(Quarantined::new(
                    QuarantineKind::BadSiteId,
                    label,
                    "id",
                    shown,
                    problem,
                ));
                return;
            }
        };
        if let Some(&(_, first)) = self.site_index.get(id) {
            self.quarantine(Quarantined::new(
                QuarantineKind::DuplicateSiteId,
                id,
                "id",
                &Value::String(id.to_string()),
                format!("repeated site id: sites[{first}] has it first and counts, this one (sites[{position}]) is skipped"),
            ));
            return;
        }
        let Ok(idx) = SiteIdx::try_from(self.sites.len()) else {
            self.quarantine(Quarantined::new(
                QuarantineKind::TooMany,
                id,
                "",
                &Value::String(id.to_string()),
                "too many sites in one document",
            ));
            return;
        };

        let name = match obj.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(other) => {
                // Informational only: keep the site, drop the name.
                self.quarantine(Quarantined::new(
                    QuarantineKind::BadField,
                    id,
                    "name",
                    other,
                    format!("`name` is not a string (found {})", json_kind(other)),
                ));
                None
            }
        };

        self.site_ranges(id, idx, obj.get("ranges"));
        self.site_exceptions(id, idx, obj.get("exceptions"));

        self.site_index.insert(id.to_string(), (idx, position));
        self.sites.push(Site {
            id: id.to_string(),
            name,
        });
    }

    fn site_ranges(&mut self, id: &str, idx: SiteIdx, ranges: Option<&Value>) {
        let list = match ranges {
            // A site without ranges is legal (it may have only exceptions,
            // or be registered before its addresses are).
            None | Some(Value::Null) => return,
            Some(Value::Array(list)) => list,
            Some(other) => {
                self.quarantine(Quarantined::new(
                    QuarantineKind::BadField,
                    id,
                    "ranges",
                    other,
                    format!(
                        "`ranges` is not an array (found {}); no range of this site is used",
                        json_kind(other)
                    ),
                ));
                return;
            }
        };
        for (j, entry) in list.iter().enumerate() {
            let field = || format!("ranges[{j}]");
            let Value::String(text) = entry else {
                self.quarantine(Quarantined::new(
                    QuarantineKind::MalformedRange,
                    id,
                    field(),
                    entry,
                    format!("range is not a string (found {})", json_kind(entry)),
                ));
                continue;
            };
            match parse_range(text, self.opts) {
                Ok(net) => self.ranges.push((net, idx)),
                Err(p) => {
                    self.quarantine(Quarantined::new(p.kind(), id, field(), entry, p.message()))
                }
            }
        }
    }

    fn site_exceptions(&mut self, id: &str, idx: SiteIdx, exceptions: Option<&Value>) {
        let list = match exceptions {
            None | Some(Value::Null) => return,
            Some(Value::Array(list)) => list,
            Some(other) => {
                self.quarantine(Quarantined::new(
                    QuarantineKind::BadField,
                    id,
                    "exceptions",
                    other,
                    format!(
                        "`exceptions` is not an array (found {}); no exception of this site is used",
                        json_kind(other)
                    ),
                ));
                return;
            }
        };
        for (index, entry) in list.iter().enumerate() {
            let place = ExceptionPlace {
                site_label: id,
                site: idx,
                index,
            };
            match parse_exception(entry, &place, self.opts, &mut self.unknown) {
                Ok(exception) if u32::try_from(self.exceptions.len()).is_ok() => {
                    self.exceptions.push(exception)
                }
                Ok(_) => self.quarantine(Quarantined::new(
                    QuarantineKind::TooMany,
                    id,
                    format!("exceptions[{index}]"),
                    entry,
                    "too many exceptions in one document",
                )),
                Err(q) => self.quarantine(q),
            }
        }
    }

    fn finish(self, version: Option<String>) -> Result<Snapshot, DocumentError> {
        let too_complex = |e: TableOverflow| DocumentError::TooComplex { entries: e.entries };
        let (v4, v6) = split_families(self.ranges.iter().map(|&(net, site)| (net, site)));
        // Exception indices fit u32: checked as they were pushed.
        let (ex4, ex6) = split_families(
            self.exceptions
                .iter()
                .zip(0u32..)
                .map(|(e, i)| (e.range, i)),
        );
        Ok(Snapshot {
            version,
            sites: self.sites,
            site_index: self
                .site_index
                .into_iter()
                .map(|(id, (idx, _))| (id, idx))
                .collect(),
            ranges: self.ranges,
            v4: IntervalTable::build(&v4).map_err(too_complex)?,
            v6: IntervalTable::build(&v6).map_err(too_complex)?,
            exceptions: self.exceptions,
            exceptions_v4: IntervalTable::build(&ex4).map_err(too_complex)?,
            exceptions_v6: IntervalTable::build(&ex6).map_err(too_complex)?,
            quarantined: self.quarantined,
            unknown_fields: self.unknown.into_iter().collect(),
        })
    }
}

/// Inclusive first/last keys per family, for the interval tables.
type Spans = (Vec<(u32, u32, u32)>, Vec<(u128, u128, u32)>);

fn split_families(nets: impl Iterator<Item = (IpNet, u32)>) -> Spans {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (net, value) in nets {
        match net {
            IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), value)),
            IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), value)),
        }
    }
    (v4, v6)
}

/// The site's id, or what to show and say when it is unusable.
fn site_id<'a>(
    obj: &'a Map<String, Value>,
    whole: &'a Value,
) -> Result<&'a str, (&'a Value, String)> {
    match obj.get("id") {
        None | Some(Value::Null) => Err((whole, "`id` is missing".to_string())),
        Some(shown @ Value::String(id)) => match id_problem(id) {
            None => Ok(id.as_str()),
            Some(problem) => Err((shown, problem)),
        },
        Some(other) => Err((
            other,
            format!("site id is not a string (found {})", json_kind(other)),
        )),
    }
}

/// How a string fails the site-id rules (1 to 64 of A-Z, a-z, 0-9, `_`, `-`): the one rule
/// for the allowlist's site ids and every other place that names a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SiteIdProblem {
    Empty,
    TooLong,
    BadCharacters,
}

pub(crate) fn site_id_problem(id: &str) -> Option<SiteIdProblem> {
    if id.is_empty() {
        Some(SiteIdProblem::Empty)
    } else if id.chars().count() > MAX_SITE_ID_LEN {
        Some(SiteIdProblem::TooLong)
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Some(SiteIdProblem::BadCharacters)
    } else {
        None
    }
}

fn id_problem(id: &str) -> Option<String> {
    site_id_problem(id).map(|p| match p {
        SiteIdProblem::Empty => "site id is empty".to_string(),
        SiteIdProblem::TooLong => format!("site id is longer than {MAX_SITE_ID_LEN} characters"),
        SiteIdProblem::BadCharacters => {
            "site id has characters outside A-Z, a-z, 0-9, `_` and `-`".to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::compile as compile_bytes;
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn compile_json(doc: Value) -> Snapshot {
        compile_bytes(doc.to_string().as_bytes(), &CompileOptions::default())
            .expect("document-level valid")
    }

    fn site_doc(id: &str, ranges: Value) -> Value {
        json!({"sites": [{"id": id, "ranges": ranges}]})
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn ids(s: &Snapshot, addr: &str) -> Vec<String> {
        s.sites_for(ip(addr))
            .iter()
            .filter_map(|&i| s.site(i))
            .map(|site| site.id.clone())
            .collect()
    }

    /// The only quarantine record, asserting there is exactly one.
    fn only_quarantine(s: &Snapshot) -> &Quarantined {
        assert_eq!(s.quarantined().len(), 1, "{:#?}", s.quarantined());
        &s.quarantined()[0]
    }

    #[test]
    fn design_example_compiles() {
        let doc = br#"{
          "version": "2026-11-28T19:00:00Z-4711",
          "sites": [
            { "id": "12AB00", "name": "OBS De Regenboog",
              "ranges": ["192.0.2.0/28", "2001:db8:12::/48", "198.51.100.7"],
              "exceptions": [
                { "range": "203.0.113.9", "reason": "test at home",
                  "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00" } ] }
          ]
        }"#;
        let s = compile_bytes(doc, &CompileOptions::default()).expect("valid");
        assert_eq!(s.version(), Some("2026-11-28T19:00:00Z-4711"));
        assert_eq!(s.site_count(), 1);
        assert_eq!(s.range_count(), 3);
        assert_eq!(s.exception_count(), 1);
        assert!(s.quarantined().is_empty());
        assert!(s.unknown_fields().is_empty());
        assert_eq!(
            s.sites(),
            &[Site {
                id: "12AB00".into(),
                name: Some("OBS De Regenboog".into())
            }]
        );
        assert_eq!(s.site_index("12AB00"), Some(0));
        assert_eq!(ids(&s, "192.0.2.0"), ["12AB00"]);
        assert_eq!(ids(&s, "192.0.2.15"), ["12AB00"]);
        assert!(ids(&s, "192.0.2.16").is_empty());
        assert_eq!(ids(&s, "2001:db8:12:ffff::1"), ["12AB00"]);
        assert!(ids(&s, "2001:db8:13::").is_empty());
        assert_eq!(ids(&s, "198.51.100.7"), ["12AB00"]);
        assert!(ids(&s, "198.51.100.8").is_empty());
        // The exception is not a registered range.
        assert!(ids(&s, "203.0.113.9").is_empty());
        let at = datetime!(2026-12-02 12:00:00 +01:00);
        let found: Vec<_> = s.exceptions_for(ip("203.0.113.9"), at).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].site, 0);
        assert_eq!(found[0].reason.as_deref(), Some("test at home"));
        let ranges: Vec<String> = s.ranges().map(|(n, i)| format!("{n}@{i}")).collect();
        assert_eq!(
            ranges,
            ["192.0.2.0/28@0", "2001:db8:12::/48@0", "198.51.100.7/32@0"]
        );
    }

    /// A site with a field we do not know goes the general way; the result must not
    /// depend on which way a site went.
    #[test]
    fn well_formed_and_general_paths_agree() {
        let doc = r#"{"sites": [
          {"id": "A", "name": "x", "ranges": ["192.0.2.0/28", "192.0.2.1", "10.0.0.0/8", "2001:db8::/48", " 1.2.3.4", "::ffff:192.0.2.0/120"]X},
          {"id": "B", "ranges": ["198.51.100.0/24", "2001:db8:1\u003a:/48"], "exceptions": [
            {"range": "203.0.113.9", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"}]X},
          {"id": "A", "ranges": ["198.51.100.9"]X},
          {"id": "C", "name": null, "ranges": null, "exceptions": null X},
          {"id": "bad id", "ranges": ["203.0.113.0/24"]X}
        ]}"#;
        let opts = CompileOptions::default();
        let fast = compile_bytes(doc.replace('X', "").as_bytes(), &opts).expect("valid");
        let general = compile_bytes(
            doc.replace("null X", "null, \"x\": 1")
                .replace('X', ", \"x\": 1")
                .as_bytes(),
            &opts,
        )
        .expect("valid");
        assert_eq!(general.unknown_fields(), &[("sites[].x".to_string(), 5)]);
        assert!(fast.unknown_fields().is_empty());
        assert_eq!(fast.sites(), general.sites());
        assert_eq!(
            fast.ranges().collect::<Vec<_>>(),
            general.ranges().collect::<Vec<_>>()
        );
        assert_eq!(fast.exceptions(), general.exceptions());
        assert_eq!(fast.quarantined(), general.quarantined());
        assert!(fast.quarantined().len() >= 4, "{:#?}", fast.quarantined());
    }

    #[test]
    fn nesting_too_deep_inside_a_site_is_not_json_at_its_place() {
        let doc = format!(
            "{{\n \"sites\": [{{\"id\": \"A\", \"ranges\": {}{}}}]}}",
            "[".repeat(300),
            "]".repeat(300)
        );
        match compile_bytes(doc.as_bytes(), &CompileOptions::default()) {
            Err(DocumentError::NotJson {
                line,
                column,
                detail,
            }) => {
                assert_eq!(line, 2, "{detail}");
                assert!(column > 30, "{column}: {detail}");
                assert!(
                    detail.ends_with(&format!("at line 2 column {column}")),
                    "{detail}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_sites_list() {
        let s = compile_json(json!({"sites": []}));
        assert_eq!(s.site_count(), 0);
        assert_eq!(s.range_count(), 0);
        assert!(s.quarantined().is_empty());
        assert!(s.sites_for(ip("192.0.2.1")).is_empty());
        assert!(s.sites_for(ip("::")).is_empty());
    }

    #[test]
    fn document_errors_pass_through() {
        let opts = CompileOptions::default();
        assert!(matches!(
            compile_bytes(b"", &opts),
            Err(DocumentError::Empty)
        ));
        assert!(matches!(
            compile_bytes(b"nope", &opts),
            Err(DocumentError::NotJson { .. })
        ));
        assert!(matches!(
            compile_bytes(br#"{"sites": [{"id": "A""#, &opts),
            Err(DocumentError::Truncated { .. })
        ));
        assert!(matches!(
            compile_bytes(b"[]", &opts),
            Err(DocumentError::NotAnObject { .. })
        ));
        assert!(matches!(
            compile_bytes(b"{}", &opts),
            Err(DocumentError::SitesMissing)
        ));
        assert!(matches!(
            compile_bytes(br#"{"sites": 1}"#, &opts),
            Err(DocumentError::SitesNotArray { .. })
        ));
        assert!(matches!(
            compile_bytes(br#"{"sites": [], "version": []}"#, &opts),
            Err(DocumentError::VersionNotString { .. })
        ));
    }

    // ---- quarantine: ranges -------------------------------------------------

    #[test]
    fn host_bits_quarantine_names_site_field_value() {
        let s = compile_json(site_doc(
            "12AB00",
            json!(["192.0.2.0/28", "198.51.100.0/24", "192.0.2.5/24"]),
        ));
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::HostBitsSet);
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, ranges[2] = "192.0.2.5/24": host bits set (did you mean 192.0.2.0/24?)"#
        );
        // The rest of the site is kept.
        assert_eq!(s.site_count(), 1);
        assert_eq!(s.range_count(), 2);
        assert_eq!(ids(&s, "198.51.100.200"), ["12AB00"]);
        // The router's /24 was not registered.
        assert!(ids(&s, "192.0.2.200").is_empty());
    }

    #[test]
    fn malformed_range_quarantine() {
        let s = compile_json(site_doc("12AB00", json!(["192.0.2.01"])));
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::MalformedRange);
        assert_eq!(q.site, "12AB00");
        assert_eq!(q.field, "ranges[0]");
        assert_eq!(q.value, "\"192.0.2.01\"");
        assert!(
            q.problem.contains("not a strict IPv4 or IPv6 address"),
            "{}",
            q.problem
        );
        assert_eq!(s.site_count(), 1);
        assert_eq!(s.range_count(), 0);
    }

    #[test]
    fn every_malformed_kind_is_quarantined_individually() {
        let s = compile_json(site_doc(
            "12AB00",
            json!([
                " 192.0.2.1",
                "fe80::1%eth0",
                "192.0.2.0/024",
                "",
                "[2001:db8::1]",
                "192.0.2.1",
            ]),
        ));
        assert_eq!(s.range_count(), 1);
        let fields: Vec<_> = s.quarantined().iter().map(|q| q.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "ranges[0]",
                "ranges[1]",
                "ranges[2]",
                "ranges[3]",
                "ranges[4]"
            ]
        );
        assert!(s
            .quarantined()
            .iter()
            .all(|q| q.kind == QuarantineKind::MalformedRange));
        assert_eq!(s.quarantined()[0].problem, "range contains whitespace");
        assert!(s.quarantined()[1].problem.contains("zone ids"));
        assert!(s.quarantined()[2].problem.contains("prefix length"));
        assert_eq!(s.quarantined()[3].problem, "empty range");
    }

    #[test]
    fn non_string_range_values() {
        let s = compile_json(site_doc(
            "12AB00",
            json!([3_221_225_984u64, null, ["192.0.2.0/24"], {"cidr": "192.0.2.0/24"}, true, "192.0.2.0/24"]),
        ));
        assert_eq!(s.range_count(), 1);
        let problems: Vec<_> = s.quarantined().iter().map(|q| q.problem.as_str()).collect();
        assert_eq!(
            problems,
            [
                "range is not a string (found a number)",
                "range is not a string (found null)",
                "range is not a string (found an array)",
                "range is not a string (found an object)",
                "range is not a string (found a boolean)",
            ]
        );
        assert_eq!(s.quarantined()[0].value, "3221225984");
        assert_eq!(
            s.quarantined()[0].to_string(),
            "site 12AB00, ranges[0] = 3221225984: range is not a string (found a number)"
        );
    }

    #[test]
    fn too_broad_ranges_never_open_the_gate() {
        let s = compile_json(site_doc(
            "12AB00",
            json!([
                "0.0.0.0/0",
                "::/0",
                "10.0.0.0/8",
                "2001:db8::/31",
                "192.168.0.0/16",
                "2001:db8::/32"
            ]),
        ));
        assert_eq!(s.range_count(), 2);
        let broad: Vec<_> = s
            .quarantined()
            .iter()
            .map(|q| (q.kind, q.field.as_str(), q.problem.as_str()))
            .collect();
        assert_eq!(
            broad,
            [
                (
                    QuarantineKind::PrefixTooBroad,
                    "ranges[0]",
                    "prefix /0 is broader than the allowed /16"
                ),
                (
                    QuarantineKind::PrefixTooBroad,
                    "ranges[1]",
                    "prefix /0 is broader than the allowed /32"
                ),
                (
                    QuarantineKind::PrefixTooBroad,
                    "ranges[2]",
                    "prefix /8 is broader than the allowed /16"
                ),
                (
                    QuarantineKind::PrefixTooBroad,
                    "ranges[3]",
                    "prefix /31 is broader than the allowed /32"
                ),
            ]
        );
        assert!(ids(&s, "8.8.8.8").is_empty());
        assert!(ids(&s, "10.1.2.3").is_empty());
        assert_eq!(ids(&s, "192.168.255.255"), ["12AB00"]);
        assert_eq!(ids(&s, "2001:db8:ffff::1"), ["12AB00"]);
        assert!(ids(&s, "2001:db9::1").is_empty());
    }

    #[test]
    fn max_prefix_options_apply() {
        let doc = site_doc("12AB00", json!(["192.0.2.0/24", "2001:db8::/48"]));
        let opts = CompileOptions {
            max_prefix_v4: 25,
            max_prefix_v6: 56,
        };
        let s = compile_bytes(doc.to_string().as_bytes(), &opts).expect("valid");
        assert_eq!(s.range_count(), 0);
        assert_eq!(s.quarantined().len(), 2);
        assert!(s
            .quarantined()
            .iter()
            .all(|q| q.kind == QuarantineKind::PrefixTooBroad));
    }

    #[test]
    fn mapped_ranges_are_ipv4() {
        let s = compile_json(site_doc(
            "12AB00",
            json!(["::ffff:192.0.2.0/120", "::ffff:198.51.100.7"]),
        ));
        assert!(s.quarantined().is_empty(), "{:?}", s.quarantined());
        assert_eq!(s.range_count(), 2);
        let ranges: Vec<String> = s.ranges().map(|(n, _)| n.to_string()).collect();
        assert_eq!(ranges, ["192.0.2.0/24", "198.51.100.7/32"]);
        assert_eq!(ids(&s, "192.0.2.77"), ["12AB00"]);
        assert_eq!(ids(&s, "198.51.100.7"), ["12AB00"]);
        // A mapped client address that reaches the lookup is unmapped too.
        assert_eq!(ids(&s, "::ffff:192.0.2.77"), ["12AB00"]);
        assert!(ids(&s, "::ffff:192.0.3.0").is_empty());
    }

    #[test]
    fn mapped_range_with_problems_is_judged_as_ipv4() {
        let s = compile_json(site_doc(
            "12AB00",
            json!(["::ffff:192.0.2.5/120", "::ffff:0.0.0.0/96"]),
        ));
        let q = &s.quarantined();
        assert_eq!(q.len(), 2);
        assert_eq!(
            q[0].to_string(),
            r#"site 12AB00, ranges[0] = "::ffff:192.0.2.5/120": host bits set (did you mean 192.0.2.0/24?)"#
        );
        assert_eq!(q[1].kind, QuarantineKind::PrefixTooBroad);
        assert!(ids(&s, "192.0.2.5").is_empty());
    }

    #[test]
    fn ipv6_ranges_over_mapped_space_quarantined() {
        let s = compile_json(site_doc("12AB00", json!(["::/32", "::ff00:0:0/88"])));
        assert_eq!(s.range_count(), 0);
        assert_eq!(s.quarantined().len(), 2);
        assert!(s
            .quarantined()
            .iter()
            .all(|q| q.kind == QuarantineKind::MappedSpace));
        assert!(s.quarantined()[0].problem.contains("IPv4-mapped"));
    }

    #[test]
    fn ranges_field_not_an_array() {
        let doc = json!({"sites": [{
            "id": "12AB00",
            "ranges": "192.0.2.0/24",
            "exceptions": [{"range": "203.0.113.9", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"}]
        }]});
        let s = compile_json(doc);
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::BadField);
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, ranges = "192.0.2.0/24": `ranges` is not an array (found a string); no range of this site is used"#
        );
        // The site and its exception survive.
        assert_eq!(s.site_count(), 1);
        assert_eq!(s.range_count(), 0);
        assert_eq!(s.exception_count(), 1);
    }

    #[test]
    fn ranges_missing_or_null_is_an_empty_site() {
        let s = compile_json(
            json!({"sites": [{"id": "A"}, {"id": "B", "ranges": null}, {"id": "C", "ranges": []}]}),
        );
        assert_eq!(s.site_count(), 3);
        assert_eq!(s.range_count(), 0);
        assert!(s.quarantined().is_empty());
    }

    // ---- quarantine: sites --------------------------------------------------

    #[test]
    fn site_not_an_object() {
        let s = compile_json(json!({"sites": [
            {"id": "A", "ranges": ["192.0.2.1"]},
            "12AB00",
            {"id": "B", "ranges": ["192.0.2.2"]}
        ]}));
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::SiteNotObject);
        assert_eq!(q.site, "sites[1]");
        assert_eq!(q.field, "");
        assert_eq!(
            q.to_string(),
            r#"site sites[1] = "12AB00": site entry is not an object (found a string)"#
        );
        // Indices stay dense over accepted sites.
        assert_eq!(s.site_count(), 2);
        assert_eq!(ids(&s, "192.0.2.2"), ["B"]);
        assert_eq!(s.site_index("B"), Some(1));
    }

    #[test]
    fn site_id_missing() {
        let s = compile_json(json!({"sites": [
            {"name": "OBS Zonder Id", "ranges": ["192.0.2.0/24"]}
        ]}));
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::BadSiteId);
        assert_eq!(q.site, "sites[0]");
        assert_eq!(q.field, "id");
        assert_eq!(q.problem, "`id` is missing");
        // The value shows the site, so the admin can find it.
        assert!(q.value.contains("OBS Zonder Id"), "{}", q.value);
        assert_eq!(s.site_count(), 0);
        assert!(ids(&s, "192.0.2.1").is_empty());
    }

    #[test]
    fn site_id_bad_values() {
        let long = "A".repeat(65);
        let cases = [
            (
                json!(12),
                "site id is not a string (found a number)",
                "12".to_string(),
            ),
            (
                json!(["12AB00"]),
                "site id is not a string (found an array)",
                r#"["12AB00"]"#.to_string(),
            ),
            (json!(""), "site id is empty", "\"\"".to_string()),
            (
                json!("12 AB00"),
                "site id has characters outside A-Z, a-z, 0-9, `_` and `-`",
                "\"12 AB00\"".to_string(),
            ),
            (
                json!("12AB00/1"),
                "site id has characters outside A-Z, a-z, 0-9, `_` and `-`",
                "\"12AB00/1\"".to_string(),
            ),
            (
                json!("12ÅB00"),
                "site id has characters outside A-Z, a-z, 0-9, `_` and `-`",
                "\"12ÅB00\"".to_string(),
            ),
            (
                json!(long.clone()),
                "site id is longer than 64 characters",
                format!("\"{long}\""),
            ),
        ];
        for (id, problem, value) in cases {
            let s = compile_json(json!({"sites": [{"id": id, "ranges": ["192.0.2.0/24"]}]}));
            let q = only_quarantine(&s);
            assert_eq!(q.kind, QuarantineKind::BadSiteId);
            assert_eq!(q.site, "sites[0]");
            assert_eq!(q.field, "id");
            assert_eq!(q.problem, problem);
            assert_eq!(q.value, value);
            assert_eq!(s.site_count(), 0);
            assert_eq!(s.range_count(), 0);
        }
    }

    #[test]
    fn site_id_limits_accepted() {
        let max = "a".repeat(64);
        let s = compile_json(json!({"sites": [{"id": max}, {"id": "a_B-9"}, {"id": "x"}]}));
        assert!(s.quarantined().is_empty());
        assert_eq!(s.site_count(), 3);
    }

    #[test]
    fn repeated_site_id_first_counts() {
        let s = compile_json(json!({"sites": [
            {"id": "12AB00", "name": "first", "ranges": ["192.0.2.0/28"]},
            {"id": "34CD00", "ranges": ["198.51.100.0/28"]},
            {"id": "12AB00", "name": "second", "ranges": ["203.0.113.0/28"], "exceptions": [
                {"range": "203.0.113.99", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"}
            ]}
        ]}));
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::DuplicateSiteId);
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, id = "12AB00": repeated site id: sites[0] has it first and counts, this one (sites[2]) is skipped"#
        );
        assert_eq!(s.site_count(), 2);
        assert_eq!(s.range_count(), 2);
        assert_eq!(s.sites()[0].name.as_deref(), Some("first"));
        assert!(ids(&s, "203.0.113.1").is_empty());
        // Nothing of the skipped site is used, exceptions included.
        assert_eq!(s.exception_count(), 0);
    }

    #[test]
    fn name_not_a_string_keeps_the_site() {
        let s = compile_json(
            json!({"sites": [{"id": "12AB00", "name": {"nl": "x"}, "ranges": ["192.0.2.0/24"]}]}),
        );
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::BadField);
        assert_eq!(
            q.to_string(),
            r#"site 12AB00, name = {"nl":"x"}: `name` is not a string (found an object)"#
        );
        assert_eq!(s.site_count(), 1);
        assert_eq!(s.sites()[0].name, None);
        assert_eq!(ids(&s, "192.0.2.9"), ["12AB00"]);
    }

    // ---- quarantine: exceptions ---------------------------------------------

    fn exception_doc(exceptions: Value) -> Value {
        json!({"sites": [{"id": "12AB00", "ranges": ["192.0.2.0/24"], "exceptions": exceptions}]})
    }

    #[test]
    fn exceptions_field_not_an_array() {
        let s = compile_json(exception_doc(json!({"range": "203.0.113.9"})));
        let q = only_quarantine(&s);
        assert_eq!(q.kind, QuarantineKind::BadField);
        assert_eq!(q.field, "exceptions");
        assert!(q
            .problem
            .starts_with("`exceptions` is not an array (found an object)"));
        assert_eq!(s.range_count(), 1);
        assert_eq!(s.exception_count(), 0);
    }

    #[test]
    fn bad_exceptions_skip_only_themselves() {
        let good = json!({"range": "203.0.113.9", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"});
        let s = compile_json(exception_doc(json!([
            good,
            "203.0.113.10",
            {"range": "203.0.113.11/24", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"},
            {"range": "203.0.113.12", "not_before": "2026-12-01T08:00:00", "not_after": "2026-12-05T17:00:00+01:00"},
            {"range": "203.0.113.13", "not_before": "2026-12-05T17:00:00+01:00", "not_after": "2026-12-01T08:00:00+01:00"},
            {"range": "203.0.113.14", "not_before": "2026-12-01T08:00:00+01:00"},
        ])));
        assert_eq!(s.exception_count(), 1);
        let got: Vec<_> = s
            .quarantined()
            .iter()
            .map(|q| (q.kind, q.field.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (QuarantineKind::BadField, "exceptions[1]"),
                (QuarantineKind::HostBitsSet, "exceptions[2].range"),
                (QuarantineKind::BadTime, "exceptions[3].not_before"),
                (QuarantineKind::EmptyWindow, "exceptions[4].not_after"),
                (QuarantineKind::BadField, "exceptions[5].not_after"),
            ]
        );
        assert!(s.quarantined().iter().all(|q| q.site == "12AB00"));
        assert_eq!(
            s.quarantined()[1].to_string(),
            r#"site 12AB00, exceptions[2].range = "203.0.113.11/24": host bits set (did you mean 203.0.113.0/24?)"#
        );
    }

    #[test]
    fn exception_window_boundaries() {
        let s = compile_json(exception_doc(json!([
            {"range": "203.0.113.0/29", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"}
        ])));
        let at = |t| s.exceptions_for(ip("203.0.113.7"), t).count();
        assert_eq!(
            at(datetime!(2026-12-01 07:00:00 UTC)),
            1,
            "at == not_before is inside"
        );
        assert_eq!(at(datetime!(2026-12-01 06:59:59.999999999 UTC)), 0);
        assert_eq!(at(datetime!(2026-12-05 15:59:59.999999999 UTC)), 1);
        assert_eq!(
            at(datetime!(2026-12-05 17:00:00 +01:00)),
            0,
            "at == not_after is outside"
        );
        // Outside the range, inside the window.
        assert_eq!(
            s.exceptions_for(ip("203.0.113.8"), datetime!(2026-12-02 12:00:00 UTC))
                .count(),
            0
        );
    }

    #[test]
    fn overlapping_exceptions_all_reported() {
        let s = compile_json(json!({"sites": [
            {"id": "A", "exceptions": [
                {"range": "203.0.113.0/24", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"},
                {"range": "203.0.113.9", "not_before": "2026-06-01T00:00:00Z", "not_after": "2026-07-01T00:00:00Z"}
            ]},
            {"id": "B", "exceptions": [
                {"range": "2001:db8::/48", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"},
                {"range": "203.0.113.9", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"}
            ]}
        ]}));
        assert_eq!(s.exception_count(), 4);
        let sites_at =
            |addr: &str, t| -> Vec<u32> { s.exceptions_for(ip(addr), t).map(|e| e.site).collect() };
        assert_eq!(
            sites_at("203.0.113.9", datetime!(2026-06-15 00:00:00 UTC)),
            [0, 0, 1]
        );
        assert_eq!(
            sites_at("203.0.113.9", datetime!(2026-08-01 00:00:00 UTC)),
            [0, 1]
        );
        assert_eq!(
            sites_at("203.0.113.10", datetime!(2026-06-15 00:00:00 UTC)),
            [0]
        );
        assert_eq!(
            sites_at("2001:db8::5", datetime!(2026-06-15 00:00:00 UTC)),
            [1]
        );
        assert_eq!(
            sites_at("::ffff:203.0.113.10", datetime!(2026-06-15 00:00:00 UTC)),
            [0]
        );
        assert!(sites_at("203.0.113.9", datetime!(2027-01-01 00:00:00 UTC)).is_empty());
    }

    // ---- unknown fields -----------------------------------------------------

    #[test]
    fn unknown_fields_are_tolerated_and_counted() {
        let s = compile_json(json!({
            "generated_by": "basispoort",
            "schema": 2,
            "sites": [
                {"id": "A", "contact": "x", "ranges": ["192.0.2.1"], "exceptions": [
                    {"range": "203.0.113.9", "ticket": "SUP-1", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"},
                    {"range": "203.0.113.10", "ticket": "SUP-2", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"}
                ]},
                {"id": "B", "contact": "y", "brin": "34CD"},
                // Counted even when the site is quarantined: the field exists.
                {"contact": "z"}
            ]
        }));
        assert_eq!(
            s.unknown_fields(),
            &[
                ("(top).generated_by".to_string(), 1),
                ("(top).schema".to_string(), 1),
                ("sites[].brin".to_string(), 1),
                ("sites[].contact".to_string(), 3),
                ("sites[].exceptions[].ticket".to_string(), 2),
            ]
        );
        assert_eq!(s.site_count(), 2);
        assert_eq!(s.exception_count(), 2);
        assert_eq!(s.quarantined().len(), 1);
    }

    // ---- lookups ------------------------------------------------------------

    #[test]
    fn overlapping_ranges_across_sites() {
        let s = compile_json(json!({"sites": [
            {"id": "A", "ranges": ["192.0.2.0/24", "2001:db8:1::/48"]},
            {"id": "B", "ranges": ["192.0.2.128/25", "2001:db8:1:2::/64"]},
            {"id": "C", "ranges": ["192.0.2.130", "192.0.2.0/24"]}
        ]}));
        assert_eq!(s.range_count(), 6);
        assert_eq!(ids(&s, "192.0.2.1"), ["A", "C"]);
        assert_eq!(ids(&s, "192.0.2.127"), ["A", "C"]);
        assert_eq!(ids(&s, "192.0.2.128"), ["A", "B", "C"]);
        assert_eq!(ids(&s, "192.0.2.130"), ["A", "B", "C"]);
        assert_eq!(ids(&s, "192.0.2.255"), ["A", "B", "C"]);
        assert!(ids(&s, "192.0.3.0").is_empty());
        assert_eq!(ids(&s, "2001:db8:1:2::1"), ["A", "B"]);
        assert_eq!(ids(&s, "2001:db8:1:3::1"), ["A"]);
    }

    #[test]
    fn same_range_twice_in_one_site_is_one_match() {
        let s = compile_json(site_doc(
            "A",
            json!(["192.0.2.0/24", "192.0.2.0/24", "192.0.2.7"]),
        ));
        assert_eq!(s.range_count(), 3);
        assert_eq!(s.sites_for(ip("192.0.2.7")), &[0]);
    }

    #[test]
    fn adjacent_ranges() {
        let s = compile_json(json!({"sites": [
            {"id": "A", "ranges": ["192.0.2.0/25", "2001:db8::/127"]},
            {"id": "B", "ranges": ["192.0.2.128/25", "2001:db8::2/127"]}
        ]}));
        assert!(ids(&s, "192.0.1.255").is_empty());
        assert_eq!(ids(&s, "192.0.2.0"), ["A"]);
        assert_eq!(ids(&s, "192.0.2.127"), ["A"]);
        assert_eq!(ids(&s, "192.0.2.128"), ["B"]);
        assert_eq!(ids(&s, "192.0.2.255"), ["B"]);
        assert!(ids(&s, "192.0.3.0").is_empty());
        assert_eq!(ids(&s, "2001:db8::1"), ["A"]);
        assert_eq!(ids(&s, "2001:db8::2"), ["B"]);
        assert_eq!(ids(&s, "2001:db8::3"), ["B"]);
        assert!(ids(&s, "2001:db8::4").is_empty());
    }

    #[test]
    fn single_address_edges() {
        let s = compile_json(site_doc("A", json!(["198.51.100.7", "2001:db8::7"])));
        assert!(ids(&s, "198.51.100.6").is_empty());
        assert_eq!(ids(&s, "198.51.100.7"), ["A"]);
        assert!(ids(&s, "198.51.100.8").is_empty());
        assert!(ids(&s, "2001:db8::6").is_empty());
        assert_eq!(ids(&s, "2001:db8::7"), ["A"]);
        assert!(ids(&s, "2001:db8::8").is_empty());
        // Families never mix.
        assert!(ids(&s, "::c633:6407").is_empty());
    }

    #[test]
    fn extremes_of_the_address_space() {
        let opts = CompileOptions {
            max_prefix_v4: 0,
            max_prefix_v6: 0,
        };
        let doc = json!({"sites": [
            {"id": "LOW", "ranges": ["0.0.0.0", "::"]},
            {"id": "HIGH", "ranges": ["255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]},
            {"id": "TOP16", "ranges": ["255.255.0.0/16", "ffff:ffff::/32"]},
            {"id": "ALL", "ranges": ["0.0.0.0/0"]}
        ]});
        let s = compile_bytes(doc.to_string().as_bytes(), &opts).expect("valid");
        assert!(s.quarantined().is_empty(), "{:?}", s.quarantined());
        assert_eq!(ids(&s, "0.0.0.0"), ["LOW", "ALL"]);
        assert_eq!(ids(&s, "0.0.0.1"), ["ALL"]);
        assert_eq!(ids(&s, "255.255.255.255"), ["HIGH", "TOP16", "ALL"]);
        assert_eq!(ids(&s, "255.255.255.254"), ["TOP16", "ALL"]);
        assert_eq!(ids(&s, "255.254.255.255"), ["ALL"]);
        assert_eq!(ids(&s, "::"), ["LOW"]);
        assert!(ids(&s, "::1").is_empty());
        assert_eq!(
            ids(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["HIGH", "TOP16"]
        );
        assert_eq!(
            ids(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
            ["TOP16"]
        );
        assert!(ids(&s, "ffff:fffe:ffff:ffff:ffff:ffff:ffff:ffff").is_empty());
    }

    #[test]
    fn v4_and_v6_are_separate_tables() {
        let s = compile_json(site_doc("A", json!(["192.0.2.0/24"])));
        // ::c000:200 is the IPv4-compatible form of 192.0.2.0: not unmapped.
        assert!(ids(&s, "::c000:200").is_empty());
        assert!(ids(&s, "64:ff9b::c000:200").is_empty());
    }

    // ---- no panics, whatever the input ---------------------------------------

    mod robustness {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "[0-9a-fA-F:./% TZ+-]{0,24}".prop_map(Value::from),
                Just(json!("192.0.2.0/24")),
                Just(json!("2026-12-01T08:00:00+01:00")),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                let key = prop_oneof![
                    Just("id".to_string()),
                    Just("name".to_string()),
                    Just("ranges".to_string()),
                    Just("exceptions".to_string()),
                    Just("range".to_string()),
                    Just("not_before".to_string()),
                    Just("not_after".to_string()),
                    "[a-z]{1,6}",
                ];
                prop_oneof![
                    vec(inner.clone(), 0..8).prop_map(Value::Array),
                    btree_map(key, inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
                if let Ok(s) = compile_bytes(&bytes, &CompileOptions::default()) {
                    prop_assert!(s.range_count() <= bytes.len());
                }
            }

            #[test]
            fn arbitrary_sites_never_panic(sites in vec(arb_json(), 0..6)) {
                let doc = json!({"sites": sites}).to_string();
                let s = compile_bytes(doc.as_bytes(), &CompileOptions::default())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                // Whatever was accepted obeys the rules.
                for (net, site) in s.ranges() {
                    prop_assert_eq!(net, net.trunc());
                    prop_assert!(s.site(site).is_some());
                    prop_assert!(s.sites_for(net.network()).contains(&site));
                }
                for q in s.quarantined() {
                    prop_assert!(q.value.chars().count() <= 100);
                }
            }

            #[test]
            fn range_like_strings_never_panic(text in "[0-9a-fA-F:./%\\[\\] ]{0,45}") {
                let doc = json!({"sites": [{"id": "A", "ranges": [text], "exceptions": [
                    {"range": text, "not_before": "2026-12-01T08:00:00Z", "not_after": "2026-12-02T08:00:00Z"}
                ]}]}).to_string();
                let s = compile_bytes(doc.as_bytes(), &CompileOptions::default())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(s.range_count() + s.quarantined().len(), 2 - s.exception_count());
                for (net, _) in s.ranges() {
                    prop_assert_eq!(net, net.trunc());
                    match net {
                        IpNet::V4(n) => prop_assert!(n.prefix_len() >= 16),
                        IpNet::V6(n) => {
                            prop_assert!(n.prefix_len() >= 32);
                            prop_assert!(n.network().to_ipv4_mapped().is_none());
                        }
                    }
                }
            }

            #[test]
            fn arbitrary_unicode_ranges_never_panic(text in "\\PC{0,40}") {
                let doc = json!({"sites": [{"id": "A", "ranges": [text]}]}).to_string();
                let s = compile_bytes(doc.as_bytes(), &CompileOptions::default())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(s.range_count() + s.quarantined().len(), 1);
            }
        }
    }
}
