//! The sync loop as a Pingora background service: polls the source (with jitter, and
//! exponential backoff after failures), reacts to file changes, SIGHUP and `POST /reload`,
//! and stops with the server.

use super::{reload_config, watch, Outcome, Syncer};
use crate::gate::{Command, Gate};
use crate::sync::backoff::{jittered, Backoff};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// File events arriving within this window are one change (an editor's several writes).
const SETTLE: Duration = Duration::from_millis(10);

pub struct SyncService {
    gate: Arc<Gate>,
    /// Listen for SIGHUP (the binary does; in-process tests do not).
    sighup: bool,
}

impl SyncService {
    pub fn new(gate: Arc<Gate>, sighup: bool) -> SyncService {
        SyncService { gate, sighup }
    }
}

async fn next_file_event(rx: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => {
            rx.recv().await?;
            // Let a burst of writes finish before reading.
            while let Ok(Some(())) = tokio::time::timeout(SETTLE, rx.recv()).await {}
            Some(())
        }
        None => std::future::pending().await,
    }
}

async fn next_hangup(hup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hup {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[async_trait]
impl BackgroundService for SyncService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gate = &self.gate;
        let Some(mut commands) = gate.take_commands() else {
            tracing::error!("the allowlist sync loop was started twice");
            return;
        };
        let Some(mut syncer) = self.usable_syncer(&mut shutdown, &mut commands).await else {
            return;
        };
        let mut watcher = None;
        let mut file_events = None;
        let install_watch =
            |syncer: &Syncer, watcher: &mut Option<_>, file_events: &mut Option<_>| {
                *watcher = None;
                *file_events = None;
                if let Some(path) = syncer.is_file() {
                    match watch::watch_file(path) {
                        Ok((w, rx)) => {
                            *watcher = Some(w);
                            *file_events = Some(rx);
                        }
                        Err(e) => tracing::warn!(path = %path.display(), error = %e,
                        "no change notifications for the allowlist file; polling only"),
                    }
                }
            };
        install_watch(&syncer, &mut watcher, &mut file_events);
        let mut hup = if self.sighup {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; use POST /reload");
                    None
                }
            }
        } else {
            None
        };
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut seed = gate.now().unix_timestamp_nanos() as u64;
        // The admin store is asked at once; a file was read at start, so it waits a period.
        let mut wait = if syncer.is_file().is_some() {
            jittered(gate.runtime().config.allowlist.poll_interval, 0.1, seed)
        } else {
            Duration::ZERO
        };
        loop {
            let outcome: Outcome = tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(wait) => syncer.attempt("poll", false, false).await,
                Some(()) = next_file_event(&mut file_events) => syncer.attempt("file_change", false, false).await,
                Some(()) = next_hangup(&mut hup) => {
                    let cfg = reload_config(gate, "sighup");
                    let recompile = reconfigure(&mut syncer, &cfg);
                    install_watch(&syncer, &mut watcher, &mut file_events);
                    syncer.attempt("sighup", false, recompile).await
                }
                Some(cmd) = commands.recv() => match cmd {
                    Command::Reload { force_shrink, trigger, reply } => {
                        let cfg = reload_config(gate, trigger);
                        let recompile = reconfigure(&mut syncer, &cfg);
                        install_watch(&syncer, &mut watcher, &mut file_events);
                        let outcome = syncer.attempt(trigger, force_shrink, recompile).await;
                        if let Some(reply) = reply {
                            let answer = serde_json::json!({ "config": cfg, "allowlist": outcome.to_json() });
                            // The admin request may have timed out and gone away.
                            let _gone = reply.send(answer).is_err();
                        }
                        outcome
                    }
                },
            };
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            wait = if outcome.is_transient() {
                backoff.next_delay()
            } else {
                backoff.reset();
                jittered(gate.runtime().config.allowlist.poll_interval, 0.1, seed)
            };
        }
        drop(watcher);
    }
}

/// Apply changed source settings after a config reload; true when the document must be
/// compiled again even if unchanged.
fn reconfigure(syncer: &mut Syncer, cfg_report: &serde_json::Value) -> bool {
    if cfg_report["result"] != "ok" {
        return false;
    }
    match syncer.reconfigure() {
        Ok(recompile) => recompile,
        Err(e) => {
            tracing::error!(error = %e, "new allowlist source settings unusable; keeping the previous source");
            false
        }
    }
}

impl SyncService {
    /// A syncer for the configured source. When the source settings are unusable (token
    /// file missing, bad CA file), the gate keeps serving what it has and waits for a
    /// config reload that fixes them. `None` on shutdown.
    async fn usable_syncer(
        &self,
        shutdown: &mut ShutdownWatch,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<Syncer> {
        let mut error = match Syncer::new(self.gate.clone()) {
            Ok(s) => return Some(s),
            Err(e) => e,
        };
        loop {
            tracing::error!(error = %error, "allowlist source unusable; fix the config and reload");
            tokio::select! {
                _ = shutdown.changed() => return None,
                Some(Command::Reload { reply, trigger, force_shrink }) = commands.recv() => {
                    let cfg = reload_config(&self.gate, trigger);
                    match Syncer::new(self.gate.clone()) {
                        Ok(mut syncer) => {
                            let outcome = syncer.attempt(trigger, force_shrink, true).await;
                            if let Some(reply) = reply {
                                let _gone = reply.send(serde_json::json!({ "config": cfg, "allowlist": outcome.to_json() })).is_err();
                            }
                            return Some(syncer);
                        }
                        Err(e) => {
                            if let Some(reply) = reply {
                                let answer = serde_json::json!({ "config": cfg, "allowlist": { "result": "read_error", "error": e } });
                                let _gone = reply.send(answer).is_err();
                            }
                            error = e;
                        }
                    }
                }
            }
        }
    }
}
