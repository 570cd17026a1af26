//! Filesystem notifications for a file source. The parent directory is watched, not the
//! file, so an atomic rename (a new inode) is seen as well as an in-place write.

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;
use tokio::sync::mpsc;

/// Watches `file`; every event that names it sends `()`. Keep the watcher alive.
pub fn watch_file(
    file: &Path,
) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let name = file.file_name().map(|n| n.to_os_string());
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        // Reads (ours included: every sync reads the file) are no change; reacting to them
        // would make the gate re-read its own file in a loop.
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event.need_rescan()
            || event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            // The receiver is gone only when the sync loop stopped.
            let _closed = tx.send(()).is_err();
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}
