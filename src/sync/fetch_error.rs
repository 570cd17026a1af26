//! Why one fetch from the admin store failed, named so that ops can act on
//! it, and mapped onto the sync metrics' `result` label. Messages name the
//! URL and never the bearer token (the token lives only in a header, which
//! no error here ever prints).

use std::error::Error as _;
use std::time::Duration;

/// A fetch that brought no usable answer. The last good snapshot stays in
/// force whatever the variant; the variants differ in what ops should check.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No complete answer in time. `phase` is `"connect"` (TCP/TLS setup
    /// took longer than `connect_timeout`) or `"total"` (the whole exchange,
    /// body included, took longer than `timeout`).
    #[error("allowlist source {url}: {phase} timeout, no complete answer within {after:?}")]
    Timeout {
        url: String,
        phase: &'static str,
        after: Duration,
    },

    /// Could not connect (refused, unreachable, DNS, TLS handshake or
    /// certificate refused).
    #[error("allowlist source {url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },

    /// An answer other than 200, or 304 to a request without validators.
    /// Redirects are not followed, so they land here too.
    #[error("allowlist source {url}: answered HTTP {status}{}", describe_status(*.status))]
    HttpStatus { url: String, status: u16 },

    /// The body is larger than `max_body_bytes`: announced by
    /// `Content-Length` (refused before reading), or found while streaming.
    #[error("allowlist source {url}: document too large: {}", describe_size(*.limit, *.announced))]
    TooLarge {
        url: String,
        limit: usize,
        /// The `Content-Length` the server announced, if that was the reason.
        announced: Option<u64>,
    },

    /// The body broke off: fewer bytes than `Content-Length`, or the
    /// connection dropped mid-body.
    #[error(
        "allowlist source {url}: document truncated: the body broke off after {received} \
         bytes{}: {reason}",
        describe_expected(*.expected)
    )]
    Truncated {
        url: String,
        received: usize,
        expected: Option<u64>,
        reason: String,
    },

    /// Anything else (the server closed the connection without answering,
    /// a protocol error...).
    #[error("allowlist source {url}: request failed: {reason}")]
    Other { url: String, reason: String },
}

impl FetchError {
    /// The `result` label of the sync-attempts metric.
    pub fn result_label(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. }
            | FetchError::HttpStatus { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Truncated { .. }
            | FetchError::Other { .. } => "http_error",
        }
    }

    /// The URL the failed fetch went to.
    pub fn url(&self) -> &str {
        match self {
            FetchError::Timeout { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::HttpStatus { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::Truncated { url, .. }
            | FetchError::Other { url, .. } => url,
        }
    }

    /// Classify an error from sending the request or reading the headers.
    pub(crate) fn from_send(
        url: &str,
        connect_timeout: Duration,
        err: reqwest::Error,
    ) -> FetchError {
        let url = url.to_owned();
        // No total timeout is set on the client (the caller wraps the whole
        // fetch), so a timeout here can only be the connect timeout.
        if err.is_timeout() {
            FetchError::Timeout {
                url,
                phase: "connect",
                after: connect_timeout,
            }
        } else if err.is_connect() {
            FetchError::Connect {
                url,
                reason: chain(err),
            }
        } else {
            FetchError::Other {
                url,
                reason: chain(err),
            }
        }
    }

    /// Classify an error while streaming the body: whatever broke the body
    /// (connection closed before `Content-Length`, reset, bad chunk framing)
    /// means we hold only part of the document.
    pub(crate) fn from_body(
        url: &str,
        received: usize,
        expected: Option<u64>,
        err: reqwest::Error,
    ) -> FetchError {
        FetchError::Truncated {
            url: url.to_owned(),
            received,
            expected,
            reason: chain(err),
        }
    }
}

/// The error and its sources in one line. reqwest's own text is generic
/// ("error sending request"); the useful part ("Connection refused", "invalid
/// peer certificate") is further down the chain. The URL is stripped because
/// our message names it already.
fn chain(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn describe_status(status: u16) -> String {
    let phrase = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    let mut text = phrase.map(|p| format!(" {p}")).unwrap_or_default();
    if status == 304 {
        text.push_str(" without a conditional request");
    } else if status == 401 || status == 403 {
        text.push_str(" (check the bearer token file or variable)");
    } else if (300..400).contains(&status) {
        text.push_str(" (redirects are not followed: configure the final URL)");
    }
    text
}

fn describe_size(limit: usize, announced: Option<u64>) -> String {
    match announced {
        Some(n) => format!(
            "Content-Length announces {n} bytes, over the limit of {limit} bytes (max_body_bytes)"
        ),
        None => {
            format!("the body passed the limit of {limit} bytes (max_body_bytes) while streaming")
        }
    }
}

fn describe_expected(expected: Option<u64>) -> String {
    match expected {
        Some(n) => format!(" of the {n} announced by Content-Length"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://admin.example.nl/allowlist.json";

    #[test]
    fn labels() {
        let timeout = FetchError::Timeout {
            url: URL.into(),
            phase: "total",
            after: Duration::from_millis(300),
        };
        assert_eq!(timeout.result_label(), "timeout");
        let others = [
            FetchError::Connect {
                url: URL.into(),
                reason: "refused".into(),
            },
            FetchError::HttpStatus {
                url: URL.into(),
                status: 500,
            },
            FetchError::TooLarge {
                url: URL.into(),
                limit: 10,
                announced: None,
            },
            FetchError::Truncated {
                url: URL.into(),
                received: 1,
                expected: Some(2),
                reason: "eof".into(),
            },
            FetchError::Other {
                url: URL.into(),
                reason: "x".into(),
            },
        ];
        for e in &others {
            assert_eq!(e.result_label(), "http_error", "{e}");
            assert_eq!(e.url(), URL);
            assert!(e.to_string().contains(URL), "{e}");
        }
        assert!(timeout.to_string().contains("300ms"), "{timeout}");
    }

    #[test]
    fn too_large_and_truncated_read_differently() {
        let large = FetchError::TooLarge {
            url: URL.into(),
            limit: 1024,
            announced: Some(5000),
        }
        .to_string();
        let cut = FetchError::Truncated {
            url: URL.into(),
            received: 50,
            expected: Some(100),
            reason: "eof".into(),
        }
        .to_string();
        assert!(
            large.contains("too large") && large.contains("1024") && large.contains("5000"),
            "{large}"
        );
        assert!(
            cut.contains("truncated") && cut.contains("50") && cut.contains("100"),
            "{cut}"
        );
        assert!(!large.contains("truncated") && !cut.contains("too large"));
    }

    #[test]
    fn status_messages() {
        let e = FetchError::HttpStatus {
            url: URL.into(),
            status: 500,
        }
        .to_string();
        assert!(
            e.ends_with("answered HTTP 500 Internal Server Error"),
            "{e}"
        );
        let e = FetchError::HttpStatus {
            url: URL.into(),
            status: 302,
        }
        .to_string();
        assert!(e.contains("redirects are not followed"), "{e}");
    }
}
