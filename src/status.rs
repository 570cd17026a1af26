//! What the gate remembers about its own state for `/status`: plain data, written by the
//! allowlist lifecycle and the local-file reloads, read by the admin listener.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How many sync attempts `/status` keeps.
pub const ATTEMPTS: usize = 20;

/// Where the snapshot in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Source,
    LastGood,
}

/// One sync attempt, as `/status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// ok, not_modified, http_error, timeout, invalid, shrink_refused, read_error
    pub result: &'static str,
    pub trigger: &'static str,
    pub duration_ms: f64,
    pub error: Option<String>,
}

/// What `/status` says about the allowlist beyond the snapshot itself.
#[derive(Default)]
pub struct SyncStatus {
    pub origin: Option<Origin>,
    /// Hash of the document in force, so an unchanged document is not swapped again.
    pub accepted_hash: Option<u64>,
    pub etag: Option<String>,
    pub loaded_at: Option<OffsetDateTime>,
    pub loaded_instant: Option<Instant>,
    pub load_duration: Option<Duration>,
    pub last_success: Option<OffsetDateTime>,
    pub last_error: Option<Attempt>,
    /// An update held back by the shrink guard, waiting for an operator.
    pub shrink_refused: Option<String>,
    pub attempts: VecDeque<Attempt>,
    pub history: crate::sync::history::History,
    /// Config changes that only take effect after a restart.
    pub restart_required: Vec<String>,
    pub last_config_reload: Option<serde_json::Value>,
}

/// What `/status` says about the site-claim keys in force.
#[derive(Default)]
pub struct KeysStatus {
    /// The `kid`s (or key positions) of the keys in force.
    pub in_force: Vec<String>,
    pub loaded_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
}

/// What `/status` says about the TLS certificates beyond the set in force.
#[derive(Default)]
pub struct TlsStatus {
    pub loaded_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
}

/// What `/status` says about the local overrides file.
#[derive(Default)]
pub struct OverridesStatus {
    pub loaded_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
}
