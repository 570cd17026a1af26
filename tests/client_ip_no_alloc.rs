//! Checks that `client_ip::resolve` allocates nothing, in both header modes, on valid,
//! malformed and long input: it runs per request on the hot path.
//!
//! A counting global allocator (this test binary only) counts allocations made by the current
//! thread, so other tests running in parallel cannot disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ipnet::IpNet;
use poortwachter::client_ip::{resolve, HeaderMode, PeerAddr, TrustedProxies};

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
