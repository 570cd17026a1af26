//! The `[site_binding]` section as written, and the checked settings together with the keys
//! read from their files while loading. The rules themselves are `site_binding`'s
//! ([`TokenSource::from_settings`], [`KeyConfig::from_settings`], [`Verifier::load`]).

use crate::setting::SettingError;
use crate::site_binding::{KeyConfig, KeyError, Missing, SiteBindingConfig, TokenSource, Verifier};
use serde::Deserialize;
use std::sync::Arc;

/// `[site_binding]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteBindingFile {
    pub cookie: Option<String>,
    pub header: Option<String>,
    pub claim: Option<String>,
    pub missing: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    #[serde(default)]
    pub key: Vec<SiteKeyFile>,
}

/// One `[[site_binding.key]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteKeyFile {
    pub kid: Option<String>,
    pub alg: String,
    pub secret_file: Option<String>,
    pub public_key_file: Option<String>,
}

/// The validated `[site_binding]` settings (`.0`) and the keys read from their files when
/// the configuration was loaded, so the gate starts with exactly the keys `check` accepted.
/// After that, key files are re-read only when they change.
#[derive(Clone)]
pub struct SiteBinding(pub Arc<SiteBindingConfig>, Arc<Verifier>);

impl SiteBinding {
    /// Read the keys of `settings` now; unusable keys refuse the configuration.
    pub fn load(settings: SiteBindingConfig) -> Result<SiteBinding, KeyError> {
        let keys = Verifier::load(&settings)?;
        Ok(SiteBinding(Arc::new(settings), Arc::new(keys)))
    }

    /// The keys read when the configuration was loaded.
    pub fn keys(&self) -> &Arc<Verifier> {
        &self.1
    }
}

impl std::fmt::Debug for SiteBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteBinding")
            .field("claim", &self.0.claim)
            .field("missing", &self.0.missing.as_str())
            .field("keys", &self.0.keys.len())
            .finish()
    }
}

impl TryFrom<&SiteBindingFile> for SiteBindingConfig {
    type Error = SettingError;

    fn try_from(b: &SiteBindingFile) -> Result<SiteBindingConfig, SettingError> {
        let source = TokenSource::from_settings(b.cookie.as_deref(), b.header.as_deref())?;
        let claim = b.claim.clone().unwrap_or_else(|| "site".to_string());
        if claim.is_empty() {
            return Err(SettingError::invalid(
                "site_binding.claim",
                "\"\"",
                "expected a claim name",
            ));
        }
        let missing = match &b.missing {
            None => Missing::Block,
            Some(m) => Missing::from_setting("site_binding.missing", m)?,
        };
        for (key, v) in [
            ("site_binding.issuer", &b.issuer),
            ("site_binding.audience", &b.audience),
        ] {
            if v.as_deref() == Some("") {
                return Err(SettingError::invalid(
                    key,
                    "\"\"",
                    "leave it out, or give the expected value",
                ));
            }
        }
        if b.key.is_empty() {
            return Err(SettingError::missing(
                "site_binding.key",
                "at least one [[site_binding.key]] is needed to verify site claims",
            ));
        }
        let keys = b
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| {
                KeyConfig::from_settings(
                    i,
                    k.kid.as_deref(),
                    &k.alg,
                    k.secret_file.as_deref(),
                    k.public_key_file.as_deref(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(SiteBindingConfig {
            source,
            claim,
            missing,
            issuer: b.issuer.clone(),
            audience: b.audience.clone(),
            keys,
        })
    }
}
