//! Site binding (own school): the signed claim that says which school a pupil logged in
//! through, so a test starts only from that school's registered location.
//!
//! The test application issues a JWT in one configured cookie or header (DESIGN.md,
//! "Site binding"). This module finds it ([`extract`]) and judges it ([`Verifier::verify`])
//! into a [`Claim`]; what a claim means for the request is the decision's business.
//!
//! Pure: no Pingora types, and no IO except reading the key files in [`Verifier::load`].
//! Time comes from the caller, so `explain --at` and tests judge tokens at any moment.
//! Files, one job each:
//! - `config`: the validated settings ([`SiteBindingConfig`], [`KeyConfig`], [`Alg`], …).
//! - `keys`: key files into verification keys; [`KeyError`].
//! - `token`: the token's shape and protected header (`alg`, `kid`).
//! - `verify`: [`Verifier`]: key selection, signature, claims, clock.
//! - `claim`: the outcome, [`Claim`] and [`InvalidClaim`].
//! - `extract`: the token from the request headers.

mod claim;
mod config;
mod extract;
mod keys;
mod token;
mod verify;

pub use claim::{Claim, InvalidClaim};
pub use config::{
    Alg, KeyConfig, KeyFile, Missing, ParseAlgError, ParseMissingError, SiteBindingConfig,
    TokenSource,
};
pub use extract::extract;
pub use keys::{strip_one_newline, KeyError, KeyName, MAX_KEY_FILE_LEN, MIN_SECRET_LEN};
pub use token::MAX_TOKEN_LEN;
pub use verify::{is_site_id, Verifier, LEEWAY, MAX_SITE_LEN};

#[cfg(test)]
mod tests;
