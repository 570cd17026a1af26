//! Local files beside the allowlist: the emergency overrides file and the site-claim key
//! files. They are small, so they are simply looked at once a second; a changed file
//! (modification time, size or inode — a Kubernetes secret update swaps a symlink) is read
//! again. A file that fails to read or parse leaves what is in force untouched.

use crate::gate::Gate;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the files are looked at.
const INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
        device: m.dev(),
    })
}

/// The stamps of a set of files, to compare with the next look.
fn stamps(paths: &[PathBuf]) -> Vec<(PathBuf, Option<Stamp>)> {
    paths.iter().map(|p| (p.clone(), stamp(p))).collect()
}

fn key_files(gate: &Gate) -> Vec<PathBuf> {
    use crate::site_binding::KeyFile;
    let rt = gate.runtime();
    rt.config
        .site_binding
        .iter()
        .flat_map(|b| b.0.keys.iter())
        .map(|k| match &k.file {
            KeyFile::Secret(p) | KeyFile::PublicKey(p) => p.clone(),
        })
        .collect()
}

fn override_files(gate: &Gate) -> Vec<PathBuf> {
    gate.runtime()
        .config
        .allowlist
        .overrides
        .iter()
        .cloned()
        .collect()
}

pub struct LocalFilesService {
    gate: Arc<Gate>,
}

impl LocalFilesService {
    pub fn new(gate: Arc<Gate>) -> LocalFilesService {
        LocalFilesService { gate }
    }
}

#[async_trait]
impl BackgroundService for LocalFilesService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gate = &self.gate;
        // Both were read when the gate was built, before this service started: a change in
        // between would be missed, so the first look always reads them again.
        let mut keys = None;
        let mut overrides = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
            let now_keys = Some(stamps(&key_files(gate)));
            if now_keys != keys {
                // The error is logged, counted and shown in /status by reload_keys.
                let _kept_previous = gate.reload_keys().is_err();
                keys = now_keys;
            }
            let now_overrides = Some(stamps(&override_files(gate)));
            if now_overrides != overrides {
                let _kept_previous = gate.reload_overrides().is_err();
                overrides = now_overrides;
            }
            // Entries expire by themselves; keep the gauge of those in force current.
            if let Some(o) = gate.overrides() {
                gate.metrics
                    .overrides_active
                    .set(o.active_count(gate.now()) as i64);
            }
        }
    }
}
