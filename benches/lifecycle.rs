//! Allowlist lifecycle figures for the release binary with a 100k-range allowlist: time from
//! start to ready, resident memory, and the time from a file change (atomic rename) to the
//! new range deciding requests. Loopback only; bounded; stops what it starts.
//!
//! `cargo bench --bench lifecycle`

#[path = "support/synth.rs"]
mod synth;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use synth::synthetic_document;

const RANGES: usize = 100_000;
const CHANGES: usize = 30;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn status_of(port: u16, path: &str, xff: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn document(version: usize, probe: Option<&str>) -> String {
    let mut v: Value =
        serde_json::from_str(&synthetic_document(RANGES, 7)).expect("synthetic document");
    v["version"] = json!(format!("bench-{version}"));
    let mut ranges = vec!["192.0.2.0/28".to_string()];
    ranges.extend(probe.map(str::to_string));
    v["sites"]
        .as_array_mut()
        .expect("sites")
        .push(json!({ "id": "BENCH0", "ranges": ranges }));
    v.to_string()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Gate(Child);
impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let allowlist = dir.path().join("allowlist.json");
    std::fs::write(&allowlist, document(0, None)).expect("write allowlist");
    let (proxy, admin, origin) = (free_port(), free_port(), free_port());
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = [\"127.0.0.1:{proxy}\"]\nthreads = 1\n[upstream]\naddrs = [\"127.0.0.1:{origin}\"]\n\
             [client_ip]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[allowlist]\nsource = \"{}\"\npoll_interval = \"1h\"\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n[log]\nlevel = \"warn\"\n[demo_origin]\nlisten = \"127.0.0.1:{origin}\"\n",
            allowlist.display()
        ),
    )
    .expect("write config");

    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gate");
    let gate = Gate(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(admin, "/readyz", "-") != Some(200) {
        assert!(Instant::now() < deadline, "the gate did not become ready");
        std::thread::sleep(Duration::from_millis(1));
    }
    let ready = started.elapsed();
    // Ready means the allowlist is in force, so a block now is a failure; the demo origin
    // behind the gate is a service of its own and may take a moment longer to accept.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match status_of(proxy, "/", "192.0.2.1") {
            Some(200) => break,
            Some(403) => panic!("a registered address was blocked after ready"),
            _ => {
                assert!(Instant::now() < deadline, "the demo origin never answered");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let rss_ready = rss_kib(gate.0.id());

    let mut latencies = Vec::with_capacity(CHANGES);
    for i in 1..=CHANGES {
        let probe = format!("203.0.113.{i}");
        let doc = document(i, Some(&probe));
        let tmp = dir.path().join("allowlist.json.tmp");
        std::fs::write(&tmp, &doc).expect("write");
        assert_eq!(status_of(proxy, "/", &probe), Some(403));
        let t = Instant::now();
        std::fs::rename(&tmp, &allowlist).expect("rename");
        let deadline = t + Duration::from_secs(30);
        while status_of(proxy, "/", &probe) != Some(200) {
            assert!(Instant::now() < deadline, "change {i} never took effect");
            std::thread::sleep(Duration::from_micros(200));
        }
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let rss_after = rss_kib(gate.0.id());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("lifecycle with {RANGES} ranges (release binary, loopback):");
    println!(
        "  start to ready          {:8.1} ms (process spawn included)",
        ms(ready)
    );
    println!("  RSS when ready          {:8} KiB", rss_ready.unwrap_or(0));
    println!(
        "  RSS after {CHANGES} swaps      {:8} KiB",
        rss_after.unwrap_or(0)
    );
    println!(
        "  file change -> in force  median {:.1} ms, p90 {:.1} ms, max {:.1} ms ({CHANGES} atomic renames)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 1.0)),
    );
}
