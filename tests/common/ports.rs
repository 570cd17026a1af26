//! Ports chosen at run time. Pingora cannot report the port of a `127.0.0.1:0` listener, so
//! a server is started on ports reserved a moment before and, when one of them was taken in
//! between, started again on new ones ([`PortRetry`]). [`RefusedAddr`] is an address that
//! is guaranteed to refuse connections for as long as it is held.

use std::net::{Ipv6Addr, SocketAddr, TcpListener};

/// How often a server is started on new ports before the test gives up.
pub const START_ATTEMPTS: usize = 5;

/// Ports held by listening sockets, so nobody else can take them until [`Reserved::release`].
pub struct Reserved {
    listeners: Vec<TcpListener>,
}

impl Reserved {
    /// The reserved ports, in the order asked for.
    pub fn ports(&self) -> Vec<u16> {
        self.listeners
            .iter()
            .map(|l| l.local_addr().expect("reserved addr").port())
            .collect()
    }

    /// Free the ports for the server that is about to bind them.
    pub fn release(self) {}
}

/// One port on `127.0.0.1`, or on `[::1]` when `v6`.
pub enum Family {
    V4,
    V6,
}

fn reserve(families: &[Family]) -> Reserved {
    let listeners = families
        .iter()
        .map(|f| {
            let addr: SocketAddr = match f {
                Family::V4 => ([127, 0, 0, 1], 0).into(),
                Family::V6 => (Ipv6Addr::LOCALHOST, 0).into(),
            };
            TcpListener::bind(addr).expect("no free loopback port")
        })
        .collect();
    Reserved { listeners }
}

/// A server start that failed because a port was taken by someone else between the
/// reservation and the server's own bind. Any other failure is a panic, never a retry.
#[derive(Debug)]
pub struct PortTaken(pub String);

/// Whether a startup error message says that the address was taken.
pub fn says_addr_in_use(message: &str) -> bool {
    message.contains("Address already in use") || message.contains("still in use")
}

/// Starts a server on reserved ports, a bounded number of times:
///
/// ```ignore
/// let mut retry = PortRetry::new("the gate");
/// loop {
///     let reserved = retry.reserve(&[Family::V4, Family::V4]);
///     match start(reserved) {
///         Ok(server) => break server,
///         Err(taken) => retry.taken(taken),
///     }
/// }
/// ```
pub struct PortRetry {
    what: &'static str,
    failures: Vec<String>,
}

impl PortRetry {
    pub fn new(what: &'static str) -> PortRetry {
        PortRetry {
            what,
            failures: Vec::new(),
        }
    }

    /// Fresh ports for the next attempt; panics, listing every failure, once
    /// [`START_ATTEMPTS`] attempts found a port taken.
    pub fn reserve(&self, families: &[Family]) -> Reserved {
        assert!(
            self.failures.len() < START_ATTEMPTS,
            "{} did not start in {START_ATTEMPTS} attempts, a port was taken each time: {:#?}",
            self.what,
            self.failures
        );
        reserve(families)
    }

    /// The attempt failed because a port was taken: the next [`PortRetry::reserve`] picks
    /// new ones.
    pub fn taken(&mut self, why: PortTaken) {
        self.failures.push(why.0);
    }
}

/// A loopback address that refuses every connection: a socket bound to a port chosen by
/// the system, never listening. While it is held, nobody else can bind the port.
pub struct RefusedAddr {
    addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

impl RefusedAddr {
    /// Needs no runtime: the socket is never registered with one.
    pub fn new() -> RefusedAddr {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind loopback");
        RefusedAddr {
            addr: socket.local_addr().expect("local addr"),
            _socket: socket,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
