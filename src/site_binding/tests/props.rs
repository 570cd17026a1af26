//! Properties: `verify` and `extract` never panic, whatever the input.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::support::*;
use crate::site_binding::{extract, Claim, TokenSource};

/// Strings made of the characters tokens are made of, so that many reach the decoders.
fn tokenish() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9_\\-.=+/ ]{0,300}").unwrap()
}

/// A good token with a few characters replaced.
fn mutated_token() -> impl Strategy<Value = String> {
    let token = hs(SECRET, Some("k"), &claims());
    let len = token.len();
    proptest::collection::vec((0..len, any::<char>()), 1..4).prop_map(move |edits| {
        let mut chars: Vec<char> = token.chars().collect();
        for (at, c) in edits {
            chars[at] = c;
        }
        chars.into_iter().collect()
    })
}

/// Arbitrary JSON-ish payloads, properly signed, so claim handling sees odd shapes.
fn signed_payload() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        r#"\{("(site|exp|nbf|iss|aud)":(-?[0-9]{1,25}(\.[0-9]{1,5})?(e[0-9]{1,3})?|"[ -~]{0,10}"|null|true|\[\]|\{\}),?){0,6}\}"#,
    )
    .unwrap()
}

proptest! {
    #[test]
    fn verify_never_panics_on_any_string(s in any::<String>()) {
        let claim = hs_verifier().verify(&s, NOW);
        prop_assert_ne!(claim, Claim::Missing);
        es_verifier().verify(&s, NOW);
    }

    #[test]
    fn verify_never_panics_on_token_like_strings(s in tokenish()) {
        hs_verifier().verify(&s, NOW);
        es_verifier().verify(&s, NOW);
    }

    #[test]
    fn mutated_tokens_are_never_valid_unless_unchanged(s in mutated_token()) {
        let original = hs(SECRET, Some("k"), &claims());
        let claim = hs_verifier().verify(&s, NOW);
        if s != original {
            prop_assert!(!matches!(claim, Claim::Valid { .. }), "{s:?} -> {claim:?}");
        }
    }

    #[test]
    fn signed_odd_payloads_never_panic(payload in signed_payload(), offset in any::<i64>()) {
        let token = hs_payload(&payload);
        let now = time::OffsetDateTime::from_unix_timestamp(offset % 253_402_300_799)
            .unwrap_or(NOW);
        hs_verifier().verify(&token, now);
    }

    #[test]
    fn extract_never_panics(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4)) {
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Ok(value) = HeaderValue::from_bytes(&line) {
                headers.append(http::header::COOKIE, value.clone());
                headers.append(HeaderName::from_static("authorization"), value);
            }
        }
        let cookie = extract(&headers, &TokenSource::Cookie("afname_site".into()));
        let header = extract(&headers, &TokenSource::Header(HeaderName::from_static("authorization")));
        for token in [cookie, header].into_iter().flatten() {
            prop_assert!(!token.is_empty());
        }
    }
}
