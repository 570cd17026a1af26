//! The upstream (the test environment): the `[upstream]` section, as written and as checked.
//! The pool that picks an address per request, resolves names and checks health is
//! [`pool`].

pub mod pool;

use crate::setting::{self, SettingError};
use http::HeaderName;
use pingora::utils::tls::{CertKey, WrappedX509};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `[upstream]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub addrs: Vec<String>,
    pub client_ip_header: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub upgrade_idle_timeout: Option<String>,
    pub keepalive_pool_size: Option<usize>,
    pub write_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub resolve_interval: Option<String>,
    pub fail_timeout: Option<String>,
    pub tls: Option<bool>,
    pub sni: Option<String>,
    pub ca_file: Option<String>,
    pub verify: Option<bool>,
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
    pub health_check: Option<HealthCheckFile>,
}

/// `[upstream.health_check]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    pub path: String,
    pub host: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub healthy_threshold: Option<usize>,
    pub unhealthy_threshold: Option<usize>,
}

/// One upstream address: an IP, or a host name resolved again every `resolve_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    Ip(SocketAddr),
    Name { host: String, port: u16 },
}

impl std::fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamAddr::Ip(a) => write!(f, "{a}"),
            UpstreamAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// HTTPS to the upstream.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// The name sent (SNI) and verified; `None`: each address's own host name.
    pub sni: Option<String>,
    /// The authorities trusted for the upstream's certificate; `None`: the system's.
    pub ca_file: Option<PathBuf>,
    pub ca: Option<Arc<[WrappedX509]>>,
    /// Off only for a test environment without a valid certificate (never in production).
    pub verify: bool,
    pub client_cert: Option<ClientCert>,
}

/// What identifies HTTPS settings across a reload: a change needs a restart.
pub type TlsIdentity = Option<(Option<String>, Option<PathBuf>, bool, Option<PathBuf>)>;

/// The [`TlsIdentity`] of `tls`.
pub fn tls_identity(tls: Option<&UpstreamTls>) -> TlsIdentity {
    tls.map(|t| {
        (
            t.sni.clone(),
            t.ca_file.clone(),
            t.verify,
            t.client_cert.as_ref().map(|c| c.file.clone()),
        )
    })
}

/// A client certificate and key shown to the upstream.
#[derive(Clone)]
pub struct ClientCert {
    pub file: PathBuf,
    pub cert_key: Arc<CertKey>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("file", &self.file)
            .finish()
    }
}

/// Active health checks: an HTTP GET of `path` on every address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    pub path: String,
    /// The `Host` header of the check; `None`: the address's host name (or `sni`, or `localhost`).
    pub host: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive passes that bring a failed address back.
    pub healthy_threshold: usize,
    /// Consecutive failures that take an address out.
    pub unhealthy_threshold: usize,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub addrs: Vec<UpstreamAddr>,
    pub client_ip_header: HeaderName,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// How long an idle upstream connection is kept for reuse.
    pub idle_timeout: Duration,
    /// An upgraded connection (WebSocket) is closed when neither direction has moved this
    /// long: the read timeout of both its sides in place of `read_timeout` (and of Pingora's
    /// 60 s on the client side), so a quiet test page keeps its socket.
    pub upgrade_idle_timeout: Duration,
    pub keepalive_pool_size: usize,
    /// How often host names in `addrs` are resolved again.
    pub resolve_interval: Duration,
    /// An address that failed a request (refused, reset, timed out) is skipped this long;
    /// zero: never skipped for that.
    pub fail_timeout: Duration,
    pub tls: Option<UpstreamTls>,
    pub health_check: Option<HealthCheckConfig>,
}

/// How long an upgraded connection may be silent when `[upstream]` does not say: longer
/// than a pupil reads one question, shorter than a test day.
const DEFAULT_UPGRADE_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
const UPGRADE_IDLE_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));

/// `upstream.upgrade_idle_timeout` checked: a duration within [`UPGRADE_IDLE_TIMEOUT_RANGE`].
fn upgrade_idle_timeout(value: Option<&str>) -> Result<Duration, SettingError> {
    let key = "upstream.upgrade_idle_timeout";
    let d = setting::duration(key, value, DEFAULT_UPGRADE_IDLE_TIMEOUT)?;
    let (min, max) = UPGRADE_IDLE_TIMEOUT_RANGE;
    if d < min || d > max {
        return Err(SettingError::invalid(
            key,
            format!("{:?}", value.unwrap_or_default()),
            "expected between 1s and 24h",
        ));
    }
    Ok(d)
}

impl UpstreamConfig {
    /// The section is required: without it there is nothing to forward to.
    pub fn check(u: Option<UpstreamFile>) -> Result<UpstreamConfig, SettingError> {
        match u {
            Some(u) => u.try_into(),
            None => Err(SettingError::missing(
                "upstream.addrs",
                "the gate needs the address of the test environment to forward to",
            )),
        }
    }
}

impl TryFrom<UpstreamFile> for UpstreamConfig {
    type Error = SettingError;

    fn try_from(u: UpstreamFile) -> Result<UpstreamConfig, SettingError> {
        if u.addrs.is_empty() {
            return Err(SettingError::invalid(
                "upstream.addrs",
                "[]",
                "at least one address is needed",
            ));
        }
        let addrs = u
            .addrs
            .iter()
            .map(|s| upstream_addr(s))
            .collect::<Result<Vec<_>, _>>()?;
        let header_text = u.client_ip_header.as_deref().unwrap_or("x-forwarded-for");
        let client_ip_header = HeaderName::from_bytes(header_text.as_bytes()).map_err(|_| {
            SettingError::invalid(
                "upstream.client_ip_header",
                format!("{header_text:?}"),
                "not a valid HTTP header name",
            )
        })?;
        if crate::forwarding::unusable_client_ip_header(client_ip_header.as_str()) {
            return Err(SettingError::invalid(
                "upstream.client_ip_header",
                format!("{header_text:?}"),
                "this header has another meaning and cannot carry the client IP; use e.g. \"x-forwarded-for\" or \"x-real-ip\"",
            ));
        }
        let tls = upstream_tls(&u, &addrs)?;
        let health_check = u.health_check.as_ref().map(health_check).transpose()?;
        if let (Some(t), Some(_)) = (&tls, &health_check) {
            // The check sends one name (SNI) to every address.
            let mut names = addrs.iter().filter_map(|a| match a {
                UpstreamAddr::Name { host, .. } => Some(host),
                UpstreamAddr::Ip(_) => None,
            });
            let first = names.next();
            if t.sni.is_none() && names.any(|n| Some(n) != first) {
                return Err(SettingError::missing(
                    "upstream.sni",
                    "upstream.addrs has several host names and [upstream.health_check] checks every address with one name: set the certificate's name in sni",
                ));
            }
        }
        let d = |key: &str, v: &Option<String>, default: u64, (min, max): (u64, u64)| {
            let d = setting::duration(key, v.as_deref(), Duration::from_secs(default))?;
            if d < Duration::from_millis(min) || d > Duration::from_millis(max) {
                return Err(SettingError::invalid(
                    key,
                    format!("{:?}", v.as_deref().unwrap_or_default()),
                    format!("expected between {} and {}", ms(min), ms(max)),
                ));
            }
            Ok(d)
        };
        Ok(UpstreamConfig {
            addrs,
            client_ip_header,
            connect_timeout: d(
                "upstream.connect_timeout",
                &u.connect_timeout,
                2,
                (10, 60_000),
            )?,
            read_timeout: d(
                "upstream.read_timeout",
                &u.read_timeout,
                60,
                (10, 3_600_000),
            )?,
            write_timeout: d(
                "upstream.write_timeout",
                &u.write_timeout,
                60,
                (10, 3_600_000),
            )?,
            idle_timeout: d(
                "upstream.idle_timeout",
                &u.idle_timeout,
                60,
                (1_000, 3_600_000),
            )?,
            upgrade_idle_timeout: upgrade_idle_timeout(u.upgrade_idle_timeout.as_deref())?,
            keepalive_pool_size: u.keepalive_pool_size.unwrap_or(128),
            resolve_interval: d(
                "upstream.resolve_interval",
                &u.resolve_interval,
                10,
                (1_000, 3_600_000),
            )?,
            fail_timeout: d("upstream.fail_timeout", &u.fail_timeout, 10, (0, 3_600_000))?,
            tls,
            health_check,
        })
    }
}

/// `ms` milliseconds as a duration text.
fn ms(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// `IP:port` or `name:port`.
fn upstream_addr(s: &str) -> Result<UpstreamAddr, SettingError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(UpstreamAddr::Ip(a));
    }
    let bad = |problem: &str| SettingError::invalid("upstream.addrs", format!("{s:?}"), problem);
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| bad("expected IP:port or name:port (e.g. \"toets.internal:8443\")"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port must be 1 to 65535"))?;
    if host.contains(':') || host.starts_with('[') {
        return Err(bad(
            "an IPv6 address needs brackets: \"[2001:db8::1]:8080\"",
        ));
    }
    crate::tls::check_name(host)
        .ok()
        .filter(|_| !host.starts_with("*."))
        .ok_or_else(|| bad("not an IP address or a DNS host name"))?;
    Ok(UpstreamAddr::Name {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// A PEM file's certificates, each parsed (so a broken one is an error here, not a panic
/// when a connection needs it).
fn pem_certificates(
    key: &str,
    path: &Path,
    authorities: bool,
) -> Result<Vec<Vec<u8>>, SettingError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let shown = format!("{:?}", path.display().to_string());
    let bytes = std::fs::read(path)
        .map_err(|e| SettingError::invalid(key, &shown, format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            SettingError::invalid(key, &shown, format!("not a PEM certificate file: {e}"))
        })?;
    if certs.is_empty() {
        return Err(SettingError::invalid(
            key,
            &shown,
            "no CERTIFICATE in this PEM file",
        ));
    }
    for c in &certs {
        use x509_parser::prelude::{FromDer, X509Certificate};
        X509Certificate::from_der(c.as_ref()).map_err(|e| {
            SettingError::invalid(key, &shown, format!("a certificate cannot be parsed: {e}"))
        })?;
        // What the connector does with an authority: refused here, not on every connection.
        if !authorities {
            continue;
        }
        rustls::RootCertStore::empty().add(c.clone()).map_err(|e| {
            SettingError::invalid(
                key,
                &shown,
                format!("a certificate cannot be trusted as an authority: {e}"),
            )
        })?;
    }
    Ok(certs.into_iter().map(|c| c.as_ref().to_vec()).collect())
}

fn upstream_tls(
    u: &UpstreamFile,
    addrs: &[UpstreamAddr],
) -> Result<Option<UpstreamTls>, SettingError> {
    if u.tls != Some(true) {
        for (key, set) in [
            ("upstream.sni", u.sni.is_some()),
            ("upstream.ca_file", u.ca_file.is_some()),
            ("upstream.verify", u.verify.is_some()),
            ("upstream.client_cert_file", u.client_cert_file.is_some()),
            ("upstream.client_key_file", u.client_key_file.is_some()),
        ] {
            if set {
                return Err(SettingError::invalid(
                    key,
                    "(set)",
                    "only used with upstream.tls = true",
                ));
            }
        }
        return Ok(None);
    }
    let sni = match &u.sni {
        Some(n) => {
            crate::tls::check_name(n)
                .ok()
                .filter(|_| !n.starts_with("*."))
                .ok_or_else(|| {
                    SettingError::invalid("upstream.sni", format!("{n:?}"), "not a DNS host name")
                })?;
            Some(n.to_ascii_lowercase())
        }
        None => None,
    };
    // The name verified is the SNI: an address without a name of its own needs one written.
    if sni.is_none() {
        if let Some(ip) = addrs.iter().find(|a| matches!(a, UpstreamAddr::Ip(_))) {
            return Err(SettingError::missing(
                "upstream.sni",
                format!("upstream.addrs has the IP address {ip}: with tls = true, name the certificate's host name in sni"),
            ));
        }
    }
    let ca_file = setting::file_path("upstream.ca_file", u.ca_file.as_deref())?;
    let ca = match &ca_file {
        Some(path) => {
            let certs = pem_certificates("upstream.ca_file", path, true)?;
            let wrapped: Vec<WrappedX509> = certs
                .into_iter()
                .map(|der| WrappedX509::new(der, pingora::utils::tls::parse_x509))
                .collect();
            Some(Arc::from(wrapped))
        }
        None => None,
    };
    let client_cert = match (
        setting::file_path("upstream.client_cert_file", u.client_cert_file.as_deref())?,
        setting::file_path("upstream.client_key_file", u.client_key_file.as_deref())?,
    ) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(SettingError::missing(
                "upstream.client_key_file",
                "the key of upstream.client_cert_file",
            ))
        }
        (None, Some(_)) => {
            return Err(SettingError::missing(
                "upstream.client_cert_file",
                "the certificate of upstream.client_key_file",
            ))
        }
        (Some(cert), Some(key)) => Some(client_cert(&cert, &key)?),
    };
    Ok(Some(UpstreamTls {
        sni,
        ca_file,
        ca,
        verify: u.verify.unwrap_or(true),
        client_cert,
    }))
}

/// The client certificate, checked the way the TLS listeners' certificates are.
fn client_cert(cert: &Path, key: &Path) -> Result<ClientCert, SettingError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let source = crate::tls::CertificateSource {
        cert_key: "upstream.client_cert_file".to_string(),
        key_key: "upstream.client_key_file".to_string(),
        cert_file: cert.to_path_buf(),
        key_file: key.to_path_buf(),
        names: Some(vec!["client".to_string()]),
    };
    // Reads both and checks that the key is the certificate's own.
    crate::tls::Certificates::load(std::slice::from_ref(&source))?;
    let chain = pem_certificates("upstream.client_cert_file", cert, false)?;
    let key_pem = std::fs::read(key).map_err(|e| {
        SettingError::invalid(
            "upstream.client_key_file",
            format!("{:?}", key.display().to_string()),
            format!("cannot read: {e}"),
        )
    })?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        SettingError::invalid(
            "upstream.client_key_file",
            format!("{:?}", key.display().to_string()),
            format!("no usable PRIVATE KEY: {e}"),
        )
    })?;
    Ok(ClientCert {
        file: cert.to_path_buf(),
        cert_key: Arc::new(CertKey::new(chain, key_der.secret_der().to_vec())),
    })
}

fn health_check(h: &HealthCheckFile) -> Result<HealthCheckConfig, SettingError> {
    if !h.path.starts_with('/')
        || h.path.bytes().any(|b| b.is_ascii_control() || b == b' ')
        || pool::health_request(&h.path, "localhost").is_err()
    {
        return Err(SettingError::invalid(
            "upstream.health_check.path",
            format!("{:?}", h.path),
            "expected a path starting with /, without spaces",
        ));
    }
    if let Some(host) = &h.host {
        if host.is_empty()
            || host.bytes().any(|b| b.is_ascii_control() || b == b' ')
            || pool::health_request("/", host).is_err()
        {
            return Err(SettingError::invalid(
                "upstream.health_check.host",
                format!("{host:?}"),
                "expected a host name",
            ));
        }
    }
    let interval = setting::duration(
        "upstream.health_check.interval",
        h.interval.as_deref(),
        Duration::from_secs(2),
    )?;
    if interval < Duration::from_millis(100) || interval > Duration::from_secs(300) {
        return Err(SettingError::invalid(
            "upstream.health_check.interval",
            format!("{:?}", h.interval.as_deref().unwrap_or_default()),
            "expected between 100ms and 5m",
        ));
    }
    let timeout = setting::duration(
        "upstream.health_check.timeout",
        h.timeout.as_deref(),
        Duration::from_secs(1),
    )?;
    if timeout < Duration::from_millis(10) || timeout > interval.max(Duration::from_millis(10)) {
        return Err(SettingError::invalid(
            "upstream.health_check.timeout",
            format!("{:?}", h.timeout.as_deref().unwrap_or_default()),
            "expected between 10ms and the interval",
        ));
    }
    let threshold = |key: &str, v: Option<usize>, default: usize| {
        let v = v.unwrap_or(default);
        if !(1..=100).contains(&v) {
            return Err(SettingError::invalid(key, v, "expected between 1 and 100"));
        }
        Ok(v)
    };
    Ok(HealthCheckConfig {
        path: h.path.clone(),
        host: h.host.clone(),
        interval,
        timeout,
        healthy_threshold: threshold(
            "upstream.health_check.healthy_threshold",
            h.healthy_threshold,
            2,
        )?,
        unhealthy_threshold: threshold(
            "upstream.health_check.unhealthy_threshold",
            h.unhealthy_threshold,
            2,
        )?,
    })
}
