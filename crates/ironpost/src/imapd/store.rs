//! What an IMAP folder is on disk: a Maildir, or the mbox INBOX of a
//! system user (`/var/mail/USER`, Dovecot's `mbox:~/mail:INBOX=...`).
//!
//! An mbox is presented to the index as if it were a Maildir: each
//! message gets a name `KEY,H=HDR:2,FLAGS` under `cur/` (or `KEY,H=HDR`
//! under `new/` while it is \Recent) below the mbox's path, where KEY is
//! the mbox store's key of the message, HDR the flags its `Status:` and
//! `X-Status:` headers held when the index last looked, and FLAGS the
//! message's flags now. Flags set over IMAP are kept in the index (the
//! mbox file is not rewritten for them); a change of the headers by
//! another program (mutt, Dovecot) shows as a new HDR and wins.
//! Messages cannot be added to an mbox over IMAP yet (APPEND and COPY
//! into it are refused); EXPUNGE rewrites the file in place under
//! local(8)'s locks.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::store::flags::{Flags, split_info, with_flags};
use crate::store::index::{Index, Sub};
use crate::store::maildir::Token;
use crate::store::{Maildir, Mbox, Message, Snapshot};

/// A folder's messages on disk.
pub enum Store {
    Maildir(Maildir),
    Mbox(Mbox),
}

/// What tells whether a folder changed since the last snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    Maildir(Token),
    /// The mbox file's device, inode, size and mtime.
    Mbox(u64, u64, u64, i64),
}

/// Changes to an mbox more recent than this are not trusted to show in
/// its mtime.
const MBOX_SETTLE: Duration = Duration::from_secs(1);

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "messages cannot be added to an mbox INBOX over IMAP",
    )
}

impl Store {
    /// The folder's [`Stamp`] now; `None` when it may be changing.
    pub fn stamp(&self) -> Option<Stamp> {
        match self {
            Store::Maildir(m) => m.token().map(Stamp::Maildir),
            Store::Mbox(m) => {
                let meta = fs::metadata(m.path()).ok()?;
                let mtime = meta.modified().ok()?;
                let settled = SystemTime::now()
                    .duration_since(mtime)
                    .is_ok_and(|d| d > MBOX_SETTLE);
                settled.then(|| {
                    Stamp::Mbox(
                        meta.dev(),
                        meta.ino(),
                        meta.len(),
                        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                    )
                })
            }
        }
    }

    /// The messages now; for an mbox, named for the index as the module
    /// doc says (the index's records tell which flags are the client's).
    pub fn snapshot(&self, index: &Index) -> io::Result<Snapshot> {
        match self {
            Store::Maildir(m) => m.snapshot(),
            Store::Mbox(m) => {
                let mut snap = m.snapshot()?;
                let root = m.path();
                for msg in &mut snap.messages {
                    let hdr = msg.flags.to_string();
                    let known = index.get(msg.uid);
                    let same_headers = known.is_some_and(|r| header_part(&r.name) == Some(&hdr));
                    let flags = match known {
                        Some(r) if same_headers => r.flags(),
                        _ => msg.flags.clone(),
                    };
                    // \Recent until a session took it in (or it has flags).
                    let recent = msg.recent
                        && flags == Flags::default()
                        && known.is_none_or(|r| r.sub == Sub::New);
                    let base = format!("{},H={hdr}", msg.base);
                    msg.path = if recent {
                        root.join("new").join(&base)
                    } else {
                        root.join("cur").join(with_flags(&base, &flags))
                    };
                    msg.recent = recent;
                    msg.flags = flags;
                }
                Ok(snap)
            }
        }
    }

    pub fn read(&self, m: &Message) -> io::Result<Vec<u8>> {
        match self {
            Store::Maildir(d) => d.read(m),
            Store::Mbox(b) => b.read(m),
        }
    }

    /// A reader of many messages, cheaper per message than
    /// [`Store::read`] (see [`Maildir::reader`]).
    pub fn reader(&self) -> Reader<'_> {
        match self {
            Store::Maildir(d) => match d.reader() {
                Ok(r) => Reader::Maildir(r),
                Err(_) => Reader::Plain(self),
            },
            Store::Mbox(_) => Reader::Plain(self),
        }
    }

    pub fn expunge(&self, msgs: &[&Message]) -> io::Result<()> {
        match self {
            Store::Maildir(d) => d.expunge(msgs),
            Store::Mbox(b) => b.expunge(msgs),
        }
    }

    pub fn set_flags(&self, m: &Message, flags: &Flags) -> io::Result<PathBuf> {
        match self {
            Store::Maildir(d) => d.set_flags(m, flags),
            Store::Mbox(_) => Ok(renamed(m, flags)),
        }
    }

    pub fn set_flags_many(
        &self,
        changes: &[(&Message, Flags)],
    ) -> io::Result<Vec<Option<PathBuf>>> {
        match self {
            Store::Maildir(d) => d.set_flags_many(changes),
            Store::Mbox(_) => Ok(changes.iter().map(|(m, f)| Some(renamed(m, f))).collect()),
        }
    }

    pub fn move_new_to_cur(&self, msgs: &[&Message]) -> io::Result<Vec<Option<PathBuf>>> {
        match self {
            Store::Maildir(d) => d.move_new_to_cur(msgs),
            Store::Mbox(_) => Ok(msgs
                .iter()
                .map(|m| Some(renamed(m, &Flags::default())))
                .collect()),
        }
    }

    pub fn copy_in(
        &self,
        sources: &[(&Message, Flags)],
    ) -> io::Result<Vec<Option<(u32, PathBuf)>>> {
        match self {
            Store::Maildir(d) => d.copy_in(sources),
            Store::Mbox(_) => Err(unsupported()),
        }
    }

    pub fn append(
        &self,
        message: &[u8],
        flags: &Flags,
        internal_date: Option<SystemTime>,
    ) -> io::Result<(u32, PathBuf)> {
        match self {
            Store::Maildir(d) => d.append(message, flags, internal_date),
            Store::Mbox(_) => Err(unsupported()),
        }
    }
}

/// The `HDR` of an mbox message's index name.
/// See [`Store::reader`].
pub enum Reader<'a> {
    Maildir(crate::store::maildir::Reader<'a>),
    Plain(&'a Store),
}

impl Reader<'_> {
    pub fn read(&self, m: &Message) -> io::Result<Vec<u8>> {
        match self {
            Reader::Maildir(r) => r.read(m),
            Reader::Plain(s) => s.read(m),
        }
    }
}

fn header_part(name: &str) -> Option<&str> {
    split_info(name).0.rsplit_once(",H=").map(|(_, h)| h)
}

/// An mbox message's index path with other flags (nothing on disk moves).
fn renamed(m: &Message, flags: &Flags) -> PathBuf {
    let name = m.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = split_info(name).0;
    let root = m
        .path
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    root.join("cur").join(with_flags(base, flags))
}
