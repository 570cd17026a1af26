//! The TOML file model: exactly what an operator may write, nothing validated yet.
//!
//! Every table denies unknown keys, so a typo is an error that names the key instead of a
//! setting that silently does nothing.

use serde::Deserialize;
use std::collections::BTreeMap;

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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub listen: Option<Vec<String>>,
    pub tls_listen: Option<Vec<String>>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub threads: Option<usize>,
    pub grace_period: Option<String>,
    pub shutdown_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub addrs: Vec<String>,
    pub client_ip_header: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub keepalive_pool_size: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientIpFile {
    pub trusted_proxies: Option<Vec<String>>,
    pub header: Option<String>,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefixFile {
    pub v4: Option<u8>,
    pub v6: Option<u8>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub mode: Option<String>,
    pub enforce_from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfCheckFile {
    pub path: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Option<String>,
    pub host: Option<String>,
    pub path_prefix: String,
    pub action: Option<String>,
    /// Requests without a usable site claim: "block" (the default) or "any-site".
    pub missing: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteBindingFile {
    pub cookie: Option<String>,
    pub header: Option<String>,
    pub claim: Option<String>,
    pub missing: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    #[serde(default)]
    pub key: Vec<SiteKeyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteKeyFile {
    pub kid: Option<String>,
    pub alg: String,
    pub secret_file: Option<String>,
    pub public_key_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BlockPageFile {
    /// Who to contact, shown on every page ("de servicedesk: 030 123 45 67").
    pub support_contact: Option<String>,
    /// Per-language overrides of `support_contact`, keyed by language code.
    pub support_contact_by_lang: Option<BTreeMap<String, String>>,
    /// The name of the admin store as school admins know it ("Basispoort").
    pub admin_store_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub format: Option<String>,
    pub level: Option<String>,
    pub client_ip: Option<String>,
    pub hash_secret_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoOriginFile {
    pub listen: String,
}
