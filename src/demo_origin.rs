//! A tiny built-in origin for trying the gate on one machine (`[demo_origin] listen`):
//! it answers every request with a page that shows what the gate forwarded. Not for
//! production; the shipped example config uses it so a newcomer needs nothing else.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

pub struct DemoOrigin {
    /// The header the gate writes the client IP into.
    pub client_ip_header: http::HeaderName,
}

#[async_trait]
impl ServeHttp for DemoOrigin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let h = &session.req_header().headers;
        let show = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
                .to_string()
        };
        let mut body = format!(
            "demo origin: the request reached the test environment\n{}: {}\nx-request-id: {}\n",
            self.client_ip_header,
            show(self.client_ip_header.as_str()),
            show("x-request-id"),
        );
        // Sent only with site binding: the site the application may open a session for.
        if h.contains_key("x-poortwachter-site") {
            body.push_str(&format!(
                "x-poortwachter-site: {}\n",
                show("x-poortwachter-site")
            ));
        }
        Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body.into_bytes())
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
