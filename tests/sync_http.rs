//! The HTTP admin-store source against real servers on loopback: conditional
//! GET and the "validators only after acceptance" rule, the bearer token,
//! every failure the issue lists (status, timeout, refused, truncated, too
//! large), each seen through `HttpSource::fetch` exactly as the sync loop
//! will call it.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::admin_store::{read_request_head, AdminStore, Behaviour, Document, RawServer};
use common::RefusedAddr;
use poortwachter::allowlist::{compile, CompileOptions};
use poortwachter::sync::{check_shrink, FetchError, Fetched, HttpSource, HttpSourceConfig};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

const DOC_V1: &str = r#"{"version":"v1","sites":[{"id":"12AB00","ranges":["192.0.2.0/28","198.51.100.7","2001:db8:12::/48"]}]}"#;
const DOC_V2: &str = r#"{"version":"v2","sites":[{"id":"12AB00","ranges":["192.0.2.0/28","198.51.100.7","198.51.100.8","2001:db8:12::/48"]}]}"#;
const LAST_MODIFIED: &str = "Tue, 01 Dec 2026 15:02:00 GMT";
const TOKEN: &str = "tok-4711-geheim";

/// Generous against a loaded CI machine; no test waits this long when the
/// code works.
const TEST_BOUND: Duration = Duration::from_secs(20);

fn config(url: String) -> HttpSourceConfig {
    let mut cfg = HttpSourceConfig::new(url);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(5);
    cfg
}

fn source(url: String) -> HttpSource {
    HttpSource::new(config(url)).expect("valid source")
}

/// Fetch, failing the test instead of hanging it.
async fn fetch(source: &mut HttpSource) -> Result<Fetched, FetchError> {
    tokio::time::timeout(TEST_BOUND, source.fetch())
        .await
        .expect("fetch did not return within the test bound")
}

fn document(fetched: Fetched) -> (Bytes, Option<String>, Option<String>) {
    match fetched {
        Fetched::Document {
            body,
            etag,
            last_modified,
        } => (body, etag, last_modified),
        Fetched::NotModified => panic!("expected a document, got 304"),
    }
}

#[tokio::test]
async fn document_then_not_modified_once_validators_are_accepted() {
    let store = AdminStore::start(Document::new(DOC_V1, Some("\"v1\""), Some(LAST_MODIFIED))).await;
    let mut source = source(store.url());

    let (body, etag, last_modified) = document(fetch(&mut source).await.expect("first fetch"));
    assert_eq!(body, DOC_V1.as_bytes());
    assert_eq!(etag.as_deref(), Some("\"v1\""));
    assert_eq!(last_modified.as_deref(), Some(LAST_MODIFIED));

    source.accept_validators(etag, last_modified);
    assert_eq!(
        fetch(&mut source).await.expect("second fetch"),
        Fetched::NotModified
    );

    let seen = store.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, common::admin_store::PATH);
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    assert_eq!(seen[0].header("if-none-match"), None);
    assert_eq!(seen[0].header("if-modified-since"), None);
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""));
    assert_eq!(seen[1].header("if-modified-since"), Some(LAST_MODIFIED));
}

#[tokio::test]
async fn validators_are_not_sent_until_accepted() {
    let store = AdminStore::start(Document::new(DOC_V1, Some("\"v1\""), Some(LAST_MODIFIED))).await;
    let mut source = source(store.url());

    for _ in 0..2 {
        let (body, _, _) = document(fetch(&mut source).await.expect("fetch"));
        assert_eq!(body, DOC_V1.as_bytes());
    }
    let seen = store.seen();
    assert_eq!(seen.len(), 2);
    for seen in seen {
        assert_eq!(seen.header("if-none-match"), None);
        assert_eq!(seen.header("if-modified-since"), None);
    }
}

/// The scenario of the design: a document refused by the shrink guard keeps
/// the old validators, so the next poll gets the refused document again and
/// judges it again, instead of a 304 that would hide it.
#[tokio::test]
async fn a_refused_document_is_fetched_and_judged_again() {
    let opts = CompileOptions::default();
    let store = AdminStore::start(Document::new(DOC_V1, Some("\"v1\""), None)).await;
    let mut source = source(store.url());

    let (body, etag, last_modified) = document(fetch(&mut source).await.expect("v1"));
    let in_force = compile(&body, &opts).expect("v1 compiles");
    source.accept_validators(etag, last_modified);

    // The store now answers an empty list: valid JSON, but a disaster.
    let empty = r#"{"version":"v3","sites":[]}"#;
    store.set_document(Document::new(empty, Some("\"v3\""), None));
    for poll in 0..2 {
        let (body, etag, _) = document(fetch(&mut source).await.expect("v3"));
        assert_eq!(etag.as_deref(), Some("\"v3\""), "poll {poll}");
        let candidate = compile(&body, &opts).expect("v3 compiles");
        let refused = check_shrink(in_force.range_count(), candidate.range_count(), 0.2);
        assert!(
            refused.is_err(),
            "poll {poll}: shrink guard let an empty list through"
        );
        // Refused: validators not accepted.
    }
    let seen = store.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""));
    assert_eq!(seen[2].header("if-none-match"), Some("\"v1\""));
    assert_eq!(source.etag(), Some("\"v1\""));

    // A good v2 is accepted and from then on answered with 304.
    store.set_document(Document::new(DOC_V2, Some("\"v2\""), None));
    let (body, etag, last_modified) = document(fetch(&mut source).await.expect("v2"));
    let candidate = compile(&body, &opts).expect("v2 compiles");
    assert!(check_shrink(in_force.range_count(), candidate.range_count(), 0.2).is_ok());
    source.accept_validators(etag, last_modified);
    assert_eq!(
        fetch(&mut source).await.expect("v2 again"),
        Fetched::NotModified
    );
}

#[tokio::test]
async fn if_modified_since_alone_gives_not_modified() {
    let store = AdminStore::start(Document::new(DOC_V1, None, Some(LAST_MODIFIED))).await;
    let mut source = source(store.url());

    let (_, etag, last_modified) = document(fetch(&mut source).await.expect("first"));
    assert_eq!(etag, None);
    source.accept_validators(etag, last_modified);
    assert_eq!(
        fetch(&mut source).await.expect("second"),
        Fetched::NotModified
    );

    let seen = store.seen();
    assert_eq!(seen[1].header("if-none-match"), None);
    assert_eq!(seen[1].header("if-modified-since"), Some(LAST_MODIFIED));
}

#[tokio::test]
async fn bearer_token_is_sent_and_never_shown() {
    let store = AdminStore::start(Document::new(DOC_V1, Some("\"v1\""), None)).await;
    store.require_token(TOKEN);

    let mut cfg = config(store.url());
    cfg.bearer_token = Some(TOKEN.to_owned());
    let mut with_token = HttpSource::new(cfg).expect("source");
    let (body, _, _) = document(fetch(&mut with_token).await.expect("authorised"));
    assert_eq!(body, DOC_V1.as_bytes());
    assert_eq!(
        store.seen()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    let mut without = source(store.url());
    let err = fetch(&mut without).await.expect_err("no token");
    assert!(
        matches!(err, FetchError::HttpStatus { status: 401, .. }),
        "{err}"
    );

    // A wrong token: refused, and neither message nor debug output shows it.
    let mut cfg = config(store.url());
    cfg.bearer_token = Some("wrong-secret-value".to_owned());
    let mut wrong = HttpSource::new(cfg).expect("source");
    let err = fetch(&mut wrong).await.expect_err("wrong token");
    assert!(
        matches!(err, FetchError::HttpStatus { status: 401, .. }),
        "{err}"
    );
    for text in [err.to_string(), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(!text.contains("wrong-secret-value"), "{text}");
    }
}

#[tokio::test]
async fn server_error_is_an_http_status() {
    let store = AdminStore::answering(Behaviour::status(500)).await;
    let mut cfg = config(store.url());
    cfg.bearer_token = Some(TOKEN.to_owned());
    let mut source = HttpSource::new(cfg).expect("source");
    let err = fetch(&mut source).await.expect_err("500");
    assert!(
        matches!(err, FetchError::HttpStatus { status: 500, .. }),
        "{err}"
    );
    assert_eq!(err.result_label(), "http_error");
    let msg = err.to_string();
    assert!(msg.contains(&store.url()) && msg.contains("500"), "{msg}");
    assert!(!msg.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
}

#[tokio::test]
async fn not_modified_without_validators_is_an_error() {
    let store = AdminStore::answering(Behaviour::status(304)).await;
    let mut source = source(store.url());
    let err = fetch(&mut source).await.expect_err("unconditional 304");
    assert!(
        matches!(err, FetchError::HttpStatus { status: 304, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let store = AdminStore::answering(Behaviour::Fixed {
        status: 302,
        headers: vec![("location".into(), "/elsewhere.json".into())],
        body: Bytes::new(),
    })
    .await;
    let mut source = source(store.url());
    let err = fetch(&mut source).await.expect_err("redirect");
    assert!(
        matches!(err, FetchError::HttpStatus { status: 302, .. }),
        "{err}"
    );
    assert_eq!(store.seen().len(), 1, "the redirect was followed");
}

#[tokio::test]
async fn silent_server_times_out_within_the_total_timeout() {
    let store = AdminStore::answering(Behaviour::Hang).await;
    let mut cfg = config(store.url());
    cfg.timeout = Duration::from_millis(300);
    let mut source = HttpSource::new(cfg).expect("source");

    let started = Instant::now();
    let err = fetch(&mut source).await.expect_err("no answer");
    let took = started.elapsed();
    assert!(
        matches!(err, FetchError::Timeout { phase: "total", after, .. } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert_eq!(err.result_label(), "timeout");
    assert!(
        took >= Duration::from_millis(300),
        "gave up early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(1800),
        "timeout not enforced: {took:?}"
    );
    assert_eq!(store.seen().len(), 1, "the request did reach the store");
}

/// Headers arrive at once, the body never completes: the total timeout
/// covers the body too.
#[tokio::test]
async fn stalled_body_times_out_too() {
    let server = RawServer::start(|mut stream| async move {
        read_request_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sites\":")
            .await;
        std::future::pending::<()>().await;
    })
    .await;
    let mut cfg = config(server.url());
    cfg.timeout = Duration::from_millis(300);
    let mut source = HttpSource::new(cfg).expect("source");
    let started = Instant::now();
    let err = fetch(&mut source).await.expect_err("stalled");
    assert!(
        matches!(err, FetchError::Timeout { phase: "total", .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(1800));
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let refused = RefusedAddr::new();
    let url = format!("http://{}/v1/allowlist.json", refused.addr());
    let mut source = source(url.clone());
    let err = fetch(&mut source).await.expect_err("refused");
    assert!(matches!(err, FetchError::Connect { .. }), "{err}");
    assert_eq!(err.result_label(), "http_error");
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[tokio::test]
async fn body_shorter_than_content_length_is_truncated() {
    let server = RawServer::start(|mut stream| async move {
        read_request_head(&mut stream).await;
        let mut answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                .to_vec();
        answer.extend_from_slice(&[b' '; 50]);
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
    let mut source = source(server.url());
    let err = fetch(&mut source).await.expect_err("truncated");
    match &err {
        FetchError::Truncated {
            received, expected, ..
        } => {
            assert!(*received <= 50, "{err}");
            assert_eq!(*expected, Some(100));
        }
        other => panic!("expected Truncated, got {other}"),
    }
    assert_eq!(err.result_label(), "http_error");
    assert!(err.to_string().contains("truncated"), "{err}");
}

/// The store's own truncation (used by the lifecycle tests) is a real one.
#[tokio::test]
async fn a_store_that_breaks_off_mid_body_is_truncated() {
    let store = AdminStore::start(Document::new(DOC_V1, Some("\"v1\""), None)).await;
    store.set_behaviour(Behaviour::Truncate);
    let mut source = source(store.url());
    let err = fetch(&mut source).await.expect_err("truncated");
    match &err {
        FetchError::Truncated {
            received, expected, ..
        } => {
            assert!(*received < DOC_V1.len(), "{err}");
            assert_eq!(*expected, Some(DOC_V1.len() as u64));
        }
        other => panic!("expected Truncated, got {other}"),
    }
}

#[tokio::test]
async fn chunked_body_that_breaks_off_is_truncated() {
    let server = RawServer::start(|mut stream| async move {
        read_request_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"sites\":\r\n")
            .await;
        // No terminating zero-size chunk: the connection just ends.
        let _ = stream.shutdown().await;
    })
    .await;
    let mut source = source(server.url());
    let err = fetch(&mut source).await.expect_err("truncated");
    assert!(
        matches!(err, FetchError::Truncated { expected: None, .. }),
        "{err}"
    );
}

/// The server announces a gigabyte and then sends nothing: refusing on the
/// header alone means a quick TooLarge, not a timeout.
#[tokio::test]
async fn content_length_over_the_limit_fails_before_reading() {
    let server = RawServer::start(|mut stream| async move {
        read_request_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n")
            .await;
        std::future::pending::<()>().await;
    })
    .await;
    let mut cfg = config(server.url());
    cfg.max_body_bytes = 1024;
    let mut source = HttpSource::new(cfg).expect("source");
    let err = fetch(&mut source).await.expect_err("too large");
    assert!(
        matches!(
            err,
            FetchError::TooLarge {
                limit: 1024,
                announced: Some(1_000_000_000),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.result_label(), "http_error");
    assert!(err.to_string().contains("too large"), "{err}");
}

/// A chunked body that never ends: the client must stop reading past the
/// limit (and close), not buffer until memory runs out. The server counts
/// what it managed to write before the client hung up.
#[tokio::test]
async fn endless_chunked_body_stops_at_the_limit() {
    const LIMIT: usize = 64 * 1024;
    const SERVER_CAP: u64 = 256 * 1024 * 1024;
    let written = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    let server = {
        let written = Arc::clone(&written);
        RawServer::start(move |mut stream| {
            let written = Arc::clone(&written);
            let done_tx = Arc::clone(&done_tx);
            async move {
                read_request_head(&mut stream).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await;
                let mut chunk = b"4000\r\n".to_vec();
                chunk.extend_from_slice(&[b' '; 0x4000]);
                chunk.extend_from_slice(b"\r\n");
                while written.load(Ordering::Relaxed) < SERVER_CAP {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    written.fetch_add(0x4000, Ordering::Relaxed);
                }
                if let Some(tx) = done_tx.lock().expect("lock").take() {
                    let _ = tx.send(());
                }
            }
        })
        .await
    };
    let mut cfg = config(server.url());
    cfg.max_body_bytes = LIMIT;
    let mut source = HttpSource::new(cfg).expect("source");
    let err = fetch(&mut source).await.expect_err("too large");
    assert!(
        matches!(
            err,
            FetchError::TooLarge {
                limit: LIMIT,
                announced: None,
                ..
            }
        ),
        "{err}"
    );
    drop(source);

    tokio::time::timeout(TEST_BOUND, done_rx)
        .await
        .expect("server kept writing: the client did not close")
        .expect("server task ended");
    let total = written.load(Ordering::Relaxed);
    // Limit plus whatever fit in the socket buffers; far below the cap.
    assert!(
        total < 32 * 1024 * 1024,
        "client read {total} bytes before giving up"
    );
}

#[tokio::test]
async fn the_limit_itself_is_allowed_one_byte_more_is_not() {
    const LIMIT: usize = 4096;
    let exact = vec![b' '; LIMIT];
    let store = AdminStore::start(Document::new(exact.clone(), None, None)).await;
    let mut cfg = config(store.url());
    cfg.max_body_bytes = LIMIT;
    let mut source = HttpSource::new(cfg.clone()).expect("source");
    let (body, _, _) = document(fetch(&mut source).await.expect("exactly the limit"));
    assert_eq!(body.len(), LIMIT);

    store.set_document(Document::new(vec![b' '; LIMIT + 1], None, None));
    let err = fetch(&mut source).await.expect_err("one over");
    assert!(
        matches!(err, FetchError::TooLarge { announced: Some(n), .. } if n == LIMIT as u64 + 1),
        "{err}"
    );
}

/// The same boundary without Content-Length: counted while streaming.
#[tokio::test]
async fn chunked_limit_boundary() {
    const LIMIT: usize = 4096;
    for (size, ok) in [(LIMIT, true), (LIMIT + 1, false)] {
        let server = RawServer::start(move |mut stream| async move {
            read_request_head(&mut stream).await;
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            // Two chunks, so the limit is crossed inside the second.
            for part in [size / 2, size - size / 2] {
                answer.extend_from_slice(format!("{part:x}\r\n").as_bytes());
                answer.extend_from_slice(&vec![b' '; part]);
                answer.extend_from_slice(b"\r\n");
            }
            answer.extend_from_slice(b"0\r\n\r\n");
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        })
        .await;
        let mut cfg = config(server.url());
        cfg.max_body_bytes = LIMIT;
        let mut source = HttpSource::new(cfg).expect("source");
        let result = fetch(&mut source).await;
        if ok {
            let (body, _, _) = document(result.expect("exactly the limit"));
            assert_eq!(body.len(), LIMIT);
        } else {
            let err = result.expect_err("one over");
            assert!(
                matches!(
                    err,
                    FetchError::TooLarge {
                        announced: None,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn a_ca_file_is_loaded_and_does_not_break_plain_fetches() {
    let store = AdminStore::start(Document::new(DOC_V1, None, None)).await;
    let mut cfg = config(store.url());
    cfg.ca_file = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/test-ca.pem").into());
    let mut source = HttpSource::new(cfg).expect("valid CA file");
    let (body, _, _) = document(fetch(&mut source).await.expect("fetch"));
    assert_eq!(body, DOC_V1.as_bytes());
}

#[tokio::test]
async fn plain_http_to_another_host_is_refused_before_any_traffic() {
    // Refused when the source is built: there is no source to fetch with, so no request
    // can leave.
    let store = AdminStore::start(Document::new(DOC_V1, None, None)).await;
    let loopback = store.url();
    let url = loopback.replace("127.0.0.1", "192.0.2.1");
    assert_ne!(url, loopback);
    let err = HttpSource::new(config(url.clone())).expect_err("insecure");
    assert!(err.to_string().contains(&url), "{err}");
    // Only the host made the difference: the same port and path on loopback is a working
    // source.
    let mut source = source(loopback);
    let (body, _, _) = document(fetch(&mut source).await.expect("loopback fetch"));
    assert_eq!(body, DOC_V1.as_bytes());
    assert_eq!(store.seen().len(), 1);
}
