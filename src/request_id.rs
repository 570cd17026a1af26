//! Request ids: short, unique enough across replicas, and cheap (no allocation, no lock).
//!
//! The id is what a pupil reads out to support from the block page and what support then
//! finds in the logs, so it is 16 lower-case hex characters: easy to read aloud and to grep.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// A request id, kept inline so the per-request context does not allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 16]);

thread_local! {
    // Seeded from the OS-randomised hasher keys, so two processes (replicas) differ.
    static STATE: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
}

/// splitmix64: a statistically good 64-bit sequence from a counter.
fn splitmix64(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl RequestId {
    /// A fresh id.
    pub fn new() -> RequestId {
        RequestId::from_u64(STATE.with(splitmix64))
    }

    pub fn from_u64(n: u64) -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = HEX[((n >> (60 - 4 * i)) & 0xF) as usize];
        }
        RequestId(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn formats_as_16_hex_digits() {
        assert_eq!(RequestId::from_u64(0).as_str(), "0000000000000000");
        assert_eq!(
            RequestId::from_u64(0xdead_beef_0123_4567).as_str(),
            "deadbeef01234567"
        );
        assert_eq!(RequestId::from_u64(u64::MAX).as_str(), "ffffffffffffffff");
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: HashSet<_> = (0..10_000).map(|_| RequestId::new()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
