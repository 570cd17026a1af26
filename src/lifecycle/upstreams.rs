//! Keeps the upstream pool current: host names resolved every `resolve_interval`, the
//! health check run every `interval`, ejected addresses brought back after their
//! `fail_timeout`, and `poortwachter_upstream_ready` set for each address.

use crate::gate::Gate;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often ejections and the metric are looked at.
const TICK: Duration = Duration::from_millis(250);

pub struct UpstreamService {
    gate: Arc<Gate>,
}

impl UpstreamService {
    pub fn new(gate: Arc<Gate>) -> UpstreamService {
        UpstreamService { gate }
    }
}

#[async_trait]
impl BackgroundService for UpstreamService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gate = &self.gate;
        let pool = &gate.upstreams;
        let health_every = pool.health_check.as_ref().map(|h| h.interval);
        let mut next_resolve = Instant::now();
        let mut next_health = Instant::now();
        let mut shown: Vec<String> = Vec::new();
        loop {
            let now = Instant::now();
            if now >= next_resolve || pool.take_changed() {
                pool.refresh().await;
                next_resolve = now + gate.runtime().config.upstream.resolve_interval;
            }
            if let Some(every) = health_every {
                if now >= next_health {
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = pool.check_health() => {}
                    }
                    next_health = now + every;
                }
            }
            pool.restore_due(Instant::now());
            // Set in place (a scrape never sees the series missing); gone addresses removed.
            let ready = &gate.metrics.upstream_ready;
            let now_shown: Vec<String> = pool
                .states()
                .into_iter()
                .map(|(addr, is_ready, _)| {
                    let label = addr.to_string();
                    ready.with_label_values(&[&label]).set(i64::from(is_ready));
                    label
                })
                .collect();
            for gone in shown.iter().filter(|l| !now_shown.contains(l)) {
                let _ = ready.remove_label_values(&[gone]);
            }
            shown = now_shown;
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}
