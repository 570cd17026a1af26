//! Configuration: the TOML file lowered into one validated [`Config`].
//!
//! Two layers, as in `file.rs` → here: serde reads what the operator wrote (unknown keys are
//! errors), then validation turns it into typed values. Every error names the file, the key
//! and the offending value, so `poortwachter check` tells an operator exactly what to fix.

mod file;

use crate::allowlist::CompileOptions;
use crate::client_ip::{HeaderMode, TrustedProxies};
use crate::decision::Mode;
use http::HeaderName;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use file::FileConfig;

/// A configuration error. The message names the file, the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
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
    #[error("{file}: `{key}` is not yet supported by this version of poortwachter; remove it")]
    NotYetSupported { file: String, key: String },
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
    pub admin: AdminConfig,
    pub block_page: BlockPageConfig,
    pub log: LogConfig,
    pub demo_origin: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: Vec<SocketAddr>,
    pub threads: usize,
    /// How long SIGTERM keeps serving in-flight and keep-alive requests before shutdown.
    pub grace_period: Duration,
    /// How long the runtimes get to finish after the grace period.
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub addrs: Vec<SocketAddr>,
    pub client_ip_header: HeaderName,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub keepalive_pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct ClientIpConfig {
    pub trusted: TrustedProxies,
    pub header: HeaderMode,
}

#[derive(Debug, Clone)]
pub struct AllowlistConfig {
    pub source: PathBuf,
    pub compile: CompileOptions,
}

#[derive(Debug, Clone, Copy)]
pub struct PolicyConfig {
    pub mode: Mode,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// The token for protected endpoints, read from `token_file` at load time.
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl AdminConfig {
    /// Loopback-only listeners serve `/status` without a token; anything else needs one.
    pub fn status_needs_token(&self) -> bool {
        !self.listen.ip().is_loopback()
    }
}

#[derive(Debug, Clone)]
pub struct BlockPageConfig {
    pub support_contact: BTreeMap<String, String>,
    pub admin_store_name: String,
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
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

impl Config {
    /// Read and validate the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::from_toml(path, &text)
    }

    /// Validate TOML text as if it were read from `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let v = Validator {
            file: path.display().to_string(),
        };
        let raw: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: v.file.clone(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        v.validate(path, raw)
    }
}

struct Validator {
    file: String,
}

impl Validator {
    fn invalid(&self, key: &str, value: impl std::fmt::Display, problem: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.to_string(),
        }
    }

    fn later(&self, key: &str, present: bool) -> Result<(), ConfigError> {
        if present {
            return Err(ConfigError::NotYetSupported {
                file: self.file.clone(),
                key: key.to_string(),
            });
        }
        Ok(())
    }

    fn socket_addr(&self, key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
        s.parse().map_err(|_| {
            self.invalid(
                key,
                format!("{s:?}"),
                "expected IP:port (e.g. \"127.0.0.1:8080\" or \"[::]:8080\"); host names are not accepted",
            )
        })
    }

    fn duration(
        &self,
        key: &str,
        s: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match s {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s).map_err(|e| {
                self.invalid(
                    key,
                    format!("{s:?}"),
                    &format!("expected a duration like \"5s\": {e}"),
                )
            }),
        }
    }

    fn whole_seconds(
        &self,
        key: &str,
        s: Option<&str>,
        default: u64,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(key, s, Duration::from_secs(default))?;
        if d.subsec_nanos() != 0 {
            return Err(self.invalid(
                key,
                format!("{:?}", s.unwrap_or_default()),
                "must be whole seconds",
            ));
        }
        Ok(d)
    }

    fn validate(&self, path: &Path, raw: FileConfig) -> Result<Config, ConfigError> {
        self.later("site_binding", raw.site_binding.is_some())?;
        self.later("route", raw.route.is_some())?;
        self.later("self_check", raw.self_check.is_some())?;
        self.later("policy.enforce_from", raw.policy.enforce_from.is_some())?;

        let proxy = self.proxy(&raw.proxy)?;
        let upstream = self.upstream(raw.upstream)?;
        let client_ip = self.client_ip(&raw.client_ip)?;
        let allowlist = self.allowlist(raw.allowlist)?;
        let mode = match raw.policy.mode.as_deref() {
            None => Mode::Enforce,
            Some(m) => m.parse().map_err(|_| {
                self.invalid(
                    "policy.mode",
                    format!("{m:?}"),
                    "expected \"enforce\", \"report-only\" or \"off\"",
                )
            })?,
        };
        let admin = self.admin(&raw.admin)?;
        let block_page = self.block_page(raw.block_page)?;
        let log = self.log(&raw.log)?;
        let demo_origin = match raw.demo_origin {
            None => None,
            Some(d) => Some(self.socket_addr("demo_origin.listen", &d.listen)?),
        };

        let mut seen = BTreeMap::new();
        for (key, addr) in proxy
            .listen
            .iter()
            .map(|a| ("proxy.listen", *a))
            .chain(std::iter::once(("admin.listen", admin.listen)))
            .chain(demo_origin.map(|a| ("demo_origin.listen", a)))
        {
            if let Some(other) = seen.insert(addr, key) {
                return Err(self.invalid(
                    key,
                    format!("\"{addr}\""),
                    &format!("the same address is already used by `{other}`"),
                ));
            }
        }

        Ok(Config {
            path: path.to_path_buf(),
            proxy,
            upstream,
            client_ip,
            allowlist,
            policy: PolicyConfig { mode },
            admin,
            block_page,
            log,
            demo_origin,
        })
    }

    fn proxy(&self, p: &file::ProxyFile) -> Result<ProxyConfig, ConfigError> {
        let listen = match &p.listen {
            None => vec![self.socket_addr("proxy.listen", DEFAULT_LISTEN)?],
            Some(list) if list.is_empty() => {
                return Err(self.invalid("proxy.listen", "[]", "at least one address is needed"))
            }
            Some(list) => list
                .iter()
                .map(|s| self.socket_addr("proxy.listen", s))
                .collect::<Result<_, _>>()?,
        };
        let threads = match p.threads {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(0) => return Err(self.invalid("proxy.threads", 0, "must be at least 1")),
            Some(n) => n,
        };
        Ok(ProxyConfig {
            listen,
            threads,
            grace_period: self.whole_seconds("proxy.grace_period", p.grace_period.as_deref(), 5)?,
            shutdown_timeout: self.whole_seconds(
                "proxy.shutdown_timeout",
                p.shutdown_timeout.as_deref(),
                5,
            )?,
        })
    }

    fn upstream(&self, u: Option<file::UpstreamFile>) -> Result<UpstreamConfig, ConfigError> {
        let Some(u) = u else {
            return Err(ConfigError::Missing {
                file: self.file.clone(),
                key: "upstream.addrs".into(),
                problem: "the gate needs the address of the test environment to forward to".into(),
            });
        };
        if u.addrs.is_empty() {
            return Err(self.invalid("upstream.addrs", "[]", "at least one address is needed"));
        }
        let addrs = u
            .addrs
            .iter()
            .map(|s| self.socket_addr("upstream.addrs", s))
            .collect::<Result<_, _>>()?;
        let header_text = u.client_ip_header.as_deref().unwrap_or("x-forwarded-for");
        let client_ip_header = HeaderName::from_bytes(header_text.as_bytes()).map_err(|_| {
            self.invalid(
                "upstream.client_ip_header",
                format!("{header_text:?}"),
                "not a valid HTTP header name",
            )
        })?;
        let pool = u.keepalive_pool_size.unwrap_or(128);
        Ok(UpstreamConfig {
            addrs,
            client_ip_header,
            connect_timeout: self.duration(
                "upstream.connect_timeout",
                u.connect_timeout.as_deref(),
                Duration::from_secs(2),
            )?,
            read_timeout: self.duration(
                "upstream.read_timeout",
                u.read_timeout.as_deref(),
                Duration::from_secs(60),
            )?,
            keepalive_pool_size: pool,
        })
    }

    fn client_ip(&self, c: &file::ClientIpFile) -> Result<ClientIpConfig, ConfigError> {
        let mut nets = Vec::new();
        for (i, s) in c.trusted_proxies.iter().flatten().enumerate() {
            let key = format!("client_ip.trusted_proxies[{i}]");
            let net = parse_net(s).ok_or_else(|| {
                self.invalid(
                    &key,
                    format!("{s:?}"),
                    "expected an address or CIDR network such as \"10.0.0.0/8\"",
                )
            })?;
            if net.prefix_len() == 0 {
                return Err(self.invalid(
                    &key,
                    format!("{s:?}"),
                    "trusting every address would let any client choose its own address",
                ));
            }
            if net.trunc() != net {
                return Err(self.invalid(
                    &key,
                    format!("{s:?}"),
                    &format!("host bits are set; did you mean \"{}\"?", net.trunc()),
                ));
            }
            nets.push(net);
        }
        let header = match c.header.as_deref() {
            None => HeaderMode::XForwardedFor,
            Some(h) => h.parse().map_err(|_| {
                self.invalid(
                    "client_ip.header",
                    format!("{h:?}"),
                    "expected \"x-forwarded-for\" or \"forwarded\"",
                )
            })?,
        };
        let trusted = TrustedProxies::new(nets);
        // A mapped network such as ::ffff:0.0.0.0/96 is a /0 in disguise.
        if let Some(n) = trusted.nets().iter().find(|n| n.prefix_len() == 0) {
            return Err(self.invalid(
                "client_ip.trusted_proxies",
                format!("\"{n}\""),
                "trusting every address would let any client choose its own address",
            ));
        }
        Ok(ClientIpConfig { trusted, header })
    }

    fn allowlist(&self, a: Option<file::AllowlistFile>) -> Result<AllowlistConfig, ConfigError> {
        let Some(a) = a else {
            return Err(ConfigError::Missing {
                file: self.file.clone(),
                key: "allowlist.source".into(),
                problem: "the gate needs an allowlist (a file path)".into(),
            });
        };
        self.later("allowlist.poll_interval", a.poll_interval.is_some())?;
        self.later("allowlist.last_good", a.last_good.is_some())?;
        self.later("allowlist.max_shrink", a.max_shrink.is_some())?;
        self.later("allowlist.overrides", a.overrides.is_some())?;
        self.later("allowlist.max_override_days", a.max_override_days.is_some())?;
        let lower = a.source.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return Err(self.invalid(
                "allowlist.source",
                format!("{:?}", a.source),
                "an admin-store URL source is not yet supported; use a file path",
            ));
        }
        if a.source.trim().is_empty() {
            return Err(self.invalid("allowlist.source", "\"\"", "expected a file path"));
        }
        let defaults = CompileOptions::default();
        let (v4, v6) = match a.max_prefix {
            None => (defaults.max_prefix_v4, defaults.max_prefix_v6),
            Some(m) => (
                m.v4.unwrap_or(defaults.max_prefix_v4),
                m.v6.unwrap_or(defaults.max_prefix_v6),
            ),
        };
        if !(8..=32).contains(&v4) {
            return Err(self.invalid("allowlist.max_prefix.v4", v4, "expected 8 to 32"));
        }
        if !(16..=128).contains(&v6) {
            return Err(self.invalid("allowlist.max_prefix.v6", v6, "expected 16 to 128"));
        }
        Ok(AllowlistConfig {
            source: PathBuf::from(a.source),
            compile: CompileOptions {
                max_prefix_v4: v4,
                max_prefix_v6: v6,
            },
        })
    }

    fn admin(&self, a: &file::AdminFile) -> Result<AdminConfig, ConfigError> {
        let listen =
            self.socket_addr("admin.listen", a.listen.as_deref().unwrap_or(DEFAULT_ADMIN))?;
        let token_file = a.token_file.as_ref().map(PathBuf::from);
        let token = match &token_file {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    self.invalid(
                        "admin.token_file",
                        format!("{:?}", p.display().to_string()),
                        &format!("cannot read: {e}"),
                    )
                })?;
                let token = text.strip_suffix('\n').unwrap_or(&text).to_string();
                if token.len() < 16 {
                    return Err(self.invalid(
                        "admin.token_file",
                        format!("{:?}", p.display().to_string()),
                        "the token must be at least 16 characters",
                    ));
                }
                Some(token)
            }
        };
        let cfg = AdminConfig {
            listen,
            token,
            token_file,
        };
        if cfg.status_needs_token() && cfg.token.is_none() {
            return Err(ConfigError::Missing {
                file: self.file.clone(),
                key: "admin.token_file".into(),
                problem: format!(
                    "admin.listen = \"{listen}\" is not loopback-only, so /status needs a token"
                ),
            });
        }
        Ok(cfg)
    }

    fn block_page(&self, b: file::BlockPageFile) -> Result<BlockPageConfig, ConfigError> {
        let mut support_contact = BTreeMap::new();
        if let Some(c) = b.support_contact {
            support_contact.insert(String::new(), c);
        }
        for (lang, text) in b.support_contact_by_lang.unwrap_or_default() {
            if !crate::page::LANGUAGES.contains(&lang.as_str()) {
                return Err(self.invalid(
                    &format!("block_page.support_contact_by_lang.{lang}"),
                    format!("{text:?}"),
                    &format!(
                        "unknown language; expected one of {:?}",
                        crate::page::LANGUAGES
                    ),
                ));
            }
            support_contact.insert(lang, text);
        }
        Ok(BlockPageConfig {
            support_contact,
            admin_store_name: b
                .admin_store_name
                .unwrap_or_else(|| "Basispoort".to_string()),
        })
    }

    fn log(&self, l: &file::LogFile) -> Result<LogConfig, ConfigError> {
        let format = match l.format.as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("human") => LogFormat::Human,
            Some(f) => {
                return Err(self.invalid(
                    "log.format",
                    format!("{f:?}"),
                    "expected \"json\" or \"human\"",
                ))
            }
        };
        let level = l.level.clone().unwrap_or_else(|| "info".to_string());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            return Err(self.invalid(
                "log.level",
                format!("{level:?}"),
                "expected a level such as \"info\" or a filter such as \"info,poortwachter=debug\"",
            ));
        }
        Ok(LogConfig { format, level })
    }
}

/// An address or network, strictly: `192.0.2.1`, `192.0.2.0/24`, `2001:db8::/32`.
pub fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

#[cfg(test)]
mod tests;
