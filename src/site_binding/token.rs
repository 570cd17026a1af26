//! The shape of a compact JWS (`header.payload.signature`) and its protected header, read
//! before any key is chosen: only `alg` and `kid` matter, and a `crit` header is refused
//! because no extension is understood.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::claim::InvalidClaim;

/// Longest token looked at (8 KiB); anything longer is `Malformed` without decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The protected header fields that select and constrain the key.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct JoseHeader {
    /// The algorithm the token claims; compared with the key's, never trusted on its own.
    pub(super) alg: String,
    /// The key id, when present.
    #[serde(default)]
    pub(super) kid: Option<String>,
    /// Critical extensions: none are supported, so any value makes the token malformed.
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// Checks the token's size and shape and reads its header.
pub(super) fn read_header(token: &str) -> Result<JoseHeader, InvalidClaim> {
    let header = header_segment(token)?;
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| InvalidClaim::Malformed)?;
    // The whole header must be valid JSON (RFC 7515 section 5.2): the typed read below skips
    // members it does not know without checking their text (invalid UTF-8, for one).
    serde_json::from_slice::<serde_json::Value>(&json).map_err(|_| InvalidClaim::Malformed)?;
    let header: JoseHeader = serde_json::from_slice(&json).map_err(|_| InvalidClaim::Malformed)?;
    match header.crit {
        Some(_) => Err(InvalidClaim::Malformed),
        None => Ok(header),
    }
}

/// The first of exactly three dot-separated segments of base64url characters, of which
/// header and payload are non-empty (the signature may be empty, as in an `alg: none`
/// token: the key decides).
fn header_segment(token: &str) -> Result<&str, InvalidClaim> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(InvalidClaim::Malformed);
    }
    if !token.bytes().all(|b| b == b'.' || is_base64url(b)) {
        return Err(InvalidClaim::Malformed);
    }
    let mut segments = token.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(_signature), None)
            if !header.is_empty() && !payload.is_empty() =>
        {
            Ok(header)
        }
        _ => Err(InvalidClaim::Malformed),
    }
}

/// The unpadded base64url alphabet (RFC 4648 section 5).
fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn reads_alg_and_kid() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#),
            b64("{}")
        );
        let header = read_header(&token).unwrap();
        assert_eq!(header.alg, "HS256");
        assert_eq!(header.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn null_kid_is_no_kid() {
        let token = format!("{}.{}.", b64(r#"{"alg":"ES256","kid":null}"#), b64("{}"));
        assert_eq!(read_header(&token).unwrap().kid, None);
    }

    #[test]
    fn refuses_a_header_that_is_not_valid_json_in_a_member_it_ignores() {
        // Found by the site_claim fuzz target: invalid UTF-8 in an unknown member; a lone
        // surrogate escape is refused as well.
        let raw_utf8 = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"HS256\",\"ale\":\"H\xb0256\"}");
        let surrogate = b64(r#"{"alg":"HS256","x":"\ud800"}"#);
        for header in [raw_utf8, surrogate] {
            let token = format!("{header}.e30.sig");
            assert_eq!(read_header(&token).err(), Some(InvalidClaim::Malformed));
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        let good_header = b64(r#"{"alg":"HS256"}"#);
        let cases = [
            String::new(),
            "abc".to_owned(),
            "a.b".to_owned(),
            format!("{good_header}.e30.sig.extra"),
            format!("{good_header}..sig"),
            ".e30.sig".to_owned(),
            "!!!.e30.sig".to_owned(),
            format!("{}.e30.sig", b64("not json")),
            format!("{}.e30.sig", b64("[]")),
            format!("{}.e30.sig", b64(r#"{"kid":"k"}"#)),
            format!("{}.e30.sig", b64(r#"{"alg":5}"#)),
            format!("{}.e30.sig", b64(r#"{"alg":"HS256","kid":7}"#)),
            format!("{}.e30.sig", b64(r#"{"alg":"HS256","alg":"ES256"}"#)),
            format!("{}.e30.sig", b64(r#"{"alg":"HS256","crit":["exp"]}"#)),
            // Padding is not part of base64url in JWS.
            format!("{}=.e30.sig", b64(r#"{"alg":"HS256"}"#)),
            format!("{}.e30.sig", "A".repeat(MAX_TOKEN_LEN)),
            format!("{good_header}.e30.si+g"),
            format!("{good_header}.e3 0.sig"),
            format!("{good_header}.e30.sig\n"),
        ];
        for token in cases {
            assert_eq!(
                read_header(&token).err(),
                Some(InvalidClaim::Malformed),
                "{token:?}"
            );
        }
    }
}
