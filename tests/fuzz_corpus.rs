//! Replays the fuzz corpora (`tests/fuzz/corpus/<target>`, grown and minimised with
//! `tests/fuzz/run.sh`) on stable: each target's invariants (`tests/fuzz/invariants/`), on
//! every input its fuzzer kept. A corpus below its minimum size fails, so a deleted or
//! emptied corpus does not pass silently.

use std::path::Path;

#[path = "fuzz/invariants/allowlist.rs"]
mod allowlist;
#[path = "fuzz/invariants/client_ip.rs"]
mod client_ip;
#[path = "fuzz/invariants/config.rs"]
mod config;
#[path = "fuzz/invariants/overrides.rs"]
mod overrides;
#[path = "fuzz/invariants/proxy_protocol.rs"]
mod proxy_protocol;
#[path = "fuzz/invariants/site_claim.rs"]
mod site_claim;

/// Runs `check` over every file of the target's corpus and asserts there are at least `min`.
fn replay(target: &str, min: usize, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} breaks an invariant", path.display());
        n += 1;
    }
    println!("{n} corpus inputs from {}", dir.display());
    assert!(
        n >= min,
        "the corpus is there ({n} inputs in {}, expected at least {min})",
        dir.display()
    );
}

#[test]
fn proxy_protocol_corpus() {
    replay("proxy_protocol", 20, proxy_protocol::check);
}

#[test]
fn client_ip_xff_corpus() {
    replay("client_ip_xff", 100, client_ip::check_xff);
}

#[test]
fn client_ip_forwarded_corpus() {
    replay("client_ip_forwarded", 100, client_ip::check_forwarded);
}

#[test]
fn allowlist_corpus() {
    replay("allowlist", 100, allowlist::check);
}

#[test]
fn overrides_corpus() {
    replay("overrides", 100, overrides::check);
}

#[test]
fn site_claim_corpus() {
    replay("site_claim", 100, site_claim::check);
}

#[test]
fn config_corpus() {
    replay("config", 100, config::check);
}
