//! The `[admin]` section: the admin listener and its token, as written and as checked. The
//! token is read from `token_file` here, once per load.

use crate::secret::{self, SecretError};
use crate::setting::{self, SettingError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

/// Shortest admin token accepted.
const MIN_TOKEN_LEN: usize = 16;

/// `[admin]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// The token for protected endpoints, read from `token_file` at load time.
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl AdminConfig {
    /// Loopback-only listeners serve `/status` without a token; anything else needs one.
    pub fn status_needs_token(&self) -> bool {
        !self.listen.ip().is_loopback()
    }
}

impl TryFrom<AdminFile> for AdminConfig {
    type Error = SettingError;

    fn try_from(a: AdminFile) -> Result<AdminConfig, SettingError> {
        let listen =
            setting::socket_addr("admin.listen", a.listen.as_deref().unwrap_or(DEFAULT_ADMIN))?;
        let token_file = a.token_file.map(PathBuf::from);
        let token = token_file.as_deref().map(read_token).transpose()?;
        let cfg = AdminConfig {
            listen,
            token,
            token_file,
        };
        if cfg.status_needs_token() && cfg.token.is_none() {
            return Err(SettingError::missing(
                "admin.token_file",
                format!(
                    "admin.listen = \"{listen}\" is not loopback-only, so /status needs a token"
                ),
            ));
        }
        Ok(cfg)
    }
}

fn read_token(path: &Path) -> Result<String, SettingError> {
    let invalid = |problem: String| {
        SettingError::invalid(
            "admin.token_file",
            format!("{:?}", path.display().to_string()),
            problem,
        )
    };
    let token = match secret::read(path) {
        Ok(t) => String::from_utf8(t)
            .map_err(|_| invalid("cannot read: the token is not UTF-8 text".into()))?,
        // An empty file is refused as too short, below.
        Err(SecretError::Empty) => String::new(),
        Err(e) => return Err(invalid(e.to_string())),
    };
    if token.len() < MIN_TOKEN_LEN {
        return Err(invalid(format!(
            "the token must be at least {MIN_TOKEN_LEN} characters"
        )));
    }
    Ok(token)
}
