//! The command line: `run`, `check`, `explain` and `report`. Raw arguments are parsed by clap, then
//! each command loads the validated configuration and does its job; errors surface here, at
//! the edge, as one clear message and a non-zero exit code.

use crate::admin::explain::{self, HeaderArg};
use crate::allowlist_config::SourceConfig;
use crate::config::Config;
use crate::gate::{self, Gate};
use crate::lifecycle::build_gate;
use anyhow::Context;
use clap::{Parser, Subcommand};
use pingora_prometheus::prometheus::Registry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "poortwachter",
    version,
    about = "Edge gate: tests start only from registered school locations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gate.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Take the listening sockets over from the running gate: get ready, then wait on
        /// `[proxy] upgrade_socket` until the running gate is sent SIGQUIT (by the operator;
        /// SIGUSR2 to it does all of this by itself). It hands its sockets over, drains and
        /// exits; no connection is refused in between.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate the configuration and the allowlist.
    ///
    /// Exit 0 when valid (warnings are printed), 1 on errors, 2 with --strict when there are
    /// warnings (quarantined entries, trusted proxies overlapping the allowlist).
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Treat warnings as failures.
        #[arg(long)]
        strict: bool,
        /// With an admin-store source: fetch the document now instead of checking the
        /// last-known-good copy.
        #[arg(long)]
        fetch: bool,
    },
    /// Explain the decision for one request, as JSON, using the proxy's own code path.
    Explain {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The TCP peer address the gate would see (or `unix`).
        #[arg(long, value_name = "IP")]
        peer: String,
        /// A request header, e.g. 'X-Forwarded-For: 192.0.2.1'; repeat for more.
        #[arg(long = "header", value_name = "'Name: value'")]
        headers: Vec<HeaderArg>,
        /// The request path.
        #[arg(long, default_value = "/")]
        path: String,
        /// The request host.
        #[arg(long)]
        host: Option<String>,
        /// Evaluate at this moment (RFC 3339) instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// A PROXY protocol v1 line the peer (a balancer) sends first, e.g.
        /// 'PROXY TCP4 203.0.113.5 10.0.0.5 40000 443'.
        #[arg(long = "proxy-protocol", value_name = "'PROXY …'")]
        proxy_protocol: Option<String>,
    },
    /// The would-block report of several replicas as one (JSON on stdout): each replica's
    /// `GET /would-block` fetched with the admin token and merged.
    ///
    /// Exit 0 when every replica answered, 1 when one did not (the merge of the others is
    /// still printed, and `unreachable` names the missing ones).
    Report {
        /// An admin listener of each replica, e.g. http://10.0.3.7:9090; repeat for more.
        #[arg(long = "merge", value_name = "URL", required = true)]
        merge: Vec<String>,
        /// The file holding the admin token (as `[admin] token_file`).
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_command(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `report --merge`: fetch every replica's report, merge what came, say what did not.
fn report(urls: &[String], token_file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let token = crate::secret::read(token_file)
        .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", token_file.display()))?;
    let token = String::from_utf8(token)
        .map_err(|_| anyhow::anyhow!("--token-file {}: not UTF-8", token_file.display()))?;
    let merged = crate::report::WouldBlockReport::default();
    let (mut replicas, mut unreachable) = (Vec::new(), Vec::new());
    for url in urls {
        let target = would_block_url(url);
        let fetched = crate::report::fetch(&target, &token, std::time::Duration::from_secs(10));
        match fetched.and_then(|doc| merged.merge_json(&doc).map(|()| doc)) {
            Ok(doc) => replicas.push(serde_json::json!({
                "url": target, "entries": doc["entries"], "since": doc["since"],
            })),
            Err(e) => {
                eprintln!("report: {target}: {e}");
                unreachable.push(serde_json::json!({ "url": target, "error": e }));
            }
        }
    }
    let mut doc = merged.json();
    doc["replicas"] = replicas.into();
    doc["unreachable"] = unreachable.clone().into();
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(if unreachable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A replica's report address: the admin listener's URL with `/would-block`, unless given.
fn would_block_url(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with("/would-block") {
        base.to_string()
    } else {
        format!("{base}/would-block")
    }
}

fn load(config: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(config)?)
}

fn run_command(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config, upgrade } => {
            let cfg = load(&config)?;
            crate::logging::init(&cfg.log);
            let signals = crate::server::UnixSignals {
                upgrade_socket: cfg.proxy.upgrade_socket.clone(),
                config: config.clone(),
            };
            let gate = Arc::new(build_gate(cfg, Registry::new(), gate::system_clock())?);
            crate::server::run(gate, Box::new(signals), upgrade)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            config,
            strict,
            fetch,
        } => check(&config, strict, fetch),
        Command::Report { merge, token_file } => report(&merge, &token_file),
        Command::Explain {
            config,
            peer,
            headers,
            path,
            host,
            at,
            proxy_protocol,
        } => {
            let cfg = load(&config)?;
            let peer = explain::parse_peer(&peer).map_err(anyhow::Error::msg)?;
            let (peer, note) = match &proxy_protocol {
                None => (peer, None),
                Some(line) => {
                    match explain::proxy_protocol_peer(&cfg.proxy.proxy_protocol, peer, line) {
                        Ok((peer, note)) => (peer, Some(note)),
                        Err(closed) => {
                            println!("{}", serde_json::to_string_pretty(&closed)?);
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
            };
            let at = match at {
                Some(s) => explain::parse_at(&s).map_err(anyhow::Error::msg)?,
                None => time::OffsetDateTime::now_utc(),
            };
            let gate = build_gate(cfg, Registry::new(), gate::system_clock())?;
            // The same first load as `run` (a file, or the last-known-good of an admin-store
            // source). Without an allowlist the answer is still given: `no_allowlist`.
            crate::lifecycle::startup(&gate);
            if !gate.is_ready() {
                let st = gate.status();
                if let Some(e) = st.last_error.as_ref().and_then(|a| a.error.as_ref()) {
                    eprintln!("warning: {e}");
                }
            }
            let headers = explain::header_map(&headers).map_err(anyhow::Error::msg)?;
            let out = explain::explain(&gate, peer, &headers, &path, host.as_deref(), at);
            let mut out = serde_json::to_value(&out).context("encoding the explanation")?;
            if let (Some(note), Some(obj)) = (note, out.as_object_mut()) {
                obj.insert("proxy_protocol".into(), note);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("encoding the explanation")?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The allowlist document `check` judges: the file, the last-known-good copy of an
/// admin-store source, or (with `--fetch`) the admin store's answer now.
fn document_for_check(cfg: &Config, fetch: bool) -> anyhow::Result<(String, Vec<u8>)> {
    match &cfg.allowlist.source {
        SourceConfig::File(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("allowlist {}: cannot read", p.display()))?;
            Ok((p.display().to_string(), bytes))
        }
        SourceConfig::Http { url, .. } if fetch => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime for --fetch")?;
            let source = cfg.allowlist.source.clone();
            let bytes = rt
                .block_on(async move { crate::lifecycle::fetch_once(&source).await })
                .map_err(anyhow::Error::msg)?;
            Ok((url.clone(), bytes))
        }
        SourceConfig::Http { url, .. } => {
            let Some(p) = &cfg.allowlist.last_good else {
                anyhow::bail!(
                    "{}: allowlist.source is the admin store {url} and no allowlist.last_good is configured; use --fetch to check the admin store's document",
                    cfg.path.display()
                );
            };
            let bytes = std::fs::read(p).with_context(|| {
                format!("last-known-good {} (of {url}): cannot read; use --fetch to check the admin store's document", p.display())
            })?;
            Ok((format!("{} (last-known-good of {url})", p.display()), bytes))
        }
    }
}

/// `check`: config, allowlist, and the cross-checks between them.
fn check(path: &std::path::Path, strict: bool, fetch: bool) -> anyhow::Result<ExitCode> {
    let cfg = load(path)?;
    let (name, bytes) = document_for_check(&cfg, fetch)?;
    let snapshot = crate::allowlist::compile(&bytes, &cfg.allowlist.compile)
        .with_context(|| format!("allowlist {name}: rejected"))?;
    let gate = build_gate(cfg, Registry::new(), gate::system_clock())?;
    let snapshot = Arc::new(snapshot);
    crate::lifecycle::install(
        &gate,
        snapshot.clone(),
        crate::status::Origin::Source,
        None,
        std::time::Duration::ZERO,
    );
    println!("config {}: ok", path.display());
    println!(
        "allowlist {}: version {}, {} sites, {} ranges, {} exceptions",
        name,
        snapshot.version().unwrap_or("(none)"),
        snapshot.site_count(),
        snapshot.range_count(),
        snapshot.exception_count(),
    );
    let mut warnings = 0usize;
    for q in snapshot.quarantined() {
        println!("warning: quarantined entry: {q}");
        warnings += 1;
    }
    for (field, n) in snapshot.unknown_fields() {
        println!("note: unknown field {field} seen {n} times (tolerated)");
    }
    for w in trusted_overlaps(&gate) {
        println!("warning: {w}");
        warnings += 1;
    }
    if let (Some(o), Some(file)) = (gate.overrides(), &gate.runtime().config.allowlist.overrides) {
        let now = gate.now();
        println!(
            "overrides {}: {} entries, {} in force now",
            file.display(),
            o.entries().len(),
            o.active_count(now)
        );
        for q in o.quarantined() {
            println!("warning: override entry skipped: {q}");
            warnings += 1;
        }
    }
    if let Some(b) = &gate.runtime().config.site_binding {
        println!(
            "site binding: claim `{}`, {} key(s), requests without a claim: {}",
            b.0.claim,
            b.0.keys.len(),
            b.0.missing.as_str()
        );
    }
    let up = &gate.runtime().config.upstream;
    println!(
        "upstream: {} over {}, health check {}",
        up.addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if up.tls.is_some() {
            "HTTPS"
        } else {
            "plain HTTP"
        },
        up.health_check
            .as_ref()
            .map_or("off".to_string(), |h| format!(
                "GET {} every {:?}",
                h.path, h.interval
            )),
    );
    if up.tls.as_ref().is_some_and(|t| !t.verify) {
        println!("warning: upstream.verify = false: the upstream's certificate is not checked; never in production");
        warnings += 1;
    }
    if let Some(certs) = gate.certificates.load() {
        let now = gate.now().unix_timestamp();
        for c in certs.list() {
            let until = time::OffsetDateTime::from_unix_timestamp(c.not_after)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| c.not_after.to_string());
            let days = (c.not_after - now).div_euclid(86_400);
            println!(
                "tls certificate {} ({}): names {:?}, valid until {until} ({days} days)",
                c.name,
                c.cert_file.display(),
                c.names,
            );
            if days < 14 {
                println!(
                    "warning: tls certificate {} ({}) expires in less than 14 days",
                    c.name,
                    c.cert_file.display()
                );
                warnings += 1;
            }
        }
    }
    if warnings > 0 && strict {
        println!("check failed: {warnings} warning(s) and --strict");
        return Ok(ExitCode::from(2));
    }
    println!("check passed with {warnings} warning(s)");
    Ok(ExitCode::SUCCESS)
}

/// Trusted proxy networks that overlap allowlisted ranges: such addresses are never treated
/// as a registered location, which is rarely what the operator meant.
pub fn trusted_overlaps(gate: &Gate) -> Vec<String> {
    let Some(snapshot) = gate.snapshot() else {
        return Vec::new();
    };
    let rt = gate.runtime();
    let trusted = rt.config.client_ip.trusted.nets();
    let mut out = Vec::new();
    for (range, site) in snapshot.ranges() {
        for net in trusted {
            if net.contains(&range.network()) || range.contains(&net.network()) {
                let id = snapshot
                    .sites()
                    .get(site as usize)
                    .map_or("?", |s| s.id.as_str());
                out.push(format!(
                    "trusted proxy network {net} overlaps allowlisted range {range} of site {id}; \
                     addresses in both are never treated as registered"
                ));
            }
        }
    }
    out
}
