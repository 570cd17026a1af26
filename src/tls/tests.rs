use super::*;
use std::path::Path;

/// A self-signed certificate for `names`, valid until `not_after`, written to `dir` as
/// `<stem>.pem` and `<stem>.key`.
fn write_pair(dir: &Path, stem: &str, names: &[&str], not_after: i64) -> (PathBuf, PathBuf) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn source(
    i: usize,
    cert_file: &Path,
    key_file: &Path,
    names: Option<&[&str]>,
) -> CertificateSource {
    let (cert_key, key_key) = if i == 0 {
        (
            "proxy.tls_cert_file".to_string(),
            "proxy.tls_key_file".to_string(),
        )
    } else {
        (
            format!("proxy.certificate[{}].cert_file", i - 1),
            format!("proxy.certificate[{}].key_file", i - 1),
        )
    };
    CertificateSource {
        cert_key,
        key_key,
        cert_file: cert_file.to_path_buf(),
        key_file: key_file.to_path_buf(),
        names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
    }
}

const EXPIRES: i64 = 1_900_000_000;

/// Three certificates: the default (toets.example.nl), one for an exact name and one with
/// a wildcard.
fn three(dir: &Path) -> Certificates {
    let (c0, k0) = write_pair(dir, "default", &["toets.example.nl"], EXPIRES);
    let (c1, k1) = write_pair(dir, "portal", &["portal.example.nl"], EXPIRES + 1);
    let (c2, k2) = write_pair(dir, "scholen", &["*.scholen.example.nl"], EXPIRES + 2);
    Certificates::load(&[
        source(0, &c0, &k0, None),
        source(1, &c1, &k1, None),
        source(2, &c2, &k2, None),
    ])
    .expect("three good pairs")
}

#[test]
fn the_name_a_client_asks_for_chooses_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = three(dir.path());
    let chosen = |sni: Option<&str>| certs.choose(sni).name.as_str();
    assert_eq!(chosen(Some("portal.example.nl")), "portal.example.nl");
    // Names compare without case and without the root's trailing dot.
    assert_eq!(chosen(Some("PORTAL.Example.NL.")), "portal.example.nl");
    assert_eq!(chosen(Some("toets.example.nl")), "toets.example.nl");
    // A wildcard covers exactly one label.
    assert_eq!(chosen(Some("a.scholen.example.nl")), "*.scholen.example.nl");
    assert_eq!(chosen(Some("scholen.example.nl")), "toets.example.nl");
    assert_eq!(chosen(Some("a.b.scholen.example.nl")), "toets.example.nl");
    // No name, or a name nobody has: the default.
    assert_eq!(chosen(None), "toets.example.nl");
    assert_eq!(chosen(Some("elders.example.com")), "toets.example.nl");
}

#[test]
fn an_exact_name_wins_over_a_wildcard() {
    let dir = tempfile::tempdir().unwrap();
    let (c0, k0) = write_pair(dir.path(), "default", &["*.example.nl"], EXPIRES);
    let (c1, k1) = write_pair(dir.path(), "portal", &["portal.example.nl"], EXPIRES);
    let certs =
        Certificates::load(&[source(0, &c0, &k0, None), source(1, &c1, &k1, None)]).unwrap();
    assert_eq!(
        certs.choose(Some("portal.example.nl")).name,
        "portal.example.nl"
    );
    assert_eq!(certs.choose(Some("toets.example.nl")).name, "*.example.nl");
}

#[test]
fn names_and_expiry_come_from_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = three(dir.path());
    let list = certs.list();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].names, ["toets.example.nl"]);
    assert_eq!(list[0].not_after, EXPIRES);
    assert_eq!(list[1].not_after, EXPIRES + 1);
    assert_eq!(list[2].names, ["*.scholen.example.nl"]);
    assert_eq!(list[2].cert_file, dir.path().join("scholen.pem"));
}

#[test]
fn written_names_replace_the_certificates_own() {
    let dir = tempfile::tempdir().unwrap();
    let (c0, k0) = write_pair(dir.path(), "default", &["toets.example.nl"], EXPIRES);
    let (c1, k1) = write_pair(
        dir.path(),
        "multi",
        &["a.example.nl", "b.example.nl"],
        EXPIRES,
    );
    let certs = Certificates::load(&[
        source(0, &c0, &k0, None),
        source(1, &c1, &k1, Some(&["B.example.nl"])),
    ])
    .unwrap();
    assert_eq!(certs.choose(Some("b.example.nl")).name, "b.example.nl");
    assert_eq!(certs.choose(Some("a.example.nl")).name, "toets.example.nl");
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let (c0, _) = write_pair(dir.path(), "one", &["toets.example.nl"], EXPIRES);
    let (_, k1) = write_pair(dir.path(), "two", &["toets.example.nl"], EXPIRES);
    let err = Certificates::load(&[source(0, &c0, &k1, None)]).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("`proxy.tls_key_file` = "), "{text}");
    assert!(
        text.contains("two.key") && text.contains("not the key of") && text.contains("one.pem"),
        "{text}"
    );
}

#[test]
fn unusable_files_are_refused_with_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = write_pair(dir.path(), "good", &["toets.example.nl"], EXPIRES);
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    let cases: [(CertificateSource, &str, &str); 5] = [
        (
            source(0, &missing, &k, None),
            "proxy.tls_cert_file",
            "cannot read",
        ),
        (
            source(0, &empty, &k, None),
            "proxy.tls_cert_file",
            "no CERTIFICATE",
        ),
        (
            source(0, &garbage, &k, None),
            "proxy.tls_cert_file",
            "not a PEM certificate chain",
        ),
        // A certificate where the key should be.
        (
            source(0, &c, &c, None),
            "proxy.tls_key_file",
            "no usable PRIVATE KEY",
        ),
        (
            source(0, &c, &empty, None),
            "proxy.tls_key_file",
            "no usable PRIVATE KEY",
        ),
    ];
    for (s, key, why) in cases {
        let text = Certificates::load(&[s]).unwrap_err().to_string();
        assert!(text.starts_with(&format!("`{key}` = ")), "{text}");
        assert!(text.contains(why), "{text}");
    }
}

#[test]
fn one_name_for_two_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (c0, k0) = write_pair(dir.path(), "default", &["toets.example.nl"], EXPIRES);
    let (c1, k1) = write_pair(dir.path(), "a", &["portal.example.nl"], EXPIRES);
    let (c2, k2) = write_pair(dir.path(), "b", &["portal.example.nl"], EXPIRES);
    let err = Certificates::load(&[
        source(0, &c0, &k0, None),
        source(1, &c1, &k1, None),
        source(2, &c2, &k2, None),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "`proxy.certificate[1].cert_file`: the name \"portal.example.nl\" is also served by \
         `proxy.certificate[0].cert_file`; each name has one certificate"
    );
}

#[test]
fn a_certificate_beside_the_default_needs_names() {
    let dir = tempfile::tempdir().unwrap();
    let (c0, k0) = write_pair(dir.path(), "default", &[], EXPIRES);
    let (c1, k1) = write_pair(dir.path(), "other", &[], EXPIRES);
    let certs = Certificates::load(&[source(0, &c0, &k0, None)]).expect("default without names");
    assert_eq!(certs.list()[0].name, "default");
    let err = Certificates::load(&[source(0, &c0, &k0, None), source(1, &c1, &k1, None)])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("`proxy.certificate[0].cert_file` = "),
        "{err}"
    );
    assert!(err.contains("set names"), "{err}");
}

#[test]
fn names_are_dns_names_or_one_leading_wildcard() {
    for good in [
        "toets.example.nl",
        "*.example.nl",
        "a-b.example.nl",
        "localhost",
    ] {
        assert_eq!(check_name(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "*",
        "a.*.example.nl",
        "-a.example.nl",
        "a..nl",
        "toets.example.nl:443",
        "é.nl",
    ] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_resolver_serves_nothing_until_a_set_is_stored_and_then_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = CertResolver::default();
    assert!(resolver.load().is_none());
    let first = Arc::new(three(dir.path()));
    resolver.store(Some(first.clone()));
    assert!(Arc::ptr_eq(&resolver.load().unwrap(), &first));
    let second = Arc::new(three(dir.path()));
    resolver.store(Some(second.clone()));
    assert!(Arc::ptr_eq(&resolver.load().unwrap(), &second));
}
