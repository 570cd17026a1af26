//! The `[[route]]` and `[self_check]` sections: which paths are enforced, let through or
//! blocked, and where the self-check page is, as written and as checked.

use super::{normalise, normalise_host, Route, DEFAULT_ROUTE};
use crate::decision::RouteAction;
use crate::setting::SettingError;
use crate::site_binding::Missing;
use serde::Deserialize;

const DEFAULT_SELF_CHECK: &str = "/.well-known/poortwachter/check";

/// One `[[route]]` as written.
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

/// `[self_check]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfCheckFile {
    pub path: Option<String>,
    pub enabled: Option<bool>,
}

/// The routes in order (first match wins). `site_binding`: whether `[site_binding]` is
/// configured, without which a route's `missing` means nothing.
pub fn check_routes(routes: &[RouteFile], site_binding: bool) -> Result<Vec<Route>, SettingError> {
    let mut out: Vec<Route> = Vec::with_capacity(routes.len());
    for (i, r) in routes.iter().enumerate() {
        let route = check_route(i, r, site_binding)?;
        if let Some(j) = out.iter().position(|o| o.name == route.name) {
            return Err(SettingError::invalid(
                &format!("route[{i}].name"),
                format!("{:?}", route.name),
                format!("already used by route[{j}]"),
            ));
        }
        out.push(route);
    }
    Ok(out)
}

fn check_route(i: usize, r: &RouteFile, site_binding: bool) -> Result<Route, SettingError> {
    let key = |k: &str| format!("route[{i}].{k}");
    let missing = match &r.missing {
        None => None,
        Some(m) if !site_binding => {
            return Err(SettingError::invalid(
                &key("missing"),
                format!("{m:?}"),
                "only meaningful with [site_binding]",
            ))
        }
        Some(m) => Some(Missing::from_setting(&key("missing"), m)?),
    };
    let action = match r.action.as_deref() {
        None | Some("enforce") => RouteAction::Enforce,
        Some("bypass") => RouteAction::Bypass,
        Some("block") => RouteAction::Block,
        Some(other) => {
            return Err(SettingError::invalid(
                &key("action"),
                format!("{other:?}"),
                "expected \"enforce\", \"bypass\" or \"block\"",
            ))
        }
    };
    let prefix = &r.path_prefix;
    match normalise(prefix) {
        Ok(n) if n == prefix.as_str() => {}
        Ok(n) => {
            return Err(SettingError::invalid(
                &key("path_prefix"),
                format!("{prefix:?}"),
                format!("write it normalised: {n:?}"),
            ))
        }
        Err(e) => {
            return Err(SettingError::invalid(
                &key("path_prefix"),
                format!("{prefix:?}"),
                e.to_string(),
            ))
        }
    }
    let host = match &r.host {
        None => None,
        Some(h) => {
            let n = normalise_host(h);
            if n.is_empty()
                || n != h.to_ascii_lowercase()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
            {
                return Err(SettingError::invalid(
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
        || name == DEFAULT_ROUTE
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SettingError::invalid(
            &key("name"),
            format!("{name:?}"),
            "expected letters, digits, - or _ (and not \"default\")",
        ));
    }
    Ok(Route {
        name,
        host,
        path_prefix: prefix.clone(),
        action,
        missing,
    })
}

/// The self-check page's path; `None` when disabled.
pub fn check_self_check(s: Option<&SelfCheckFile>) -> Result<Option<String>, SettingError> {
    if s.and_then(|s| s.enabled) == Some(false) {
        return Ok(None);
    }
    let path = s
        .and_then(|s| s.path.clone())
        .unwrap_or_else(|| DEFAULT_SELF_CHECK.to_string());
    match normalise(&path) {
        Ok(n) if n == path.as_str() && path.len() > 1 => Ok(Some(path)),
        _ => Err(SettingError::invalid(
            "self_check.path",
            format!("{path:?}"),
            "expected a normalised path such as \"/.well-known/poortwachter/check\"",
        )),
    }
}
