//! The `[allowlist]` section: where the allowlist comes from (a file or the admin store),
//! how updates are polled and guarded, and the local overrides, as written and as checked.
//! Run by the allowlist lifecycle (`lifecycle`, `sync`).

use crate::allowlist::CompileOptions;
use crate::net_url::is_loopback_url;
use crate::setting::{self, SettingError};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[allowlist]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistFile {
    pub source: String,
    pub max_prefix: Option<MaxPrefixFile>,
    pub poll_interval: Option<String>,
    pub last_good: Option<String>,
    pub max_shrink: Option<f64>,
    pub token_file: Option<String>,
    pub token_env: Option<String>,
    pub ca_file: Option<String>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub overrides: Option<String>,
    pub max_override_days: Option<u32>,
}

/// `[allowlist.max_prefix]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefixFile {
    pub v4: Option<u8>,
    pub v6: Option<u8>,
}

/// Where the allowlist comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    /// A local file, reloaded when it changes.
    File(PathBuf),
    /// The admin store over HTTPS (plain HTTP only to loopback, for tests).
    Http {
        url: String,
        token: Option<TokenConfig>,
        ca_file: Option<PathBuf>,
        connect_timeout: Duration,
        timeout: Duration,
        max_body_bytes: usize,
    },
}

impl SourceConfig {
    /// How the source is named in logs, `/status` and metrics (never with credentials).
    pub fn describe(&self) -> String {
        match self {
            SourceConfig::File(p) => p.display().to_string(),
            SourceConfig::Http { url, .. } => url.clone(),
        }
    }
}

/// Where the admin-store bearer token is read from: never the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenConfig {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone)]
pub struct AllowlistConfig {
    pub source: SourceConfig,
    pub compile: CompileOptions,
    /// How often the admin store is polled, and the file re-checked when no change
    /// notification arrives.
    pub poll_interval: Duration,
    /// Where every accepted document is kept, to start from when the source is down.
    pub last_good: Option<PathBuf>,
    /// The largest fraction of ranges an update may remove without an operator forcing it.
    pub max_shrink: f64,
    /// The local emergency overrides file, reloaded when it changes.
    pub overrides: Option<PathBuf>,
    /// The furthest an override's `expires` may lie ahead, in days.
    pub max_override_days: u32,
}

impl AllowlistConfig {
    /// The section is required: the gate does nothing useful without an allowlist.
    pub fn check(a: Option<AllowlistFile>) -> Result<AllowlistConfig, SettingError> {
        match a {
            Some(a) => a.try_into(),
            None => Err(SettingError::missing(
                "allowlist.source",
                "the gate needs an allowlist (a file path)",
            )),
        }
    }
}

impl TryFrom<AllowlistFile> for AllowlistConfig {
    type Error = SettingError;

    fn try_from(a: AllowlistFile) -> Result<AllowlistConfig, SettingError> {
        let overrides = setting::file_path("allowlist.overrides", a.overrides.as_deref())?;
        let max_override_days = a.max_override_days.unwrap_or(14);
        if !(1..=90).contains(&max_override_days) {
            return Err(SettingError::invalid(
                "allowlist.max_override_days",
                max_override_days,
                "expected 1 to 90: an override is for an emergency, the admin store is the lasting fix",
            ));
        }
        let source = source(&a)?;
        let poll_interval = setting::duration(
            "allowlist.poll_interval",
            a.poll_interval.as_deref(),
            Duration::from_secs(30),
        )?;
        if poll_interval < Duration::from_secs(1) {
            return Err(SettingError::invalid(
                "allowlist.poll_interval",
                format!("{:?}", a.poll_interval.unwrap_or_default()),
                "must be at least 1s",
            ));
        }
        let max_shrink = a.max_shrink.unwrap_or(0.2);
        if !(0.0..=1.0).contains(&max_shrink) {
            return Err(SettingError::invalid(
                "allowlist.max_shrink",
                max_shrink,
                "expected a fraction from 0.0 to 1.0 (0.2 = refuse losing more than 20% of the ranges)",
            ));
        }
        let last_good = setting::file_path("allowlist.last_good", a.last_good.as_deref())?;
        let defaults = CompileOptions::default();
        let (v4, v6) = match a.max_prefix {
            None => (defaults.max_prefix_v4, defaults.max_prefix_v6),
            Some(m) => (
                m.v4.unwrap_or(defaults.max_prefix_v4),
                m.v6.unwrap_or(defaults.max_prefix_v6),
            ),
        };
        if !(8..=32).contains(&v4) {
            return Err(SettingError::invalid(
                "allowlist.max_prefix.v4",
                v4,
                "expected 8 to 32",
            ));
        }
        if !(16..=128).contains(&v6) {
            return Err(SettingError::invalid(
                "allowlist.max_prefix.v6",
                v6,
                "expected 16 to 128",
            ));
        }
        Ok(AllowlistConfig {
            source,
            compile: CompileOptions {
                max_prefix_v4: v4,
                max_prefix_v6: v6,
            },
            poll_interval,
            last_good,
            max_shrink,
            overrides,
            max_override_days,
        })
    }
}

fn source(a: &AllowlistFile) -> Result<SourceConfig, SettingError> {
    let src = a.source.trim();
    if src.is_empty() {
        return Err(SettingError::invalid(
            "allowlist.source",
            "\"\"",
            "expected a file path or an https:// URL",
        ));
    }
    let lower = src.to_ascii_lowercase();
    let is_url = lower.starts_with("https://") || lower.starts_with("http://");
    let http_only = [
        ("allowlist.token_file", a.token_file.is_some()),
        ("allowlist.token_env", a.token_env.is_some()),
        ("allowlist.ca_file", a.ca_file.is_some()),
        ("allowlist.connect_timeout", a.connect_timeout.is_some()),
        ("allowlist.timeout", a.timeout.is_some()),
        ("allowlist.max_body_bytes", a.max_body_bytes.is_some()),
    ];
    if !is_url {
        if let Some((key, _)) = http_only.iter().find(|(_, set)| *set) {
            return Err(SettingError::invalid(
                key,
                format!("(set, with source {src:?})"),
                "only applies to an https:// admin-store source",
            ));
        }
        return Ok(SourceConfig::File(PathBuf::from(src)));
    }
    if lower.starts_with("http://") && !is_loopback_url(src) {
        return Err(SettingError::invalid(
            "allowlist.source",
            format!("{src:?}"),
            "plain http:// is only allowed to a loopback address; use https://",
        ));
    }
    if src.contains('@') {
        return Err(SettingError::invalid(
            "allowlist.source",
            "(a URL with credentials)",
            "put credentials in allowlist.token_file or allowlist.token_env, never in the URL",
        ));
    }
    let token = match (&a.token_file, &a.token_env) {
        (Some(_), Some(e)) => {
            return Err(SettingError::invalid(
                "allowlist.token_env",
                format!("{e:?}"),
                "set either allowlist.token_file or allowlist.token_env, not both",
            ))
        }
        (Some(f), None) => Some(TokenConfig::File(PathBuf::from(f))),
        (None, Some(e)) => Some(TokenConfig::Env(e.clone())),
        (None, None) => None,
    };
    let max_body_bytes = a.max_body_bytes.unwrap_or(32 * 1024 * 1024);
    if max_body_bytes < 1024 {
        return Err(SettingError::invalid(
            "allowlist.max_body_bytes",
            max_body_bytes,
            "must be at least 1024",
        ));
    }
    Ok(SourceConfig::Http {
        url: src.to_string(),
        token,
        ca_file: a.ca_file.as_ref().map(PathBuf::from),
        connect_timeout: setting::duration(
            "allowlist.connect_timeout",
            a.connect_timeout.as_deref(),
            Duration::from_secs(5),
        )?,
        timeout: setting::duration(
            "allowlist.timeout",
            a.timeout.as_deref(),
            Duration::from_secs(30),
        )?,
        max_body_bytes,
    })
}
