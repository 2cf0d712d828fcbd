//! One mbox file (`/var/mail/USER`, `~/mbox`) as POP3 and IMAP read it:
//! the messages with UIDs that stay, their flags, reading, expunge, flags
//! written into the headers, messages appended. The mbox is given no data
//! of ironpost's own beyond the flag headers mail readers write too: the
//! UIDs live in a state directory of ours, outside the mail spool.
//!
//! ## Map
//! - [`Mbox`]: one mbox file and its state directory. [`Mbox::open`],
//!   then [`Mbox::snapshot`] (the same [`Snapshot`] and [`Message`] as a
//!   Maildir's; [`Mbox::snapshot_with_keywords`] also gives the
//!   keywords by name), [`Mbox::read`], [`Mbox::expunge`],
//!   [`Mbox::write_flags`] ([`FlagsChange`], [`HeaderFlags`]),
//!   [`Mbox::append_all`].
//! - the scanner (`scan`): splits the file into messages, one pass, the
//!   file never held in memory whole; gives each its place, key, sizes,
//!   flags and date.
//! - the keys and the UID list (`keys`, `sync`, `take_over_dovecot`).
//!
//! ## Messages
//! A message starts at a line that starts with `From ` and is the first
//! line of the file (of the data scanned), or follows an empty line (`\n`
//! or `\r\n`), or has a date that can be read (as mutt and Dovecot
//! accept `From ` lines: a file whose last message lacks its final empty
//! line gets the next delivery's `From ` line right after its last line);
//! it runs to the next such line or the end of the file.
//! Its content, what POP3 and IMAP serve (as Dovecot does), is what
//! follows the `From ` line, without the empty line before the next
//! message (or the empty line that ends the file, when there is one).
//! Nothing is unquoted: a `>From ` line is served as it is (mboxo, see
//! [`crate::mailbox::mbox`]). Bytes before the first `From ` line (a
//! damaged file) belong to no message; they are left where they are. A
//! `From ` line after an empty line is not checked further: a body line
//! `From ` there that nobody quoted does split a message.
//!
//! [`Message`] is the Maildir store's, used this way: `base` is the
//! message's key (below), `path` the mbox file, `size` the content's
//! bytes, `wire_size` the content with CRLF line ends. The content is
//! what follows the `From ` line without the header fields that are the
//! mailbox's bookkeeping (`Status`, `X-Status`, `X-Keywords`, `X-UID`,
//! `X-IMAP`, `X-IMAPbase`, `Content-Length`), which clients are not
//! shown, as Dovecot does not show them: a change of flags never changes
//! a message's content or size. `flags` come from
//! the `Status:` (`R` seen; `O` old, i.e. not `recent`) and `X-Status:`
//! (`A` answered, `F` flagged, `T` draft, `D` deleted) headers that mutt,
//! pine and Dovecot write; the keywords (by name, which the IMAP folder
//! turns into its letters) from `X-Keywords:` (separated by spaces or
//! commas, as Dovecot reads it). `internal_date` is the `From ` line's date
//! (asctime(3), local time, or with a numeric zone), else the file's
//! mtime. Where each message lies in the file (its span) is kept inside
//! the [`Mbox`], by key, from its last scan.
//!
//! ## Keys and UIDs
//! A message's key is the SHA-256 (its first 128 bits, in hex) of its
//! `From ` line and its header section, leaving out the header fields
//! that mail readers rewrite when they change flags or resync
//! (`Status`, `X-Status`, `X-Keywords`, `X-UID`, `X-IMAPbase`, `X-IMAP`,
//! `Content-Length`, `Lines`): mutt marking a message read keeps its
//! key. Messages with the same `From ` line and headers (the same
//! delivery twice in one second) get `#2`, `#3`... after the key, in file
//! order. A key depends on nothing but the message and its identical
//! twins before it, so it stays across sessions, restarts, deliveries
//! (which append) and the removal of other messages.
//!
//! The state directory holds `ironpost-uidlist`, the format of the
//! Maildir store's UID list (`super::uidlist`, Dovecot's
//! `dovecot-uidlist` version 3) with keys where file names would be:
//!
//! ```text
//! 3 V1700000000 N4 G5d41402abc4b2a76b9719d911017c592
//! 1 :8c1e0b0e2d6b2f7e6f1f8a9b9c2d3e4f
//! 3 :8c1e0b0e2d6b2f7e6f1f8a9b9c2d3e4f#2
//! ```
//!
//! A snapshot gives keys not listed the next UIDs in file order and drops
//! the entries of keys gone; UIDs only grow. The UIDVALIDITY is the time
//! the list was made (as Dovecot's); a corrupt list is rebuilt with a
//! higher one. When [`Mbox::expunge`] removes one of several identical
//! messages, the later ones' `#n` change and the list follows them, so
//! their UIDs stay; when another program removes one, a later twin takes
//! the removed one's UID (the same headers, so the same message as far
//! as anyone can tell).
//!
//! ## A mailbox Dovecot has served
//! When the list does not exist yet and the first message has Dovecot's
//! `X-IMAPbase: <uidvalidity> <uidnext>` (or is Dovecot's pseudo message,
//! "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA", with `X-IMAP:`),
//! that UIDVALIDITY and next UID are taken, and every message's `X-UID:`
//! that is above the one before it: POP3 UIDLs (`%08Xu%08Xv`) and IMAP
//! caches stay valid after the move. The pseudo message is not shown and
//! never removed. Messages without a usable `X-UID` get new UIDs. Our
//! list wins from then on; if it is removed while the mbox still has
//! Dovecot's headers they are taken over again, and UIDs given since may
//! be given again (as with a Maildir's `dovecot-uidlist`).
//!
//! ## Locks
//! Every look at the file (snapshot, read, expunge) takes the locks that
//! delivery takes ([`crate::mailbox::mbox`]), in the same order and with
//! the same timeouts and stale rules: the dot lock `FILE.lock`, then an
//! fcntl (OFD) write lock on the whole file, and checks that the file
//! locked is still the one at the path; threads of this process also take
//! a mutex per mbox. A delivery therefore never runs during a scan or a
//! rewrite, and a scan never sees half a message. The UID list is only
//! written under these locks. A missing mbox file is an empty mailbox
//! (its dot lock is still taken, so that a first delivery waits).
//!
//! There is no index yet: a snapshot or an expunge reads the whole file
//! under the locks (in pieces, never held whole); a read takes only its
//! message, unless the file changed and it must be looked for.
//!
//! ## Expunge: in place
//! [`Mbox::expunge`] scans the file under the locks, finds the messages
//! by key (those gone already are skipped), then rewrites the file in
//! place: from the first removed message on, each kept stretch is copied
//! down, in file order, over what was removed; then the file is truncated
//! and fsync'd, then the UID list written. The file keeps its inode,
//! owner, group and mode, and a reader or delivery that has it open
//! keeps the right file.
//!
//! A temporary file renamed over the mbox would have been safer against
//! crashes but was not chosen: Postfix's local(8), procmail and others
//! open the mbox before they wait for its locks, then append to what
//! they opened; after a rename they would append to the old, unlinked
//! file, and that mail would be lost. (ironpost's own delivery checks,
//! theirs do not.) The spool directory may also not be ours to write.
//!
//! What a crash during the rewrite can do (mutt and Dovecot rewrite in
//! place too, with the same risk): nothing before the first removed
//! message is touched, and nothing is cut off (the truncation comes
//! last). If the process dies midway, the file is right up to where the
//! copying had got to and then goes on with the old bytes from that
//! offset: every byte of every kept message is still in the file, but
//! the message being copied may be cut in two (its start copied down, the
//! rest further on in the old bytes), and old copies of messages,
//! expunged ones included, reappear after it. After a power failure
//! midway, any part of the rewritten stretch may hold old or new bytes.
//! Delivery appends after whatever is there. A dot lock left by the
//! crash is removed after 500 s (delivery's stale rule); until then
//! deliveries wait and are deferred.
//!
//! ## Flags: written in place, the headers may grow
//! [`Mbox::write_flags`] writes flags as Dovecot does (checked against
//! Dovecot 2.3's imap on the same files): `Status: RO` (`R` seen, `O` old:
//! always, since a session has seen the message), `X-Status: AFTD` (in
//! that order), `X-Keywords: $Label1 Junk`. A field the message has is
//! rewritten where it is (an empty value kept, `X-Status: `, as Dovecot
//! leaves it; repeats of it dropped); a missing one is added, unless
//! empty, at the end of the header section, before its empty line.
//! `Content-Length:` and `Lines:` are left as they are (the body does not
//! change). Dovecot's `X-UID`, `X-IMAPbase` and the padding it leaves
//! after `X-Keywords:` for later rewrites are not written: the UIDs are in
//! the state directory. A change names what the headers held when the
//! caller looked; if another program changed them since, that change
//! wins and ours is skipped. The key leaves these fields out, so keys and
//! UIDs stay, and so does what clients are shown.
//!
//! The file is rewritten in place, as an expunge is and for the same
//! reason, under the same locks, but the headers may grow: every stretch
//! between two changed headers (and after the last, up to the file's
//! length once the locks are held) moves by the sum of the changes
//! before it. Those that move up (towards the end) are moved first, from
//! the last one back and each from its end, which extends the file; then
//! those that move down, from the first, each from its start; then the
//! new header sections are written into the gaps, the file truncated if
//! it shrank, and fsync'd. No move overwrites bytes not yet moved. A
//! crash midway leaves every old byte somewhere in the file, with parts
//! of it twice (a stretch both where it was and where it went), and the
//! headers being written old or new; nothing before the first changed
//! message is touched. Bytes appended meanwhile by a writer that ignores
//! both locks are moved down after a shrink, as an expunge does; after a
//! growth they may be overwritten (a warning is logged).
//!
//! ## Append
//! [`Mbox::append_all`] (IMAP APPEND and COPY) writes what delivery writes
//! ([`crate::mailbox::mbox::encode`]: a `From MAILER-DAEMON  <date>`
//! line, `>From ` quoting, the empty line after), the message's flags
//! put into its headers as above, under the same locks, fsync'd and cut
//! off again if that fails; a missing file is created by delivery
//! itself. It then takes a snapshot under the same locks to return the
//! message's UID.
//!
//! Everything here blocks (file I/O, locks, commits); async callers use
//! `spawn_blocking`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::flags::Flags;
use super::lock;
use super::maildir::{Message, Snapshot};
use super::uidlist::{Entry, UidList};
use crate::mailbox::context;
use crate::mailbox::mbox::{self as delivery, DotLock, MboxOptions};

/// The UID list in the state directory.
pub const UIDLIST: &str = "ironpost-uidlist";
const UIDLIST_TMP: &str = "ironpost-uidlist.tmp";

/// How often to start over when the file is replaced while we wait for
/// its locks.
const OPEN_TRIES: usize = 3;
/// Lines are read in pieces of at most this many bytes (a line longer
/// than that is never held whole).
const PIECE: usize = 64 * 1024;
/// How much of a header value (or of the `From ` line) is kept to parse.
const VALUE_MAX: usize = 1024;
/// Bytes moved at a time by a rewrite.
const COPY_CHUNK: usize = 1 << 20;
/// Bits of the SHA-256 in a key: 128, as 32 hex digits.
const KEY_BYTES: usize = 16;

/// One mbox file and what ironpost knows about it.
#[derive(Debug, Clone)]
pub struct Mbox {
    path: PathBuf,
    state_dir: PathBuf,
    lock_timeout: Duration,
    stale_lock_time: Duration,
    /// Shared by every `Mbox` of the same file in this process.
    threads: Arc<Mutex<()>>,
    /// Where each message was at the last scan, by key.
    spans: Arc<Mutex<HashMap<String, Span>>>,
}

/// Where one message lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// Its `From ` line.
    start: u64,
    /// Its content: after the `From ` line.
    content: u64,
    /// The content's length (without the empty line after it).
    len: u64,
    /// Where the next message starts, or the end of the file.
    end: u64,
}

/// The held locks of the mbox; released (fcntl lock, dot lock, mutex,
/// in this order) when dropped.
struct Locked<'a> {
    /// `None`: there is no mbox file.
    file: Option<File>,
    _dot: Option<DotLock>,
    _thread: MutexGuard<'a, ()>,
}

impl Mbox {
    /// Opens the mbox file `path` (a missing file is an empty mailbox),
    /// with `state_dir` for what ironpost keeps about it (the UID list),
    /// made (mode 0700) when missing.
    pub fn open(path: &Path, state_dir: &Path) -> io::Result<Mbox> {
        if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: a directory, not an mbox file", path.display()),
            ));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| context(format!("create {}", state_dir.display()), e))?;
        let defaults = MboxOptions::default();
        Ok(Mbox {
            path: path.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            lock_timeout: defaults.lock_timeout,
            stale_lock_time: defaults.stale_lock_time,
            threads: lock::thread_mutex(&canonical(path)),
            spans: Arc::default(),
        })
    }

    /// How long to wait for the locks (delivery's 20 s by default); past
    /// it, calls fail with `WouldBlock`.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Mbox {
        self.lock_timeout = timeout;
        self
    }

    /// The mbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The messages now, by UID (see the module doc). Writes only the UID
    /// list (committed before it returns), never the mbox.
    pub fn snapshot(&self) -> io::Result<Snapshot> {
        self.snapshot_with_keywords().map(|(s, _)| s)
    }

    /// [`Mbox::snapshot`], and the keywords of each message's
    /// `X-Keywords:` by UID (messages without any left out): a
    /// [`Message`]'s flags hold keywords as Maildir letters, which only
    /// the folder's keywords file names.
    pub fn snapshot_with_keywords(&self) -> io::Result<(Snapshot, HashMap<u32, Vec<String>>)> {
        let locked = self.lock()?;
        let (view, list, mtime) = self.look(locked.file.as_ref())?;
        drop(locked);

        let by_key: HashMap<&str, usize> = view
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut keywords = HashMap::new();
        let messages = list
            .entries
            .iter()
            .filter_map(|e| {
                let s = &view.messages[*by_key.get(e.base.as_str())?];
                let words = s.fields.keywords();
                if !words.is_empty() {
                    keywords.insert(e.uid, words);
                }
                Some(Message {
                    uid: e.uid,
                    base: e.base.clone(),
                    path: self.path.clone(),
                    size: s.span.len - s.hidden,
                    wire_size: s.wire,
                    flags: s.fields.flags(),
                    internal_date: s.date.unwrap_or(mtime),
                    recent: s.fields.recent(),
                    pop3_uidl: None,
                })
            })
            .collect();
        Ok((
            Snapshot {
                uidvalidity: list.uidvalidity,
                uidnext: list.next_uid,
                messages,
            },
            keywords,
        ))
    }

    /// Under the locks: scans the file (`None`: there is none), brings the
    /// UID list in line (written when it changed) and remembers the
    /// spans. The view, the list and the file's mtime.
    fn look(&self, file: Option<&File>) -> io::Result<(View, UidList, SystemTime)> {
        let (view, mtime) = match file {
            Some(f) => {
                let mtime = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .map_err(|e| context(format!("stat {}", self.path.display()), e))?;
                (
                    View::new(scan(f, 0, false).map_err(|e| self.read_error(e))?),
                    mtime,
                )
            }
            None => (View::default(), UNIX_EPOCH),
        };
        if view.junk > 0 {
            tracing::warn!(
                "{}: {} bytes before the first \"From \" line belong to no message",
                self.path.display(),
                view.junk
            );
        }
        let (mut list, mut changed) = self.load_list(&view)?;
        changed |= self.sync(&mut list, &view.keys);
        if changed {
            self.write_list(&list)?;
        }
        self.remember(&view);
        Ok((view, list, mtime))
    }

    /// Writes the flags of messages into their `Status:`, `X-Status:` and
    /// `X-Keywords:` header fields, in place (see the module doc), and
    /// fsyncs. Each change names its message by key and says what its
    /// headers held when the caller last looked (`expect`): a message
    /// whose headers another program changed since (or that is gone) is
    /// skipped. True for each change that is in the file now. Keys, UIDs,
    /// and what clients are shown of every message stay the same.
    pub fn write_flags(&self, changes: &[FlagsChange]) -> io::Result<Vec<bool>> {
        let mut done = vec![false; changes.len()];
        if changes.is_empty() {
            return Ok(done);
        }
        let locked = self.lock()?;
        let Some(file) = &locked.file else {
            return Ok(done);
        };
        let view = View::new(scan(file, 0, false).map_err(|e| self.read_error(e))?);
        let mut edits: Vec<(u64, u64, Vec<u8>)> = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let Some(p) = view.position(&c.key) else {
                continue;
            };
            let s = &view.messages[p];
            let now = s.fields.header_flags();
            if !now.same(&c.expect) && !now.same(&c.new) {
                continue;
            }
            let mut head = vec![0u8; (s.header_end - s.span.content) as usize];
            file.read_exact_at(&mut head, s.span.content)
                .map_err(|e| self.read_error(e))?;
            let Some(new_head) = with_flag_headers(&head, &c.new) else {
                continue;
            };
            if new_head != head {
                edits.push((s.span.content, s.header_end, new_head));
            }
            done[i] = true;
        }
        if !edits.is_empty() {
            edits.sort_by_key(|e| e.0);
            self.splice(file, &edits)?;
            let view = View::new(scan(file, 0, false).map_err(|e| self.read_error(e))?);
            self.remember(&view);
        }
        Ok(done)
    }

    /// Appends messages as delivery does (each with a `From ` line with
    /// `MAILER-DAEMON` and its date, `>From ` quoting, the empty line
    /// after it; under the same locks; fsync'd, cut off again if that
    /// fails), each with its flags in its `Status:`, `X-Status:` and
    /// `X-Keywords:` fields (those the message had are replaced). One
    /// write under one lock: all of them are added, or none (IMAP's
    /// MULTIAPPEND and COPY are all or nothing). Returns their UIDs in
    /// order.
    pub fn append_all(
        &self,
        messages: &[(&[u8], &HeaderFlags, SystemTime)],
    ) -> io::Result<Vec<u32>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut data = Vec::new();
        for (message, flags, date) in messages {
            data.extend_from_slice(&delivery::encode(
                "",
                *date,
                &with_flags_in_message(message, flags),
            ));
        }
        let mut locked = self.lock()?;
        if locked.file.is_none() {
            // Created as delivery creates it, under its own locks.
            drop(locked);
            delivery::deliver_encoded(&self.path, &data, &MboxOptions::default())?;
            locked = self.lock()?;
            let (view, list, _) = self.look(locked.file.as_ref())?;
            // The last messages are ours unless a delivery came between.
            let first = view.messages.len().checked_sub(messages.len());
            return self.uids_from(&view, &list, first, messages.len());
        }
        let Some(file) = locked.file.as_ref() else {
            return Err(io::Error::other("the mbox file went away"));
        };
        let path = self.path.display();
        let old_len = file
            .metadata()
            .map_err(|e| context(format!("stat {path}"), e))?
            .len();
        let mut start = old_len;
        delivery::append(file, old_len, |f| {
            if delivery::needs_line_end(f, old_len)? {
                f.write_all_at(b"\n", old_len)?;
                start += 1;
            }
            f.write_all_at(&data, start)
        })
        .map_err(|e| context(format!("append to {path}"), e))?;
        let (view, list, _) = self.look(Some(file))?;
        let first = view.messages.iter().position(|m| m.span.start == start);
        self.uids_from(&view, &list, first, messages.len())
    }

    /// The UIDs of the `count` messages from message `first` on (written
    /// together, so next to each other in the file).
    fn uids_from(
        &self,
        view: &View,
        list: &UidList,
        first: Option<usize>,
        count: usize,
    ) -> io::Result<Vec<u32>> {
        let missing = || {
            io::Error::other(format!(
                "{}: the messages just appended are not where they were written",
                self.path.display()
            ))
        };
        let keys = first
            .and_then(|i| view.keys.get(i..i + count))
            .ok_or_else(missing)?;
        let uids: HashMap<&str, u32> = list
            .entries
            .iter()
            .map(|e| (e.base.as_str(), e.uid))
            .collect();
        keys.iter()
            .map(|k| uids.get(k.as_str()).copied().ok_or_else(missing))
            .collect()
    }

    /// The message's content as stored (LF line ends, as the file has
    /// them), if it is still in the file: checked by key where it was,
    /// else looked for by key. `NotFound` means it was expunged.
    pub fn read(&self, m: &Message) -> io::Result<Vec<u8>> {
        let locked = self.lock()?;
        let Some(file) = &locked.file else {
            return Err(expunged(m));
        };
        let known = self.span_of(&m.base);
        if let Some(span) = known
            && let Some(found) = self.message_at(file, span.start)?
            && found_is(&found, &m.base)
        {
            return self.content(file, &found.span);
        }
        let view = View::new(scan(file, 0, false).map_err(|e| self.read_error(e))?);
        self.remember(&view);
        match view.position(&m.base) {
            Some(i) => self.content(file, &view.messages[i].span),
            None => Err(expunged(m)),
        }
    }

    /// Removes the messages from the file (those gone already are
    /// skipped) and their UIDs from the list; durable when it returns.
    /// The file is rewritten in place: see the module doc for how, and
    /// for what a crash midway does.
    pub fn expunge(&self, msgs: &[&Message]) -> io::Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let locked = self.lock()?;
        let view = match &locked.file {
            Some(f) => View::new(scan(f, 0, false).map_err(|e| self.read_error(e))?),
            None => View::default(),
        };
        let (mut list, changed) = self.load_list(&view)?;
        let doomed: HashSet<&str> = msgs.iter().map(|m| m.base.as_str()).collect();
        let removed: Vec<bool> = view
            .keys
            .iter()
            .map(|k| doomed.contains(k.as_str()))
            .collect();
        let ranges: Vec<(u64, u64)> = view
            .messages
            .iter()
            .zip(&removed)
            .filter(|(_, r)| **r)
            .map(|(s, _)| (s.span.start, s.span.end))
            .collect();
        if let Some(file) = &locked.file
            && !ranges.is_empty()
        {
            self.rewrite(file, &ranges, view.len)?;
        }

        // The survivors, where they are now, with their keys now (a twin
        // after a removed one changes its `#n`) and their UIDs kept.
        let shift = |at: u64| -> u64 {
            ranges
                .iter()
                .filter(|(_, end)| *end <= at)
                .map(|(start, end)| end - start)
                .sum()
        };
        let mut survivors = View {
            junk: view.junk,
            len: view.len - ranges.iter().map(|(s, e)| e - s).sum::<u64>(),
            base: view.base,
            ..View::default()
        };
        for (s, _) in view.messages.iter().zip(&removed).filter(|(_, r)| !**r) {
            let mut s = s.clone();
            let by = shift(s.span.start);
            s.span.start -= by;
            s.span.content -= by;
            s.span.end -= by;
            survivors.messages.push(s);
        }
        survivors.keys = keys(&survivors.messages);
        let old_keys = view.keys.iter().zip(&removed).filter(|(_, r)| !**r);
        let before = list.to_text();
        let mut by_key: HashMap<String, Entry> = list
            .entries
            .drain(..)
            .map(|e| (e.base.clone(), e))
            .collect();
        for ((old, _), new) in old_keys.zip(&survivors.keys) {
            if let Some(mut e) = by_key.remove(old) {
                e.base = new.clone();
                list.entries.push(e);
            }
        }
        list.entries.sort_by_key(|e| e.uid);
        if changed || list.to_text() != before {
            self.write_list(&list)?;
        }
        self.remember(&survivors);
        Ok(())
    }

    /// Copies the kept bytes after each removed range down over the
    /// removed ones, in file order, then truncates and fsyncs. `ranges`
    /// are in file order and do not overlap; `len` is the length the scan
    /// saw.
    fn rewrite(&self, file: &File, ranges: &[(u64, u64)], len: u64) -> io::Result<()> {
        let path = self.path.display();
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut to = ranges[0].0;
        let mut copy = |from: u64, until: u64, to: &mut u64| -> io::Result<()> {
            let mut at = from;
            while at < until {
                let n = (until - at).min(buf.len() as u64) as usize;
                file.read_exact_at(&mut buf[..n], at)
                    .map_err(|e| context(format!("read {path}"), e))?;
                file.write_all_at(&buf[..n], *to)
                    .map_err(|e| context(format!("write {path}"), e))?;
                at += n as u64;
                *to += n as u64;
            }
            Ok(())
        };
        for (i, &(_, end)) in ranges.iter().enumerate() {
            let keep_until = ranges.get(i + 1).map_or(len, |r| r.0);
            copy(end, keep_until, &mut to)?;
        }
        // A writer that ignores both our locks may have appended since the
        // scan: move that too rather than cut it off.
        let mut old_end = len;
        loop {
            let now = file
                .metadata()
                .map_err(|e| context(format!("stat {path}"), e))?
                .len();
            if now <= old_end {
                break;
            }
            tracing::warn!(
                "{path}: {} bytes appended without the mailbox locks during an expunge",
                now - old_end
            );
            copy(old_end, now, &mut to)?;
            old_end = now;
        }
        file.set_len(to)
            .and_then(|()| file.sync_all())
            .map_err(|e| context(format!("truncate {path}"), e))
    }

    /// Replaces each `(start, end, bytes)` range of the file with its
    /// bytes, in place; what lies between the ranges and after the last
    /// one moves down or up with them (see the module doc), then fsync.
    /// `edits` are in file order and do not overlap.
    fn splice(&self, file: &File, edits: &[(u64, u64, Vec<u8>)]) -> io::Result<()> {
        let path = self.path.display();
        let stat = |file: &File| {
            file.metadata()
                .map(|m| m.len())
                .map_err(|e| context(format!("stat {path}"), e))
        };
        // Whatever is there now, bytes appended by lock-ignoring writers
        // since the scan included.
        let len = stat(file)?;
        // The stretches that stay as they are, and how far each moves.
        let mut stretches: Vec<(u64, u64, i64)> = Vec::with_capacity(edits.len());
        let mut shift: i64 = 0;
        for (i, (start, end, bytes)) in edits.iter().enumerate() {
            shift += bytes.len() as i64 - (end - start) as i64;
            let until = edits.get(i + 1).map_or(len, |e| e.0);
            stretches.push((*end, until.max(*end), shift));
        }
        let mut buf = vec![0u8; COPY_CHUNK];
        // Those that move up from the last, then those that move down
        // from the first: none overwrites bytes not yet moved.
        for &(from, until, by) in stretches.iter().rev().filter(|s| s.2 > 0) {
            move_bytes(file, &mut buf, from, until, by)
                .map_err(|e| context(format!("rewrite {path}"), e))?;
        }
        for &(from, until, by) in stretches.iter().filter(|s| s.2 < 0) {
            move_bytes(file, &mut buf, from, until, by)
                .map_err(|e| context(format!("rewrite {path}"), e))?;
        }
        let mut by: i64 = 0;
        for (start, end, bytes) in edits {
            let at = start.saturating_add_signed(by);
            file.write_all_at(bytes, at)
                .map_err(|e| context(format!("write {path}"), e))?;
            by += bytes.len() as i64 - (end - start) as i64;
        }
        let mut new_len = len.saturating_add_signed(by);
        if by < 0 {
            // As in `rewrite`: what a lock-ignoring writer appended
            // meanwhile moves down too.
            let mut old_end = len;
            loop {
                let now = stat(file)?;
                if now <= old_end {
                    break;
                }
                tracing::warn!(
                    "{path}: {} bytes appended without the mailbox locks while flags were written",
                    now - old_end
                );
                let mut to = new_len;
                let mut at = old_end;
                while at < now {
                    let n = (now - at).min(buf.len() as u64) as usize;
                    file.read_exact_at(&mut buf[..n], at)
                        .and_then(|()| file.write_all_at(&buf[..n], to))
                        .map_err(|e| context(format!("rewrite {path}"), e))?;
                    at += n as u64;
                    to += n as u64;
                }
                new_len = to;
                old_end = now;
            }
            file.set_len(new_len)
                .map_err(|e| context(format!("truncate {path}"), e))?;
        } else if stat(file)? > new_len {
            tracing::warn!(
                "{path}: bytes appended without the mailbox locks while flags were written"
            );
        }
        file.sync_all()
            .map_err(|e| context(format!("fsync {path}"), e))
    }

    /// The message whose `From ` line starts at `at`, if a message starts
    /// there (first line of the file, after an empty line, or a `From `
    /// line with a date at the start of a line).
    fn message_at(&self, file: &File, at: u64) -> io::Result<Option<Scanned>> {
        let before = line_before(file, at).map_err(|e| self.read_error(e))?;
        if before == Before::Inside {
            return Ok(None);
        }
        let found = scan(file, at, true).map_err(|e| self.read_error(e))?;
        Ok(found
            .messages
            .into_iter()
            .next()
            .filter(|s| s.span.start == at && (before == Before::Start || s.date.is_some())))
    }

    fn content(&self, file: &File, span: &Span) -> io::Result<Vec<u8>> {
        let mut data = vec![0u8; span.len as usize];
        file.read_exact_at(&mut data, span.content)
            .map_err(|e| self.read_error(e))?;
        Ok(without_hidden(data))
    }

    fn read_error(&self, e: io::Error) -> io::Error {
        context(format!("read {}", self.path.display()), e)
    }

    fn span_of(&self, key: &str) -> Option<Span> {
        self.spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    /// Keeps where each message of `view` is, for [`Mbox::read`].
    fn remember(&self, view: &View) {
        let spans = view
            .keys
            .iter()
            .zip(&view.messages)
            .map(|(k, s)| (k.clone(), s.span))
            .collect();
        *self.spans.lock().unwrap_or_else(|p| p.into_inner()) = spans;
    }

    /// Takes the mutex, the dot lock and the fcntl lock (see the module
    /// doc), starting over when the file at the path changed meanwhile.
    fn lock(&self) -> io::Result<Locked<'_>> {
        let guard = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let deadline = now
            .checked_add(self.lock_timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86400));
        let path = &self.path;
        for _ in 0..OPEN_TRIES {
            let file = open_mbox(path)?;
            let dot = delivery::dotlock(path, deadline, self.stale_lock_time)?;
            let Some(file) = file else {
                match fs::symlink_metadata(path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Ok(Locked {
                            file: None,
                            _dot: dot,
                            _thread: guard,
                        });
                    }
                    // Created meanwhile.
                    _ => continue,
                }
            };
            delivery::fcntl_lock(&file, deadline)
                .map_err(|e| context(format!("lock {}", path.display()), e))?;
            let held = file
                .metadata()
                .map_err(|e| context(format!("stat {}", path.display()), e))?;
            let same = fs::metadata(path)
                .is_ok_and(|now| now.dev() == held.dev() && now.ino() == held.ino());
            if same {
                return Ok(Locked {
                    file: Some(file),
                    _dot: dot,
                    _thread: guard,
                });
            }
            tracing::warn!("{}: file replaced while locking; again", path.display());
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{}: file status changed unexpectedly", path.display()),
        ))
    }

    fn list_path(&self) -> PathBuf {
        self.state_dir.join(UIDLIST)
    }

    /// Under the locks: our list; else Dovecot's UIDs from the mbox; else
    /// a new list. True when it must be written.
    fn load_list(&self, view: &View) -> io::Result<(UidList, bool)> {
        let path = self.list_path();
        let data = match read_regular(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let list = match take_over_dovecot(view) {
                    Some(list) => {
                        tracing::info!(
                            "{}: UIDVALIDITY {} and {} UIDs taken over from Dovecot's \
                             X-IMAPbase and X-UID headers",
                            self.path.display(),
                            list.uidvalidity,
                            list.entries.len()
                        );
                        list
                    }
                    None => UidList::new(fresh_uidvalidity(None)),
                };
                return Ok((list, true));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let v = fresh_uidvalidity(None);
                tracing::warn!("{}: {e}; new list with UIDVALIDITY {v}", path.display());
                return Ok((UidList::new(v), true));
            }
            Err(e) => return Err(context(format!("read {}", path.display()), e)),
        };
        match UidList::parse(&data) {
            Ok(list) => Ok((list, false)),
            Err(bad) => {
                let v = fresh_uidvalidity(bad.uidvalidity);
                tracing::warn!(
                    "{}: line {}: {}; new list with UIDVALIDITY {v}",
                    path.display(),
                    bad.line,
                    bad.what
                );
                Ok((UidList::new(v), true))
            }
        }
    }

    /// Brings `list` in line with the keys in the file: drops the entries
    /// of keys gone, gives new keys the next UIDs in file order. True when
    /// the list changed.
    fn sync(&self, list: &mut UidList, keys: &[String]) -> bool {
        let present: HashSet<&str> = keys.iter().map(String::as_str).collect();
        let before = list.entries.len();
        list.entries.retain(|e| present.contains(e.base.as_str()));
        let mut changed = list.entries.len() != before;
        let listed: HashSet<String> = list.entries.iter().map(|e| e.base.clone()).collect();
        let new: Vec<&String> = keys.iter().filter(|k| !listed.contains(*k)).collect();
        if u64::from(list.next_uid) + new.len() as u64 > u64::from(u32::MAX) {
            let v = fresh_uidvalidity(Some(list.uidvalidity));
            tracing::warn!(
                "{}: UIDs used up; renumbered with UIDVALIDITY {v}",
                self.list_path().display()
            );
            *list = UidList::new(v);
            self.sync(list, keys);
            return true;
        }
        for key in new {
            list.entries.push(Entry::new(list.next_uid, key));
            list.next_uid += 1;
            changed = true;
        }
        changed
    }

    /// Replaces the list (temporary file, fsync, rename) and commits.
    /// Under the locks only.
    fn write_list(&self, list: &UidList) -> io::Result<()> {
        let tmp = self.state_dir.join(UIDLIST_TMP);
        let path = self.list_path();
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(format!("remove {}", tmp.display()), e)),
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| context(format!("create {}", tmp.display()), e))?;
        f.write_all(list.to_text().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| context(format!("write {}", tmp.display()), e))?;
        drop(f);
        fs::rename(&tmp, &path)
            .map_err(|e| context(format!("rename {} to {UIDLIST}", tmp.display()), e))?;
        crate::durable::commit(&self.state_dir)
    }
}

/// Moves the bytes `from..until` of the file by `by` (either way, the
/// two places may overlap), `buf` at a time.
fn move_bytes(file: &File, buf: &mut [u8], from: u64, until: u64, by: i64) -> io::Result<()> {
    if by > 0 {
        let mut end = until;
        while end > from {
            let n = (end - from).min(buf.len() as u64) as usize;
            let at = end - n as u64;
            file.read_exact_at(&mut buf[..n], at)?;
            file.write_all_at(&buf[..n], at.saturating_add_signed(by))?;
            end = at;
        }
    } else if by < 0 {
        let mut at = from;
        while at < until {
            let n = (until - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            file.write_all_at(&buf[..n], at.saturating_add_signed(by))?;
            at += n as u64;
        }
    }
    Ok(())
}

/// Is `found` the message of key `key`? Only a key without `#n` can be
/// checked by itself (a twin's number depends on the messages before it).
fn found_is(found: &Scanned, key: &str) -> bool {
    !key.contains('#') && !found.fields.pseudo_marker() && hex_key(&found.hash) == key
}

fn expunged(m: &Message) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("message UID {} ({}) was expunged", m.uid, m.base),
    )
}

/// `path` with its directory made canonical (the file itself may not
/// exist yet): the same key for every way of naming one mbox.
fn canonical(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            fs::canonicalize(dir)
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Opens the mbox for reading and writing (an fcntl write lock needs
/// both), as delivery does: no symbolic link unless root owns it, only a
/// regular file. `None`: there is none.
fn open_mbox(path: &Path) -> io::Result<Option<File>> {
    let open = |follow: bool| {
        let mut flags = nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
        if !follow {
            flags |= nix::libc::O_NOFOLLOW;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
    };
    let cannot = |e| context(format!("cannot open file {}", path.display()), e);
    let file = match open(false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            let l = fs::symlink_metadata(path).map_err(cannot)?;
            if l.file_type().is_symlink() && l.uid() != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "cannot open file {}: file is a symbolic link",
                        path.display()
                    ),
                ));
            }
            match open(true) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(cannot(e)),
            }
        }
        Err(e) => return Err(cannot(e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| context(format!("stat {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(Some(file))
}

/// Reads a regular file (no symlink followed; `InvalidData` for anything
/// but a regular file).
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let (mut f, _) = super::open_regular(path, 0)?;
    let mut data = Vec::new();
    f.read_to_end(&mut data)?;
    Ok(data)
}

/// A UIDVALIDITY for a new list: now (Unix time, as Dovecot), and above
/// `old`, the list's before, when known.
fn fresh_uidvalidity(old: Option<u32>) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .max(1);
    match old {
        Some(o) if now <= o => o.wrapping_add(1).max(1),
        _ => now,
    }
}

/// The list Dovecot's headers make, if the first message (or Dovecot's
/// pseudo message) has `X-IMAPbase`/`X-IMAP`: its UIDVALIDITY and next
/// UID, and the `X-UID` of each message that is above the one before.
fn take_over_dovecot(view: &View) -> Option<UidList> {
    let (uidvalidity, next) = view.base?;
    let mut list = UidList::new(uidvalidity);
    let mut last = 0u32;
    for (s, key) in view.messages.iter().zip(&view.keys) {
        if let Some(uid) = s.fields.x_uid()
            && uid > last
        {
            list.entries.push(Entry::new(uid, key));
            last = uid;
        }
    }
    list.next_uid = next.max(last.saturating_add(1)).max(1);
    Some(list)
}

// ---------------------------------------------------------------------
// The scanner.

/// Reads a file from a position without moving its offset.
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads up to and including the next LF, or `max` bytes, into `out`.
/// Returns how many bytes (0 at the end of the file).
fn read_piece(r: &mut impl BufRead, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let mut total = 0;
    while total < max {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let room = (max - total).min(buf.len());
        let (n, done) = match buf[..room].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (room, false),
        };
        out.extend_from_slice(&buf[..n]);
        r.consume(n);
        total += n;
        if done {
            break;
        }
    }
    Ok(total)
}

/// What precedes a position in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// The start of the file, or an empty line (`\n`, `\r\n`).
    Start,
    /// A line that is not empty.
    Line,
    /// Not the start of a line.
    Inside,
}

fn line_before(file: &File, at: u64) -> io::Result<Before> {
    if at == 0 {
        return Ok(Before::Start);
    }
    let back = at.min(3) as usize;
    let mut buf = [0u8; 3];
    let b = &mut buf[..back];
    file.read_exact_at(b, at - back as u64)?;
    if !b.ends_with(b"\n") {
        return Ok(Before::Inside);
    }
    // The line that ends at `at` is empty if it is "\n" or "\r\n" and
    // starts the file or follows a LF itself.
    let empty = |line: &[u8]| {
        b.ends_with(line)
            && match b.len().checked_sub(line.len() + 1) {
                Some(i) => b[i] == b'\n',
                None => at == line.len() as u64,
            }
    };
    Ok(if empty(b"\n") || empty(b"\r\n") {
        Before::Start
    } else {
        Before::Line
    })
}

/// What one pass over the file found.
#[derive(Debug, Default)]
struct ScanResult {
    messages: Vec<Scanned>,
    /// Where the pass stopped (the file's length, unless one message was
    /// asked for).
    len: u64,
    /// Bytes before the first message.
    junk: u64,
}

/// One message as the scanner saw it.
#[derive(Debug, Clone)]
struct Scanned {
    span: Span,
    /// SHA-256 of the `From ` line and the header lines that count.
    hash: [u8; 32],
    /// The content's size with CRLF line ends, without the hidden
    /// header fields.
    wire: u64,
    /// The bytes of the hidden header fields (see [`hidden`]).
    hidden: u64,
    fields: Fields,
    /// From the `From ` line.
    date: Option<SystemTime>,
    /// Where the header section ends: its empty line, or the content's
    /// end when it has none.
    header_end: u64,
}

/// The header fields the store reads, first occurrence of each, values
/// (with continuation lines) cut at [`VALUE_MAX`].
#[derive(Debug, Clone, Default)]
struct Fields {
    status: Option<Vec<u8>>,
    x_status: Option<Vec<u8>>,
    x_uid: Option<Vec<u8>>,
    x_imapbase: Option<Vec<u8>>,
    x_imap: Option<Vec<u8>>,
    x_keywords: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Status,
    XStatus,
    XKeywords,
    XUid,
    XImapBase,
    XImap,
}

impl Fields {
    fn slot(&mut self, which: Which) -> &mut Option<Vec<u8>> {
        match which {
            Which::Status => &mut self.status,
            Which::XStatus => &mut self.x_status,
            Which::XKeywords => &mut self.x_keywords,
            Which::XUid => &mut self.x_uid,
            Which::XImapBase => &mut self.x_imapbase,
            Which::XImap => &mut self.x_imap,
        }
    }

    fn letters(value: &Option<Vec<u8>>) -> &[u8] {
        value.as_deref().unwrap_or(b"")
    }

    /// `Status: R` seen; `X-Status: A` answered, `F` flagged, `T` draft,
    /// `D` deleted (Dovecot's and mutt's letters).
    fn flags(&self) -> Flags {
        let status = Fields::letters(&self.status);
        let x = Fields::letters(&self.x_status);
        Flags {
            seen: status.contains(&b'R'),
            answered: x.contains(&b'A'),
            flagged: x.contains(&b'F'),
            draft: x.contains(&b'T'),
            deleted: x.contains(&b'D'),
            ..Flags::default()
        }
    }

    /// Without `Status: O` (old), a message is recent.
    fn recent(&self) -> bool {
        !Fields::letters(&self.status).contains(&b'O')
    }

    fn x_uid(&self) -> Option<u32> {
        let v = std::str::from_utf8(self.x_uid.as_deref()?).ok()?.trim();
        match v.parse::<u32>() {
            Ok(u) if u > 0 && v.bytes().all(|b| b.is_ascii_digit()) => Some(u),
            _ => None,
        }
    }

    /// `<uidvalidity> <uidnext> [keywords...]` of `X-IMAPbase` or
    /// `X-IMAP` (the pseudo message's).
    fn imap_base(value: &Option<Vec<u8>>) -> Option<(u32, u32)> {
        let text = std::str::from_utf8(value.as_deref()?).ok()?;
        let mut words = text.split_ascii_whitespace();
        let v: u32 = words.next()?.parse().ok()?;
        let n: u32 = words.next()?.parse().ok()?;
        (v > 0).then_some((v, n))
    }

    fn pseudo_marker(&self) -> bool {
        self.x_imap.is_some()
    }

    /// The keywords of `X-Keywords:` (separated by spaces or commas, as
    /// Dovecot reads them); words that cannot be IMAP keywords are
    /// skipped, and so are repeats (compared without regard to case).
    fn keywords(&self) -> Vec<String> {
        let value = Fields::letters(&self.x_keywords);
        let mut out: Vec<String> = Vec::new();
        for word in value.split(|b| matches!(b, b' ' | b',' | b'\t' | b'\r' | b'\n')) {
            let Ok(word) = std::str::from_utf8(word) else {
                continue;
            };
            if is_keyword(word) && !out.iter().any(|k| k.eq_ignore_ascii_case(word)) {
                out.push(word.to_string());
            }
        }
        out
    }

    /// The flags these headers hold.
    fn header_flags(&self) -> HeaderFlags {
        HeaderFlags {
            flags: self.flags(),
            keywords: self.keywords(),
            old: !self.recent(),
        }
    }
}

/// Can `word` be an IMAP keyword (an atom, RFC 9051 §9: no
/// `(){ %*"\]`, no controls, not a `\` system flag)?
fn is_keyword(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 255
        && word
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

/// A message's flags as its `Status:`, `X-Status:` and `X-Keywords:`
/// header fields hold them, the way Dovecot and mutt write them:
/// `Status: R` seen, `O` old (not recent); `X-Status: A` answered, `F`
/// flagged, `T` draft, `D` deleted; `X-Keywords:` the keywords by name,
/// separated by spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFlags {
    /// The system flags (its `keywords` and `passed` are not used).
    pub flags: Flags,
    /// Keywords by name.
    pub keywords: Vec<String>,
    /// `Status: O`: a session has seen the message (it is not recent).
    pub old: bool,
}

impl HeaderFlags {
    /// The same flags and keywords (keywords in any order and case; `old`
    /// not compared).
    pub fn same(&self, other: &HeaderFlags) -> bool {
        let f = |h: &HeaderFlags| {
            (
                h.flags.seen,
                h.flags.answered,
                h.flags.flagged,
                h.flags.draft,
                h.flags.deleted,
            )
        };
        let mut a: Vec<String> = self
            .keywords
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let mut b: Vec<String> = other
            .keywords
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        f(self) == f(other) && a == b
    }

    /// `Status:`'s value: `R` then `O`, as Dovecot writes them.
    fn status(&self) -> String {
        let mut s = String::new();
        if self.flags.seen {
            s.push('R');
        }
        if self.old {
            s.push('O');
        }
        s
    }

    /// `X-Status:`'s value, in Dovecot's order `AFTD`.
    fn x_status(&self) -> String {
        let f = &self.flags;
        [
            (f.answered, 'A'),
            (f.flagged, 'F'),
            (f.draft, 'T'),
            (f.deleted, 'D'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }

    fn x_keywords(&self) -> String {
        let words: Vec<&str> = self
            .keywords
            .iter()
            .map(String::as_str)
            .filter(|k| is_keyword(k))
            .collect();
        words.join(" ")
    }
}

/// A change for [`Mbox::write_flags`].
#[derive(Debug, Clone)]
pub struct FlagsChange {
    /// The message's key ([`Message::base`]).
    pub key: String,
    /// What its headers held at the caller's last look.
    pub expect: HeaderFlags,
    pub new: HeaderFlags,
}

/// A whole message (as a client gives it to APPEND) with its flag
/// fields set as [`with_flag_headers`] sets them.
fn with_flags_in_message(message: &[u8], flags: &HeaderFlags) -> Vec<u8> {
    let mut at = 0;
    let mut end = message.len();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            end = at;
            break;
        }
        at += line.len();
    }
    let mut head = message[..end].to_vec();
    if !head.is_empty() && !head.ends_with(b"\n") {
        head.extend_from_slice(b"\r\n");
    }
    let mut out = with_flag_headers(&head, flags).unwrap_or(head);
    if end == message.len() {
        // No body: the empty line that ends the header section.
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(&message[end..]);
    }
    out
}

/// The header section `head` (from after the `From ` line to before the
/// empty line that ends it) with its `Status:`, `X-Status:` and
/// `X-Keywords:` fields saying `flags`: an existing field is rewritten
/// where it is (later repeats of it dropped, an empty value kept as
/// Dovecot keeps it: `X-Status: `), a missing one added at the end, in
/// this order, unless empty. `None` when the section does not end in a
/// line end (nothing could be added after it without changing it).
fn with_flag_headers(head: &[u8], flags: &HeaderFlags) -> Option<Vec<u8>> {
    if !head.is_empty() && !head.ends_with(b"\n") {
        return None;
    }
    let crlf = head.ends_with(b"\r\n");
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let wanted = [
        (Which::Status, "Status", flags.status()),
        (Which::XStatus, "X-Status", flags.x_status()),
        (Which::XKeywords, "X-Keywords", flags.x_keywords()),
    ];
    let mut written = [false; 3];
    let mut out = Vec::with_capacity(head.len() + 64);
    // The field the current line belongs to: one of `wanted` (skipped).
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if !matches!(line[0], b' ' | b'\t') {
            let colon = line.iter().position(|&b| b == b':');
            let name = &line[..colon.unwrap_or(line.len())];
            let which = classify(name).1;
            skipping = false;
            if let Some(i) = wanted.iter().position(|w| Some(w.0) == which) {
                skipping = true;
                if !written[i] {
                    written[i] = true;
                    let (_, name, value) = &wanted[i];
                    let line_eol: &[u8] = if line.ends_with(b"\r\n") {
                        b"\r\n"
                    } else {
                        b"\n"
                    };
                    out.extend_from_slice(format!("{name}: {value}").as_bytes());
                    out.extend_from_slice(line_eol);
                }
            }
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    for (i, (_, name, value)) in wanted.iter().enumerate() {
        if !written[i] && !value.is_empty() {
            out.extend_from_slice(format!("{name}: {value}").as_bytes());
            out.extend_from_slice(eol);
        }
    }
    Some(out)
}

/// Header fields that are the mailbox's own bookkeeping, not the
/// message's, and so are never shown to clients (as Dovecot hides them):
/// a change of flags never changes a message's content or size.
/// They are those left out of the key (see [`classify`]) but `Lines:`,
/// which Dovecot shows.
fn hidden(name: &[u8]) -> bool {
    hidden_as(name, classify(name).0)
}

/// [`hidden`] when [`classify`] already said whether the field counts.
fn hidden_as(name: &[u8], counts: bool) -> bool {
    !counts && !name.trim_ascii().eq_ignore_ascii_case(b"lines")
}

/// The content without its [`hidden`] header fields (continuation lines
/// included), the rest as it is.
fn without_hidden(data: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    let mut skipping = false;
    while at < data.len() {
        let end = data[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| at + i + 1);
        let line = &data[at..end];
        if line == b"\n" || line == b"\r\n" {
            out.extend_from_slice(&data[at..]);
            return out;
        }
        if !matches!(line[0], b' ' | b'\t') {
            let colon = line.iter().position(|&b| b == b':');
            skipping = hidden(&line[..colon.unwrap_or(line.len())]);
        }
        if !skipping {
            out.extend_from_slice(line);
        }
        at = end;
    }
    out
}

/// How a header field counts: in the key or not, read or not.
fn classify(name: &[u8]) -> (bool, Option<Which>) {
    let name = name.trim_ascii().to_ascii_lowercase();
    match name.as_slice() {
        b"status" => (false, Some(Which::Status)),
        b"x-status" => (false, Some(Which::XStatus)),
        b"x-uid" => (false, Some(Which::XUid)),
        b"x-imapbase" => (false, Some(Which::XImapBase)),
        b"x-imap" => (false, Some(Which::XImap)),
        b"x-keywords" => (false, Some(Which::XKeywords)),
        b"content-length" | b"lines" => (false, None),
        _ => (true, None),
    }
}

/// A message being scanned.
struct Building {
    start: u64,
    /// Where the content starts; set when the `From ` line ends.
    content: Option<u64>,
    from_line: Vec<u8>,
    in_headers: bool,
    hasher: Sha256,
    /// The header field the current line belongs to: counted in the key,
    /// and read into `fields`.
    field_counts: bool,
    field_read: Option<Which>,
    /// The current header field is one clients are not shown.
    field_hidden: bool,
    wire: u64,
    hidden: u64,
    hidden_wire: u64,
    fields: Fields,
    /// Where the empty line that ends the header section is.
    header_end: Option<u64>,
}

impl Building {
    fn new(start: u64) -> Building {
        Building {
            start,
            content: None,
            from_line: Vec::new(),
            in_headers: true,
            hasher: Sha256::new(),
            field_counts: true,
            field_read: None,
            field_hidden: false,
            wire: 0,
            hidden: 0,
            hidden_wire: 0,
            fields: Fields::default(),
            header_end: None,
        }
    }

    /// One piece of a line (the whole line or part of a long one).
    fn piece(&mut self, piece: &[u8], at: u64, line_start: bool, ends_line: bool, wire: u64) {
        if self.content.is_none() {
            // The `From ` line.
            self.hasher.update(piece);
            let room = VALUE_MAX.saturating_sub(self.from_line.len());
            self.from_line
                .extend_from_slice(&piece[..room.min(piece.len())]);
            if ends_line {
                self.content = Some(at + piece.len() as u64);
            }
            return;
        }
        self.wire += wire;
        if !self.in_headers {
            return;
        }
        let mut value = piece;
        if line_start {
            if piece == b"\n" || piece == b"\r\n" {
                self.in_headers = false;
                self.header_end = Some(at);
                return;
            }
            if !matches!(piece[0], b' ' | b'\t') {
                let colon = piece.iter().position(|&b| b == b':');
                let name = &piece[..colon.unwrap_or(piece.len())];
                let (counts, read) = classify(name);
                self.field_counts = counts;
                self.field_hidden = hidden_as(name, counts);
                self.field_read = read.filter(|&w| self.fields.slot(w).is_none());
                if let Some(w) = self.field_read {
                    *self.fields.slot(w) = Some(Vec::new());
                }
                value = colon.map_or(&[][..], |c| &piece[c + 1..]);
            }
        }
        if self.field_counts {
            self.hasher.update(piece);
        }
        if self.field_hidden {
            self.hidden += piece.len() as u64;
            self.hidden_wire += wire;
        }
        if let Some(w) = self.field_read
            && let Some(v) = self.fields.slot(w)
        {
            let room = VALUE_MAX.saturating_sub(v.len());
            v.extend_from_slice(&value[..room.min(value.len())]);
        }
    }

    /// The message, ending at `end`; `blank` is the empty line just
    /// before `end` (offset, wire size), which is not content.
    fn finish(self, end: u64, blank: Option<(u64, u64)>) -> Scanned {
        let content = self.content.unwrap_or(end);
        let (content_end, wire) = match blank {
            Some((at, w)) if at >= content => (at, self.wire - w),
            _ => (end, self.wire),
        };
        let wire = wire - self.hidden_wire;
        let header_end = self.header_end.unwrap_or(content_end).min(content_end);
        Scanned {
            header_end,
            span: Span {
                start: self.start,
                content,
                len: content_end - content,
                end,
            },
            hash: self.hasher.finalize().into(),
            wire,
            hidden: self.hidden,
            fields: self.fields,
            date: from_line_date(&self.from_line),
        }
    }
}

/// Splits the file from `start` into messages (see the module doc). The
/// first line read counts as the start of the file. With `one`, stops at
/// the start of the second message.
fn scan(file: &File, start: u64, one: bool) -> io::Result<ScanResult> {
    let mut reader = BufReader::with_capacity(PIECE, At { file, pos: start });
    let mut out = ScanResult::default();
    let mut piece = Vec::with_capacity(256);
    let mut pos = start;
    let mut cur: Option<Building> = None;
    let mut at_line_start = true;
    let mut last_cr = false;
    // The line before, if it was empty: (offset, wire size).
    let mut blank_before: Option<(u64, u64)> = None;
    loop {
        piece.clear();
        let n = read_piece(&mut reader, &mut piece, PIECE)?;
        if n == 0 {
            break;
        }
        let at = pos;
        pos += n as u64;
        let line_start = at_line_start;
        let ends_line = piece.last() == Some(&b'\n');
        at_line_start = ends_line;
        let cr_before_lf = if n >= 2 {
            piece[n - 2] == b'\r'
        } else {
            last_cr
        };
        last_cr = piece.last() == Some(&b'\r');
        let wire = n as u64 + u64::from(ends_line && !cr_before_lf);
        if line_start {
            let before = blank_before.take();
            if piece.starts_with(b"From ")
                && (at == start
                    || before.is_some()
                    || from_line_date(&piece[..n.min(VALUE_MAX)]).is_some())
            {
                if let Some(b) = cur.take() {
                    out.messages.push(b.finish(at, before));
                    if one {
                        out.len = at;
                        return Ok(out);
                    }
                }
                let mut b = Building::new(at);
                b.piece(&piece, at, true, ends_line, wire);
                cur = Some(b);
                continue;
            }
            if piece == b"\n" || piece == b"\r\n" {
                blank_before = Some((at, wire));
            }
        }
        match &mut cur {
            Some(b) => b.piece(&piece, at, line_start, ends_line, wire),
            None => out.junk += n as u64,
        }
    }
    if let Some(b) = cur.take() {
        out.messages.push(b.finish(pos, blank_before));
    }
    out.len = pos;
    Ok(out)
}

/// The messages of a scan with their keys; Dovecot's pseudo message
/// taken out.
#[derive(Debug, Default)]
struct View {
    messages: Vec<Scanned>,
    /// The key of each message, in the same order.
    keys: Vec<String>,
    /// Dovecot's UIDVALIDITY and next UID, from the first message.
    base: Option<(u32, u32)>,
    len: u64,
    junk: u64,
}

impl View {
    fn new(scan: ScanResult) -> View {
        let mut messages = scan.messages;
        let mut base = None;
        if let Some(first) = messages.first() {
            if first.fields.pseudo_marker() {
                base = Fields::imap_base(&first.fields.x_imap);
                messages.remove(0);
            } else {
                base = Fields::imap_base(&first.fields.x_imapbase);
            }
        }
        View {
            keys: keys(&messages),
            messages,
            base,
            len: scan.len,
            junk: scan.junk,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }
}

fn hex_key(hash: &[u8; 32]) -> String {
    hash[..KEY_BYTES]
        .iter()
        .fold(String::with_capacity(2 * KEY_BYTES), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The keys of messages in file order: the hash, with `#2`, `#3`... for
/// the second and later of identical ones.
fn keys(messages: &[Scanned]) -> Vec<String> {
    let mut seen: HashMap<[u8; 32], u32> = HashMap::new();
    messages
        .iter()
        .map(|m| {
            let n = seen.entry(m.hash).or_insert(0);
            *n += 1;
            let key = hex_key(&m.hash);
            if *n == 1 { key } else { format!("{key}#{n}") }
        })
        .collect()
}

// ---------------------------------------------------------------------
// The date of a `From ` line.

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The time in a `From ` line: `From sender  Sun Nov  2 09:05:00 2026`
/// (asctime(3), local time), also with the seconds left out, a two-digit
/// year, or a zone (`+0100`, `UTC`, before or after the year) as other
/// writers put it. Named zones other than UTC/GMT are read as local time.
fn from_line_date(line: &[u8]) -> Option<SystemTime> {
    use chrono::TimeZone;
    let text = String::from_utf8_lossy(line);
    let rest = text.strip_prefix("From ")?;
    let words: Vec<&str> = rest.split_ascii_whitespace().collect();
    let is = |list: &[&str], w: &str| list.iter().position(|x| x.eq_ignore_ascii_case(w));
    // The last weekday-month pair: the sender may hold anything.
    let i = (0..words.len().saturating_sub(1))
        .rev()
        .find(|&i| is(&WEEKDAYS, words[i]).is_some() && is(&MONTHS, words[i + 1]).is_some())?;
    let month = is(&MONTHS, words[i + 1])? as u32 + 1;
    let day: u32 = words.get(i + 2)?.parse().ok()?;
    let mut hms = words.get(i + 3)?.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m) = (hms.next()??, hms.next()??);
    let s = hms.next().unwrap_or(Some(0))?;
    let (mut year, mut zone) = (None::<i32>, None::<i64>);
    for w in words.iter().skip(i + 4) {
        let digits = w.bytes().all(|b| b.is_ascii_digit());
        if digits && w.len() == 4 && year.is_none() {
            year = w.parse().ok();
        } else if digits && w.len() == 2 && year.is_none() {
            let y: i32 = w.parse().ok()?;
            year = Some(if y < 70 { 2000 + y } else { 1900 + y });
        } else if let Some(sign) = w.strip_prefix(['+', '-'])
            && sign.len() == 4
            && sign.bytes().all(|b| b.is_ascii_digit())
        {
            let hh: i64 = sign[..2].parse().ok()?;
            let mm: i64 = sign[2..].parse().ok()?;
            let off = hh * 3600 + mm * 60;
            zone = Some(if w.starts_with('-') { -off } else { off });
        } else if ["UTC", "GMT", "UT", "Z"]
            .iter()
            .any(|z| z.eq_ignore_ascii_case(w))
        {
            zone = Some(0);
        }
    }
    let naive = chrono::NaiveDate::from_ymd_opt(year?, month, day)?.and_hms_opt(h, m, s)?;
    let secs = match zone {
        Some(off) => naive.and_utc().timestamp() - off,
        None => chrono::Local
            .from_local_datetime(&naive)
            .earliest()?
            .timestamp(),
    };
    Some(match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    })
}

#[cfg(test)]
mod tests;
