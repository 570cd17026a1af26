//! What the upstream receives: which client-sent headers the gate removes before it writes
//! its own. Pure, so the rule is tested byte by byte.

/// Headers that carry a client address or an identity the gate vouches for. Every
/// client-sent copy is removed, in any spelling that a server could fold into the same
/// name: case-insensitive, with `_` and `-` treated alike (CGI, PHP and WSGI turn both
/// into `HTTP_X_FORWARDED_FOR`).
const GATE_OWNED: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "x-client-ip",
    "x-request-id",
    "x-poortwachter-site",
];

/// `a` and `b` are the same header name once case and `_`/`-` are folded.
fn same_folded(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| fold(*x) == fold(*y))
}

/// Whether a client-sent header named `name` must be removed before forwarding.
/// `client_ip_header` is the configured header the gate writes the client IP into.
pub fn is_gate_owned(name: &str, client_ip_header: &str) -> bool {
    let n = name.as_bytes();
    same_folded(n, client_ip_header.as_bytes())
        || GATE_OWNED.iter().any(|g| same_folded(n, g.as_bytes()))
}

/// Header names that cannot carry the client IP to the upstream: framing, routing and
/// connection fields, and the gate's own fields with another meaning.
pub fn unusable_client_ip_header(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "host",
        "connection",
        "content-length",
        "content-type",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "authorization",
        "cookie",
        "forwarded",
        "x-request-id",
        "x-poortwachter-site",
        "expect",
    ];
    RESERVED
        .iter()
        .any(|r| same_folded(name.as_bytes(), r.as_bytes()))
}

/// The one `Content-Length` to forward when the client sent it as a list or several times
/// with the same value (Pingora accepts that, RFC 9110 §8.6, and refuses differing values),
/// so a strict upstream does not refuse the request; `None` when it is already one value.
pub fn collapsed_content_length(headers: &http::HeaderMap) -> Option<http::HeaderValue> {
    let mut values = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let first = values.next()?;
    let several = values.next().is_some();
    let bytes = first.as_bytes();
    if !several && !bytes.contains(&b',') {
        return None;
    }
    let one = bytes.split(|&b| b == b',').next()?.trim_ascii();
    http::HeaderValue::from_bytes(one).ok()
}

#[cfg(test)]
mod tests {

    #[test]
    fn equal_content_lengths_are_forwarded_as_one() {
        let map = |values: &[&str]| {
            let mut m = http::HeaderMap::new();
            for v in values {
                m.append(http::header::CONTENT_LENGTH, v.parse().unwrap());
            }
            m
        };
        let one = |values: &[&str]| {
            super::collapsed_content_length(&map(values)).map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(one(&[]), None);
        assert_eq!(one(&["5"]), None, "already one value");
        assert_eq!(one(&["5", "5"]).as_deref(), Some("5"));
        assert_eq!(one(&["5, 5"]).as_deref(), Some("5"));
        assert_eq!(one(&[" 5 ,5", "5"]).as_deref(), Some("5"));
    }
    use super::*;

    #[test]
    fn every_spelling_of_a_forwarding_header_is_removed() {
        for name in [
            "forwarded",
            "Forwarded",
            "x-forwarded-for",
            "X-Forwarded-For",
            "x_forwarded_for",
            "x-forwarded_for",
            "X_Forwarded-For",
            "x-real-ip",
            "X_Real-IP",
            "x-real_ip",
            "true_client-ip",
            "cf-connecting_ip",
            "x-client_ip",
            "X-Request_Id",
            "x_poortwachter_site",
        ] {
            assert!(is_gate_owned(name, "x-forwarded-for"), "{name}");
        }
    }

    #[test]
    fn the_configured_header_is_removed_in_every_spelling() {
        assert!(is_gate_owned("X-Client-Address", "x-client-address"));
        assert!(is_gate_owned("x_client_address", "x-client-address"));
        assert!(!is_gate_owned("x-client-address", "x-forwarded-for"));
    }

    #[test]
    fn other_headers_pass() {
        for name in [
            "x-forwarded-proto",
            "x-forwarded-host",
            "accept",
            "x-forwarded-fo",
            "x-forwarded-forr",
            "cookie",
        ] {
            assert!(!is_gate_owned(name, "x-forwarded-for"), "{name}");
        }
    }

    #[test]
    fn reserved_names_cannot_carry_the_client_ip() {
        for name in [
            "Host",
            "x-request-id",
            "X_Request_Id",
            "forwarded",
            "content-length",
            "connection",
        ] {
            assert!(unusable_client_ip_header(name), "{name}");
        }
        for name in ["x-forwarded-for", "x-real-ip", "x-client-ip"] {
            assert!(!unusable_client_ip_header(name), "{name}");
        }
    }
}
