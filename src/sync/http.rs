//! The admin store over HTTPS: one conditional GET per call, with a connect
//! timeout, a total timeout, a body size limit enforced while streaming, and
//! the bearer token. It does not judge the document (that is `compile`), and
//! it does not loop (that is the sync service).
//!
//! Validators (ETag, Last-Modified) are only remembered when the caller says
//! the document was accepted ([`HttpSource::accept_validators`]): a document
//! refused by the shrink guard or by `compile` must be fetched and judged
//! again on the next poll, not answered with 304 forever.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::header::{ACCEPT, AUTHORIZATION, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use http::StatusCode;
use reqwest::Url;

use crate::net_url::is_loopback_host;

pub use super::error::SourceError;
pub use super::fetch_error::FetchError;

/// Default connect timeout (TCP + TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout of one fetch, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default body limit: a 100k-range document is a few MiB; this leaves room
/// for growth while keeping a runaway answer from eating memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How to reach the admin store.
#[derive(Clone)]
pub struct HttpSourceConfig {
    /// `https://…`, or `http://` to a loopback host (tests).
    pub url: String,
    /// Sent as `Authorization: Bearer …` (read it with
    /// [`TokenSource`](super::token::TokenSource)).
    pub bearer_token: Option<String>,
    /// Extra CA certificates (PEM, one or more) trusted besides the built-in
    /// web roots, for an admin store behind a private CA.
    pub ca_file: Option<PathBuf>,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// The whole fetch, from connecting to the last body byte.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body_bytes: usize,
}

impl HttpSourceConfig {
    /// A config for `url` with the default timeouts and limit, no token, no
    /// extra CA.
    pub fn new(url: impl Into<String>) -> HttpSourceConfig {
        HttpSourceConfig {
            url: url.into(),
            bearer_token: None,
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

// By hand, so the token never reaches a log line through `{:?}`.
impl fmt::Debug for HttpSourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSourceConfig")
            .field("url", &self.url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// The outcome of a fetch that got an answer we can use.
#[derive(Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the document we accepted last is still current.
    NotModified,
    /// 200 with the full body (not yet judged).
    Document {
        body: Bytes,
        /// Validators as served; hand them to
        /// [`HttpSource::accept_validators`] once the document is accepted.
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

// By hand: a multi-megabyte body has no place in a log line.
impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fetched::NotModified => f.write_str("NotModified"),
            Fetched::Document {
                body,
                etag,
                last_modified,
            } => f
                .debug_struct("Document")
                .field("body_bytes", &body.len())
                .field("etag", etag)
                .field("last_modified", last_modified)
                .finish(),
        }
    }
}

/// A configured admin-store source.
pub struct HttpSource {
    /// As configured, for messages.
    url: String,
    parsed: Url,
    client: reqwest::Client,
    /// `Bearer …`, marked sensitive so http's Debug hides it.
    authorization: Option<HeaderValue>,
    connect_timeout: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    /// Validators of the last *accepted* document.
    etag: Option<String>,
    last_modified: Option<String>,
}

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSource")
            .field("url", &self.url)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// Check the settings and build the client. No request is sent.
    ///
    /// Refused: a URL that does not parse, a scheme other than `https` or
    /// `http`, `http://` to anything but a loopback host, user or password in
    /// the URL (they would end up in log lines; use the bearer token), zero
    /// timeouts or limit, a token that cannot be a header value, a CA file
    /// that cannot be read or holds no certificate.
    pub fn new(cfg: HttpSourceConfig) -> Result<HttpSource, SourceError> {
        let parsed = check_url(&cfg.url)?;
        let setting = |setting, reason: &str| SourceError::InvalidSetting {
            url: cfg.url.clone(),
            setting,
            reason: reason.to_owned(),
        };
        if cfg.timeout.is_zero() {
            return Err(setting("timeout", "must be greater than zero"));
        }
        if cfg.connect_timeout.is_zero() {
            return Err(setting("connect_timeout", "must be greater than zero"));
        }
        if cfg.max_body_bytes == 0 {
            return Err(setting("max_body_bytes", "must be greater than zero"));
        }

        let authorization = match &cfg.bearer_token {
            None => None,
            Some(token) => {
                Some(
                    bearer_header(token).map_err(|reason| SourceError::InvalidToken {
                        url: cfg.url.clone(),
                        reason: reason.to_owned(),
                    })?,
                )
            }
        };

        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(cfg.connect_timeout)
            // A redirect could lead to plain http or another host; the
            // admin store has one fixed URL, so a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("poortwachter/", env!("CARGO_PKG_VERSION")));
        if is_loopback_host(&parsed) {
            // A proxy from HTTPS_PROXY cannot reach our own loopback.
            builder = builder.no_proxy();
        }
        if let Some(path) = &cfg.ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| match &cfg.ca_file {
            // With rustls the certificates are only parsed here, so a
            // broken one surfaces at build time.
            Some(path) => SourceError::CaFile {
                path: path.clone(),
                reason: format!("unusable certificate: {e}"),
            },
            None => SourceError::Client {
                url: cfg.url.clone(),
                reason: e.to_string(),
            },
        })?;

        Ok(HttpSource {
            url: cfg.url,
            parsed,
            client,
            authorization,
            connect_timeout: cfg.connect_timeout,
            timeout: cfg.timeout,
            max_body_bytes: cfg.max_body_bytes,
            etag: None,
            last_modified: None,
        })
    }

    /// The URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Remember the validators of a document that was accepted, so the next
    /// fetch is conditional on it. Replaces both: a server that stopped
    /// sending one of them must not be asked with a stale one.
    pub fn accept_validators(&mut self, etag: Option<String>, last_modified: Option<String>) {
        self.etag = etag;
        self.last_modified = last_modified;
    }

    /// Forget the validators, so the next fetch gets the full document (for
    /// a forced re-check, or when the snapshot in force did not come from
    /// this source).
    pub fn forget_validators(&mut self) {
        self.etag = None;
        self.last_modified = None;
    }

    /// The ETag of the last accepted document.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The Last-Modified of the last accepted document.
    pub fn last_modified(&self) -> Option<&str> {
        self.last_modified.as_deref()
    }

    /// One conditional GET. Does not change the remembered validators.
    ///
    /// The total timeout covers everything from connecting to the last body
    /// byte, so a server that sends one byte a minute cannot hold the sync
    /// loop. The body is streamed and given up as soon as it passes
    /// `max_body_bytes`; a `Content-Length` over the limit is refused before
    /// reading any of it.
    pub async fn fetch(&mut self) -> Result<Fetched, FetchError> {
        let result = match tokio::time::timeout(self.timeout, self.fetch_once()).await {
            Ok(result) => result,
            Err(_elapsed) => Err(FetchError::Timeout {
                url: self.url.clone(),
                phase: "total",
                after: self.timeout,
            }),
        };
        match &result {
            Ok(fetched) => tracing::debug!(url = %self.url, outcome = ?fetched, "allowlist fetch"),
            Err(e) => tracing::debug!(url = %self.url, error = %e, "allowlist fetch failed"),
        }
        result
    }

    async fn fetch_once(&self) -> Result<Fetched, FetchError> {
        let mut request = self
            .client
            .get(self.parsed.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let mut conditional = false;
        for (name, value) in [
            (IF_NONE_MATCH, &self.etag),
            (IF_MODIFIED_SINCE, &self.last_modified),
        ] {
            // Validators came from response headers, so they are valid
            // header values; if not, asking unconditionally is the safe way.
            if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                request = request.header(name, value);
                conditional = true;
            }
        }

        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::from_send(&self.url, self.connect_timeout, e))?;

        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && conditional {
            return Ok(Fetched::NotModified);
        }
        if status != StatusCode::OK {
            // Including 304 to an unconditional request: there is nothing
            // it could mean, and treating it as "unchanged" would hide a
            // broken store behind the last good snapshot forever.
            return Err(FetchError::HttpStatus {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let etag = header_text(response.headers(), &ETAG);
        let last_modified = header_text(response.headers(), &LAST_MODIFIED);

        let expected = response.content_length();
        if let Some(announced) = expected {
            if announced > self.max_body_bytes as u64 {
                return Err(FetchError::TooLarge {
                    url: self.url.clone(),
                    limit: self.max_body_bytes,
                    announced: Some(announced),
                });
            }
        }
        // Bounded by the limit, since a larger announcement was refused.
        let capacity = expected.map_or(0, |n| n as usize);
        let mut body = BytesMut::with_capacity(capacity);
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(FetchError::from_body(&self.url, body.len(), expected, e)),
            };
            if chunk.len() > self.max_body_bytes - body.len() {
                // Dropping the response closes the connection: the rest is
                // never read.
                return Err(FetchError::TooLarge {
                    url: self.url.clone(),
                    limit: self.max_body_bytes,
                    announced: None,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(n) = expected {
            // hyper already fails a short body; this keeps the promise even
            // if a lower layer ever stops doing so.
            if body.len() as u64 != n {
                return Err(FetchError::Truncated {
                    url: self.url.clone(),
                    received: body.len(),
                    expected,
                    reason: "body length differs from Content-Length".to_owned(),
                });
            }
        }
        Ok(Fetched::Document {
            body: body.freeze(),
            etag,
            last_modified,
        })
    }
}

/// Parse and vet the URL (see [`HttpSource::new`]).
fn check_url(url: &str) -> Result<Url, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = Url::parse(url).map_err(|e| invalid(&format!("not a valid URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Say so without echoing the URL: it holds a password.
        return Err(SourceError::InvalidUrl {
            url: redacted(&parsed),
            reason: "must not contain a user name or password; use a bearer token file".to_owned(),
        });
    }
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(&parsed) => {}
        "http" => {
            return Err(SourceError::InsecureUrl {
                url: url.to_owned(),
            })
        }
        other => {
            return Err(invalid(&format!(
                "scheme {other:?} is not supported; use https://"
            )))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    Ok(parsed)
}

fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    // Only fails for URLs that cannot have credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

fn bearer_header(token: &str) -> Result<HeaderValue, &'static str> {
    if token.is_empty() {
        return Err("is empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains whitespace, control or non-ASCII characters");
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "is not a valid header value")?;
    value.set_sensitive(true);
    Ok(value)
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, SourceError> {
    let fail = |reason: String| SourceError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| fail(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

/// A header as text, if present and visible ASCII (what validators are).
fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_error(url: &str) -> SourceError {
        HttpSource::new(HttpSourceConfig::new(url)).expect_err(url)
    }

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for ok in [
            "https://admin.example.nl/allowlist.json",
            "https://192.0.2.10:8443/allowlist",
            "http://127.0.0.1:8080/allowlist.json",
            "http://127.8.9.10/a",
            "http://[::1]:9000/a",
            "http://localhost:9000/a",
            "http://LOCALHOST/a",
            "http://[::ffff:127.0.0.1]/a",
        ] {
            assert!(HttpSource::new(HttpSourceConfig::new(ok)).is_ok(), "{ok}");
        }
        for insecure in [
            "http://192.0.2.10/allowlist.json",
            "http://admin.example.nl/a",
            "http://localhost.example.nl/a",
            "http://127.0.0.1.example.nl/a",
            "http://[2001:db8::1]/a",
            "http://[::ffff:192.0.2.1]/a",
            "http://0.0.0.0/a",
        ] {
            let err = url_error(insecure);
            assert!(
                matches!(err, SourceError::InsecureUrl { .. }),
                "{insecure}: {err}"
            );
            assert!(err.to_string().contains(insecure), "{err}");
        }
    }

    #[test]
    fn other_schemes_and_garbage_are_refused_naming_the_url() {
        for bad in [
            "ftp://admin.example.nl/a",
            "file:///etc/allowlist.json",
            "admin.example.nl/a",
            "",
        ] {
            let err = url_error(bad);
            assert!(
                matches!(err, SourceError::InvalidUrl { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echoing_them() {
        let err = url_error("https://ops:hunter2@admin.example.nl/a");
        let msg = err.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("admin.example.nl"), "{msg}");
    }

    #[test]
    fn zero_settings_are_refused() {
        let mut cfg = HttpSourceConfig::new("https://admin.example.nl/a");
        cfg.timeout = Duration::ZERO;
        assert!(matches!(
            HttpSource::new(cfg.clone()),
            Err(SourceError::InvalidSetting {
                setting: "timeout",
                ..
            })
        ));
        cfg.timeout = DEFAULT_TIMEOUT;
        cfg.max_body_bytes = 0;
        assert!(matches!(
            HttpSource::new(cfg),
            Err(SourceError::InvalidSetting {
                setting: "max_body_bytes",
                ..
            })
        ));
    }

    #[test]
    fn bad_token_is_refused_without_showing_it() {
        let mut cfg = HttpSourceConfig::new("https://admin.example.nl/a");
        cfg.bearer_token = Some("abc\r\nX-Evil: 1".into());
        let err = HttpSource::new(cfg).expect_err("header injection");
        assert!(matches!(err, SourceError::InvalidToken { .. }));
        assert!(!err.to_string().contains("abc"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let mut cfg = HttpSourceConfig::new("https://admin.example.nl/a");
        cfg.bearer_token = Some("t0ps3cret".into());
        assert!(!format!("{cfg:?}").contains("t0ps3cret"));
        let source = HttpSource::new(cfg).expect("source");
        assert!(!format!("{source:?}").contains("t0ps3cret"));
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing-ca.pem");
        let garbage = dir.path().join("garbage-ca.pem");
        std::fs::write(&garbage, b"this is not a certificate\n").expect("write");
        let broken = dir.path().join("broken-ca.pem");
        std::fs::write(
            &broken,
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        for path in [missing, garbage, broken] {
            let mut cfg = HttpSourceConfig::new("https://admin.example.nl/a");
            cfg.ca_file = Some(path.clone());
            let err = HttpSource::new(cfg).expect_err("bad CA");
            assert!(matches!(err, SourceError::CaFile { .. }), "{err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn accepted_validators_are_kept_until_replaced() {
        let mut source =
            HttpSource::new(HttpSourceConfig::new("https://admin.example.nl/a")).expect("source");
        assert_eq!((source.etag(), source.last_modified()), (None, None));
        source.accept_validators(
            Some("\"v1\"".into()),
            Some("Tue, 01 Dec 2026 15:02:00 GMT".into()),
        );
        assert_eq!(source.etag(), Some("\"v1\""));
        source.accept_validators(Some("\"v2\"".into()), None);
        assert_eq!(
            (source.etag(), source.last_modified()),
            (Some("\"v2\""), None)
        );
        source.forget_validators();
        assert_eq!(source.etag(), None);
    }
}
