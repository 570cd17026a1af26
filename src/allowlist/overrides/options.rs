//! The limits an overrides compile applies (`[allowlist] max_override_days`,
//! `max_prefix`).

use super::super::options::CompileOptions;

/// Default for [`OverrideOptions::max_days`] (`[allowlist] max_override_days`).
pub const DEFAULT_MAX_DAYS: u32 = 14;

/// Limits applied while compiling the overrides file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideOptions {
    /// Longest time an entry may run: `expires` at most this many days after
    /// the load moment (exactly that is accepted). 0 accepts only entries
    /// already expired, so the config layer should refuse it.
    pub max_days: u32,
    /// The allowlist's range limits (`max_prefix`), applied to every entry.
    pub compile: CompileOptions,
}

impl Default for OverrideOptions {
    fn default() -> Self {
        OverrideOptions {
            max_days: DEFAULT_MAX_DAYS,
            compile: CompileOptions::default(),
        }
    }
}
