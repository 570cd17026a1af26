// What must hold for any site claim (a compact JWS) a request can carry; shared by the fuzz
// target `site_claim` and the corpus replay on stable (`tests/fuzz_corpus.rs`).
//
// Input: byte 0: bit 7 set = the rest is the token as it is ("raw"); otherwise bit 0 picks
// the verifier (one HS256 key without kid, or keys k1/k2 (HS256) and es (ES256) with issuer
// and audience), bits 1-3 the signer (0 k1, 1 k2, 2 es, 3 a key not configured, else no
// signature). Bytes 1-2: which byte to tamper with. The rest: protected header JSON, a 0 byte,
// payload JSON; without a 0 byte all of it is the payload and the signer's own header is used.
// The target signs the token itself, so the fuzzer explores the claims behind a good
// signature, not only the signature check.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use poortwachter::site_binding::{
    is_site_id, Alg, Claim, KeyConfig, KeyFile, Missing, SiteBindingConfig, TokenSource, Verifier,
};
use serde_json::Value;
use time::OffsetDateTime;

/// 2026-12-01T09:00:00Z, the moment tokens are judged at.
const NOW: i64 = 1_796_115_600;
const SECRET_1: &[u8] = b"fuzz-secret-one-for-site-claims-0123456789";
const SECRET_2: &[u8] = b"fuzz-secret-two-for-site-claims-9876543210";
const FOREIGN: &[u8] = b"fuzz-secret-nobody-configured-0123456789ab";
const ISSUER: &str = "https://portal.example";
const AUDIENCE: &str = "afname";
/// A P-256 test key pair made for this target (no other use).
const ES_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiI+7Ph1uf2FBDxcy
2xIJUXfzB8zYVX/tg/3KQX1c6rKhRANCAARm1iC1SjuAttKSsSMj5gBruommWQKW
8BqRBKrzWpStq7976k7TM9srSBdAVioSmv8U0/I/LYU1smqdtgE7BbYN
-----END PRIVATE KEY-----
";
const ES_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZtYgtUo7gLbSkrEjI+YAa7qJplkC
lvAakQSq81qUrau/e+pO0zPbK0gXQFYqEpr/FNPyPy2FNbJqnbYBOwW2DQ==
-----END PUBLIC KEY-----
";

/// A configured key as the checks below know it.
struct Known {
    kid: Option<&'static str>,
    alg: &'static str,
    secret: Option<&'static [u8]>,
}

/// One verifier under test and what it was configured with.
struct Setup {
    verifier: Verifier,
    keys: Vec<Known>,
    claim: &'static str,
    issuer: Option<&'static str>,
    audience: Option<&'static str>,
}

fn setups() -> &'static [Setup; 2] {
    static SETUPS: OnceLock<[Setup; 2]> = OnceLock::new();
    SETUPS.get_or_init(|| {
        let key = |kid: Option<&str>, alg, file| KeyConfig {
            kid: kid.map(str::to_owned),
            alg,
            file,
        };
        let secret = || KeyFile::Secret("/run/secrets/site-claim-key".into());
        let single = SiteBindingConfig {
            source: TokenSource::Cookie("afname_site".into()),
            claim: "site".into(),
            missing: Missing::Block,
            issuer: None,
            audience: None,
            keys: vec![key(None, Alg::Hs256, secret())],
        };
        let several = SiteBindingConfig {
            source: TokenSource::Cookie("afname_site".into()),
            claim: "school".into(),
            missing: Missing::Block,
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            keys: vec![
                key(Some("k1"), Alg::Hs256, secret()),
                key(Some("k2"), Alg::Hs256, secret()),
                key(
                    Some("es"),
                    Alg::Es256,
                    KeyFile::PublicKey("/etc/site-claim.pem".into()),
                ),
            ],
        };
        let material = vec![SECRET_1.to_vec(), SECRET_2.to_vec(), ES_PUBLIC.into()];
        [
            Setup {
                verifier: Verifier::from_keys(&single, vec![SECRET_1.to_vec()]).expect("keys"),
                keys: vec![Known {
                    kid: None,
                    alg: "HS256",
                    secret: Some(SECRET_1),
                }],
                claim: "site",
                issuer: None,
                audience: None,
            },
            Setup {
                verifier: Verifier::from_keys(&several, material).expect("keys"),
                keys: vec![
                    Known {
                        kid: Some("k1"),
                        alg: "HS256",
                        secret: Some(SECRET_1),
                    },
                    Known {
                        kid: Some("k2"),
                        alg: "HS256",
                        secret: Some(SECRET_2),
                    },
                    Known {
                        kid: Some("es"),
                        alg: "ES256",
                        secret: None,
                    },
                ],
                claim: "school",
                issuer: Some(ISSUER),
                audience: Some(AUDIENCE),
            },
        ]
    })
}

fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn es256(message: &[u8]) -> String {
    static KEY: OnceLock<EncodingKey> = OnceLock::new();
    let key = KEY.get_or_init(|| EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).expect("key"));
    jsonwebtoken::crypto::sign(message, key, Algorithm::ES256).expect("sign")
}

/// Never `Missing`, deterministic; a token that verifies (or is merely expired) was signed
/// by the configured key its header selects and carries claims that pass every rule; a token
/// signed otherwise never verifies; changing one character of a verifying token makes it
/// invalid.
pub fn check(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    let setup = &setups()[usize::from(control & 1)];
    if control & 0x80 != 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            judge(setup, token, now);
        }
        return;
    }
    let tamper = rest
        .get(..2)
        .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let rest = rest.get(2..).unwrap_or_default();
    let signer = (control >> 1) & 7;
    let (header, payload) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (rest[..i].to_vec(), &rest[i + 1..]),
        None => {
            let (alg, kid) = match signer {
                1 => ("HS256", "k2"),
                2 => ("ES256", "es"),
                _ => ("HS256", "k1"),
            };
            (
                format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#).into_bytes(),
                rest,
            )
        }
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = match signer {
        0 => URL_SAFE_NO_PAD.encode(hs256(SECRET_1, input.as_bytes())),
        1 => URL_SAFE_NO_PAD.encode(hs256(SECRET_2, input.as_bytes())),
        2 => es256(input.as_bytes()),
        3 => URL_SAFE_NO_PAD.encode(hs256(FOREIGN, input.as_bytes())),
        _ => String::new(),
    };
    let token = format!("{input}.{signature}");
    let claim = judge(setup, &token, now);
    if signer >= 3 {
        assert!(
            !matches!(claim, Claim::Valid { .. } | Claim::Expired),
            "a token no configured key signed: {claim:?}"
        );
    }
    if matches!(claim, Claim::Valid { .. } | Claim::Expired) {
        let mut bytes = token.into_bytes();
        let at = tamper % bytes.len();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ASCII");
        let after = setup.verifier.verify(&tampered, now);
        assert!(
            matches!(after, Claim::Invalid(_)),
            "{claim:?} tampered at byte {at}: {after:?} ({tampered})"
        );
    }
}

/// Verifies `token` and checks the outcome against the token's own contents.
fn judge(setup: &Setup, token: &str, now: OffsetDateTime) -> Claim {
    let claim = setup.verifier.verify(token, now);
    assert_eq!(setup.verifier.verify(token, now), claim, "deterministic");
    if claim == Claim::Missing {
        panic!("verify returned Missing for {token:?}");
    }
    if !matches!(claim, Claim::Valid { .. } | Claim::Expired) {
        return claim;
    }
    let segments: Vec<&str> = token.split('.').collect();
    let &[head, body, sig] = &segments[..] else {
        panic!("{claim:?} for a token without three segments: {token:?}");
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
    let header: Value = serde_json::from_slice(&decode(head)).expect("header JSON");
    let claims: Value = serde_json::from_slice(&decode(body)).expect("payload JSON");
    assert!(header.get("crit").is_none(), "crit header: {claim:?}");

    // The key the header selects, and its signature over exactly these bytes.
    let kid = header.get("kid").and_then(Value::as_str);
    let key = match (&setup.keys[..], kid) {
        ([only], _) => only,
        (keys, Some(kid)) => keys
            .iter()
            .find(|k| k.kid == Some(kid))
            .unwrap_or_else(|| panic!("{claim:?} with unknown kid {kid:?}")),
        (_, None) => panic!("{claim:?} without kid among several keys"),
    };
    assert_eq!(header.get("alg").and_then(Value::as_str), Some(key.alg));
    let message = format!("{head}.{body}");
    let signed = match key.secret {
        Some(secret) => decode(sig) == hs256(secret, message.as_bytes()),
        None => jsonwebtoken::crypto::verify(
            sig,
            message.as_bytes(),
            &DecodingKey::from_ec_pem(ES_PUBLIC.as_bytes()).expect("key"),
            Algorithm::ES256,
        )
        .expect("verify"),
    };
    assert!(
        signed,
        "{claim:?} but the signature is not the key's: {token}"
    );

    // The claims.
    let seconds = |name: &str| claims.get(name).and_then(Value::as_f64);
    let exp = seconds("exp").unwrap_or_else(|| panic!("{claim:?} without numeric exp"));
    let now_s = now.unix_timestamp() as f64;
    if let Some(iss) = setup.issuer {
        assert_eq!(claims.get("iss").and_then(Value::as_str), Some(iss));
    }
    if let Some(aud) = setup.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(l)) => l.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        };
        assert!(ok, "{claim:?} with aud {:?}", claims.get("aud"));
    }
    match &claim {
        Claim::Valid { site } => {
            assert!(is_site_id(site), "{site:?}");
            assert_eq!(
                claims.get(setup.claim).and_then(Value::as_str),
                Some(site.as_str())
            );
            assert!(now_s <= exp + 61.0, "valid at {now_s} with exp {exp}");
            if let Some(nbf) = seconds("nbf") {
                assert!(now_s >= nbf - 61.0, "valid at {now_s} with nbf {nbf}");
            }
        }
        _ => {
            // Expired is judged last: everything else about the token is good.
            let site = claims.get(setup.claim).and_then(Value::as_str);
            assert!(site.is_some_and(is_site_id), "expired with site {site:?}");
            assert!(now_s >= exp + 59.0, "expired at {now_s} with exp {exp}");
        }
    }
    claim
}
