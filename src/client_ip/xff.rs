//! X-Forwarded-For: the trust walk over a plain comma-separated list of addresses.
//!
//! The syntax has no quoting, so the walk can start at the right end of the last field line
//! and split on commas backwards: elements left of the client are never even looked at, and
//! nothing is allocated.

use std::net::IpAddr;
use std::ops::ControlFlow;

use super::addr::parse_element;
use super::error::{MalformedKind, Unresolvable};
use super::trusted::TrustedProxies;
use super::walk::{trim_ows, Walk};

/// Walks all field lines right to left. `Ok(None)`: the header had no elements.
pub(super) fn walk<'a, I>(
    field_lines: I,
    trusted: &TrustedProxies,
) -> Result<Option<IpAddr>, Unresolvable>
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    let mut walk = Walk::new(trusted);
    for line in field_lines.rev() {
        for raw in line.rsplit(|&b| b == b',') {
            let element = trim_ows(raw);
            if element.is_empty() {
                continue;
            }
            let hop = parse_element(element).ok_or(MalformedKind::InvalidAddress);
            if let ControlFlow::Break(outcome) = walk.step(hop) {
                return outcome.map(Some);
            }
        }
    }
    Ok(walk.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|s| s.parse().unwrap()))
    }

    fn run(lines: &[&str], nets: &[&str]) -> Result<Option<IpAddr>, Unresolvable> {
        walk(lines.iter().map(|l| l.as_bytes()), &trusted(nets))
    }

    fn client(s: &str) -> Result<Option<IpAddr>, Unresolvable> {
        Ok(Some(s.parse().unwrap()))
    }

    fn malformed(position: usize) -> Result<Option<IpAddr>, Unresolvable> {
        Err(Unresolvable::MalformedElement {
            position,
            kind: MalformedKind::InvalidAddress,
        })
    }

    const T: &[&str] = &["10.0.0.0/8", "2001:db8:ffff::/48"];

    #[test]
    fn no_lines_or_no_elements() {
        assert_eq!(run(&[], T), Ok(None));
        assert_eq!(run(&[""], T), Ok(None));
        assert_eq!(run(&[" , ,, ", "", "\t"], T), Ok(None));
    }

    #[test]
    fn first_untrusted_from_the_right() {
        assert_eq!(run(&["192.0.2.1"], T), client("192.0.2.1"));
        assert_eq!(run(&["192.0.2.1, 10.0.0.2"], T), client("192.0.2.1"));
        assert_eq!(
            run(&["198.51.100.10, 203.0.113.50, 10.0.0.3, 10.0.0.2"], T),
            client("203.0.113.50")
        );
        assert_eq!(
            run(&["2001:db8:1::7, 2001:DB8:FFFF::2"], T),
            client("2001:db8:1::7")
        );
    }

    #[test]
    fn all_trusted_means_leftmost() {
        assert_eq!(run(&["10.0.0.1, 10.0.0.2"], T), client("10.0.0.1"));
        assert_eq!(
            run(&["10.0.0.1", "10.0.0.2, 10.0.0.3"], T),
            client("10.0.0.1")
        );
        assert_eq!(run(&[" , 10.0.0.1 ,", ",,"], T), client("10.0.0.1"));
        assert_eq!(run(&["::ffff:10.0.0.1"], T), client("10.0.0.1"));
    }

    #[test]
    fn left_of_the_client_is_never_examined() {
        assert_eq!(
            run(&["0x7f.1, garbage, 203.0.113.7"], T),
            client("203.0.113.7")
        );
        assert_eq!(
            run(&["\"quoted\" junk, 203.0.113.7, 10.0.0.2"], T),
            client("203.0.113.7")
        );
        assert_eq!(run(&["not an ip", "203.0.113.7"], T), client("203.0.113.7"));
    }

    #[test]
    fn malformed_reached_by_the_walk_fails_closed() {
        assert_eq!(run(&["203.0.113.7 198.51.100.10"], T), malformed(0));
        assert_eq!(run(&["203.0.113.7, 10.0.0.350"], T), malformed(0));
        assert_eq!(run(&["203.0.113.7, unknown, 10.0.0.2"], T), malformed(1));
        assert_eq!(
            run(&["myrouter, 10.0.0.1, ::8:8:8:8:8:8:8:8:8"], T),
            malformed(0)
        );
        assert_eq!(run(&["localhost, 10.0.0.2, 10.0.0.3"], T), malformed(2));
        // Never falls back to an element further left, nor to the peer.
        assert_eq!(run(&["203.0.113.7, [203.0.113.8]"], T), malformed(0));
    }

    #[test]
    fn positions_count_non_empty_elements_across_lines() {
        assert_eq!(
            run(&["bad, 10.0.0.1", "10.0.0.2,, 10.0.0.3 ,"], T),
            malformed(3)
        );
        assert_eq!(run(&["bad", "", "10.0.0.2"], T), malformed(1));
    }

    #[test]
    fn field_lines_are_one_list_last_line_first() {
        assert_eq!(
            run(&["10.0.1.1", "192.0.2.1", "10.0.0.1"], T),
            client("192.0.2.1")
        );
        assert_eq!(
            run(&["198.51.100.10", "203.0.113.50"], T),
            client("203.0.113.50")
        );
        assert_eq!(
            run(&["203.0.113.50", "10.0.0.2"], T),
            client("203.0.113.50")
        );
        // A comma does not continue across lines: each line ends an element.
        assert_eq!(run(&["203.0.113.", "50"], T), malformed(0));
    }

    #[test]
    fn ports_and_mapped_addresses() {
        assert_eq!(run(&["203.0.113.7:5678"], T), client("203.0.113.7"));
        assert_eq!(run(&["[2001:db8::1]:443"], T), client("2001:db8::1"));
        assert_eq!(run(&["::ffff:c000:201"], T), client("192.0.2.1"));
        assert_eq!(
            run(&["192.0.2.1, [::ffff:10.0.0.2]:80"], T),
            client("192.0.2.1")
        );
    }

    #[test]
    fn no_element_cap() {
        let mut line = String::from("203.0.113.7");
        for i in 0..500 {
            line.push_str(&format!(", 10.0.{}.{}", i / 250, i % 250));
        }
        assert_eq!(run(&[&line], T), client("203.0.113.7"));
    }
}
