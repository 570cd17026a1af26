//! The `/status` document, built from plain data: the generation in force and what the
//! gate records about its loads (`crate::status`).

use crate::allowlist::overrides::{OverrideEntry, Overrides};
use crate::gate::Gate;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A moment for `/status`, in RFC 3339.
/// How `/status` shows HTTPS to the upstream.
fn pool_tls(tls: Option<&crate::upstream::UpstreamTls>) -> Value {
    match tls {
        None => Value::Null,
        Some(t) => json!({
            "sni": t.sni,
            "ca_file": t.ca_file.as_ref().map(|p| p.display().to_string()),
            "verify": t.verify,
            "client_cert_file": t.client_cert.as_ref().map(|c| c.file.display().to_string()),
        }),
    }
}

fn rfc3339(t: Option<OffsetDateTime>) -> Option<String> {
    t?.format(&Rfc3339).ok()
}

/// One override entry as `/status` and `explain` show it.
pub fn entry_json(e: &OverrideEntry, at: OffsetDateTime) -> Value {
    json!({
        "index": e.index,
        "action": e.action.as_str(),
        "range": e.range.to_string(),
        "site": e.site,
        "reason": e.reason,
        // With the offset it was written in; a parsed RFC 3339 time always formats back.
        "expires": e.expires.format(&Rfc3339).ok(),
        "active": e.is_active_at(at),
    })
}

/// The overrides at `at`: every accepted entry with whether it is in force, the counts, the
/// quarantined entries with their problem and the unknown fields.
pub fn overrides_json(o: &Overrides, at: OffsetDateTime) -> Value {
    json!({
        "entries": o.entries().iter().map(|e| entry_json(e, at)).collect::<Vec<_>>(),
        "active": o.active_count(at),
        "expired": o.expired_count(at),
        "quarantined": o.quarantined(),
        "unknown_fields": o.unknown_fields().iter()
            .map(|(field, count)| json!({"field": field, "count": count}))
            .collect::<Vec<_>>(),
    })
}

/// The `/status` document.
pub fn status_json(gate: &Gate) -> Value {
    let now = gate.now();
    let g = gate.current();
    let config = &g.runtime.config;
    let snapshot = g.snapshot.as_deref();
    let overrides = config.allowlist.overrides.as_ref().map(|path| {
        let st = gate.overrides_status();
        let mut doc = g
            .overrides
            .as_deref()
            .map_or_else(|| json!({}), |o| overrides_json(o, now));
        doc["file"] = path.display().to_string().into();
        doc["loaded_at"] = rfc3339(st.loaded_at).into();
        doc["last_error"] = st.last_error.clone().into();
        doc["last_error_at"] = rfc3339(st.last_error_at).into();
        doc
    });
    let site_binding = config.site_binding.as_ref().map(|b| {
        let keys = gate.keys_status();
        json!({
            "claim": b.0.claim,
            "missing": b.0.missing.as_str(),
            "configured_keys": b.0.keys.iter().map(|k| json!({
                "kid": k.kid, "alg": k.alg.as_str(), "file": k.file.path().display().to_string(),
            })).collect::<Vec<_>>(),
            "keys_in_force": keys.in_force,
            "keys_loaded_at": rfc3339(keys.loaded_at),
            "last_error": keys.last_error,
            "last_error_at": rfc3339(keys.last_error_at),
        })
    });
    let tls = config.proxy.tls.as_ref().map(|_| {
        let st = gate.tls_status();
        let in_force = gate.certificates.load();
        let certificates = in_force.iter().flat_map(|c| c.list()).map(|c| {
            let not_after = OffsetDateTime::from_unix_timestamp(c.not_after).ok();
            json!({
                "name": c.name,
                "names": c.names,
                "file": c.cert_file.display().to_string(),
                "not_after": rfc3339(not_after),
                "days_left": (c.not_after - now.unix_timestamp()).div_euclid(86_400),
            })
        });
        json!({
            "certificates": certificates.collect::<Vec<_>>(),
            "loaded_at": rfc3339(st.loaded_at),
            "last_error": st.last_error,
            "last_error_at": rfc3339(st.last_error_at),
        })
    });
    let upstream = {
        let up = &config.upstream;
        let pool = &gate.upstreams;
        json!({
            "addrs": up.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "tls": pool_tls(pool.tls()),
            "health_check": pool.health_check.as_ref().map(|h| json!({
                "path": h.path,
                "interval_ms": h.interval.as_millis() as u64,
                "healthy_threshold": h.healthy_threshold,
                "unhealthy_threshold": h.unhealthy_threshold,
            })),
            "in_rotation": pool.states().into_iter().map(|(addr, ready, ejected)| json!({
                "addr": addr.to_string(),
                "ready": ready,
                "ejected": ejected,
            })).collect::<Vec<_>>(),
        })
    };
    let st = gate.status();
    let cfg = &config.allowlist;
    json!({
        "ready": snapshot.is_some(),
        // Which process answers (changes with a zero-downtime upgrade).
        "pid": std::process::id(),
        "mode": config.policy.mode.as_str(),
        "allowlist": {
            "source": cfg.source.describe(),
            "serving_from": st.origin,
            "last_good": cfg.last_good.as_ref().map(|p| p.display().to_string()),
            "version": snapshot.and_then(|s| s.version()),
            "etag": st.etag,
            "loaded_at": rfc3339(st.loaded_at),
            "age_seconds": st.loaded_instant.map(|i| i.elapsed().as_secs()),
            "load_duration_ms": st.load_duration.map(|d| d.as_secs_f64() * 1000.0),
            "last_success": rfc3339(st.last_success),
            "ranges": snapshot.map(|s| s.range_count()),
            "sites": snapshot.map(|s| s.site_count()),
            "exceptions": snapshot.map(|s| s.exception_count()),
            "quarantined": snapshot.map(|s| s.quarantined()).unwrap_or_default(),
            "unknown_fields": snapshot.map(|s| s.unknown_fields().iter()
                .map(|(k, n)| json!({"field": k, "count": n})).collect::<Vec<_>>()),
            "last_result": st.attempts.front(),
            "last_error": st.last_error,
            "shrink_refused": st.shrink_refused,
            "recent_attempts": st.attempts,
            "recent_changes": st.history,
        },
        "overrides": overrides,
        "site_binding": site_binding,
        "tls": tls,
        "upstream": upstream,
        "config": {
            "file": config.path.display().to_string(),
            "restart_required": st.restart_required,
            "last_reload": st.last_config_reload,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::overrides::{compile_overrides, OverrideOptions};
    use time::macros::datetime;

    #[test]
    fn overrides_json_lists_entries_problems_and_unknown_fields() {
        let doc = json!({ "note": "x", "entries": [
            { "action": "allow", "range": "203.0.113.64/29", "site": "12AB00",
              "reason": "new fibre line, admin store not updated yet",
              "expires": "2026-12-02T17:00:00+01:00" },
            { "action": "deny", "range": "198.51.100.0/24", "reason": "reported misuse",
              "expires": "2026-12-31T00:00:00+01:00" },
            { "action": "allow", "range": "203.0.113.65/29", "site": "12AB00",
              "reason": "new fibre line, admin store not updated yet",
              "expires": "2026-12-02T17:00:00+01:00" },
            { "action": "allow", "range": "203.0.113.64/29", "site": "12AB00",
              "reason": "new fibre line, admin store not updated yet",
              "expires": "2026-11-30T00:00:00Z" } ] });
        let load = datetime!(2026-12-01 12:00:00 UTC);
        let opts = OverrideOptions {
            max_days: 30,
            ..OverrideOptions::default()
        };
        let o = compile_overrides(doc.to_string().as_bytes(), &opts, load).expect("accepted");
        let at = datetime!(2026-12-02 16:30:00 UTC); // after the first allow's expiry
        assert_eq!(
            overrides_json(&o, at),
            json!({
                "entries": [
                    {"index": 0, "action": "allow", "range": "203.0.113.64/29", "site": "12AB00",
                     "reason": "new fibre line, admin store not updated yet",
                     "expires": "2026-12-02T17:00:00+01:00", "active": false},
                    {"index": 1, "action": "deny", "range": "198.51.100.0/24", "site": null,
                     "reason": "reported misuse", "expires": "2026-12-31T00:00:00+01:00",
                     "active": true},
                    {"index": 3, "action": "allow", "range": "203.0.113.64/29", "site": "12AB00",
                     "reason": "new fibre line, admin store not updated yet",
                     "expires": "2026-11-30T00:00:00Z", "active": false},
                ],
                "active": 1,
                "expired": 2,
                "quarantined": [
                    {"entry": 2, "field": "range", "value": "\"203.0.113.65/29\"",
                     "problem": "host bits set (did you mean 203.0.113.64/29?)",
                     "kind": "host_bits_set"},
                ],
                "unknown_fields": [{"field": "(top).note", "count": 1}],
            })
        );
        // Earlier, the first allow was still in force.
        let before = overrides_json(&o, load);
        assert_eq!(before["entries"][0]["active"], json!(true));
        assert_eq!(before["active"], json!(2));
        assert_eq!(before["expired"], json!(1));
    }

    #[test]
    fn an_empty_set_has_every_field() {
        let at = datetime!(2026-12-01 12:00:00 UTC);
        assert_eq!(
            overrides_json(&Overrides::default(), at),
            json!({"entries": [], "active": 0, "expired": 0, "quarantined": [], "unknown_fields": []})
        );
    }
}
