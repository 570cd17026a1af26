//! The allowlist: turns the admin store's JSON document into an immutable
//! [`Snapshot`] that answers "which registered sites contain this address?".
//!
//! The path is `document` (is this the right shape at all?) → `compile` (judge
//! every site, with `range` and `exception` judging the entries and
//! `quarantine` recording what was skipped) → `table` (sorted, disjoint
//! segments for the per-request lookup) → `snapshot` (the immutable result and
//! its questions). `overrides`
//! compiles the local emergency overrides file by the same rules. Nothing here
//! does IO or knows about Pingora: the sync loop hands us bytes and swaps in
//! what we return, the request path calls [`Snapshot::sites_for`].
//!
//! Two kinds of failure, on purpose:
//! - a [`DocumentError`] rejects the whole update, so the last good snapshot
//!   stays in force (an empty or mangled answer must not block every school);
//! - an entry-level problem only skips that entry and is recorded as a
//!   [`Quarantined`] inside the snapshot, so one typo does not block the other
//!   schools either.

mod compile;
mod document;
mod exception;
mod options;
pub mod overrides;
mod quarantine;
mod range;
mod site;
mod snapshot;
mod table;

/// Deterministic test documents, shared with the benches and integration
/// tests; in the unit tests only, not in the library.
#[cfg(test)]
#[path = "../../benches/support/synth.rs"]
pub(crate) mod synth;
#[cfg(test)]
mod synth_tests;

pub use document::DocumentError;
pub use exception::Exception;
pub use options::CompileOptions;
pub use overrides::{
    compile_overrides, OverrideAction, OverrideEntry, OverrideOptions, OverrideProblem,
    OverrideProblemKind, Overrides, OverridesError,
};
pub use quarantine::{QuarantineKind, Quarantined};
pub use site::{Site, SiteIdx};
pub use snapshot::Snapshot;

/// Parse, validate and compile an allowlist document in one go.
///
/// Document-level problems (not JSON, wrong shape) are an `Err`; entry-level
/// problems are quarantined inside the returned snapshot (see
/// [`Snapshot::quarantined`]). Never panics, whatever the bytes.
pub fn compile(bytes: &[u8], opts: &CompileOptions) -> Result<Snapshot, DocumentError> {
    let raw = document::parse_document(bytes)?;
    compile::compile_document(raw, opts)
}
