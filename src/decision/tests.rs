//! The decision table, cell by cell.

use super::*;
use crate::allowlist::{compile, CompileOptions, Snapshot};
use crate::client_ip::{resolve, HeaderMode, PeerAddr, TrustedProxies};
use std::net::IpAddr;
use time::macros::datetime;

const DOC: &str = r#"{"version": "t", "sites": [
  {"id": "A", "ranges": ["192.0.2.0/28", "2001:db8:a::/48", "10.1.0.0/16"],
   "exceptions": [{"range": "203.0.113.9", "not_before": "2026-12-01T08:00:00+01:00",
                   "not_after": "2026-12-05T17:00:00+01:00"}]},
  {"id": "B", "ranges": ["192.0.2.8/29"]}
]}"#;

fn snapshot() -> Snapshot {
    compile(DOC.as_bytes(), &CompileOptions::default()).expect("valid document")
}

fn trusted() -> TrustedProxies {
    TrustedProxies::new(["10.0.0.0/8".parse().unwrap()])
}

const NOW: OffsetDateTime = datetime!(2026-11-28 10:00 UTC);

/// Decide for a request whose TCP peer is `peer` and that carries no forwarding header.
fn run(
    peer: &str,
    route: RouteAction,
    snap: Option<&Snapshot>,
    mode: Mode,
    at: OffsetDateTime,
) -> Decision {
    let t = trusted();
    let ip: IpAddr = peer.parse().unwrap();
    let client = resolve(
        PeerAddr(Some(ip)),
        std::iter::empty(),
        HeaderMode::XForwardedFor,
        &t,
    );
    decide(Input {
        client: client.as_ref(),
        route,
        binding: Binding::AnySite,
        snapshot: snap,
        overrides: None,
        trusted: &t,
        at,
        mode,
        enforce_from: None,
    })
}

fn unresolvable(mode: Mode, snap: Option<&Snapshot>) -> Decision {
    let t = trusted();
    let client = resolve(
        PeerAddr(None),
        std::iter::empty(),
        HeaderMode::XForwardedFor,
        &t,
    );
    decide(Input {
        client: client.as_ref(),
        route: RouteAction::Enforce,
        binding: Binding::AnySite,
        snapshot: snap,
        overrides: None,
        trusted: &t,
        at: NOW,
        mode,
        enforce_from: None,
    })
}

fn d(verdict: Verdict, reason: Reason, would_block: bool) -> (Verdict, Reason, bool) {
    (verdict, reason, would_block)
}

fn key(x: Decision) -> (Verdict, Reason, bool) {
    (x.verdict, x.reason, x.would_block)
}

use Mode::*;
use Reason::*;
use RouteAction as R;
use Verdict::*;

#[test]
fn registered_address_is_allowed_in_every_mode() {
    let s = snapshot();
    assert_eq!(
        key(run("192.0.2.1", R::Enforce, Some(&s), Enforce, NOW)),
        d(Allow, Registered, false)
    );
    assert_eq!(
        key(run("192.0.2.1", R::Enforce, Some(&s), ReportOnly, NOW)),
        d(Allow, Registered, false)
    );
    assert_eq!(
        key(run("192.0.2.1", R::Enforce, Some(&s), Off, NOW)),
        d(Allow, ModeOff, false)
    );
    assert_eq!(
        key(run(
            "2001:db8:a:ffff::1",
            R::Enforce,
            Some(&s),
            Enforce,
            NOW
        )),
        d(Allow, Registered, false)
    );
}

#[test]
fn the_matching_site_is_reported() {
    let s = snapshot();
    let x = run("192.0.2.1", R::Enforce, Some(&s), Enforce, NOW);
    assert_eq!(s.sites()[x.site.unwrap() as usize].id, "A");
    // 192.0.2.9 is in both A's /28 and B's /29: the first matching site is named.
    let x = run("192.0.2.9", R::Enforce, Some(&s), Enforce, NOW);
    assert!(x.site.is_some());
    assert_eq!(x.reason, Registered);
}

#[test]
fn unregistered_address_by_mode() {
    let s = snapshot();
    let e = run("203.0.113.50", R::Enforce, Some(&s), Enforce, NOW);
    assert_eq!(key(e), d(Block, NotRegistered, false));
    assert_eq!(e.block_status(), 403);
    assert_eq!(
        key(run("203.0.113.50", R::Enforce, Some(&s), ReportOnly, NOW)),
        d(Allow, NotRegistered, true)
    );
    assert_eq!(
        key(run("203.0.113.50", R::Enforce, Some(&s), Off, NOW)),
        d(Allow, ModeOff, false)
    );
}

#[test]
fn unresolvable_client_fails_closed() {
    let s = snapshot();
    assert_eq!(
        key(unresolvable(Enforce, Some(&s))),
        d(Block, UnresolvableClientIp, false)
    );
    assert_eq!(
        key(unresolvable(ReportOnly, Some(&s))),
        d(Allow, UnresolvableClientIp, true)
    );
    assert_eq!(key(unresolvable(Off, Some(&s))), d(Allow, ModeOff, false));
}

#[test]
fn no_allowlist_is_never_an_allow_under_enforcement() {
    let e = run("192.0.2.1", R::Enforce, None, Enforce, NOW);
    assert_eq!(key(e), d(Block, NoAllowlist, false));
    assert_eq!(e.block_status(), 503);
    assert_eq!(
        key(run("192.0.2.1", R::Enforce, None, ReportOnly, NOW)),
        d(Allow, NoAllowlist, true)
    );
    assert_eq!(
        key(run("192.0.2.1", R::Enforce, None, Off, NOW)),
        d(Allow, ModeOff, false)
    );
}

#[test]
fn bypass_route_allows_in_every_mode() {
    let s = snapshot();
    for mode in [Enforce, ReportOnly, Off] {
        assert_eq!(
            key(run("203.0.113.50", R::Bypass, Some(&s), mode, NOW)),
            d(Bypass, BypassRoute, false)
        );
        assert_eq!(
            key(run("203.0.113.50", R::Bypass, None, mode, NOW)),
            d(Bypass, BypassRoute, false)
        );
        assert_eq!(
            key(unresolvable_route(mode, R::Bypass)),
            d(Bypass, BypassRoute, false)
        );
    }
}

fn unresolvable_route(mode: Mode, route: RouteAction) -> Decision {
    let t = trusted();
    let client = resolve(
        PeerAddr(None),
        std::iter::empty(),
        HeaderMode::XForwardedFor,
        &t,
    );
    let s = snapshot();
    decide(Input {
        client: client.as_ref(),
        route,
        binding: Binding::AnySite,
        snapshot: Some(&s),
        overrides: None,
        trusted: &t,
        at: NOW,
        mode,
        enforce_from: None,
    })
}

#[test]
fn block_route_by_mode() {
    let s = snapshot();
    // Even a registered address is refused on a blocked route.
    assert_eq!(
        key(run("192.0.2.1", R::Block, Some(&s), Enforce, NOW)),
        d(Block, RouteBlocked, false)
    );
    assert_eq!(
        key(run("192.0.2.1", R::Block, Some(&s), ReportOnly, NOW)),
        d(Allow, RouteBlocked, true)
    );
    assert_eq!(
        key(run("192.0.2.1", R::Block, Some(&s), Off, NOW)),
        d(Allow, ModeOff, false)
    );
    assert_eq!(
        key(run("192.0.2.1", R::Block, None, Enforce, NOW)),
        d(Block, RouteBlocked, false)
    );
}

#[test]
fn trusted_proxy_is_never_a_registered_location() {
    let s = snapshot();
    // 10.1.0.0/16 is allowlisted for A but inside the trusted 10.0.0.0/8.
    assert_eq!(
        key(run("10.1.2.3", R::Enforce, Some(&s), Enforce, NOW)),
        d(Block, NotRegistered, false)
    );
}

#[test]
fn exception_window_is_half_open() {
    let s = snapshot();
    let at = |t| key(run("203.0.113.9", R::Enforce, Some(&s), Enforce, t));
    assert_eq!(
        at(datetime!(2026-12-01 06:59:59 UTC)),
        d(Block, NotRegistered, false)
    );
    assert_eq!(
        at(datetime!(2026-12-01 07:00:00 UTC)),
        d(Allow, Exception, false)
    );
    assert_eq!(
        at(datetime!(2026-12-05 15:59:59 UTC)),
        d(Allow, Exception, false)
    );
    assert_eq!(
        at(datetime!(2026-12-05 16:00:00 UTC)),
        d(Block, NotRegistered, false)
    );
    let x = run(
        "203.0.113.9",
        R::Enforce,
        Some(&s),
        Enforce,
        datetime!(2026-12-02 12:00 UTC),
    );
    assert_eq!(s.sites()[x.site.unwrap() as usize].id, "A");
}

#[test]
fn ipv4_mapped_peer_is_its_ipv4_address() {
    let s = snapshot();
    assert_eq!(
        key(run("::ffff:192.0.2.1", R::Enforce, Some(&s), Enforce, NOW)),
        d(Allow, Registered, false)
    );
    assert_eq!(
        key(run("::ffff:10.1.2.3", R::Enforce, Some(&s), Enforce, NOW)),
        d(Block, NotRegistered, false)
    );
}

#[test]
fn empty_allowlist_blocks_everyone() {
    let s = Snapshot::empty();
    assert_eq!(
        key(run("192.0.2.1", R::Enforce, Some(&s), Enforce, NOW)),
        d(Block, NotRegistered, false)
    );
}

#[test]
fn enforce_from_means_report_only_before_and_enforce_from_that_moment() {
    let s = snapshot();
    let t = trusted();
    let from = datetime!(2027-01-11 00:00 +01:00);
    let at = |when: OffsetDateTime, mode: Mode| {
        let client = resolve(
            PeerAddr(Some("203.0.113.50".parse().unwrap())),
            std::iter::empty(),
            HeaderMode::XForwardedFor,
            &t,
        );
        key(decide(Input {
            client: client.as_ref(),
            route: R::Enforce,
            binding: Binding::AnySite,
            snapshot: Some(&s),
            overrides: None,
            trusted: &t,
            at: when,
            mode,
            enforce_from: Some(from),
        }))
    };
    assert_eq!(
        at(datetime!(2027-01-10 22:59:59 UTC), Enforce),
        d(Allow, NotRegistered, true)
    );
    assert_eq!(
        at(datetime!(2027-01-10 23:00:00 UTC), Enforce),
        d(Block, NotRegistered, false)
    );
    assert_eq!(
        at(datetime!(2027-02-01 08:00 UTC), Enforce),
        d(Block, NotRegistered, false)
    );
    // Only enforce is staged: report-only and off stay what they are.
    assert_eq!(
        at(datetime!(2027-02-01 08:00 UTC), ReportOnly),
        d(Allow, NotRegistered, true)
    );
    assert_eq!(
        at(datetime!(2027-02-01 08:00 UTC), Off),
        d(Allow, ModeOff, false)
    );
    assert_eq!(effective_mode(Enforce, None, NOW), Enforce);
}

#[test]
fn reasons_have_their_contract_names() {
    let names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "registered",
            "exception",
            "override_allow",
            "override_deny",
            "not_registered",
            "other_site",
            "claim_missing",
            "claim_invalid",
            "claim_expired",
            "unresolvable_client_ip",
            "bypass_route",
            "route_blocked",
            "no_allowlist",
            "mode_off"
        ]
    );
    assert_eq!("report-only".parse::<Mode>(), Ok(Mode::ReportOnly));
    assert!("Enforce".parse::<Mode>().is_err());
}

// ---- own-school binding and overrides ----

/// Overrides: an allow for site A, an allow without a site, a deny inside A's /28, and a
/// deny that has expired.
const OVERRIDES: &str = r#"{"entries": [
  {"action": "allow", "range": "198.51.100.64/29", "site": "A", "reason": "new line",
   "expires": "2026-12-02T17:00:00+01:00"},
  {"action": "allow", "range": "198.51.100.128/29", "reason": "unknown school",
   "expires": "2026-12-02T17:00:00+01:00"},
  {"action": "deny", "range": "192.0.2.4/30", "reason": "reported misuse",
   "expires": "2026-12-02T17:00:00+01:00"},
  {"action": "deny", "range": "192.0.2.12/30", "reason": "old",
   "expires": "2026-11-28T11:00:00+01:00"}
]}"#;

fn overrides() -> Overrides {
    use crate::allowlist::overrides::{compile_overrides, OverrideOptions};
    compile_overrides(
        OVERRIDES.as_bytes(),
        &OverrideOptions::default(),
        datetime!(2026-11-28 08:00 UTC),
    )
    .expect("valid overrides")
}

/// Decide in enforce mode with a claim, the route's `missing` and the overrides.
fn bound(peer: &str, claim: SiteClaim<'_>, any_site: bool, at: OffsetDateTime) -> Decision {
    with_overrides(peer, R::Enforce, Binding::of(claim, any_site), Enforce, at)
}

/// Decide with the overrides for a peer that sends no forwarding header.
fn with_overrides(
    peer: &str,
    route: RouteAction,
    binding: Binding<'_>,
    mode: Mode,
    at: OffsetDateTime,
) -> Decision {
    let s = snapshot();
    let o = overrides();
    let t = trusted();
    let client = resolve(
        PeerAddr(Some(peer.parse().unwrap())),
        std::iter::empty(),
        HeaderMode::XForwardedFor,
        &t,
    );
    decide(Input {
        client: client.as_ref(),
        route,
        binding,
        snapshot: Some(&s),
        overrides: Some(&o),
        trusted: &t,
        at,
        mode,
        enforce_from: None,
    })
}

#[test]
fn binding_follows_the_claim_and_the_missing_policy() {
    use SiteClaim as C;
    assert_eq!(Binding::of(C::Unbound, false), Binding::AnySite);
    assert_eq!(Binding::of(C::Valid("A"), false), Binding::Site("A"));
    assert_eq!(Binding::of(C::Valid("A"), true), Binding::Site("A"));
    assert_eq!(
        Binding::of(C::Missing, false),
        Binding::Refused(ClaimMissing)
    );
    assert_eq!(
        Binding::of(C::Expired, false),
        Binding::Refused(ClaimExpired)
    );
    assert_eq!(
        Binding::of(C::Invalid, false),
        Binding::Refused(ClaimInvalid)
    );
    for c in [C::Missing, C::Expired, C::Invalid] {
        assert_eq!(Binding::of(c, true), Binding::AnySite);
    }
}

#[test]
fn own_school_is_allowed_and_another_school_is_not() {
    // 192.0.2.1 is A's only; 192.0.2.9 is in A's /28 and B's /29.
    let x = bound("192.0.2.1", SiteClaim::Valid("A"), false, NOW);
    assert_eq!(key(x), d(Allow, Registered, false));
    assert_eq!(snapshot().sites()[x.site.unwrap() as usize].id, "A");
    assert_eq!(
        key(bound("192.0.2.1", SiteClaim::Valid("B"), false, NOW)),
        d(Block, OtherSite, false)
    );
    let x = bound("192.0.2.9", SiteClaim::Valid("B"), false, NOW);
    assert_eq!(key(x), d(Allow, Registered, false));
    assert_eq!(snapshot().sites()[x.site.unwrap() as usize].id, "B");
    // A site the allowlist does not know is never at home anywhere.
    assert_eq!(
        key(bound("192.0.2.1", SiteClaim::Valid("ZZ"), false, NOW)),
        d(Block, OtherSite, false)
    );
    assert_eq!(
        key(bound("203.0.113.50", SiteClaim::Valid("A"), false, NOW)),
        d(Block, NotRegistered, false)
    );
}

#[test]
fn an_exception_counts_for_its_own_site_only() {
    let during = datetime!(2026-12-02 12:00 UTC);
    assert_eq!(
        key(bound("203.0.113.9", SiteClaim::Valid("A"), false, during)),
        d(Allow, Exception, false)
    );
    assert_eq!(
        key(bound("203.0.113.9", SiteClaim::Valid("B"), false, during)),
        d(Block, OtherSite, false)
    );
    assert_eq!(
        key(bound("203.0.113.9", SiteClaim::Valid("A"), false, NOW)),
        d(Block, NotRegistered, false)
    );
}

#[test]
fn claim_problems_block_a_registered_address_with_their_own_reason() {
    assert_eq!(
        key(bound("192.0.2.1", SiteClaim::Missing, false, NOW)),
        d(Block, ClaimMissing, false)
    );
    assert_eq!(
        key(bound("192.0.2.1", SiteClaim::Expired, false, NOW)),
        d(Block, ClaimExpired, false)
    );
    assert_eq!(
        key(bound("192.0.2.1", SiteClaim::Invalid, false, NOW)),
        d(Block, ClaimInvalid, false)
    );
    // From an unregistered address the address is the problem to report.
    for c in [SiteClaim::Missing, SiteClaim::Expired, SiteClaim::Invalid] {
        assert_eq!(
            key(bound("203.0.113.50", c, false, NOW)),
            d(Block, NotRegistered, false)
        );
    }
    // `missing = "any-site"`: any registered location will do without a usable claim.
    for c in [SiteClaim::Missing, SiteClaim::Expired, SiteClaim::Invalid] {
        assert_eq!(
            key(bound("192.0.2.1", c, true, NOW)),
            d(Allow, Registered, false)
        );
        assert_eq!(
            key(bound("203.0.113.50", c, true, NOW)),
            d(Block, NotRegistered, false)
        );
    }
    // A valid claim still binds on an any-site route.
    assert_eq!(
        key(bound("192.0.2.1", SiteClaim::Valid("B"), true, NOW)),
        d(Block, OtherSite, false)
    );
}

#[test]
fn claim_reasons_are_would_block_in_report_only() {
    let at = |mode, binding| key(with_overrides("192.0.2.1", R::Enforce, binding, mode, NOW));
    assert_eq!(
        at(ReportOnly, Binding::Site("B")),
        d(Allow, OtherSite, true)
    );
    assert_eq!(
        at(ReportOnly, Binding::Refused(ClaimMissing)),
        d(Allow, ClaimMissing, true)
    );
    assert_eq!(at(Off, Binding::Site("B")), d(Allow, ModeOff, false));
    assert_eq!(at(Enforce, Binding::Site("A")), d(Allow, Registered, false));
}

#[test]
fn an_allow_override_with_a_site_satisfies_that_site_only() {
    assert_eq!(
        key(bound("198.51.100.65", SiteClaim::Unbound, false, NOW)),
        d(Allow, OverrideAllow, false)
    );
    let x = bound("198.51.100.65", SiteClaim::Valid("A"), false, NOW);
    assert_eq!(key(x), d(Allow, OverrideAllow, false));
    assert_eq!(snapshot().sites()[x.site.unwrap() as usize].id, "A");
    assert_eq!(
        key(bound("198.51.100.65", SiteClaim::Valid("B"), false, NOW)),
        d(Block, OtherSite, false)
    );
}

#[test]
fn an_allow_override_without_a_site_never_satisfies_binding() {
    let x = bound("198.51.100.129", SiteClaim::Unbound, false, NOW);
    assert_eq!(key(x), d(Allow, OverrideAllow, false));
    assert_eq!(x.site, None);
    assert_eq!(
        key(bound("198.51.100.129", SiteClaim::Valid("A"), false, NOW)),
        d(Block, OtherSite, false)
    );
    assert_eq!(
        key(bound("198.51.100.129", SiteClaim::Missing, true, NOW)),
        d(Allow, OverrideAllow, false)
    );
}

#[test]
fn a_deny_override_wins_over_every_allow_but_bypass() {
    // 192.0.2.5 is registered for A, and denied.
    for claim in [
        SiteClaim::Unbound,
        SiteClaim::Valid("A"),
        SiteClaim::Missing,
    ] {
        assert_eq!(
            key(bound("192.0.2.5", claim, true, NOW)),
            d(Block, OverrideDeny, false)
        );
    }
    let with = |route, mode| {
        key(with_overrides(
            "192.0.2.5",
            route,
            Binding::AnySite,
            mode,
            NOW,
        ))
    };
    assert_eq!(with(R::Bypass, Enforce), d(Bypass, BypassRoute, false));
    assert_eq!(with(R::Enforce, ReportOnly), d(Allow, OverrideDeny, true));
    assert_eq!(with(R::Enforce, Off), d(Allow, ModeOff, false));
}

#[test]
fn overrides_stop_counting_when_they_expire() {
    // The deny on 192.0.2.12/30 expired at 10:00 UTC: A's address is registered again.
    assert_eq!(
        key(bound(
            "192.0.2.13",
            SiteClaim::Unbound,
            false,
            datetime!(2026-11-28 09:59:59 UTC)
        )),
        d(Block, OverrideDeny, false)
    );
    assert_eq!(
        key(bound(
            "192.0.2.13",
            SiteClaim::Unbound,
            false,
            datetime!(2026-11-28 10:00 UTC)
        )),
        d(Allow, Registered, false)
    );
    // The allow for A ends at 2026-12-02T16:00Z.
    assert_eq!(
        key(bound(
            "198.51.100.65",
            SiteClaim::Valid("A"),
            false,
            datetime!(2026-12-02 15:59:59 UTC)
        )),
        d(Allow, OverrideAllow, false)
    );
    assert_eq!(
        key(bound(
            "198.51.100.65",
            SiteClaim::Valid("A"),
            false,
            datetime!(2026-12-02 16:00 UTC)
        )),
        d(Block, NotRegistered, false)
    );
}

#[test]
fn a_trusted_proxy_stays_unregistered_even_with_an_override() {
    // Overrides cannot make one of our own proxies a school: checked before them.
    assert_eq!(
        key(bound("10.1.2.3", SiteClaim::Valid("A"), false, NOW)),
        d(Block, NotRegistered, false)
    );
}
