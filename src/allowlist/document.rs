//! Document-level parse: is this JSON, and does it have the outer shape
//! `{ "version"?: string, "sites": [...] }`? Anything wrong here rejects the
//! whole update ([`DocumentError`]); the sites themselves are judged one by
//! one in `compile`, so they are handed on as raw JSON values.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::Value;

/// Why a whole allowlist document was rejected (the last good snapshot stays
/// in force). Each message names the problem and where it is.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    /// Zero bytes or only whitespace: typically an empty answer from the
    /// admin store, which must never replace a good allowlist.
    #[error("allowlist document is empty")]
    Empty,
    /// The JSON stops in the middle of a value (a cut-off download).
    #[error("allowlist document ends early at line {line} column {column} (truncated?)")]
    Truncated { line: usize, column: usize },
    /// Not JSON at all; `detail` is serde_json's message, which names the
    /// line and column too.
    #[error("allowlist document is not valid JSON: {detail}")]
    NotJson {
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("allowlist document: top level is not an object (found {found})")]
    NotAnObject { found: &'static str },
    #[error("allowlist document: `sites` is missing")]
    SitesMissing,
    #[error("allowlist document: `sites` is not an array (found {found})")]
    SitesNotArray { found: &'static str },
    #[error("allowlist document: `version` is not a string (found {found})")]
    VersionNotString { found: &'static str },
    /// So many ranges overlap each other that the lookup table's u32 offsets
    /// would overflow. Not reachable by any sane admin store; it exists so a
    /// hostile document is refused instead of crashing the process.
    #[error("allowlist document: overlapping ranges are too complex to compile ({entries} entries in a lookup table)")]
    TooComplex { entries: usize },
}

/// The document after the outer shape was checked; sites are still raw JSON text, each
/// parsed on its own by `compile` (typed and borrowed where it is well-formed, as a
/// `Value` where it needs judging field by field).
#[derive(Debug)]
pub(crate) struct RawDocument<'a> {
    pub bytes: &'a [u8],
    pub version: Option<String>,
    pub sites: Vec<&'a RawValue>,
    /// Top-level keys we do not know, in key order (tolerated, counted).
    pub unknown_fields: Vec<String>,
}

/// Parse the bytes and check the outer shape.
///
/// One pass checks the syntax and finds the top-level fields without building a tree of
/// the 100k-range document (that tree cost half of the start-up time). Where the fast
/// pass cannot answer exactly as a full parse would (a top level that is not an object,
/// nesting deeper than serde_json's limit), the full parse decides, so the errors stay
/// the same.
pub(crate) fn parse_document(bytes: &[u8]) -> Result<RawDocument<'_>, DocumentError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DocumentError::Empty);
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'{') {
        return Err(parse_value(bytes).map_or_else(
            |e| e,
            |v| DocumentError::NotAnObject {
                found: json_kind(&v),
            },
        ));
    }
    // Keys as a full parse keeps them: sorted, the last of a repeated key wins.
    let mut top: BTreeMap<String, &RawValue> =
        serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    let version = match top.remove("version") {
        None => None,
        Some(raw) => match value_at(bytes, raw)? {
            // `null` is read as "no version": producers often write absent
            // optional fields that way, and a version is informational only.
            Value::Null => None,
            Value::String(s) => Some(s),
            other => {
                return Err(DocumentError::VersionNotString {
                    found: json_kind(&other),
                })
            }
        },
    };
    let sites = match top.remove("sites") {
        None => return Err(DocumentError::SitesMissing),
        Some(raw) if raw.get().starts_with('[') => {
            serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|e| at(bytes, raw, &e))?
        }
        Some(raw) => {
            return Err(DocumentError::SitesNotArray {
                found: json_kind(&value_at(bytes, raw)?),
            })
        }
    };
    for raw in top.values() {
        // Unknown fields are not used, but a full parse would have refused one nested
        // too deeply.
        value_at(bytes, raw)?;
    }
    Ok(RawDocument {
        bytes,
        version,
        sites,
        unknown_fields: top.into_keys().collect(),
    })
}

fn parse_value(bytes: &[u8]) -> Result<Value, DocumentError> {
    serde_json::from_slice(bytes).map_err(|e| json_error(&e))
}

fn json_error(e: &serde_json::Error) -> DocumentError {
    if e.is_eof() {
        DocumentError::Truncated {
            line: e.line(),
            column: e.column(),
        }
    } else {
        DocumentError::NotJson {
            line: e.line(),
            column: e.column(),
            detail: e.to_string(),
        }
    }
}

/// `raw` (a part of `bytes`) as a `Value`; an error names its place in the whole document.
pub(crate) fn value_at(bytes: &[u8], raw: &RawValue) -> Result<Value, DocumentError> {
    serde_json::from_str(raw.get()).map_err(|e| at(bytes, raw, &e))
}

/// An error from parsing `raw` on its own, placed in the whole document.
fn at(bytes: &[u8], raw: &RawValue, e: &serde_json::Error) -> DocumentError {
    let offset = (raw.get().as_ptr() as usize)
        .checked_sub(bytes.as_ptr() as usize)
        .filter(|&o| o <= bytes.len())
        .unwrap_or(0);
    let before = &bytes[..offset];
    let newlines = before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let (line, column) = if e.line() <= 1 {
        (newlines + 1, offset - line_start + e.column())
    } else {
        (newlines + e.line(), e.column())
    };
    let message = e.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    DocumentError::NotJson {
        line,
        column,
        detail: format!("{message} at line {line} column {column}"),
    }
}

/// "a number", "an array", ...: for messages that say what was found instead.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(doc: &str) -> DocumentError {
        parse_document(doc.as_bytes()).expect_err("document should be rejected")
    }

    #[test]
    fn minimal_document_parses() {
        let raw = parse_document(br#"{"sites": []}"#).expect("valid");
        assert_eq!(raw.version, None);
        assert!(raw.sites.is_empty());
        assert!(raw.unknown_fields.is_empty());
    }

    #[test]
    fn version_and_unknown_top_level_fields() {
        let raw =
            parse_document(br#"{"version": "v1", "sites": [1], "generated_by": "x", "z": null}"#)
                .expect("valid");
        assert_eq!(raw.version.as_deref(), Some("v1"));
        assert_eq!(raw.sites.len(), 1);
        let mut unknown = raw.unknown_fields.clone();
        unknown.sort();
        assert_eq!(unknown, vec!["generated_by".to_string(), "z".to_string()]);
    }

    #[test]
    fn null_version_is_no_version() {
        let raw = parse_document(br#"{"version": null, "sites": []}"#).expect("valid");
        assert_eq!(raw.version, None);
    }

    #[test]
    fn empty_and_whitespace_documents() {
        assert_eq!(err(""), DocumentError::Empty);
        assert_eq!(err(" \n\t "), DocumentError::Empty);
        assert_eq!(err("").to_string(), "allowlist document is empty");
    }

    #[test]
    fn not_json() {
        let e = err("<html>oops</html>");
        assert!(
            matches!(
                e,
                DocumentError::NotJson {
                    line: 1,
                    column: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains("not valid JSON"), "{msg}");
        assert!(msg.contains("line 1 column 1"), "{msg}");
    }

    #[test]
    fn not_json_names_line_and_column() {
        let e = err("{\n  \"sites\": [\n    1,,\n  ]\n}");
        match e {
            DocumentError::NotJson { line, column, .. } => {
                assert_eq!(line, 3);
                assert_eq!(column, 7);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn trailing_garbage_is_not_json() {
        let e = err(r#"{"sites": []} {"sites": []}"#);
        assert!(matches!(e, DocumentError::NotJson { .. }), "{e:?}");
    }

    #[test]
    fn truncated_json() {
        let e = err(r#"{"sites": [{"id": "12AB00", "ranges": ["192.0"#);
        assert!(
            matches!(e, DocumentError::Truncated { line: 1, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("ends early at line 1"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        let e = parse_document(b"{\"sites\": [\"\xff\"]}").expect_err("rejected");
        assert!(matches!(e, DocumentError::NotJson { .. }), "{e:?}");
    }

    #[test]
    fn top_level_array() {
        let e = err(r#"[{"sites": []}]"#);
        assert_eq!(e, DocumentError::NotAnObject { found: "an array" });
        assert_eq!(
            e.to_string(),
            "allowlist document: top level is not an object (found an array)"
        );
    }

    #[test]
    fn top_level_scalars() {
        assert_eq!(err("null"), DocumentError::NotAnObject { found: "null" });
        assert_eq!(err("42"), DocumentError::NotAnObject { found: "a number" });
        assert_eq!(
            err(r#""x""#),
            DocumentError::NotAnObject { found: "a string" }
        );
    }

    #[test]
    fn missing_sites() {
        let e = err(r#"{"version": "v1"}"#);
        assert_eq!(e, DocumentError::SitesMissing);
        assert_eq!(e.to_string(), "allowlist document: `sites` is missing");
    }

    #[test]
    fn sites_not_array() {
        assert_eq!(
            err(r#"{"sites": {"12AB00": {}}}"#),
            DocumentError::SitesNotArray { found: "an object" }
        );
        assert_eq!(
            err(r#"{"sites": null}"#),
            DocumentError::SitesNotArray { found: "null" }
        );
        assert_eq!(
            err(r#"{"sites": "none"}"#).to_string(),
            "allowlist document: `sites` is not an array (found a string)"
        );
    }

    #[test]
    fn version_not_string() {
        let e = err(r#"{"version": 4711, "sites": []}"#);
        assert_eq!(e, DocumentError::VersionNotString { found: "a number" });
        assert_eq!(
            e.to_string(),
            "allowlist document: `version` is not a string (found a number)"
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let doc = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = err(&doc);
        assert!(matches!(e, DocumentError::NotJson { .. }), "{e:?}");
    }
}
