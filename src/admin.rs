//! The admin listener: `/metrics`, `/healthz`, `/readyz` (open) and `/status` (token when the
//! listener is not loopback-only). Served by Pingora's `ServeHttp` on its own listener.

use crate::gate::Gate;
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
        let Some(expected) = self.gate.config.admin.token.as_deref() else {
            return false;
        };
        let Some(given) = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
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
        if method != http::Method::GET && method != http::Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match path.as_str() {
            "/metrics" => {
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
                if self.gate.config.admin.status_needs_token() && !self.authorized(session) {
                    self.gate.metrics.admin_unauthorized.inc();
                    tracing::warn!(
                        target: "poortwachter::audit",
                        path = %path,
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
                    return r;
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
