//! The validated site-binding settings the configuration layer hands over: where the token
//! is, which claim names the site, what a request without a token gets, and the keys.

use crate::setting::SettingError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A signature algorithm a key may be configured for. Nothing else is ever accepted,
/// `none` least of all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// HMAC with SHA-256 over a shared secret (`secret_file`).
    Hs256,
    /// ECDSA on P-256 with SHA-256, verified with a public key (`public_key_file`).
    Es256,
}

impl Alg {
    /// The JOSE name, as written in the configuration and in a token's `alg` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Es256 => "ES256",
        }
    }

    /// The key file setting this algorithm needs.
    pub fn file_setting(self) -> &'static str {
        match self {
            Alg::Hs256 => "secret_file",
            Alg::Es256 => "public_key_file",
        }
    }

    pub(super) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::Hs256 => jsonwebtoken::Algorithm::HS256,
            Alg::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `alg` value that is not `HS256` or `ES256` (names are case-sensitive, as in JOSE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported alg {0:?}: expected \"HS256\" or \"ES256\"")]
pub struct ParseAlgError(pub String);

impl FromStr for Alg {
    type Err = ParseAlgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HS256" => Ok(Alg::Hs256),
            "ES256" => Ok(Alg::Es256),
            other => Err(ParseAlgError(other.to_owned())),
        }
    }
}

/// Where a key's material is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFile {
    /// `secret_file`: raw key bytes for HS256; one trailing newline is stripped.
    Secret(PathBuf),
    /// `public_key_file`: a PEM SPKI public key (`-----BEGIN PUBLIC KEY-----`) for ES256.
    PublicKey(PathBuf),
}

impl KeyFile {
    /// The configured path.
    pub fn path(&self) -> &Path {
        match self {
            KeyFile::Secret(path) | KeyFile::PublicKey(path) => path,
        }
    }

    /// The configuration key that named the file.
    pub fn setting(&self) -> &'static str {
        match self {
            KeyFile::Secret(_) => "secret_file",
            KeyFile::PublicKey(_) => "public_key_file",
        }
    }
}

/// One `[[site_binding.key]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyConfig {
    /// Key id; required (and unique) when there are several keys.
    pub kid: Option<String>,
    /// The only algorithm a token verified with this key may use.
    pub alg: Alg,
    /// The key material.
    pub file: KeyFile,
}

impl KeyConfig {
    /// Checks `[[site_binding.key]]` number `index` as written: the algorithm, and the one
    /// key file setting it uses. The file is read later, by [`super::Verifier::load`].
    pub fn from_settings(
        index: usize,
        kid: Option<&str>,
        alg: &str,
        secret_file: Option<&str>,
        public_key_file: Option<&str>,
    ) -> Result<KeyConfig, SettingError> {
        let key = |f: &str| format!("site_binding.key[{index}].{f}");
        let alg: Alg = alg.parse().map_err(|_| {
            SettingError::invalid(
                &key("alg"),
                format!("{alg:?}"),
                "expected \"HS256\" or \"ES256\"",
            )
        })?;
        let file = match (alg, secret_file, public_key_file) {
            (Alg::Hs256, Some(f), None) => KeyFile::Secret(PathBuf::from(f)),
            (Alg::Es256, None, Some(f)) => KeyFile::PublicKey(PathBuf::from(f)),
            (Alg::Hs256, _, Some(f)) => {
                return Err(SettingError::invalid(
                    &key("public_key_file"),
                    format!("{f:?}"),
                    "HS256 uses a shared secret: set secret_file instead",
                ))
            }
            (Alg::Es256, Some(f), _) => {
                return Err(SettingError::invalid(
                    &key("secret_file"),
                    format!("{f:?}"),
                    "ES256 uses a PEM public key: set public_key_file instead",
                ))
            }
            (_, None, None) => {
                return Err(SettingError::missing(
                    &key(alg.file_setting()),
                    format!("a {} key needs its key material from a file", alg.as_str()),
                ))
            }
        };
        Ok(KeyConfig {
            kid: kid.map(str::to_owned),
            alg,
            file,
        })
    }
}

/// Where the request carries the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// A cookie with this name (case-sensitive, as cookie names are).
    Cookie(String),
    /// A request header; an `Authorization`-style `Bearer ` prefix is accepted.
    Header(http::HeaderName),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Cookie(name) => write!(f, "cookie {name}"),
            TokenSource::Header(name) => write!(f, "header {name}"),
        }
    }
}

impl TokenSource {
    /// Checks `site_binding.cookie` and `site_binding.header`: exactly one, with a name
    /// that cannot be confused with a header the gate or HTTP itself gives a meaning.
    pub fn from_settings(
        cookie: Option<&str>,
        header: Option<&str>,
    ) -> Result<TokenSource, SettingError> {
        match (cookie, header) {
            (Some(c), None) => {
                if c.is_empty()
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
                {
                    return Err(SettingError::invalid(
                        "site_binding.cookie",
                        format!("{c:?}"),
                        "expected a cookie name such as \"afname_site\"",
                    ));
                }
                Ok(TokenSource::Cookie(c.to_owned()))
            }
            (None, Some(h)) => {
                let name = http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    SettingError::invalid(
                        "site_binding.header",
                        format!("{h:?}"),
                        "not a valid HTTP header name",
                    )
                })?;
                if crate::forwarding::is_gate_owned(name.as_str(), "x-forwarded-for")
                    || name == http::header::HOST
                {
                    return Err(SettingError::invalid(
                        "site_binding.header",
                        format!("{h:?}"),
                        "this header has another meaning; use e.g. \"x-afname-site\"",
                    ));
                }
                Ok(TokenSource::Header(name))
            }
            (Some(_), Some(h)) => Err(SettingError::invalid(
                "site_binding.header",
                format!("{h:?}"),
                "set either site_binding.cookie or site_binding.header, not both",
            )),
            (None, None) => Err(SettingError::missing(
                "site_binding.cookie",
                "site binding needs the cookie (or header) that carries the site claim",
            )),
        }
    }
}

/// What a request without a token gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Missing {
    /// Blocked with `claim_missing` (the default).
    #[default]
    Block,
    /// Judged like a request without site binding: any registered location will do.
    /// Meant for routes before login.
    AnySite,
}

impl Missing {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Block => "block",
            Missing::AnySite => "any-site",
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Missing {
    /// A `missing` setting (of `[site_binding]` or a route) named `key`.
    pub fn from_setting(key: &str, s: &str) -> Result<Missing, SettingError> {
        s.parse().map_err(|_| {
            SettingError::invalid(
                key,
                format!("{s:?}"),
                "expected \"block\" or \"any-site\" (for pages before login)",
            )
        })
    }
}

/// A `missing` value other than `block` or `any-site`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown missing {0:?}: expected \"block\" or \"any-site\"")]
pub struct ParseMissingError(pub String);

impl FromStr for Missing {
    type Err = ParseMissingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "block" => Ok(Missing::Block),
            "any-site" => Ok(Missing::AnySite),
            other => Err(ParseMissingError(other.to_owned())),
        }
    }
}

/// The `[site_binding]` section, validated by the configuration layer (defaults applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteBindingConfig {
    /// Where the token is.
    pub source: TokenSource,
    /// Name of the claim that holds the site id (`site` by default).
    pub claim: String,
    /// What a request without a token gets, unless its route says otherwise.
    pub missing: Missing,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud` (a string, or one member of an array), when set.
    pub audience: Option<String>,
    /// The verification keys, in configuration order.
    pub keys: Vec<KeyConfig>,
}
