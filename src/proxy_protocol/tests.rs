use super::*;
use proptest::prelude::*;

fn done(buf: &[u8], accept: Accept) -> (Header, usize) {
    match parse(buf, accept) {
        Ok(Parsed::Done { header, consumed }) => (header, consumed),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn rejected(buf: &[u8], accept: Accept) -> Rejection {
    match parse(buf, accept) {
        Err(e) => e,
        other => panic!("{:?} accepted: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Every proper prefix of a valid header is `Incomplete`: the caller reads on.
fn every_prefix_is_incomplete(buf: &[u8], accept: Accept) {
    let (_, consumed) = done(buf, accept);
    for n in 0..consumed {
        assert_eq!(
            parse(&buf[..n], accept),
            Ok(Parsed::Incomplete),
            "prefix of {n} bytes of {:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn v1_tcp4_and_tcp6() {
    let line = b"PROXY TCP4 198.51.100.20 10.0.0.5 40000 443\r\nGET / HTTP/1.1\r\n";
    let (h, consumed) = done(line, Accept::V1);
    assert_eq!(consumed, 45);
    assert_eq!(&line[consumed..consumed + 3], b"GET");
    assert_eq!(h.version, Version::V1);
    assert_eq!(
        h.addresses,
        Some(Addresses {
            source: sock("198.51.100.20:40000"),
            destination: sock("10.0.0.5:443"),
        })
    );
    every_prefix_is_incomplete(line, Accept::V1);

    let line = b"PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n";
    let (h, consumed) = done(line, Accept::ANY);
    assert_eq!(consumed, line.len());
    let a = h.addresses.unwrap();
    assert_eq!(a.source, sock("[2001:db8::1]:0"));
    assert_eq!(a.destination, sock("[2001:db8::2]:65535"));
    every_prefix_is_incomplete(line, Accept::ANY);
}

#[test]
fn v1_unknown_keeps_the_socket_peer() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
        b"PROXY UNKNOWN anything at all\r\n",
    ] {
        let (h, consumed) = done(line, Accept::V1);
        assert_eq!((h.addresses, consumed), (None, line.len()));
    }
}

#[test]
fn v1_longest_line_is_accepted_and_one_more_byte_is_not() {
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe";
    // `ffff:…:fffe` is 39 characters, as long as an IPv6 address gets.
    let line = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), 104);
    done(line.as_bytes(), Accept::V1);
    let line = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX_LEN);
    done(line.as_bytes(), Accept::V1);
    let line = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 16));
    assert_eq!(line.len(), V1_MAX_LEN);
    done(line.as_bytes(), Accept::V1);
    let line = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 15));
    assert_eq!(rejected(line.as_bytes(), Accept::V1), Rejection::V1TooLong);
    // Without an end in sight: refused once 107 bytes are there, not before.
    let endless = format!("PROXY UNKNOWN {}", "x".repeat(200));
    assert_eq!(
        parse(&endless.as_bytes()[..V1_MAX_LEN - 1], Accept::V1),
        Ok(Parsed::Incomplete)
    );
    assert_eq!(
        rejected(&endless.as_bytes()[..V1_MAX_LEN], Accept::V1),
        Rejection::V1TooLong
    );
}

#[test]
fn v1_malformed_lines_are_refused() {
    let bad: &[&str] = &[
        // Leading zeros, and an address of the other family (the shared vectors).
        "PROXY TCP4 010.0.0.1 192.0.2.2 123 5678\r\n",
        "PROXY TCP4 2001:db8::1 192.0.2.2 123 5678\r\n",
        "PROXY TCP6 192.0.2.1 2001:db8::2 123 5678\r\n",
        "PROXY TCP4 192.0.2.1 2001:db8::2 123 5678\r\n",
        // Ports: too big, leading zero, sign, empty, not a number.
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 0123 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 +123 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 \r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 12a 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 99999999 80\r\n",
        // Field count and spacing.
        "PROXY TCP4 192.0.2.1 192.0.2.2 123\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 80 9\r\n",
        "PROXY TCP4  192.0.2.1 192.0.2.2 123 80\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 80 \r\n",
        "PROXY TCP4\r\n",
        // Protocol names are case-sensitive and only these three.
        "PROXY tcp4 192.0.2.1 192.0.2.2 123 80\r\n",
        "PROXY UDP4 192.0.2.1 192.0.2.2 123 80\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        // Addresses in other spellings.
        "PROXY TCP4 192.0.2 192.0.2.2 123 80\r\n",
        "PROXY TCP4 0x7f.0.0.1 192.0.2.2 123 80\r\n",
        "PROXY TCP6 [2001:db8::1] 2001:db8::2 123 80\r\n",
        "PROXY TCP6 2001:db8::1%eth0 2001:db8::2 123 80\r\n",
        // Line ends.
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 80\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 80\rX",
    ];
    for line in bad {
        let e = rejected(line.as_bytes(), Accept::ANY);
        assert!(matches!(e, Rejection::V1Malformed(_)), "{line:?}: {e:?}");
        assert_eq!(e.reason(), "v1_malformed");
    }
}

#[test]
fn v1_not_ascii_is_refused() {
    let e = rejected(
        b"PROXY TCP4 192.0.2.1\xc3\xa9 192.0.2.2 1 2\r\n",
        Accept::V1,
    );
    assert_eq!(e, Rejection::V1Malformed("not ASCII"));
}

#[test]
fn a_connection_without_a_header_is_refused_at_its_first_byte() {
    for start in [
        &b"G"[..],
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01",
        b"PROXX",
        b"PROXY\r\n",
        b"\r\n\r\n\0\r\nQUIX",
    ] {
        assert_eq!(
            rejected(start, Accept::ANY),
            Rejection::Missing,
            "{start:?}"
        );
    }
    assert_eq!(parse(b"", Accept::ANY), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"PRO", Accept::ANY), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"\r\n\r\n", Accept::ANY), Ok(Parsed::Incomplete));
}

#[test]
fn a_version_the_listener_does_not_accept_is_refused() {
    assert_eq!(
        rejected(b"PROXY TCP4", Accept::V2),
        Rejection::VersionNotAccepted(1)
    );
    assert_eq!(
        rejected(b"\r\n", Accept::V1),
        Rejection::VersionNotAccepted(2)
    );
    assert_eq!(
        Rejection::VersionNotAccepted(2).reason(),
        "version_not_accepted"
    );
}

/// A v2 header: command (0 LOCAL, 1 PROXY), family byte, payload.
fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.push(0x20 | command);
    b.push(family);
    b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn inet4() -> Vec<u8> {
    let mut p = vec![198, 51, 100, 20, 10, 0, 0, 5];
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&443u16.to_be_bytes());
    p
}

fn inet6() -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let mut p = src.octets().to_vec();
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&1234u16.to_be_bytes());
    p.extend_from_slice(&443u16.to_be_bytes());
    p
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![kind];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

/// `header` with a CRC32c TLV appended and filled in (the length grown to match).
fn with_crc(mut header: Vec<u8>) -> Vec<u8> {
    header.extend_from_slice(&tlv(PP2_TYPE_CRC32C, &[0; 4]));
    let len = (header.len() - V2_HEADER_LEN) as u16;
    header[14..16].copy_from_slice(&len.to_be_bytes());
    let sum = crc32c::checksum(&header);
    let at = header.len() - 4;
    header[at..].copy_from_slice(&sum.to_be_bytes());
    header
}

#[test]
fn v2_tcp_over_ipv4_and_ipv6() {
    let mut b = v2(1, 0x11, &inet4());
    b.extend_from_slice(b"GET /");
    let (h, consumed) = done(&b, Accept::V2);
    assert_eq!(consumed, 28);
    assert_eq!(h.version, Version::V2);
    assert_eq!(
        h.addresses,
        Some(Addresses {
            source: sock("198.51.100.20:40000"),
            destination: sock("10.0.0.5:443"),
        })
    );
    every_prefix_is_incomplete(&b, Accept::V2);

    let b = v2(1, 0x21, &inet6());
    let (h, consumed) = done(&b, Accept::ANY);
    assert_eq!(consumed, 52);
    assert_eq!(h.addresses.unwrap().source, sock("[2001:db8::1]:1234"));
    every_prefix_is_incomplete(&b, Accept::ANY);
}

#[test]
fn v2_local_and_unspec_keep_the_socket_peer() {
    // LOCAL: a health check of the balancer; whatever follows the fixed part is ignored.
    for (family, payload) in [
        (0x00, vec![]),
        (0x11, inet4()),
        (0x31, vec![7; 216]),
        (0x12, vec![1, 2, 3]),
    ] {
        let b = v2(0, family, &payload);
        let (h, consumed) = done(&b, Accept::V2);
        assert_eq!(
            (h.addresses, consumed),
            (None, b.len()),
            "LOCAL {family:#x}"
        );
    }
    // PROXY with UNSPEC: use the real connection.
    let b = v2(1, 0x00, &[]);
    assert_eq!(done(&b, Accept::V2).0.addresses, None);
    let b = v2(1, 0x00, &tlv(0x01, b"h2"));
    assert_eq!(done(&b, Accept::V2).0.addresses, None);
}

#[test]
fn v2_tlvs_are_skipped_and_a_crc_is_checked() {
    // ALPN, authority, SSL (its claims are not believed), a vendor type (AWS), no-op.
    let mut payload = inet4();
    payload.extend(tlv(0x01, b"http/1.1"));
    payload.extend(tlv(0x02, b"afname.example.nl"));
    payload.extend(tlv(0x20, &[0x07, 0, 0, 0, 0]));
    payload.extend(tlv(0xEA, b"\x01vpce-0123456789abcdef"));
    payload.extend(tlv(0x04, &[0; 3]));
    payload.extend(tlv(0x05, &[]));
    let b = v2(1, 0x11, &payload);
    assert_eq!(done(&b, Accept::V2).1, b.len());

    let good = with_crc(b.clone());
    assert_eq!(done(&good, Accept::V2).1, good.len());
    every_prefix_is_incomplete(&good, Accept::V2);
    // A changed address, port, TLV type or the checksum itself.
    for flip in [16, 20, 27, good.len() - 10, good.len() - 1] {
        let mut bad = good.clone();
        bad[flip] ^= 0x01;
        assert_eq!(rejected(&bad, Accept::V2), Rejection::V2Crc, "flip {flip}");
    }
    assert_eq!(Rejection::V2Crc.reason(), "v2_crc");

    let mut short_crc = inet4();
    short_crc.extend(tlv(PP2_TYPE_CRC32C, &[0; 3]));
    assert_eq!(
        rejected(&v2(1, 0x11, &short_crc), Accept::V2),
        Rejection::V2CrcLength(3)
    );
}

#[test]
fn v2_truncated_or_overlong_parts_are_refused() {
    // The address block does not fit the length.
    for (family, need) in [(0x11, 12), (0x21, 36)] {
        let payload = vec![1; need - 1];
        assert_eq!(
            rejected(&v2(1, family, &payload), Accept::V2),
            Rejection::V2AddressTooShort {
                len: need - 1,
                need
            }
        );
    }
    // A TLV that runs past the end, a TLV head cut short.
    let mut p = inet4();
    p.extend([0x01, 0x00, 0x05, b'h', b'2']);
    assert_eq!(rejected(&v2(1, 0x11, &p), Accept::V2), Rejection::V2Tlv);
    let mut p = inet4();
    p.extend([0x01, 0x00]);
    assert_eq!(rejected(&v2(1, 0x11, &p), Accept::V2), Rejection::V2Tlv);
    assert_eq!(Rejection::V2Tlv.reason(), "v2_truncated");

    // Longer than accepted: refused from the length alone, without waiting for the bytes.
    let mut b = v2(1, 0x11, &inet4());
    b[14..16].copy_from_slice(&((MAX_V2_PAYLOAD + 1) as u16).to_be_bytes());
    assert_eq!(
        rejected(&b[..16], Accept::V2),
        Rejection::V2TooLong(MAX_V2_PAYLOAD + 1)
    );
    let mut p = inet4();
    p.extend(tlv(0xEE, &vec![0; MAX_V2_PAYLOAD - 12 - 3]));
    assert_eq!(p.len(), MAX_V2_PAYLOAD);
    done(&v2(1, 0x11, &p), Accept::V2);
}

#[test]
fn v2_bad_version_command_or_family_is_refused_as_soon_as_it_is_read() {
    let good = v2(1, 0x11, &inet4());
    let with = |at: usize, value: u8| {
        let mut b = good.clone();
        b[at] = value;
        b
    };
    for ver in [0x00, 0x10, 0x30, 0xF0] {
        let b = with(12, ver | 0x01);
        assert_eq!(
            rejected(&b[..13], Accept::V2),
            Rejection::V2Version(ver >> 4)
        );
    }
    for cmd in 2..=0x0f {
        let b = with(12, 0x20 | cmd);
        assert_eq!(rejected(&b[..13], Accept::V2), Rejection::V2Command(cmd));
    }
    // UDP, UNIX stream and datagram, unknown families, and protocol UNSPEC with a family.
    for family in [0x12, 0x22, 0x31, 0x32, 0x41, 0x10, 0x20, 0x01, 0x02] {
        let b = with(13, family);
        let e = rejected(&b[..14], Accept::V2);
        assert_eq!(e, Rejection::V2Family(family));
        assert_eq!(e.reason(), "v2_family");
    }
}

#[test]
fn every_reason_is_a_short_label() {
    let all = [
        Rejection::Missing,
        Rejection::VersionNotAccepted(1),
        Rejection::V1TooLong,
        Rejection::V1Malformed("x"),
        Rejection::V2Version(1),
        Rejection::V2Command(2),
        Rejection::V2Family(0x12),
        Rejection::V2TooLong(9999),
        Rejection::V2AddressTooShort { len: 1, need: 12 },
        Rejection::V2Tlv,
        Rejection::V2CrcLength(3),
        Rejection::V2Crc,
    ];
    for r in all {
        let label = r.reason();
        assert!(
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{label}"
        );
        assert!(!r.to_string().is_empty());
    }
}

proptest! {
    /// Any bytes: never a panic; a verdict that is stable as more bytes arrive (a refusal
    /// stays a refusal, a header found stays the same header).
    #[test]
    fn any_bytes_get_a_stable_verdict(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        v2_start in any::<bool>(),
        cut in 0usize..300,
    ) {
        let mut buf = if v2_start { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
        buf.extend_from_slice(&bytes);
        let whole = parse(&buf, Accept::ANY);
        let cut = cut.min(buf.len());
        let part = parse(&buf[..cut], Accept::ANY);
        match (part, whole) {
            (Ok(Parsed::Incomplete), _) => {}
            (Err(_), w) => prop_assert!(w.is_err(), "refused at {cut} bytes, then {w:?}"),
            (Ok(p @ Parsed::Done { .. }), w) => prop_assert_eq!(Ok(p), w),
        }
        if let Ok(Parsed::Done { consumed, .. }) = whole {
            prop_assert!(consumed <= buf.len());
            prop_assert!(consumed <= V2_HEADER_LEN + MAX_V2_PAYLOAD);
        }
    }

    /// Every well-formed v1 line round-trips.
    #[test]
    fn v1_lines_round_trip(
        v6 in any::<bool>(),
        a in any::<[u8; 16]>(),
        b in any::<[u8; 16]>(),
        ports in any::<(u16, u16)>(),
    ) {
        let ip = |o: [u8; 16]| if v6 {
            IpAddr::V6(Ipv6Addr::from(o))
        } else {
            IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
        };
        let source = SocketAddr::new(ip(a), ports.0);
        let destination = SocketAddr::new(ip(b), ports.1);
        let proto = if v6 { "TCP6" } else { "TCP4" };
        let line = format!(
            "PROXY {proto} {} {} {} {}\r\n",
            source.ip(), destination.ip(), ports.0, ports.1
        );
        let (h, consumed) = done(line.as_bytes(), Accept::V1);
        prop_assert_eq!(consumed, line.len());
        prop_assert_eq!(h.addresses, Some(Addresses { source, destination }));
    }
}
