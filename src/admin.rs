//! The admin listener: `/metrics`, `/healthz`, `/readyz` (open), `/status` (token when the
//! listener is not loopback-only) and `POST /reload` (always the token; an audit event).
//! Served by Pingora's `ServeHttp` on its own listener.

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
            allowlist = %answer["allowlist"]["result"],
            "admin reload done"
        );
        let ok = answer["config"]["result"] == "ok"
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
                let body = serde_json::to_vec_pretty(&self.gate.status_json()).unwrap_or_default();
                respond(StatusCode::OK, "application/json", body)
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found; try /metrics, /healthz, /readyz or /status\n",
            ),
        }
    }
}
