//! The certificates of the TLS listeners: read and checked from their PEM files (the key must
//! belong to the certificate), indexed by the names they serve, and chosen per handshake by
//! the name the client asks for (SNI). The set in force sits behind one `ArcSwap`, so a
//! renewed certificate goes in force for the next handshake without a restart; a pair that
//! cannot be used leaves the set in force untouched.

use arc_swap::ArcSwapOption;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, ResolvesServerCert};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where one certificate and its key are configured: the default pair (`[proxy]
/// tls_cert_file` / `tls_key_file`) or a `[[proxy.certificate]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSource {
    /// The key that names the certificate file, e.g. `proxy.certificate[1].cert_file`.
    pub cert_key: String,
    /// The key that names the private key file.
    pub key_key: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The names it serves when written; else the DNS names of the certificate itself.
    pub names: Option<Vec<String>>,
}

/// Why a certificate set was not put in force.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{key}` = {file:?}: cannot read: {source}")]
    Read {
        key: String,
        file: String,
        source: std::io::Error,
    },
    #[error("`{key}` = {file:?}: {message}")]
    Invalid {
        key: String,
        file: String,
        message: String,
    },
    #[error(
        "`{key}`: the name {name:?} is also served by `{other}`; each name has one certificate"
    )]
    DuplicateName {
        key: String,
        name: String,
        other: String,
    },
}

/// One certificate in force, with what operations need to know about it.
#[derive(Debug)]
pub struct Certificate {
    /// How metrics and `/status` name it: its first name, or `default`.
    pub name: String,
    pub cert_file: PathBuf,
    /// The server names (SNI) it is chosen for; `*.` names match one label.
    pub names: Vec<String>,
    /// The end of its validity (Unix seconds).
    pub not_after: i64,
    key: Arc<CertifiedKey>,
}

/// The certificates of the TLS listeners: the first is the default, served to clients that
/// send no name or a name no certificate has.
#[derive(Debug)]
pub struct Certificates {
    list: Vec<Certificate>,
    exact: HashMap<String, usize>,
    /// `*.example.nl` under `example.nl`.
    wildcard: HashMap<String, usize>,
}

impl Certificates {
    /// Read every source (the first is the default) and index them by name.
    pub fn load(sources: &[CertificateSource]) -> Result<Certificates, TlsError> {
        let list = sources
            .iter()
            .enumerate()
            .map(|(i, s)| read(s, i == 0))
            .collect::<Result<Vec<_>, _>>()?;
        Certificates::index(list, sources)
    }

    fn index(list: Vec<Certificate>, sources: &[CertificateSource]) -> Result<Self, TlsError> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, c) in list.iter().enumerate() {
            for name in &c.names {
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut wildcard, parent.to_string()),
                    None => (&mut exact, name.clone()),
                };
                if let Some(other) = map.insert(key, i) {
                    if other != i {
                        return Err(TlsError::DuplicateName {
                            key: sources[i].cert_key.clone(),
                            name: name.clone(),
                            other: sources[other].cert_key.clone(),
                        });
                    }
                }
            }
        }
        Ok(Certificates {
            list,
            exact,
            wildcard,
        })
    }

    /// The certificate for the name a client asked for: the one with that exact name, else
    /// the one with a wildcard over it, else the default.
    pub fn choose(&self, server_name: Option<&str>) -> &Certificate {
        let i = server_name
            .map(normalise)
            .and_then(|name| {
                self.exact.get(&name).copied().or_else(|| {
                    let (_, parent) = name.split_once('.')?;
                    self.wildcard.get(parent).copied()
                })
            })
            .unwrap_or(0);
        &self.list[i]
    }

    /// All of them, the default first.
    pub fn list(&self) -> &[Certificate] {
        &self.list
    }
}

/// Names compare without case and without a trailing dot.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn invalid(key: &str, file: &std::path::Path, message: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        key: key.to_string(),
        file: file.display().to_string(),
        message: message.into(),
    }
}

/// A PEM file, at most 1 MiB (a certificate chain is a few kilobytes).
fn read_pem(key: &str, file: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    const MAX: u64 = 1024 * 1024;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX + 1).read_to_end(&mut bytes))
        .map_err(|source| TlsError::Read {
            key: key.to_string(),
            file: file.display().to_string(),
            source,
        })?;
    if bytes.len() as u64 > MAX {
        return Err(invalid(
            key,
            file,
            "larger than 1 MiB; not a certificate file",
        ));
    }
    Ok(bytes)
}

/// Read one certificate chain and its key, and check that they belong together.
fn read(s: &CertificateSource, default: bool) -> Result<Certificate, TlsError> {
    let chain_pem = read_pem(&s.cert_key, &s.cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                &s.cert_key,
                &s.cert_file,
                format!("not a PEM certificate chain: {e}"),
            )
        })?;
    let Some(leaf) = chain.first() else {
        return Err(invalid(
            &s.cert_key,
            &s.cert_file,
            "no CERTIFICATE in this PEM file",
        ));
    };
    let key_pem = read_pem(&s.key_key, &s.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        invalid(
            &s.key_key,
            &s.key_file,
            format!("no usable PRIVATE KEY: {e}"),
        )
    })?;
    let (cert_names, not_after) = leaf_facts(leaf).map_err(|e| {
        invalid(
            &s.cert_key,
            &s.cert_file,
            format!("the first certificate cannot be parsed: {e}"),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain.clone(), key, &provider).map_err(|e| {
        invalid(
            &s.key_key,
            &s.key_file,
            format!("not the key of {} ({e})", s.cert_file.display()),
        )
    })?;
    let names = match &s.names {
        Some(names) => names.iter().map(|n| normalise(n)).collect(),
        None => cert_names,
    };
    if names.is_empty() && !default {
        return Err(invalid(
            &s.cert_key,
            &s.cert_file,
            "the certificate has no DNS names: set names = [...] for it",
        ));
    }
    Ok(Certificate {
        name: names
            .first()
            .cloned()
            .unwrap_or_else(|| "default".to_string()),
        cert_file: s.cert_file.clone(),
        names,
        not_after,
        key: Arc::new(certified),
    })
}

/// The DNS names (subjectAltName) and the end of validity of a certificate.
fn leaf_facts(der: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(normalise(d));
            }
        }
    }
    Ok((names, cert.validity().not_after.timestamp()))
}

/// A name as `names = [...]` may hold it: a DNS name, or `*.` and a DNS name.
pub fn check_name(name: &str) -> Result<(), String> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(
            "not a DNS name (letters, digits and '-' in labels, optionally starting with \"*.\")"
                .to_string(),
        );
    }
    Ok(())
}

/// The certificates in force, as rustls asks for them per handshake. Empty until the first
/// set is stored: a handshake then fails, it never gets another certificate.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: ArcSwapOption<Certificates>,
}

impl CertResolver {
    pub fn store(&self, certificates: Option<Arc<Certificates>>) {
        self.current.store(certificates);
    }

    pub fn load(&self) -> Option<Arc<Certificates>> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.current.load();
        let certs = certs.as_ref()?;
        Some(certs.choose(hello.server_name()).key.clone())
    }
}

impl From<TlsError> for crate::setting::SettingError {
    fn from(e: TlsError) -> Self {
        use crate::setting::SettingError;
        match e {
            TlsError::Read { key, file, source } => {
                SettingError::invalid(&key, format!("{file:?}"), format!("cannot read: {source}"))
            }
            TlsError::Invalid { key, file, message } => {
                SettingError::invalid(&key, format!("{file:?}"), message)
            }
            TlsError::DuplicateName { key, name, other } => SettingError::invalid(
                &key,
                format!("{name:?}"),
                format!("this name is also served by `{other}`; each name has one certificate"),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
