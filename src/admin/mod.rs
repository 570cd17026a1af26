//! The admin listener: `/metrics`, `/healthz`, `/readyz` (open), `/status` (token when the
//! listener is not loopback-only), `/explain` and `/would-block` (always the token: they
//! show client addresses, site ids and override reasons), and the mutations `POST /reload`
//! and `POST /would-block/reset` (always the token; audit events). Served by Pingora's
//! `ServeHttp` on its own listener.

pub mod explain;
mod status;

use crate::gate::{Command, Gate};
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub struct AdminApp {
    gate: Arc<Gate>,
}

impl AdminApp {
    pub fn new(gate: Arc<Gate>) -> AdminApp {
        AdminApp { gate }
    }

    /// Constant-time comparison of the bearer token, so timing does not reveal it.
    fn authorized(&self, session: &ServerSession) -> bool {
        let rt = self.gate.runtime();
        let Some(expected) = rt.config.admin.token.as_deref() else {
            return false;
        };
        let Some(given) = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
            .map(|v| &v[7..])
        else {
            return false;
        };
        let expected = expected.as_bytes();
        if given.len() != expected.len() {
            return false;
        }
        given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl AdminApp {
    /// `GET /explain?peer=IP&header=Name:%20value&path=/p&host=h&at=RFC3339`: the same
    /// explanation as `poortwachter explain`, for support without a shell in the container.
    fn explain(&self, session: &ServerSession) -> Response<Vec<u8>> {
        let query = session.req_header().uri.query().unwrap_or("");
        let mut peer = None;
        let mut headers = Vec::new();
        let mut path = "/".to_string();
        let mut host = None;
        let mut at = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "peer" => peer = Some(v.into_owned()),
                "header" => match v.parse::<explain::HeaderArg>() {
                    Ok(h) => headers.push(h),
                    Err(e) => return text(StatusCode::BAD_REQUEST, &format!("header: {e}\n")),
                },
                "path" => path = v.into_owned(),
                "host" => host = Some(v.into_owned()),
                "at" => at = Some(v.into_owned()),
                other => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "unknown parameter {other:?}; expected peer, header, path, host, at\n"
                        ),
                    )
                }
            }
        }
        let Some(peer) = peer else {
            return text(
                StatusCode::BAD_REQUEST,
                "peer is required: /explain?peer=IP[&header=Name:%20value][&path=/p][&host=h][&at=RFC3339]\n",
            );
        };
        let parsed = explain::parse_peer(&peer).and_then(|peer| {
            let at = match &at {
                Some(s) => explain::parse_at(s)?,
                None => self.gate.now(),
            };
            let headers = explain::header_map(&headers)?;
            Ok((peer, at, headers))
        });
        let (peer, at, headers) = match parsed {
            Ok(p) => p,
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
        };
        let out = explain::explain(&self.gate, peer, &headers, &path, host.as_deref(), at);
        tracing::info!(
            target: "poortwachter::audit",
            action = "explain",
            peer = session.client_addr().map(|a| a.to_string()),
            "admin explanation served"
        );
        respond(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec_pretty(&out).unwrap_or_default(),
        )
    }

    /// `POST /would-block/reset`: start the report afresh (after the schools were contacted).
    fn reset_report(&self, session: &ServerSession, method: &http::Method) -> Response<Vec<u8>> {
        if method != http::Method::POST {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST /would-block/reset\n",
            );
        }
        if self.gate.runtime().config.admin.token.is_none() {
            return text(
                StatusCode::FORBIDDEN,
                "resetting the report needs an admin token: set [admin] token_file\n",
            );
        }
        if !self.authorized(session) {
            return self.unauthorized(session, "/would-block/reset");
        }
        let entries = self.gate.would_block.reset();
        tracing::warn!(
            target: "poortwachter::audit",
            action = "would_block_reset",
            entries,
            peer = session.client_addr().map(|a| a.to_string()),
            "would-be-blocked report reset"
        );
        respond(
            StatusCode::OK,
            "application/json",
            serde_json::json!({ "reset": entries })
                .to_string()
                .into_bytes(),
        )
    }

    fn unauthorized(&self, session: &ServerSession, path: &str) -> Response<Vec<u8>> {
        self.gate.metrics.admin_unauthorized.inc();
        tracing::warn!(
            target: "poortwachter::audit",
            path,
            peer = session.client_addr().map(|a| a.to_string()),
            "admin request refused: missing or wrong token"
        );
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required\n",
        );
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        r
    }

    /// `POST /reload[?force_shrink=true]`: re-read the config and the allowlist now.
    async fn reload(
        &self,
        session: &mut ServerSession,
        method: &http::Method,
    ) -> Response<Vec<u8>> {
        if method != http::Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST /reload\n");
        }
        if self.gate.runtime().config.admin.token.is_none() {
            return text(
                StatusCode::FORBIDDEN,
                "reload needs an admin token: set [admin] token_file (or send SIGHUP)\n",
            );
        }
        if !self.authorized(session) {
            return self.unauthorized(session, "/reload");
        }
        // Drain a (small) body so the connection stays usable; the endpoint takes none.
        let mut drained = 0usize;
        while let Ok(Some(chunk)) = session.read_request_body().await {
            drained += chunk.len();
            if drained > 64 * 1024 {
                return text(StatusCode::PAYLOAD_TOO_LARGE, "no body expected\n");
            }
        }
        let force_shrink = session.req_header().uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv == "force_shrink=true" || kv == "force_shrink=1")
        });
        let peer = session.client_addr().map(|a| a.to_string());
        tracing::warn!(
            target: "poortwachter::audit",
            action = "reload",
            force_shrink,
            peer = peer.as_deref(),
            "admin reload requested"
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.gate.send(Command::Reload {
            force_shrink,
            trigger: if force_shrink {
                "admin_force_shrink"
            } else {
                "admin_reload"
            },
            reply: Some(tx),
        });
        if !sent {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the sync loop is not running\n",
            );
        }
        let answer = match tokio::time::timeout(std::time::Duration::from_secs(120), rx).await {
            Ok(Ok(answer)) => answer,
            _ => {
                return text(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the reload did not finish in time; see /status\n",
                )
            }
        };
        tracing::warn!(
            target: "poortwachter::audit",
            action = "reload",
            force_shrink,
            peer = peer.as_deref(),
            config = %answer["config"]["result"],
            overrides = %answer["config"]["overrides"],
            allowlist = %answer["allowlist"]["result"],
            "admin reload done"
        );
        // A refused overrides file keeps the previous one in force: not a success. (Unusable
        // key files refuse the whole config, as `check` does.)
        let overrides_ok = answer["config"].get("overrides").is_none_or(|v| v == "ok");
        let ok = answer["config"]["result"] == "ok"
            && overrides_ok
            && matches!(
                answer["allowlist"]["result"].as_str(),
                Some("ok" | "not_modified")
            );
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        respond(
            status,
            "application/json",
            serde_json::to_vec_pretty(&answer).unwrap_or_default(),
        )
    }
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        if path == "/reload" {
            return self.reload(session, &method).await;
        }
        if path == "/would-block/reset" {
            return self.reset_report(session, &method);
        }
        if method != http::Method::GET && method != http::Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match path.as_str() {
            "/metrics" => {
                if let Some(age) = self.gate.snapshot_age() {
                    self.gate.metrics.allowlist_age.set(age.as_secs_f64());
                }
                let (content_type, body) = self.gate.metrics.encode();
                respond(StatusCode::OK, &content_type, body)
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => {
                if self.gate.is_ready() {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: no valid allowlist loaded yet\n",
                    )
                }
            }
            "/status" => {
                let needs_token = self.gate.runtime().config.admin.status_needs_token();
                if needs_token && !self.authorized(session) {
                    return self.unauthorized(session, &path);
                }
                let body =
                    serde_json::to_vec_pretty(&status::status_json(&self.gate)).unwrap_or_default();
                respond(StatusCode::OK, "application/json", body)
            }
            "/explain" | "/would-block" => {
                // Client addresses, site ids and override reasons: always behind the token.
                if self.gate.runtime().config.admin.token.is_none() {
                    return text(
                        StatusCode::FORBIDDEN,
                        &format!("{path} needs an admin token: set [admin] token_file\n"),
                    );
                }
                if !self.authorized(session) {
                    return self.unauthorized(session, &path);
                }
                if path == "/explain" {
                    return self.explain(session);
                }
                let body =
                    serde_json::to_vec_pretty(&self.gate.would_block.json()).unwrap_or_default();
                respond(StatusCode::OK, "application/json", body)
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found; try /metrics, /healthz, /readyz, /status, /explain or /would-block\n",
            ),
        }
    }
}
