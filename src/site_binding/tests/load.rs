//! `Verifier::load` and `from_keys`: key files, key sets, and errors that name the key,
//! the file and the problem.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::support::*;
use crate::site_binding::{
    Alg, Claim, InvalidClaim, KeyConfig, KeyError, KeyFile, Missing, Verifier, MAX_KEY_FILE_LEN,
};

/// A directory of key files for one test.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn missing(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn secret_key(kid: Option<&str>, path: &Path) -> KeyConfig {
    KeyConfig {
        kid: kid.map(str::to_owned),
        alg: Alg::Hs256,
        file: KeyFile::Secret(path.to_owned()),
    }
}

fn public_key(kid: Option<&str>, path: &Path) -> KeyConfig {
    KeyConfig {
        kid: kid.map(str::to_owned),
        alg: Alg::Es256,
        file: KeyFile::PublicKey(path.to_owned()),
    }
}

fn load_err(keys: Vec<KeyConfig>) -> KeyError {
    Verifier::load(&config(keys)).unwrap_err()
}

fn assert_mentions(err: &KeyError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} should mention {part:?}"
        );
    }
}

fn with_newline(secret: &[u8], newline: &str) -> Vec<u8> {
    [secret, newline.as_bytes()].concat()
}

// ---- loading good files ------------------------------------------------------------------

#[test]
fn loads_secret_and_public_key_files() {
    let dir = Dir::new();
    let secret = dir.file("secret", with_newline(SECRET, "\n"));
    let pem = dir.file("pub.pem", &es_a().public_pem);
    let cfg = config(vec![
        secret_key(Some("hs"), &secret),
        public_key(Some("es"), &pem),
    ]);
    let v = Verifier::load(&cfg).unwrap();
    let valid = Claim::Valid {
        site: SITE.to_owned(),
    };
    assert_eq!(v.verify(&hs(SECRET, Some("hs"), &claims()), NOW), valid);
    assert_eq!(v.verify(&es(es_a(), Some("es"), &claims()), NOW), valid);
}

#[test]
fn trailing_newline_is_stripped_from_the_secret() {
    for newline in ["\n", "\r\n"] {
        let dir = Dir::new();
        let path = dir.file("secret", with_newline(SECRET, newline));
        let v = Verifier::load(&config(vec![secret_key(None, &path)])).unwrap();
        assert_eq!(
            v.verify(&hs(SECRET, None, &claims()), NOW),
            Claim::Valid {
                site: SITE.to_owned()
            },
            "{newline:?}"
        );
        let unstripped = with_newline(SECRET, newline);
        assert_eq!(
            v.verify(&hs(&unstripped, None, &claims()), NOW),
            Claim::Invalid(InvalidClaim::BadSignature),
            "{newline:?}"
        );
    }
}

#[test]
fn only_one_trailing_newline_is_stripped() {
    let material = with_newline(SECRET, "\n\n");
    let v = verifier(&config(vec![hs_key(None)]), &[&material]);
    let one_newline = with_newline(SECRET, "\n");
    let valid = Claim::Valid {
        site: SITE.to_owned(),
    };
    assert_eq!(v.verify(&hs(&one_newline, None, &claims()), NOW), valid);
    assert_eq!(
        v.verify(&hs(SECRET, None, &claims()), NOW),
        Claim::Invalid(InvalidClaim::BadSignature)
    );
}

#[test]
fn secret_without_newline_is_used_as_is() {
    let dir = Dir::new();
    let path = dir.file("secret", SECRET);
    let v = Verifier::load(&config(vec![secret_key(None, &path)])).unwrap();
    assert_eq!(
        v.verify(&hs(SECRET, None, &claims()), NOW),
        Claim::Valid {
            site: SITE.to_owned()
        }
    );
}

#[test]
fn binary_secret_is_raw_bytes() {
    let secret: Vec<u8> = (0u8..=255).collect();
    let v = verifier(&config(vec![hs_key(None)]), &[&secret]);
    assert_eq!(
        v.verify(&hs(&secret, None, &claims()), NOW),
        Claim::Valid {
            site: SITE.to_owned()
        }
    );
}

#[test]
fn pem_with_surrounding_text_and_crlf_loads() {
    let pem = es_a().public_pem.replace('\n', "\r\n");
    let material = format!("# site claim key, rotated 2026-11\r\n{pem}\r\n");
    let v = verifier(&config(vec![es_key(None)]), &[material.as_bytes()]);
    assert_eq!(
        v.verify(&es(es_a(), None, &claims()), NOW),
        Claim::Valid {
            site: SITE.to_owned()
        }
    );
}

// ---- file errors -------------------------------------------------------------------------

#[test]
fn missing_file_names_key_and_file() {
    let dir = Dir::new();
    let path = dir.missing("nope");
    let err = load_err(vec![secret_key(Some("2026-11"), &path)]);
    assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "site_binding.key[0]",
            "\"2026-11\"",
            "secret_file",
            &path.display().to_string(),
        ],
    );
    let err = load_err(vec![public_key(None, &path)]);
    assert_mentions(&err, &["site_binding.key[0]", "public_key_file", "nope"]);
}

#[test]
fn unreadable_path_is_a_read_error() {
    let dir = Dir::new();
    let err = load_err(vec![secret_key(None, dir.0.path())]);
    assert!(matches!(err, KeyError::Read { .. }), "{err:?}");
}

#[test]
fn empty_secret_is_refused() {
    for contents in ["", "\n", "\r\n"] {
        let dir = Dir::new();
        let path = dir.file("secret", contents);
        let err = load_err(vec![secret_key(None, &path)]);
        assert!(
            matches!(err, KeyError::EmptySecret { .. }),
            "{contents:?}: {err:?}"
        );
        assert_mentions(
            &err,
            &["site_binding.key[0]", "empty", &path.display().to_string()],
        );
    }
}

#[test]
fn short_secret_is_refused() {
    let dir = Dir::new();
    let path = dir.file("secret", "hunter2\n");
    let err = load_err(vec![secret_key(Some("k"), &path)]);
    assert!(
        matches!(err, KeyError::ShortSecret { len: 7, .. }),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &["7 bytes", "at least 32", &path.display().to_string()],
    );
    let just_enough = [b'k'; 32];
    assert!(Verifier::from_keys(&config(vec![hs_key(None)]), vec![just_enough.to_vec()]).is_ok());
    let err = Verifier::from_keys(
        &config(vec![hs_key(None)]),
        vec![just_enough[..31].to_vec()],
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::ShortSecret { len: 31, .. }),
        "{err:?}"
    );
}

#[test]
fn too_large_key_file_is_refused() {
    let dir = Dir::new();
    let path = dir.file("secret", vec![b'k'; MAX_KEY_FILE_LEN as usize + 1]);
    let err = load_err(vec![secret_key(None, &path)]);
    assert!(matches!(err, KeyError::TooLarge { .. }), "{err:?}");
    let path = dir.file("secret", vec![b'k'; MAX_KEY_FILE_LEN as usize]);
    assert!(Verifier::load(&config(vec![secret_key(None, &path)])).is_ok());
}

#[test]
fn bad_pem_names_the_file() {
    let dir = Dir::new();
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "this is not a key".to_owned()),
        ("empty", String::new()),
        (
            "truncated",
            es_a()
                .public_pem
                .lines()
                .take(2)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (
            "bad-base64",
            "-----BEGIN PUBLIC KEY-----\n@@@@\n-----END PUBLIC KEY-----\n".to_owned(),
        ),
        (
            "two-blocks",
            format!("{}{}", es_a().public_pem, es_b().public_pem),
        ),
        (
            "private",
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .unwrap()
                .serialize_pem(),
        ),
        ("raw-secret", String::from_utf8(SECRET.to_vec()).unwrap()),
    ];
    for (name, contents) in cases {
        let path = dir.file(name, contents);
        let err = load_err(vec![public_key(Some("es"), &path)]);
        assert!(matches!(err, KeyError::NotPem { .. }), "{name}: {err:?}");
        assert_mentions(
            &err,
            &[
                "site_binding.key[0]",
                "public_key_file",
                &path.display().to_string(),
            ],
        );
    }
}

#[test]
fn private_key_pem_is_called_out() {
    let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem();
    let err = Verifier::from_keys(&config(vec![es_key(None)]), vec![pem.into_bytes()]).unwrap_err();
    assert_mentions(&err, &["\"PRIVATE KEY\"", "expected \"PUBLIC KEY\""]);
}

#[test]
fn public_key_of_another_kind_is_refused() {
    let cases = [
        (p384().public_pem, "another curve"),
        (ed25519().public_pem, "Ed25519"),
        (
            // A valid PEM PUBLIC KEY block holding something that is no SPKI at all.
            pem::encode(&pem::Pem::new(
                "PUBLIC KEY",
                vec![0x30, 0x03, 0x02, 0x01, 0x01],
            )),
            "not a recognised public key",
        ),
    ];
    for (pem, found) in cases {
        let dir = Dir::new();
        let path = dir.file("pub.pem", &pem);
        let err = load_err(vec![public_key(None, &path)]);
        assert!(matches!(err, KeyError::NotP256 { .. }), "{found}: {err:?}");
        assert_mentions(&err, &[found, "P-256", &path.display().to_string()]);
    }
}

#[test]
fn compressed_p256_point_is_refused_with_a_hint() {
    // SPKI of a P-256 key with a compressed point (0x02 || X).
    let mut der = vec![
        0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    ];
    der.extend([
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00, 0x02,
    ]);
    der.extend([0x11; 32]);
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
    let err = Verifier::from_keys(&config(vec![es_key(None)]), vec![pem.into_bytes()]).unwrap_err();
    assert!(matches!(err, KeyError::NotP256 { .. }), "{err:?}");
    assert_mentions(&err, &["uncompressed"]);
}

// ---- key set errors ----------------------------------------------------------------------

#[test]
fn no_keys_is_an_error() {
    let err = load_err(vec![]);
    assert!(matches!(err, KeyError::NoKeys), "{err:?}");
    assert_mentions(&err, &["site_binding.key", "at least one"]);
}

#[test]
fn duplicate_kid_is_an_error() {
    let err = Verifier::from_keys(
        &config(vec![
            hs_key(Some("a")),
            hs_key(Some("b")),
            hs_key(Some("a")),
        ]),
        vec![SECRET.to_vec(), SECRET.to_vec(), OTHER_SECRET.to_vec()],
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::DuplicateKid { first: 0, .. }),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &["site_binding.key[2]", "\"a\"", "site_binding.key[0]"],
    );
}

#[test]
fn missing_kid_with_several_keys_is_an_error() {
    let err = Verifier::from_keys(
        &config(vec![hs_key(Some("a")), hs_key(None)]),
        vec![SECRET.to_vec(), OTHER_SECRET.to_vec()],
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::MissingKid { count: 2, .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["site_binding.key[1]", "kid is required"]);
}

#[test]
fn empty_kid_is_an_error() {
    for keys in [
        vec![hs_key(Some(""))],
        vec![hs_key(Some("a")), hs_key(Some(""))],
    ] {
        let material = vec![SECRET.to_vec(); keys.len()];
        let err = Verifier::from_keys(&config(keys), material).unwrap_err();
        assert!(matches!(err, KeyError::EmptyKid { .. }), "{err:?}");
    }
}

#[test]
fn key_set_is_checked_before_any_file_is_read() {
    let dir = Dir::new();
    let missing = dir.missing("nope");
    let err = load_err(vec![
        secret_key(Some("a"), &missing),
        secret_key(Some("a"), &missing),
    ]);
    assert!(matches!(err, KeyError::DuplicateKid { .. }), "{err:?}");
}

#[test]
fn file_setting_must_fit_the_algorithm() {
    let hs_with_pem = KeyConfig {
        kid: Some("k".into()),
        alg: Alg::Hs256,
        file: KeyFile::PublicKey("/etc/poortwachter/site-claim.pem".into()),
    };
    let err = load_err(vec![hs_with_pem]);
    assert!(matches!(err, KeyError::FileForAlg { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "site_binding.key[0]",
            "\"HS256\" needs secret_file",
            "public_key_file",
            "site-claim.pem",
        ],
    );
    let es_with_secret = KeyConfig {
        kid: None,
        alg: Alg::Es256,
        file: KeyFile::Secret("/run/secrets/k".into()),
    };
    let err = load_err(vec![es_with_secret]);
    assert_mentions(
        &err,
        &[
            "\"ES256\" needs public_key_file",
            "secret_file",
            "/run/secrets/k",
        ],
    );
}

#[test]
fn material_count_must_match() {
    let err = Verifier::from_keys(&config(vec![hs_key(None)]), vec![]).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::MaterialCount {
                keys: 1,
                material: 0
            }
        ),
        "{err:?}"
    );
}

#[test]
fn errors_name_the_later_key_by_index_and_kid() {
    let err = Verifier::from_keys(
        &config(vec![hs_key(Some("2026-10")), hs_key(Some("2026-11"))]),
        vec![SECRET.to_vec(), b"short".to_vec()],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "site_binding.key[1] (kid \"2026-11\"): secret_file \"/run/secrets/site-claim-key\": \
         the secret has 5 bytes, at least 32 are required for HS256"
    );
}

// ---- the rest of the configuration -------------------------------------------------------

#[test]
fn debug_output_holds_no_key_material() {
    let v = hs_verifier();
    let debug = format!("{v:?}");
    assert!(
        !debug.contains(std::str::from_utf8(SECRET).unwrap()),
        "{debug}"
    );
    assert!(debug.contains("Hs256"), "{debug}");
}

#[test]
fn alg_and_missing_parse_and_print() {
    for alg in [Alg::Hs256, Alg::Es256] {
        assert_eq!(alg.as_str().parse::<Alg>(), Ok(alg));
        assert_eq!(alg.to_string(), alg.as_str());
    }
    for bad in ["hs256", "none", "RS256", "HS384", "", "HS256 "] {
        let err = bad.parse::<Alg>().unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    for missing in [Missing::Block, Missing::AnySite] {
        assert_eq!(missing.as_str().parse::<Missing>(), Ok(missing));
        assert_eq!(missing.to_string(), missing.as_str());
    }
    assert_eq!(Missing::default(), Missing::Block);
    for bad in ["Block", "any_site", "allow", ""] {
        let err = bad.parse::<Missing>().unwrap_err();
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn verify_works_through_an_arc_across_threads() {
    let v = std::sync::Arc::new(hs_verifier());
    let token = hs(SECRET, None, &json!({ "site": SITE, "exp": at(60) }));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            std::thread::spawn(move || v.verify(&token, NOW))
        })
        .collect();
    for handle in handles {
        assert_eq!(
            handle.join().unwrap(),
            Claim::Valid {
                site: SITE.to_owned()
            }
        );
    }
}
