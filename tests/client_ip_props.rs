//! Property tests of client IP resolution, through the public API only.
//!
//! The walk is checked against an independent model: headers are generated from elements
//! whose meaning is known (trusted address, untrusted address, junk), rendered in the many
//! spellings the syntaxes allow, and the model walks that list with plain `Vec`s. Parsing is
//! also checked differentially against the standard library, which is strict in the same way
//! on the bare address forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use poortwachter::client_ip::{
    canonical, parse_element, parse_ip, resolve, ClientIpSource, HeaderMode, PeerAddr,
    TrustedProxies, Unresolvable,
};
use proptest::prelude::*;

fn trusted() -> TrustedProxies {
    TrustedProxies::new(
        ["10.0.0.0/8", "2001:db8:ffff::/48", "::ffff:192.168.0.0/112"]
            .iter()
            .map(|s| s.parse::<IpNet>().unwrap()),
    )
}

fn modes() -> impl Strategy<Value = HeaderMode> {
    prop_oneof![Just(HeaderMode::XForwardedFor), Just(HeaderMode::Forwarded)]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<u128>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        any::<u32>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
    ]
}

/// Addresses inside `trusted()`, sometimes spelled as IPv4-mapped IPv6.
fn trusted_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|b| IpAddr::V4(Ipv4Addr::from((b & 0x00ff_ffff) | 0x0a00_0000))),
        any::<u128>().prop_map(|b| {
            let net = u128::from("2001:db8:ffff::".parse::<Ipv6Addr>().unwrap());
            IpAddr::V6(Ipv6Addr::from(net | (b >> 48)))
        }),
        any::<u16>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 | u32::from(b)))),
        any::<u32>().prop_map(|b| {
            IpAddr::V6(Ipv4Addr::from((b & 0x00ff_ffff) | 0x0a00_0000).to_ipv6_mapped())
        }),
    ]
}

/// Addresses outside `trusted()` (filtered), in any family.
fn untrusted_ip() -> impl Strategy<Value = IpAddr> {
    any_ip().prop_filter("untrusted", |ip| !trusted().contains(*ip))
}

/// Header-ish bytes: mostly syntax characters, so that near-miss inputs are common.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"0123456789abcdefABCDEF.:[]%,;=\" \t\\_-forFORunkwn/x\x00\xff".to_vec();
    prop_oneof![
        prop::collection::vec(prop::sample::select(alphabet), 0..80),
        prop::collection::vec(any::<u8>(), 0..80),
    ]
}

/// One generated header element: what it means, and how it is spelled.
#[derive(Clone, Debug)]
enum Elem {
    /// A valid address, rendered in one of several spellings chosen by `style`.
    Addr(IpAddr, u8, u16),
    /// Something that is not a usable element in either syntax.
    Junk(&'static str),
}

fn elem() -> impl Strategy<Value = Elem> {
    prop_oneof![
        4 => (trusted_ip(), any::<u8>(), any::<u16>()).prop_map(|(ip, s, p)| Elem::Addr(ip, s, p)),
        3 => (untrusted_ip(), any::<u8>(), any::<u16>()).prop_map(|(ip, s, p)| Elem::Addr(ip, s, p)),
        1 => prop::sample::select(vec![
            "unknown", "garbage", "01.2.3.4", "1.2.3", "[1.2.3.4]", "fe80::1%eth0",
            "\"1.2.3.4\"", "1.2.3.4/24", "for=_hidden", "proto=http", "for=unknown",
            "for=1.2.3.4;for=1.2.3.4", "for =1.2.3.4", "for=[::1]", "for=\"::1\"",
        ]).prop_map(Elem::Junk),
    ]
}

fn render_xff(e: &Elem) -> String {
    match *e {
        Elem::Addr(IpAddr::V4(v4), style, port) => match style % 3 {
            0 => v4.to_string(),
            1 => format!("{v4}:{port}"),
            _ => format!("::ffff:{v4}"),
        },
        Elem::Addr(IpAddr::V6(v6), style, port) => match style % 4 {
            0 => v6.to_string(),
            1 => format!("[{v6}]"),
            2 => format!("[{v6}]:{port}"),
            _ => {
                let s = v6.segments();
                format!(
                    "{:04X}:{:04x}:{:x}:{:04X}:{:x}:{:x}:{:x}:{:x}",
                    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
                )
            }
        },
        Elem::Junk(j) => j.to_owned(),
    }
}

fn render_forwarded(e: &Elem) -> String {
    let node = match *e {
        Elem::Addr(IpAddr::V4(v4), style, port) => match style % 4 {
            0 => v4.to_string(),
            1 => format!("\"{v4}\""),
            2 => format!("\"{v4}:{port}\""),
            _ => format!("\"{v4}:_p{port}\""),
        },
        Elem::Addr(IpAddr::V6(v6), style, port) => match style % 3 {
            0 => format!("\"[{v6}]\""),
            1 => format!("\"[{v6}]:{port}\""),
            _ => format!("\"[{v6}]:_x.{port}\""),
        },
        Elem::Junk(j) => return j.to_owned(),
    };
    let style = match *e {
        Elem::Addr(_, s, _) => s / 16,
        Elem::Junk(_) => 0,
    };
    match style % 4 {
        0 => format!("for={node}"),
        1 => format!("For={node};proto=https"),
        2 => format!("by=\"[2001:db8::1]\"; FOR={node} ;host=\"a,b\""),
        _ => format!("proto=http;for={node}"),
    }
}

/// What the walk should find: the model, on a plain list.
fn model(elems: &[Elem], peer: IpAddr, trusted: &TrustedProxies) -> Result<IpAddr, ()> {
    let mut leftmost = None;
    for e in elems.iter().rev() {
        match e {
            Elem::Junk(_) => return Err(()),
            Elem::Addr(ip, ..) if trusted.contains(*ip) => leftmost = Some(canonical(*ip)),
            Elem::Addr(ip, ..) => return Ok(canonical(*ip)),
        }
    }
    Ok(leftmost.unwrap_or(canonical(peer)))
}

/// Splits rendered elements over field lines (`cuts` chooses where) with padding and empty
/// elements sprinkled in, as proxies and clients really send them.
fn layout(rendered: &[String], cuts: &[bool], pad: u8) -> Vec<String> {
    let mut lines = vec![String::new()];
    for (i, r) in rendered.iter().enumerate() {
        let line = lines.last_mut().unwrap();
        if !line.is_empty() {
            line.push_str(match pad % 4 {
                0 => ", ",
                1 => ",",
                2 => " ,\t",
                _ => ", ,",
            });
        }
        line.push_str(r);
        if cuts.get(i).copied().unwrap_or(false) {
            lines.push(if pad.is_multiple_of(3) {
                " ".into()
            } else {
                String::new()
            });
        }
    }
    lines
}

/// Strings that are often addresses or almost: IPv6 built from 1 to 9 groups (some too long,
/// some with leading zeros), an optional `::` anywhere, an optional embedded IPv4 tail; IPv4
/// built from 3 to 5 octets (some out of range or with leading zeros); and random short
/// strings over the address alphabet.
fn address_like() -> impl Strategy<Value = String> {
    let group = prop::sample::select(vec![
        "0", "00", "000", "0000", "1", "01", "a", "ffff", "FFFF", "0db8", "abcd", "fffff", "",
    ]);
    let octet = prop::sample::select(vec!["0", "1", "9", "10", "99", "255", "256", "01", "010"]);
    let v4 = prop::collection::vec(octet, 3..=5).prop_map(|o| o.join("."));
    let v6 = (
        prop::collection::vec(group, 1..=9),
        any::<u8>(),
        prop::option::of(v4.clone()),
    )
        .prop_map(|(groups, gap, tail)| {
            let mut parts: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            if let Some(tail) = tail {
                parts.push(tail);
            }
            let gap = usize::from(gap) % (parts.len() + 2);
            let mut text = String::new();
            for (i, part) in parts.iter().enumerate() {
                if i == gap {
                    text.push_str("::");
                } else if i > 0 {
                    text.push(':');
                }
                text.push_str(part);
            }
            if gap == parts.len() {
                text.push_str("::");
            }
            text
        });
    prop_oneof![
        3 => v6,
        1 => v4,
        1 => prop::collection::vec(prop::sample::select(b"0159afF:.".to_vec()), 0..24)
            .prop_map(|v| String::from_utf8(v).unwrap()),
    ]
}

/// 2000 cases per property by default; `PROPTEST_CASES` raises it for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_header(
        peer in untrusted_ip(),
        lines in prop::collection::vec(header_bytes(), 0..4),
        mode in modes(),
    ) {
        let got = resolve(PeerAddr(Some(peer)), lines.iter().map(|l| l.as_slice()), mode, &trusted());
        let got = got.expect("an untrusted peer always resolves");
        prop_assert_eq!(got.ip.addr(), canonical(peer));
        prop_assert_eq!(got.source, ClientIpSource::Peer);
    }

    #[test]
    fn resolve_never_panics_and_never_returns_a_mapped_address(
        peer in prop_oneof![trusted_ip(), any_ip()],
        lines in prop::collection::vec(header_bytes(), 0..4),
        mode in modes(),
    ) {
        let t = trusted();
        if let Ok(r) = resolve(PeerAddr(Some(peer)), lines.iter().map(|l| l.as_slice()), mode, &t) {
            prop_assert_eq!(r.ip.addr(), canonical(r.ip.addr()));
        }
        prop_assert_eq!(
            resolve(PeerAddr(None), lines.iter().map(|l| l.as_slice()), mode, &t),
            Err(Unresolvable::NoPeerAddress)
        );
    }

    #[test]
    fn walk_matches_the_model(
        peer in trusted_ip(),
        elems in prop::collection::vec(elem(), 0..12),
        cuts in prop::collection::vec(any::<bool>(), 12),
        pad in any::<u8>(),
        mode in modes(),
    ) {
        let t = trusted();
        let rendered: Vec<String> = elems
            .iter()
            .map(|e| match mode {
                HeaderMode::XForwardedFor => render_xff(e),
                HeaderMode::Forwarded => render_forwarded(e),
            })
            .collect();
        let lines = layout(&rendered, &cuts, pad);
        let got = resolve(PeerAddr(Some(peer)), lines.iter().map(|l| l.as_bytes()), mode, &t);
        let want = model(&elems, peer, &t);
        match (&got, want) {
            (Ok(r), Ok(ip)) => {
                prop_assert_eq!(r.ip.addr(), ip, "lines {:?}", lines);
                let source = if elems.is_empty() { ClientIpSource::Peer } else { ClientIpSource::Header };
                prop_assert_eq!(r.source, source);
                // A trusted address is the answer only when every element was trusted.
                if t.contains(r.ip.addr()) {
                    prop_assert!(elems.iter().all(|e| matches!(e, Elem::Addr(ip, ..) if t.contains(*ip))));
                }
            }
            (Err(Unresolvable::MalformedElement { position, .. }), Err(())) => {
                // The position names the first junk element from the right.
                let from_right = elems.iter().rev().position(|e| matches!(e, Elem::Junk(_)));
                prop_assert_eq!(Some(*position), from_right, "lines {:?}", lines);
            }
            _ => prop_assert!(false, "lines {:?}: got {:?}, model {:?}", lines, got, want),
        }
    }

    #[test]
    fn parse_element_never_panics(bytes in header_bytes()) {
        if let Some(ip) = parse_element(&bytes) {
            prop_assert_eq!(ip, canonical(ip));
        }
    }

    #[test]
    fn bare_parse_agrees_with_std(s in address_like()) {
        // std's parsers (Rust >= 1.55) refuse leading zeros and shortened IPv4 too.
        let std = s.parse::<IpAddr>().ok().map(canonical);
        prop_assert_eq!(parse_ip(s.as_bytes()), std, "{:?}", s);
    }

    #[test]
    fn every_address_round_trips(ip in any_ip(), port in any::<u16>()) {
        let want = Some(canonical(ip));
        prop_assert_eq!(parse_ip(ip.to_string().as_bytes()), want);
        prop_assert_eq!(parse_element(ip.to_string().as_bytes()), want);
        let with_port = match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        };
        prop_assert_eq!(parse_element(with_port.as_bytes()), want);
    }

    #[test]
    fn trust_is_decided_on_the_canonical_address(ip in any_ip()) {
        let t = trusted();
        prop_assert_eq!(t.contains(ip), t.contains(canonical(ip)));
        prop_assert_eq!(canonical(canonical(ip)), canonical(ip));
    }
}
