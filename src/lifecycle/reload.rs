//! Config reload (SIGHUP, `POST /reload`): re-read the TOML file and put what can change at
//! run time in force with one swap. What needs a restart is reported, never silently
//! ignored; an invalid file is refused and the running config stays.

use crate::config::Config;
use crate::gate::{Gate, Runtime};
use crate::upstream::tls_identity;
use std::sync::Arc;

/// Settings that Pingora fixes when it starts: a change is reported as needing a restart.
fn restart_required(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |key: &str, changed: bool| {
        if changed {
            out.push(key.to_string());
        }
    };
    check("proxy.listen", old.proxy.listen != new.proxy.listen);
    check(
        "proxy.listener",
        old.proxy.proxy_protocol != new.proxy.proxy_protocol,
    );
    // The certificates are not in this list: a reload puts the new files in force.
    check(
        "proxy.tls_listen",
        old.proxy.tls.as_ref().map(|t| &t.listen) != new.proxy.tls.as_ref().map(|t| &t.listen),
    );
    check("proxy.h2c", old.proxy.h2c != new.proxy.h2c);
    check("proxy.threads", old.proxy.threads != new.proxy.threads);
    check(
        "proxy.max_requests_per_connection",
        old.proxy.max_requests_per_connection != new.proxy.max_requests_per_connection,
    );
    check(
        "proxy.header_timeout",
        old.proxy.header_timeout != new.proxy.header_timeout,
    );
    check(
        "proxy.grace_period",
        old.proxy.grace_period != new.proxy.grace_period,
    );
    check(
        "proxy.shutdown_timeout",
        old.proxy.shutdown_timeout != new.proxy.shutdown_timeout,
    );
    check(
        "proxy.h2_max_concurrent_streams",
        old.proxy.h2_max_concurrent_streams != new.proxy.h2_max_concurrent_streams,
    );
    check(
        "proxy.upgrade_socket",
        old.proxy.upgrade_socket != new.proxy.upgrade_socket,
    );
    // The pool's health check and the connector's trust store are built at the start.
    // With other HTTPS settings, new addresses are not taken either (the pool keeps
    // the ones it has): they could be reached the wrong way.
    check(
        "upstream.tls",
        tls_identity(old.upstream.tls.as_ref()) != tls_identity(new.upstream.tls.as_ref()),
    );
    check(
        "upstream.health_check",
        old.upstream.health_check != new.upstream.health_check,
    );
    check(
        "upstream.keepalive_pool_size",
        old.upstream.keepalive_pool_size != new.upstream.keepalive_pool_size,
    );
    check("admin.listen", old.admin.listen != new.admin.listen);
    check("demo_origin.listen", old.demo_origin != new.demo_origin);
    check(
        "log",
        old.log.format != new.log.format || old.log.level != new.log.level,
    );
    out
}

/// Re-read the config file. Returns the report shown by `POST /reload` and `/status`.
pub fn reload_config(gate: &Gate, trigger: &str) -> serde_json::Value {
    let current = gate.runtime();
    let path = current.config.path.clone();
    let result = Config::load(&path)
        .map_err(|e| e.one_line())
        .and_then(|new| Runtime::new(new).map_err(|e| e.to_string()));
    let report = match result {
        Err(e) => {
            gate.metrics
                .config_reloads
                .with_label_values(&["error"])
                .inc();
            tracing::error!(target: "poortwachter::audit", trigger, error = %e, "config reload refused; the running config stays");
            serde_json::json!({ "result": "error", "file": path.display().to_string(), "error": e })
        }
        Ok(runtime) => {
            let restart = restart_required(&current.config, &runtime.config);
            let mode_changed = current.config.policy.mode != runtime.config.policy.mode;
            let mode = runtime.config.policy.mode;
            // One swap: the new config, its keys and its overrides go in force together.
            let overrides = super::put_in_force(gate, Arc::new(runtime)).map_err(|e| e.to_string());
            gate.metrics.config_reloads.with_label_values(&["ok"]).inc();
            if restart.is_empty() {
                tracing::info!(target: "poortwachter::audit", trigger, file = %path.display(), "config reloaded");
            } else {
                tracing::warn!(
                    target: "poortwachter::audit",
                    trigger,
                    file = %path.display(),
                    needs_restart = ?restart,
                    "config reloaded; these settings only take effect after a restart"
                );
            }
            if mode_changed {
                tracing::warn!(target: "poortwachter::audit", mode = mode.as_str(), "enforcement mode changed");
            }
            gate.status().restart_required = restart.clone();
            serde_json::json!({
                "result": "ok",
                "file": path.display().to_string(),
                "restart_required": restart,
                "overrides": overrides.err().unwrap_or_else(|| "ok".into()),
            })
        }
    };
    let mut with_time = report.clone();
    with_time["at"] = gate
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
        .into();
    with_time["trigger"] = trigger.into();
    gate.status().last_config_reload = Some(with_time);
    report
}
