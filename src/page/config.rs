//! The `[block_page]` section: what the gate's own pages say besides their texts, as written
//! and as checked.

use super::LANGUAGES;
use crate::setting::SettingError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[block_page]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BlockPageFile {
    /// Who to contact, shown on every page ("de servicedesk: 030 123 45 67").
    pub support_contact: Option<String>,
    /// Per-language overrides of `support_contact`, keyed by language code.
    pub support_contact_by_lang: Option<BTreeMap<String, String>>,
    /// The name of the admin store as school admins know it ("Basispoort").
    pub admin_store_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BlockPageConfig {
    /// By language code; the key `""` is the text for every language without its own.
    pub support_contact: BTreeMap<String, String>,
    pub admin_store_name: String,
}

impl TryFrom<BlockPageFile> for BlockPageConfig {
    type Error = SettingError;

    fn try_from(b: BlockPageFile) -> Result<BlockPageConfig, SettingError> {
        let mut support_contact = BTreeMap::new();
        if let Some(c) = b.support_contact {
            support_contact.insert(String::new(), c);
        }
        for (lang, text) in b.support_contact_by_lang.unwrap_or_default() {
            if !LANGUAGES.contains(&lang.as_str()) {
                return Err(SettingError::invalid(
                    &format!("block_page.support_contact_by_lang.{lang}"),
                    format!("{text:?}"),
                    format!("unknown language; expected one of {LANGUAGES:?}"),
                ));
            }
            support_contact.insert(lang, text);
        }
        Ok(BlockPageConfig {
            support_contact,
            admin_store_name: b
                .admin_store_name
                .unwrap_or_else(|| "Basispoort".to_string()),
        })
    }
}
