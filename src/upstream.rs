//! The upstream (the test environment): the `[upstream]` section, as written and as checked.

use crate::setting::{self, SettingError};
use http::HeaderName;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// `[upstream]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub addrs: Vec<String>,
    pub client_ip_header: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub keepalive_pool_size: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub addrs: Vec<SocketAddr>,
    pub client_ip_header: HeaderName,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub keepalive_pool_size: usize,
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
            .map(|s| setting::socket_addr("upstream.addrs", s))
            .collect::<Result<_, _>>()?;
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
        Ok(UpstreamConfig {
            addrs,
            client_ip_header,
            connect_timeout: setting::duration(
                "upstream.connect_timeout",
                u.connect_timeout.as_deref(),
                Duration::from_secs(2),
            )?,
            read_timeout: setting::duration(
                "upstream.read_timeout",
                u.read_timeout.as_deref(),
                Duration::from_secs(60),
            )?,
            keepalive_pool_size: u.keepalive_pool_size.unwrap_or(128),
        })
    }
}
