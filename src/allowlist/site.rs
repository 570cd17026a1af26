//! A site (a school location) and its index in a snapshot: the vocabulary shared by the
//! compiled snapshot and the entries that refer to sites (exceptions).

use serde::Serialize;

/// Index of a site in [`Snapshot::sites`].
pub type SiteIdx = u32;

/// An accepted site (a school location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    /// Admin store id, e.g. BRIN + location code `12AB00`.
    pub id: String,
    pub name: Option<String>,
}
