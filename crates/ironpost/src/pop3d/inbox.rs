//! A user's INBOX as one POP3 session sees it: the messages there at
//! login, numbered from 1 in UID order (RFC 1939 §5: the numbers stay the
//! same for the whole session), each with its size on the wire and its
//! UIDL; DELE only marks, and what is marked goes at QUIT.
//!
//! A message expunged meanwhile by another session (POP3 or IMAP) reads as
//! gone; a message delivered meanwhile shows at the next login. Maildirs
//! and mbox files (system users' spool) alike.

use std::io;

use std::path::Path;

use crate::store::index::state_dir;
use crate::store::location::MailboxPath;
use crate::store::maildir::{Maildir, Message as Stored, Snapshot};
use crate::store::mbox::Mbox;

/// The mailbox behind a session.
#[derive(Debug)]
enum Store {
    Maildir(Maildir),
    Mbox(Mbox),
}

impl Store {
    fn snapshot(&self) -> io::Result<Snapshot> {
        match self {
            Store::Maildir(m) => m.snapshot(),
            Store::Mbox(m) => m.snapshot(),
        }
    }

    fn read(&self, m: &Stored) -> io::Result<Vec<u8>> {
        match self {
            Store::Maildir(d) => d.read(m),
            Store::Mbox(b) => b.read(m),
        }
    }

    fn expunge(&self, msgs: &[&Stored]) -> io::Result<()> {
        match self {
            Store::Maildir(d) => d.expunge(msgs),
            Store::Mbox(b) => b.expunge(msgs),
        }
    }
}

/// One message of the session.
#[derive(Debug, Clone)]
pub struct Entry {
    pub uid: u32,
    /// Octets on the wire (CRLF line ends, before dot-stuffing).
    pub size: u64,
    pub uidl: String,
    pub deleted: bool,
    stored: Stored,
}

/// The session's view.
#[derive(Debug)]
pub struct Inbox {
    store: Store,
    pub entries: Vec<Entry>,
}

/// Why a mailbox cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl Inbox {
    /// Takes the snapshot of login time. A Maildir that does not exist yet
    /// (nothing was ever delivered) is made, empty, as Dovecot does.
    pub fn open(
        path: &MailboxPath,
        uidl_format: &str,
        data_directory: &Path,
    ) -> Result<Inbox, OpenError> {
        let store = match path {
            MailboxPath::Maildir(p) => {
                Store::Maildir(Maildir::open(p, true).map_err(OpenError::Io)?)
            }
            MailboxPath::Mbox(p) => Store::Mbox(
                Mbox::open(p, &state_dir(data_directory, "mbox", p)).map_err(OpenError::Io)?,
            ),
        };
        let snap = store.snapshot().map_err(OpenError::Io)?;
        let entries = snap
            .messages
            .iter()
            .map(|m| Entry {
                uid: m.uid,
                size: m.wire_size,
                uidl: uidl(uidl_format, &snap, m),
                deleted: false,
                stored: m.clone(),
            })
            .collect();
        Ok(Inbox { store, entries })
    }

    /// Message `n` (1-based), deleted or not.
    pub fn get(&self, n: u32) -> Option<&Entry> {
        self.entries.get((n as usize).checked_sub(1)?)
    }

    /// How many messages, and their octets, not counting deleted ones.
    pub fn stat(&self) -> (u32, u64) {
        self.entries
            .iter()
            .filter(|e| !e.deleted)
            .fold((0, 0), |(n, s), e| (n + 1, s + e.size))
    }

    /// The stored bytes of message `n`; `NotFound` when another session
    /// expunged it.
    pub fn read(&self, n: u32) -> io::Result<Vec<u8>> {
        let e = self
            .get(n)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such message"))?;
        self.store.read(&e.stored)
    }

    pub fn set_deleted(&mut self, n: u32, deleted: bool) {
        if let Some(e) = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get_mut(i))
        {
            e.deleted = deleted;
        }
    }

    /// RSET: nothing is deleted after all.
    pub fn undelete_all(&mut self) {
        for e in &mut self.entries {
            e.deleted = false;
        }
    }

    /// The UPDATE state: removes what was marked (durably). How many.
    pub fn expunge_deleted(&self) -> io::Result<usize> {
        let gone: Vec<&Stored> = self
            .entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| &e.stored)
            .collect();
        if !gone.is_empty() {
            self.store.expunge(&gone)?;
        }
        Ok(gone.len())
    }
}

/// Checks a pop3_uidl_format: Dovecot's variables `%u` (UID), `%v`
/// (UIDVALIDITY), `%f` (the Maildir file name's base), each with an
/// optional width (`%08u`) and `X`/`x` for hex (`%08Xu`), and `%%`.
pub fn check_uidl_format(f: &str) -> Result<(), String> {
    let expected = "a format of %u, %v and %f with optional width and X (like %08Xu%08Xv)";
    let mut chars = f.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        while chars.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
        }
        if matches!(chars.peek(), Some('X' | 'x')) {
            chars.next();
        }
        match chars.next() {
            Some('u' | 'v' | 'f') => any = true,
            Some('%') => {}
            _ => return Err(expected.into()),
        }
    }
    if any { Ok(()) } else { Err(expected.into()) }
}

/// A message's UIDL by pop3_uidl_format; a UIDL kept from a migration
/// wins.
fn uidl(format: &str, snap: &Snapshot, m: &Stored) -> String {
    if format == "%08Xu%08Xv" {
        return snap.pop3_uidl(m);
    }
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            width.push(d);
            chars.next();
        }
        // Dovecot's `X` modifier writes lower-case hex (as `%llx`);
        // `x` is taken as the same.
        let hex = matches!(chars.peek(), Some('X' | 'x'));
        if hex {
            chars.next();
        }
        let w: usize = width.parse().unwrap_or(0);
        let zero = width.starts_with('0');
        let num = |n: u32| -> String {
            let s = if hex { format!("{n:x}") } else { n.to_string() };
            if s.len() >= w {
                s
            } else if zero {
                format!("{}{s}", "0".repeat(w - s.len()))
            } else {
                format!("{}{s}", " ".repeat(w - s.len()))
            }
        };
        match chars.next() {
            Some('u') => out.push_str(&num(m.uid)),
            Some('v') => out.push_str(&num(snap.uidvalidity)),
            Some('f') => out.push_str(&m.base),
            Some('%') => out.push('%'),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uidl_formats() {
        assert!(check_uidl_format("%08Xu%08Xv").is_ok());
        assert!(check_uidl_format("%v.%u").is_ok());
        assert!(check_uidl_format("%f").is_ok());
        assert!(check_uidl_format("%g").is_err());
        assert!(check_uidl_format("plain").is_err());
        let dir = tempfile::tempdir().unwrap();
        crate::mailbox::maildir::deliver(dir.path(), b"Subject: a\r\n\r\nx\r\n", None).unwrap();
        let md = Maildir::open(dir.path(), false).unwrap();
        let snap = md.snapshot().unwrap();
        let m = &snap.messages[0];
        assert_eq!(
            uidl("%08Xu%08Xv", &snap, m),
            format!("{:08x}{:08x}", m.uid, snap.uidvalidity)
        );
        assert_eq!(
            uidl("%v.%u", &snap, m),
            format!("{}.{}", snap.uidvalidity, m.uid)
        );
        assert_eq!(uidl("%f", &snap, m), m.base);
        assert_eq!(uidl("%04xu%%", &snap, m), format!("{:04x}%", m.uid));
        assert_eq!(uidl("%Xv", &snap, m), format!("{:x}", snap.uidvalidity));
    }
}
