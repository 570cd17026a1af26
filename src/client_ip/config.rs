//! The `[client_ip]` section: which peers are trusted proxies and which header they set, as
//! written and as checked. Trust is checked strictly: a network broad enough to let a client
//! choose its own address is refused.

use super::{parse_net, HeaderMode, TrustedProxies};
use crate::setting::SettingError;
use serde::Deserialize;

/// `[client_ip]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientIpFile {
    pub trusted_proxies: Option<Vec<String>>,
    pub header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClientIpConfig {
    pub trusted: TrustedProxies,
    pub header: HeaderMode,
}

impl TryFrom<ClientIpFile> for ClientIpConfig {
    type Error = SettingError;

    fn try_from(c: ClientIpFile) -> Result<ClientIpConfig, SettingError> {
        let trusted = trusted_nets("client_ip.trusted_proxies", c.trusted_proxies.as_deref())?;
        let header = match c.header.as_deref() {
            None => HeaderMode::XForwardedFor,
            Some(h) => h.parse().map_err(|_| {
                SettingError::invalid(
                    "client_ip.header",
                    format!("{h:?}"),
                    "expected \"x-forwarded-for\" or \"forwarded\"",
                )
            })?,
        };
        Ok(ClientIpConfig { trusted, header })
    }
}

/// The networks of a trust list at `key` (`client_ip.trusted_proxies`,
/// `proxy.listener[0].proxy_protocol_from`): addresses or CIDR networks in the one strict
/// syntax, without host bits, none broader than an IPv4 /8 or an IPv6 /7.
pub fn trusted_nets(key: &str, list: Option<&[String]>) -> Result<TrustedProxies, SettingError> {
    let mut nets = Vec::new();
    for (i, s) in list.into_iter().flatten().enumerate() {
        let key = format!("{key}[{i}]");
        let net = parse_net(s).map_err(|e| {
            SettingError::invalid(
                &key,
                format!("{s:?}"),
                format!("{e}; expected an address or CIDR network such as \"10.0.0.0/8\""),
            )
        })?;
        // A few short prefixes together are a /0 in disguise. No real proxy fleet needs
        // more than an IPv4 /8 or an IPv6 /7 (fc00::/7, all unique-local space).
        let shortest = if net.addr().is_ipv4() { 8 } else { 7 };
        if net.prefix_len() < shortest {
            return Err(SettingError::invalid(
                &key,
                format!("{s:?}"),
                format!(
                    "trusting so many addresses would let clients choose their own address; \
                         the broadest accepted is /{shortest}"
                ),
            ));
        }
        if net.trunc() != net {
            return Err(SettingError::invalid(
                &key,
                format!("{s:?}"),
                format!("host bits are set; did you mean \"{}\"?", net.trunc()),
            ));
        }
        nets.push(net);
    }
    let trusted = TrustedProxies::new(nets);
    // A mapped network such as ::ffff:0.0.0.0/96 is an IPv4 /0 in disguise.
    if let Some(n) = trusted
        .nets()
        .iter()
        .find(|n| n.addr().is_ipv4() && n.prefix_len() < 8)
    {
        return Err(SettingError::invalid(
            key,
            format!("\"{n}\" (an IPv4-mapped network)"),
            "trusting every address would let any client choose its own address",
        ));
    }
    Ok(trusted)
}
