//! Turning `[[site_binding.key]]` entries and their files into verification keys, with
//! errors that name the key, the file and what is wrong with it.
//!
//! Rules (DESIGN.md, "Site binding"): HS256 reads raw bytes from `secret_file` (exactly one
//! trailing newline stripped, at least [`MIN_SECRET_LEN`] bytes); ES256 reads one PEM SPKI
//! P-256 public key from `public_key_file`. With several keys every key has a unique `kid`.

use std::fmt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{DecodingKey, Validation};

use super::config::{Alg, KeyConfig, KeyFile, SiteBindingConfig};
use crate::secret::{self, SecretError};

/// The secret in a `secret_file` is its bytes minus exactly one trailing `\n` or `\r\n`.
pub use crate::secret::strip_one_newline;

/// Shortest HS256 secret accepted: 32 bytes, the size of the HMAC-SHA256 output. A shorter
/// secret is within reach of an offline guessing attack on one captured token.
pub const MIN_SECRET_LEN: usize = 32;

/// Largest key file read; anything bigger is a wrong path (a log, a device), not a key.
pub const MAX_KEY_FILE_LEN: u64 = secret::MAX_FILE_LEN;

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point: SEQUENCE {
/// SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes, no unused bits) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of an uncompressed P-256 point: 0x04, X (32 bytes), Y (32 bytes).
const P256_POINT_LEN: usize = 65;

/// OIDs (content bytes) recognised only to explain what a wrong key file holds.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Which key an error is about: its position in `[[site_binding.key]]` and its `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName {
    /// Zero-based position in the configuration.
    pub index: usize,
    /// The key's `kid`, when it has one.
    pub kid: Option<String>,
}

impl KeyName {
    fn of(index: usize, key: &KeyConfig) -> KeyName {
        KeyName {
            index,
            kid: key.kid.clone(),
        }
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "site_binding.key[{}]", self.index)?;
        match &self.kid {
            Some(kid) => write!(f, " (kid {kid:?})"),
            None => Ok(()),
        }
    }
}

/// A key that cannot be used. The message names the key, the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `[site_binding]` without any key.
    #[error("site_binding.key: at least one key is required")]
    NoKeys,
    /// The key file setting does not fit the algorithm.
    #[error("{key}: alg \"{alg}\" needs {}, got {} {path:?}", alg.file_setting(), file.setting(), path = file.path())]
    FileForAlg {
        /// The key.
        key: KeyName,
        /// Its algorithm.
        alg: Alg,
        /// The file setting it has.
        file: KeyFile,
    },
    /// Several keys and this one has no `kid`.
    #[error("{key}: kid is required when there are {count} keys (it selects the key)")]
    MissingKid {
        /// The key.
        key: KeyName,
        /// How many keys are configured.
        count: usize,
    },
    /// An empty `kid`.
    #[error("{key}: kid \"\" is empty")]
    EmptyKid {
        /// The key.
        key: KeyName,
    },
    /// Two keys share a `kid`.
    #[error("{key}: kid {kid:?} is already used by site_binding.key[{first}]")]
    DuplicateKid {
        /// The later key.
        key: KeyName,
        /// The repeated kid.
        kid: String,
        /// Position of the first key with this kid.
        first: usize,
    },
    /// The key file could not be read.
    #[error("{key}: {setting} {path:?}: cannot read: {source}")]
    Read {
        /// The key.
        key: KeyName,
        /// `secret_file` or `public_key_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file is implausibly large.
    #[error("{key}: {setting} {path:?}: larger than {MAX_KEY_FILE_LEN} bytes, not a key file")]
    TooLarge {
        /// The key.
        key: KeyName,
        /// `secret_file` or `public_key_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The secret is empty (after stripping one trailing newline).
    #[error("{key}: secret_file {path:?}: the secret is empty")]
    EmptySecret {
        /// The key.
        key: KeyName,
        /// The file.
        path: PathBuf,
    },
    /// The secret is too short to resist guessing.
    #[error("{key}: secret_file {path:?}: the secret has {len} bytes, at least {MIN_SECRET_LEN} are required for HS256")]
    ShortSecret {
        /// The key.
        key: KeyName,
        /// The file.
        path: PathBuf,
        /// Its length in bytes (after stripping one trailing newline).
        len: usize,
    },
    /// The public key file is not one PEM `PUBLIC KEY` block.
    #[error("{key}: public_key_file {path:?}: {problem}")]
    NotPem {
        /// The key.
        key: KeyName,
        /// The file.
        path: PathBuf,
        /// What the file holds instead.
        problem: String,
    },
    /// The PEM public key is not a P-256 key in SPKI form.
    #[error("{key}: public_key_file {path:?}: {found}, expected a P-256 (prime256v1) public key for ES256")]
    NotP256 {
        /// The key.
        key: KeyName,
        /// The file.
        path: PathBuf,
        /// What kind of key it is.
        found: &'static str,
    },
    /// `from_keys` got a different number of key materials than there are keys.
    #[error("site_binding.key: {keys} keys configured but {material} key materials given")]
    MaterialCount {
        /// Configured keys.
        keys: usize,
        /// Materials passed.
        material: usize,
    },
}

/// One usable key: what selects it, what it accepts and how to verify with it.
#[derive(Clone)]
pub(super) struct LoadedKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Alg,
    pub(super) decoding: DecodingKey,
    /// Signature and algorithm only: every claim check, the clock included, is ours.
    pub(super) validation: Validation,
}

impl fmt::Debug for LoadedKey {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Checks what can be checked without the files: at least one key, the file setting fits
/// the algorithm, and with several keys every `kid` present, non-empty and unique.
pub(super) fn check_key_set(cfg: &SiteBindingConfig) -> Result<(), KeyError> {
    if cfg.keys.is_empty() {
        return Err(KeyError::NoKeys);
    }
    let count = cfg.keys.len();
    for (index, key) in cfg.keys.iter().enumerate() {
        check_file_for_alg(index, key)?;
        check_kid(index, key, &cfg.keys[..index], count)?;
    }
    Ok(())
}

fn check_file_for_alg(index: usize, key: &KeyConfig) -> Result<(), KeyError> {
    match (key.alg, &key.file) {
        (Alg::Hs256, KeyFile::Secret(_)) | (Alg::Es256, KeyFile::PublicKey(_)) => Ok(()),
        _ => Err(KeyError::FileForAlg {
            key: KeyName::of(index, key),
            alg: key.alg,
            file: key.file.clone(),
        }),
    }
}

fn check_kid(
    index: usize,
    key: &KeyConfig,
    earlier: &[KeyConfig],
    count: usize,
) -> Result<(), KeyError> {
    let Some(kid) = &key.kid else {
        return match count {
            1 => Ok(()),
            _ => Err(KeyError::MissingKid {
                key: KeyName::of(index, key),
                count,
            }),
        };
    };
    if kid.is_empty() {
        return Err(KeyError::EmptyKid {
            key: KeyName::of(index, key),
        });
    }
    match earlier.iter().position(|k| k.kid.as_ref() == Some(kid)) {
        Some(first) => Err(KeyError::DuplicateKid {
            key: KeyName::of(index, key),
            kid: kid.clone(),
            first,
        }),
        None => Ok(()),
    }
}

/// Reads one key file as it is (a secret's line ending is stripped by [`build_key`], so
/// material given to [`super::Verifier::from_keys`] follows the same rule), refusing
/// anything larger than [`MAX_KEY_FILE_LEN`].
pub(super) fn read_key_file(index: usize, key: &KeyConfig) -> Result<Vec<u8>, KeyError> {
    let path = key.file.path();
    secret::read_bounded(path).map_err(|e| match e {
        SecretError::Read(source) => KeyError::Read {
            key: KeyName::of(index, key),
            setting: key.file.setting(),
            path: path.to_owned(),
            source,
        },
        // The only other failure of a bounded read.
        _ => KeyError::TooLarge {
            key: KeyName::of(index, key),
            setting: key.file.setting(),
            path: path.to_owned(),
        },
    })
}

/// Builds the verification key for `key` from its file's bytes.
pub(super) fn build_key(
    index: usize,
    key: &KeyConfig,
    material: &[u8],
) -> Result<LoadedKey, KeyError> {
    let name = || KeyName::of(index, key);
    let path = key.file.path();
    let decoding = match key.alg {
        Alg::Hs256 => DecodingKey::from_secret(hs256_secret(material, name, path)?),
        Alg::Es256 => DecodingKey::from_ec_der(&p256_point(material, name, path)?),
    };
    Ok(LoadedKey {
        kid: key.kid.clone(),
        alg: key.alg,
        decoding,
        validation: signature_only_validation(key.alg),
    })
}

fn hs256_secret<'a>(
    material: &'a [u8],
    name: impl Fn() -> KeyName,
    path: &Path,
) -> Result<&'a [u8], KeyError> {
    let secret = secret::parse(material).map_err(|_| KeyError::EmptySecret {
        key: name(),
        path: path.to_owned(),
    })?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(KeyError::ShortSecret {
            key: name(),
            path: path.to_owned(),
            len: secret.len(),
        });
    }
    Ok(secret)
}

/// The uncompressed point of the one P-256 SPKI key in a PEM file, as ring verifies with it.
fn p256_point(
    material: &[u8],
    name: impl Fn() -> KeyName,
    path: &Path,
) -> Result<Vec<u8>, KeyError> {
    let not_pem = |problem: String| KeyError::NotPem {
        key: name(),
        path: path.to_owned(),
        problem,
    };
    let blocks =
        pem::parse_many(material).map_err(|e| not_pem(format!("not a readable PEM file ({e})")))?;
    let block = match blocks.as_slice() {
        [one] => one,
        [] => {
            return Err(not_pem(
                "no PEM block (expected -----BEGIN PUBLIC KEY-----)".into(),
            ))
        }
        more => return Err(not_pem(format!("{} PEM blocks, expected one", more.len()))),
    };
    if block.tag() != "PUBLIC KEY" {
        return Err(not_pem(format!(
            "PEM block {:?}, expected \"PUBLIC KEY\" (an SPKI public key)",
            block.tag()
        )));
    }
    let der = block.contents();
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == P256_POINT_LEN && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err(KeyError::NotP256 {
            key: name(),
            path: path.to_owned(),
            found: describe_spki(der),
        }),
    }
}

/// A short description of a public key that is not an uncompressed P-256 SPKI key.
fn describe_spki(der: &[u8]) -> &'static str {
    let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    if has(OID_EC_PUBLIC_KEY) && has(OID_P256) {
        "a P-256 key in an unsupported encoding (expected an uncompressed point)"
    } else if has(OID_EC_PUBLIC_KEY) {
        "an EC key on another curve"
    } else if has(OID_RSA) {
        "an RSA key"
    } else if has(OID_ED25519) {
        "an Ed25519 key"
    } else {
        "not a recognised public key"
    }
}

/// jsonwebtoken's checks reduced to the signature and the algorithm: no required claims,
/// no `exp`/`nbf` against the system clock, no `aud` rejection. The verifier checks the
/// claims itself against the caller's clock.
fn signature_only_validation(alg: Alg) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}
