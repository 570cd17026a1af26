//! Errors found while setting a source up (URL, CA file, token), before any
//! request is sent. They are configuration mistakes: each names the URL, file
//! or variable and what is wrong with it, and never the secret itself.

use std::path::PathBuf;

/// A source that cannot be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Not a URL we can use (unparsable, wrong scheme, credentials inside).
    #[error("allowlist source {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// Plain `http://` to a host that is not loopback: the allowlist decides
    /// who may take a test, so it must not travel unauthenticated.
    #[error(
        "allowlist source {url:?}: plain http:// is allowed only to a loopback host \
         (127.0.0.0/8, ::1, localhost); use https://"
    )]
    InsecureUrl { url: String },

    /// A numeric setting that would make every fetch fail.
    #[error("allowlist source {url:?}: {setting} {reason}")]
    InvalidSetting {
        url: String,
        setting: &'static str,
        reason: String,
    },

    /// The configured CA file cannot be read or holds no usable certificate.
    #[error("CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },

    /// The token file cannot be read, is empty or holds a bad token.
    #[error("token file {}: {reason}", path.display())]
    TokenFile { path: PathBuf, reason: String },

    /// The token variable is unset, empty or holds a bad token.
    #[error("token environment variable {var}: {reason}")]
    TokenEnv { var: String, reason: String },

    /// The bearer token given to the HTTP source cannot be sent in a header.
    /// The value is deliberately not shown.
    #[error("allowlist source {url:?}: the bearer token {reason}")]
    InvalidToken { url: String, reason: String },

    /// The HTTP client could not be built (TLS setup).
    #[error("allowlist source {url:?}: cannot set up the HTTP client: {reason}")]
    Client { url: String, reason: String },
}
