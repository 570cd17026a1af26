//! The TOML file model: the sections as an operator may write them, nothing checked yet.
//! Each section's type belongs to the module that uses it; this only puts them together.
//!
//! Every table denies unknown keys, so a typo is an error that names the key instead of a
//! setting that silently does nothing.

use super::site_binding::SiteBindingFile;
use crate::admin_config::AdminFile;
use crate::allowlist_config::AllowlistFile;
use crate::client_ip::ClientIpFile;
use crate::decision::PolicyFile;
use crate::listener::ProxyFile;
use crate::logging::LogFile;
use crate::page::BlockPageFile;
use crate::route::{RouteFile, SelfCheckFile};
use crate::upstream::UpstreamFile;
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub proxy: ProxyFile,
    pub upstream: Option<UpstreamFile>,
    #[serde(default)]
    pub client_ip: ClientIpFile,
    pub allowlist: Option<AllowlistFile>,
    #[serde(default)]
    pub policy: PolicyFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub block_page: BlockPageFile,
    #[serde(default)]
    pub log: LogFile,
    pub demo_origin: Option<DemoOriginFile>,
    pub site_binding: Option<SiteBindingFile>,
    pub route: Option<Vec<RouteFile>>,
    pub self_check: Option<SelfCheckFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoOriginFile {
    pub listen: String,
}
