//! Log setup: `tracing` with JSON or human output (`[log] format`), and Pingora's own `log`
//! records routed into the same subscriber.
//!
//! The access log (target `poortwachter::access`, one line per request) is the only log on
//! the request path, so in JSON it has a writer of its own: the line is built by hand in a
//! reused per-thread buffer and written with one `write`, for a fraction of the generic JSON
//! formatter's instructions (benches/README.md, "Access log line"). Same shape as its lines:
//! `timestamp`, `level`, the event's fields in order, `target`.

mod config;

pub use config::{LogConfig, LogFile, LogFormat};

use crate::privacy::LogAddress;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The access log's target.
pub const ACCESS_TARGET: &str = "poortwachter::access";

/// Install the global subscriber. `RUST_LOG` overrides `[log] level` when set.
///
/// Lines of other crates (Pingora's above all) carry what the gate does not control: raw
/// request heads with forwarding headers, peer addresses. They are written through
/// [`Redacting`], so they keep no more of a client address than the access log does.
pub fn init(cfg: &LogConfig) {
    follow_client_ip(&cfg.client_ip);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = colour(
        cfg.format,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR"),
    );
    // A macro, not a value: each use is a layer over a different stack of layers.
    macro_rules! layer {
        ($writer:expr) => {
            tracing_subscriber::fmt::layer()
                .with_writer($writer)
                .with_ansi(ansi)
        };
    }
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests, or `run` after `check`) keeps the first subscriber.
    let _already_set = match cfg.format {
        LogFormat::Json => registry
            .with(
                layer!(std::io::stderr)
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_filter(filter_fn(|m| is_ours(m) && m.target() != ACCESS_TARGET)),
            )
            .with(
                layer!(Redacting::default)
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_filter(filter_fn(|m| !is_ours(m))),
            )
            .with(AccessJson)
            .try_init()
            .is_err(),
        LogFormat::Human => registry
            .with(layer!(std::io::stderr).with_filter(filter_fn(is_ours)))
            .with(layer!(Redacting::default).with_filter(filter_fn(|m| !is_ours(m))))
            .try_init()
            .is_err(),
    };
}

/// Written by the gate itself (whose lines render client addresses as configured).
fn is_ours(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("poortwachter")
}

/// The client-address form of the config in force, for lines of other crates.
static FOREIGN_FORM: std::sync::LazyLock<arc_swap::ArcSwap<LogAddress>> =
    std::sync::LazyLock::new(|| arc_swap::ArcSwap::from_pointee(LogAddress::Truncated));

/// Follow `[log] client_ip` in the lines of other crates: at start and whenever a config
/// is put in force.
pub fn follow_client_ip(form: &LogAddress) {
    if **FOREIGN_FORM.load() != *form {
        FOREIGN_FORM.store(std::sync::Arc::new(form.clone()));
    }
}

/// One formatted line of another crate, written to stderr when dropped with every client
/// address in it in the configured form ([`crate::privacy::redact`]). The formatter
/// hands over a whole line per event, so a line is never split.
#[derive(Default)]
struct Redacting(Vec<u8>);

impl std::io::Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Redacting {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let today = time::OffsetDateTime::now_utc().date();
        let shown = crate::privacy::redact(&line, &FOREIGN_FORM.load(), today);
        let shown = hide_credentials(&shown);
        let _ = std::io::stderr().write_all(shown.as_bytes());
    }
}

/// `line` with the value of every `Authorization` header in it replaced by `<hidden>`, as
/// a raw request head quotes it (`Authorization: Bearer <token>\r\n`, escaped or not) and
/// as a header map prints it (`"authorization": "Bearer <token>"`): Pingora quotes the head
/// of a request it cannot parse, the admin token included, and prints headers at `trace`.
fn hide_credentials(line: &str) -> std::borrow::Cow<'_, str> {
    // Raw, as a header map prints it, and that again inside a JSON string.
    const NAMES: [&str; 3] = [
        "authorization:",
        "\"authorization\": \"",
        "\\\"authorization\\\": \\\"",
    ];
    let lower = line.to_ascii_lowercase();
    // (start, end) of each value, in order.
    let mut values = Vec::new();
    for name in NAMES {
        let mut from = 0;
        while let Some(found) = lower[from..].find(name) {
            let after = from + found + name.len();
            let value = after + line[after..].len() - line[after..].trim_start_matches(' ').len();
            // The value ends where the header line does, escaped (`\r`) or not, or at the
            // closing quote.
            let end = line[value..]
                .find(['\\', '\r', '\n', '"'])
                .map_or(line.len(), |e| value + e);
            if end > value {
                values.push((value, end));
            }
            from = end;
        }
    }
    if values.is_empty() {
        return line.into();
    }
    values.sort_unstable();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    for (start, end) in values {
        out.push_str(&line[copied..start]);
        out.push_str("<hidden>");
        copied = end;
    }
    out.push_str(&line[copied..]);
    out.into()
}

/// Colour codes only in human output to a terminal: a file, a pipe, journald or `kubectl
/// logs` would keep them as escape noise. `NO_COLOR` (set and not empty) turns them off.
fn colour(format: LogFormat, terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    format == LogFormat::Human && terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Writes access events as JSON lines to stderr; ignores every other event.
struct AccessJson;

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl<S: Subscriber> Layer<S> for AccessJson {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != ACCESS_TARGET {
            return;
        }
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            line.clear();
            access_line(&mut line, event.metadata().level().as_str(), |v| {
                event.record(v)
            });
            // One write for the whole line, so lines of concurrent requests never interleave.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        });
    }
}

/// `{"timestamp":…,"level":…,<fields>,"target":…}\n` into `out`; `record` visits the fields.
fn access_line(out: &mut String, level: &str, record: impl FnOnce(&mut dyn Visit)) {
    out.push_str("{\"timestamp\":\"");
    timestamp(out, time::OffsetDateTime::now_utc());
    out.push_str("\",\"level\":\"");
    out.push_str(level);
    out.push('"');
    record(&mut JsonFields(out));
    out.push_str(",\"target\":\"");
    out.push_str(ACCESS_TARGET);
    out.push_str("\"}\n");
}

/// RFC 3339 in UTC with microseconds, as the JSON formatter writes it.
fn timestamp(out: &mut String, t: time::OffsetDateTime) {
    let (y, mo, d) = t.to_calendar_date();
    let _ = write!(
        out,
        "{y:04}-{:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        mo as u8,
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    );
}

struct JsonFields<'a>(&'a mut String);

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.0.push_str(",\"");
        self.0.push_str(field.name());
        self.0.push_str("\":");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.0.push('"');
        escape_into(self.0, value);
        self.0.push('"');
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            self.0.push_str("null");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields arrive here too, their Debug being their Display.
        self.key(field);
        self.0.push('"');
        let _ = write!(Escaping(self.0), "{value:?}");
        self.0.push('"');
    }
}

/// JSON string escaping for what `write!` produces.
struct Escaping<'a>(&'a mut String);

impl std::fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

fn escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_quoted_request_heads_are_hidden() {
        let cases = [
            (
                r#"buf: "GET / HTTP/1.1\r\nAuthorization: Bearer s3cr3t-token\r\nHost: a""#,
                r#"buf: "GET / HTTP/1.1\r\nAuthorization: <hidden>\r\nHost: a""#,
            ),
            (
                "headers: {\"authorization\": \"Bearer x\"} AUTHORIZATION:Basic abc",
                "headers: {\"authorization\": \"<hidden>\"} AUTHORIZATION:<hidden>",
            ),
            (
                "authorization: a\r\nauthorization: b\n",
                "authorization: <hidden>\r\nauthorization: <hidden>\n",
            ),
            (
                r#"{"message":"{\"authorization\": \"Bearer x\"}"}"#,
                r#"{"message":"{\"authorization\": \"<hidden>\"}"}"#,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(super::hide_credentials(line), want, "{line}");
        }
        let plain = "no credentials here: authorization:";
        assert!(matches!(
            super::hide_credentials(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[test]
    fn colour_only_in_human_output_to_a_terminal_without_no_color() {
        use std::ffi::OsString;
        let set = |v: &str| Some(OsString::from(v));
        assert!(colour(LogFormat::Human, true, None));
        // An empty NO_COLOR counts as unset (no-color.org).
        assert!(colour(LogFormat::Human, true, set("")));
        assert!(!colour(LogFormat::Human, true, set("1")));
        assert!(!colour(LogFormat::Human, false, None));
        assert!(!colour(LogFormat::Json, true, None));
        assert!(!colour(LogFormat::Json, false, set("1")));
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    /// Captures what `access_line` writes for one event.
    struct Capture(Arc<Mutex<String>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut line = String::new();
            access_line(&mut line, event.metadata().level().as_str(), |v| {
                event.record(v)
            });
            if let Ok(mut out) = self.0.lock() {
                out.push_str(&line);
            }
        }
    }

    fn emit() {
        let weird = "a\"b\\c\nd\u{1}";
        tracing::info!(
            target: "poortwachter::access",
            request_id = %"abc",
            client_ip = Some("192.0.2.0/24"),
            site = None::<&str>,
            would_block = false,
            status = 403u16,
            duration_ms = 1.5,
            path = weird,
            error = Some(format!("x{weird}")),
        );
    }

    #[test]
    fn access_line_matches_the_json_formatter() {
        let ours = Arc::new(Mutex::new(String::new()));
        let theirs = Buf::default();
        let subscriber = tracing_subscriber::registry()
            .with(Capture(ours.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(theirs.clone()),
            );
        tracing::subscriber::with_default(subscriber, emit);
        let ours = ours.lock().expect("lock").clone();
        let theirs = String::from_utf8(theirs.0.lock().expect("lock").clone()).expect("utf-8");
        let mut a: serde_json::Value = serde_json::from_str(&ours).expect("our line is JSON");
        let mut b: serde_json::Value = serde_json::from_str(&theirs).expect("their line is JSON");
        assert!(
            ours.ends_with("}\n") && !ours.trim_end().contains('\n'),
            "{ours}"
        );
        // Timestamps differ by the time between the two writes; their shape is the same.
        let (ta, tb) = (a["timestamp"].take(), b["timestamp"].take());
        let shape = |t: &serde_json::Value| t.as_str().map(|s| (s.len(), s.ends_with('Z')));
        assert_eq!(shape(&ta), shape(&tb), "{ta} vs {tb}");
        assert_eq!(a, b, "ours: {ours}theirs: {theirs}");
    }

    #[test]
    fn escapes_control_characters() {
        let mut out = String::new();
        escape_into(&mut out, "x\u{0}y\u{1f}\"");
        assert_eq!(out, "x\\u0000y\\u001f\\\"");
    }
}
