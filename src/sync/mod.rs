//! Allowlist sync building blocks: everything between "the admin store has a
//! document" and "compile() gets bytes", and what is kept afterwards.
//!
//! The background path reads: [`token`] (the bearer secret, from a file or
//! the environment) → [`http`] (one conditional GET with timeouts and a size
//! limit; failures paced by [`backoff`]) → `allowlist::compile` (not here) →
//! [`guard`] (refuse a sudden shrink) → [`persist`] (last-known-good, written
//! atomically) → swap (not here) → [`diff`] + [`history`] (what changed, for
//! `/status` and support).
//!
//! Nothing here owns a loop, a timer or a metric: the sync service wires these
//! blocks together, so each one can be tested on its own against real files
//! and real sockets.

pub mod backoff;
pub mod diff;
mod error;
mod fetch_error;
pub mod guard;
pub mod history;
pub mod http;
pub mod persist;
pub mod token;

pub use backoff::{jittered, random_seed, Backoff};
pub use diff::{diff, ChangeTotals, SiteChange, SnapshotChange};
pub use error::SourceError;
pub use fetch_error::FetchError;
pub use guard::{check_shrink, ShrinkRefused};
pub use history::{History, HistoryEntry};
pub use http::{Fetched, HttpSource, HttpSourceConfig};
pub use persist::{read_last_good, write_atomic};
pub use token::TokenSource;
