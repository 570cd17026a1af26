//! Content negotiation for the gate's own pages: language from `Accept-Language`, HTML or
//! JSON from `Accept`. Byte-level parsing, no allocation; anything unparsable falls back to
//! the defaults (Dutch, HTML) rather than failing the page.

/// Output format of a gate page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
}

/// Iterate the comma-separated members of a header as (value, q), q in thousandths.
fn members(header: &[u8]) -> impl Iterator<Item = (&[u8], u16)> {
    header.split(|&b| b == b',').filter_map(|member| {
        let mut parts = member.split(|&b| b == b';');
        let value = trim(parts.next()?);
        if value.is_empty() {
            return None;
        }
        let mut q = 1000;
        for p in parts {
            let p = trim(p);
            if p.len() >= 2 && p[0].eq_ignore_ascii_case(&b'q') && p[1] == b'=' {
                q = parse_q(&p[2..])?;
            }
        }
        Some((value, q))
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// RFC 9110 qvalue: "0", "0.5", "1", "1.000". Invalid values drop the member.
fn parse_q(b: &[u8]) -> Option<u16> {
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut q = match int[0] {
        b'0' => 0u16,
        b'1' => 1000,
        _ => return None,
    };
    let mut scale = 100;
    for d in frac {
        q += u16::from(d - b'0') * scale;
        scale /= 10;
    }
    (q <= 1000).then_some(q)
}

/// The best supported language, by q and then by order; `supported[0]` is the default.
pub fn language(accept_language: Option<&[u8]>, supported: &[&'static str]) -> usize {
    let Some(header) = accept_language else {
        return 0;
    };
    let mut best: Option<(usize, u16)> = None;
    for (tag, q) in members(header) {
        if q == 0 {
            continue;
        }
        let primary = tag.split(|&b| b == b'-').next().unwrap_or(tag);
        let Some(idx) = supported
            .iter()
            .position(|s| s.as_bytes().eq_ignore_ascii_case(primary))
        else {
            continue;
        };
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((idx, q));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// JSON when the client asks for JSON at least as much as for HTML.
pub fn format(accept: Option<&[u8]>) -> Format {
    let Some(header) = accept else {
        return Format::Html;
    };
    let mut json = 0u16;
    let mut html = 0u16;
    for (range, q) in members(header) {
        let is = |s: &str| range.eq_ignore_ascii_case(s.as_bytes());
        if is("application/json") || is("application/problem+json") {
            json = json.max(q);
        } else if is("text/html") {
            html = html.max(q);
        }
    }
    if json > 0 && json >= html {
        Format::Json
    } else {
        Format::Html
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGS: &[&str] = &["nl", "en"];

    #[test]
    fn language_defaults_to_dutch() {
        assert_eq!(language(None, LANGS), 0);
        assert_eq!(language(Some(b""), LANGS), 0);
        assert_eq!(language(Some(b"de-DE, fr"), LANGS), 0);
        assert_eq!(language(Some(b";;,,"), LANGS), 0);
    }

    #[test]
    fn language_follows_preference() {
        assert_eq!(language(Some(b"en"), LANGS), 1);
        assert_eq!(language(Some(b"en-GB,en;q=0.9"), LANGS), 1);
        assert_eq!(language(Some(b"nl-NL,nl;q=0.9,en;q=0.8"), LANGS), 0);
        assert_eq!(language(Some(b"en;q=0.5, nl;q=0.8"), LANGS), 0);
        assert_eq!(language(Some(b"de, EN;q=0.3"), LANGS), 1);
        assert_eq!(language(Some(b"en;q=0, nl;q=0.1"), LANGS), 0);
        assert_eq!(language(Some(b"en;q=0"), LANGS), 0);
        // Equal q: the first listed wins.
        assert_eq!(language(Some(b"en, nl"), LANGS), 1);
        // An invalid q drops that member only.
        assert_eq!(language(Some(b"en;q=2, nl;q=0.1"), LANGS), 0);
    }

    #[test]
    fn json_only_when_asked_for() {
        assert_eq!(format(None), Format::Html);
        assert_eq!(format(Some(b"*/*")), Format::Html);
        assert_eq!(
            format(Some(b"text/html,application/xhtml+xml,*/*;q=0.8")),
            Format::Html
        );
        assert_eq!(format(Some(b"application/json")), Format::Json);
        assert_eq!(format(Some(b"application/problem+json")), Format::Json);
        assert_eq!(
            format(Some(b"Application/JSON; charset=utf-8")),
            Format::Json
        );
        assert_eq!(
            format(Some(b"text/html;q=0.9, application/json")),
            Format::Json
        );
        assert_eq!(
            format(Some(b"text/html, application/json;q=0.5")),
            Format::Html
        );
        assert_eq!(format(Some(b"application/json;q=0")), Format::Html);
    }

    #[test]
    fn qvalues_parse_strictly() {
        assert_eq!(parse_q(b"1"), Some(1000));
        assert_eq!(parse_q(b"0.5"), Some(500));
        assert_eq!(parse_q(b"0.125"), Some(125));
        assert_eq!(parse_q(b"1.000"), Some(1000));
        assert_eq!(parse_q(b"1.5"), None);
        assert_eq!(parse_q(b"0.1234"), None);
        assert_eq!(parse_q(b"x"), None);
        assert_eq!(parse_q(b""), None);
    }
}
