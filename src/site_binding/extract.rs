//! Finding the token in the request headers, without allocating: the configured cookie or
//! the configured header. Nothing here judges the token; [`super::Verifier`] does.

use http::header::COOKIE;
use http::{HeaderMap, HeaderName};

use super::config::TokenSource;

/// The token from the request headers, or `None` when absent or empty.
///
/// - Cookie: every `Cookie` field line is read, pairs separated by `;` (optional
///   whitespace around them), the first pair with exactly this name wins; a value in
///   double quotes is unquoted.
/// - Header: the first field line of that name, trimmed, with an optional `Bearer `
///   prefix (any case) stripped.
///
/// Bytes that are not UTF-8 cannot be a token; such a value counts as absent.
pub fn extract<'a>(headers: &'a HeaderMap, source: &TokenSource) -> Option<&'a str> {
    let value = match source {
        TokenSource::Cookie(name) => cookie(headers, name)?,
        TokenSource::Header(name) => header(headers, name)?,
    };
    match std::str::from_utf8(value) {
        Ok(token) if !token.is_empty() => Some(token),
        _ => None,
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    if name.is_empty() {
        return None;
    }
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| cookie_value(pair, name.as_bytes()))
}

/// The value of one `name=value` pair when its name is `name`.
fn cookie_value<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut parts = pair.splitn(2, |&b| b == b'=');
    let (pair_name, value) = (parts.next()?, parts.next()?);
    if trim_ows(pair_name) != name {
        return None;
    }
    let value = trim_ows(value);
    Some(
        value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a [u8]> {
    let value = trim_ows(headers.get(name)?.as_bytes());
    if value.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"bearer ") => Some(trim_ows(value.get(7..)?)),
        _ => Some(value),
    }
}

/// Without leading and trailing spaces and tabs.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cookie_source(name: &str) -> TokenSource {
        TokenSource::Cookie(name.to_owned())
    }

    fn header_source(name: &'static str) -> TokenSource {
        TokenSource::Header(HeaderName::from_static(name))
    }

    fn headers(lines: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn cookie_among_several() {
        let h = headers(&[("cookie", "a=1; afname_site=tok.en.x; b=2")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("tok.en.x"));
    }

    #[test]
    fn cookie_first_and_last_position_and_loose_spacing() {
        let h = headers(&[("cookie", "afname_site=first;b=2")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("first"));
        let h = headers(&[("cookie", "a=1 ;\tafname_site = last ")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("last"));
    }

    #[test]
    fn cookie_on_a_later_line() {
        let h = headers(&[("cookie", "a=1; b=2"), ("cookie", "c=3; afname_site=tok")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("tok"));
    }

    #[test]
    fn first_cookie_wins_across_lines() {
        let h = headers(&[("cookie", "afname_site=one"), ("cookie", "afname_site=two")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("one"));
        let h = headers(&[("cookie", "afname_site=one; afname_site=two")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("one"));
    }

    #[test]
    fn cookie_name_must_match_exactly() {
        let h = headers(&[("cookie", "xafname_site=a; afname_site_old=b; Afname_site=c")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), None);
    }

    #[test]
    fn cookie_value_may_contain_equals_and_quotes() {
        let h = headers(&[("cookie", "afname_site=a=b")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("a=b"));
        let h = headers(&[("cookie", "afname_site=\"quoted\"")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), Some("quoted"));
    }

    #[test]
    fn cookie_absent_or_empty() {
        let src = cookie_source("afname_site");
        assert_eq!(extract(&HeaderMap::new(), &src), None);
        assert_eq!(extract(&headers(&[("cookie", "a=1")]), &src), None);
        assert_eq!(extract(&headers(&[("cookie", "afname_site=")]), &src), None);
        assert_eq!(
            extract(&headers(&[("cookie", "afname_site=\"\"")]), &src),
            None
        );
        assert_eq!(extract(&headers(&[("cookie", "afname_site")]), &src), None);
        assert_eq!(extract(&headers(&[("cookie", "")]), &src), None);
        // The first match wins even when empty: a later one does not replace it.
        let h = headers(&[("cookie", "afname_site=; afname_site=late")]);
        assert_eq!(extract(&h, &src), None);
    }

    #[test]
    fn cookie_with_an_empty_name_never_matches() {
        let h = headers(&[("cookie", "=value")]);
        assert_eq!(extract(&h, &cookie_source("")), None);
    }

    #[test]
    fn cookie_from_the_wrong_header_is_ignored() {
        let h = headers(&[("set-cookie", "afname_site=tok"), ("x-afname-site", "tok")]);
        assert_eq!(extract(&h, &cookie_source("afname_site")), None);
    }

    #[test]
    fn non_utf8_value_counts_as_absent() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes(b"afname_site=\xff\xfe").unwrap(),
        );
        assert_eq!(extract(&h, &cookie_source("afname_site")), None);
    }

    #[test]
    fn header_plain_trimmed() {
        let src = header_source("x-afname-site");
        let h = headers(&[("x-afname-site", "  tok.en.x\t")]);
        assert_eq!(extract(&h, &src), Some("tok.en.x"));
    }

    #[test]
    fn header_with_bearer() {
        let src = header_source("authorization");
        for value in ["Bearer tok", "bearer tok", "BEARER   tok ", " Bearer tok"] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(extract(&h, &src), Some("tok"), "{value:?}");
        }
    }

    #[test]
    fn header_bearer_alone_or_empty_is_absent() {
        let src = header_source("authorization");
        for value in ["", "   ", "Bearer", "Bearer ", "bearer   "] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(extract(&h, &src), None, "{value:?}");
        }
        assert_eq!(extract(&HeaderMap::new(), &src), None);
    }

    #[test]
    fn header_uses_the_first_line() {
        let src = header_source("x-afname-site");
        let h = headers(&[("x-afname-site", "one"), ("x-afname-site", "two")]);
        assert_eq!(extract(&h, &src), Some("one"));
    }

    #[test]
    fn header_does_not_read_cookies() {
        let h = headers(&[("cookie", "x-afname-site=tok")]);
        assert_eq!(extract(&h, &header_source("x-afname-site")), None);
    }

    #[test]
    fn trim_ows_edges() {
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b" a b "), b"a b");
    }
}
