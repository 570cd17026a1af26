//! Zero-downtime upgrade: a new process takes the listening sockets over from the running
//! one, so not one connection is refused while the binary or the config changes.
//!
//! Pingora does the hand-over: the new process (`run --upgrade`) gets ready, listens on
//! `[proxy] upgrade_socket` and waits; the old one, on SIGQUIT, sends its sockets there,
//! accepts a few seconds longer with the new one, then drains like SIGTERM. Around it:
//!
//! - a SIGQUIT while no new process listens there is ignored ([`waiting`]): Pingora would
//!   drain and exit without handing anything over, taking the gate off the air;
//! - SIGUSR2 starts the new process itself ([`start_new`]), from the binary on disk, so it
//!   runs under the same service manager (one command for operators and systemd);
//! - under systemd (`Type=notify`, `NotifyAccess=all`) the gate reports `READY=1`, and the
//!   new process reports itself the unit's main process ([`notify_systemd`]).

use std::path::Path;
use std::time::{Duration, Instant};

/// How long SIGUSR2 waits for the new process to get ready (config, allowlist).
const START_LIMIT: Duration = Duration::from_secs(60);

/// Whether a new process is waiting at `path` for the sockets: a Unix socket of this user
/// that a process listens on. A file left by a process that died is no such socket.
/// (No probe connection: the waiting process takes its first connection for the sender.)
pub fn waiting(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.file_type().is_socket() {
        return Err("not a socket".to_string());
    }
    // Whoever listens there is handed the listeners: only a socket of our own user counts.
    let me = std::fs::metadata("/proc/self")
        .map_err(|e| format!("cannot read /proc/self: {e}"))?
        .uid();
    if meta.uid() != me {
        return Err(format!(
            "owned by uid {}, not by this process's uid {me}",
            meta.uid()
        ));
    }
    let table = std::fs::read_to_string("/proc/net/unix")
        .map_err(|e| format!("cannot read /proc/net/unix: {e}"))?;
    if listening_in(&table, path) {
        Ok(())
    } else {
        Err("a socket file nobody listens on (left by a process that stopped)".to_string())
    }
}

/// Whether the `/proc/net/unix` table has a listening socket bound to `path`.
fn listening_in(table: &str, path: &Path) -> bool {
    /// `__SO_ACCEPTCON` in the Flags column: the socket listens.
    const ACCEPTING: u32 = 0x0001_0000;
    let Some(path) = path.to_str() else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path
        cols.len() == 8
            && cols[7] == path
            && u32::from_str_radix(cols[3], 16).is_ok_and(|f| f & ACCEPTING != 0)
    })
}

/// SIGUSR2: start `<this binary's path> run --upgrade --config <config>` (the path names
/// the new binary once it is installed over the old one) and wait until it listens on
/// `socket`, which it does only when ready. Its pid; an error, with this process serving
/// on, when it exits first or is not ready within [`START_LIMIT`].
pub async fn start_new(config: &Path, socket: &Path) -> Result<u32, String> {
    let exe = std::env::args_os()
        .next()
        .ok_or("cannot tell this process's binary (no argv[0])")?;
    if waiting(socket).is_ok() {
        return Err(format!(
            "another process already waits on {}",
            socket.display()
        ));
    }
    let mut child = std::process::Command::new(&exe)
        .arg("run")
        .arg("--upgrade")
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", Path::new(&exe).display()))?;
    let pid = child.id();
    tracing::info!(
        new_pid = pid,
        binary = %Path::new(&exe).display(),
        "SIGUSR2: started the new process; waiting until it is ready"
    );
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Err(format!("the new process {pid} exited: {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot watch the new process {pid}: {e}")),
        }
        if waiting(socket).is_ok() {
            return Ok(pid);
        }
        if started.elapsed() > START_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the new process {pid} was not ready within {START_LIMIT:?}; stopped it"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tell systemd (when it started us with `NOTIFY_SOCKET`) that the gate is ready; after an
/// upgrade also that this process is now the unit's main process.
pub fn notify_systemd(upgraded: bool) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = if upgraded {
        format!("MAINPID={}\nREADY=1\n", std::process::id())
    } else {
        "READY=1\n".to_string()
    };
    if let Err(e) = send_notify(&target, message.as_bytes()) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

fn send_notify(target: &std::ffi::OsStr, message: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(Path::new(target))?,
    };
    socket.send_to_addr(message, &addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_counts_only_while_someone_listens_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgrade.sock");
        let e = waiting(&path).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(waiting(&path).unwrap_err(), "not a socket");
        std::fs::remove_file(&path).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(waiting(&path), Ok(()));
        // The process is gone, its file stays.
        drop(listener);
        assert!(path.exists());
        let e = waiting(&path).unwrap_err();
        assert!(e.contains("nobody listens"), "{e}");
    }

    #[test]
    fn the_unix_socket_table_is_read_by_path_and_listening_flag() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 11 /run/pw/upgrade.sock\n\
            0000000000000000: 00000002 00000000 00000000 0001 03 12 /run/pw/other.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 13\n";
        assert!(listening_in(table, Path::new("/run/pw/upgrade.sock")));
        // Bound but not listening, and not there at all.
        assert!(!listening_in(table, Path::new("/run/pw/other.sock")));
        assert!(!listening_in(table, Path::new("/run/pw/none.sock")));
    }

    #[test]
    fn systemd_is_told_on_its_socket() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        send_notify(path.as_os_str(), b"READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        // An abstract address (`@name`) is sent to as such.
        let name = format!("poortwachter-test-{}", std::process::id());
        let addr = <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        send_notify(std::ffi::OsStr::new(&format!("@{name}")), b"MAINPID=1\n").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=1\n");
    }
}
