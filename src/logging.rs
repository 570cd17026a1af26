//! Log setup: `tracing` with JSON or human output (`[log] format`), and Pingora's own `log`
//! records routed into the same subscriber.

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `RUST_LOG` overrides `[log] level` when set.
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, or `run` after `check`) keeps the first subscriber.
    let _already_set = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
            .is_err(),
        LogFormat::Human => builder.try_init().is_err(),
    };
}
