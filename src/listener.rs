//! The proxy listeners: the `[proxy]` section (plain and TLS addresses, worker threads,
//! shutdown timing), as written and as checked.

use crate::setting::{self, SettingError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `[proxy]` as written.
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

impl ProxyConfig {
    /// Every listener address with the key that set it, plain first.
    pub fn addrs(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        self.listen.iter().map(|a| ("proxy.listen", *a)).chain(
            self.tls
                .iter()
                .flat_map(|t| t.listen.iter().map(|a| ("proxy.tls_listen", *a))),
        )
    }
}

impl TryFrom<ProxyFile> for ProxyConfig {
    type Error = SettingError;

    fn try_from(p: ProxyFile) -> Result<ProxyConfig, SettingError> {
        let listen = match &p.listen {
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
        Ok(ProxyConfig {
            listen,
            tls: tls(&p)?,
            threads,
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
        })
    }
}

fn tls(p: &ProxyFile) -> Result<Option<TlsConfig>, SettingError> {
    let listen = match &p.tls_listen {
        None => {
            for (key, set) in [
                ("proxy.tls_cert_file", &p.tls_cert_file),
                ("proxy.tls_key_file", &p.tls_key_file),
            ] {
                if let Some(v) = set {
                    return Err(SettingError::invalid(
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
            .map(|s| setting::socket_addr("proxy.tls_listen", s))
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(Some(TlsConfig {
        listen,
        cert_file: pem_file("proxy.tls_cert_file", &p.tls_cert_file)?,
        key_file: pem_file("proxy.tls_key_file", &p.tls_key_file)?,
    }))
}

/// A PEM file named by `key`, read now so a wrong path fails the check, not the start.
fn pem_file(key: &str, v: &Option<String>) -> Result<PathBuf, SettingError> {
    let Some(v) = v else {
        return Err(SettingError::missing(
            key,
            "proxy.tls_listen needs a PEM certificate chain and key",
        ));
    };
    let text = std::fs::read_to_string(v)
        .map_err(|e| SettingError::invalid(key, format!("{v:?}"), format!("cannot read: {e}")))?;
    if !text.contains("-----BEGIN ") {
        return Err(SettingError::invalid(
            key,
            format!("{v:?}"),
            "not a PEM file",
        ));
    }
    Ok(PathBuf::from(v))
}
