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
        snapshot: snap,
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
        snapshot: snap,
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
        snapshot: Some(&s),
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
            snapshot: Some(&s),
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
