//! What an IMAP folder is on disk: a Maildir, or the mbox INBOX of a
//! system user (`/var/mail/USER`, Dovecot's `mbox:~/mail:INBOX=...`).
//!
//! An mbox is presented to the index as if it were a Maildir: each
//! message gets a name `KEY,H=HDR:2,FLAGS` under `cur/` (or `KEY,H=HDR`
//! under `new/` while it is \Recent) below the mbox's path, where KEY is
//! the mbox store's key of the message, HDR the flags its `Status:`,
//! `X-Status:` and `X-Keywords:` headers held when the index last looked
//! (keywords as the folder's letters), and FLAGS the message's flags now.
//! Where the index has no record of a message (a new one, or the index
//! lost), its flags are HDR's. Flags set over IMAP go into the index
//! first; [`Store::write_back`] writes those that differ from their HDR
//! into the file (Dovecot's lazy writes: the session calls it at CHECK,
//! CLOSE, UNSELECT, EXPUNGE, LOGOUT and when it leaves the folder) and
//! makes HDR the new flags, so the next snapshot finds the headers it
//! expects and reports no change. A change of the headers by another
//! program (mutt, Dovecot) shows as a new HDR and wins. The store's keys
//! leave the flag headers out, so neither changes a message's UID.
//! APPEND and COPY into an mbox append as local delivery does
//! ([`Mbox::append_all`]); EXPUNGE rewrites the file in place under
//! local(8)'s locks.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::store::flags::{Flags, split_info, with_flags};
use crate::store::index::{Index, Sub};
use crate::store::keywords::Keywords;
use crate::store::maildir::Token;
use crate::store::mbox::{FlagsChange, HeaderFlags};
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
    /// doc says (the index's records tell which flags are the client's),
    /// the keywords of `X-Keywords:` given letters in `keywords` (true in
    /// the second place when it got new ones, to be saved).
    pub fn snapshot(&self, index: &Index, keywords: &mut Keywords) -> io::Result<(Snapshot, bool)> {
        match self {
            Store::Maildir(m) => Ok((m.snapshot()?, false)),
            Store::Mbox(m) => {
                let (mut snap, words) = m.snapshot_with_keywords()?;
                let mut added = false;
                let root = m.path();
                for msg in &mut snap.messages {
                    for w in words.get(&msg.uid).into_iter().flatten() {
                        let (letter, new) = keywords.letter_or_add(w);
                        added |= new;
                        if let Some(l) = letter {
                            msg.flags.keywords.push(l);
                        }
                    }
                    msg.flags.keywords.sort_unstable();
                    msg.flags.keywords.dedup();
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
                Ok((snap, added))
            }
        }
    }

    /// For an mbox: writes the flags that sessions changed since the
    /// file's headers last held them (a record whose flags differ from its
    /// HDR) into the file, and records the new HDRs in the index (so the
    /// next snapshot finds what it expects: no change to report). Returns
    /// how many messages were written. Nothing to do for a Maildir.
    pub fn write_back(&self, index: &mut Index, keywords: &Keywords) -> io::Result<usize> {
        let Store::Mbox(m) = self else {
            return Ok(0);
        };
        let mut changes = Vec::new();
        let mut names = Vec::new();
        for r in index.records() {
            let Some((key, hdr)) = split_info(&r.name).0.rsplit_once(",H=") else {
                continue;
            };
            let flags = r.flags();
            let now = header_letters(&flags, keywords);
            if now == hdr {
                continue;
            }
            changes.push(FlagsChange {
                key: key.to_string(),
                expect: header_flags(&Flags::parse(hdr), keywords, true),
                new: header_flags(&flags, keywords, true),
            });
            let name = with_flags(&format!("{key},H={now}"), &flags);
            names.push((r.uid, name));
        }
        if changes.is_empty() {
            return Ok(0);
        }
        let done = m.write_flags(&changes)?;
        let renames: Vec<(u32, Sub, &str)> = names
            .iter()
            .zip(&done)
            .filter(|(_, d)| **d)
            .map(|((uid, name), _)| (*uid, Sub::Cur, name.as_str()))
            .collect();
        index.renamed_many(&renames)?;
        Ok(renames.len())
    }

    /// For an mbox: are there flags to write back ([`Store::write_back`])?
    pub fn needs_write_back(&self, index: &Index, keywords: &Keywords) -> bool {
        matches!(self, Store::Mbox(_))
            && index.records().iter().any(|r| {
                split_info(&r.name)
                    .0
                    .rsplit_once(",H=")
                    .is_some_and(|(_, hdr)| header_letters(&r.flags(), keywords) != hdr)
            })
    }

    pub fn read(&self, m: &Message) -> io::Result<Vec<u8>> {
        match self {
            Store::Maildir(d) => d.read(m),
            Store::Mbox(b) => b.read(m),
        }
    }

    /// For a Maildir, a reader of many messages, cheaper per message
    /// than [`Store::read`] (see [`Maildir::reader`]); `None` for an mbox,
    /// or when the Maildir's directories cannot be opened.
    pub fn reader(&self) -> Option<crate::store::maildir::Reader> {
        match self {
            Store::Maildir(d) => d.reader().ok(),
            Store::Mbox(_) => None,
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

    /// Where [`Store::set_flags_many`] will put each message's file, for
    /// a store whose flags are in its file names (a Maildir), without
    /// renaming anything yet; `None` for an mbox, whose flags are
    /// written back otherwise.
    pub fn flag_targets(&self, changes: &[(&Message, Flags)]) -> Option<Vec<Option<PathBuf>>> {
        match self {
            Store::Maildir(d) => Some(
                changes
                    .iter()
                    .map(|(m, f)| Some(d.flag_target(m, f)))
                    .collect(),
            ),
            Store::Mbox(_) => None,
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

    /// Copies messages in, with their flags (keyword letters named by
    /// `keywords`, the folder's). Into an mbox: appended as
    /// [`Mbox::append_all`] does, each read from the mbox it is in (this one)
    /// or from its file.
    pub fn copy_in(
        &self,
        sources: &[(&Message, Flags)],
        keywords: &Keywords,
    ) -> io::Result<Vec<Option<(u32, PathBuf)>>> {
        match self {
            Store::Maildir(d) => d.copy_in(sources),
            Store::Mbox(b) => {
                // Read first, then appended in one write: all or nothing.
                let mut out = Vec::with_capacity(sources.len());
                let mut read = Vec::with_capacity(sources.len());
                for (m, flags) in sources {
                    let data = if m.path.starts_with(b.path()) {
                        b.read(m)
                    } else {
                        fs::read(&m.path)
                    };
                    match data {
                        Ok(d) => {
                            read.push((d, flags, Some(m.internal_date)));
                            out.push(true);
                        }
                        // Gone meanwhile: not copied.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => out.push(false),
                        Err(e) => return Err(e),
                    }
                }
                let items: Vec<_> = read.iter().map(|(d, f, t)| (&d[..], *f, *t)).collect();
                let mut added = mbox_append_all(b, &items, keywords)?.into_iter();
                Ok(out
                    .into_iter()
                    .map(|copied| if copied { added.next() } else { None })
                    .collect())
            }
        }
    }

    /// Adds messages with their flags (keyword letters named by
    /// `keywords`) and internal dates: all of them, or none when one
    /// fails (IMAP MULTIAPPEND). Returns their UIDs and index paths.
    pub fn append_all(
        &self,
        messages: &[(&[u8], &Flags, Option<SystemTime>)],
        keywords: &Keywords,
    ) -> io::Result<Vec<(u32, PathBuf)>> {
        match self {
            Store::Maildir(d) => {
                let mut added: Vec<(u32, PathBuf)> = Vec::with_capacity(messages.len());
                for (data, flags, date) in messages {
                    match d.append(data, flags, *date) {
                        Ok(a) => added.push(a),
                        Err(e) => {
                            for (_, p) in &added {
                                let _ = fs::remove_file(p);
                            }
                            return Err(e);
                        }
                    }
                }
                Ok(added)
            }
            Store::Mbox(b) => mbox_append_all(b, messages, keywords),
        }
    }
}

/// Appends to an mbox, in one write; the UIDs and the index paths the
/// messages will have.
fn mbox_append_all(
    b: &Mbox,
    messages: &[(&[u8], &Flags, Option<SystemTime>)],
    keywords: &Keywords,
) -> io::Result<Vec<(u32, PathBuf)>> {
    // With flags it is not recent (as a snapshot would see it).
    let (old, hfs): (Vec<bool>, Vec<HeaderFlags>) = messages
        .iter()
        .map(|(_, f, _)| {
            let old = **f != Flags::default();
            (old, header_flags(f, keywords, old))
        })
        .unzip();
    let now = SystemTime::now();
    let items: Vec<(&[u8], &HeaderFlags, SystemTime)> = messages
        .iter()
        .zip(&hfs)
        .map(|((d, _, t), hf)| (*d, hf, t.unwrap_or(now)))
        .collect();
    let uids = b.append_all(&items)?;
    Ok(uids
        .into_iter()
        .zip(old)
        .map(|(uid, o)| (uid, b.path().join(if o { "cur" } else { "new" })))
        .collect())
}

/// The flags an mbox's headers can hold, as the HDR of an index name:
/// the letters of the system flags but `P`, and of the keywords that have
/// names.
fn header_letters(flags: &Flags, keywords: &Keywords) -> String {
    Flags {
        passed: false,
        keywords: flags
            .keywords
            .iter()
            .copied()
            .filter(|&l| keywords.name(l).is_some())
            .collect(),
        ..flags.clone()
    }
    .to_string()
}

/// Maildir flags as an mbox's header fields hold them.
fn header_flags(flags: &Flags, keywords: &Keywords, old: bool) -> HeaderFlags {
    HeaderFlags {
        flags: Flags {
            keywords: Vec::new(),
            passed: false,
            ..flags.clone()
        },
        keywords: flags
            .keywords
            .iter()
            .filter_map(|&l| keywords.name(l).map(str::to_string))
            .collect(),
        old,
    }
}

/// The `HDR` of an mbox message's index name.
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
