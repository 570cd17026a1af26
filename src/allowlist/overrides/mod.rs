//! Emergency overrides: a small local JSON file of `allow` and `deny` rules,
//! each with a reason and a required expiry, compiled into an immutable
//! [`Overrides`] that answers "which override applies to this address now?".
//!
//! The path mirrors the allowlist's: `file` (is this the right shape at all?)
//! → `entry` (judge every entry, recording a [`OverrideProblem`] for each one
//! skipped) → [`Overrides`] (the immutable result and its questions). No IO:
//! the caller hands in bytes and the load moment. Precedence between an
//! override and the allowlist is not decided here but in the decision.
//!
//! Choices, so that they are made once:
//! - **One range rule set for both actions.** A deny goes through the same
//!   `parse_range` as an allow, `max_prefix` included. A broad deny would be
//!   safe (fail-closed), but a mistyped `198.51.100.0/2` or a `0.0.0.0/0`
//!   would block every school on an exam morning, which is what `max_prefix`
//!   and `max_shrink` exist to prevent; and one rule set is one thing for an
//!   operator to learn. Denying more than `max_prefix` allows takes several
//!   entries.
//! - **An entry already expired at load is kept, not quarantined.** It is
//!   listed with `active: false` and counted by [`Overrides::expired_count`].
//!   A file that was fine yesterday is not broken today just because one of
//!   its emergencies is over, and `/status` shows the same thing whether the
//!   file was loaded before or after that moment. Only the cap
//!   (`max_days` after the load moment) is judged at load.
//! - **`site` on a deny is informational only**; it is checked like any site.
//! - Each skipped entry is recorded once, with its first problem, in the
//!   order `action`, `range`, `site`, `reason`, `expires`.

mod entry;
mod file;
mod options;
mod problem;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::OffsetDateTime;

pub use entry::{OverrideAction, OverrideEntry};
pub use file::OverridesError;
pub use options::{OverrideOptions, DEFAULT_MAX_DAYS};
pub use problem::{OverrideProblem, OverrideProblemKind};

/// Parse, validate and compile an overrides file loaded at `now`.
///
/// File-level problems (not JSON, wrong shape) are an `Err`, and the caller
/// keeps its last good [`Overrides`]; entry-level problems are recorded inside
/// the result (see [`Overrides::quarantined`]). Never panics, whatever the
/// bytes.
pub fn compile_overrides(
    bytes: &[u8],
    opts: &OverrideOptions,
    now: OffsetDateTime,
) -> Result<Overrides, OverridesError> {
    let raw = file::parse_file(bytes)?;
    let mut unknown = BTreeMap::new();
    for name in &raw.unknown_fields {
        *unknown.entry(format!("(top).{name}")).or_insert(0) += 1;
    }
    let rules = entry::Rules { opts, now };
    let mut entries = Vec::new();
    let mut quarantined = Vec::new();
    for (index, value) in raw.entries.iter().enumerate() {
        match entry::parse_entry(value, index, &rules, &mut unknown) {
            Ok(e) => entries.push(e),
            Err(p) => quarantined.push(p),
        }
    }
    Ok(Overrides {
        entries,
        quarantined,
        unknown_fields: unknown.into_iter().collect(),
    })
}

/// Compiled overrides. Immutable once built, `Send + Sync`; the default is
/// the empty set (no file, or none loaded yet). Lookups scan the entries
/// (a file holds tens of them) and never allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    entries: Vec<OverrideEntry>,
    quarantined: Vec<OverrideProblem>,
    unknown_fields: Vec<(String, u64)>,
}

impl Overrides {
    /// No overrides at all.
    pub fn empty() -> Overrides {
        Overrides::default()
    }

    /// The first deny entry (in file order) covering `ip` that has not
    /// expired at `at` (expires is exclusive: valid while `at < expires`).
    ///
    /// An IPv4-mapped IPv6 address is looked up as the IPv4 address, as the
    /// allowlist does.
    pub fn deny_for(&self, ip: IpAddr, at: OffsetDateTime) -> Option<&OverrideEntry> {
        let ip = ip.to_canonical();
        self.entries
            .iter()
            .find(|e| e.action == OverrideAction::Deny && e.is_active_at(at) && e.covers(ip))
    }

    /// Allow entries covering `ip` that have not expired at `at`, in file
    /// order (overlapping entries are all returned).
    pub fn allows_for(
        &self,
        ip: IpAddr,
        at: OffsetDateTime,
    ) -> impl Iterator<Item = &OverrideEntry> + '_ {
        let ip = ip.to_canonical();
        self.entries.iter().filter(move |e| {
            e.action == OverrideAction::Allow && e.is_active_at(at) && e.covers(ip)
        })
    }

    /// Every accepted entry covering `ip`, expired or not, in file order (for `explain`:
    /// support sees an expired entry too, and its reason).
    pub fn covering(&self, ip: IpAddr) -> impl Iterator<Item = &OverrideEntry> + '_ {
        let ip = ip.to_canonical();
        self.entries.iter().filter(move |e| e.covers(ip))
    }

    /// Accepted entries, in file order, expired ones included.
    pub fn entries(&self) -> &[OverrideEntry] {
        &self.entries
    }

    /// Entries skipped while compiling, in file order.
    pub fn quarantined(&self) -> &[OverrideProblem] {
        &self.quarantined
    }

    /// Unknown fields seen, by path (`(top).comment`, `entries[].ticket`)
    /// with how often each occurred, sorted by path.
    pub fn unknown_fields(&self) -> &[(String, u64)] {
        &self.unknown_fields
    }

    /// No accepted entries (quarantined ones do not count).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Accepted entries still in force at `at`.
    pub fn active_count(&self, at: OffsetDateTime) -> usize {
        self.entries.iter().filter(|e| e.is_active_at(at)).count()
    }

    /// Accepted entries no longer in force at `at`.
    pub fn expired_count(&self, at: OffsetDateTime) -> usize {
        self.entries.len() - self.active_count(at)
    }
}
