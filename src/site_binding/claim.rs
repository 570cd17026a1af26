//! The outcome of looking for and verifying a site token: [`Claim`], and for a rejected
//! token the one reason why ([`InvalidClaim`]), short enough for a log field.

use std::fmt;

/// What a request's site token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No token in the request. The caller produces this from [`super::extract`];
    /// [`super::Verifier::verify`] never returns it.
    Missing,
    /// A token that passed every check, naming this site.
    Valid {
        /// The site id: 1 to 64 printable ASCII characters, no spaces.
        site: String,
    },
    /// A token that is otherwise valid but whose `exp` (plus 60 s leeway) has passed.
    Expired,
    /// Any other rejected token.
    Invalid(InvalidClaim),
}

impl Claim {
    /// The verified site id, for a valid token only.
    pub fn site(&self) -> Option<&str> {
        match self {
            Claim::Valid { site } => Some(site),
            _ => None,
        }
    }

    /// The outcome alone, for metric labels and `explain`: `missing`, `valid`, `expired` or
    /// `invalid`.
    pub fn result(&self) -> &'static str {
        match self {
            Claim::Missing => "missing",
            Claim::Valid { .. } => "valid",
            Claim::Expired => "expired",
            Claim::Invalid(_) => "invalid",
        }
    }

    /// Short snake_case summary for logs and `explain`: `missing`, `valid`, `expired`, or the
    /// [`InvalidClaim`] reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            Claim::Missing => "missing",
            Claim::Valid { .. } => "valid",
            Claim::Expired => "expired",
            Claim::Invalid(why) => why.as_str(),
        }
    }
}

/// Why a token was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidClaim {
    /// Not a compact JWS of acceptable size and shape, undecodable header or payload, a
    /// `crit` header, a claim of the wrong type, or a site id that is not a plain token.
    Malformed,
    /// The `kid` header names no configured key.
    UnknownKid,
    /// Several keys are configured and the token has no `kid` header.
    KidRequired,
    /// The `alg` header is not the selected key's algorithm (`none` never is).
    AlgMismatch,
    /// The signature does not verify with the selected key.
    BadSignature,
    /// No `exp` claim.
    NoExp,
    /// `nbf` is more than 60 s in the future.
    NotYetValid,
    /// `iss` differs from the configured issuer (or is absent).
    WrongIssuer,
    /// No `aud` member equals the configured audience (or `aud` is absent).
    WrongAudience,
    /// The configured site claim is absent, null or empty.
    NoSiteClaim,
}

impl InvalidClaim {
    /// Short snake_case name for logs and `explain` output.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidClaim::Malformed => "malformed",
            InvalidClaim::UnknownKid => "unknown_kid",
            InvalidClaim::KidRequired => "kid_required",
            InvalidClaim::AlgMismatch => "alg_mismatch",
            InvalidClaim::BadSignature => "bad_signature",
            InvalidClaim::NoExp => "no_exp",
            InvalidClaim::NotYetValid => "not_yet_valid",
            InvalidClaim::WrongIssuer => "wrong_issuer",
            InvalidClaim::WrongAudience => "wrong_audience",
            InvalidClaim::NoSiteClaim => "no_site_claim",
        }
    }
}

impl fmt::Display for InvalidClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
