//! URL checks: whether a URL points at this machine, where plain `http://` is allowed (tests
//! and a local admin-store stub). Parsed with `url`, the parser the HTTP client connects
//! with, so the check and the connection agree on the host.

use std::net::IpAddr;
use url::{Host, Url};

/// `localhost`, 127.0.0.0/8, `::1`, and `::ffff:127.x.x.x` (an IPv4-mapped address is the
/// IPv4 address everywhere in the gate).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4).is_loopback(),
        Some(Host::Ipv6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// [`is_loopback_host`] of a URL given as text; a URL that does not parse is not loopback.
pub fn is_loopback_url(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| is_loopback_host(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://localhost/a",
            "http://LOCALHOST:9000/a",
            "http://127.0.0.1:8080/a",
            "http://127.0.0.2/x",
            "http://127.8.9.10/a",
            "http://[::1]:9/a",
            "http://[::ffff:127.0.0.1]/a",
            "http://[::ffff:7f00:2]/a",
            "https://127.0.0.1/a",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn other_hosts_and_bad_urls() {
        for url in [
            "http://192.0.2.10/a",
            "http://[2001:db8::1]/x",
            "http://[::ffff:192.0.2.1]/a",
            "http://[::127.0.0.1]/a",
            "http://127.0.0.1.example/x",
            "http://localhost.example.nl/a",
            "http://admin.example.nl/a",
            "http://[::1/a",
            "http://",
            "127.0.0.1:8080",
            "not a url",
            "",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
