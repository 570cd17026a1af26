//! Runs the shared client IP test vectors (`shared/testdata/client_ip_vectors.json`) against
//! `client_ip::resolve`.
//!
//! Every `x-forwarded-for` and `forwarded` vector must pass; `proxy-protocol-v1` vectors belong
//! to a later capability and are counted as skipped. All failures are collected and reported
//! together, so one run shows the whole picture. The file is never skipped silently: if it
//! cannot be found the test fails and says where it looked.

use std::env;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use poortwachter::client_ip::{
    canonical, resolve, HeaderMode, PeerAddr, TrustedProxies, UNRESOLVABLE_REASON,
};
use serde::Deserialize;

const FILE: &str = "shared/testdata/client_ip_vectors.json";

#[derive(Deserialize)]
struct VectorFile {
    semantics: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    peer: Option<String>,
    trusted: Vec<String>,
    headers: Vec<(String, String)>,
    mode: String,
    expect: Expect,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Expect {
    Ip(String),
    Reject { reject: String },
}

/// `POORTWACHTER_VECTORS` if set; otherwise `shared/` next to the crate (the project layout)
/// or one level further up (a scratch crate).
fn vectors_path() -> PathBuf {
    if let Some(path) = env::var_os("POORTWACHTER_VECTORS") {
        return PathBuf::from(path);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("..").join(FILE),
        manifest.join("../..").join(FILE),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => path.clone(),
        None => panic!(
            "client IP test vectors not found; looked at {candidates:?}. \
             Set POORTWACHTER_VECTORS to the file's path."
        ),
    }
}

/// Runs one vector; `Ok(None)` when it belongs to a later capability.
fn run(v: &Vector) -> Result<Option<()>, String> {
    if v.mode == "proxy-protocol-v1" {
        return Ok(None);
    }
    let mode: HeaderMode = v.mode.parse().map_err(|e| format!("bad mode: {e}"))?;
    let peer = match &v.peer {
        Some(s) => PeerAddr(Some(
            s.parse::<IpAddr>()
                .map_err(|e| format!("bad peer {s:?}: {e}"))?,
        )),
        None => PeerAddr(None),
    };
    let nets = v
        .trusted
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .map_err(|e| format!("bad trusted {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let trusted = TrustedProxies::new(nets);
    // The caller's job in the proxy: select the configured header's field lines, in order,
    // by case-insensitive name.
    let lines = v
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(mode.header_name()))
        .map(|(_, value)| value.as_bytes());
    let got = resolve(peer, lines, mode, &trusted);
    let ok = match (&v.expect, &got) {
        (Expect::Ip(want), Ok(resolved)) => {
            let want = want
                .parse::<IpAddr>()
                .map_err(|e| format!("bad expect {want:?}: {e}"))?;
            canonical(want) == resolved.ip.addr()
        }
        (Expect::Reject { reject }, Err(err)) => {
            reject == UNRESOLVABLE_REASON && err.reason() == UNRESOLVABLE_REASON
        }
        _ => false,
    };
    if ok {
        Ok(Some(()))
    } else {
        let got = match got {
            Ok(r) => format!("{} (from {:?})", r.ip, r.source),
            Err(e) => format!("reject {}: {e}", e.reason()),
        };
        Err(format!("expected {:?}, got {got}", v.expect))
    }
}

#[test]
fn client_ip_vectors() {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: VectorFile = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    assert!(!file.semantics.is_empty(), "vector file has no semantics");

    let (mut ran, mut skipped) = (0usize, 0usize);
    let mut failures = Vec::new();
    for v in &file.vectors {
        match run(v) {
            Ok(Some(())) => ran += 1,
            Ok(None) => skipped += 1,
            Err(why) => {
                ran += 1;
                failures.push(format!("{} [{}]: {why}", v.id, v.mode));
            }
        }
    }
    println!(
        "client IP vectors from {}: {ran} ran, {} passed, {} failed, {skipped} skipped (proxy-protocol-v1)",
        path.display(),
        ran - failures.len(),
        failures.len()
    );
    assert!(ran > 0, "no client IP vector ran from {}", path.display());
    assert!(
        failures.is_empty(),
        "{} of {ran} client IP vectors failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
