use super::*;

fn name(host: &str, port: u16) -> UpstreamAddr {
    UpstreamAddr::Name {
        host: host.to_string(),
        port,
    }
}

fn ip(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn names_resolve_to_every_address_with_the_configured_port() {
    let targets = [
        UpstreamAddr::Ip(ip("192.0.2.1:8080")),
        name("toets.internal", 8443),
    ];
    let lookups = HashMap::from([(
        "toets.internal".to_string(),
        Ok(vec![ip("198.51.100.1:0"), ip("[2001:db8::1]:0")]),
    )]);
    let mut last = HashMap::new();
    let r = resolve_round(&targets, &lookups, &mut last);
    assert!(r.failed.is_empty());
    let addrs: Vec<_> = r.addrs.into_iter().collect();
    assert_eq!(
        addrs,
        [
            (ip("192.0.2.1:8080"), None),
            (ip("198.51.100.1:8443"), Some("toets.internal".to_string())),
            (ip("[2001:db8::1]:8443"), Some("toets.internal".to_string())),
        ]
    );
    assert_eq!(last["toets.internal"].len(), 2);
}

#[test]
fn a_name_that_stops_resolving_keeps_its_last_addresses() {
    let targets = [name("toets.internal", 8443)];
    let mut last = HashMap::new();
    let ok = HashMap::from([("toets.internal".to_string(), Ok(vec![ip("198.51.100.1:0")]))]);
    resolve_round(&targets, &ok, &mut last);
    let failed = HashMap::from([(
        "toets.internal".to_string(),
        Err("failed to lookup address information".to_string()),
    )]);
    let r = resolve_round(&targets, &failed, &mut last);
    assert_eq!(
        r.failed,
        [(
            "toets.internal:8443".to_string(),
            "failed to lookup address information".to_string()
        )]
    );
    assert_eq!(r.addrs.len(), 1, "the last addresses stay");
    // An empty answer is no better than an error.
    let empty = HashMap::from([("toets.internal".to_string(), Ok(vec![]))]);
    let r = resolve_round(&targets, &empty, &mut last);
    assert_eq!(r.failed[0].1, "no addresses");
    assert_eq!(r.addrs.len(), 1);
}

#[test]
fn a_name_that_never_resolved_has_no_addresses_and_says_so() {
    let targets = [
        name("toets.internal", 8443),
        UpstreamAddr::Ip(ip("192.0.2.1:80")),
    ];
    let failed = HashMap::from([("toets.internal".to_string(), Err("nxdomain".to_string()))]);
    let r = resolve_round(&targets, &failed, &mut HashMap::new());
    assert_eq!(r.addrs.len(), 1);
    assert_eq!(r.failed.len(), 1);
}

#[test]
fn a_moved_name_follows_its_new_addresses() {
    let targets = [name("toets.internal", 80)];
    let mut last = HashMap::new();
    let one = HashMap::from([("toets.internal".to_string(), Ok(vec![ip("198.51.100.1:0")]))]);
    let two = HashMap::from([("toets.internal".to_string(), Ok(vec![ip("198.51.100.2:0")]))]);
    resolve_round(&targets, &one, &mut last);
    let r = resolve_round(&targets, &two, &mut last);
    let addrs: Vec<_> = r.addrs.into_iter().map(|(a, _)| a).collect();
    assert_eq!(addrs, [ip("198.51.100.2:80")]);
}

fn config(addrs: &[&str]) -> UpstreamConfig {
    let text = format!(
        "addrs = [{}]\nfail_timeout = \"10s\"\n",
        addrs
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let file: super::super::UpstreamFile = toml::from_str(&text).unwrap();
    file.try_into().unwrap()
}

#[test]
fn selection_goes_round_robin_and_skips_the_tried_and_the_ejected() {
    let up = config(&["192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"]);
    let pool = UpstreamPool::new(&up);
    assert!(pool.resolved(), "IP addresses are in the pool at once");
    let pick = |tried: &[SocketAddr]| inet(&pool.select(tried).unwrap()).unwrap();
    let mut seen: Vec<_> = (0..3).map(|_| pick(&[])).collect();
    seen.sort();
    assert_eq!(
        seen,
        [ip("192.0.2.1:80"), ip("192.0.2.2:80"), ip("192.0.2.3:80")]
    );
    let tried = [ip("192.0.2.1:80"), ip("192.0.2.2:80")];
    assert_eq!(pick(&tried), ip("192.0.2.3:80"));
    assert!(pool.has_untried(&tried));
    let all = [tried[0], tried[1], ip("192.0.2.3:80")];
    assert!(pool.select(&all).is_none());
    assert!(!pool.has_untried(&all));

    // Ejected: skipped while another is ready, until its time has passed.
    let b3 = pool.select(&tried).unwrap();
    assert!(pool.eject(&b3, Duration::from_secs(10)));
    for _ in 0..6 {
        assert_ne!(pick(&[]), ip("192.0.2.3:80"));
    }
    assert!(pool
        .states()
        .iter()
        .any(|(a, ready, ejected)| *a == ip("192.0.2.3:80") && !ready && *ejected));
    // The only one not tried is ejected: it is still tried rather than nothing.
    assert_eq!(pick(&tried), ip("192.0.2.3:80"));
    pool.restore_due(Instant::now() + Duration::from_secs(11));
    assert!(pool
        .states()
        .iter()
        .all(|(_, ready, ejected)| *ready && !ejected));
}

#[test]
fn new_addresses_of_a_reload_are_in_rotation_at_once() {
    let pool = UpstreamPool::new(&config(&["192.0.2.1:80"]));
    pool.set_targets(&[UpstreamAddr::Ip(ip("192.0.2.9:80"))], None);
    assert_eq!(inet(&pool.select(&[]).unwrap()), Some(ip("192.0.2.9:80")));
}

#[test]
fn a_zero_fail_timeout_never_ejects() {
    let pool = UpstreamPool::new(&config(&["192.0.2.1:80"]));
    let b = pool.select(&[]).unwrap();
    assert!(!pool.eject(&b, Duration::ZERO));
    assert!(pool.states()[0].1);
}

#[test]
fn peers_carry_the_sni_of_their_name_and_the_timeouts() {
    let up = config(&["192.0.2.1:443"]);
    let tls = |sni: Option<&str>| {
        Some(UpstreamTls {
            sni: sni.map(str::to_string),
            ca_file: None,
            ca: None,
            verify: true,
            client_cert: None,
        })
    };
    let mut pool = UpstreamPool::new(&up);
    pool.tls = tls(None);
    let named = backend(
        ip("198.51.100.1:443"),
        Some(HostName("toets.internal".into())),
    );
    let peer = pool.peer(&named, &up).unwrap();
    assert_eq!(peer.sni, "toets.internal");
    assert!(peer.options.verify_cert && peer.options.verify_hostname);
    assert_eq!(peer.options.read_timeout, Some(up.read_timeout));
    assert_eq!(peer.options.connection_timeout, Some(up.connect_timeout));
    pool.tls = tls(Some("toets.example.nl"));
    assert_eq!(pool.peer(&named, &up).unwrap().sni, "toets.example.nl");
    pool.tls = None;
    let plain = pool.peer(&named, &up).unwrap();
    assert_eq!(plain.sni, "");
}

#[test]
fn new_addresses_with_other_https_settings_wait_for_a_restart() {
    let pool = UpstreamPool::new(&config(&["192.0.2.1:80"]));
    let tls = UpstreamTls {
        sni: Some("toets.example.nl".to_string()),
        ca_file: None,
        ca: None,
        verify: true,
        client_cert: None,
    };
    pool.set_targets(&[UpstreamAddr::Ip(ip("192.0.2.9:443"))], Some(&tls));
    assert_eq!(inet(&pool.select(&[]).unwrap()), Some(ip("192.0.2.1:80")));
    assert!(!pool.take_changed());
}

#[test]
fn an_https_peer_without_a_name_is_never_built() {
    let up = config(&["192.0.2.1:443"]);
    let mut pool = UpstreamPool::new(&up);
    pool.tls = Some(UpstreamTls {
        sni: None,
        ca_file: None,
        ca: None,
        verify: true,
        client_cert: None,
    });
    let unnamed = backend(ip("192.0.2.1:443"), None);
    assert!(pool.peer(&unnamed, &up).is_none());
}
