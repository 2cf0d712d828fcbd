//! Mailbox names (RFC 9051 §5.1, RFC 3501 §5.1).
//!
//! A [`MailboxName`] is the name as the store knows it, in UTF-8. On the
//! wire it is modified UTF-7 ([`super::utf7`]) unless the client enabled
//! UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2, when it is UTF-8 as it is.
//! `INBOX` is the same mailbox in any case (RFC 9051 §5.1): a name that
//! is `INBOX` without regard to case is stored as `INBOX`; other names,
//! `INBOX/Sub` included, keep their case (Dovecot does the same).

use std::fmt;

use super::utf7;

/// A mailbox name, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

/// A name on the wire that is not valid modified UTF-7 (or, in UTF-8
/// mode, not UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidName;

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mailbox name is not valid mUTF-7")
    }
}

impl std::error::Error for InvalidName {}

/// A name or pattern from the wire, decoded (no INBOX rule): modified
/// UTF-7, or UTF-8 when `utf8`.
pub fn decode(wire: &[u8], utf8: bool) -> Result<String, InvalidName> {
    if utf8 {
        String::from_utf8(wire.to_vec()).map_err(|_| InvalidName)
    } else {
        utf7::decode(wire).map_err(|_| InvalidName)
    }
}

/// A name or pattern in its wire form (before string quoting).
pub fn encode(name: &str, utf8: bool) -> String {
    if utf8 {
        name.to_string()
    } else {
        utf7::encode(name)
    }
}

impl MailboxName {
    /// A name; any case of `INBOX` is `INBOX`.
    pub fn new(name: impl Into<String>) -> MailboxName {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            MailboxName("INBOX".into())
        } else {
            MailboxName(name)
        }
    }

    /// The name a client sent (the content of its astring).
    pub fn from_wire(wire: &[u8], utf8: bool) -> Result<MailboxName, InvalidName> {
        decode(wire, utf8).map(MailboxName::new)
    }

    /// The wire form (before string quoting).
    pub fn to_wire(&self, utf8: bool) -> String {
        encode(&self.0, utf8)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MailboxName {
    fn from(s: &str) -> MailboxName {
        MailboxName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            MailboxName::from_wire(b"inbox", false).unwrap().as_str(),
            "INBOX"
        );
        assert!(MailboxName::from_wire(b"InBoX", true).unwrap().is_inbox());
        assert_eq!(
            MailboxName::from_wire(b"inbox/Sub", false)
                .unwrap()
                .as_str(),
            "inbox/Sub"
        );
        assert_eq!(
            MailboxName::from_wire(b"Entw&APw-rfe", false)
                .unwrap()
                .as_str(),
            "Entw\u{fc}rfe"
        );
        // In UTF-8 mode `&` is just `&`.
        assert_eq!(
            MailboxName::from_wire(b"A&B", true).unwrap().as_str(),
            "A&B"
        );
        assert_eq!(
            MailboxName::from_wire("Entw\u{fc}rfe".as_bytes(), true)
                .unwrap()
                .as_str(),
            "Entw\u{fc}rfe"
        );
        assert_eq!(MailboxName::from_wire(b"A&B", false), Err(InvalidName));
        assert_eq!(
            MailboxName::from_wire("\u{fc}".as_bytes(), false),
            Err(InvalidName)
        );
        assert_eq!(MailboxName::from_wire(b"\xff", true), Err(InvalidName));
        assert_eq!(
            MailboxName::new("Entw\u{fc}rfe").to_wire(false),
            "Entw&APw-rfe"
        );
        assert_eq!(
            MailboxName::new("Entw\u{fc}rfe").to_wire(true),
            "Entw\u{fc}rfe"
        );
    }
}
