// What must hold for any configuration text; shared by the fuzz target `config` and the
// corpus replay on stable (`tests/fuzz_corpus.rs`).
//
// Input: the TOML text, checked by `Config::from_toml` (the pure entry point: it reads no
// file itself, but the keys that name one, `*_file`, are read while checking; inputs with
// such a key are skipped, so the target never touches the filesystem).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use poortwachter::config::{Config, ConfigError};

/// The top-level tables an error's key can be under.
const SECTIONS: [&str; 12] = [
    "proxy",
    "upstream",
    "client_ip",
    "allowlist",
    "policy",
    "admin",
    "block_page",
    "log",
    "demo_origin",
    "site_binding",
    "route",
    "self_check",
];

/// Checking is deterministic; a config that is accepted is within its own documented bounds;
/// a refused one says which file and which key.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(table) = text.parse::<toml::Table>() {
        if names_a_file(&toml::Value::Table(table)) {
            return;
        }
    }
    let path = Path::new("fuzz.toml");
    let got = Config::from_toml(path, text);
    let again = Config::from_toml(path, text);
    assert_eq!(
        format!("{got:?}"),
        format!("{again:?}"),
        "checked twice the same way"
    );
    match got {
        Ok(cfg) => check_config(&cfg),
        Err(e) => check_error(&e),
    }
}

fn names_a_file(v: &toml::Value) -> bool {
    match v {
        toml::Value::Table(t) => t
            .iter()
            .any(|(k, v)| k.ends_with("_file") || names_a_file(v)),
        toml::Value::Array(a) => a.iter().any(names_a_file),
        _ => false,
    }
}

fn check_config(cfg: &Config) {
    let a = &cfg.allowlist;
    assert!((8..=32).contains(&a.compile.max_prefix_v4), "{a:?}");
    assert!((16..=128).contains(&a.compile.max_prefix_v6), "{a:?}");
    assert!((1..=90).contains(&a.max_override_days), "{a:?}");
    assert!(a.poll_interval >= Duration::from_secs(1), "{a:?}");
    assert!((0.0..=1.0).contains(&a.max_shrink), "{a:?}");

    for net in cfg.client_ip.trusted.nets() {
        let shortest = if net.addr().is_ipv4() { 8 } else { 7 };
        assert!(net.prefix_len() >= shortest, "trusted {net}");
        assert_eq!(*net, net.trunc(), "trusted {net}");
    }
    for l in &cfg.proxy.proxy_protocol {
        for net in l.from.nets() {
            assert!(net.prefix_len() >= if net.addr().is_ipv4() { 8 } else { 7 });
        }
    }

    // Without a token file, the admin listener must be loopback-only.
    assert!(cfg.admin.token.is_none());
    assert!(!cfg.admin.status_needs_token(), "{:?}", cfg.admin);
    // Without key files, site binding cannot have loaded.
    assert!(cfg.site_binding.is_none());

    let mut seen = BTreeSet::new();
    let addrs = cfg
        .proxy
        .addrs()
        .map(|(_, a)| a)
        .chain([cfg.admin.listen])
        .chain(cfg.demo_origin);
    for addr in addrs {
        assert!(seen.insert(addr), "{addr} listened on twice");
    }

    let u = &cfg.upstream;
    assert!(!u.addrs.is_empty(), "{u:?}");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&u.upgrade_idle_timeout),
        "{u:?}"
    );
    for r in &cfg.routes {
        assert!(r.path_prefix.starts_with('/'), "{r:?}");
        if let Some(host) = &r.host {
            assert_eq!(*host, host.to_ascii_lowercase(), "{r:?}");
        }
    }
    if let Some(path) = &cfg.self_check {
        assert!(path.starts_with('/'), "self_check {path:?}");
    }
}

fn check_error(e: &ConfigError) {
    let shown = e.to_string();
    assert!(shown.starts_with("fuzz.toml: "), "{shown} names the file");
    let key = match e {
        ConfigError::Read { .. } => panic!("read a file: {shown}"),
        ConfigError::Parse { message, .. } => {
            assert!(!message.is_empty(), "{shown}");
            return;
        }
        ConfigError::SiteKey { .. } => {
            assert!(shown.contains("site_binding.key"), "{shown} names the key");
            return;
        }
        ConfigError::Invalid { key, .. } | ConfigError::Missing { key, .. } => key,
    };
    assert!(shown.contains(&format!("`{key}`")), "{shown} names {key}");
    let section = key.split(['.', '[']).next().unwrap_or_default();
    assert!(
        SECTIONS.contains(&section),
        "{shown}: `{key}` is not under a section"
    );
}
