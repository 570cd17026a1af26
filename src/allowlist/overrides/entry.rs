//! One override entry: its compiled form and the judging of one element of
//! `entries`. An entry with any bad field is skipped whole and recorded as an
//! [`OverrideProblem`] naming its first problem: a half-understood emergency
//! rule must not change who may start a test.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::super::document::json_kind;
use super::super::range::{parse_range, RangeProblem};
use super::options::OverrideOptions;
use super::problem::{OverrideProblem, OverrideProblemKind};

/// Path under which unknown entry fields are counted.
pub(super) const UNKNOWN_PREFIX: &str = "entries[].";

/// What an override does to the addresses in its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideAction {
    /// The range counts as a registered location (of `site`, when given).
    Allow,
    /// The range is refused, whatever the allowlist says.
    Deny,
}

impl OverrideAction {
    /// The spelling in the file and in `/status`: `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideAction::Allow => "allow",
            OverrideAction::Deny => "deny",
        }
    }
}

/// An accepted override entry. It applies to addresses in `range` while the
/// moment of the decision is before `expires` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideEntry {
    /// Position in the file's `entries` array, for `/status` and logs.
    pub index: usize,
    pub action: OverrideAction,
    /// Canonical: an IPv4-mapped IPv6 range is stored as the IPv4 range.
    pub range: IpNet,
    /// For an allow: the site the range counts for (without it the range is
    /// only "some registered location" and never satisfies own-school
    /// binding). For a deny: informational only.
    pub site: Option<String>,
    pub reason: String,
    /// End of validity, exclusive, with the offset the file gave it.
    pub expires: OffsetDateTime,
}

impl OverrideEntry {
    /// Is the entry still in force at `at` (`at < expires`)?
    #[inline]
    pub fn is_active_at(&self, at: OffsetDateTime) -> bool {
        at < self.expires
    }

    /// Does `range` contain `ip`? `ip` must already be canonical (IPv4-mapped
    /// IPv6 unmapped), as [`Overrides`](super::Overrides) lookups make it.
    #[inline]
    pub(super) fn covers(&self, ip: IpAddr) -> bool {
        self.range.contains(&ip)
    }
}

/// What judging an entry needs besides the entry.
pub(super) struct Rules<'a> {
    pub opts: &'a OverrideOptions,
    /// The load moment: the expiry cap is measured from here.
    pub now: OffsetDateTime,
}

/// Judge one element of `entries` (at position `index`), counting its
/// unknown fields into `unknown` even when the entry itself is refused.
pub(super) fn parse_entry(
    value: &Value,
    index: usize,
    rules: &Rules<'_>,
    unknown: &mut BTreeMap<String, u64>,
) -> Result<OverrideEntry, OverrideProblem> {
    let Value::Object(obj) = value else {
        return Err(OverrideProblem::new(
            OverrideProblemKind::EntryNotObject,
            index,
            "",
            value,
            format!("entry is not an object (found {})", json_kind(value)),
        ));
    };
    count_unknown(obj, unknown);
    let entry = Fields {
        obj,
        whole: value,
        index,
    };
    Ok(OverrideEntry {
        index,
        action: entry.action()?,
        range: entry.range(rules)?,
        site: entry.site()?,
        reason: entry.reason()?,
        expires: entry.expires(rules)?,
    })
}

fn count_unknown(obj: &Map<String, Value>, unknown: &mut BTreeMap<String, u64>) {
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "action" | "range" | "site" | "reason" | "expires"
        ) {
            *unknown.entry(format!("{UNKNOWN_PREFIX}{key}")).or_insert(0) += 1;
        }
    }
}

/// One entry object being judged, field by field.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    /// The whole entry, shown when a required field is missing so the
    /// operator can recognise which entry it is.
    whole: &'a Value,
    index: usize,
}

impl<'a> Fields<'a> {
    fn problem(
        &self,
        kind: OverrideProblemKind,
        field: &str,
        shown: &Value,
        problem: impl Into<String>,
    ) -> OverrideProblem {
        OverrideProblem::new(kind, self.index, field, shown, problem)
    }

    /// A required string field and the JSON value it came from. `null`
    /// reads as absent, like everywhere in the allowlist.
    fn required_str(&self, name: &str) -> Result<(&'a Value, &'a str), OverrideProblem> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Err(self.problem(
                OverrideProblemKind::MissingField,
                name,
                self.whole,
                format!("`{name}` is missing"),
            )),
            Some(v @ Value::String(text)) => Ok((v, text.as_str())),
            Some(v) => Err(self.wrong_type(name, v)),
        }
    }

    fn wrong_type(&self, name: &str, v: &Value) -> OverrideProblem {
        self.problem(
            OverrideProblemKind::WrongType,
            name,
            v,
            format!("`{name}` is not a string (found {})", json_kind(v)),
        )
    }

    fn action(&self) -> Result<OverrideAction, OverrideProblem> {
        let (shown, text) = self.required_str("action")?;
        match text {
            "allow" => Ok(OverrideAction::Allow),
            "deny" => Ok(OverrideAction::Deny),
            _ => Err(self.problem(
                OverrideProblemKind::UnknownAction,
                "action",
                shown,
                "unknown action (expected \"allow\" or \"deny\")",
            )),
        }
    }

    /// The allowlist's range rules, `max_prefix` included, for both actions.
    fn range(&self, rules: &Rules<'_>) -> Result<IpNet, OverrideProblem> {
        let (shown, text) = self.required_str("range")?;
        parse_range(text, &rules.opts.compile)
            .map_err(|p| self.problem(range_kind(&p), "range", shown, p.message()))
    }

    fn site(&self) -> Result<Option<String>, OverrideProblem> {
        match self.obj.get("site") {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::String(site)) => match site_problem(site) {
                None => Ok(Some(site.clone())),
                Some(problem) => {
                    Err(self.problem(OverrideProblemKind::BadSite, "site", v, problem))
                }
            },
            Some(v) => Err(self.wrong_type("site", v)),
        }
    }

    fn reason(&self) -> Result<String, OverrideProblem> {
        let (shown, text) = self.required_str("reason")?;
        if text.trim().is_empty() {
            return Err(self.problem(
                OverrideProblemKind::EmptyReason,
                "reason",
                shown,
                "`reason` is empty: say why this override exists",
            ));
        }
        Ok(text.to_string())
    }

    /// Required RFC 3339 time with an explicit offset, at most
    /// `max_days` after the load moment. A time already past is accepted:
    /// the entry is kept and simply never active.
    fn expires(&self, rules: &Rules<'_>) -> Result<OffsetDateTime, OverrideProblem> {
        let (shown, text) = self.required_str("expires")?;
        let expires = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            self.problem(
                OverrideProblemKind::BadTime,
                "expires",
                shown,
                "not an RFC 3339 time with offset (e.g. 2026-12-02T17:00:00+01:00)",
            )
        })?;
        let max_days = rules.opts.max_days;
        // Whole days as a Duration: u32::MAX days is ~3.7e14 s, far inside
        // i64, and subtracting two OffsetDateTimes cannot overflow either.
        if expires - rules.now > Duration::days(i64::from(max_days)) {
            let loaded = rules
                .now
                .format(&Rfc3339)
                .unwrap_or_else(|_| rules.now.to_string());
            return Err(self.problem(
                OverrideProblemKind::ExpiryTooFar,
                "expires",
                shown,
                format!(
                    "more than {max_days} days after the file was loaded ({loaded}); \
                     overrides are capped by [allowlist] max_override_days"
                ),
            ));
        }
        Ok(expires)
    }
}

/// The allowlist's range problems, as override problem kinds. Exhaustive on
/// purpose: a new range problem must be placed here too.
fn range_kind(p: &RangeProblem) -> OverrideProblemKind {
    match p {
        RangeProblem::Empty
        | RangeProblem::Whitespace
        | RangeProblem::ZoneId
        | RangeProblem::BadAddress
        | RangeProblem::BadPrefix { .. } => OverrideProblemKind::MalformedRange,
        RangeProblem::HostBits { .. } => OverrideProblemKind::HostBitsSet,
        RangeProblem::TooBroad { .. } => OverrideProblemKind::PrefixTooBroad,
        RangeProblem::MappedSpace => OverrideProblemKind::MappedSpace,
    }
}

/// Why `site` could never name an allowlist site, if it could not: the allowlist's own
/// site-id rules, so that a stray space or a typo'd character is caught here instead of
/// silently never matching.
fn site_problem(site: &str) -> Option<String> {
    use crate::allowlist::compile::{site_id_problem, SiteIdProblem, MAX_SITE_ID_LEN};
    site_id_problem(site).map(|p| match p {
        SiteIdProblem::Empty => {
            "`site` is empty (leave it out for \"any registered location\")".to_string()
        }
        SiteIdProblem::TooLong => format!("`site` is longer than {MAX_SITE_ID_LEN} characters"),
        SiteIdProblem::BadCharacters => {
            "`site` has characters outside A-Z, a-z, 0-9, `_` and `-`".to_string()
        }
    })
}
