//! The decision: a pure function of (client-IP result, route, site claim, snapshot,
//! overrides, time, mode).
//!
//! This is DESIGN.md's "Decisions" table in code. No IO, no Pingora types: the proxy, the
//! `explain` command and the benchmarks all call [`decide`] and nothing else decides.

use crate::allowlist::overrides::Overrides;
use crate::allowlist::{SiteIdx, Snapshot};
use crate::client_ip::{Resolved, TrustedProxies, Unresolvable};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

mod config;

pub use config::{PolicyConfig, PolicyFile};

/// Enforcement mode (`[policy] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    ReportOnly,
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::ReportOnly => "report-only",
            Mode::Off => "off",
        }
    }
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "report-only" => Ok(Mode::ReportOnly),
            "off" => Ok(Mode::Off),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a matched route asks for. Without routes every request is `Enforce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAction {
    Enforce,
    Bypass,
    Block,
}

impl RouteAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteAction::Enforce => "enforce",
            RouteAction::Bypass => "bypass",
            RouteAction::Block => "block",
        }
    }
}

/// The fixed set of reasons. Metrics labels and log fields use [`Reason::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Registered,
    Exception,
    OverrideAllow,
    OverrideDeny,
    NotRegistered,
    OtherSite,
    ClaimMissing,
    ClaimInvalid,
    ClaimExpired,
    UnresolvableClientIp,
    BypassRoute,
    RouteBlocked,
    NoAllowlist,
    ModeOff,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::Registered,
        Reason::Exception,
        Reason::OverrideAllow,
        Reason::OverrideDeny,
        Reason::NotRegistered,
        Reason::OtherSite,
        Reason::ClaimMissing,
        Reason::ClaimInvalid,
        Reason::ClaimExpired,
        Reason::UnresolvableClientIp,
        Reason::BypassRoute,
        Reason::RouteBlocked,
        Reason::NoAllowlist,
        Reason::ModeOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Registered => "registered",
            Reason::Exception => "exception",
            Reason::OverrideAllow => "override_allow",
            Reason::OverrideDeny => "override_deny",
            Reason::NotRegistered => "not_registered",
            Reason::OtherSite => "other_site",
            Reason::ClaimMissing => "claim_missing",
            Reason::ClaimInvalid => "claim_invalid",
            Reason::ClaimExpired => "claim_expired",
            Reason::UnresolvableClientIp => "unresolvable_client_ip",
            Reason::BypassRoute => "bypass_route",
            Reason::RouteBlocked => "route_blocked",
            Reason::NoAllowlist => "no_allowlist",
            Reason::ModeOff => "mode_off",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome shown in logs, metrics and `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block,
    Bypass,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Bypass => "bypass",
        }
    }
}

/// One decision. `Copy`, so the proxy keeps it in its per-request context without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// Report-only (or `enforce_from` not reached): the request was let through but enforcement
    /// would have blocked it.
    pub would_block: bool,
    /// The site that made the location check pass, if any (first match).
    pub site: Option<SiteIdx>,
}

impl Decision {
    /// The status the gate answers with itself for a block.
    pub fn block_status(&self) -> u16 {
        match self.reason {
            Reason::NoAllowlist => 503,
            _ => 403,
        }
    }
}

/// What the site binding found in the request, already verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteClaim<'a> {
    /// Site binding is not configured: any registered location will do.
    Unbound,
    /// Site binding is on and the request carries no claim.
    Missing,
    /// A verified claim for this site id.
    Valid(&'a str),
    /// A well-formed, correctly signed claim whose `exp` (plus leeway) has passed.
    Expired,
    /// Anything else: malformed, wrong key or algorithm, unknown `kid`, no site claim.
    Invalid,
}

/// Whose location a request must come from, once the claim and the route are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    /// Any registered location (no site binding, or a route that lets requests without a
    /// valid claim through with `missing = "any-site"`).
    AnySite,
    /// A location of this site: its ranges, its valid exceptions, or an allow override
    /// naming it.
    Site(&'a str),
    /// The claim itself fails; the request is refused with this reason wherever it comes from.
    Refused(Reason),
}

impl<'a> Binding<'a> {
    /// The binding for a claim. `any_site_without_claim` is the route's (or the global)
    /// `missing = "any-site"`: it lets a request without a *usable* claim through from any
    /// registered location. An expired or broken cookie on the login page is treated like
    /// no cookie there, which grants nothing that sending no cookie would not.
    pub fn of(claim: SiteClaim<'a>, any_site_without_claim: bool) -> Binding<'a> {
        match claim {
            SiteClaim::Unbound => Binding::AnySite,
            SiteClaim::Valid(site) => Binding::Site(site),
            _ if any_site_without_claim => Binding::AnySite,
            SiteClaim::Missing => Binding::Refused(Reason::ClaimMissing),
            SiteClaim::Expired => Binding::Refused(Reason::ClaimExpired),
            SiteClaim::Invalid => Binding::Refused(Reason::ClaimInvalid),
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub client: Result<&'a Resolved, &'a Unresolvable>,
    pub route: RouteAction,
    pub binding: Binding<'a>,
    /// `None` until a valid allowlist was ever loaded.
    pub snapshot: Option<&'a Snapshot>,
    /// The emergency overrides in force (`None` when none are configured).
    pub overrides: Option<&'a Overrides>,
    pub trusted: &'a TrustedProxies,
    pub at: OffsetDateTime,
    pub mode: Mode,
    /// With `Mode::Enforce`: behave as report-only before this moment.
    pub enforce_from: Option<OffsetDateTime>,
}

/// The mode in force at `at`: `enforce` only from `enforce_from` on.
pub fn effective_mode(
    mode: Mode,
    enforce_from: Option<OffsetDateTime>,
    at: OffsetDateTime,
) -> Mode {
    match (mode, enforce_from) {
        (Mode::Enforce, Some(from)) if at < from => Mode::ReportOnly,
        (m, _) => m,
    }
}

/// The result of the location check alone, before the mode is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationCheck {
    pub pass: bool,
    pub reason: Reason,
    pub site: Option<SiteIdx>,
}

/// Everything the location check looks at.
#[derive(Clone, Copy)]
pub struct Location<'a> {
    pub client: Result<&'a Resolved, &'a Unresolvable>,
    pub binding: Binding<'a>,
    pub snapshot: &'a Snapshot,
    pub overrides: Option<&'a Overrides>,
    pub trusted: &'a TrustedProxies,
    pub at: OffsetDateTime,
}

/// Whether the client address is a location the request may come from.
///
/// In order: an unresolvable address fails; one of our own proxies is never a school; a
/// deny override wins over every allow; then the address must be a location of the bound
/// site (or of any site). An address that is a location, but not of the claimed site, is
/// `other_site`; a claim that fails on its own is reported only for an address that would
/// otherwise pass, so a pupil at home sees `not_registered`, the more fundamental problem.
pub fn check_location(l: Location<'_>) -> LocationCheck {
    let fail = |reason| LocationCheck {
        pass: false,
        reason,
        site: None,
    };
    let Ok(resolved) = l.client else {
        return fail(Reason::UnresolvableClientIp);
    };
    let ip = resolved.ip.addr();
    // A proxy of ours is never a school, whatever the allowlist says.
    if l.trusted.contains(ip) {
        return fail(Reason::NotRegistered);
    }
    if let Some(overrides) = l.overrides {
        if overrides.deny_for(ip, l.at).is_some() {
            return fail(Reason::OverrideDeny);
        }
    }
    let any = location_of(&l, ip, None);
    match l.binding {
        Binding::AnySite => any.unwrap_or(fail(Reason::NotRegistered)),
        Binding::Refused(reason) => fail(if any.is_some() {
            reason
        } else {
            Reason::NotRegistered
        }),
        Binding::Site(site) => match location_of(&l, ip, Some(site)) {
            Some(pass) => pass,
            None if any.is_some() => fail(Reason::OtherSite),
            None => fail(Reason::NotRegistered),
        },
    }
}

/// The passing check for `ip` as a location of `site` (or of any site when `None`): its
/// ranges first, then a valid exception, then an allow override. An allow override without
/// a site is "some registered location" only and never a location of a particular site.
fn location_of(
    l: &Location<'_>,
    ip: std::net::IpAddr,
    site: Option<&str>,
) -> Option<LocationCheck> {
    let pass = |reason, site| {
        Some(LocationCheck {
            pass: true,
            reason,
            site,
        })
    };
    let idx = site.map(|id| l.snapshot.site_index(id));
    let wanted = |s: SiteIdx| idx.is_none_or(|want| want == Some(s));
    if let Some(&s) = l.snapshot.sites_for(ip).iter().find(|&&s| wanted(s)) {
        return pass(Reason::Registered, Some(s));
    }
    if let Some(e) = l.snapshot.exceptions_for(ip, l.at).find(|e| wanted(e.site)) {
        return pass(Reason::Exception, Some(e.site));
    }
    let overrides = l.overrides?;
    let allow = overrides
        .allows_for(ip, l.at)
        .find(|o| site.is_none() || o.site.as_deref() == site)?;
    let idx = allow
        .site
        .as_deref()
        .and_then(|id| l.snapshot.site_index(id));
    pass(Reason::OverrideAllow, idx)
}

/// DESIGN.md's decision table.
pub fn decide(input: Input<'_>) -> Decision {
    let input = Input {
        mode: effective_mode(input.mode, input.enforce_from, input.at),
        ..input
    };
    let allow = |reason, would_block, site| Decision {
        verdict: Verdict::Allow,
        reason,
        would_block,
        site,
    };
    if input.route == RouteAction::Bypass {
        return Decision {
            verdict: Verdict::Bypass,
            reason: Reason::BypassRoute,
            would_block: false,
            site: None,
        };
    }
    if input.mode == Mode::Off {
        return allow(Reason::ModeOff, false, None);
    }
    // From here on the mode is enforce or report-only: a failure blocks, or is let through
    // and marked `would_block`.
    let fail = |reason| match input.mode {
        Mode::Enforce => Decision {
            verdict: Verdict::Block,
            reason,
            would_block: false,
            site: None,
        },
        _ => allow(reason, true, None),
    };
    if input.route == RouteAction::Block {
        return fail(Reason::RouteBlocked);
    }
    let Some(snapshot) = input.snapshot else {
        return fail(Reason::NoAllowlist);
    };
    let check = check_location(Location {
        client: input.client,
        binding: input.binding,
        snapshot,
        overrides: input.overrides,
        trusted: input.trusted,
        at: input.at,
    });
    if check.pass {
        allow(check.reason, false, check.site)
    } else {
        fail(check.reason)
    }
}

#[cfg(test)]
mod tests;
