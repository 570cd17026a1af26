//! Why the client address cannot be determined.
//!
//! Every variant maps to the decision reason `unresolvable_client_ip`. The errors carry
//! positions and kinds only, never header text: the header is client-controlled, and these
//! values end up in logs, metrics labels and the block page.

/// The decision reason every [`Unresolvable`] maps to.
pub const UNRESOLVABLE_REASON: &str = "unresolvable_client_ip";

/// Why the client cannot be determined (fail closed: the request is blocked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unresolvable {
    /// The listener reported no IP address for the peer (a Unix socket, for example).
    #[error("client address cannot be determined: the connection has no peer IP address")]
    NoPeerAddress,
    /// The walk over the forwarding header reached an element it cannot use.
    ///
    /// `position` counts the non-empty elements from the right, 0-based, over all field
    /// lines of the header (the last line's last element is 0).
    #[error(
        "client address cannot be determined: forwarding header element {position} \
         (counted from the right, 0-based) is malformed: {kind}"
    )]
    MalformedElement {
        position: usize,
        kind: MalformedKind,
    },
}

impl Unresolvable {
    /// The decision reason: always `unresolvable_client_ip`.
    pub fn reason(&self) -> &'static str {
        UNRESOLVABLE_REASON
    }
}

/// What is wrong with a header element the walk reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MalformedKind {
    /// Not a strict IP address form (X-Forwarded-For element, or the node of a `for=`).
    #[error("not a strict IP address")]
    InvalidAddress,
    /// `Forwarded` element that breaks RFC 7239 syntax (for example a `:` outside quotes,
    /// whitespace around `=`, or a character that is not allowed there).
    #[error("RFC 7239 syntax error")]
    Syntax,
    /// `Forwarded` quoted string that is not closed before the element ends.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// `Forwarded` element without a `for` parameter.
    #[error("no \"for\" parameter")]
    MissingFor,
    /// `Forwarded` element with the same parameter twice.
    #[error("duplicate parameter")]
    DuplicateParameter,
    /// `Forwarded` element with more parameters than any real proxy writes.
    #[error("too many parameters")]
    TooManyParameters,
    /// `for=unknown`: the proxy did not know the client.
    #[error("\"for\" is \"unknown\"")]
    UnknownNode,
    /// `for=_hidden`: an obfuscated identifier, not an address.
    #[error("\"for\" is an obfuscated identifier")]
    ObfuscatedNode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_position_and_kind_only() {
        let err = Unresolvable::MalformedElement {
            position: 2,
            kind: MalformedKind::MissingFor,
        };
        let text = err.to_string();
        assert!(text.contains("element 2"), "{text}");
        assert!(text.contains("no \"for\" parameter"), "{text}");
        assert_eq!(err.reason(), "unresolvable_client_ip");
        assert_eq!(
            Unresolvable::NoPeerAddress.reason(),
            "unresolvable_client_ip"
        );
        assert!(Unresolvable::NoPeerAddress
            .to_string()
            .contains("no peer IP address"));
    }
}
