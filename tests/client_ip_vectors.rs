//! Runs the shared client IP test vectors (`shared/testdata/client_ip_vectors.json`) against
//! `client_ip::resolve`.
//!
//! Every vector must pass. `proxy-protocol-v1` vectors put the PROXY header through
//! `proxy_protocol::parse` first: honoured only from a trusted peer, its source becomes the
//! peer, and the `X-Forwarded-For` walk applies on top. All failures are collected and reported
//! together, so one run shows the whole picture. The file is never skipped silently: if it
//! cannot be found the test fails and says where it looked.

use std::env;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use poortwachter::client_ip::{
    canonical, resolve, HeaderMode, PeerAddr, TrustedProxies, UNRESOLVABLE_REASON,
};
use poortwachter::proxy_protocol;
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
    #[serde(default)]
    proxy_protocol: Option<String>,
    expect: Expect,
}

/// The reject of a connection whose PROXY header is refused.
const PROXY_REJECT: &str = "malformed PROXY header";

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

/// Runs one vector.
fn run(v: &Vector) -> Result<(), String> {
    let behind_balancer = v.mode == "proxy-protocol-v1";
    let mode: HeaderMode = if behind_balancer {
        HeaderMode::XForwardedFor
    } else {
        v.mode.parse().map_err(|e| format!("bad mode: {e}"))?
    };
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
    let peer = if behind_balancer {
        let header = v
            .proxy_protocol
            .as_deref()
            .ok_or("no proxy_protocol line")?;
        match balancer_peer(peer, header.as_bytes(), &trusted) {
            Ok(peer) => peer,
            Err(why) => {
                return match &v.expect {
                    Expect::Reject { reject } if reject == PROXY_REJECT => Ok(()),
                    _ => Err(format!(
                        "expected {:?}, got the connection refused: {why}",
                        v.expect
                    )),
                };
            }
        }
    } else {
        peer
    };
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
        Ok(())
    } else {
        let got = match got {
            Ok(r) => format!("{} (from {:?})", r.ip, r.source),
            Err(e) => format!("reject {}: {e}", e.reason()),
        };
        Err(format!("expected {:?}, got {got}", v.expect))
    }
}

/// The peer after the PROXY header, as a listener with `proxy_protocol = "v1"` and
/// `proxy_protocol_from` = the trusted proxies sees it; `Err` when the connection is closed.
fn balancer_peer(
    peer: PeerAddr,
    first_bytes: &[u8],
    trusted: &TrustedProxies,
) -> Result<PeerAddr, String> {
    if !peer.0.is_some_and(|p| trusted.contains(canonical(p))) {
        return Err("the peer may not send a PROXY header".into());
    }
    match proxy_protocol::parse(first_bytes, proxy_protocol::Accept::V1) {
        Ok(proxy_protocol::Parsed::Done { header, .. }) => Ok(match header.addresses {
            Some(a) => PeerAddr(Some(a.source.ip())),
            None => peer,
        }),
        Ok(proxy_protocol::Parsed::Incomplete) => Err("the header is incomplete".into()),
        Err(e) => Err(e.to_string()),
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

    let mut ran = 0usize;
    let mut failures = Vec::new();
    for v in &file.vectors {
        ran += 1;
        if let Err(why) = run(v) {
            failures.push(format!("{} [{}]: {why}", v.id, v.mode));
        }
    }
    let behind_balancer = file
        .vectors
        .iter()
        .filter(|v| v.mode == "proxy-protocol-v1")
        .count();
    println!(
        "client IP vectors from {}: {ran} ran ({behind_balancer} proxy-protocol-v1), {} passed, {} failed",
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
