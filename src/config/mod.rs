//! Configuration: the TOML file read once and its sections assembled into one [`Config`].
//!
//! Each section belongs to the module that uses it: that module owns the serde type (what an
//! operator may write; unknown keys are errors) and the checked type built from it. Here the
//! file is parsed, each section checked, the checks that span sections run, and every error
//! gets the file name, so `poortwachter check` tells an operator exactly what to fix.

mod file;
mod site_binding;

use crate::admin_config::AdminConfig;
use crate::allowlist_config::AllowlistConfig;
use crate::client_ip::ClientIpConfig;
use crate::decision::PolicyConfig;
use crate::listener::ProxyConfig;
use crate::logging::LogConfig;
use crate::page::BlockPageConfig;
use crate::route::Route;
use crate::setting::{self, SettingError};
use crate::site_binding::{SiteBindingConfig, TokenSource};
use crate::upstream::UpstreamConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use file::FileConfig;
pub use site_binding::{SiteBinding, SiteBindingFile, SiteKeyFile};

/// A configuration error. The message names the file, the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: `{key}` = {value}: {problem}")]
    Invalid {
        file: String,
        key: String,
        value: String,
        problem: String,
    },
    #[error("{file}: `{key}` is missing: {problem}")]
    Missing {
        file: String,
        key: String,
        problem: String,
    },
    #[error("{file}: {error}")]
    SiteKey {
        file: String,
        error: crate::site_binding::KeyError,
    },
}

impl ConfigError {
    /// The error on one line, for the JSON log and `/status`: the TOML parser's drawing of
    /// the line and caret, which the terminal shows as it is, joined with ` | `.
    pub fn one_line(&self) -> String {
        self.to_string().replace('\n', " | ")
    }

    fn setting(file: &str, e: SettingError) -> ConfigError {
        let file = file.to_string();
        match e {
            SettingError::Invalid {
                key,
                value,
                problem,
            } => ConfigError::Invalid {
                file,
                key,
                value,
                problem,
            },
            SettingError::Missing { key, problem } => ConfigError::Missing { file, key, problem },
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub proxy: ProxyConfig,
    pub upstream: UpstreamConfig,
    pub client_ip: ClientIpConfig,
    pub allowlist: AllowlistConfig,
    pub policy: PolicyConfig,
    /// `[[route]]`, first match wins; requests no route matches are enforced.
    pub routes: Vec<Route>,
    /// `[site_binding]`: own-school binding with a signed site claim.
    pub site_binding: Option<SiteBinding>,
    /// The self-check page's path on the proxy listener; `None` when disabled.
    pub self_check: Option<String>,
    pub admin: AdminConfig,
    pub block_page: BlockPageConfig,
    pub log: LogConfig,
    pub demo_origin: Option<SocketAddr>,
}

impl Config {
    /// Read and validate the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: file.clone(),
            error,
        })?;
        Config::from_toml(path, &text)
    }

    /// Validate TOML text as if it were read from `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let site_binding = match &raw.site_binding {
            None => None,
            Some(b) => {
                let settings =
                    SiteBindingConfig::try_from(b).map_err(|e| ConfigError::setting(&file, e))?;
                // The keys are read now, so `check` and a reload refuse unusable keys.
                Some(
                    SiteBinding::load(settings).map_err(|error| ConfigError::SiteKey {
                        file: file.clone(),
                        error,
                    })?,
                )
            }
        };
        assemble(path, raw, site_binding).map_err(|e| ConfigError::setting(&file, e))
    }
}

/// Checks the sections (besides `[site_binding]`, done first) and what spans them.
fn assemble(
    path: &Path,
    raw: FileConfig,
    site_binding: Option<SiteBinding>,
) -> Result<Config, SettingError> {
    let self_check = crate::route::check_self_check(raw.self_check.as_ref())?;
    let routes = crate::route::check_routes(
        raw.route.as_deref().unwrap_or_default(),
        site_binding.is_some(),
    )?;
    let policy = PolicyConfig::try_from(raw.policy)?;
    let proxy = ProxyConfig::try_from(raw.proxy)?;
    let upstream = UpstreamConfig::check(raw.upstream)?;
    let client_ip = ClientIpConfig::try_from(raw.client_ip)?;
    let allowlist = AllowlistConfig::check(raw.allowlist)?;
    let admin = AdminConfig::try_from(raw.admin)?;
    let block_page = BlockPageConfig::try_from(raw.block_page)?;
    let log = LogConfig::try_from(raw.log)?;
    let demo_origin = match raw.demo_origin {
        None => None,
        Some(d) => Some(setting::socket_addr("demo_origin.listen", &d.listen)?),
    };

    if let Some(b) = &site_binding {
        if let TokenSource::Header(h) = &b.0.source {
            if *h == upstream.client_ip_header {
                return Err(SettingError::invalid(
                    "site_binding.header",
                    format!("{:?}", h.as_str()),
                    "the gate writes this header itself for the upstream (upstream.client_ip_header)",
                ));
            }
        }
    }
    let mut seen = BTreeMap::new();
    for (key, addr) in proxy
        .addrs()
        .chain(std::iter::once(("admin.listen", admin.listen)))
        .chain(demo_origin.map(|a| ("demo_origin.listen", a)))
    {
        if let Some(other) = seen.insert(addr, key) {
            return Err(SettingError::invalid(
                key,
                format!("\"{addr}\""),
                format!("the same address is already used by `{other}`"),
            ));
        }
    }

    Ok(Config {
        path: path.to_path_buf(),
        proxy,
        upstream,
        client_ip,
        allowlist,
        policy,
        routes,
        site_binding,
        self_check,
        admin,
        block_page,
        log,
        demo_origin,
    })
}

#[cfg(test)]
mod tests;
