//! Admission of connections on listeners with the PROXY protocol: before any HTTP is read,
//! the connection must come from a listed balancer and begin with a valid header
//! ([`crate::proxy_protocol`]) within the listener's timeout. The header's source becomes
//! the connection's peer, so the client-IP rules apply on top of it exactly as for a direct
//! connection; bytes read past the header go back to the stream for HTTP. Anything else is
//! closed at once, counted by reason and logged (at most once a second per listener).
//!
//! Pingora 0.9 has no PROXY protocol support: this is a [`ServerApp`] around the proxy's,
//! and the only Pingora it needs is the accepted stream's `rewind` and socket digest.

use crate::gate::Gate;
use crate::listener::ProxyProtocolListener;
use crate::proxy_protocol::{self, Header, Parsed, Version};
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::socket::SocketAddr as PeerSocket;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream};
use pingora::server::ShutdownWatch;
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Bytes read at a time while waiting for the header: a v1 line fits, and a v2 header
/// with the usual TLVs.
const READ_CHUNK: usize = 536;

/// The proxy's app behind one PROXY protocol listener.
pub struct ProxyProtocolApp<A> {
    inner: Arc<A>,
    listener: ProxyProtocolListener,
    /// The `listener` label: the address as configured.
    label: String,
    gate: Arc<Gate>,
    /// The second of the last rejection logged, and how many were not logged since.
    last_logged: AtomicU64,
    unlogged: AtomicU64,
    /// With `tls = true`: the TLS handshake after the header.
    tls: Option<Acceptor>,
}

/// Why a connection was closed: the metric's `reason`, and the detail for the log.
struct Refused {
    reason: &'static str,
    detail: String,
}

impl<A> ProxyProtocolApp<A> {
    /// `tls`: the acceptor of a `tls = true` listener.
    pub fn new(
        inner: A,
        listener: ProxyProtocolListener,
        gate: Arc<Gate>,
        tls: Option<Acceptor>,
    ) -> Self {
        ProxyProtocolApp {
            inner: Arc::new(inner),
            label: listener.addr.to_string(),
            listener,
            gate,
            last_logged: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            tls,
        }
    }

    /// Read and check the header; on success the stream with its peer replaced. A refusal
    /// is counted while the connection is still open, so whoever sees it closed sees it
    /// counted.
    async fn admit(&self, stream: Stream) -> Option<(Box<TcpStream>, Header)> {
        let mut tcp = match stream.into_any().downcast::<TcpStream>() {
            Ok(tcp) => tcp,
            Err(_other) => {
                self.refused(Refused {
                    reason: "not_tcp",
                    detail: "the PROXY protocol is only read on plain TCP listeners".into(),
                });
                return None;
            }
        };
        match self.read_header(&mut tcp).await {
            Ok(header) => Some((tcp, header)),
            Err(r) => {
                self.refused(r);
                None
            }
        }
    }

    /// Check the peer and read its header; the stream is left with its peer replaced and the
    /// bytes after the header to be read again.
    async fn read_header(&self, tcp: &mut TcpStream) -> Result<Header, Refused> {
        let peer = tcp
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(PeerSocket::as_inet).copied());
        if !peer.is_some_and(|p| self.listener.from.contains(p.ip())) {
            return Err(Refused {
                reason: "peer_not_allowed",
                detail: format!(
                    "peer {} is not in proxy_protocol_from",
                    self.shown(peer.map(|p| p.ip()))
                ),
            });
        }
        let read = async {
            let mut buf = Vec::with_capacity(READ_CHUNK);
            loop {
                match proxy_protocol::parse(&buf, self.listener.accept) {
                    Ok(Parsed::Done { header, consumed }) => return Ok((header, buf, consumed)),
                    Ok(Parsed::Incomplete) => {}
                    Err(e) => {
                        return Err(Refused {
                            reason: e.reason(),
                            detail: e.to_string(),
                        })
                    }
                }
                let mut chunk = [0u8; READ_CHUNK];
                let n = tcp.read(&mut chunk).await.map_err(|e| Refused {
                    reason: "read_error",
                    detail: e.to_string(),
                })?;
                if n == 0 {
                    return Err(Refused {
                        reason: if buf.is_empty() {
                            "closed"
                        } else {
                            "truncated"
                        },
                        detail: format!("closed after {} bytes of the header", buf.len()),
                    });
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        };
        let (header, buf, consumed) = tokio::time::timeout(self.listener.timeout, read)
            .await
            .map_err(|_| Refused {
                reason: "timeout",
                detail: format!("no complete header within {:?}", self.listener.timeout),
            })??;
        // The client's first bytes, read with the header, are read again by HTTP.
        tcp.rewind(&buf[consumed..]);
        if let Some(a) = header.addresses {
            tcp.set_socket_digest(digest(tcp, a.source));
        }
        Ok(header)
    }

    /// An address in a log line, in the form the logs use.
    fn shown(&self, ip: Option<std::net::IpAddr>) -> String {
        let today = self.gate.now().to_offset(time::UtcOffset::UTC).date();
        ip.map_or_else(
            || "unknown".to_string(),
            |ip| self.gate.runtime().config.log.client_ip.render(ip, today),
        )
    }

    fn refused(&self, r: Refused) {
        self.gate
            .metrics
            .proxy_protocol_rejected
            .with_label_values(&[&self.label, r.reason])
            .inc();
        let now = self.gate.now().unix_timestamp().max(0) as u64;
        let last = self.last_logged.load(Ordering::Relaxed);
        if now > last
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                listener = %self.label,
                reason = r.reason,
                detail = %r.detail,
                not_logged_since = unlogged,
                "connection refused: PROXY protocol header"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The socket digest of `tcp` with `source` as its peer: what Pingora's session reports as
/// the client address. The local address stays the socket's.
fn digest(tcp: &TcpStream, source: SocketAddr) -> SocketDigest {
    let d = SocketDigest::from_raw_fd(tcp.as_raw_fd());
    let _ = d.peer_addr.set(Some(PeerSocket::Inet(source)));
    if let Some(local) = tcp
        .get_socket_digest()
        .and_then(|o| o.local_addr().cloned())
    {
        let _ = d.local_addr.set(Some(local));
    }
    d
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ProxyProtocolApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (stream, header) = self.admit(stream).await?;
        let version = match header.version {
            Version::V1 => "v1",
            Version::V2 => "v2",
        };
        let kind = if header.addresses.is_some() {
            "proxy"
        } else {
            "local"
        };
        self.gate
            .metrics
            .proxy_protocol_headers
            .with_label_values(&[&self.label, version, kind])
            .inc();
        let stream: Stream = match &self.tls {
            None => stream,
            // The balancer passes TLS through: the handshake follows the header, within the
            // header deadline a request gets (the pupil's client does it).
            Some(acceptor) => {
                let limit = self.gate.runtime().config.proxy.header_timeout;
                match tokio::time::timeout(limit, acceptor.tls_handshake(*stream)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => {
                        tracing::debug!(listener = %self.label, error = %e, "TLS handshake failed");
                        return None;
                    }
                    Err(_) => {
                        tracing::debug!(listener = %self.label, "TLS handshake timed out");
                        return None;
                    }
                }
            }
        };
        // Keep-alive requests on this connection stay here: the header is read once.
        let mut next = self.inner.process_new(stream, shutdown).await;
        while let Some(stream) = next {
            next = self.inner.process_new(stream, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}
