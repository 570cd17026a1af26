//! What every configuration section's check shares: an error that names the key and the
//! value, and the value kinds several sections use. The file name is added by `config`.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A setting that cannot be used, by key and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("`{key}` = {value}: {problem}")]
    Invalid {
        key: String,
        value: String,
        problem: String,
    },
    #[error("`{key}` is missing: {problem}")]
    Missing { key: String, problem: String },
}

impl SettingError {
    /// `value` is shown as given: quote strings with `{:?}` before passing them.
    pub fn invalid(key: &str, value: impl Display, problem: impl Into<String>) -> SettingError {
        SettingError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.into(),
        }
    }

    pub fn missing(key: &str, problem: impl Into<String>) -> SettingError {
        SettingError::Missing {
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

/// An `IP:port`; host names are refused (a listener or upstream must not depend on DNS).
pub fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, SettingError> {
    s.parse().map_err(|_| {
        SettingError::invalid(
            key,
            format!("{s:?}"),
            "expected IP:port (e.g. \"127.0.0.1:8080\" or \"[::]:8080\"); host names are not accepted",
        )
    })
}

/// A duration such as `"5s"`, or `default` when the key is not set.
pub fn duration(key: &str, s: Option<&str>, default: Duration) -> Result<Duration, SettingError> {
    match s {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s).map_err(|e| {
            SettingError::invalid(
                key,
                format!("{s:?}"),
                format!("expected a duration like \"5s\": {e}"),
            )
        }),
    }
}

/// A duration in whole seconds, `default` seconds when the key is not set.
pub fn whole_seconds(key: &str, s: Option<&str>, default: u64) -> Result<Duration, SettingError> {
    let d = duration(key, s, Duration::from_secs(default))?;
    if d.subsec_nanos() != 0 {
        return Err(SettingError::invalid(
            key,
            format!("{:?}", s.unwrap_or_default()),
            "must be whole seconds",
        ));
    }
    Ok(d)
}

/// An optional file path; set to `""` it is an error, not "unset".
pub fn file_path(key: &str, s: Option<&str>) -> Result<Option<PathBuf>, SettingError> {
    match s {
        None => Ok(None),
        Some("") => Err(SettingError::invalid(key, "\"\"", "expected a file path")),
        Some(p) => Ok(Some(PathBuf::from(p))),
    }
}
