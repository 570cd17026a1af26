//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1 and 2) that a TCP
//! load balancer writes before the client's first byte, naming the connection's real
//! source. Pure: bytes in, a verdict out. The caller reads until [`parse`] stops answering
//! [`Parsed::Incomplete`], hands the first `consumed` bytes over and keeps the rest as the
//! start of the HTTP stream.
//!
//! Strict by design: the header decides who the client is, so anything a careful sender
//! would not write (leading zeros, a family that does not match its addresses, a port above
//! 65535, extra spaces, a v1 line over 107 bytes, a v2 length beyond [`MAX_V2_PAYLOAD`], a
//! TLV running past the header, a wrong CRC32c) is refused, never guessed at.

mod crc32c;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature, the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line, CRLF included: the specification's worst case, `UNKNOWN` followed
/// by two full-length IPv6 addresses and ports.
pub const V1_MAX_LEN: usize = 107;
/// The largest v2 payload (addresses and TLVs) accepted. Balancers send a few dozen bytes
/// of TLVs (AWS: the VPC endpoint id; HAProxy: ALPN, SNI, SSL details); the format allows
/// 64 KiB, which no sender needs and every connection would have to be ready to buffer.
pub const MAX_V2_PAYLOAD: usize = 1024;

const V2_HEADER_LEN: usize = 16;
/// TLV type of the CRC32c checksum.
const PP2_TYPE_CRC32C: u8 = 0x03;

/// The versions a listener accepts (`proxy_protocol = "v1" | "v2" | "any"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    pub v1: bool,
    pub v2: bool,
}

impl Accept {
    pub const V1: Accept = Accept {
        v1: true,
        v2: false,
    };
    pub const V2: Accept = Accept {
        v1: false,
        v2: true,
    };
    pub const ANY: Accept = Accept { v1: true, v2: true };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A complete, valid header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    /// The connection as the balancer saw it: `source` is the client. `None` for v1
    /// `UNKNOWN`, v2 `LOCAL` (the balancer's own health checks) and v2 `UNSPEC`: the socket
    /// peer stays the peer.
    pub addresses: Option<Addresses>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// What the bytes so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A valid start; read more (and give up at the listener's deadline).
    Incomplete,
    /// The header is the first `consumed` bytes; what follows is the client's.
    Done { header: Header, consumed: usize },
}

/// Why a connection's first bytes are refused. [`Rejection::reason`] is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the connection does not start with a PROXY header")]
    Missing,
    #[error("a PROXY header of version {0}, which this listener does not accept")]
    VersionNotAccepted(u8),
    #[error("the v1 line has no CRLF within {V1_MAX_LEN} bytes")]
    V1TooLong,
    #[error("malformed v1 line: {0}")]
    V1Malformed(&'static str),
    #[error("v2 version nibble {0:#x}, expected 0x2")]
    V2Version(u8),
    #[error("v2 command {0:#x}, expected LOCAL (0x0) or PROXY (0x1)")]
    V2Command(u8),
    #[error("v2 address family and protocol {0:#04x}: only TCP over IPv4 or IPv6 is accepted")]
    V2Family(u8),
    #[error("v2 payload of {0} bytes, more than the {MAX_V2_PAYLOAD} accepted")]
    V2TooLong(usize),
    #[error("v2 payload of {len} bytes is too short for its {need}-byte address block")]
    V2AddressTooShort { len: usize, need: usize },
    #[error("a v2 TLV runs past the end of the header")]
    V2Tlv,
    #[error("v2 CRC32c TLV of {0} bytes, expected 4")]
    V2CrcLength(usize),
    #[error("v2 CRC32c mismatch")]
    V2Crc,
}

impl Rejection {
    /// The `reason` label of the rejection metric: a short, fixed set.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::VersionNotAccepted(_) => "version_not_accepted",
            Rejection::V1TooLong => "v1_too_long",
            Rejection::V1Malformed(_) => "v1_malformed",
            Rejection::V2Version(_) | Rejection::V2Command(_) => "v2_malformed",
            Rejection::V2Family(_) => "v2_family",
            Rejection::V2TooLong(_) => "v2_too_long",
            Rejection::V2AddressTooShort { .. } | Rejection::V2Tlv => "v2_truncated",
            Rejection::V2CrcLength(_) | Rejection::V2Crc => "v2_crc",
        }
    }
}

/// Judge the first bytes of a connection.
pub fn parse(buf: &[u8], accept: Accept) -> Result<Parsed, Rejection> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    let v1 = starts_like(buf, V1_PREFIX);
    let v2 = starts_like(buf, &V2_SIGNATURE);
    match (v1, v2) {
        (false, false) => Err(Rejection::Missing),
        (true, _) if !accept.v1 => Err(Rejection::VersionNotAccepted(1)),
        (_, true) if !accept.v2 => Err(Rejection::VersionNotAccepted(2)),
        (true, _) => parse_v1(buf),
        (_, true) => parse_v2(buf),
    }
}

/// Do `buf` and `prefix` agree as far as both go?
fn starts_like(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf[..n] == prefix[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, Rejection> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN {
            Err(Rejection::V1TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    if window[cr] != b'\r' {
        return Err(Rejection::V1Malformed("a bare LF ends the line"));
    }
    match window.get(cr + 1) {
        None if buf.len() < V1_MAX_LEN => return Ok(Parsed::Incomplete),
        None => return Err(Rejection::V1TooLong),
        Some(b'\n') => {}
        Some(_) => return Err(Rejection::V1Malformed("CR not followed by LF")),
    }
    let line = &window[V1_PREFIX.len()..cr];
    if !line.is_ascii() {
        return Err(Rejection::V1Malformed("not ASCII"));
    }
    let line = std::str::from_utf8(line).map_err(|_| Rejection::V1Malformed("not ASCII"))?;
    let addresses = v1_fields(line)?;
    Ok(Parsed::Done {
        header: Header {
            version: Version::V1,
            addresses,
        },
        consumed: cr + 2,
    })
}

/// The fields after `PROXY `: `TCP4|TCP6 src dst sport dport`, or `UNKNOWN` and anything.
fn v1_fields(line: &str) -> Result<Option<Addresses>, Rejection> {
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(None);
    }
    let mut fields = line.split(' ');
    let v6 = match fields.next() {
        Some("TCP4") => false,
        Some("TCP6") => true,
        _ => {
            return Err(Rejection::V1Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(Rejection::V1Malformed(
            "expected source, destination and two ports, one space apart",
        ));
    };
    let ip = |s: &str| -> Result<IpAddr, Rejection> {
        // The standard parsers refuse leading zeros in IPv4 (`010.0.0.1`) and any other
        // spelling than the plain dotted or colon form.
        if v6 {
            s.parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| Rejection::V1Malformed("TCP6 with an address that is not IPv6"))
        } else {
            s.parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| Rejection::V1Malformed("TCP4 with an address that is not IPv4"))
        }
    };
    let source = SocketAddr::new(ip(src)?, v1_port(sport)?);
    let destination = SocketAddr::new(ip(dst)?, v1_port(dport)?);
    Ok(Some(Addresses {
        source,
        destination,
    }))
}

/// A decimal port, 0–65535, without a sign or leading zeros.
fn v1_port(s: &str) -> Result<u16, Rejection> {
    let plain = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !plain {
        return Err(Rejection::V1Malformed("a port that is not plain decimal"));
    }
    s.parse()
        .map_err(|_| Rejection::V1Malformed("a port above 65535"))
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, Rejection> {
    if buf.len() < V2_HEADER_LEN {
        // The fixed part so far must still be plausible: judge what is there.
        return match v2_fixed(buf) {
            Err(e) => Err(e),
            Ok(_) => Ok(Parsed::Incomplete),
        };
    }
    let (command, family) = v2_fixed(buf)?;
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if len > MAX_V2_PAYLOAD {
        return Err(Rejection::V2TooLong(len));
    }
    let total = V2_HEADER_LEN + len;
    if buf.len() < total {
        return Ok(Parsed::Incomplete);
    }
    let payload = &buf[V2_HEADER_LEN..total];
    // LOCAL: the balancer speaking for itself; the address block (if any) is ignored, but
    // TLVs cannot be told from it, so none are looked at.
    let (addresses, tlvs) = if command == 0 {
        (None, &payload[payload.len()..])
    } else {
        let need = match family {
            0x00 => 0,
            0x11 => 12,
            0x21 => 36,
            _ => unreachable!("v2_fixed admits only these"),
        };
        if len < need {
            return Err(Rejection::V2AddressTooShort { len, need });
        }
        let a = &payload[..need];
        let addresses = match family {
            0x11 => Some(Addresses {
                source: SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                    u16::from_be_bytes([a[8], a[9]]),
                ),
                destination: SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(a[4], a[5], a[6], a[7])),
                    u16::from_be_bytes([a[10], a[11]]),
                ),
            }),
            0x21 => {
                let ip = |at: usize| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&a[at..at + 16]);
                    IpAddr::V6(Ipv6Addr::from(o))
                };
                Some(Addresses {
                    source: SocketAddr::new(ip(0), u16::from_be_bytes([a[32], a[33]])),
                    destination: SocketAddr::new(ip(16), u16::from_be_bytes([a[34], a[35]])),
                })
            }
            // UNSPEC with PROXY: the receiver uses the real connection endpoints.
            _ => None,
        };
        (addresses, &payload[need..])
    };
    check_tlvs(&buf[..total], total - tlvs.len())?;
    Ok(Parsed::Done {
        header: Header {
            version: Version::V2,
            addresses,
        },
        consumed: total,
    })
}

/// Check the fixed part present in `buf` (signature already matched): the version and
/// command byte and the family byte. Returns (command, family) once both are there.
fn v2_fixed(buf: &[u8]) -> Result<(u8, u8), Rejection> {
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok((0, 0));
    };
    if ver_cmd >> 4 != 2 {
        return Err(Rejection::V2Version(ver_cmd >> 4));
    }
    let command = ver_cmd & 0x0f;
    if command > 1 {
        return Err(Rejection::V2Command(command));
    }
    let Some(&family) = buf.get(13) else {
        return Ok((command, 0));
    };
    // LOCAL may carry any family (it is ignored); PROXY must be TCP over IPv4 or IPv6, or
    // UNSPEC.
    if command == 1 && !matches!(family, 0x00 | 0x11 | 0x21) {
        return Err(Rejection::V2Family(family));
    }
    Ok((command, family))
}

/// Walk the TLVs of `header` from `start`: each must end inside the header; a CRC32c TLV,
/// when present, must hold the checksum of the whole header with its own value zeroed.
/// Everything else (ALPN, authority, `PP2_TYPE_SSL`, vendor types) is skipped: nothing in
/// them is believed.
fn check_tlvs(header: &[u8], start: usize) -> Result<(), Rejection> {
    let mut at = start;
    let mut crc_at = None;
    while at < header.len() {
        if header.len() - at < 3 {
            return Err(Rejection::V2Tlv);
        }
        let kind = header[at];
        let len = u16::from_be_bytes([header[at + 1], header[at + 2]]) as usize;
        let value = at + 3;
        if header.len() - value < len {
            return Err(Rejection::V2Tlv);
        }
        if kind == PP2_TYPE_CRC32C {
            if len != 4 {
                return Err(Rejection::V2CrcLength(len));
            }
            crc_at = Some(value);
        }
        at = value + len;
    }
    if let Some(v) = crc_at {
        let sent = u32::from_be_bytes([header[v], header[v + 1], header[v + 2], header[v + 3]]);
        let mut c = crc32c::Crc32c::new();
        c.update(&header[..v]);
        c.update(&[0; 4]);
        c.update(&header[v + 4..]);
        if c.finish() != sent {
            return Err(Rejection::V2Crc);
        }
    }
    Ok(())
}
