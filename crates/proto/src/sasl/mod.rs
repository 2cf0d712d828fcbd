//! SASL mechanisms, server side, without I/O: shared by SMTP AUTH (RFC
//! 4954), POP3 AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 9051).
//!
//! The protocol layer decodes the client's base64 responses (`*` cancels),
//! feeds them to a mechanism, and sends back the base64 of its challenges;
//! the mechanism says what it needs next: a password check (PLAIN, LOGIN),
//! the stored SCRAM keys of a user (SCRAM), or nothing more.
//!
//! ## Layout
//! - [`plain`]: PLAIN (RFC 4616).
//! - [`login`]: LOGIN (the draft every client still speaks).
//! - [`scram`]: SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677).

pub mod login;
pub mod plain;
pub mod scram;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The mechanisms offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    ScramSha1,
    ScramSha256,
    /// With TLS channel binding (tls-exporter, RFC 9266).
    ScramSha1Plus,
    ScramSha256Plus,
}

impl Mechanism {
    /// From its name, as a client writes it (case-insensitive).
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "LOGIN" => Some(Mechanism::Login),
            "SCRAM-SHA-1" => Some(Mechanism::ScramSha1),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-1-PLUS" => Some(Mechanism::ScramSha1Plus),
            "SCRAM-SHA-256-PLUS" => Some(Mechanism::ScramSha256Plus),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Whether the mechanism binds to the TLS channel (needs TLS).
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus)
    }

    /// Whether the password crosses the wire (PLAIN, LOGIN): such
    /// mechanisms need TLS unless the administrator allowed otherwise.
    pub fn is_plaintext(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }
}

/// Why an exchange failed, so the protocol can answer with the right code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent `*` (RFC 4954: `501 5.7.0 Authentication aborted`).
    Cancelled,
    /// Not base64 (`501 5.5.2 Cannot decode response`).
    BadBase64,
    /// The response does not follow the mechanism's syntax.
    Malformed(&'static str),
    /// The credentials are wrong (`535 5.7.8`).
    Failed,
}

/// Decodes one client response line: `*` cancels; an empty line is an
/// empty response (RFC 4954 §4, `=` for an empty initial response).
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim();
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    if line == "=" || line.is_empty() {
        return Ok(Vec::new());
    }
    B64.decode(line).map_err(|_| SaslError::BadBase64)
}

/// Encodes a server challenge for the wire.
pub fn encode_challenge(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Credentials to check against a stored password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The identity to act as, if the client asked for another one.
    pub authzid: Option<String>,
    /// The login name.
    pub authcid: String,
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert_eq!(decode_response("*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response("="), Ok(Vec::new()));
        assert_eq!(decode_response("!!"), Err(SaslError::BadBase64));
        assert_eq!(
            decode_response("AGplcnJ5AHNlY3JldA=="),
            Ok(b"\0jerry\0secret".to_vec())
        );
        assert_eq!(
            Mechanism::parse("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
        assert!(Mechanism::Login.is_plaintext() && !Mechanism::ScramSha1.is_plaintext());
    }
}
