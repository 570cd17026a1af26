//! Requests refused before any decision: a request line or header Pingora cannot parse, a
//! framing it will not guess at, CONNECT, or a body that breaks its framing or stalls. Each
//! is answered with the gate's own page (never a framework's empty 400), counted by reason
//! in `poortwachter_bad_requests_total` and logged without the request's bytes (they may
//! hold cookies and site claims).
//!
//! [`classify`] maps Pingora's error to a reason; it reads only the error's type, its
//! context and its cause, the places Pingora 0.9 states what was wrong.

use crate::page::PageKind;
use pingora::{Error, ErrorSource, ErrorType};

/// Why a request was refused, as counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The request line: a method or target with bytes no request may hold.
    RequestLine,
    /// An HTTP version other than 1.0 and 1.1 on an HTTP/1 connection.
    Version,
    /// A header field that cannot be read: a bad name or value byte, a bare CR, obs-fold.
    Header,
    /// More header bytes than Pingora reads at all (over twice `max_header_bytes` the gate
    /// closes the connection before this).
    TooLarge,
    /// Framing the gate will not guess at: conflicting or invalid `Content-Length`,
    /// `Transfer-Encoding` that is not chunked last, or with HTTP/1.0.
    Framing,
    /// A missing or empty host on HTTP/1.1, or an ambiguous one: several `Host` fields, `Host` against the absolute-form
    /// target, user info.
    Host,
    /// CONNECT: the gate proxies requests, not tunnels.
    Method,
    /// The request body breaks its framing (a bad chunk) .
    Body,
    /// The request body stopped arriving within `read_timeout`.
    BodyTimeout,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::RequestLine,
        Reason::Version,
        Reason::Header,
        Reason::TooLarge,
        Reason::Framing,
        Reason::Host,
        Reason::Method,
        Reason::Body,
        Reason::BodyTimeout,
    ];

    /// The name in the metric label and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RequestLine => "request_line",
            Reason::Version => "version",
            Reason::Header => "header",
            Reason::TooLarge => "too_large",
            Reason::Framing => "framing",
            Reason::Host => "host",
            Reason::Method => "method",
            Reason::Body => "body",
            Reason::BodyTimeout => "body_timeout",
        }
    }

    /// The status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Reason::Version => 505,
            Reason::TooLarge => 431,
            Reason::Method => 405,
            Reason::BodyTimeout => 408,
            _ => 400,
        }
    }

    /// The page that explains it.
    pub fn page(self) -> PageKind {
        match self {
            Reason::TooLarge => PageKind::HeaderTooLarge,
            _ => PageKind::Malformed,
        }
    }
}

/// The reason a request was refused before any phase ran, from the error Pingora read it
/// with; `None` when there is nothing to answer (the connection closed, broke or timed out
/// before a whole header, which is not a request).
pub fn classify(e: &Error) -> Option<Reason> {
    match e.etype() {
        ErrorType::HTTPStatus(405) => Some(Reason::Method),
        ErrorType::InvalidHTTPHeader => Some(header_reason(e)),
        _ => None,
    }
}

/// The reason for an error while a request was being proxied that is the client's
/// (`ErrorSource::Downstream`) and still allows an answer: its body broke its framing or
/// stalled. `None` for a client that went away (nothing to answer) and for errors of other
/// sources.
pub fn classify_downstream(e: &Error) -> Option<Reason> {
    if e.esource() != &ErrorSource::Downstream {
        return None;
    }
    match e.etype() {
        ErrorType::ReadTimedout => Some(Reason::BodyTimeout),
        ErrorType::ReadError
        | ErrorType::WriteError
        | ErrorType::ConnectionClosed
        | ErrorType::WriteTimedout => None,
        ErrorType::InvalidHTTPHeader => Some(header_reason(e)),
        _ => Some(Reason::Body),
    }
}

/// Pingora's `InvalidHTTPHeader` covers every header problem; its context (a message of
/// its own, or the header bytes for a parse failure) and the parser's error as cause say
/// which.
fn header_reason(e: &Error) -> Reason {
    let context = e.context.as_ref().map(|c| c.as_str()).unwrap_or("");
    // A parse failure: the context is the header's own bytes (`buf: ...`), which may say
    // anything; the cause is the parser's error (httparse's messages).
    if context.starts_with("buf:") {
        let cause = e.cause.as_ref().map(|c| c.to_string()).unwrap_or_default();
        return match cause.as_str() {
            "invalid HTTP version" => Reason::Version,
            "invalid token" => Reason::RequestLine,
            _ => Reason::Header,
        };
    }
    if context.contains("larger than") {
        return Reason::TooLarge;
    }
    if context.contains("Content-Length") || context.contains("Transfer-Encoding") {
        return Reason::Framing;
    }
    if context.contains("Host")
        || context.contains("authority")
        || context.contains("request target")
        || context.contains("request-target")
        || context.contains("userinfo")
    {
        return Reason::Host;
    }
    if context.contains("chunk") {
        return Reason::Body;
    }
    Reason::Header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_error(context: &str) -> Box<Error> {
        Error::explain(ErrorType::InvalidHTTPHeader, context.to_string())
    }

    fn parse_error(cause: &'static str) -> Box<Error> {
        // The header's bytes as context may say anything, "Host" and "Content-Length" too.
        Error::because(
            ErrorType::InvalidHTTPHeader,
            "buf: GET / HTTP/9.9\\r\\nHost: x\\r\\nContent-Length: 1\\r\\n",
            cause,
        )
    }

    #[test]
    fn pingoras_header_messages_map_to_reasons() {
        // Messages as pingora-core 0.9 writes them (protocols/http/v1, authority.rs).
        let cases = [
            ("Request header larger than 1048575", Reason::TooLarge),
            ("invalid Content-Length header value: +5", Reason::Framing),
            ("invalid Content-Length header", Reason::Framing),
            ("negative Content-Length header value: -1", Reason::Framing),
            ("non-chunked final Transfer-Encoding", Reason::Framing),
            (
                "HTTP/1.0 requests cannot include Transfer-Encoding header",
                Reason::Framing,
            ),
            ("invalid Transfer-Encoding header", Reason::Framing),
            ("multiple Host header fields", Reason::Host),
            ("Host header differs from URI authority", Reason::Host),
            ("ambiguous HTTP absolute-form request target", Reason::Host),
            ("userinfo in request target", Reason::Host),
            ("while parsing request header", Reason::Header),
        ];
        for (context, want) in cases {
            assert_eq!(classify(&header_error(context)), Some(want), "{context}");
        }
    }

    #[test]
    fn parse_failures_map_by_the_parsers_error() {
        assert_eq!(
            classify(&parse_error("invalid HTTP version")),
            Some(Reason::Version)
        );
        assert_eq!(
            classify(&parse_error("invalid token")),
            Some(Reason::RequestLine)
        );
        for cause in [
            "invalid header name",
            "invalid header value",
            "invalid new line",
            "too many headers",
        ] {
            assert_eq!(
                classify(&parse_error(cause)),
                Some(Reason::Header),
                "{cause}"
            );
        }
    }

    #[test]
    fn a_broken_connection_is_not_answered() {
        for t in [
            ErrorType::ReadError,
            ErrorType::ReadTimedout,
            ErrorType::ConnectionClosed,
            ErrorType::WriteError,
        ] {
            assert_eq!(classify(&Error::new(t.clone())), None, "{t:?}");
        }
        assert_eq!(
            classify(&Error::new(ErrorType::HTTPStatus(405))),
            Some(Reason::Method)
        );
    }

    #[test]
    fn downstream_errors_while_proxying() {
        let down = |t: ErrorType| {
            let mut e = Error::new(t);
            e.as_down();
            e
        };
        assert_eq!(
            classify_downstream(&down(ErrorType::ReadTimedout)),
            Some(Reason::BodyTimeout)
        );
        assert_eq!(
            classify_downstream(&down(ErrorType::Custom("InvalidChunk"))),
            Some(Reason::Body)
        );
        assert_eq!(
            classify_downstream(&down(ErrorType::ConnectionClosed)),
            None
        );
        assert_eq!(classify_downstream(&down(ErrorType::ReadError)), None);
        let mut up = Error::new(ErrorType::ReadTimedout);
        up.as_up();
        assert_eq!(classify_downstream(&up), None, "the upstream's, not ours");
    }

    #[test]
    fn statuses_and_pages() {
        for r in Reason::ALL {
            let want = match r {
                Reason::Version => 505,
                Reason::TooLarge => 431,
                Reason::Method => 405,
                Reason::BodyTimeout => 408,
                _ => 400,
            };
            assert_eq!(r.status(), want, "{r:?}");
            assert_eq!(
                r.page() == PageKind::HeaderTooLarge,
                r == Reason::TooLarge,
                "{r:?}"
            );
        }
        let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len(), "names are distinct");
    }
}
