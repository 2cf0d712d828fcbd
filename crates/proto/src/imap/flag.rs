//! Message flags (RFC 9051 §2.3.2, §9 `flag`, `flag-fetch`,
//! `flag-perm`).
//!
//! System flags are matched without regard to case and written in the
//! RFC's spelling (`\Seen`); keywords keep the client's spelling (they
//! are case-insensitive too: compare them with
//! [`Flag::eq_ignore_case`]). `\Recent` exists only in rev1 responses,
//! `\*` only in PERMANENTFLAGS.

use std::fmt;

use super::lexer::is_atom_char;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// `\Recent` (RFC 3501; gone from IMAP4rev2).
    Recent,
    /// A keyword (`$Forwarded`, `Junk`, `$MDNSent`), as written.
    Keyword(String),
    /// `\` atom that is not a system flag, without the backslash.
    Extension(String),
    /// `\*` in PERMANENTFLAGS: new keywords may be created.
    Wildcard,
}

impl Flag {
    /// One flag as written on the wire: `\Seen`, `$Junk`, `\*`.
    pub fn parse(s: &[u8]) -> Option<Flag> {
        if let Some(name) = s.strip_prefix(b"\\") {
            if name == b"*" {
                return Some(Flag::Wildcard);
            }
            if name.is_empty() || !name.iter().all(|&b| is_atom_char(b)) {
                return None;
            }
            let upper = name.to_ascii_uppercase();
            return Some(match upper.as_slice() {
                b"SEEN" => Flag::Seen,
                b"ANSWERED" => Flag::Answered,
                b"FLAGGED" => Flag::Flagged,
                b"DELETED" => Flag::Deleted,
                b"DRAFT" => Flag::Draft,
                b"RECENT" => Flag::Recent,
                _ => Flag::Extension(String::from_utf8_lossy(name).into_owned()),
            });
        }
        if s.is_empty() || !s.iter().all(|&b| is_atom_char(b)) {
            return None;
        }
        Some(Flag::Keyword(String::from_utf8_lossy(s).into_owned()))
    }

    /// The wire form.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Flag::Seen => Cow::Borrowed("\\Seen"),
            Flag::Answered => Cow::Borrowed("\\Answered"),
            Flag::Flagged => Cow::Borrowed("\\Flagged"),
            Flag::Deleted => Cow::Borrowed("\\Deleted"),
            Flag::Draft => Cow::Borrowed("\\Draft"),
            Flag::Recent => Cow::Borrowed("\\Recent"),
            Flag::Wildcard => Cow::Borrowed("\\*"),
            Flag::Keyword(k) => Cow::Borrowed(k),
            Flag::Extension(e) => Cow::Owned(format!("\\{e}")),
        }
    }

    /// Whether this is one of the system flags a message can have.
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            Flag::Seen
                | Flag::Answered
                | Flag::Flagged
                | Flag::Deleted
                | Flag::Draft
                | Flag::Recent
        )
    }

    /// Equality as IMAP has it: keywords and extensions without regard to
    /// ASCII case.
    pub fn eq_ignore_case(&self, other: &Flag) -> bool {
        match (self, other) {
            (Flag::Keyword(a), Flag::Keyword(b)) | (Flag::Extension(a), Flag::Extension(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => self == other,
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(Flag::parse(b"\\seen"), Some(Flag::Seen));
        assert_eq!(Flag::parse(b"\\SEEN").unwrap().to_string(), "\\Seen");
        assert_eq!(Flag::parse(b"\\Recent"), Some(Flag::Recent));
        assert_eq!(Flag::parse(b"\\*"), Some(Flag::Wildcard));
        assert_eq!(
            Flag::parse(b"$Forwarded"),
            Some(Flag::Keyword("$Forwarded".into()))
        );
        assert_eq!(
            Flag::parse(b"\\Important"),
            Some(Flag::Extension("Important".into()))
        );
        assert_eq!(
            Flag::parse(b"\\Important").unwrap().to_string(),
            "\\Important"
        );
        assert_eq!(Flag::parse(b""), None);
        assert_eq!(Flag::parse(b"\\"), None);
        assert_eq!(Flag::parse(b"a b"), None);
        assert_eq!(Flag::parse(b"a]"), None);
        assert!(
            Flag::parse(b"$junk")
                .unwrap()
                .eq_ignore_case(&Flag::Keyword("$Junk".into()))
        );
        assert!(!Flag::Seen.eq_ignore_case(&Flag::Deleted));
    }
}
