//! The proxy listeners: the `[proxy]` section (plain and TLS addresses, `[[proxy.listener]]`
//! tables with the PROXY protocol, worker threads, shutdown timing), as written and as
//! checked.

use crate::client_ip::{trusted_nets, TrustedProxies};
use crate::proxy_protocol::Accept;
use crate::setting::{self, SettingError};
use crate::tls::{CertificateSource, Certificates};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `[proxy] body_min_rate`: 1 KiB/s, far below any school connection's upload speed.
const DEFAULT_BODY_MIN_RATE: usize = 1024;

/// `[proxy]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub listen: Option<Vec<String>>,
    pub listener: Option<Vec<ListenerFile>>,
    pub tls_listen: Option<Vec<String>>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub certificate: Option<Vec<CertificateFile>>,
    pub threads: Option<usize>,
    pub header_timeout: Option<String>,
    pub max_header_bytes: Option<usize>,
    pub keepalive_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub body_min_rate: Option<usize>,
    pub max_requests_per_connection: Option<usize>,
    pub max_header_count: Option<usize>,
    pub max_connections: Option<usize>,
    pub grace_period: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub upgrade_socket: Option<String>,
    pub h2_max_concurrent_streams: Option<usize>,
    pub h2c: Option<bool>,
}

/// One `[[proxy.listener]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub addr: String,
    pub proxy_protocol: Option<String>,
    pub proxy_protocol_from: Option<Vec<String>>,
    pub proxy_protocol_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub tls: Option<bool>,
    pub h2c: Option<bool>,
}

/// One `[[proxy.certificate]]` table as written: a certificate beside the default one, chosen
/// for the names it serves (SNI).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    pub cert_file: String,
    pub key_file: String,
    pub names: Option<Vec<String>>,
}

/// How long a client gets for a whole request header when `[proxy]` does not say.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Request header limits when `[proxy]` does not say: room for the cookies of a test
/// environment several times over, far below Pingora's own limit (1 MiB, 256 fields).
const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
const DEFAULT_MAX_HEADER_COUNT: usize = 100;

/// Open connections per listener when `[proxy]` does not say: several times a large
/// school's pupils at once, and well inside the systemd unit's `LimitNOFILE` (65536) with an
/// upstream connection for each.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const MAX_CONNECTIONS_RANGE: (usize, usize) = (1, 1_000_000);

/// `value` (or `default`) at `key`, within `range` inclusive.
fn bounded(
    key: &str,
    value: Option<usize>,
    default: usize,
    (min, max): (usize, usize),
) -> Result<usize, SettingError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(SettingError::invalid(
            key,
            v,
            format!("expected between {min} and {max}"),
        ));
    }
    Ok(v)
}

/// A duration in whole seconds, `default` when not written, within `min`–`max` seconds.
fn whole_seconds_between(
    key: &str,
    value: Option<&str>,
    default: u64,
    (min, max): (u64, u64),
) -> Result<Duration, SettingError> {
    let d = setting::whole_seconds(key, value, default)?;
    if d < Duration::from_secs(min) || d > Duration::from_secs(max) {
        return Err(SettingError::invalid(
            key,
            format!("{:?}", value.unwrap_or_default()),
            format!("expected between {min}s and {max}s"),
        ));
    }
    Ok(d)
}

/// How long a balancer gets to send its PROXY header when the table does not say.
const DEFAULT_PROXY_PROTOCOL_TIMEOUT: Duration = Duration::from_secs(3);

/// A plain listener whose connections begin with a PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocolListener {
    pub addr: SocketAddr,
    pub accept: Accept,
    /// The peers that must send it (the balancers); any other peer is refused.
    pub from: TrustedProxies,
    /// The whole header must be there within this time of the connection's start.
    pub timeout: Duration,
    /// Open connections at most; one more is answered a 503 page.
    pub max_connections: usize,
    /// TLS after the header (HTTP/1.1 and HTTP/2 by ALPN), with `[proxy]`'s certificate.
    pub tls: bool,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Plain listeners without the PROXY protocol: `listen` and tables with it off.
    pub listen: Vec<SocketAddr>,
    pub proxy_protocol: Vec<ProxyProtocolListener>,
    /// TLS listeners (HTTP/1.1 and HTTP/2 by ALPN), with one certificate chain and key.
    pub tls: Option<TlsConfig>,
    pub threads: usize,
    /// Each request header must be complete within this (a slowloris connection is closed).
    pub header_timeout: Duration,
    /// A request header larger than this is answered 431 with a page; one over twice this is
    /// closed while it is read.
    pub max_header_bytes: usize,
    /// A request header with more fields than this is answered 431.
    pub max_header_count: usize,
    /// How long an idle keep-alive connection waits for its next request.
    pub keepalive_timeout: Duration,
    /// How long a request body may send nothing, between two reads (nginx's
    /// `client_body_timeout`); then the request is answered 408.
    pub body_timeout: Duration,
    /// After `body_timeout`, a request body must have averaged at least this many bytes a
    /// second since its header, or it is answered 408 (a client that dribbles its body a
    /// byte at a time passes every per-read timeout). 0 turns it off.
    pub body_min_rate: u64,
    /// A connection is closed after answering this many requests.
    pub max_requests_per_connection: u32,
    /// Open connections per listener (`[proxy] max_connections`, or its table's own); one
    /// more is answered a 503 page. For every address, PROXY protocol listeners included.
    pub max_connections: Vec<(SocketAddr, usize)>,
    /// How long SIGTERM keeps serving in-flight and keep-alive requests before shutdown.
    pub grace_period: Duration,
    /// How long the runtimes get to finish after the grace period.
    pub shutdown_timeout: Duration,
    /// Where a new process started with `run --upgrade` waits for the listening sockets of
    /// the running one (a Unix socket; its directory must be writable by the gate's user
    /// only, as whoever listens there is handed the sockets).
    pub upgrade_socket: PathBuf,
    /// HTTP/2: streams one connection may have open at once.
    pub h2_max_concurrent_streams: u32,
    /// The plain listeners (PROXY protocol ones included) that also speak HTTP/2 with prior
    /// knowledge (h2c): `[proxy] h2c` for the `listen` addresses, a table's own `h2c` for it.
    pub h2c: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub listen: Vec<SocketAddr>,
    /// Where the certificates are read from, the default (`tls_cert_file`) first.
    pub sources: Vec<CertificateSource>,
    /// The certificates as read when this configuration was loaded.
    pub certificates: Arc<Certificates>,
}

impl ProxyConfig {
    /// Every listener address with the key that set it, plain first.
    pub fn addrs(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        self.listen
            .iter()
            .map(|a| ("proxy.listen", *a))
            .chain(
                self.proxy_protocol
                    .iter()
                    .map(|l| ("proxy.listener", l.addr)),
            )
            .chain(
                self.tls
                    .iter()
                    .flat_map(|t| t.listen.iter().map(|a| ("proxy.tls_listen", *a))),
            )
    }
}

impl TryFrom<ProxyFile> for ProxyConfig {
    type Error = SettingError;

    fn try_from(p: ProxyFile) -> Result<ProxyConfig, SettingError> {
        let mut listen = match &p.listen {
            // The default only when no table names a listener either.
            None if p.listener.is_some() => Vec::new(),
            None => vec![setting::socket_addr("proxy.listen", DEFAULT_LISTEN)?],
            Some(list) if list.is_empty() => {
                return Err(SettingError::invalid(
                    "proxy.listen",
                    "[]",
                    "at least one address is needed",
                ))
            }
            Some(list) => list
                .iter()
                .map(|s| setting::socket_addr("proxy.listen", s))
                .collect::<Result<_, _>>()?,
        };
        // `[proxy] h2c` is for the `listen` addresses; each table says for itself.
        let mut h2c = match p.h2c {
            Some(true) if p.listen.is_none() && p.listener.is_some() => {
                return Err(SettingError::invalid(
                    "proxy.h2c",
                    true,
                    "only used with proxy.listen; set h2c = true in the [[proxy.listener]] \
                     tables that should speak it",
                ))
            }
            Some(true) => listen.clone(),
            _ => Vec::new(),
        };
        let default_max_connections = bounded(
            "proxy.max_connections",
            p.max_connections,
            DEFAULT_MAX_CONNECTIONS,
            MAX_CONNECTIONS_RANGE,
        )?;
        let mut max_connections: Vec<(SocketAddr, usize)> = listen
            .iter()
            .map(|a| (*a, default_max_connections))
            .collect();
        let mut proxy_protocol = Vec::new();
        for (i, table) in p.listener.iter().flatten().enumerate() {
            let cap = bounded(
                &format!("proxy.listener[{i}].max_connections"),
                table.max_connections,
                default_max_connections,
                MAX_CONNECTIONS_RANGE,
            )?;
            if table.h2c == Some(true) {
                if table.tls == Some(true) {
                    return Err(SettingError::invalid(
                        &format!("proxy.listener[{i}].h2c"),
                        true,
                        "not with tls = true: a TLS listener chooses HTTP/2 by ALPN; h2c is \
                         HTTP/2 without TLS",
                    ));
                }
                h2c.push(setting::socket_addr(
                    &format!("proxy.listener[{i}].addr"),
                    &table.addr,
                )?);
            }
            match listener(i, table, cap)? {
                Some(pp) => {
                    max_connections.push((pp.addr, cap));
                    proxy_protocol.push(pp);
                }
                None => {
                    let addr =
                        setting::socket_addr(&format!("proxy.listener[{i}].addr"), &table.addr)?;
                    max_connections.push((addr, cap));
                    listen.push(addr);
                }
            }
        }
        if listen.is_empty() && proxy_protocol.is_empty() {
            return Err(SettingError::invalid(
                "proxy.listener",
                "[]",
                "at least one listener is needed",
            ));
        }
        let threads = match p.threads {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(0) => {
                return Err(SettingError::invalid(
                    "proxy.threads",
                    0,
                    "must be at least 1",
                ))
            }
            Some(n) => n,
        };
        let header_timeout = setting::duration(
            "proxy.header_timeout",
            p.header_timeout.as_deref(),
            DEFAULT_HEADER_TIMEOUT,
        )?;
        if header_timeout < Duration::from_secs(1) || header_timeout > Duration::from_secs(300) {
            return Err(SettingError::invalid(
                "proxy.header_timeout",
                format!("{:?}", p.header_timeout.as_deref().unwrap_or_default()),
                "expected between 1s and 300s",
            ));
        }
        let max_header_bytes = bounded(
            "proxy.max_header_bytes",
            p.max_header_bytes,
            DEFAULT_MAX_HEADER_BYTES,
            (1024, 256 * 1024),
        )?;
        let max_header_count = bounded(
            "proxy.max_header_count",
            p.max_header_count,
            DEFAULT_MAX_HEADER_COUNT,
            (10, 200),
        )?;
        let keepalive_timeout = whole_seconds_between(
            "proxy.keepalive_timeout",
            p.keepalive_timeout.as_deref(),
            60,
            (1, 3600),
        )?;
        let body_timeout = whole_seconds_between(
            "proxy.body_timeout",
            p.body_timeout.as_deref(),
            60,
            (1, 3600),
        )?;
        let body_min_rate = bounded(
            "proxy.body_min_rate",
            p.body_min_rate,
            DEFAULT_BODY_MIN_RATE,
            (0, 1 << 30),
        )? as u64;
        let max_requests_per_connection = bounded(
            "proxy.max_requests_per_connection",
            p.max_requests_per_connection,
            1000,
            (1, 1_000_000),
        )? as u32;
        let tls = tls(&p)?;
        for t in tls.iter() {
            max_connections.extend(t.listen.iter().map(|a| (*a, default_max_connections)));
        }
        Ok(ProxyConfig {
            listen,
            proxy_protocol,
            max_connections,
            keepalive_timeout,
            body_timeout,
            body_min_rate,
            max_requests_per_connection,
            tls,
            threads,
            header_timeout,
            max_header_bytes,
            max_header_count,
            grace_period: setting::whole_seconds(
                "proxy.grace_period",
                p.grace_period.as_deref(),
                5,
            )?,
            shutdown_timeout: setting::whole_seconds(
                "proxy.shutdown_timeout",
                p.shutdown_timeout.as_deref(),
                5,
            )?,
            upgrade_socket: upgrade_socket(p.upgrade_socket.as_deref())?,
            h2_max_concurrent_streams: bounded(
                "proxy.h2_max_concurrent_streams",
                p.h2_max_concurrent_streams,
                100,
                (1, 1000),
            )? as u32,
            h2c,
        })
    }
}

/// Where `run --upgrade` waits for the sockets when `[proxy]` does not say: the systemd
/// unit's `RuntimeDirectory`, never a world-writable place like `/tmp`.
const DEFAULT_UPGRADE_SOCKET: &str = "/run/poortwachter/upgrade.sock";

/// `proxy.upgrade_socket` checked: an absolute path that fits a Unix socket address.
fn upgrade_socket(value: Option<&str>) -> Result<PathBuf, SettingError> {
    let v = value.unwrap_or(DEFAULT_UPGRADE_SOCKET);
    let key = "proxy.upgrade_socket";
    if !v.starts_with('/') {
        return Err(SettingError::invalid(
            key,
            format!("{v:?}"),
            "expected an absolute path",
        ));
    }
    // sun_path holds 108 bytes with the terminating NUL.
    if v.len() > 107 {
        return Err(SettingError::invalid(
            key,
            format!("{v:?}"),
            "expected at most 107 bytes (a Unix socket address)",
        ));
    }
    Ok(PathBuf::from(v))
}

/// The `i`-th `[[proxy.listener]]` table checked: `None` when it has the PROXY protocol off.
fn listener(
    i: usize,
    t: &ListenerFile,
    max_connections: usize,
) -> Result<Option<ProxyProtocolListener>, SettingError> {
    let key = |k: &str| format!("proxy.listener[{i}].{k}");
    let addr = setting::socket_addr(&key("addr"), &t.addr)?;
    let accept = match t.proxy_protocol.as_deref() {
        None | Some("off") => None,
        Some("v1") => Some(Accept::V1),
        Some("v2") => Some(Accept::V2),
        Some("any") => Some(Accept::ANY),
        Some(other) => {
            return Err(SettingError::invalid(
                &key("proxy_protocol"),
                format!("{other:?}"),
                "expected \"off\" (default), \"v1\", \"v2\" or \"any\"",
            ))
        }
    };
    let Some(accept) = accept else {
        for (k, set) in [
            ("proxy_protocol_from", t.proxy_protocol_from.is_some()),
            ("proxy_protocol_timeout", t.proxy_protocol_timeout.is_some()),
            ("tls", t.tls == Some(true)),
        ] {
            if set {
                return Err(SettingError::invalid(
                    &key(k),
                    "set",
                    "only used with proxy_protocol = \"v1\", \"v2\" or \"any\"",
                ));
            }
        }
        return Ok(None);
    };
    let from_key = key("proxy_protocol_from");
    let from = trusted_nets(&from_key, t.proxy_protocol_from.as_deref())?;
    if from.nets().is_empty() {
        return Err(SettingError::missing(
            &from_key,
            "name the load balancers that send the PROXY header (addresses or networks): \
             a header from anyone else would let a client choose its own address",
        ));
    }
    let timeout_key = key("proxy_protocol_timeout");
    let timeout = setting::duration(
        &timeout_key,
        t.proxy_protocol_timeout.as_deref(),
        DEFAULT_PROXY_PROTOCOL_TIMEOUT,
    )?;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(60) {
        return Err(SettingError::invalid(
            &timeout_key,
            format!(
                "{:?}",
                t.proxy_protocol_timeout.as_deref().unwrap_or_default()
            ),
            "expected between 100ms and 60s",
        ));
    }
    Ok(Some(ProxyProtocolListener {
        addr,
        accept,
        from,
        timeout,
        max_connections,
        tls: t.tls == Some(true),
    }))
}

fn tls(p: &ProxyFile) -> Result<Option<TlsConfig>, SettingError> {
    // A PROXY protocol listener with `tls = true` uses the same certificate.
    let for_tables = p.listener.iter().flatten().any(|t| t.tls == Some(true));
    let listen = match &p.tls_listen {
        None if for_tables => Vec::new(),
        Some(l) if l.is_empty() && for_tables => Vec::new(),
        None => {
            for (key, set) in [
                ("proxy.tls_cert_file", p.tls_cert_file.clone()),
                ("proxy.tls_key_file", p.tls_key_file.clone()),
                (
                    "proxy.certificate",
                    p.certificate
                        .as_ref()
                        .map(|c| format!("{} tables", c.len())),
                ),
            ] {
                if let Some(v) = set {
                    return Err(SettingError::invalid(
                        key,
                        format!("{v:?}"),
                        "only used with proxy.tls_listen or a [[proxy.listener]] with tls = true",
                    ));
                }
            }
            return Ok(None);
        }
        Some(l) if l.is_empty() => return Ok(None),
        Some(l) => l
            .iter()
            .map(|s| setting::socket_addr("proxy.tls_listen", s))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let sources = certificate_sources(p)?;
    // Read now, so a wrong file or a key of another certificate fails the check, not the
    // start (and never panics inside the TLS library).
    let certificates = Arc::new(Certificates::load(&sources)?);
    Ok(Some(TlsConfig {
        listen,
        sources,
        certificates,
    }))
}

/// The default pair and the `[[proxy.certificate]]` tables, in that order.
fn certificate_sources(p: &ProxyFile) -> Result<Vec<CertificateSource>, SettingError> {
    let need = "proxy.tls_listen and tls = true need a PEM certificate chain and key";
    let (Some(cert), Some(key)) = (&p.tls_cert_file, &p.tls_key_file) else {
        let key = if p.tls_cert_file.is_none() {
            "proxy.tls_cert_file"
        } else {
            "proxy.tls_key_file"
        };
        return Err(SettingError::missing(key, need));
    };
    let mut sources = vec![CertificateSource {
        cert_key: "proxy.tls_cert_file".to_string(),
        key_key: "proxy.tls_key_file".to_string(),
        cert_file: PathBuf::from(cert),
        key_file: PathBuf::from(key),
        names: None,
    }];
    for (i, t) in p.certificate.iter().flatten().enumerate() {
        let at = format!("proxy.certificate[{i}]");
        let names = match &t.names {
            None => None,
            Some(names) => {
                let key = format!("{at}.names");
                if names.is_empty() {
                    return Err(SettingError::invalid(
                        &key,
                        "[]",
                        "leave it out to use the certificate's own DNS names",
                    ));
                }
                for n in names {
                    crate::tls::check_name(n).map_err(|problem| {
                        SettingError::invalid(&key, format!("{n:?}"), problem)
                    })?;
                }
                Some(names.clone())
            }
        };
        sources.push(CertificateSource {
            cert_key: format!("{at}.cert_file"),
            key_key: format!("{at}.key_file"),
            cert_file: PathBuf::from(&t.cert_file),
            key_file: PathBuf::from(&t.key_file),
            names,
        });
    }
    Ok(sources)
}
