//! Forwarded (RFC 7239): the trust walk over `for=` parameters.
//!
//! Unlike X-Forwarded-For, an element may contain a quoted string, and a comma inside quotes
//! is not a separator. Quote state can only be known reading left to right, so each field
//! line is scanned once, left to right, keeping O(1) state: the *rightmost* element that
//! stops the walk (untrusted or malformed). That element is exactly where a right-to-left
//! walk would stop, so the outcome is the same, without allocating a list of elements.
//! Elements left of it are parsed but their result is discarded.
//!
//! Each line is tokenised on its own: an unterminated quote in a client-sent line cannot
//! swallow a line that a proxy added. Inside one line, a client that opens a quote and never
//! closes it swallows everything to the end of that line into one element, which is then
//! malformed and is the first element the walk reaches: the request fails closed.

mod element;
mod node;

use std::net::IpAddr;
use std::ops::ControlFlow;

use super::error::{MalformedKind, Unresolvable};
use super::trusted::TrustedProxies;
use super::walk::{trim_ows, Walk};

/// Walks all field lines, last line first. `Ok(None)`: the header had no elements.
pub(super) fn walk<'a, I>(
    field_lines: I,
    trusted: &TrustedProxies,
) -> Result<Option<IpAddr>, Unresolvable>
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    let mut walk = Walk::new(trusted);
    for line in field_lines.rev() {
        let scan = scan_line(line, trusted);
        match scan.stop {
            Some((index, hop)) => {
                // Elements right of the stop were all trusted; the stop ends the walk.
                walk.skip_trusted(scan.count.saturating_sub(index + 1), None);
                if let ControlFlow::Break(outcome) = walk.step(hop) {
                    return outcome.map(Some);
                }
            }
            None => walk.skip_trusted(scan.count, scan.first),
        }
    }
    Ok(walk.finish())
}

/// What one field line contributes to the walk.
struct LineScan {
    /// Number of non-empty elements on the line.
    count: usize,
    /// Index (from the left) and outcome of the rightmost element that is not a trusted
    /// address: where the walk stops.
    stop: Option<(usize, Result<IpAddr, MalformedKind>)>,
    /// The first element's address, when it is a trusted address.
    first: Option<IpAddr>,
}

fn scan_line(line: &[u8], trusted: &TrustedProxies) -> LineScan {
    let mut scan = LineScan {
        count: 0,
        stop: None,
        first: None,
    };
    for (index, raw) in Elements::new(line).enumerate() {
        let hop = element::parse(raw);
        match hop {
            Ok(ip) if trusted.contains(ip) => {
                if index == 0 {
                    scan.first = Some(ip);
                }
            }
            _ => scan.stop = Some((index, hop)),
        }
        scan.count = index + 1;
    }
    scan
}

/// The non-empty elements of one field line, left to right, trimmed of spaces and tabs.
///
/// This is only the list layer: a comma separates elements unless it is inside a quoted
/// string (where a backslash escapes the next byte). Any `"` outside a quoted string opens
/// one, even where the strict element grammar forbids it; the element parser then rejects
/// the element. The split itself never fails.
struct Elements<'a> {
    line: &'a [u8],
    /// Start of the next element; past the end when done.
    pos: usize,
}

impl<'a> Elements<'a> {
    fn new(line: &'a [u8]) -> Self {
        Elements { line, pos: 0 }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos <= self.line.len() {
            let start = self.pos;
            let mut i = start;
            let mut in_quote = false;
            while let Some(&b) = self.line.get(i) {
                match (in_quote, b) {
                    (false, b',') => break,
                    (false, b'"') => in_quote = true,
                    (true, b'"') => in_quote = false,
                    (true, b'\\') => i += 1,
                    _ => {}
                }
                i += 1;
            }
            let end = i.min(self.line.len());
            self.pos = end + 1;
            let element = trim_ows(self.line.get(start..end).unwrap_or_default());
            if !element.is_empty() {
                return Some(element);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<&str> {
        Elements::new(line.as_bytes())
            .map(|e| std::str::from_utf8(e).unwrap())
            .collect()
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|s| s.parse().unwrap()))
    }

    const T: &[&str] = &["10.0.0.0/8", "2001:db8:ffff::/48"];

    fn run(lines: &[&str]) -> Result<Option<IpAddr>, Unresolvable> {
        walk(lines.iter().map(|l| l.as_bytes()), &trusted(T))
    }

    fn client(s: &str) -> Result<Option<IpAddr>, Unresolvable> {
        Ok(Some(s.parse().unwrap()))
    }

    fn malformed(position: usize, kind: MalformedKind) -> Result<Option<IpAddr>, Unresolvable> {
        Err(Unresolvable::MalformedElement { position, kind })
    }

    #[test]
    fn list_split_honours_quotes() {
        assert_eq!(split(""), Vec::<&str>::new());
        assert_eq!(split(" , ,, "), Vec::<&str>::new());
        assert_eq!(split("for=a"), vec!["for=a"]);
        assert_eq!(split("for=a, for=b"), vec!["for=a", "for=b"]);
        assert_eq!(split(" for=a ,\tfor=b\t,"), vec!["for=a", "for=b"]);
        assert_eq!(
            split(r#"for="a, b", for=c"#),
            vec![r#"for="a, b""#, "for=c"]
        );
        assert_eq!(
            split(r#"for="a\", b", for=c"#),
            vec![r#"for="a\", b""#, "for=c"]
        );
        assert_eq!(split(r#"for="a\\", for=c"#), vec![r#"for="a\\""#, "for=c"]);
        // Unterminated: the rest of the line is one element.
        assert_eq!(
            split(r#"for=a, for="b, for=c"#),
            vec!["for=a", r#"for="b, for=c"#]
        );
        assert_eq!(split(r#"for="b\"#), vec![r#"for="b\"#]);
        // A stray quote still opens a quoted string at the list layer.
        assert_eq!(
            split(r#"for=a"b, c", for=d"#),
            vec![r#"for=a"b, c""#, "for=d"]
        );
        assert_eq!(split(";"), vec![";"]);
    }

    #[test]
    fn walk_basics() {
        assert_eq!(run(&[]), Ok(None));
        assert_eq!(run(&["", " , "]), Ok(None));
        assert_eq!(
            run(&["for=192.0.2.43, for=198.51.100.17"]),
            client("198.51.100.17")
        );
        assert_eq!(run(&["for=192.0.2.43, for=10.0.0.2"]), client("192.0.2.43"));
        assert_eq!(run(&["for=10.0.0.3, for=10.0.0.2"]), client("10.0.0.3"));
        assert_eq!(
            run(&["for=10.0.0.3", "for=10.0.0.4, for=10.0.0.2", ""]),
            client("10.0.0.3")
        );
        assert_eq!(
            run(&[r#"for="[2001:db8:1::7]", for="[2001:DB8:FFFF::2]:443""#]),
            client("2001:db8:1::7")
        );
        assert_eq!(
            run(&[r#"for=192.0.2.60;proto=http;by=203.0.113.43"#]),
            client("192.0.2.60")
        );
    }

    #[test]
    fn walk_stops_at_malformed_and_counts_positions() {
        assert_eq!(
            run(&["for=unknown, for=10.0.0.2"]),
            malformed(1, MalformedKind::UnknownNode)
        );
        assert_eq!(
            run(&["for=203.0.113.50, proto=https;by=10.0.0.1"]),
            malformed(0, MalformedKind::MissingFor)
        );
        assert_eq!(
            run(&["for=_hidden, for=10.0.0.2", "for=10.0.0.3,, for=10.0.0.4"]),
            malformed(3, MalformedKind::ObfuscatedNode)
        );
        assert_eq!(
            run(&[r#"for="198.51.100.10, for=10.0.0.2""#]),
            malformed(0, MalformedKind::InvalidAddress)
        );
    }

    #[test]
    fn left_of_the_client_is_discarded() {
        assert_eq!(
            run(&[r#"For="1.1.1.1, For=2.2.2.2, For=3.3.3.3", For="4.4.4.4""#]),
            client("4.4.4.4")
        );
        assert_eq!(
            run(&["for=unknown, for=_x, garbage;;=, for=203.0.113.7, for=10.0.0.2"]),
            client("203.0.113.7")
        );
        // A syntax error in an element left of the client does not poison the line: the
        // list split is still unambiguous, so the proxy's element stands.
        assert_eq!(
            run(&["for=a:b, for =x, for=203.0.113.7"]),
            client("203.0.113.7")
        );
        assert_eq!(
            run(&["for=198.51.100.10:80", "for=203.0.113.7"]),
            client("203.0.113.7")
        );
    }

    #[test]
    fn an_unterminated_quote_cannot_hide_a_proxy_element() {
        // Same line: the quote swallows the proxy's element; the walk reaches the swallowed
        // element first and fails closed instead of picking anything the client wrote.
        assert_eq!(
            run(&[r#"for="198.51.100.10, for=203.0.113.7"#]),
            malformed(0, MalformedKind::UnterminatedQuote)
        );
        assert_eq!(
            run(&[r#"for=198.51.100.10, for="x, for=203.0.113.7, for=10.0.0.2"#]),
            malformed(0, MalformedKind::UnterminatedQuote)
        );
        // Separate line: the proxy's line is tokenised on its own.
        assert_eq!(
            run(&[r#"for="198.51.100.10, for=10.0.0.9"#, "for=203.0.113.7"]),
            client("203.0.113.7")
        );
        assert_eq!(
            run(&[r#"for="198.51.100.10"#, "for=10.0.0.2"]),
            malformed(1, MalformedKind::UnterminatedQuote)
        );
    }

    #[test]
    fn mapped_and_ported_hops() {
        assert_eq!(
            run(&[r#"for="[::ffff:188.0.2.128]:49428""#]),
            client("188.0.2.128")
        );
        assert_eq!(
            run(&[r#"for=192.0.2.1, for="[::ffff:10.0.0.2]:80""#]),
            client("192.0.2.1")
        );
        assert_eq!(run(&[r#"for="192.0.2.43:_p1""#]), client("192.0.2.43"));
    }
}
