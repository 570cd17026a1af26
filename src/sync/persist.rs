//! Last-known-good on disk: every accepted document is written atomically so
//! that a crash or power loss leaves either the old file or the new one, never
//! a mix, and a restart with the admin store down can still serve.
//!
//! Blocking `std::fs` on purpose (fsync has no async form anyway); call from
//! `tokio::task::spawn_blocking` on the runtime.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Replace `path` with `bytes` atomically: write a temp file in the same
/// directory (same filesystem, so the rename is atomic), fsync it, rename it
/// over the target, then fsync the directory so the rename itself survives a
/// crash. Creates the parent directory when missing. On error the temp file
/// is removed and the old target, if any, is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;

    let (tmp_path, mut file) = create_temp(&dir, name)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp_path, path)
        });
    if let Err(e) = written {
        // Best effort: the error that matters is the one we return.
        let _ = fs::remove_file(&tmp_path);
        return Err(e);
    }
    sync_dir(&dir)
}

/// The last good document, or `None` when none was ever written.
pub fn read_last_good(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new temp file `.NAME.tmp-PID-N-NANOS` next to the target. `create_new`
/// (O_EXCL) guarantees we never write into someone else's file; the pid and a
/// counter keep two writers (two threads, or two processes on a shared
/// volume) apart, so each rename moves a complete file.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last_err = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{n}-{nanos}", std::process::id()));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no unique temp file name")))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for fsync on other platforms.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("allowlist.json");
        write_atomic(&path, b"{\"v\":1}").expect("first write");
        assert_eq!(fs::read(&path).expect("read"), b"{\"v\":1}");
        write_atomic(&path, b"{\"v\":2, \"longer\": true}").expect("second write");
        assert_eq!(
            fs::read(&path).expect("read"),
            b"{\"v\":2, \"longer\": true}"
        );
        write_atomic(&path, b"").expect("empty write");
        assert_eq!(fs::read(&path).expect("read"), b"");
        assert_eq!(names_in(dir.path()), vec!["allowlist.json".to_string()]);
    }

    #[test]
    fn creates_missing_parent_directories() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("var/lib/poortwachter/allowlist.json");
        write_atomic(&path, b"doc").expect("write");
        assert_eq!(read_last_good(&path).expect("read"), Some(b"doc".to_vec()));
    }

    #[test]
    fn read_last_good_is_none_when_absent() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(
            read_last_good(&dir.path().join("nothing.json")).expect("read"),
            None
        );
    }

    #[test]
    fn read_last_good_reports_other_errors() {
        // A directory where the file should be is an error, not "absent".
        let dir = tempfile::tempdir().expect("dir");
        assert!(read_last_good(dir.path()).is_err());
    }

    #[test]
    fn failed_rename_keeps_the_old_target_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().expect("dir");
        // A non-empty directory in the target's place: rename must fail.
        let target = dir.path().join("allowlist.json");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("keep"), b"x").expect("write");
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(
            names_in(dir.path()),
            vec!["allowlist.json".to_string()],
            "temp file left behind"
        );
        assert_eq!(names_in(&target), vec!["keep".to_string()]);
    }

    #[test]
    fn concurrent_writers_never_leave_a_mixed_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("allowlist.json");
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 256 * 1024]).collect();
        std::thread::scope(|s| {
            for p in &payloads {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..5 {
                        write_atomic(path, p).expect("write");
                    }
                });
            }
        });
        let got = fs::read(&path).expect("read");
        assert!(payloads.contains(&got), "target is a mix of writers");
        assert_eq!(names_in(dir.path()), vec!["allowlist.json".to_string()]);
    }

    #[test]
    fn a_path_without_file_name_is_refused() {
        assert_eq!(
            write_atomic(Path::new("/"), b"x").expect_err("root").kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
