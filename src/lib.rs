//! poortwachter: an edge gate that lets a test start only from a registered school location.
//!
//! Request path: [`proxy`] takes one [`gate::Generation`] → [`client_ip`] → [`route`] →
//! [`decision`] → [`page`] or the upstream → logging.
//! Allowlist path: [`sync`] (fetch) → [`allowlist`] (parse → validate → compile) →
//! [`lifecycle`] (guard, persist, [`lifecycle::install`]: one swap).
//! The pure core (`client_ip`, `allowlist`, `decision`, `site_binding`, `route`) has no IO of
//! its own and no Pingora types. The code map: `docs/architecture.md`.

pub mod admin;
pub mod admin_config;
pub mod admission;
pub mod allowlist;
pub mod allowlist_config;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod connection;
pub mod decision;
pub mod demo_origin;
pub mod forwarding;
pub mod gate;
pub mod lifecycle;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod net_url;
pub mod page;
pub mod privacy;
pub mod proxy;
pub mod proxy_protocol;
pub mod refused;
pub mod report;
pub mod request_id;
pub mod route;
pub mod secret;
pub mod server;
pub mod setting;
pub mod site_binding;
pub mod status;
pub mod sync;
pub mod tls;
pub mod upgrade;
pub mod upstream;

// `benches/support/synth.rs` names the crate as benches and tests see it.
#[cfg(test)]
extern crate self as poortwachter;
