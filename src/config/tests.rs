//! Config validation: defaults, and an error naming file, key and value for each bad input.

use super::*;
use crate::allowlist_config::{SourceConfig, TokenConfig};
use crate::client_ip::HeaderMode;
use crate::decision::Mode;
use crate::logging::LogFormat;
use crate::net_url::is_loopback_url;
use crate::site_binding::Missing;
use std::time::Duration;

const MIN: &str = r#"
[upstream]
addrs = ["127.0.0.1:8081"]
[allowlist]
source = "config/allowlist.json"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("gate.toml"), text)
}

fn err(text: &str) -> String {
    load(text).expect_err("should be refused").to_string()
}

#[test]
fn minimal_config_has_sensible_defaults() {
    let c = load(MIN).unwrap();
    assert_eq!(c.proxy.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
    assert_eq!(c.admin.listen, "127.0.0.1:9090".parse().unwrap());
    assert!(!c.admin.status_needs_token());
    assert_eq!(c.upstream.client_ip_header.as_str(), "x-forwarded-for");
    assert_eq!(c.client_ip.header, HeaderMode::XForwardedFor);
    assert!(c.client_ip.trusted.nets().is_empty());
    assert_eq!(c.policy.mode, Mode::Enforce);
    assert_eq!(c.allowlist.compile.max_prefix_v4, 16);
    assert_eq!(c.allowlist.compile.max_prefix_v6, 32);
    assert_eq!(c.proxy.grace_period, Duration::from_secs(5));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.block_page.admin_store_name, "Basispoort");
}

#[test]
fn unknown_keys_name_the_key_and_file() {
    let e = err(&format!("{MIN}\n[proxy]\nlisten_on = []\n"));
    assert!(e.starts_with("gate.toml:"), "{e}");
    assert!(e.contains("listen_on"), "{e}");
    let e = err(&format!("{MIN}\n[nonsense]\n"));
    assert!(e.contains("nonsense"), "{e}");
}

/// A 32-byte secret in a temporary file, for `[site_binding]` configs.
fn secret_file(dir: &tempfile::TempDir) -> String {
    let p = dir.path().join("site.key");
    std::fs::write(&p, "0123456789abcdef0123456789abcdef\n").unwrap();
    p.display().to_string()
}

fn binding(extra: &str, key_file: &str) -> String {
    format!(
        "{MIN}\n[site_binding]\ncookie = \"afname_site\"\n{extra}\n[[site_binding.key]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret_file = \"{key_file}\"\n"
    )
}

#[test]
fn site_binding_defaults_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(&dir);
    let c = load(&binding("", &key)).unwrap();
    let b = c.site_binding.expect("site binding configured");
    assert_eq!(b.0.claim, "site");
    assert_eq!(b.0.missing, Missing::Block);
    assert_eq!(b.0.source, TokenSource::Cookie("afname_site".into()));
    assert_eq!(b.0.keys.len(), 1);
    let c = load(&format!(
        "{}\n[[route]]\npath_prefix = \"/login\"\nmissing = \"any-site\"\n",
        binding("missing = \"block\"\nclaim = \"school\"", &key)
    ))
    .unwrap();
    assert_eq!(c.routes[0].missing, Some(Missing::AnySite));
    assert_eq!(c.site_binding.unwrap().0.claim, "school");
}

#[test]
fn site_binding_errors_name_the_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(&dir);
    for (text, needle) in [
        (binding("missing = \"sometimes\"", &key), "site_binding.missing` = \"sometimes\""),
        (binding("header = \"x-site\"", &key), "not both"),
        (
            binding("", &key).replace("alg = \"HS256\"", "alg = \"none\""),
            "site_binding.key[0].alg` = \"none\"",
        ),
        (
            binding("", &key).replace("alg = \"HS256\"", "alg = \"ES256\""),
            "site_binding.key[0].secret_file",
        ),
        (binding("", "/nonexistent/site.key"), "/nonexistent/site.key"),
        (
            format!("{MIN}\n[site_binding]\ncookie = \"c\"\n"),
            "site_binding.key",
        ),
        (
            format!("{MIN}\n[site_binding]\n[[site_binding.key]]\nalg = \"HS256\"\nsecret_file = \"{key}\"\n"),
            "site_binding.cookie",
        ),
        (
            format!("{MIN}\n[[route]]\npath_prefix = \"/\"\nmissing = \"any-site\"\n"),
            "only meaningful with [site_binding]",
        ),
        (
            format!(
                "{}\n[[route]]\npath_prefix = \"/\"\nmissing = \"anysite\"\n",
                binding("", &key)
            ),
            "route[0].missing` = \"anysite\"",
        ),
        (
            binding("", &key).replace("cookie = \"afname_site\"", "header = \"x-forwarded-for\""),
            "site_binding.header",
        ),
    ] {
        let e = err(&text);
        assert!(e.starts_with("gate.toml:"), "{e}");
        assert!(e.contains(needle), "expected {needle:?} in: {e}");
    }
}

#[test]
fn overrides_settings() {
    let c = load(&MIN.replace(
        "source = \"config/allowlist.json\"",
        "source = \"a.json\"\noverrides = \"o.json\"\nmax_override_days = 7",
    ))
    .unwrap();
    assert_eq!(c.allowlist.overrides, Some(PathBuf::from("o.json")));
    assert_eq!(c.allowlist.max_override_days, 7);
    assert_eq!(load(MIN).unwrap().allowlist.max_override_days, 14);
    for (key, needle) in [
        ("max_override_days = 0", "allowlist.max_override_days` = 0"),
        (
            "max_override_days = 365",
            "allowlist.max_override_days` = 365",
        ),
        ("overrides = \"\"", "allowlist.overrides"),
    ] {
        let e = err(&MIN.replace(
            "source = \"config/allowlist.json\"",
            &format!("source = \"a.json\"\n{key}"),
        ));
        assert!(e.contains(needle), "expected {needle:?} in: {e}");
    }
}

#[test]
fn admin_store_sources() {
    let c = load(&MIN.replace(
        "source = \"config/allowlist.json\"",
        "source = \"https://store.example/allowlist\"\ntoken_env = \"STORE_TOKEN\"\nlast_good = \"/var/lib/pw/al.json\"\npoll_interval = \"10s\"",
    ))
    .unwrap();
    match &c.allowlist.source {
        SourceConfig::Http {
            url,
            token,
            max_body_bytes,
            ..
        } => {
            assert_eq!(url, "https://store.example/allowlist");
            assert_eq!(token, &Some(TokenConfig::Env("STORE_TOKEN".into())));
            assert_eq!(*max_body_bytes, 32 * 1024 * 1024);
        }
        other => panic!("expected an http source, got {other:?}"),
    }
    assert_eq!(c.allowlist.poll_interval, Duration::from_secs(10));
    assert_eq!(c.allowlist.max_shrink, 0.2);
    for ok in [
        "http://127.0.0.1:8080/a",
        "http://[::1]:9/a",
        "http://localhost/a",
    ] {
        let c = load(&MIN.replace("config/allowlist.json", ok)).unwrap();
        assert_eq!(c.allowlist.source.describe(), ok);
    }
    assert!(is_loopback_url("http://127.0.0.2/x"));
    assert!(!is_loopback_url("http://127.0.0.1.example/x"));
    assert!(!is_loopback_url("http://[2001:db8::1]/x"));
}

#[test]
fn routes_and_rollout() {
    let c = load(&format!(
        "{MIN}\n[policy]\nenforce_from = \"2027-01-11T00:00:00+01:00\"\n\
         [[route]]\nname = \"static\"\npath_prefix = \"/static/\"\naction = \"bypass\"\n\
         [[route]]\nhost = \"Afname.Example.NL\"\npath_prefix = \"/beheer\"\naction = \"block\"\n\
         [[route]]\npath_prefix = \"/toets\"\n"
    ))
    .unwrap();
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[0].name, "static");
    assert_eq!(c.routes[1].name, "route-2");
    assert_eq!(c.routes[1].host.as_deref(), Some("afname.example.nl"));
    assert_eq!(c.routes[2].action, crate::decision::RouteAction::Enforce);
    assert_eq!(
        c.policy.enforce_from.unwrap().unix_timestamp(),
        time::macros::datetime!(2027-01-10 23:00 UTC).unix_timestamp()
    );
    for (route, key) in [
        ("path_prefix = \"static/\"", "route[0].path_prefix"),
        ("path_prefix = \"/a/../b\"", "route[0].path_prefix"),
        ("path_prefix = \"/%61\"", "route[0].path_prefix"),
        (
            "path_prefix = \"/a\"\naction = \"allow\"",
            "route[0].action",
        ),
        ("path_prefix = \"/a\"\nname = \"default\"", "route[0].name"),
        (
            "path_prefix = \"/a\"\nhost = \"a.example:443\"",
            "route[0].host",
        ),
        ("path_prefix = \"/a\"\nprefix = \"/b\"", "prefix"),
    ] {
        let e = err(&format!("{MIN}\n[[route]]\n{route}\n"));
        assert!(e.contains(key), "{key}: {e}");
    }
    let e = err(&format!("{MIN}\n[[route]]\nname = \"x\"\npath_prefix = \"/a\"\n[[route]]\nname = \"x\"\npath_prefix = \"/b\"\n"));
    assert!(
        e.contains("route[1].name") && e.contains("already used"),
        "{e}"
    );
    let e = err(&format!("{MIN}\n[policy]\nenforce_from = \"2027-01-11\"\n"));
    assert!(
        e.contains("policy.enforce_from") && e.contains("2027-01-11"),
        "{e}"
    );
}

#[test]
fn self_check_path() {
    assert_eq!(
        load(MIN).unwrap().self_check.as_deref(),
        Some("/.well-known/poortwachter/check")
    );
    let c = load(&format!("{MIN}\n[self_check]\npath = \"/mijn-adres\"\n")).unwrap();
    assert_eq!(c.self_check.as_deref(), Some("/mijn-adres"));
    let c = load(&format!("{MIN}\n[self_check]\nenabled = false\n")).unwrap();
    assert_eq!(c.self_check, None);
    for bad in ["check", "/a/../b", "/", "/a//b"] {
        let e = err(&format!("{MIN}\n[self_check]\npath = \"{bad}\"\n"));
        assert!(e.contains("self_check.path"), "{bad}: {e}");
    }
}

#[test]
fn trusted_proxies_are_strict() {
    let with = |t: &str| format!("{MIN}\n[client_ip]\ntrusted_proxies = [{t}]\n");
    assert!(err(&with("\"0.0.0.0/0\"")).contains("would let clients choose"));
    assert!(err(&with("\"::/0\"")).contains("would let clients choose"));
    assert!(err(&with("\"::ffff:0.0.0.0/96\"")).contains("trusting every address"));
    // Two halves are a /0 in disguise.
    let e = err(&with("\"0.0.0.0/1\", \"128.0.0.0/1\""));
    assert!(e.contains("trusted_proxies[0]") && e.contains("/8"), "{e}");
    assert!(err(&with("\"::/1\"")).contains("/7"));
    assert!(load(&with("\"10.0.0.0/8\", \"fc00::/7\"")).is_ok());
    let e = err(&with("\"192.0.2.1/24\""));
    assert!(
        e.contains("client_ip.trusted_proxies[0]") && e.contains("192.0.2.0/24"),
        "{e}"
    );
    let e = err(&with("\"10.0.0.0/8\", \"proxy.local\""));
    assert!(
        e.contains("trusted_proxies[1]") && e.contains("proxy.local"),
        "{e}"
    );
    let c = load(&with("\"10.0.0.0/8\", \"2001:db8::1\"")).unwrap();
    assert!(c.client_ip.trusted.contains("10.2.3.4".parse().unwrap()));
    assert!(c.client_ip.trusted.contains("2001:db8::1".parse().unwrap()));
}

#[test]
fn bad_values_are_named() {
    let cases = [
        (
            format!("{MIN}\n[policy]\nmode = \"strict\"\n"),
            "policy.mode",
        ),
        (
            format!("{MIN}\n[client_ip]\nheader = \"x-real-ip\"\n"),
            "client_ip.header",
        ),
        (
            format!("{MIN}\n[proxy]\nlisten = [\"localhost:80\"]\n"),
            "proxy.listen",
        ),
        (format!("{MIN}\n[proxy]\nlisten = []\n"), "proxy.listen"),
        (
            format!("{MIN}\n[proxy]\ngrace_period = \"soon\"\n"),
            "proxy.grace_period",
        ),
        (
            format!("{MIN}\n[proxy]\ngrace_period = \"1500ms\"\n"),
            "proxy.grace_period",
        ),
        (format!("{MIN}\n[proxy]\nthreads = 0\n"), "proxy.threads"),
        (format!("{MIN}\n[log]\nformat = \"xml\"\n"), "log.format"),
        (
            format!("{MIN}\n[log]\nclient_ip = \"hashed\"\n"),
            "log.hash_secret_file",
        ),
        (
            format!("{MIN}\n[log]\nclient_ip = \"partial\"\n"),
            "log.client_ip",
        ),
        (
            format!("{MIN}\n[log]\nhash_secret_file = \"/x\"\n"),
            "log.hash_secret_file",
        ),
        (
            format!("{MIN}\n[log]\nclient_ip = \"hashed\"\nhash_secret_file = \"/nonexistent\"\n"),
            "log.hash_secret_file",
        ),
        (
            MIN.replace(
                "[upstream]",
                "[upstream]\nclient_ip_header = \"x-request-id\"",
            ),
            "upstream.client_ip_header",
        ),
        (
            MIN.replace("[upstream]", "[upstream]\nclient_ip_header = \"Host\""),
            "upstream.client_ip_header",
        ),
        (
            format!("{MIN}\n[admin]\nlisten = \"127.0.0.1:8080\"\n"),
            "admin.listen",
        ),
        (
            format!("{MIN}\n[admin]\nlisten = \"0.0.0.0:9090\"\n"),
            "admin.token_file",
        ),
        (
            format!("{MIN}\n[admin]\ntoken_file = \"/nonexistent/token\"\n"),
            "admin.token_file",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"a.json\"\nmax_prefix = { v4 = 0 }",
            ),
            "allowlist.max_prefix.v4",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"http://store.example/al\"",
            ),
            "allowlist.source",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"https://user:pw@store.example/al\"",
            ),
            "allowlist.source",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"a.json\"\npoll_interval = \"10ms\"",
            ),
            "allowlist.poll_interval",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"a.json\"\nmax_shrink = -0.1",
            ),
            "allowlist.max_shrink",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"a.json\"\nca_file = \"ca.pem\"",
            ),
            "allowlist.ca_file",
        ),
        (
            MIN.replace(
                "source = \"config/allowlist.json\"",
                "source = \"https://s.example/a\"\ntoken_file = \"t\"\ntoken_env = \"T\"",
            ),
            "allowlist.token_env",
        ),
        (
            format!("{MIN}\n[proxy]\ntls_listen = [\"127.0.0.1:8443\"]\n"),
            "proxy.tls_cert_file",
        ),
        (
            format!("{MIN}\n[proxy]\ntls_cert_file = \"c.pem\"\n"),
            "proxy.tls_cert_file",
        ),
        (
            format!("{MIN}\n[[proxy.listener]]\naddr = \"127.0.0.1:9443\"\nproxy_protocol = \"v2\"\nproxy_protocol_from = [\"10.0.0.0/24\"]\ntls = true\n"),
            "proxy.tls_cert_file",
        ),
        (
            format!("{MIN}\n[[proxy.listener]]\naddr = \"127.0.0.1:9443\"\ntls = true\n"),
            "proxy.listener[0].tls",
        ),
        (MIN.replace("[\"127.0.0.1:8081\"]", "[]"), "upstream.addrs"),
        (
            MIN.replace("[upstream]\naddrs = [\"127.0.0.1:8081\"]", ""),
            "upstream.addrs",
        ),
        (
            format!("{MIN}\n[block_page]\nsupport_contact_by_lang = {{ de = \"x\" }}\n"),
            "support_contact_by_lang.de",
        ),
    ];
    for (text, key) in cases {
        let e = err(&text);
        assert!(e.starts_with("gate.toml:"), "{e}");
        assert!(e.contains(key), "expected {key} in: {e}");
    }
}

#[test]
fn proxy_protocol_listeners() {
    let c = load(&format!(
        "{MIN}\n[proxy]\nlisten = [\"127.0.0.1:8080\"]\n\
         [[proxy.listener]]\naddr = \"0.0.0.0:8443\"\nproxy_protocol = \"v2\"\n\
         proxy_protocol_from = [\"10.20.0.0/24\", \"fd00:20::/48\"]\n\
         [[proxy.listener]]\naddr = \"0.0.0.0:8081\"\nproxy_protocol = \"off\"\n\
         [[proxy.listener]]\naddr = \"[::]:8444\"\nproxy_protocol = \"any\"\n\
         proxy_protocol_from = [\"10.20.0.7\"]\nproxy_protocol_timeout = \"500ms\"\n"
    ))
    .unwrap();
    // A table with it off is one more plain listener.
    assert_eq!(
        c.proxy.listen,
        vec![
            "127.0.0.1:8080".parse().unwrap(),
            "0.0.0.0:8081".parse().unwrap()
        ]
    );
    let [v2, any] = &c.proxy.proxy_protocol[..] else {
        panic!("{:?}", c.proxy.proxy_protocol)
    };
    assert_eq!(v2.addr, "0.0.0.0:8443".parse().unwrap());
    assert_eq!(v2.accept, crate::proxy_protocol::Accept::V2);
    assert_eq!(v2.timeout, Duration::from_secs(3), "the default");
    assert!(v2.from.contains("10.20.0.99".parse().unwrap()));
    assert!(v2.from.contains("fd00:20::1".parse().unwrap()));
    assert!(!v2.from.contains("10.20.1.1".parse().unwrap()));
    assert_eq!(any.accept, crate::proxy_protocol::Accept::ANY);
    assert_eq!(any.timeout, Duration::from_millis(500));
    // Tables alone: no default listener besides them.
    let c = load(&format!(
        "{MIN}\n[[proxy.listener]]\naddr = \"127.0.0.1:8082\"\nproxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1\"]\n"
    ))
    .unwrap();
    assert!(c.proxy.listen.is_empty());
    assert_eq!(c.proxy.proxy_protocol.len(), 1);
    assert!(c
        .proxy
        .addrs()
        .any(|(k, a)| k == "proxy.listener" && a == "127.0.0.1:8082".parse().unwrap()));
}

#[test]
fn proxy_protocol_listener_mistakes_name_the_table_and_key() {
    let table =
        |body: &str| format!("{MIN}\n[[proxy.listener]]\naddr = \"127.0.0.1:8082\"\n{body}\n");
    for (body, key, says) in [
        ("proxy_protocol = \"v3\"", "proxy.listener[0].proxy_protocol", "\"v3\""),
        ("proxy_protocol = \"v1\"", "proxy.listener[0].proxy_protocol_from", "balancers"),
        (
            "proxy_protocol = \"v1\"\nproxy_protocol_from = []",
            "proxy.listener[0].proxy_protocol_from",
            "balancers",
        ),
        (
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"0.0.0.0/0\"]",
            "proxy.listener[0].proxy_protocol_from[0]",
            "/8",
        ),
        (
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"10.0.0.1/8\"]",
            "proxy.listener[0].proxy_protocol_from[0]",
            "host bits",
        ),
        (
            "proxy_protocol_from = [\"10.0.0.0/8\"]",
            "proxy.listener[0].proxy_protocol_from",
            "only used with",
        ),
        (
            "proxy_protocol_timeout = \"1s\"",
            "proxy.listener[0].proxy_protocol_timeout",
            "only used with",
        ),
        (
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"10.0.0.0/8\"]\nproxy_protocol_timeout = \"10ms\"",
            "proxy.listener[0].proxy_protocol_timeout",
            "100ms",
        ),
        (
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"10.0.0.0/8\"]\nproxy_protocol_timeout = \"2m\"",
            "proxy.listener[0].proxy_protocol_timeout",
            "60s",
        ),
    ] {
        let e = err(&table(body));
        assert!(e.contains("gate.toml") && e.contains(key) && e.contains(says), "{body}: {e}");
    }
    let e = err(&format!(
        "{MIN}\n[[proxy.listener]]\naddr = \"localhost:80\"\n"
    ));
    assert!(e.contains("proxy.listener[0].addr"), "{e}");
    let e = err(&format!(
        "{MIN}\n[[proxy.listener]]\naddr = \"127.0.0.1:80\"\nport = 1\n"
    ));
    assert!(e.contains("port"), "{e}");
    // One address for two listeners is refused like any other double use.
    let e = err(&format!(
        "{MIN}\n[proxy]\nlisten = [\"127.0.0.1:8082\"]\n[[proxy.listener]]\naddr = \"127.0.0.1:8082\"\nproxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1\"]\n"
    ));
    assert!(e.contains("127.0.0.1:8082"), "{e}");
}

#[test]
fn header_timeout() {
    assert_eq!(
        load(MIN).unwrap().proxy.header_timeout,
        Duration::from_secs(10)
    );
    let c = load(&format!("{MIN}\n[proxy]\nheader_timeout = \"30s\"\n")).unwrap();
    assert_eq!(c.proxy.header_timeout, Duration::from_secs(30));
    for bad in ["500ms", "10m", "soon"] {
        let e = err(&format!("{MIN}\n[proxy]\nheader_timeout = \"{bad}\"\n"));
        assert!(
            e.contains("proxy.header_timeout") && e.contains(bad),
            "{bad}: {e}"
        );
    }
}

#[test]
fn header_limits() {
    let c = load(MIN).unwrap();
    assert_eq!(
        (c.proxy.max_header_bytes, c.proxy.max_header_count),
        (32 * 1024, 100)
    );
    let c = load(&format!(
        "{MIN}\n[proxy]\nmax_header_bytes = 65536\nmax_header_count = 50\n"
    ))
    .unwrap();
    assert_eq!(
        (c.proxy.max_header_bytes, c.proxy.max_header_count),
        (65536, 50)
    );
    for (key, bad) in [
        ("max_header_bytes", "100"),
        ("max_header_bytes", "1048576"),
        ("max_header_count", "5"),
        ("max_header_count", "1000"),
    ] {
        let e = err(&format!("{MIN}\n[proxy]\n{key} = {bad}\n"));
        assert!(
            e.contains(&format!("proxy.{key}")) && e.contains(bad),
            "{key} = {bad}: {e}"
        );
    }
}

#[test]
fn keep_alive_limits() {
    let c = load(MIN).unwrap();
    assert_eq!(c.proxy.keepalive_timeout, Duration::from_secs(60));
    assert_eq!(c.proxy.max_requests_per_connection, 1000);
    let c = load(&format!(
        "{MIN}\n[proxy]\nkeepalive_timeout = \"15s\"\nmax_requests_per_connection = 1\n"
    ))
    .unwrap();
    assert_eq!(c.proxy.keepalive_timeout, Duration::from_secs(15));
    assert_eq!(c.proxy.max_requests_per_connection, 1);
    for (key, bad) in [
        ("keepalive_timeout", "\"0s\""),
        ("keepalive_timeout", "\"2h\""),
        ("max_requests_per_connection", "0"),
    ] {
        let e = err(&format!("{MIN}\n[proxy]\n{key} = {bad}\n"));
        assert!(e.contains(&format!("proxy.{key}")), "{key} = {bad}: {e}");
    }
}

#[test]
fn connection_caps_per_listener() {
    let addr = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
    let c = load(MIN).unwrap();
    assert_eq!(
        c.proxy.max_connections,
        vec![(addr("127.0.0.1:8080"), 10_000)]
    );
    // `[proxy]` sets every listener's; a table sets its own, PROXY protocol or not.
    let c = load(&format!(
        "{MIN}\n[proxy]\nlisten = [\"127.0.0.1:8080\"]\nmax_connections = 500\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8081\"\nmax_connections = 20\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8082\"\nproxy_protocol = \"v1\"\n\
         proxy_protocol_from = [\"10.0.0.0/8\"]\nmax_connections = 30\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8083\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.proxy.max_connections,
        vec![
            (addr("127.0.0.1:8080"), 500),
            (addr("127.0.0.1:8081"), 20),
            (addr("127.0.0.1:8082"), 30),
            (addr("127.0.0.1:8083"), 500),
        ]
    );
    assert_eq!(c.proxy.proxy_protocol[0].max_connections, 30);
    for (at, key) in [
        ("[proxy]\nmax_connections = 0\n", "proxy.max_connections"),
        (
            "[[proxy.listener]]\naddr = \"127.0.0.1:8081\"\nmax_connections = 2000000\n",
            "proxy.listener[0].max_connections",
        ),
    ] {
        let e = err(&format!("{MIN}\n{at}"));
        assert!(e.contains(key), "{at}: {e}");
    }
}

#[test]
fn upgrade_socket_is_an_absolute_socket_path() {
    let c = load(MIN).unwrap();
    assert_eq!(
        c.proxy.upgrade_socket,
        std::path::Path::new("/run/poortwachter/upgrade.sock")
    );
    let c = load(&format!(
        "{MIN}\n[proxy]\nupgrade_socket = \"/var/run/pw/up.sock\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.proxy.upgrade_socket,
        std::path::Path::new("/var/run/pw/up.sock")
    );
    let long = format!("/{}", "d".repeat(110));
    for (bad, problem) in [
        ("up.sock".to_string(), "absolute"),
        (long.clone(), "107 bytes"),
    ] {
        let e = err(&format!("{MIN}\n[proxy]\nupgrade_socket = \"{bad}\"\n"));
        assert!(
            e.contains("proxy.upgrade_socket") && e.contains(&bad) && e.contains(problem),
            "{bad}: {e}"
        );
    }
}

#[test]
fn h2c_per_listener() {
    assert!(load(MIN).unwrap().proxy.h2c.is_empty(), "off by default");
    // `[proxy] h2c` is for the `listen` addresses (the default one too); a table says for
    // itself, PROXY protocol listeners included; TLS listeners never (ALPN).
    let c = load(&format!("{MIN}\n[proxy]\nh2c = true\n")).unwrap();
    assert_eq!(c.proxy.h2c, vec!["127.0.0.1:8080".parse().unwrap()]);
    let c = load(&format!(
        "{MIN}\n[proxy]\nlisten = [\"127.0.0.1:8080\", \"[::1]:8080\"]\nh2c = false\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8081\"\nh2c = true\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8082\"\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8083\"\nproxy_protocol = \"v1\"\n\
         proxy_protocol_from = [\"127.0.0.1\"]\nh2c = true\n"
    ))
    .unwrap();
    assert_eq!(
        c.proxy.h2c,
        vec![
            "127.0.0.1:8081".parse().unwrap(),
            "127.0.0.1:8083".parse().unwrap()
        ]
    );
    let c = load(&format!(
        "{MIN}\n[proxy]\nlisten = [\"127.0.0.1:8080\"]\nh2c = true\n\
         [[proxy.listener]]\naddr = \"127.0.0.1:8081\"\n"
    ))
    .unwrap();
    assert_eq!(c.proxy.h2c, vec!["127.0.0.1:8080".parse().unwrap()]);
    // TLS chooses HTTP/2 by ALPN: h2c with it is refused, naming the table's key.
    let e = err(&format!(
        "{MIN}\n[[proxy.listener]]\naddr = \"127.0.0.1:8443\"\nproxy_protocol = \"v2\"\n\
         proxy_protocol_from = [\"127.0.0.1\"]\ntls = true\nh2c = true\n"
    ));
    assert!(
        e.contains("proxy.listener[0].h2c") && e.contains("true") && e.contains("ALPN"),
        "{e}"
    );
    // `[proxy] h2c` with no `listen` address to apply to is refused, not ignored.
    let e = err(&format!(
        "{MIN}\n[proxy]\nh2c = true\n[[proxy.listener]]\naddr = \"127.0.0.1:8081\"\n"
    ));
    assert!(e.contains("proxy.h2c") && e.contains("proxy.listen"), "{e}");
    let e = err(&format!("{MIN}\n[proxy]\nh2c = \"yes\"\n"));
    assert!(e.contains("h2c"), "{e}");
}

#[test]
fn upgraded_connections_have_their_own_idle_timeout() {
    let c = load(MIN).unwrap();
    assert_eq!(c.upstream.upgrade_idle_timeout, Duration::from_secs(3600));
    let c = load(&MIN.replace(
        "[upstream]\n",
        "[upstream]\nupgrade_idle_timeout = \"15m\"\n",
    ))
    .unwrap();
    assert_eq!(c.upstream.upgrade_idle_timeout, Duration::from_secs(900));
    for (bad, says) in [("500ms", "1s"), ("25h", "24h"), ("soon", "duration")] {
        let e = err(&MIN.replace(
            "[upstream]\n",
            &format!("[upstream]\nupgrade_idle_timeout = \"{bad}\"\n"),
        ));
        assert!(
            e.contains("upstream.upgrade_idle_timeout") && e.contains(bad) && e.contains(says),
            "{bad}: {e}"
        );
    }
}

#[test]
fn http2_streams_per_connection() {
    assert_eq!(load(MIN).unwrap().proxy.h2_max_concurrent_streams, 100);
    let c = load(&format!("{MIN}\n[proxy]\nh2_max_concurrent_streams = 8\n")).unwrap();
    assert_eq!(c.proxy.h2_max_concurrent_streams, 8);
    for bad in ["0", "1001"] {
        let e = err(&format!(
            "{MIN}\n[proxy]\nh2_max_concurrent_streams = {bad}\n"
        ));
        assert!(
            e.contains("proxy.h2_max_concurrent_streams") && e.contains(bad),
            "{bad}: {e}"
        );
    }
}
