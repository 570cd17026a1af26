//! Configuration: the TOML file lowered into one validated [`Config`].
//!
//! Two layers, as in `file.rs` → here: serde reads what the operator wrote (unknown keys are
//! errors), then validation turns it into typed values. Every error names the file, the key
//! and the offending value, so `poortwachter check` tells an operator exactly what to fix.

mod file;

use crate::allowlist::CompileOptions;
use crate::client_ip::{HeaderMode, TrustedProxies};
use crate::decision::Mode;
use crate::site_binding::{
    Alg, KeyConfig, KeyFile, Missing, SiteBindingConfig, TokenSource, Verifier,
};
use http::HeaderName;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use file::FileConfig;

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
    pub routes: Vec<crate::route::Route>,
    /// `[site_binding]`: own-school binding with a signed site claim.
    pub site_binding: Option<SiteBinding>,
    /// The self-check page's path on the proxy listener; `None` when disabled.
    pub self_check: Option<String>,
    pub admin: AdminConfig,
    pub block_page: BlockPageConfig,
    pub log: LogConfig,
    pub demo_origin: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: Vec<SocketAddr>,
    /// TLS listeners (HTTP/1.1 and HTTP/2 by ALPN), with one certificate chain and key.
    pub tls: Option<TlsConfig>,
    pub threads: usize,
    /// How long SIGTERM keeps serving in-flight and keep-alive requests before shutdown.
    pub grace_period: Duration,
    /// How long the runtimes get to finish after the grace period.
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub listen: Vec<SocketAddr>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
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

#[derive(Debug, Clone, Copy)]
pub struct PolicyConfig {
    pub mode: Mode,
    /// With `mode = "enforce"`: report-only before this moment, enforce from it.
    pub enforce_from: Option<time::OffsetDateTime>,
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
    /// How client addresses appear in logs.
    pub client_ip: crate::privacy::LogAddress,
}

/// The validated `[site_binding]` settings; the keys are read from their files by
/// [`Verifier::load`] when the gate starts and whenever they change.
#[derive(Clone)]
pub struct SiteBinding(pub Arc<SiteBindingConfig>);

impl std::fmt::Debug for SiteBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteBinding")
            .field("claim", &self.0.claim)
            .field("missing", &self.0.missing.as_str())
            .field("keys", &self.0.keys.len())
            .finish()
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

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
        let site_binding = match &raw.site_binding {
            None => None,
            Some(b) => Some(self.site_binding(b)?),
        };
        let self_check = self.self_check(raw.self_check.as_ref())?;
        let routes = self.routes(
            raw.route.as_deref().unwrap_or_default(),
            site_binding.is_some(),
        )?;
        let enforce_from = match raw.policy.enforce_from.as_deref() {
            None => None,
            Some(t) => Some(
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(|e| {
                    self.invalid(
                        "policy.enforce_from",
                        format!("{t:?}"),
                        &format!("expected an RFC 3339 time with offset such as \"2027-01-11T00:00:00+01:00\": {e}"),
                    )
                })?,
            ),
        };

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

        if let Some(SiteBinding(b)) = &site_binding {
            if let TokenSource::Header(h) = &b.source {
                if *h == upstream.client_ip_header {
                    return Err(self.invalid(
                        "site_binding.header",
                        format!("{:?}", h.as_str()),
                        "the gate writes this header itself for the upstream (upstream.client_ip_header)",
                    ));
                }
            }
        }
        let mut seen = BTreeMap::new();
        for (key, addr) in proxy
            .listen
            .iter()
            .map(|a| ("proxy.listen", *a))
            .chain(
                proxy
                    .tls
                    .iter()
                    .flat_map(|t| t.listen.iter().map(|a| ("proxy.tls_listen", *a))),
            )
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
            policy: PolicyConfig { mode, enforce_from },
            routes,
            site_binding,
            self_check,
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
            tls: self.tls(p)?,
            threads,
            grace_period: self.whole_seconds("proxy.grace_period", p.grace_period.as_deref(), 5)?,
            shutdown_timeout: self.whole_seconds(
                "proxy.shutdown_timeout",
                p.shutdown_timeout.as_deref(),
                5,
            )?,
        })
    }

    fn self_check(&self, s: Option<&file::SelfCheckFile>) -> Result<Option<String>, ConfigError> {
        if s.and_then(|s| s.enabled) == Some(false) {
            return Ok(None);
        }
        let path = s
            .and_then(|s| s.path.clone())
            .unwrap_or_else(|| "/.well-known/poortwachter/check".to_string());
        match crate::route::normalise(&path) {
            Ok(n) if n == path.as_str() && path.len() > 1 => Ok(Some(path)),
            _ => Err(self.invalid(
                "self_check.path",
                format!("{path:?}"),
                "expected a normalised path such as \"/.well-known/poortwachter/check\"",
            )),
        }
    }

    fn missing(&self, key: &str, s: &str) -> Result<Missing, ConfigError> {
        s.parse().map_err(|_| {
            self.invalid(
                key,
                format!("{s:?}"),
                "expected \"block\" or \"any-site\" (for pages before login)",
            )
        })
    }

    fn site_binding(&self, b: &file::SiteBindingFile) -> Result<SiteBinding, ConfigError> {
        let source = match (&b.cookie, &b.header) {
            (Some(c), None) => {
                if c.is_empty()
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
                {
                    return Err(self.invalid(
                        "site_binding.cookie",
                        format!("{c:?}"),
                        "expected a cookie name such as \"afname_site\"",
                    ));
                }
                TokenSource::Cookie(c.clone())
            }
            (None, Some(h)) => {
                let name = HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    self.invalid(
                        "site_binding.header",
                        format!("{h:?}"),
                        "not a valid HTTP header name",
                    )
                })?;
                if crate::forwarding::is_gate_owned(name.as_str(), "x-forwarded-for")
                    || name == http::header::HOST
                {
                    return Err(self.invalid(
                        "site_binding.header",
                        format!("{h:?}"),
                        "this header has another meaning; use e.g. \"x-afname-site\"",
                    ));
                }
                TokenSource::Header(name)
            }
            (Some(_), Some(h)) => {
                return Err(self.invalid(
                    "site_binding.header",
                    format!("{h:?}"),
                    "set either site_binding.cookie or site_binding.header, not both",
                ))
            }
            (None, None) => {
                return Err(ConfigError::Missing {
                    file: self.file.clone(),
                    key: "site_binding.cookie".into(),
                    problem:
                        "site binding needs the cookie (or header) that carries the site claim"
                            .into(),
                })
            }
        };
        let claim = b.claim.clone().unwrap_or_else(|| "site".to_string());
        if claim.is_empty() {
            return Err(self.invalid("site_binding.claim", "\"\"", "expected a claim name"));
        }
        let missing = match &b.missing {
            None => Missing::Block,
            Some(m) => self.missing("site_binding.missing", m)?,
        };
        for (key, v) in [
            ("site_binding.issuer", &b.issuer),
            ("site_binding.audience", &b.audience),
        ] {
            if v.as_deref() == Some("") {
                return Err(self.invalid(key, "\"\"", "leave it out, or give the expected value"));
            }
        }
        if b.key.is_empty() {
            return Err(ConfigError::Missing {
                file: self.file.clone(),
                key: "site_binding.key".into(),
                problem: "at least one [[site_binding.key]] is needed to verify site claims".into(),
            });
        }
        let mut keys = Vec::with_capacity(b.key.len());
        for (i, k) in b.key.iter().enumerate() {
            let key = |f: &str| format!("site_binding.key[{i}].{f}");
            let alg: Alg = k.alg.parse().map_err(|_| {
                self.invalid(
                    &key("alg"),
                    format!("{:?}", k.alg),
                    "expected \"HS256\" or \"ES256\"",
                )
            })?;
            let file = match (alg, &k.secret_file, &k.public_key_file) {
                (Alg::Hs256, Some(f), None) => KeyFile::Secret(PathBuf::from(f)),
                (Alg::Es256, None, Some(f)) => KeyFile::PublicKey(PathBuf::from(f)),
                (Alg::Hs256, _, Some(f)) => {
                    return Err(self.invalid(
                        &key("public_key_file"),
                        format!("{f:?}"),
                        "HS256 uses a shared secret: set secret_file instead",
                    ))
                }
                (Alg::Es256, Some(f), _) => {
                    return Err(self.invalid(
                        &key("secret_file"),
                        format!("{f:?}"),
                        "ES256 uses a PEM public key: set public_key_file instead",
                    ))
                }
                (Alg::Hs256, None, None) | (Alg::Es256, None, None) => {
                    return Err(ConfigError::Missing {
                        file: self.file.clone(),
                        key: key(if alg == Alg::Hs256 {
                            "secret_file"
                        } else {
                            "public_key_file"
                        }),
                        problem: format!(
                            "a {} key needs its key material from a file",
                            alg.as_str()
                        ),
                    })
                }
            };
            keys.push(KeyConfig {
                kid: k.kid.clone(),
                alg,
                file,
            });
        }
        let settings = SiteBindingConfig {
            source,
            claim,
            missing,
            issuer: b.issuer.clone(),
            audience: b.audience.clone(),
            keys,
        };
        // Read the keys now, so `check` and a reload refuse a config whose keys are unusable.
        Verifier::load(&settings).map_err(|error| ConfigError::SiteKey {
            file: self.file.clone(),
            error,
        })?;
        Ok(SiteBinding(Arc::new(settings)))
    }

    fn routes(
        &self,
        routes: &[file::RouteFile],
        site_binding: bool,
    ) -> Result<Vec<crate::route::Route>, ConfigError> {
        use crate::decision::RouteAction;
        let mut out: Vec<crate::route::Route> = Vec::with_capacity(routes.len());
        for (i, r) in routes.iter().enumerate() {
            let key = |k: &str| format!("route[{i}].{k}");
            let missing = match &r.missing {
                None => None,
                Some(_) if !site_binding => {
                    return Err(self.invalid(
                        &key("missing"),
                        format!("{:?}", r.missing.clone().unwrap_or_default()),
                        "only meaningful with [site_binding]",
                    ))
                }
                Some(m) => Some(self.missing(&key("missing"), m)?),
            };
            let action = match r.action.as_deref() {
                None | Some("enforce") => RouteAction::Enforce,
                Some("bypass") => RouteAction::Bypass,
                Some("block") => RouteAction::Block,
                Some(other) => {
                    return Err(self.invalid(
                        &key("action"),
                        format!("{other:?}"),
                        "expected \"enforce\", \"bypass\" or \"block\"",
                    ))
                }
            };
            let prefix = &r.path_prefix;
            match crate::route::normalise(prefix) {
                Ok(n) if n == prefix.as_str() => {}
                Ok(n) => {
                    return Err(self.invalid(
                        &key("path_prefix"),
                        format!("{prefix:?}"),
                        &format!("write it normalised: {n:?}"),
                    ))
                }
                Err(e) => {
                    return Err(self.invalid(
                        &key("path_prefix"),
                        format!("{prefix:?}"),
                        &e.to_string(),
                    ))
                }
            }
            let host = match &r.host {
                None => None,
                Some(h) => {
                    let n = crate::route::normalise_host(h);
                    if n.is_empty()
                        || n != h.to_ascii_lowercase()
                        || !n
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
                    {
                        return Err(self.invalid(
                            &key("host"),
                            format!("{h:?}"),
                            "expected a host name without port, e.g. \"afname.example.nl\"",
                        ));
                    }
                    Some(n)
                }
            };
            let name = r.name.clone().unwrap_or_else(|| format!("route-{}", i + 1));
            if name.is_empty()
                || name == crate::metrics::DEFAULT_ROUTE
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(self.invalid(
                    &key("name"),
                    format!("{name:?}"),
                    "expected letters, digits, - or _ (and not \"default\")",
                ));
            }
            if let Some(j) = out.iter().position(|o| o.name == name) {
                return Err(self.invalid(
                    &key("name"),
                    format!("{name:?}"),
                    &format!("already used by route[{j}]"),
                ));
            }
            out.push(crate::route::Route {
                name,
                host,
                path_prefix: prefix.clone(),
                action,
                missing,
            });
        }
        Ok(out)
    }

    fn tls(&self, p: &file::ProxyFile) -> Result<Option<TlsConfig>, ConfigError> {
        let listen = match &p.tls_listen {
            None => {
                for (key, set) in [
                    ("proxy.tls_cert_file", &p.tls_cert_file),
                    ("proxy.tls_key_file", &p.tls_key_file),
                ] {
                    if let Some(v) = set {
                        return Err(self.invalid(
                            key,
                            format!("{v:?}"),
                            "only used with proxy.tls_listen",
                        ));
                    }
                }
                return Ok(None);
            }
            Some(l) if l.is_empty() => return Ok(None),
            Some(l) => l
                .iter()
                .map(|s| self.socket_addr("proxy.tls_listen", s))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let file = |key: &str, v: &Option<String>| -> Result<PathBuf, ConfigError> {
            let Some(v) = v else {
                return Err(ConfigError::Missing {
                    file: self.file.clone(),
                    key: key.to_string(),
                    problem: "proxy.tls_listen needs a PEM certificate chain and key".into(),
                });
            };
            let text = std::fs::read_to_string(v)
                .map_err(|e| self.invalid(key, format!("{v:?}"), &format!("cannot read: {e}")))?;
            if !text.contains("-----BEGIN ") {
                return Err(self.invalid(key, format!("{v:?}"), "not a PEM file"));
            }
            Ok(PathBuf::from(v))
        };
        Ok(Some(TlsConfig {
            listen,
            cert_file: file("proxy.tls_cert_file", &p.tls_cert_file)?,
            key_file: file("proxy.tls_key_file", &p.tls_key_file)?,
        }))
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
        if crate::forwarding::unusable_client_ip_header(client_ip_header.as_str()) {
            return Err(self.invalid(
                "upstream.client_ip_header",
                format!("{header_text:?}"),
                "this header has another meaning and cannot carry the client IP; use e.g. \"x-forwarded-for\" or \"x-real-ip\"",
            ));
        }
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
            // A few short prefixes together are a /0 in disguise. No real proxy fleet needs
            // more than an IPv4 /8 or an IPv6 /7 (fc00::/7, all unique-local space).
            let shortest = if net.addr().is_ipv4() { 8 } else { 7 };
            if net.prefix_len() < shortest {
                return Err(self.invalid(
                    &key,
                    format!("{s:?}"),
                    &format!(
                        "trusting so many addresses would let clients choose their own address; \
                         the broadest accepted is /{shortest}"
                    ),
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
        // A mapped network such as ::ffff:0.0.0.0/96 is an IPv4 /0 in disguise.
        if let Some(n) = trusted
            .nets()
            .iter()
            .find(|n| n.addr().is_ipv4() && n.prefix_len() < 8)
        {
            return Err(self.invalid(
                "client_ip.trusted_proxies",
                format!("\"{n}\" (an IPv4-mapped network)"),
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
        let overrides = match a.overrides.as_deref() {
            None => None,
            Some("") => {
                return Err(self.invalid("allowlist.overrides", "\"\"", "expected a file path"))
            }
            Some(p) => Some(PathBuf::from(p)),
        };
        let max_override_days = a.max_override_days.unwrap_or(14);
        if !(1..=90).contains(&max_override_days) {
            return Err(self.invalid(
                "allowlist.max_override_days",
                max_override_days,
                "expected 1 to 90: an override is for an emergency, the admin store is the lasting fix",
            ));
        }
        let source = self.source(&a)?;
        let poll_interval = self.duration(
            "allowlist.poll_interval",
            a.poll_interval.as_deref(),
            Duration::from_secs(30),
        )?;
        if poll_interval < Duration::from_secs(1) {
            return Err(self.invalid(
                "allowlist.poll_interval",
                format!("{:?}", a.poll_interval.unwrap_or_default()),
                "must be at least 1s",
            ));
        }
        let max_shrink = a.max_shrink.unwrap_or(0.2);
        if !(0.0..=1.0).contains(&max_shrink) {
            return Err(self.invalid(
                "allowlist.max_shrink",
                max_shrink,
                "expected a fraction from 0.0 to 1.0 (0.2 = refuse losing more than 20% of the ranges)",
            ));
        }
        let last_good = match a.last_good.as_deref() {
            None => None,
            Some("") => {
                return Err(self.invalid("allowlist.last_good", "\"\"", "expected a file path"))
            }
            Some(p) => Some(PathBuf::from(p)),
        };
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

    fn source(&self, a: &file::AllowlistFile) -> Result<SourceConfig, ConfigError> {
        let src = a.source.trim();
        if src.is_empty() {
            return Err(self.invalid(
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
                return Err(self.invalid(
                    key,
                    format!("(set, with source {src:?})"),
                    "only applies to an https:// admin-store source",
                ));
            }
            return Ok(SourceConfig::File(PathBuf::from(src)));
        }
        if lower.starts_with("http://") && !is_loopback_url(src) {
            return Err(self.invalid(
                "allowlist.source",
                format!("{src:?}"),
                "plain http:// is only allowed to a loopback address; use https://",
            ));
        }
        if src.contains('@') {
            return Err(self.invalid(
                "allowlist.source",
                "(a URL with credentials)",
                "put credentials in allowlist.token_file or allowlist.token_env, never in the URL",
            ));
        }
        let token = match (&a.token_file, &a.token_env) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "allowlist.token_env",
                    format!("{:?}", a.token_env.clone().unwrap_or_default()),
                    "set either allowlist.token_file or allowlist.token_env, not both",
                ))
            }
            (Some(f), None) => Some(TokenConfig::File(PathBuf::from(f))),
            (None, Some(e)) => Some(TokenConfig::Env(e.clone())),
            (None, None) => None,
        };
        let max_body_bytes = a.max_body_bytes.unwrap_or(32 * 1024 * 1024);
        if max_body_bytes < 1024 {
            return Err(self.invalid(
                "allowlist.max_body_bytes",
                max_body_bytes,
                "must be at least 1024",
            ));
        }
        Ok(SourceConfig::Http {
            url: src.to_string(),
            token,
            ca_file: a.ca_file.as_ref().map(PathBuf::from),
            connect_timeout: self.duration(
                "allowlist.connect_timeout",
                a.connect_timeout.as_deref(),
                Duration::from_secs(5),
            )?,
            timeout: self.duration(
                "allowlist.timeout",
                a.timeout.as_deref(),
                Duration::from_secs(30),
            )?,
            max_body_bytes,
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
                let token = text.strip_suffix('\n').unwrap_or(&text);
                let token = token.strip_suffix('\r').unwrap_or(token).to_string();
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
        let client_ip = match (l.client_ip.as_deref(), &l.hash_secret_file) {
            (None | Some("truncated"), None) => crate::privacy::LogAddress::Truncated,
            (Some("full"), None) => crate::privacy::LogAddress::Full,
            (Some("hashed"), Some(path)) => {
                let secret = std::fs::read(path).map_err(|e| {
                    self.invalid(
                        "log.hash_secret_file",
                        format!("{path:?}"),
                        &format!("cannot read: {e}"),
                    )
                })?;
                let secret = secret.strip_suffix(b"\n").unwrap_or(&secret).to_vec();
                if secret.len() < 16 {
                    return Err(self.invalid(
                        "log.hash_secret_file",
                        format!("{path:?}"),
                        "the secret must be at least 16 bytes",
                    ));
                }
                crate::privacy::LogAddress::Hashed { secret }
            }
            (Some("hashed"), None) => {
                return Err(ConfigError::Missing {
                    file: self.file.clone(),
                    key: "log.hash_secret_file".into(),
                    problem: "log.client_ip = \"hashed\" needs a secret shared by all replicas"
                        .into(),
                })
            }
            (Some("full" | "truncated") | None, Some(path)) => {
                return Err(self.invalid(
                    "log.hash_secret_file",
                    format!("{path:?}"),
                    "only used with log.client_ip = \"hashed\"",
                ))
            }
            (Some(other), _) => {
                return Err(self.invalid(
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

/// Whether an `http://` URL points at a loopback host (tests may use plain HTTP there).
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.get("http://".len()..) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
