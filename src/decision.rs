//! The decision: a pure function of (client-IP result, route, snapshot, time, mode).
//!
//! This is DESIGN.md's "Decisions" table in code. No IO, no Pingora types: the proxy, the
//! `explain` command and the benchmarks all call [`decide`] and nothing else decides.

use crate::allowlist::{SiteIdx, Snapshot};
use crate::client_ip::{Resolved, TrustedProxies, Unresolvable};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

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

/// Everything [`decide`] looks at.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub client: Result<&'a Resolved, &'a Unresolvable>,
    pub route: RouteAction,
    /// `None` until a valid allowlist was ever loaded.
    pub snapshot: Option<&'a Snapshot>,
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

/// Whether the client address is a registered location (or has a valid exception).
pub fn check_location(
    client: Result<&Resolved, &Unresolvable>,
    snapshot: &Snapshot,
    trusted: &TrustedProxies,
    at: OffsetDateTime,
) -> LocationCheck {
    let fail = |reason| LocationCheck {
        pass: false,
        reason,
        site: None,
    };
    let Ok(resolved) = client else {
        return fail(Reason::UnresolvableClientIp);
    };
    let ip = resolved.ip.addr();
    // A proxy of ours is never a school, whatever the allowlist says.
    if trusted.contains(ip) {
        return fail(Reason::NotRegistered);
    }
    if let Some(&site) = snapshot.sites_for(ip).first() {
        return LocationCheck {
            pass: true,
            reason: Reason::Registered,
            site: Some(site),
        };
    }
    if let Some(exception) = snapshot.exceptions_for(ip, at).next() {
        return LocationCheck {
            pass: true,
            reason: Reason::Exception,
            site: Some(exception.site),
        };
    }
    fail(Reason::NotRegistered)
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
    let check = check_location(input.client, snapshot, input.trusted, input.at);
    if check.pass {
        allow(check.reason, false, check.site)
    } else {
        fail(check.reason)
    }
}

#[cfg(test)]
mod tests;
