//! ENVELOPE (RFC 3501 §7.4.2, RFC 9051 §7.5.2) as Dovecot 2.3 writes it,
//! and the address lists it is made of (RFC 5322 §3.4).
//!
//! `(date subject from sender reply-to to cc bcc in-reply-to message-id)`:
//! - date, subject, in-reply-to and message-id are the last field of
//!   their name; an address list is made of all the fields of its name,
//!   in order (two From fields give one list of both); a field that is
//!   absent is `NIL`, one that is empty is `""`;
//! - date, in-reply-to and message-id are the values as written, unfolded
//!   (line ends removed, the white space after them kept; see
//!   [`super::header`] for the leading white space); comments stay;
//! - the subject is the raw text, encoded words (RFC 2047) left encoded,
//!   in Dovecot's form for texts people read (white space runs made one
//!   space, ends trimmed; a literal when that changed anything or when it
//!   holds `"`, `\` or 8-bit bytes);
//! - address lists are `NIL` when absent or when they hold no address;
//!   sender and reply-to are from's list when they are absent or hold no
//!   address (RFC 3501 §7.4.2).
//!
//! Addresses (`(name route mailbox host)`), as Dovecot parses them:
//! - the display name is the phrase with its words joined by one space
//!   (quoted strings unquoted and unescaped, encoded words as written,
//!   a `.` joined to the word before it), or, when there is none, the last
//!   comment of the address (`a@b (Joe)` is Joe); an empty phrase (`""`)
//!   is `NIL`;
//! - the route of `<@a,@b:x@y>` is `@a,@b`;
//! - groups are `(NIL NIL "name" NIL)` ... `(NIL NIL NIL NIL)`, the end
//!   marker added when the `;` is missing;
//! - what does not parse is filled in: a missing local part is
//!   `MISSING_MAILBOX`, a missing or broken domain `MISSING_DOMAIN`, an
//!   angle address without its `>` has the domain `SYNTAX_ERROR`; a word
//!   alone (`noat`) is a mailbox without domain, several words alone are a
//!   display name without address; an empty element between commas is
//!   `(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")`; after an error the
//!   rest of the element is skipped.

use super::header::{fields, last_value, unfold};
use super::quote::{human, nstring};

/// The filler Dovecot writes for a missing local part.
pub const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
/// The filler Dovecot writes for a missing or broken domain.
pub const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";
/// The domain Dovecot writes for an angle address without its `>`.
pub const SYNTAX_ERROR: &[u8] = b"SYNTAX_ERROR";

/// One element of an address list as ENVELOPE shows it. A group start
/// has only `mailbox` (the group's name), a group end nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name (phrase or comment), raw.
    pub name: Option<Vec<u8>>,
    /// Obsolete source route (`@a,@b`).
    pub route: Option<Vec<u8>>,
    /// Local part, or the group name of a group start.
    pub mailbox: Option<Vec<u8>>,
    /// Domain.
    pub host: Option<Vec<u8>>,
}

impl Address {
    fn new(name: Option<Vec<u8>>, mailbox: &[u8], host: &[u8]) -> Address {
        Address {
            name,
            route: None,
            mailbox: Some(mailbox.to_vec()),
            host: Some(host.to_vec()),
        }
    }
}

/// The ENVELOPE of a message (or of a header: parsing stops at the first
/// empty line), as it goes on the wire, parentheses included.
pub fn envelope(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_envelope(&mut out, message);
    out
}

pub(crate) fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let get = |name: &[u8]| last_value(header, name);
    out.push(b'(');
    nstring(out, get(b"date").map(unfold).as_deref());
    out.push(b' ');
    human(out, get(b"subject"));
    // every field of an address list's name counts, in order (Dovecot)
    let all = |name: &[u8]| -> Vec<Address> {
        fields(header)
            .filter(|f| f.has_colon && f.name.eq_ignore_ascii_case(name))
            .flat_map(|f| addresses(f.value))
            .collect()
    };
    let from = all(b"from");
    for name in [&b"from"[..], b"sender", b"reply-to", b"to", b"cc", b"bcc"] {
        out.push(b' ');
        let list = if name == b"from" {
            from.clone()
        } else {
            all(name)
        };
        let list = if list.is_empty() && (name == b"sender" || name == b"reply-to") {
            from.clone()
        } else {
            list
        };
        write_list(out, &list);
    }
    out.push(b' ');
    nstring(out, get(b"in-reply-to").map(unfold).as_deref());
    out.push(b' ');
    nstring(out, get(b"message-id").map(unfold).as_deref());
    out.push(b')');
}

fn write_list(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        human(out, a.name.as_deref());
        out.push(b' ');
        nstring(out, a.route.as_deref());
        out.push(b' ');
        nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        nstring(out, a.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// Parses an address list field value (as stored, folded or not).
pub fn addresses(value: &[u8]) -> Vec<Address> {
    let s = unfold(value);
    let mut p = Parser {
        s: &s,
        i: 0,
        comment: None,
    };
    let mut out = Vec::new();
    loop {
        p.cfws();
        match p.peek() {
            None => break,
            Some(b',') => {
                p.i += 1;
                out.push(Address::new(None, MISSING_MAILBOX, MISSING_DOMAIN));
                continue;
            }
            _ => {}
        }
        p.address(&mut out, false);
        p.cfws();
        if p.peek().is_some() && p.peek() != Some(b',') {
            p.skip(false);
        }
        if p.peek() == Some(b',') {
            p.i += 1;
        }
    }
    out
}

/// RFC 5322 atext, with 8-bit bytes allowed.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// The last comment skipped.
    comment: Option<Vec<u8>>,
}

/// A phrase read as words: the joined text, the number of words, and
/// whether it is also a valid local part (words joined by dots only).
struct Phrase {
    text: Vec<u8>,
    words: usize,
    dot_atom: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips white space and comments; true when something was skipped.
    fn cfws(&mut self) -> bool {
        let start = self.i;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => self.i += 1,
                b'(' => {
                    let mut depth = 0usize;
                    let mut text = Vec::new();
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        match c {
                            b'\\' => {
                                if let Some(e) = self.peek() {
                                    text.push(e);
                                    self.i += 1;
                                }
                            }
                            b'(' => {
                                if depth > 0 {
                                    text.push(c);
                                }
                                depth += 1;
                            }
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                text.push(c);
                            }
                            _ => text.push(c),
                        }
                    }
                    self.comment = Some(text);
                }
                _ => break,
            }
        }
        self.i > start
    }

    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(e) = self.peek() {
                        out.push(e);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }

    fn atom(&mut self) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(is_atext) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn phrase(&mut self) -> Phrase {
        let mut ph = Phrase {
            text: Vec::new(),
            words: 0,
            dot_atom: true,
        };
        let mut after_dot = false;
        loop {
            let gap = self.cfws();
            if gap && !ph.text.is_empty() {
                ph.dot_atom = false;
            }
            let word = match self.peek() {
                Some(b'"') => self.quoted(),
                Some(b'.') => {
                    self.i += 1;
                    ph.text.push(b'.');
                    after_dot = true;
                    continue;
                }
                Some(b) if is_atext(b) => self.atom().to_vec(),
                _ => break,
            };
            if !ph.text.is_empty() && (!after_dot || gap) {
                ph.text.push(b' ');
                ph.dot_atom = false;
            }
            ph.text.extend_from_slice(&word);
            ph.words += 1;
            after_dot = false;
        }
        ph
    }

    /// A domain: dot-atoms (CFWS around the dots) or a domain literal;
    /// `None` when there is none or it is broken.
    fn domain(&mut self) -> Option<Vec<u8>> {
        self.cfws();
        if self.peek() == Some(b'[') {
            let start = self.i;
            while let Some(b) = self.peek() {
                self.i += 1;
                if b == b']' {
                    return Some(
                        self.s[start..self.i]
                            .iter()
                            .copied()
                            .filter(|&b| b != b' ' && b != b'\t')
                            .collect(),
                    );
                }
            }
            return None;
        }
        let mut out = Vec::new();
        loop {
            let a = self.atom();
            if a.is_empty() {
                return None;
            }
            out.extend_from_slice(a);
            let save = self.i;
            self.cfws();
            if self.peek() == Some(b'.') {
                self.i += 1;
                self.cfws();
                out.push(b'.');
            } else {
                self.i = save;
                return Some(out);
            }
        }
    }

    /// Skips the rest of a broken element, to the next `,` (or `;` in a
    /// group), stepping over quoted strings and comments.
    fn skip(&mut self, in_group: bool) {
        while let Some(b) = self.peek() {
            match b {
                b',' => return,
                b';' if in_group => return,
                b'"' => {
                    self.quoted();
                }
                b'(' => {
                    self.cfws();
                }
                _ => self.i += 1,
            }
        }
    }

    /// One address or group (appended to `out`).
    fn address(&mut self, out: &mut Vec<Address>, in_group: bool) {
        self.comment = None;
        let ph = self.phrase();
        self.cfws();
        match self.peek() {
            Some(b':') if !in_group => {
                self.i += 1;
                out.push(Address {
                    mailbox: Some(ph.text),
                    ..Address::default()
                });
                loop {
                    self.cfws();
                    match self.peek() {
                        None => break,
                        Some(b';') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => {
                            self.i += 1;
                            out.push(Address::new(None, MISSING_MAILBOX, MISSING_DOMAIN));
                            continue;
                        }
                        _ => {}
                    }
                    self.address(out, true);
                    self.cfws();
                    if !matches!(self.peek(), None | Some(b',') | Some(b';')) {
                        self.skip(true);
                    }
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
                out.push(Address::default());
            }
            Some(b'<') => {
                self.i += 1;
                let name = if ph.text.is_empty() {
                    None
                } else {
                    Some(ph.text)
                };
                let mut a = self.angle();
                a.name = name;
                out.push(a);
            }
            Some(b'@') => {
                if !ph.dot_atom {
                    out.push(Address::new(Some(ph.text), MISSING_MAILBOX, MISSING_DOMAIN));
                    return;
                }
                self.i += 1;
                let local = if ph.text.is_empty() {
                    MISSING_MAILBOX.to_vec()
                } else {
                    ph.text
                };
                let host = self.domain();
                self.cfws();
                let name = self.comment.take();
                match host {
                    Some(h) => out.push(Address::new(name, &local, &h)),
                    None => out.push(Address::new(name, &local, MISSING_DOMAIN)),
                }
            }
            _ => {
                if ph.words == 0 {
                    return;
                }
                if ph.words == 1 && ph.dot_atom {
                    let name = self.comment.take();
                    out.push(Address::new(name, &ph.text, MISSING_DOMAIN));
                } else {
                    out.push(Address::new(Some(ph.text), MISSING_MAILBOX, MISSING_DOMAIN));
                }
            }
        }
    }

    /// The inside of `<...>`, after the `<`.
    fn angle(&mut self) -> Address {
        self.cfws();
        let mut route = None;
        if self.peek() == Some(b'@') {
            let mut r = Vec::new();
            while let Some(b) = self.peek() {
                if b == b':' {
                    self.i += 1;
                    break;
                }
                if b == b'>' {
                    break;
                }
                if b != b' ' && b != b'\t' {
                    r.push(b);
                }
                self.i += 1;
            }
            route = Some(r);
        }
        let local = self.phrase();
        self.cfws();
        let mut host = None;
        if self.peek() == Some(b'@') {
            self.i += 1;
            host = self.domain();
            self.cfws();
        }
        let mailbox = if local.text.is_empty() {
            MISSING_MAILBOX.to_vec()
        } else {
            local.text
        };
        let mut host = host.unwrap_or_else(|| MISSING_DOMAIN.to_vec());
        if self.peek() == Some(b'>') {
            self.i += 1;
        } else {
            host = SYNTAX_ERROR.to_vec();
        }
        Address {
            name: None,
            route,
            mailbox: Some(mailbox),
            host: Some(host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str) -> String {
        let mut out = Vec::new();
        write_list(&mut out, &addresses(v.as_bytes()));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_forms() {
        assert_eq!(list("a@b"), r#"((NIL NIL "a" "b"))"#);
        assert_eq!(
            list("\"Last, First\" <f.l@x.y>"),
            r#"(("Last, First" NIL "f.l" "x.y"))"#
        );
        assert_eq!(
            list("Joe   Q.  Public <j@x>"),
            r#"(("Joe Q. Public" NIL "j" "x"))"#
        );
        assert_eq!(
            list("p@x (Plain Comment)"),
            r#"(("Plain Comment" NIL "p" "x"))"#
        );
        assert_eq!(list("a@b (c1) (c2)"), r#"(("c2" NIL "a" "b"))"#);
        assert_eq!(list("Name <a@b> (comment)"), r#"(("Name" NIL "a" "b"))"#);
        assert_eq!(list("\"\" (c) <x@y>"), r#"((NIL NIL "x" "y"))"#);
        assert_eq!(list("<@r1,@r2:a@b>"), r#"((NIL "@r1,@r2" "a" "b"))"#);
        assert_eq!(list("\"john doe\"@x"), r#"((NIL NIL "john doe" "x"))"#);
        assert_eq!(
            list("W <w@[127.0.0.1]>"),
            r#"(("W" NIL "w" "[127.0.0.1]"))"#
        );
        assert_eq!(list("a@ b . c"), r#"((NIL NIL "a" "b.c"))"#);
        assert_eq!(
            list("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            r#"(("Pete" NIL "pete" "silly.test"))"#
        );
        assert_eq!(
            list("=?utf-8?q?\"x\"?= <c@d>"),
            r#"(("=?utf-8?q? x ?=" NIL "c" "d"))"#
        );
    }

    #[test]
    fn groups_and_broken_ones() {
        assert_eq!(
            list("undisclosed-recipients:;"),
            r#"((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"#
        );
        assert_eq!(
            list("g1: a@b, c@d;, g2:;, g3: e@f"),
            r#"((NIL NIL "g1" NIL)(NIL NIL "a" "b")(NIL NIL "c" "d")(NIL NIL NIL NIL)(NIL NIL "g2" NIL)(NIL NIL NIL NIL)(NIL NIL "g3" NIL)(NIL NIL "e" "f")(NIL NIL NIL NIL))"#
        );
        assert_eq!(
            list("a: b: c@d;;"),
            r#"((NIL NIL "a" NIL)(NIL NIL "b" "MISSING_DOMAIN")(NIL NIL NIL NIL))"#
        );
        assert_eq!(list("noat"), r#"((NIL NIL "noat" "MISSING_DOMAIN"))"#);
        assert_eq!(list("@x.y"), r#"((NIL NIL "MISSING_MAILBOX" "x.y"))"#);
        assert_eq!(
            list("<>"),
            r#"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#
        );
        assert_eq!(list("<abc>"), r#"((NIL NIL "abc" "MISSING_DOMAIN"))"#);
        assert_eq!(list("<a@b"), r#"((NIL NIL "a" "SYNTAX_ERROR"))"#);
        assert_eq!(
            list("a b c"),
            r#"(("a b c" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#
        );
        assert_eq!(
            list(",,a@b,,"),
            r#"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "a" "b")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#
        );
        assert_eq!(list("a.@b."), r#"((NIL NIL "a." "MISSING_DOMAIN"))"#);
        assert_eq!(list("@a:b@c"), r#"((NIL NIL "MISSING_MAILBOX" "a"))"#);
        assert_eq!(
            list("<@a,@b:>"),
            r#"((NIL "@a,@b" "MISSING_MAILBOX" "MISSING_DOMAIN"))"#
        );
        assert_eq!(list("(only comment)"), "NIL");
        assert_eq!(list("\"t\" <t@c>,"), r#"(("t" NIL "t" "c"))"#);
    }

    #[test]
    fn rfc3501_example() {
        let m = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary and minutes\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\n\r\nbody\r\n";
        assert_eq!(
            String::from_utf8(envelope(m)).unwrap(),
            concat!(
                r#"("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" "#,
                r#"(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) "#,
                r#"(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) "#,
                r#"((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "#,
                r#""<B27397-0100000@cac.washington.edu>")"#
            )
        );
    }
}
