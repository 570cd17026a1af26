// What must hold for any forwarding header a request can carry; shared by the fuzz targets
// `client_ip_xff` and `client_ip_forwarded` and the corpus replay on stable
// (`tests/fuzz_corpus.rs`).
//
// Input: byte 0 picks the trusted proxies (low 2 bits) and the peer (next 3 bits); the rest
// is the header's field lines, split on `\n`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use poortwachter::client_ip::{
    canonical, parse_element, resolve, ClientIpSource, HeaderMode, MalformedKind, PeerAddr,
    Resolved, TrustedProxies, Unresolvable,
};

/// The trusted sets the input chooses from: a typical one (with a mapped network), one
/// network, everything, nothing.
const TRUSTED_SETS: [&[&str]; 4] = [
    &["10.0.0.0/8", "2001:db8:ffff::/48", "::ffff:192.168.0.0/112"],
    &["192.0.2.0/24"],
    &["0.0.0.0/0", "::/0"],
    &[],
];

/// The peers the input chooses from (`None`: a Unix socket).
const PEERS: [Option<&str>; 8] = [
    Some("10.0.0.1"),
    Some("::ffff:10.0.0.2"),
    Some("2001:db8:ffff::1"),
    Some("192.0.2.1"),
    Some("203.0.113.9"),
    None,
    Some("192.168.1.1"),
    Some("2001:db8::5"),
];

/// Client IP invariants for the X-Forwarded-For syntax.
pub fn check_xff(data: &[u8]) {
    check(data, HeaderMode::XForwardedFor);
}

/// Client IP invariants for the Forwarded (RFC 7239) syntax.
pub fn check_forwarded(data: &[u8]) {
    check(data, HeaderMode::Forwarded);
}

fn check(data: &[u8], mode: HeaderMode) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let trusted = TrustedProxies::new(
        TRUSTED_SETS[usize::from(control & 3)]
            .iter()
            .map(|s| s.parse().expect("trusted network")),
    );
    let peer = PEERS[usize::from((control >> 2) & 7)].map(|s| s.parse::<IpAddr>().expect("peer"));
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let run = |lines: &[&[u8]]| resolve(PeerAddr(peer), lines.iter().copied(), mode, &trusted);
    let got = run(&lines);
    assert_eq!(got, run(&lines), "deterministic");

    // No peer address: never resolved, whatever the header says.
    let Some(peer) = peer else {
        assert_eq!(got, Err(Unresolvable::NoPeerAddress));
        return;
    };
    // An untrusted peer is the client, and its header does not matter.
    if !trusted.contains(peer) {
        assert_eq!(got, Ok(from(canonical(peer), ClientIpSource::Peer)));
        return;
    }
    match got {
        Ok(Resolved { ip, source }) => {
            let ip = ip.addr();
            assert_eq!(ip, canonical(ip), "the client IP is canonical");
            if source == ClientIpSource::Peer {
                assert_eq!(ip, canonical(peer), "source peer means the peer");
            } else {
                assert!(
                    addresses_in(&lines).contains(&ip),
                    "{ip} is not an address written in the header {lines:?}"
                );
            }
        }
        Err(Unresolvable::MalformedElement { .. }) => {}
        Err(e) => panic!("a peer with an address got {e:?}"),
    }
    if mode == HeaderMode::XForwardedFor {
        assert_eq!(got, xff_model(&lines, peer, &trusted), "the model walk");
    }
    metamorphic(&lines, mode, &trusted, &got, &run);
}

fn from(ip: IpAddr, source: ClientIpSource) -> Resolved {
    Resolved {
        ip: poortwachter::client_ip::ClientIp::from_trusted_source(ip),
        source,
    }
}

/// What `resolve` answers.
type Outcome = Result<Resolved, Unresolvable>;

/// Changes to the header whose effect on the outcome is known.
fn metamorphic(
    lines: &[&[u8]],
    mode: HeaderMode,
    trusted: &TrustedProxies,
    got: &Outcome,
    run: &dyn Fn(&[&[u8]]) -> Outcome,
) {
    let spell = |ip: &str| match (mode, ip.contains(':')) {
        (HeaderMode::XForwardedFor, _) => ip.to_string(),
        (HeaderMode::Forwarded, false) => format!("for={ip}"),
        (HeaderMode::Forwarded, true) => format!("for=\"[{ip}]\""),
    };
    let stops = match got {
        Ok(r) => r.source == ClientIpSource::Header && !trusted.contains(r.ip.addr()),
        Err(_) => true,
    };
    // Left of where the walk stops nothing is examined: a hostile line in front of the
    // header changes nothing.
    if stops {
        for junk in [
            &b"for=\"unterminated, 198.51.100.1"[..],
            b"198.51.100.1",
            b"\xff",
        ] {
            let mut more = vec![junk];
            more.extend_from_slice(lines);
            assert_eq!(&run(&more), got, "a line prepended to {lines:?}");
        }
    }
    // A trusted hop appended on the right is skipped.
    if let Some(hop) = ["10.9.9.9", "192.0.2.200", "2001:db8:ffff::9"]
        .iter()
        .find(|h| trusted.contains(h.parse().expect("ip")))
    {
        let line = spell(hop);
        let mut more = lines.to_vec();
        more.push(line.as_bytes());
        let expect = match got {
            Ok(r) if r.source == ClientIpSource::Peer => {
                Ok(from(hop.parse().expect("ip"), ClientIpSource::Header))
            }
            Ok(r) => Ok(*r),
            Err(Unresolvable::MalformedElement { position, kind }) => {
                Err(Unresolvable::MalformedElement {
                    position: position + 1,
                    kind: *kind,
                })
            }
            Err(e) => Err(*e),
        };
        assert_eq!(run(&more), expect, "trusted {hop} appended to {lines:?}");
    }
    // An untrusted address appended on the right is the client.
    if let Some(client) = ["203.0.113.77", "2001:db8:1::77"]
        .iter()
        .find(|h| !trusted.contains(h.parse().expect("ip")))
    {
        let line = spell(client);
        let mut more = lines.to_vec();
        more.push(line.as_bytes());
        assert_eq!(
            run(&more),
            Ok(from(client.parse().expect("ip"), ClientIpSource::Header)),
            "untrusted {client} appended to {lines:?}"
        );
    }
}

/// The X-Forwarded-For walk on a plain list: every line split on commas, elements trimmed,
/// empty ones dropped, then walked from the right.
fn xff_model(
    lines: &[&[u8]],
    peer: IpAddr,
    trusted: &TrustedProxies,
) -> Result<Resolved, Unresolvable> {
    let elements: Vec<&[u8]> = lines
        .iter()
        .flat_map(|l| l.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|e| !e.is_empty())
        .collect();
    let mut leftmost = None;
    for (position, element) in elements.iter().rev().enumerate() {
        match parse_element(element) {
            None => {
                return Err(Unresolvable::MalformedElement {
                    position,
                    kind: MalformedKind::InvalidAddress,
                })
            }
            Some(ip) if trusted.contains(ip) => leftmost = Some(canonical(ip)),
            Some(ip) => return Ok(from(canonical(ip), ClientIpSource::Header)),
        }
    }
    Ok(match leftmost {
        Some(ip) => from(ip, ClientIpSource::Header),
        None => from(canonical(peer), ClientIpSource::Peer),
    })
}

fn trim_ows(mut e: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = e {
        e = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = e {
        e = rest;
    }
    e
}

/// Every address written in the lines, found without either header grammar: runs of
/// address characters (backslashes of quoted-pairs removed), each read by the standard
/// library as it is and without a trailing `:port`, canonicalised.
fn addresses_in(lines: &[&[u8]]) -> BTreeSet<IpAddr> {
    let mut found = BTreeSet::new();
    for line in lines {
        let text: Vec<u8> = line.iter().copied().filter(|&b| b != b'\\').collect();
        for run in text.split(|b| !(b.is_ascii_hexdigit() || *b == b':' || *b == b'.')) {
            let Ok(run) = std::str::from_utf8(run) else {
                continue;
            };
            let cut = run.rfind(':').map_or(run, |i| &run[..i]);
            for candidate in [run, cut] {
                if let Ok(ip) = candidate.parse::<IpAddr>() {
                    found.insert(canonical(ip));
                }
            }
        }
    }
    found
}
