//! Route matching: which `[[route]]` a request falls under, by host and path prefix, first
//! match wins. Pure, so every trick is tested byte by byte.
//!
//! The path is judged after a strict normalisation: a request that could mean a different
//! path to the upstream than to the gate (encoded `/`, `\` or `.`, dot segments, `//`) is not
//! matched at all but answered 400, so no prefix can be evaded or faked.

use crate::decision::RouteAction;
use std::borrow::Cow;

mod config;

pub use config::{check_routes, check_self_check, RouteFile, SelfCheckFile};

/// The name of the route a request falls under when no `[[route]]` matches (enforced); no
/// configured route may take it.
pub const DEFAULT_ROUTE: &str = "default";

/// One configured route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The metric label and log name.
    pub name: String,
    /// Lower-case host without port; `None` matches every host.
    pub host: Option<String>,
    /// Starts with `/`; matched at segment boundaries.
    pub path_prefix: String,
    pub action: RouteAction,
    /// `missing = "any-site"`: requests without a usable site claim pass from any registered
    /// location on this route. `None` follows `[site_binding] missing`.
    pub missing: Option<crate::site_binding::Missing>,
}

/// Why a path is refused (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with /")]
    NotAbsolute,
    #[error("the path contains an encoded /, \\ or .")]
    EncodedSeparator,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains a . or .. segment")]
    DotSegment,
    #[error("the path contains an empty segment (//)")]
    EmptySegment,
    #[error("the path contains a malformed percent-encoding")]
    BadPercent,
    #[error("the path contains a control character")]
    Control,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The path as the gate judges it: percent-encoded unreserved characters decoded (so
/// `/%61dmin/` is `/admin/`), every other encoding kept with upper-case hex. Refuses what
/// would let the gate and the upstream disagree about the path.
pub fn normalise(path: &str) -> Result<Cow<'_, str>, PathError> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // The common case, nothing encoded: judge the path as it is, without allocating.
    if !b
        .iter()
        .any(|&c| c == b'%' || c == b'\\' || c < 0x20 || c == 0x7f)
    {
        check_segments(path)?;
        return Ok(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).and_then(|x| hex(*x)),
                    b.get(i + 2).and_then(|x| hex(*x)),
                ) else {
                    return Err(PathError::BadPercent);
                };
                let v = h * 16 + l;
                match v {
                    b'/' | b'\\' | b'.' => return Err(PathError::EncodedSeparator),
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => {
                        out.push(v as char)
                    }
                    _ if v < 0x20 || v == 0x7f => return Err(PathError::Control),
                    _ => {
                        out.push('%');
                        out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                        out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            _ if c < 0x20 || c == 0x7f => return Err(PathError::Control),
            _ => {
                out.push(char::from(c));
                i += 1;
            }
        }
    }
    check_segments(&out)?;
    Ok(Cow::Owned(out))
}

/// No `.` or `..` segment and no empty one (`//`); the first segment is the empty one before
/// the leading `/`, and a trailing `/` leaves an empty last segment, which is fine.
fn check_segments(path: &str) -> Result<(), PathError> {
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        match seg {
            "." | ".." => return Err(PathError::DotSegment),
            "" if segments.peek().is_some() => return Err(PathError::EmptySegment),
            _ => {}
        }
    }
    Ok(())
}

/// The host a request is for: lower-case, without port or a trailing dot.
pub fn normalise_host(host: &str) -> String {
    let h = match host.strip_prefix('[') {
        // An IPv6 literal: keep the brackets' content.
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// `prefix` matches `path` at a segment boundary: `/static` matches `/static` and
/// `/static/x`, never `/staticx`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    prefix.ends_with('/') || path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/'
}

/// The first route matching `host` (already normalised) and `path` (already normalised).
pub fn find<'a>(routes: &'a [Route], host: Option<&str>, path: &str) -> Option<&'a Route> {
    routes.iter().find(|r| {
        r.host.as_deref().is_none_or(|h| host == Some(h)) && prefix_matches(&r.path_prefix, path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, host: Option<&str>, prefix: &str, action: RouteAction) -> Route {
        Route {
            name: name.into(),
            host: host.map(str::to_string),
            path_prefix: prefix.into(),
            action,
            missing: None,
        }
    }

    #[test]
    fn normalisation_keeps_ordinary_paths() {
        assert_eq!(normalise("/").unwrap(), "/");
        assert_eq!(normalise("/toets/start").unwrap(), "/toets/start");
        assert_eq!(normalise("/static/").unwrap(), "/static/");
        assert_eq!(normalise("/a%20b").unwrap(), "/a%20b");
        assert_eq!(normalise("/a%c3%a9").unwrap(), "/a%C3%A9");
        assert_eq!(normalise("/%61dmin/%7Euser").unwrap(), "/admin/~user");
        assert_eq!(normalise("/file.css").unwrap(), "/file.css");
        assert_eq!(normalise("/.well-known/x").unwrap(), "/.well-known/x");
        assert_eq!(normalise("/a/...").unwrap(), "/a/...");
    }

    #[test]
    fn tricks_are_refused() {
        use PathError::*;
        for (path, err) in [
            ("static/x", NotAbsolute),
            ("*", NotAbsolute),
            ("", NotAbsolute),
            ("/static%2fx", EncodedSeparator),
            ("/static%2Fx", EncodedSeparator),
            ("/static%5cx", EncodedSeparator),
            ("/%2e%2e/admin", EncodedSeparator),
            ("/static/%2E", EncodedSeparator),
            ("/static\\..\\admin", Backslash),
            ("/static/../admin", DotSegment),
            ("/static/./x", DotSegment),
            ("/..", DotSegment),
            ("/.", DotSegment),
            ("//static/x", EmptySegment),
            ("/static//x", EmptySegment),
            ("/a%zz", BadPercent),
            ("/a%4", BadPercent),
            ("/a%", BadPercent),
            ("/a%00", Control),
            ("/a%0a", Control),
        ] {
            assert_eq!(normalise(path), Err(err), "{path}");
        }
    }

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        assert!(prefix_matches("/static", "/static"));
        assert!(prefix_matches("/static", "/static/app.js"));
        assert!(!prefix_matches("/static", "/staticx"));
        assert!(!prefix_matches("/static", "/stati"));
        assert!(prefix_matches("/static/", "/static/app.js"));
        assert!(!prefix_matches("/static/", "/static"));
        assert!(prefix_matches("/", "/anything"));
        assert!(
            !prefix_matches("/Static", "/static/x"),
            "paths are case-sensitive"
        );
    }

    #[test]
    fn hosts_match_without_case_port_or_trailing_dot() {
        assert_eq!(normalise_host("Afname.Example.NL:443"), "afname.example.nl");
        assert_eq!(normalise_host("afname.example.nl."), "afname.example.nl");
        assert_eq!(normalise_host("[2001:db8::1]:8080"), "2001:db8::1");
        assert_eq!(normalise_host("192.0.2.1:80"), "192.0.2.1");
    }

    #[test]
    fn first_match_wins() {
        let routes = vec![
            route(
                "health",
                Some("afname.example.nl"),
                "/health",
                RouteAction::Bypass,
            ),
            route("static", None, "/static/", RouteAction::Bypass),
            route("admin", None, "/admin", RouteAction::Block),
            route("all-static", None, "/static/", RouteAction::Block),
        ];
        let name =
            |host: Option<&str>, path: &str| find(&routes, host, path).map(|r| r.name.as_str());
        assert_eq!(name(Some("afname.example.nl"), "/health"), Some("health"));
        assert_eq!(name(Some("other.example.nl"), "/health"), None);
        assert_eq!(name(None, "/health"), None);
        assert_eq!(name(Some("x"), "/static/app.js"), Some("static"));
        assert_eq!(name(Some("x"), "/admin/users"), Some("admin"));
        assert_eq!(name(Some("x"), "/administrator"), None);
        assert_eq!(name(Some("x"), "/toets"), None);
    }
}
