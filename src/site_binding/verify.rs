//! [`Verifier`]: the loaded keys and claim rules, and the check of one token against them.
//!
//! Order of checks: shape and header, key selection by `kid`, `alg` equal to the key's,
//! signature (jsonwebtoken, signature and algorithm only), claim types, `iss`, `aud`, the
//! site claim, and last the clock. So [`Claim::Expired`] always means "a good token that
//! has run out", and the times are judged at the caller's `now`, never the system clock.

use jsonwebtoken::errors::ErrorKind;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::claim::{Claim, InvalidClaim};
use super::config::{Missing, SiteBindingConfig, TokenSource};
use super::keys::{self, KeyError, LoadedKey};
use super::token::read_header;

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: time::Duration = time::Duration::seconds(60);

/// Longest site id accepted from a token.
pub const MAX_SITE_LEN: usize = 64;

const LEEWAY_NANOS: i128 = LEEWAY.whole_nanoseconds();
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The claims of a token whose signature verified.
type Claims = Map<String, Value>;

/// Verifies site tokens. Immutable once built: share it behind an `Arc`.
#[derive(Debug)]
pub struct Verifier {
    source: TokenSource,
    missing: Missing,
    claim: String,
    issuer: Option<String>,
    audience: Option<String>,
    keys: Vec<LoadedKey>,
}

impl Verifier {
    /// Reads every key file. Errors name the key (`site_binding.key[1] (kid "…")`), the
    /// file and what is wrong; the key set itself (kids, file settings) is checked before
    /// any file is read.
    pub fn load(cfg: &SiteBindingConfig) -> Result<Verifier, KeyError> {
        keys::check_key_set(cfg)?;
        let material = cfg
            .keys
            .iter()
            .enumerate()
            .map(|(index, key)| keys::read_key_file(index, key))
            .collect::<Result<Vec<_>, _>>()?;
        Verifier::from_keys(cfg, material)
    }

    /// Builds from key file contents already in memory, one per configured key in order
    /// (for tests and benches): the same rules as [`Verifier::load`].
    pub fn from_keys(
        cfg: &SiteBindingConfig,
        material: Vec<Vec<u8>>,
    ) -> Result<Verifier, KeyError> {
        keys::check_key_set(cfg)?;
        if material.len() != cfg.keys.len() {
            return Err(KeyError::MaterialCount {
                keys: cfg.keys.len(),
                material: material.len(),
            });
        }
        let keys = cfg
            .keys
            .iter()
            .zip(&material)
            .enumerate()
            .map(|(index, (key, bytes))| keys::build_key(index, key, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier {
            source: cfg.source.clone(),
            missing: cfg.missing,
            claim: cfg.claim.clone(),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            keys,
        })
    }

    /// Verifies one token at `now`. Never returns [`Claim::Missing`] and never panics.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Claim {
        match self.check(token, now) {
            Ok(site) => Claim::Valid { site },
            Err(claim) => claim,
        }
    }

    /// Where requests carry the token.
    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// What a request without a token gets, unless its route says otherwise.
    pub fn missing(&self) -> Missing {
        self.missing
    }

    /// The name of the claim that holds the site id.
    pub fn claim_name(&self) -> &str {
        &self.claim
    }

    fn check(&self, token: &str, now: OffsetDateTime) -> Result<String, Claim> {
        let header = read_header(token).map_err(Claim::Invalid)?;
        let key = self
            .select_key(header.kid.as_deref())
            .map_err(Claim::Invalid)?;
        if header.alg != key.alg.as_str() {
            return Err(Claim::Invalid(InvalidClaim::AlgMismatch));
        }
        let claims = verify_signature(token, key).map_err(Claim::Invalid)?;
        let times = Times::read(&claims).map_err(Claim::Invalid)?;
        self.check_issuer(&claims).map_err(Claim::Invalid)?;
        self.check_audience(&claims).map_err(Claim::Invalid)?;
        let site = self.site(&claims).map_err(Claim::Invalid)?;
        times.check(now)?;
        Ok(site)
    }

    /// With one key, a token's `kid` must match the key's when both have one; with
    /// several, the token's `kid` is required and selects the key.
    fn select_key(&self, kid: Option<&str>) -> Result<&LoadedKey, InvalidClaim> {
        match (self.keys.as_slice(), kid) {
            ([only], None) => Ok(only),
            ([only], Some(kid)) => match only.kid.as_deref() {
                Some(own) if own != kid => Err(InvalidClaim::UnknownKid),
                _ => Ok(only),
            },
            (_, None) => Err(InvalidClaim::KidRequired),
            (keys, Some(kid)) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or(InvalidClaim::UnknownKid),
        }
    }

    fn check_issuer(&self, claims: &Claims) -> Result<(), InvalidClaim> {
        let Some(issuer) = &self.issuer else {
            return Ok(());
        };
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == issuer => Ok(()),
            _ => Err(InvalidClaim::WrongIssuer),
        }
    }

    fn check_audience(&self, claims: &Claims) -> Result<(), InvalidClaim> {
        let Some(audience) = &self.audience else {
            return Ok(());
        };
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if matches {
            Ok(())
        } else {
            Err(InvalidClaim::WrongAudience)
        }
    }

    /// The site id: a non-empty string of at most [`MAX_SITE_LEN`] printable ASCII
    /// characters without spaces, because it is forwarded in an upstream header.
    fn site(&self, claims: &Claims) -> Result<String, InvalidClaim> {
        match claims.get(&self.claim) {
            None | Some(Value::Null) => Err(InvalidClaim::NoSiteClaim),
            Some(Value::String(site)) if site.is_empty() => Err(InvalidClaim::NoSiteClaim),
            Some(Value::String(site)) if is_site_id(site) => Ok(site.clone()),
            Some(_) => Err(InvalidClaim::Malformed),
        }
    }
}

/// 1 to [`MAX_SITE_LEN`] bytes, each a visible ASCII character (no space, no control).
pub fn is_site_id(site: &str) -> bool {
    (1..=MAX_SITE_LEN).contains(&site.len()) && site.bytes().all(|b| b.is_ascii_graphic())
}

/// Signature and algorithm check by jsonwebtoken; the claims come back undecided.
fn verify_signature(token: &str, key: &LoadedKey) -> Result<Claims, InvalidClaim> {
    jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => InvalidClaim::BadSignature,
            ErrorKind::InvalidAlgorithm => InvalidClaim::AlgMismatch,
            _ => InvalidClaim::Malformed,
        })
}

/// `exp` (required) and `nbf` (optional), in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
struct Times {
    exp: i128,
    nbf: Option<i128>,
}

impl Times {
    fn read(claims: &Claims) -> Result<Times, InvalidClaim> {
        let exp = numeric_date(claims, "exp")?.ok_or(InvalidClaim::NoExp)?;
        let nbf = numeric_date(claims, "nbf")?;
        Ok(Times { exp, nbf })
    }

    /// Expired when `now > exp + 60 s`; not yet valid when `now < nbf - 60 s`.
    fn check(self, now: OffsetDateTime) -> Result<(), Claim> {
        let now = now.unix_timestamp_nanos();
        if now > self.exp.saturating_add(LEEWAY_NANOS) {
            return Err(Claim::Expired);
        }
        match self.nbf {
            Some(nbf) if now < nbf.saturating_sub(LEEWAY_NANOS) => {
                Err(Claim::Invalid(InvalidClaim::NotYetValid))
            }
            _ => Ok(()),
        }
    }
}

/// A NumericDate claim (seconds since the epoch, fractions allowed) in nanoseconds; `None`
/// when absent or null, `Malformed` when not a number.
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<i128>, InvalidClaim> {
    let number = match claims.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number,
        Some(_) => return Err(InvalidClaim::Malformed),
    };
    if let Some(seconds) = number.as_i64() {
        return Ok(Some(i128::from(seconds) * NANOS_PER_SECOND));
    }
    if let Some(seconds) = number.as_u64() {
        return Ok(Some(i128::from(seconds) * NANOS_PER_SECOND));
    }
    match number.as_f64() {
        // `as` saturates: a huge finite value becomes i128::MAX/MIN, far from any `now`.
        Some(seconds) if seconds.is_finite() => Ok(Some((seconds * 1e9) as i128)),
        _ => Err(InvalidClaim::Malformed),
    }
}
