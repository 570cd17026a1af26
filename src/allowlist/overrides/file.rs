//! File-level parse of the overrides file: is this JSON, and does it have the
//! outer shape `{ "entries": [...] }`? Anything wrong here rejects the whole
//! file ([`OverridesError`]) and the caller keeps the last good overrides; the
//! entries themselves are judged one by one in `entry`.

use serde_json::{Map, Value};

use super::super::document::json_kind;

/// Why a whole overrides file was rejected (the last good overrides stay in
/// force). Each message names the problem and where it is.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum OverridesError {
    /// Zero bytes or only whitespace: typically an editor caught between
    /// truncating and writing the file. An empty list is `{"entries": []}`.
    #[error("overrides file is empty (write {{\"entries\": []}} for no overrides)")]
    Empty,
    /// The JSON stops in the middle of a value (a half-written file).
    #[error("overrides file ends early at line {line} column {column} (truncated?)")]
    Truncated { line: usize, column: usize },
    /// Not JSON at all; `detail` is serde_json's message, which names the
    /// line and column too.
    #[error("overrides file is not valid JSON: {detail}")]
    NotJson {
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("overrides file: top level is not an object (found {found})")]
    NotAnObject { found: &'static str },
    #[error("overrides file: `entries` is missing")]
    EntriesMissing,
    #[error("overrides file: `entries` is not an array (found {found})")]
    EntriesNotArray { found: &'static str },
}

/// The file after the outer shape was checked; entries are still raw.
#[derive(Debug)]
pub(super) struct RawOverrides {
    pub entries: Vec<Value>,
    /// Top-level keys we do not know (tolerated, counted).
    pub unknown_fields: Vec<String>,
}

/// Parse the bytes and check the outer shape.
pub(super) fn parse_file(bytes: &[u8]) -> Result<RawOverrides, OverridesError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(OverridesError::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(json_error)?;
    let Value::Object(mut top) = value else {
        return Err(OverridesError::NotAnObject {
            found: json_kind(&value),
        });
    };
    // `null` is not read as "no entries" here: the list is the file's whole
    // content, and a file that says nothing is more likely broken than meant.
    let entries = match top.remove("entries") {
        None => return Err(OverridesError::EntriesMissing),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(OverridesError::EntriesNotArray {
                found: json_kind(&other),
            })
        }
    };
    Ok(RawOverrides {
        entries,
        unknown_fields: remaining_keys(top),
    })
}

fn json_error(e: serde_json::Error) -> OverridesError {
    if e.is_eof() {
        OverridesError::Truncated {
            line: e.line(),
            column: e.column(),
        }
    } else {
        OverridesError::NotJson {
            line: e.line(),
            column: e.column(),
            detail: e.to_string(),
        }
    }
}

fn remaining_keys(map: Map<String, Value>) -> Vec<String> {
    map.into_iter().map(|(k, _)| k).collect()
}
