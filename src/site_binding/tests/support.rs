//! Keys, configurations and token builders shared by the site-binding tests.

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::site_binding::{
    Alg, KeyConfig, KeyFile, Missing, SiteBindingConfig, TokenSource, Verifier,
};

/// The moment tokens are judged at, unless a test says otherwise.
pub const NOW: OffsetDateTime = datetime!(2026-12-01 09:00 UTC);

/// A 40-byte HS256 secret.
pub const SECRET: &[u8] = b"s3cret-for-site-binding-tests-0123456789";
/// Another valid secret.
pub const OTHER_SECRET: &[u8] = b"another-secret-for-site-binding-0123456789";

pub const SITE: &str = "12AB00";

/// A P-256 key pair: PKCS#8 DER to sign with, SPKI PEM to verify with.
pub struct EsKey {
    pub pkcs8: Vec<u8>,
    pub public_pem: String,
}

fn generate(alg: &'static rcgen::SignatureAlgorithm) -> EsKey {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    EsKey {
        pkcs8: pair.serialize_der(),
        public_pem: pair.public_key_pem(),
    }
}

/// A P-256 key pair, generated once per test run.
pub fn es_a() -> &'static EsKey {
    static KEY: OnceLock<EsKey> = OnceLock::new();
    KEY.get_or_init(|| generate(&rcgen::PKCS_ECDSA_P256_SHA256))
}

/// A second, unrelated P-256 key pair.
pub fn es_b() -> &'static EsKey {
    static KEY: OnceLock<EsKey> = OnceLock::new();
    KEY.get_or_init(|| generate(&rcgen::PKCS_ECDSA_P256_SHA256))
}

/// A P-384 key pair (the wrong curve for ES256).
pub fn p384() -> EsKey {
    generate(&rcgen::PKCS_ECDSA_P384_SHA384)
}

/// An Ed25519 key pair.
pub fn ed25519() -> EsKey {
    generate(&rcgen::PKCS_ED25519)
}

pub fn hs_key(kid: Option<&str>) -> KeyConfig {
    KeyConfig {
        kid: kid.map(str::to_owned),
        alg: Alg::Hs256,
        file: KeyFile::Secret(PathBuf::from("/run/secrets/site-claim-key")),
    }
}

pub fn es_key(kid: Option<&str>) -> KeyConfig {
    KeyConfig {
        kid: kid.map(str::to_owned),
        alg: Alg::Es256,
        file: KeyFile::PublicKey(PathBuf::from("/etc/poortwachter/site-claim.pem")),
    }
}

pub fn config(keys: Vec<KeyConfig>) -> SiteBindingConfig {
    SiteBindingConfig {
        source: TokenSource::Cookie("afname_site".to_owned()),
        claim: "site".to_owned(),
        missing: Missing::Block,
        issuer: None,
        audience: None,
        keys,
    }
}

/// One HS256 key without kid, secret [`SECRET`].
pub fn hs_verifier() -> Verifier {
    Verifier::from_keys(&config(vec![hs_key(None)]), vec![SECRET.to_vec()]).unwrap()
}

/// One ES256 key without kid, [`es_a`].
pub fn es_verifier() -> Verifier {
    Verifier::from_keys(
        &config(vec![es_key(None)]),
        vec![es_a().public_pem.clone().into_bytes()],
    )
    .unwrap()
}

/// Builds from `cfg` with the given materials.
pub fn verifier(cfg: &SiteBindingConfig, material: &[&[u8]]) -> Verifier {
    Verifier::from_keys(cfg, material.iter().map(|m| m.to_vec()).collect()).unwrap()
}

/// Seconds since the epoch of `NOW` plus `offset`.
pub fn at(offset: i64) -> i64 {
    NOW.unix_timestamp() + offset
}

/// Good claims: the site and an `exp` one hour after [`NOW`].
pub fn claims() -> Value {
    json!({ "site": SITE, "exp": at(3600) })
}

/// `claims()` with `key` set to `value` (or removed when `value` is `None`).
pub fn claims_with(key: &str, value: Option<Value>) -> Value {
    let mut claims = claims();
    let map = claims.as_object_mut().unwrap();
    match value {
        Some(value) => map.insert(key.to_owned(), value),
        None => map.remove(key),
    };
    claims
}

fn header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header
}

/// An HS-family token signed with `secret`.
pub fn sign_hmac(alg: Algorithm, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&header(alg, kid), claims, &key).unwrap()
}

/// An HS256 token signed with `secret`.
pub fn hs(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    sign_hmac(Algorithm::HS256, secret, kid, claims)
}

/// An ES256 token signed with `key`.
pub fn es(key: &EsKey, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_ec_der(&key.pkcs8);
    jsonwebtoken::encode(&header(Algorithm::ES256, kid), claims, &key).unwrap()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with exactly this header and payload text, HS256-signed with `secret`
/// whatever the header says: for headers and payloads jsonwebtoken would not produce.
pub fn hs_raw(secret: &[u8], header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// An HS256 token whose payload is exactly `payload`.
pub fn hs_payload(payload: &str) -> String {
    hs_raw(SECRET, r#"{"alg":"HS256","typ":"JWT"}"#, payload)
}
