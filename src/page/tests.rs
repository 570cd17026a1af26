//! Every page variant renders, in both languages and both formats, with the dynamic parts.

use super::*;
use std::collections::BTreeMap;

fn pages() -> Pages {
    let mut contact = BTreeMap::new();
    contact.insert(String::new(), "de <servicedesk> & co".to_string());
    contact.insert("en".to_string(), "the desk".to_string());
    Pages::new(&BlockPageConfig {
        support_contact: contact,
        admin_store_name: "Basis<poort>".into(),
    })
    .expect("shipped templates and texts are valid")
}

fn req<'a>(
    kind: PageKind,
    ip: Option<IpAddr>,
    id: &'a RequestId,
    accept: Option<&'a [u8]>,
    lang: Option<&'a [u8]>,
) -> PageRequest<'a> {
    PageRequest {
        kind,
        status: 403,
        reason: "not_registered",
        client_ip: ip,
        request_id: id,
        accept,
        accept_language: lang,
        registered: None,
    }
}

fn html(r: &Rendered) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn every_variant_renders_without_leftover_placeholders() {
    let p = pages();
    let id = RequestId::from_u64(0xabcdef);
    let ips: [Option<IpAddr>; 3] = [
        Some("192.0.2.1".parse().unwrap()),
        Some("2001:db8::1".parse().unwrap()),
        None,
    ];
    for kind in PageKind::ALL {
        for ip in ips {
            for lang in [&b"nl"[..], b"en"] {
                let r = p.render(&req(kind, ip, &id, None, Some(lang)));
                let body = html(&r);
                assert!(!body.contains("{{"), "{kind:?} {ip:?}: {body}");
                assert!(body.contains("0000000000abcdef"));
                assert!(body.contains("HTTP 403"));
                match ip {
                    Some(ip) => assert!(
                        body.contains(&format!("<code>{ip}</code>")) || kind != PageKind::Location
                    ),
                    None => assert!(
                        body.contains("niet vast te stellen")
                            || body.contains("could not be determined")
                    ),
                }
            }
        }
    }
}

#[test]
fn configured_texts_are_escaped() {
    let p = pages();
    let id = RequestId::from_u64(1);
    let r = p.render(&req(
        PageKind::Location,
        Some("192.0.2.1".parse().unwrap()),
        &id,
        None,
        None,
    ));
    let body = html(&r);
    assert!(body.contains("de &lt;servicedesk&gt; &amp; co"));
    assert!(body.contains("Basis&lt;poort&gt;"));
    assert!(!body.contains("<servicedesk>"));
    assert_eq!(r.language, "nl");
    let r = p.render(&req(
        PageKind::Location,
        Some("192.0.2.1".parse().unwrap()),
        &id,
        None,
        Some(b"en"),
    ));
    assert!(html(&r).contains("the desk"));
}

#[test]
fn ipv6_clients_are_told_the_prefix() {
    let p = pages();
    let id = RequestId::from_u64(1);
    let ip: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
    let r = p.render(&req(PageKind::Location, Some(ip), &id, None, None));
    assert!(html(&r).contains("<code>2001:db8:1:2::/64</code>"));
    let r = p.render(&req(
        PageKind::Location,
        Some(ip),
        &id,
        Some(b"application/json"),
        None,
    ));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["register"], "2001:db8:1:2::/64");
    assert_eq!(ipv6_prefix("192.0.2.1".parse().unwrap()), None);
}

#[test]
fn json_form_carries_the_contract_fields() {
    let p = pages();
    let id = RequestId::from_u64(7);
    let r = p.render(&req(
        PageKind::Unresolvable,
        None,
        &id,
        Some(b"application/json"),
        Some(b"en"),
    ));
    assert_eq!(r.content_type, "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["client_ip"].is_null());
    assert_eq!(v["reason"], "not_registered");
    assert_eq!(v["request_id"], "0000000000000007");
    assert_eq!(v["status"], 403);
    assert_eq!(
        v["title"],
        "We could not determine where this connection comes from"
    );
    assert!(v.get("register").is_none());
}

#[test]
fn reasons_map_to_pages() {
    assert_eq!(
        PageKind::for_reason(Reason::NotRegistered),
        PageKind::Location
    );
    assert_eq!(
        PageKind::for_reason(Reason::OverrideDeny),
        PageKind::Location
    );
    assert_eq!(PageKind::for_reason(Reason::OtherSite), PageKind::OtherSite);
    assert_eq!(PageKind::for_reason(Reason::ClaimExpired), PageKind::Claim);
    assert_eq!(
        PageKind::for_reason(Reason::UnresolvableClientIp),
        PageKind::Unresolvable
    );
    assert_eq!(
        PageKind::for_reason(Reason::RouteBlocked),
        PageKind::RouteBlocked
    );
    assert_eq!(
        PageKind::for_reason(Reason::NoAllowlist),
        PageKind::NoAllowlist
    );
}

#[test]
fn addresses_and_numbers_are_written_as_display_writes_them() {
    for ip in [
        "0.0.0.0",
        "9.10.99.100",
        "203.0.113.255",
        "2001:db8::7",
        "::ffff:192.0.2.1",
    ] {
        let ip: std::net::IpAddr = ip.parse().expect("address");
        let mut out = String::new();
        super::push_ip(&mut out, ip);
        assert_eq!(out, ip.to_string());
    }
    for n in [0, 7, 10, 403, 503, 65535, u32::MAX] {
        let mut out = String::new();
        super::push_decimal(&mut out, n);
        assert_eq!(out, n.to_string());
    }
}
