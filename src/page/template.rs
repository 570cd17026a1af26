//! Pre-rendering: `{{name}}` placeholders in the template and texts are filled once at
//! start; what is only known per request stays behind as a [`Slot`].

use serde::Deserialize;

/// An error in the page files or in the configured texts.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("page texts {file}: {message}")]
    Texts { file: String, message: String },
    #[error("{file}: unknown placeholder {{{{{name}}}}}")]
    UnknownPlaceholder { file: String, name: String },
    #[error("{file}: unclosed placeholder")]
    Unclosed { file: String },
}

/// A value only known per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    ClientIp,
    Ipv6Prefix,
    RequestId,
    Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Slot(Slot),
}

impl Segment {
    pub fn static_len(&self) -> usize {
        match self {
            Segment::Static(s) => s.len(),
            Segment::Slot(_) => 0,
        }
    }
}

/// One language's texts file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub address_label: String,
    pub address_unknown: String,
    pub admin_heading: String,
    pub request_id_label: String,
    pub support_label: String,
    pub support_default: String,
    pub location: KindTexts,
    pub other_site: KindTexts,
    pub claim: KindTexts,
    pub unresolvable: KindTexts,
    pub route_blocked: KindTexts,
    pub no_allowlist: KindTexts,
    pub upstream: KindTexts,
    pub bad_request: KindTexts,
    pub header_too_large: KindTexts,
    pub busy: KindTexts,
    pub check_registered: KindTexts,
    pub check_not_registered: KindTexts,
    pub check_unknown: KindTexts,
    pub check_own_school: KindTexts,
    pub check_other_school: KindTexts,
    pub malformed_request: KindTexts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindTexts {
    pub title: String,
    pub pupil: String,
    pub admin_v4: Option<Vec<String>>,
    pub admin_v6: Option<Vec<String>>,
    pub admin_none: Option<Vec<String>>,
}

impl Texts {
    fn kind(&self, key: &str) -> &KindTexts {
        match key {
            "location" => &self.location,
            "other_site" => &self.other_site,
            "claim" => &self.claim,
            "unresolvable" => &self.unresolvable,
            "route_blocked" => &self.route_blocked,
            "no_allowlist" => &self.no_allowlist,
            "bad_request" => &self.bad_request,
            "header_too_large" => &self.header_too_large,
            "busy" => &self.busy,
            "check_registered" => &self.check_registered,
            "check_not_registered" => &self.check_not_registered,
            "check_unknown" => &self.check_unknown,
            "check_own_school" => &self.check_own_school,
            "check_other_school" => &self.check_other_school,
            "malformed_request" => &self.malformed_request,
            _ => &self.upstream,
        }
    }
}

impl KindTexts {
    /// The admin steps for a family, falling back to the closest one that exists: a page
    /// kind that can only occur with a known address has no `admin_none`, and vice versa.
    fn admin(&self, family: &str) -> &[String] {
        let order: [&Option<Vec<String>>; 3] = match family {
            "v4" => [&self.admin_v4, &self.admin_none, &self.admin_v6],
            "v6" => [&self.admin_v6, &self.admin_v4, &self.admin_none],
            _ => [&self.admin_none, &self.admin_v4, &self.admin_v6],
        };
        order
            .into_iter()
            .flatten()
            .next()
            .map_or(&[], Vec::as_slice)
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Expand `{{name}}` placeholders with `lookup`; an unknown name is an error naming `file`.
fn expand(
    text: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<Vec<Segment>>,
) -> Result<Vec<Segment>, PageError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push(Segment::Static(rest[..start].to_string()));
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| PageError::Unclosed {
            file: file.to_string(),
        })?;
        let name = after[..end].trim();
        let value = match name {
            "client_ip" => vec![Segment::Slot(Slot::ClientIp)],
            "ipv6_prefix" => vec![Segment::Slot(Slot::Ipv6Prefix)],
            "request_id" => vec![Segment::Slot(Slot::RequestId)],
            "status" => vec![Segment::Slot(Slot::Status)],
            other => lookup(other).ok_or_else(|| PageError::UnknownPlaceholder {
                file: file.to_string(),
                name: other.to_string(),
            })?,
        };
        out.extend(value);
        rest = &after[end + 2..];
    }
    out.push(Segment::Static(rest.to_string()));
    Ok(out)
}

/// Join neighbouring static segments and drop empty ones.
fn merge(segments: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len());
    for seg in segments {
        match (out.last_mut(), seg) {
            (_, Segment::Static(s)) if s.is_empty() => {}
            (Some(Segment::Static(prev)), Segment::Static(s)) => prev.push_str(&s),
            (_, seg) => out.push(seg),
        }
    }
    out
}

fn text(s: &str) -> Option<Vec<Segment>> {
    Some(vec![Segment::Static(s.to_string())])
}

/// Pre-render one (language, kind, family) variant: the HTML segments, plus the plain title
/// and detail for the JSON form.
#[allow(clippy::too_many_arguments)]
pub fn render_variant(
    template: &str,
    texts: &Texts,
    file: &str,
    kind: &str,
    lang: &str,
    family: &str,
    admin_store: &str,
    support: &str,
) -> Result<(Vec<Segment>, String, String), PageError> {
    let k = texts.kind(kind);
    let admin_store_html = escape_html(admin_store);
    let step_vars = |name: &str| match name {
        "admin_store" => text(&admin_store_html),
        _ => None,
    };
    let mut steps = Vec::new();
    for step in k.admin(family) {
        steps.push(Segment::Static("    <li>".into()));
        steps.extend(expand(step, file, &step_vars)?);
        steps.push(Segment::Static("</li>\n".into()));
    }
    let title = escape_html(&k.title);
    let pupil = escape_html(&k.pupil);
    let address_label = escape_html(&texts.address_label);
    let admin_heading = escape_html(&texts.admin_heading);
    let support_label = escape_html(&texts.support_label);
    let support_html = escape_html(support);
    let request_id_label = escape_html(&texts.request_id_label);
    let unknown = escape_html(&texts.address_unknown);
    let page_vars = |name: &str| match name {
        "lang" => text(lang),
        "title" => text(&title),
        "pupil" => text(&pupil),
        "address_label" => text(&address_label),
        "admin_heading" => text(&admin_heading),
        "admin_steps" => Some(steps.clone()),
        "support_label" => text(&support_label),
        "support" => text(&support_html),
        "request_id_label" => text(&request_id_label),
        _ => None,
    };
    let mut html = expand(template, "src/page/templates/page.html", &page_vars)?;
    if family == "none" {
        // No address to show: say so instead of leaving an empty box.
        for seg in &mut html {
            if *seg == Segment::Slot(Slot::ClientIp) {
                *seg = Segment::Static(unknown.clone());
            }
        }
    }
    Ok((merge(html), k.title.clone(), k.pupil.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_and_keeps_slots() {
        let lookup = |n: &str| (n == "a").then(|| vec![Segment::Static("A".into())]);
        let segs = merge(expand("x{{a}}y{{ client_ip }}z", "f", &lookup).unwrap());
        assert_eq!(
            segs,
            vec![
                Segment::Static("xAy".into()),
                Segment::Slot(Slot::ClientIp),
                Segment::Static("z".into())
            ]
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors() {
        let none = |_: &str| None;
        let err = expand("a {{nope}}", "t.html", &none).unwrap_err();
        assert_eq!(err.to_string(), "t.html: unknown placeholder {{nope}}");
        let err = expand("a {{open", "t.html", &none).unwrap_err();
        assert_eq!(err.to_string(), "t.html: unclosed placeholder");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
