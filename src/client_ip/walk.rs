//! The trust walk over header elements, shared by both header syntaxes.
//!
//! Elements are fed from the right (the hop nearest to us) to the left. Trusted hops are
//! skipped; the first untrusted address is the client; a malformed element ends the walk
//! with an error. Keeping this in one place means X-Forwarded-For and Forwarded cannot
//! drift apart on the rule itself, or on how an error position is counted.

use std::net::IpAddr;
use std::ops::ControlFlow;

use super::error::{MalformedKind, Unresolvable};
use super::trusted::TrustedProxies;

/// Walk state. Positions count non-empty elements from the right, 0-based, over all lines.
pub(super) struct Walk<'t> {
    trusted: &'t TrustedProxies,
    visited: usize,
    /// The most recently visited (so far leftmost) element; all of them were trusted.
    leftmost: Option<IpAddr>,
}

impl<'t> Walk<'t> {
    pub(super) fn new(trusted: &'t TrustedProxies) -> Self {
        Walk {
            trusted,
            visited: 0,
            leftmost: None,
        }
    }

    /// Feeds the next element to the left: its canonical address, or why it is malformed.
    /// `Break` carries the outcome when the walk ends at this element.
    pub(super) fn step(
        &mut self,
        hop: Result<IpAddr, MalformedKind>,
    ) -> ControlFlow<Result<IpAddr, Unresolvable>> {
        let position = self.visited;
        self.visited += 1;
        match hop {
            Err(kind) => ControlFlow::Break(Err(Unresolvable::MalformedElement { position, kind })),
            Ok(ip) if self.trusted.contains(ip) => {
                self.leftmost = Some(ip);
                ControlFlow::Continue(())
            }
            Ok(ip) => ControlFlow::Break(Ok(ip)),
        }
    }

    /// Passes over `count` elements already known to be valid and trusted, `leftmost` being
    /// the leftmost of them (`None` when `count` is 0 or the caller stops right after).
    pub(super) fn skip_trusted(&mut self, count: usize, leftmost: Option<IpAddr>) {
        self.visited += count;
        if count > 0 && leftmost.is_some() {
            self.leftmost = leftmost;
        }
    }

    /// Every element was trusted: the leftmost one is the client. `None` when the header
    /// had no elements at all (the peer is then the client).
    pub(super) fn finish(self) -> Option<IpAddr> {
        self.leftmost
    }
}

/// Trims the spaces and tabs around a list element (RFC 9110 OWS). Nothing else is
/// whitespace here: any other byte stays part of the element and makes it malformed.
pub(super) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn trims_only_spaces_and_tabs() {
        assert_eq!(trim_ows(b" \t 1.2.3.4 \t"), b"1.2.3.4");
        assert_eq!(trim_ows(b"1.2.3.4"), b"1.2.3.4");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"\r1.2.3.4\n"), b"\r1.2.3.4\n");
        assert_eq!(trim_ows(b"\x0b1.2.3.4"), b"\x0b1.2.3.4");
        assert_eq!(trim_ows(b"1 2"), b"1 2");
    }

    #[test]
    fn walk_positions_and_outcomes() {
        let trusted = TrustedProxies::new(["10.0.0.0/8".parse().unwrap()]);
        let mut walk = Walk::new(&trusted);
        assert_eq!(walk.step(Ok(ip("10.0.0.2"))), ControlFlow::Continue(()));
        walk.skip_trusted(3, Some(ip("10.0.0.9")));
        assert_eq!(
            walk.step(Err(MalformedKind::InvalidAddress)),
            ControlFlow::Break(Err(Unresolvable::MalformedElement {
                position: 4,
                kind: MalformedKind::InvalidAddress
            }))
        );

        let mut walk = Walk::new(&trusted);
        assert_eq!(walk.step(Ok(ip("10.0.0.2"))), ControlFlow::Continue(()));
        assert_eq!(
            walk.step(Ok(ip("192.0.2.1"))),
            ControlFlow::Break(Ok(ip("192.0.2.1")))
        );

        let mut walk = Walk::new(&trusted);
        walk.skip_trusted(0, None);
        assert_eq!(walk.finish(), None);

        let mut walk = Walk::new(&trusted);
        assert_eq!(walk.step(Ok(ip("10.0.0.2"))), ControlFlow::Continue(()));
        walk.skip_trusted(0, None);
        walk.skip_trusted(2, Some(ip("10.0.0.7")));
        assert_eq!(walk.finish(), Some(ip("10.0.0.7")));
    }
}
