//! Secret files (mounted secrets such as tokens and keys): read with a size bound, exactly
//! one trailing line ending stripped (editors and `echo` add one; more is probably a
//! mistake), and empty refused. Every secret the gate holds is read here.

use std::io::Read;
use std::path::Path;

/// Largest secret file read; anything bigger is a wrong path (a log, a device), not a secret.
pub const MAX_FILE_LEN: u64 = 64 * 1024;

/// Why a secret file cannot be used. The message never shows the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("larger than {MAX_FILE_LEN} bytes")]
    TooLarge,
    #[error("is empty")]
    Empty,
}

/// The secret in the file at `path`, one trailing line ending stripped.
pub fn read(path: &Path) -> Result<Vec<u8>, SecretError> {
    let mut bytes = read_bounded(path)?;
    let len = parse(&bytes)?.len();
    bytes.truncate(len);
    Ok(bytes)
}

/// The file's bytes as they are, refused above [`MAX_FILE_LEN`] ([`SecretError::Read`] or
/// [`SecretError::TooLarge`]); for key files that keep their line endings (PEM) and for
/// secrets parsed later with [`parse`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, SecretError> {
    let file = std::fs::File::open(path).map_err(SecretError::Read)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(SecretError::Read)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(SecretError::TooLarge);
    }
    Ok(bytes)
}

/// The secret in a file's bytes: one trailing line ending stripped, empty refused.
pub fn parse(bytes: &[u8]) -> Result<&[u8], SecretError> {
    match strip_one_newline(bytes) {
        [] => Err(SecretError::Empty),
        secret => Ok(secret),
    }
}

/// `bytes` minus exactly one trailing `\n` or `\r\n`.
pub fn strip_one_newline(bytes: &[u8]) -> &[u8] {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), bytes).expect("write");
        f
    }

    #[test]
    fn exactly_one_line_ending_is_stripped() {
        for (content, secret) in [
            (&b"s3cr3t\n"[..], &b"s3cr3t"[..]),
            (b"s3cr3t\r\n", b"s3cr3t"),
            (b"s3cr3t", b"s3cr3t"),
            (b"s3cr3t\n\n", b"s3cr3t\n"),
            (b"s3cr3t\r", b"s3cr3t\r"),
        ] {
            assert_eq!(read(file_with(content).path()).unwrap(), secret);
        }
    }

    #[test]
    fn empty_missing_and_oversized_files_are_refused() {
        for content in [&b""[..], b"\n", b"\r\n"] {
            let e = read(file_with(content).path()).unwrap_err();
            assert!(matches!(e, SecretError::Empty), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let e = read(&dir.path().join("absent")).unwrap_err();
        assert!(e.to_string().starts_with("cannot read: "), "{e}");
        let big = file_with(&vec![b'k'; MAX_FILE_LEN as usize + 1]);
        assert!(matches!(read(big.path()), Err(SecretError::TooLarge)));
        let at_limit = file_with(&vec![b'k'; MAX_FILE_LEN as usize]);
        assert_eq!(read(at_limit.path()).unwrap().len(), MAX_FILE_LEN as usize);
    }
}
