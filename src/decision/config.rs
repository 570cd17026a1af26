//! The `[policy]` section: the enforcement mode and the moment enforcement starts, as
//! written and as checked.

use super::Mode;
use crate::setting::SettingError;
use serde::Deserialize;
use time::OffsetDateTime;

/// `[policy]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub mode: Option<String>,
    pub enforce_from: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct PolicyConfig {
    pub mode: Mode,
    /// With `mode = "enforce"`: report-only before this moment, enforce from it.
    pub enforce_from: Option<OffsetDateTime>,
}

impl TryFrom<PolicyFile> for PolicyConfig {
    type Error = SettingError;

    fn try_from(p: PolicyFile) -> Result<PolicyConfig, SettingError> {
        let enforce_from = match p.enforce_from.as_deref() {
            None => None,
            Some(t) => Some(
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|e| {
                    SettingError::invalid(
                        "policy.enforce_from",
                        format!("{t:?}"),
                        format!("expected an RFC 3339 time with offset such as \"2027-01-11T00:00:00+01:00\": {e}"),
                    )
                })?,
            ),
        };
        let mode = match p.mode.as_deref() {
            None => Mode::Enforce,
            Some(m) => m.parse().map_err(|_| {
                SettingError::invalid(
                    "policy.mode",
                    format!("{m:?}"),
                    "expected \"enforce\", \"report-only\" or \"off\"",
                )
            })?,
        };
        Ok(PolicyConfig { mode, enforce_from })
    }
}
