//! Local files beside the allowlist: the emergency overrides file and the site-claim key
//! files. They are small, so they are simply looked at once a second; a changed file
//! (modification time, size or inode — a Kubernetes secret update swaps a symlink) is read
//! again. A file that fails to read or parse leaves what is in force untouched.

use crate::allowlist::overrides::{compile_overrides, OverrideOptions, Overrides, OverridesError};
use crate::config::Config;
use crate::gate::{Clock, Gate, Runtime};
use crate::page::PageError;
use crate::site_binding::{KeyError, SiteBindingConfig, Verifier};
use crate::status::KeysStatus;
use crate::tls::{CertificateSource, Certificates, TlsError};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora_prometheus::prometheus::Registry;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

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

/// The certificate and key files of the TLS listeners.
fn certificate_files(gate: &Gate) -> Vec<PathBuf> {
    gate.runtime()
        .config
        .proxy
        .tls
        .iter()
        .flat_map(|t| t.sources.iter())
        .flat_map(|s| [s.cert_file.clone(), s.key_file.clone()])
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
        let mut certificates = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
            let now_keys = Some(stamps(&key_files(gate)));
            if now_keys != keys {
                // The error is logged, counted and shown in /status by reload_keys.
                let _kept_previous = reload_keys(gate).is_err();
                keys = now_keys;
            }
            let now_overrides = Some(stamps(&override_files(gate)));
            if now_overrides != overrides {
                let _kept_previous = reload_overrides(gate).is_err();
                overrides = now_overrides;
            }
            let now_certificates = Some(stamps(&certificate_files(gate)));
            if now_certificates != certificates {
                // A renewal that writes the certificate and the key one after the other can be
                // seen half done: refused (the set in force stays), then read whole a second
                // later, when the key's stamp changes too.
                let _kept_previous = reload_certificates(gate).is_err();
                certificates = now_certificates;
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

/// Why a local file (site-claim keys, overrides) was not put in force.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("allowlist.overrides {path:?}: cannot read: {source}")]
    OverridesRead {
        path: String,
        source: std::io::Error,
    },
    #[error("allowlist.overrides {path:?}: {source}")]
    Overrides {
        path: String,
        source: OverridesError,
    },
    #[error(transparent)]
    Page(#[from] PageError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Build the gate for `config`: pages are rendered, the site-claim keys read while `config`
/// was loaded go in force, and the overrides file is read now. Any of them being unusable is
/// an error: the gate never starts without what its configuration asks for.
pub fn build_gate(
    config: Config,
    registry: Registry,
    clock: Clock,
) -> Result<Gate, LocalFileError> {
    let gate = Gate::new(Runtime::new(config)?, registry, clock);
    put_in_force(&gate, gate.runtime())?;
    Ok(gate)
}

/// Put `runtime` in force together with what its configuration names, in one swap: the
/// site-claim keys read when the configuration was loaded, and the overrides file, read
/// now. An overrides file that cannot be used leaves the overrides in force (the last good
/// file) beside the new configuration; that error is returned, logged and shown in
/// `/status`.
pub fn put_in_force(gate: &Gate, runtime: Arc<Runtime>) -> Result<(), LocalFileError> {
    let _one_at_a_time = gate.local_reload_lock();
    let overrides = read_overrides(gate, &runtime.config);
    let binding = runtime.config.site_binding.as_ref();
    let keys = binding.map(|b| b.keys().clone());
    match binding {
        Some(b) => keys_read(gate, &b.0),
        None => *gate.keys_status() = KeysStatus::default(),
    }
    gate.upstreams.set_targets(
        &runtime.config.upstream.addrs,
        runtime.config.upstream.tls.as_ref(),
    );
    // Read again under the lock: the read made with the configuration may be older than one
    // the file watcher put in force since. Without TLS in the new configuration the set in
    // force stays, as the TLS listeners do until a restart.
    if let Some(tls) = &runtime.config.proxy.tls {
        let refused = read_certificates(gate, &tls.sources).is_err();
        if refused && gate.certificates.load().is_none() {
            // Changed for the worse since the configuration was read, before anything was in
            // force: the read that passed the check is better than none.
            certificates_in_force(gate, tls.certificates.clone());
        }
    }
    let policy = runtime.config.policy;
    gate.metrics.set_mode(policy.mode, policy.enforce_from);
    crate::logging::follow_client_ip(&runtime.config.log.client_ip);
    let form = &runtime.config.log.client_ip;
    let was = gate.runtime().config.log.client_ip.clone();
    if was != *form {
        // The report keeps addresses in the form they were recorded in: after a `full`
        // investigation it must not keep full addresses, and mixed forms would count one
        // address twice.
        let entries = gate.would_block.reset();
        tracing::info!(
            target: "poortwachter::audit",
            from = was.as_str(),
            to = form.as_str(),
            entries,
            "log client_ip form changed: the would-block report starts anew"
        );
    }
    gate.swap(|g| {
        g.runtime = runtime.clone();
        g.keys = keys.clone();
        if let Ok(o) = &overrides {
            g.overrides = o.clone();
        }
    });
    overrides.map(|_| ())
}

/// The largest overrides file read: it is a short emergency list, not a second allowlist.
const MAX_OVERRIDES_BYTES: u64 = 1024 * 1024;

/// Read a whole file, refusing one larger than `max` bytes.
fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {max} bytes; an overrides file is a short emergency list"
        )));
    }
    Ok(bytes)
}

/// Read and compile the overrides file named by the configuration.
fn load_overrides(
    config: &Config,
    now: OffsetDateTime,
) -> Result<Option<Overrides>, LocalFileError> {
    let cfg = &config.allowlist;
    let Some(path) = cfg.overrides.as_ref() else {
        return Ok(None);
    };
    let shown = || path.display().to_string();
    let bytes = read_bounded(path, MAX_OVERRIDES_BYTES).map_err(|source| {
        LocalFileError::OverridesRead {
            path: shown(),
            source,
        }
    })?;
    let opts = OverrideOptions {
        max_days: cfg.max_override_days,
        compile: cfg.compile,
    };
    compile_overrides(&bytes, &opts, now)
        .map(Some)
        .map_err(|source| LocalFileError::Overrides {
            path: shown(),
            source,
        })
}

/// Read the overrides file named by the configuration in force and put it in force. On
/// any error the overrides in force stay (the last good file), and the error is returned,
/// logged and shown in `/status`.
pub fn reload_overrides(gate: &Gate) -> Result<(), LocalFileError> {
    let _one_at_a_time = gate.local_reload_lock();
    let o = read_overrides(gate, &gate.runtime().config)?;
    gate.swap(|g| g.overrides = o.clone());
    Ok(())
}

/// Read the overrides file `config` names, recording the outcome (log, metrics, status).
fn read_overrides(gate: &Gate, config: &Config) -> Result<Option<Arc<Overrides>>, LocalFileError> {
    let now = gate.now();
    let result = load_overrides(config, now);
    let mut st = gate.overrides_status();
    match result {
        Ok(None) => {
            gate.metrics.overrides_active.set(0);
            Ok(None)
        }
        Ok(Some(o)) => {
            let path = config
                .allowlist
                .overrides
                .as_deref()
                .unwrap_or(Path::new(""));
            for q in o.quarantined() {
                tracing::warn!(file = %path.display(), entry = %q, "override entry skipped");
            }
            tracing::warn!(
                target: "poortwachter::audit",
                file = %path.display(),
                entries = o.entries().len(),
                active = o.active_count(now),
                skipped = o.quarantined().len(),
                "overrides in force"
            );
            gate.metrics
                .overrides_active
                .set(o.active_count(now) as i64);
            gate.metrics
                .overrides_loads
                .with_label_values(&["ok"])
                .inc();
            st.loaded_at = Some(now);
            st.last_error = None;
            Ok(Some(Arc::new(o)))
        }
        Err(e) => {
            tracing::error!(error = %e, "overrides file refused; the previous overrides stay in force");
            gate.metrics
                .overrides_loads
                .with_label_values(&["error"])
                .inc();
            st.last_error = Some(e.to_string());
            st.last_error_at = Some(now);
            Err(e)
        }
    }
}

/// Read the certificate and key files of the configuration in force again (one of them
/// changed) and put them in force for the next handshake. On error the certificates in
/// force stay, and the error is logged, counted and shown in `/status`.
pub fn reload_certificates(gate: &Gate) -> Result<(), LocalFileError> {
    let _one_at_a_time = gate.local_reload_lock();
    let rt = gate.runtime();
    match &rt.config.proxy.tls {
        Some(tls) => read_certificates(gate, &tls.sources),
        None => Ok(()),
    }
}

/// Read `sources` and put them in force, or record why not (the set in force stays).
fn read_certificates(gate: &Gate, sources: &[CertificateSource]) -> Result<(), LocalFileError> {
    match Certificates::load(sources) {
        Ok(c) => {
            certificates_in_force(gate, Arc::new(c));
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "TLS certificates refused; the certificates in force stay");
            gate.metrics
                .tls_certificate_reloads
                .with_label_values(&["error"])
                .inc();
            gate.metrics.tls_certificates_refused.set(1);
            let mut st = gate.tls_status();
            st.last_error = Some(e.to_string());
            st.last_error_at = Some(gate.now());
            Err(e.into())
        }
    }
}

/// Expiry closer than this is logged as a warning whenever certificates go in force (the
/// alert `PoortwachterTlsCertificateExpiresSoon` uses the same 14 days).
const EXPIRY_WARNING: time::Duration = time::Duration::days(14);

/// Put `certificates` in force for the next handshake, with their expiry metrics and status.
fn certificates_in_force(gate: &Gate, certificates: Arc<Certificates>) {
    let expiry = &gate.metrics.tls_certificate_expiry;
    expiry.reset();
    let now = gate.now().unix_timestamp();
    for cert in certificates.list() {
        let file = cert.cert_file.display().to_string();
        expiry
            .with_label_values(&[cert.name.as_str(), file.as_str()])
            .set(cert.not_after);
        let left = time::Duration::seconds(cert.not_after - now);
        if left < EXPIRY_WARNING {
            tracing::warn!(
                name = %cert.name,
                file = %file,
                days_left = left.whole_days(),
                "TLS certificate expires soon or has expired"
            );
        }
    }
    tracing::warn!(
        target: "poortwachter::audit",
        certificates = ?certificates.list().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        "TLS certificates in force"
    );
    gate.metrics
        .tls_certificate_reloads
        .with_label_values(&["ok"])
        .inc();
    gate.metrics.tls_certificates_refused.set(0);
    let mut st = gate.tls_status();
    st.loaded_at = Some(gate.now());
    st.last_error = None;
    drop(st);
    gate.certificates.store(Some(certificates));
}

/// How `/status` and the audit log name keys: the `kid`, else `key[i]` and the algorithm.
fn key_names(cfg: &SiteBindingConfig) -> Vec<String> {
    cfg.keys
        .iter()
        .enumerate()
        .map(|(i, k)| match &k.kid {
            Some(kid) => format!("{kid} ({})", k.alg.as_str()),
            None => format!("key[{i}] ({})", k.alg.as_str()),
        })
        .collect()
}

/// Read the site-claim key files again (one of them changed) and put the keys in force; on
/// error the keys in force stay.
pub fn reload_keys(gate: &Gate) -> Result<(), LocalFileError> {
    let _one_at_a_time = gate.local_reload_lock();
    let rt = gate.runtime();
    let Some(b) = &rt.config.site_binding else {
        gate.swap(|g| g.keys = None);
        *gate.keys_status() = KeysStatus::default();
        return Ok(());
    };
    match Verifier::load(&b.0) {
        Ok(v) => {
            let v = Arc::new(v);
            gate.swap(|g| g.keys = Some(v.clone()));
            keys_read(gate, &b.0);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "site-claim keys refused; the previous keys stay in force");
            gate.metrics.key_reloads.with_label_values(&["error"]).inc();
            let mut st = gate.keys_status();
            st.last_error = Some(e.to_string());
            st.last_error_at = Some(gate.now());
            Err(e.into())
        }
    }
}

/// Record that the keys of `cfg` were read and are (about to be) in force.
fn keys_read(gate: &Gate, cfg: &SiteBindingConfig) {
    gate.metrics.key_reloads.with_label_values(&["ok"]).inc();
    let mut st = gate.keys_status();
    st.in_force = key_names(cfg);
    st.loaded_at = Some(gate.now());
    st.last_error = None;
    tracing::warn!(
        target: "poortwachter::audit",
        keys = ?st.in_force,
        "site-claim keys in force"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with `[site_binding]` whose one key is the secret file `key`.
    fn config_with_key(key: &Path) -> Config {
        let text = format!(
            "[upstream]\naddrs = [\"127.0.0.1:8081\"]\n[allowlist]\nsource = \"allowlist.json\"\n\
             [site_binding]\ncookie = \"afname_site\"\n\
             [[site_binding.key]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret_file = \"{}\"\n",
            key.display()
        );
        Config::from_toml(Path::new("gate.toml"), &text).expect("config")
    }

    fn keys_loaded_with(config: &Config) -> Arc<Verifier> {
        config
            .site_binding
            .as_ref()
            .expect("site binding")
            .keys()
            .clone()
    }

    fn keys_in_force(gate: &Gate) -> Arc<Verifier> {
        gate.current().keys.clone().expect("keys in force")
    }

    /// The keys in force are the ones read while the configuration was loaded, not a second
    /// read: with the key file gone after loading, the gate is still built on those keys, and
    /// a config reload puts the new config's own keys in force with it.
    #[test]
    fn keys_in_force_are_those_read_with_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.key");
        std::fs::write(&first, "0123456789abcdef0123456789abcdef\n").unwrap();
        let config = config_with_key(&first);
        let loaded = keys_loaded_with(&config);
        std::fs::remove_file(&first).unwrap();

        let clock: Clock = Arc::new(|| time::macros::datetime!(2026-12-01 09:00 UTC));
        let gate = build_gate(config, Registry::new(), clock).expect("gate");
        assert!(Arc::ptr_eq(&keys_in_force(&gate), &loaded));
        assert!(Arc::ptr_eq(&gate.runtime(), &gate.current().runtime));

        let second = dir.path().join("second.key");
        std::fs::write(&second, "fedcba9876543210fedcba9876543210\n").unwrap();
        let reloaded = config_with_key(&second);
        let reloaded_keys = keys_loaded_with(&reloaded);
        let runtime = Arc::new(Runtime::new(reloaded).expect("pages"));
        put_in_force(&gate, runtime.clone()).expect("put in force");
        let now = gate.current();
        assert!(Arc::ptr_eq(&now.runtime, &runtime));
        assert!(Arc::ptr_eq(now.keys.as_ref().unwrap(), &reloaded_keys));
        assert!(!Arc::ptr_eq(&reloaded_keys, &loaded));
    }
}
