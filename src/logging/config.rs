//! The `[log]` section: output format, level filter and how client addresses appear, as
//! written and as checked. The hash secret is read here, once per load.

use crate::privacy::LogAddress;
use crate::secret::{self, SecretError};
use crate::setting::SettingError;
use serde::Deserialize;
use std::path::Path;

/// Shortest `hash_secret_file` secret accepted.
const MIN_HASH_SECRET_LEN: usize = 16;

/// `[log]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<String>,
    pub level: Option<String>,
    pub client_ip: Option<String>,
    pub hash_secret_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Human,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
    /// How client addresses appear in logs.
    pub client_ip: LogAddress,
}

impl TryFrom<LogFile> for LogConfig {
    type Error = SettingError;

    fn try_from(l: LogFile) -> Result<LogConfig, SettingError> {
        let format = match l.format.as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("human") => LogFormat::Human,
            Some(f) => {
                return Err(SettingError::invalid(
                    "log.format",
                    format!("{f:?}"),
                    "expected \"json\" or \"human\"",
                ))
            }
        };
        let level = l.level.unwrap_or_else(|| "info".to_string());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            return Err(SettingError::invalid(
                "log.level",
                format!("{level:?}"),
                "expected a level such as \"info\" or a filter such as \"info,poortwachter=debug\"",
            ));
        }
        let client_ip = match (l.client_ip.as_deref(), &l.hash_secret_file) {
            (None | Some("truncated"), None) => LogAddress::Truncated,
            (Some("full"), None) => LogAddress::Full,
            (Some("hashed"), Some(path)) => LogAddress::Hashed {
                secret: hash_secret(path)?,
            },
            (Some("hashed"), None) => {
                return Err(SettingError::missing(
                    "log.hash_secret_file",
                    "log.client_ip = \"hashed\" needs a secret shared by all replicas",
                ))
            }
            (Some("full" | "truncated") | None, Some(path)) => {
                return Err(SettingError::invalid(
                    "log.hash_secret_file",
                    format!("{path:?}"),
                    "only used with log.client_ip = \"hashed\"",
                ))
            }
            (Some(other), _) => {
                return Err(SettingError::invalid(
                    "log.client_ip",
                    format!("{other:?}"),
                    "expected \"truncated\" (default), \"hashed\" or \"full\"",
                ))
            }
        };
        Ok(LogConfig {
            format,
            level,
            client_ip,
        })
    }
}

fn hash_secret(path: &str) -> Result<Vec<u8>, SettingError> {
    let invalid = |problem: String| {
        SettingError::invalid("log.hash_secret_file", format!("{path:?}"), problem)
    };
    let secret = match secret::read(Path::new(path)) {
        Ok(s) => s,
        // An empty file is refused as too short, below.
        Err(SecretError::Empty) => Vec::new(),
        Err(e) => return Err(invalid(e.to_string())),
    };
    if secret.len() < MIN_HASH_SECRET_LEN {
        return Err(invalid(format!(
            "the secret must be at least {MIN_HASH_SECRET_LEN} bytes"
        )));
    }
    Ok(secret)
}
