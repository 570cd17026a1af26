//! The limits a compile applies (`[allowlist] max_prefix` in the config).

/// Limits applied while compiling (`[allowlist] max_prefix` in the config).
///
/// A range whose prefix is *shorter* (broader) than these is quarantined, so a
/// `0.0.0.0/0` or a provider's whole /8 can never open the gate. Values above
/// 32 / 128 are not rejected here (that is the config layer's job); they would
/// simply quarantine every range of that family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Broadest IPv4 prefix length accepted (default 16).
    pub max_prefix_v4: u8,
    /// Broadest IPv6 prefix length accepted (default 32).
    pub max_prefix_v6: u8,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            max_prefix_v4: 16,
            max_prefix_v6: 32,
        }
    }
}
