//! The pages the gate answers with itself: block pages, the "starting" page and upstream
//! failure pages, in Dutch (default) or English, as HTML or `application/problem+json`.
//!
//! Template and texts live in files beside this module (`templates/`, `texts/`). They are
//! pre-rendered once per language, page kind and address family into static segments, so a
//! request only copies those and inserts the few dynamic values (client IP, IPv6 prefix,
//! request id, status). Values that come from a request are never raw header text: the
//! client IP is the parsed address, formatted by us.

mod config;
mod negotiate;
mod template;

use crate::decision::Reason;
use crate::request_id::RequestId;
use bytes::Bytes;
use ipnet::Ipv6Net;
use std::net::IpAddr;
use template::{Segment, Slot, Texts};

pub use config::{BlockPageConfig, BlockPageFile};
pub use negotiate::Format;
pub use template::PageError;

/// Supported languages; the first is the default.
pub const LANGUAGES: &[&str] = &["nl", "en"];

const TEMPLATE: &str = include_str!("templates/page.html");
const TEXTS: [(&str, &str); 2] = [
    ("nl", include_str!("texts/nl.toml")),
    ("en", include_str!("texts/en.toml")),
];

/// Which page: one per group of reasons that need the same explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Location,
    OtherSite,
    Claim,
    Unresolvable,
    RouteBlocked,
    NoAllowlist,
    Upstream,
    /// A path the gate refuses to judge (encoded separators, dot segments, `//`).
    BadRequest,
    /// A request header larger than `[proxy] max_header_bytes` or with more fields than
    /// `max_header_count` (431): usually cookies that grew too large.
    HeaderTooLarge,
    /// The connection came over its listener's `max_connections` (503): the gate is busy.
    Busy,
    /// The self-check page: the address is registered (for some school; which is not said).
    CheckRegistered,
    /// The self-check page: the address is not registered.
    CheckNotRegistered,
    /// The self-check page: the address cannot be determined.
    CheckUnknown,
    /// The self-check page with a valid site claim: registered for the pupil's own school.
    CheckOwnSchool,
    /// The self-check page with a valid site claim: registered, but for another school.
    CheckOtherSchool,
    /// A request the gate cannot read or will not serve as sent (malformed request line or
    /// header, ambiguous framing, CONNECT, a body that stalls or breaks its framing):
    /// 400, 405, 408 or 505, answered before any decision.
    Malformed,
}

impl PageKind {
    pub(crate) const ALL: [PageKind; 16] = [
        PageKind::Location,
        PageKind::OtherSite,
        PageKind::Claim,
        PageKind::Unresolvable,
        PageKind::RouteBlocked,
        PageKind::NoAllowlist,
        PageKind::Upstream,
        PageKind::BadRequest,
        PageKind::HeaderTooLarge,
        PageKind::Busy,
        PageKind::CheckRegistered,
        PageKind::CheckNotRegistered,
        PageKind::CheckUnknown,
        PageKind::CheckOwnSchool,
        PageKind::CheckOtherSchool,
        PageKind::Malformed,
    ];

    /// The page that explains a block for `reason`.
    pub fn for_reason(reason: Reason) -> PageKind {
        match reason {
            Reason::OtherSite => PageKind::OtherSite,
            Reason::ClaimMissing | Reason::ClaimInvalid | Reason::ClaimExpired => PageKind::Claim,
            Reason::UnresolvableClientIp => PageKind::Unresolvable,
            Reason::RouteBlocked => PageKind::RouteBlocked,
            Reason::NoAllowlist => PageKind::NoAllowlist,
            _ => PageKind::Location,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The page's name in texts files, logs and the `page` metric label.
    pub fn key(self) -> &'static str {
        match self {
            PageKind::Location => "location",
            PageKind::OtherSite => "other_site",
            PageKind::Claim => "claim",
            PageKind::Unresolvable => "unresolvable",
            PageKind::RouteBlocked => "route_blocked",
            PageKind::NoAllowlist => "no_allowlist",
            PageKind::Upstream => "upstream",
            PageKind::BadRequest => "bad_request",
            PageKind::HeaderTooLarge => "header_too_large",
            PageKind::Busy => "busy",
            PageKind::CheckRegistered => "check_registered",
            PageKind::CheckNotRegistered => "check_not_registered",
            PageKind::CheckUnknown => "check_unknown",
            PageKind::CheckOwnSchool => "check_own_school",
            PageKind::CheckOtherSchool => "check_other_school",
            PageKind::Malformed => "malformed_request",
        }
    }
}

/// Address family of the client, which decides what the admin is told to register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
    None,
}

impl Family {
    const ALL: [Family; 3] = [Family::V4, Family::V6, Family::None];
    fn of(ip: Option<IpAddr>) -> Family {
        match ip {
            Some(IpAddr::V4(_)) => Family::V4,
            Some(IpAddr::V6(_)) => Family::V6,
            None => Family::None,
        }
    }
}

struct Variant {
    html: Vec<Segment>,
    html_len: usize,
    title: String,
    detail: String,
}

/// What a request needs to know to be answered with a page.
pub struct PageRequest<'a> {
    pub kind: PageKind,
    pub status: u16,
    pub reason: &'a str,
    pub client_ip: Option<IpAddr>,
    pub request_id: &'a RequestId,
    pub accept: Option<&'a [u8]>,
    pub accept_language: Option<&'a [u8]>,
    /// The self-check page's answer; `None` on every other page.
    pub registered: Option<bool>,
}

/// A rendered page, ready to be written.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub status: u16,
    pub content_type: &'static str,
    pub language: &'static str,
    pub body: Bytes,
}

/// All pre-rendered pages.
pub struct Pages {
    variants: Vec<Variant>,
}

/// Headers every gate page carries: never cached anywhere, varies with negotiation.
pub const CACHE_CONTROL: &str = "no-store, private";
pub const VARY: &str = "Accept, Accept-Language";

impl Pages {
    /// Pre-render every variant. Fails on a broken template or texts file.
    pub fn new(cfg: &BlockPageConfig) -> Result<Pages, PageError> {
        let mut variants = Vec::with_capacity(LANGUAGES.len() * PageKind::ALL.len() * 3);
        for (lang, (file, text)) in LANGUAGES.iter().zip(TEXTS) {
            debug_assert_eq!(*lang, file);
            let file = format!("src/page/texts/{file}.toml");
            let texts: Texts = toml::from_str(text).map_err(|e| PageError::Texts {
                file: file.clone(),
                message: e.to_string(),
            })?;
            let support = cfg
                .support_contact
                .get(*lang)
                .or_else(|| cfg.support_contact.get(""))
                .cloned()
                .unwrap_or_else(|| texts.support_default.clone());
            for kind in PageKind::ALL {
                for family in Family::ALL {
                    let v = template::render_variant(
                        TEMPLATE,
                        &texts,
                        &file,
                        kind.key(),
                        lang,
                        family_key(family),
                        &cfg.admin_store_name,
                        &support,
                    )?;
                    let html_len = v.0.iter().map(Segment::static_len).sum();
                    variants.push(Variant {
                        html: v.0,
                        html_len,
                        title: v.1,
                        detail: v.2,
                    });
                }
            }
        }
        Ok(Pages { variants })
    }

    fn variant(&self, lang: usize, kind: PageKind, family: Family) -> &Variant {
        let f = Family::ALL.iter().position(|x| *x == family).unwrap_or(0);
        &self.variants[(lang * PageKind::ALL.len() + kind.index()) * 3 + f]
    }

    /// Render one page for one request.
    pub fn render(&self, req: &PageRequest<'_>) -> Rendered {
        let lang = negotiate::language(req.accept_language, LANGUAGES);
        let language = LANGUAGES[lang];
        let variant = self.variant(lang, req.kind, Family::of(req.client_ip));
        let prefix = req.client_ip.and_then(ipv6_prefix);
        match negotiate::format(req.accept) {
            Format::Html => {
                let mut out = String::with_capacity(variant.html_len + 96);
                for seg in &variant.html {
                    match seg {
                        Segment::Static(s) => out.push_str(s),
                        Segment::Slot(Slot::ClientIp) => {
                            if let Some(ip) = req.client_ip {
                                push_ip(&mut out, ip);
                            }
                        }
                        Segment::Slot(Slot::Ipv6Prefix) => {
                            if let Some(p) = &prefix {
                                use std::fmt::Write;
                                let _ = write!(out, "{p}");
                            }
                        }
                        Segment::Slot(Slot::RequestId) => out.push_str(req.request_id.as_str()),
                        Segment::Slot(Slot::Status) => {
                            out.push_str("HTTP ");
                            push_decimal(&mut out, u32::from(req.status));
                        }
                    }
                }
                Rendered {
                    status: req.status,
                    content_type: "text/html; charset=utf-8",
                    language,
                    body: Bytes::from(out),
                }
            }
            Format::Json => {
                let mut body = serde_json::json!({
                    "type": format!("tag:poortwachter,2026:{}", req.reason),
                    "title": variant.title,
                    "status": req.status,
                    "detail": variant.detail,
                    "client_ip": req.client_ip.map(|ip| ip.to_string()),
                    "reason": req.reason,
                    "request_id": req.request_id.as_str(),
                });
                if let Some(registered) = req.registered {
                    body["registered"] = registered.into();
                }
                match req.kind {
                    PageKind::CheckOwnSchool => body["own_school"] = true.into(),
                    PageKind::CheckOtherSchool => body["own_school"] = false.into(),
                    _ => {}
                }
                if matches!(
                    req.kind,
                    PageKind::Location
                        | PageKind::OtherSite
                        | PageKind::CheckNotRegistered
                        | PageKind::CheckOtherSchool
                ) {
                    if let Some(ip) = req.client_ip {
                        body["register"] = match prefix {
                            Some(p) => p.to_string().into(),
                            None => ip.to_string().into(),
                        };
                    }
                }
                Rendered {
                    status: req.status,
                    content_type: "application/problem+json",
                    language,
                    body: Bytes::from(body.to_string()),
                }
            }
        }
    }
}

/// An address as `Display` writes it, IPv4 without the formatting machinery (which cost
/// more than the rest of a block page together).
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u32::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn family_key(f: Family) -> &'static str {
    match f {
        Family::V4 => "v4",
        Family::V6 => "v6",
        Family::None => "none",
    }
}

/// The /64 an IPv6 client sits in: the least a school must register, since devices rotate
/// their interface identifier within it.
pub fn ipv6_prefix(ip: IpAddr) -> Option<Ipv6Net> {
    match ip {
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64).ok().map(|n| n.trunc()),
        IpAddr::V4(_) => None,
    }
}

#[cfg(test)]
mod tests;
