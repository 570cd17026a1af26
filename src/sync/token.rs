//! The admin store's bearer token, read from a file (a mounted secret) or an
//! environment variable, never from the main config in clear text. Read at
//! start and on reload, so a rotated secret is picked up without a restart.

use std::path::PathBuf;

use super::error::SourceError;
use crate::secret::{self, SecretError};

/// Where the bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file holding the token; one trailing newline is stripped.
    File(PathBuf),
    /// An environment variable holding the token; one trailing newline is
    /// stripped as well (secrets injected from files often carry one).
    Env(String),
}

impl TokenSource {
    /// Read the token now.
    ///
    /// Errors name the file or variable and what is wrong, never the value.
    /// A token must be non-empty visible ASCII (RFC 6750 `b64token` is a
    /// subset): a second newline, inner spaces or control characters are
    /// refused here, instead of turning into a confusing 401 or a header
    /// error on every poll.
    pub fn read(&self) -> Result<String, SourceError> {
        match self {
            TokenSource::File(path) => {
                let fail = |reason: String| SourceError::TokenFile {
                    path: path.clone(),
                    reason,
                };
                let raw = secret::read(path).map_err(|e| match e {
                    SecretError::Read(io) => fail(io.to_string()),
                    other => fail(other.to_string()),
                })?;
                let text = String::from_utf8(raw).map_err(|_| fail("is not UTF-8 text".into()))?;
                check_token(text).map_err(|r| fail(r.into()))
            }
            TokenSource::Env(var) => {
                let fail = |reason: String| SourceError::TokenEnv {
                    var: var.clone(),
                    reason,
                };
                let text = std::env::var(var).map_err(|e| match e {
                    std::env::VarError::NotPresent => fail("is not set".into()),
                    std::env::VarError::NotUnicode(_) => fail("is not valid UTF-8".into()),
                })?;
                let len = secret::strip_one_newline(text.as_bytes()).len();
                check_token(text[..len].to_owned()).map_err(|r| fail(r.into()))
            }
        }
    }
}

fn check_token(token: String) -> Result<String, &'static str> {
    if token.is_empty() {
        return Err("is empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains whitespace, control or non-ASCII characters \
             (only one trailing newline is stripped)");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(bytes).expect("write");
        f
    }

    #[test]
    fn file_token_strips_exactly_one_newline() {
        let f = file_with(b"s3cr3t-token\n");
        let t = TokenSource::File(f.path().to_path_buf());
        assert_eq!(t.read().expect("token"), "s3cr3t-token");

        let f = file_with(b"s3cr3t-token\r\n");
        let t = TokenSource::File(f.path().to_path_buf());
        assert_eq!(t.read().expect("token"), "s3cr3t-token");

        let f = file_with(b"s3cr3t-token");
        let t = TokenSource::File(f.path().to_path_buf());
        assert_eq!(t.read().expect("token"), "s3cr3t-token");
    }

    #[test]
    fn file_token_with_two_newlines_is_refused_without_showing_it() {
        let f = file_with(b"s3cr3t-token\n\n");
        let err = TokenSource::File(f.path().to_path_buf())
            .read()
            .expect_err("two newlines");
        let msg = err.to_string();
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn empty_file_token_names_the_file() {
        for content in [&b""[..], b"\n"] {
            let f = file_with(content);
            let err = TokenSource::File(f.path().to_path_buf())
                .read()
                .expect_err("empty");
            let msg = err.to_string();
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
            assert!(msg.contains("is empty"), "{msg}");
        }
    }

    #[test]
    fn missing_file_names_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("no-such-token");
        let err = TokenSource::File(path.clone()).read().expect_err("missing");
        assert!(matches!(err, SourceError::TokenFile { .. }));
        assert!(err.to_string().contains("no-such-token"), "{err}");
    }

    #[test]
    fn inner_space_is_refused() {
        let f = file_with(b"abc def\n");
        assert!(TokenSource::File(f.path().to_path_buf()).read().is_err());
    }

    // Environment variables are process-wide: each test uses its own name so
    // tests running in parallel cannot see each other's values.
    #[test]
    fn env_token_is_read_and_stripped() {
        let var = "POORTWACHTER_TEST_TOKEN_SET";
        std::env::set_var(var, "env-token-123\n");
        let got = TokenSource::Env(var.into()).read();
        std::env::remove_var(var);
        assert_eq!(got.expect("token"), "env-token-123");
    }

    #[test]
    fn env_token_unset_or_empty_names_the_variable() {
        let var = "POORTWACHTER_TEST_TOKEN_UNSET";
        std::env::remove_var(var);
        let err = TokenSource::Env(var.into()).read().expect_err("unset");
        assert!(err.to_string().contains(var), "{err}");
        assert!(err.to_string().contains("not set"), "{err}");

        let var = "POORTWACHTER_TEST_TOKEN_EMPTY";
        std::env::set_var(var, "");
        let got = TokenSource::Env(var.into()).read();
        std::env::remove_var(var);
        let err = got.expect_err("empty");
        assert!(err.to_string().contains(var), "{err}");
        assert!(err.to_string().contains("is empty"), "{err}");
    }
}
