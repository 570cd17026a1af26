//! Strict RFC 7239 parse of one `forwarded-element`: `pair *( OWS ";" OWS pair )`, where a
//! pair is `token "=" ( token / quoted-string )`, down to the address in its `for` parameter.
//!
//! Strict because a lenient reading is what lets a client smuggle a value past a proxy that
//! reads the same header differently: whitespace is tolerated around `;` only (not around
//! `=`), parameter names are compared case-insensitively and must not repeat, and a `:` or
//! `[` is legal only inside a quoted string.

use std::net::IpAddr;

use super::node;
use crate::client_ip::error::MalformedKind;

/// More parameters than this in one element is refused. RFC 7239 registers four (`for`,
/// `by`, `host`, `proto`); the cap keeps the duplicate check (a scan of the earlier names)
/// linear in the element's length, so a long attacker-written element costs no more than
/// reading it.
const MAX_PARAMS: usize = 16;

/// A parameter value as written: a token, or the raw content of a quoted string (still
/// escaped).
#[derive(Clone, Copy)]
enum Value<'a> {
    Token(&'a [u8]),
    Quoted(&'a [u8]),
}

/// Parses one element (already split off its line and trimmed) to the canonical address in
/// its `for` parameter.
pub(super) fn parse(element: &[u8]) -> Result<IpAddr, MalformedKind> {
    let mut names: [&[u8]; MAX_PARAMS] = [&[]; MAX_PARAMS];
    let mut count = 0;
    let mut for_value = None;
    let mut i = 0;
    loop {
        i = skip_ows(element, i);
        let Some(&b) = element.get(i) else { break };
        if b == b';' {
            // An empty pair (`;;`) is allowed by the grammar.
            i += 1;
            continue;
        }
        let name_start = i;
        i = skip_token(element, i);
        let name = element.get(name_start..i).unwrap_or_default();
        if name.is_empty() || element.get(i) != Some(&b'=') {
            // Covers whitespace before `=` and a pair without `=`.
            return Err(MalformedKind::Syntax);
        }
        i += 1;
        let value = if element.get(i) == Some(&b'"') {
            let (content, next) = quoted_string(element, i)?;
            i = next;
            Value::Quoted(content)
        } else {
            let start = i;
            i = skip_token(element, i);
            if i == start {
                // Covers whitespace after `=`, an empty value, and `:` `[` outside quotes.
                return Err(MalformedKind::Syntax);
            }
            Value::Token(element.get(start..i).unwrap_or_default())
        };
        i = skip_ows(element, i);
        match element.get(i) {
            None => {}
            Some(b';') => i += 1,
            Some(_) => return Err(MalformedKind::Syntax),
        }
        if names[..count]
            .iter()
            .any(|prev| prev.eq_ignore_ascii_case(name))
        {
            return Err(MalformedKind::DuplicateParameter);
        }
        let Some(slot) = names.get_mut(count) else {
            return Err(MalformedKind::TooManyParameters);
        };
        *slot = name;
        count += 1;
        if name.eq_ignore_ascii_case(b"for") {
            for_value = Some(value);
        }
    }
    match for_value {
        None => Err(MalformedKind::MissingFor),
        Some(Value::Token(token)) => node::parse(token.iter().copied()),
        Some(Value::Quoted(content)) => node::parse(Unescape(content.iter())),
    }
}

fn skip_ows(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

fn skip_token(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|&b| is_tchar(b)) {
        i += 1;
    }
    i
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9110 `qdtext`: HTAB, SP, VCHAR except `"` and `\`, obs-text.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// What may follow `\` in a quoted-pair: HTAB, SP, VCHAR, obs-text.
fn is_quoted_pair_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// Parses the quoted string opening at `open`. Returns its raw content (between the quotes,
/// escapes intact) and the index just past the closing quote.
fn quoted_string(bytes: &[u8], open: usize) -> Result<(&[u8], usize), MalformedKind> {
    let mut i = open + 1;
    loop {
        match bytes.get(i) {
            None => return Err(MalformedKind::UnterminatedQuote),
            Some(b'"') => {
                let content = bytes.get(open + 1..i).unwrap_or_default();
                return Ok((content, i + 1));
            }
            Some(b'\\') => match bytes.get(i + 1) {
                None => return Err(MalformedKind::UnterminatedQuote),
                Some(&escaped) if is_quoted_pair_byte(escaped) => i += 2,
                Some(_) => return Err(MalformedKind::Syntax),
            },
            Some(&b) if is_qdtext(b) => i += 1,
            Some(_) => return Err(MalformedKind::Syntax),
        }
    }
}

/// The bytes of a validated quoted-string content with quoted-pairs unescaped.
struct Unescape<'a>(std::slice::Iter<'a, u8>);

impl Iterator for Unescape<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        match self.0.next() {
            Some(b'\\') => self.0.next().copied(),
            other => other.copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MalformedKind::*;

    fn ok(element: &str, want: &str) {
        assert_eq!(
            parse(element.as_bytes()),
            Ok(want.parse::<IpAddr>().unwrap()),
            "{element}"
        );
    }

    fn err(element: &str, kind: MalformedKind) {
        assert_eq!(parse(element.as_bytes()), Err(kind), "{element}");
    }

    #[test]
    fn accepted_forms() {
        ok("for=192.0.2.60", "192.0.2.60");
        ok("For=192.0.2.60", "192.0.2.60");
        ok("FOR=192.0.2.60", "192.0.2.60");
        ok("fOr=192.0.2.60", "192.0.2.60");
        ok(r#"for="192.0.2.60""#, "192.0.2.60");
        ok(r#"for="192.0.2.60:4711""#, "192.0.2.60");
        ok(r#"for="192.0.2.43:_p1""#, "192.0.2.43");
        ok(r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17");
        ok(r#"for="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17");
        ok(r#"for="[2001:db8:cafe::17]:_x-1.y""#, "2001:db8:cafe::17");
        ok(r#"for="[::ffff:188.0.2.128]:49428""#, "188.0.2.128");
        ok("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60");
        ok("proto=http;for=192.0.2.60", "192.0.2.60");
        ok("for=203.0.113.50; proto=https; by=10.0.0.1", "203.0.113.50");
        ok(
            "for=203.0.113.50 ;proto=https\t;\tby=10.0.0.1",
            "203.0.113.50",
        );
        ok("for=203.0.113.50;", "203.0.113.50");
        ok(";for=203.0.113.50", "203.0.113.50");
        ok("for=203.0.113.50;;proto=https", "203.0.113.50");
        ok(r#"by="[2001:db8::1]:80";for=192.0.2.1"#, "192.0.2.1");
        ok(r#"host="example.com:8080";for=192.0.2.1"#, "192.0.2.1");
        ok(r#"ext="a, b; c=d";for=192.0.2.1"#, "192.0.2.1");
        ok("x-ext=1;for=192.0.2.1", "192.0.2.1");
        // quoted-pair escapes are unescaped (RFC 9110).
        ok(r#"for="203.0.113.\50""#, "203.0.113.50");
        ok(r#"for="\2\0\3.\0.\1\1\3.\5\0""#, "203.0.113.50");
        ok(r#"for="[2001\:db8\:\:1]""#, "2001:db8::1");
    }

    #[test]
    fn syntax_errors() {
        // Whitespace around `=`.
        err("for =192.0.2.60", Syntax);
        err("for= 192.0.2.60", Syntax);
        err("for = 192.0.2.60", Syntax);
        err(r#"for= "192.0.2.60""#, Syntax);
        // `:` and `[` only inside quotes.
        err("for=192.0.2.60:4711", Syntax);
        err("FoR=192.0.2.60:4711", Syntax);
        err("for=[2607:f8b0:4004:83f::200e]", Syntax);
        err("for=2001:db7::abcd", Syntax);
        err("for=2.2.2.2:8883", Syntax);
        // Missing separators, stray bytes, empty names or values.
        err("for=192.0.2.60 proto=http", Syntax);
        err("for=192.0.2.60,proto=http", Syntax);
        err(r#"for="192.0.2.60"x"#, Syntax);
        err(r#"for="192.0.2.60" x"#, Syntax);
        err(r#"for=192.0.2.60"x""#, Syntax);
        err("for=", Syntax);
        err("for=;proto=http", Syntax);
        err("=192.0.2.60", Syntax);
        err("for", Syntax);
        err("for192.0.2.60", Syntax);
        err("for==192.0.2.60", Syntax);
        err("f(r=192.0.2.60", Syntax);
        err(r#""for"=192.0.2.60"#, Syntax);
        err("for=192.0.2.60\r", Syntax);
        err("for=1.2.3.4/24", Syntax);
        err("for=\u{e9}", Syntax);
        // Control bytes inside quotes, and escapes of control bytes.
        err("for=\"192.0.2.60\r\"", Syntax);
        err("for=\"192.0.2.60\\\r\"", Syntax);
        err("for=\"\x7f\"", Syntax);
    }

    #[test]
    fn unterminated_quotes() {
        err(r#"for="192.0.2.60"#, UnterminatedQuote);
        err(r#"for="192.0.2.60\""#, UnterminatedQuote);
        err(r#"for="192.0.2.60\"#, UnterminatedQuote);
        err(r#"proto="http;for=192.0.2.60"#, UnterminatedQuote);
    }

    #[test]
    fn element_level_errors() {
        err("proto=https;by=10.0.0.1", MissingFor);
        err(";", MissingFor);
        err(";;", MissingFor);
        err("by=192.0.2.1", MissingFor);
        err("for=192.0.2.1;for=192.0.2.2", DuplicateParameter);
        err("for=192.0.2.1;FOR=192.0.2.2", DuplicateParameter);
        err("proto=http;for=192.0.2.1;Proto=https", DuplicateParameter);
        err("a=1;b=2;A=3;for=192.0.2.1", DuplicateParameter);
        err("for=unknown", UnknownNode);
        err("for=UNKNOWN", UnknownNode);
        err(r#"for="unknown""#, UnknownNode);
        err(r#"for="unknown:80""#, UnknownNode);
        err("for=_hidden", ObfuscatedNode);
        err(r#"for="_gazonk""#, ObfuscatedNode);
        err(r#"for="_gazonk:_p""#, ObfuscatedNode);
    }

    #[test]
    fn too_many_parameters() {
        let mut element = String::from("for=192.0.2.1");
        for i in 1..MAX_PARAMS {
            element.push_str(&format!(";p{i}=x"));
        }
        ok(&element, "192.0.2.1");
        element.push_str(";one=more");
        err(&element, TooManyParameters);
    }

    #[test]
    fn invalid_addresses() {
        err(r#"for="2607:f8b0:4004:83f::200e""#, InvalidAddress);
        err(r#"for="[203.0.113.50]""#, InvalidAddress);
        err(r#"for="[203.0.113.50]:80""#, InvalidAddress);
        err(r#"for="198.51.100.10, for=10.0.0.2""#, InvalidAddress);
        err(r#"for="1.1.1.1, For=2.2.2.2, For=3.3.3.3""#, InvalidAddress);
        err(r#"for="""#, InvalidAddress);
        err(r#"for=" 192.0.2.1""#, InvalidAddress);
        err(r#"for="192.0.2.1 ""#, InvalidAddress);
        err(r#"for="192.0.2.1:""#, InvalidAddress);
        err(r#"for="192.0.2.1:65536""#, InvalidAddress);
        err(r#"for="192.0.2.1:99999""#, InvalidAddress);
        err(r#"for="192.0.2.1:_""#, InvalidAddress);
        err(r#"for="192.0.2.1:_a b""#, InvalidAddress);
        err(r#"for="192.0.2.1:http""#, InvalidAddress);
        err(r#"for="[fe80::1%25eth0]""#, InvalidAddress);
        err(r#"for="[::1]x""#, InvalidAddress);
        err(r#"for="[::1""#, InvalidAddress);
        err(r#"for="[]""#, InvalidAddress);
        err("for=01.2.3.4", InvalidAddress);
        err("for=127.1", InvalidAddress);
        err("for=0x7f.0.0.1", InvalidAddress);
        err("for=2130706433", InvalidAddress);
        err("for=localhost", InvalidAddress);
        err("for=example.com", InvalidAddress);
        err(r#"for="192.0.2.1\ ""#, InvalidAddress);
    }

    #[test]
    fn unescape_iterates_pairs() {
        let bytes: Vec<u8> = Unescape(br#"a\"b\\c\d"#.iter()).collect();
        assert_eq!(bytes, br#"a"b\cd"#);
    }
}
