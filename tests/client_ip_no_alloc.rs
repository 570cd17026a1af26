//! Checks that the per-request decision path allocates nothing: `client_ip::resolve` in both
//! header modes on valid, malformed and long input, and then the allowlist lookup and the
//! decision on what it resolved, for registered, unregistered and unresolvable clients.
//!
//! A counting global allocator (this test binary only) counts allocations made by the current
//! thread, so other tests running in parallel cannot disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ipnet::IpNet;
#[path = "../benches/support/synth.rs"]
mod synth;
use poortwachter::allowlist::{compile, CompileOptions};
use poortwachter::client_ip::{resolve, HeaderMode, PeerAddr, TrustedProxies};
use poortwachter::decision::{decide, Binding, Input, Mode, RouteAction, Verdict};
use synth::{sample_addresses, synthetic_document, AddressKind};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// The counter itself counts: a counter that never moved would let every test here pass.
#[test]
fn the_counter_sees_an_allocation() {
    let before = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(32)));
    assert!(
        allocations() > before,
        "the counting allocator missed an allocation"
    );
}

#[test]
fn resolve_does_not_allocate() {
    let trusted = TrustedProxies::new(
        ["10.0.0.0/8", "2001:db8:ffff::/48"]
            .iter()
            .map(|s| s.parse::<IpNet>().unwrap()),
    );
    let long_xff = (0..200)
        .map(|i| format!("10.0.{}.{}", i / 200, i % 200))
        .collect::<Vec<_>>()
        .join(", ");
    let long_fwd = (0..200)
        .map(|i| format!("for=\"10.0.{}.{}:_p{i}\";proto=https", i / 200, i % 200))
        .collect::<Vec<_>>()
        .join(", ");
    let cases: Vec<(HeaderMode, Vec<&str>)> = vec![
        (HeaderMode::XForwardedFor, vec![]),
        (
            HeaderMode::XForwardedFor,
            vec!["198.51.100.10, 203.0.113.50"],
        ),
        (
            HeaderMode::XForwardedFor,
            vec!["192.0.2.1", "[2001:db8::1]:80, 10.0.0.2"],
        ),
        (HeaderMode::XForwardedFor, vec!["garbage, 10.0.0.2"]),
        (HeaderMode::XForwardedFor, vec![&long_xff]),
        (HeaderMode::Forwarded, vec![]),
        (
            HeaderMode::Forwarded,
            vec!["for=192.0.2.43, for=198.51.100.17"],
        ),
        (
            HeaderMode::Forwarded,
            vec![r#"for="[2001:db8::7]:4711";by=x;host="a,b", for="10.0.0.\2""#],
        ),
        (
            HeaderMode::Forwarded,
            vec![r#"for="198.51.100.10, for=10.0.0.2"#],
        ),
        (HeaderMode::Forwarded, vec!["for=unknown", "for=10.0.0.2"]),
        (HeaderMode::Forwarded, vec![&long_fwd]),
    ];
    let peers = [
        PeerAddr(Some("10.0.0.1".parse().unwrap())),
        PeerAddr(Some("::ffff:10.0.0.1".parse().unwrap())),
        PeerAddr(Some("203.0.113.9".parse().unwrap())),
        PeerAddr(None),
    ];

    let before = allocations();
    let mut resolved = 0usize;
    for (mode, lines) in &cases {
        for peer in peers {
            let result = resolve(peer, lines.iter().map(|l| l.as_bytes()), *mode, &trusted);
            resolved += usize::from(result.is_ok());
        }
    }
    let after = allocations();
    assert!(resolved > 0);
    assert_eq!(
        after - before,
        0,
        "resolve allocated {} times",
        after - before
    );
}

/// Resolve, look up and decide, as a request does, over a 100k-range allowlist: registered
/// and unregistered IPv4 and IPv6 clients behind a trusted proxy, an untrusted peer, and no
/// peer at all, in every mode and with a site binding. Nothing allocates.
#[test]
fn lookup_and_decision_do_not_allocate() {
    let snapshot = compile(
        synthetic_document(100_000, 3).as_bytes(),
        &CompileOptions::default(),
    )
    .expect("the synthetic document compiles");
    let trusted = TrustedProxies::new(["10.0.0.0/8".parse::<IpNet>().unwrap()]);
    let mut headers: Vec<String> = Vec::new();
    for kind in [
        AddressKind::V4Hit,
        AddressKind::V4Miss,
        AddressKind::V6Hit,
        AddressKind::V6Miss,
    ] {
        for ip in sample_addresses(&snapshot, kind, 64, 5) {
            headers.push(format!("198.51.100.1, {ip}"));
        }
    }
    let site = snapshot
        .sites()
        .first()
        .map(|s| s.id.clone())
        .expect("a site");
    let peers = [
        PeerAddr(Some("10.0.0.1".parse().unwrap())),
        PeerAddr(Some("203.0.113.9".parse().unwrap())),
        PeerAddr(None),
    ];
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);

    let before = allocations();
    let mut verdicts = [0usize; 3];
    for header in &headers {
        for peer in peers {
            let resolved = resolve(
                peer,
                std::iter::once(header.as_bytes()),
                HeaderMode::XForwardedFor,
                &trusted,
            );
            if let Ok(r) = &resolved {
                std::hint::black_box(snapshot.sites_for(r.ip.addr()));
            }
            for mode in [Mode::Enforce, Mode::ReportOnly, Mode::Off] {
                for binding in [Binding::AnySite, Binding::Site(&site)] {
                    let d = decide(Input {
                        client: resolved.as_ref(),
                        route: RouteAction::Enforce,
                        binding,
                        snapshot: Some(&snapshot),
                        overrides: None,
                        trusted: &trusted,
                        at,
                        mode,
                        enforce_from: None,
                    });
                    verdicts[d.verdict as usize] += 1;
                }
            }
        }
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "the decision path allocated {} times",
        after - before
    );
    // Both outcomes were exercised, so the path measured is the real one.
    assert!(verdicts[Verdict::Allow as usize] > 0 && verdicts[Verdict::Block as usize] > 0);
}
