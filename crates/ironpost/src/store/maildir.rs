//! One Maildir folder as POP3 and IMAP read it: messages with UIDs that
//! stay, flags, expunge, append.
//!
//! ## Snapshots
//! [`Maildir::snapshot`] lists the messages in `new/` and `cur/` (never
//! `tmp/`, where deliveries write; names starting with `.` and anything
//! that is not a regular file are left out) and gives each its UID from
//! the UID list (`ironpost-uidlist`, see `uidlist.rs` for the
//! format). Messages not listed yet get the next UIDs, in the natural
//! order of their base names (the leading `<secs>` and `M<usecs>` first,
//! numbers compared as numbers); entries whose files are gone are dropped.
//! A snapshot moves and renames nothing: POP3 only reads.
//!
//! When the list already has every file and nothing else, a snapshot is
//! read without the lock (the list is only ever replaced whole, by
//! rename). Otherwise it takes the lock (`lock.rs`), reads the list
//! and the directories again, adds and drops, writes the new list and
//! commits it before returning, so a UID a client has seen is on disk.
//!
//! A file renamed while a directory is being read (another client
//! changing flags) may be missed by `readdir(3)` under both names; when a
//! listed message seems gone, the directories are read once more before
//! its entry is dropped, so that it does not come back with a new UID.
//! ironpost's own renames and unlinks take the lock, so they never race
//! with a snapshot.
//!
//! ## A list from Dovecot
//! When `ironpost-uidlist` does not exist and Dovecot's `dovecot-uidlist`
//! does, its UIDVALIDITY, next UID and UIDs are taken over (lines it
//! cannot read are skipped: those messages get new UIDs), so IMAP caches
//! and POP3 UIDLs (`%08Xu%08Xv`, [`super::pop3_uidl`], or the `P` field a
//! migration left) stay valid. `dovecot-uidlist` is never written. If
//! `ironpost-uidlist` is removed later while an old `dovecot-uidlist` is
//! still there, it is taken over again, and UIDs given since could be
//! given once more: remove `dovecot-uidlist` once the move is done.
//!
//! A corrupt `ironpost-uidlist` is rebuilt from the files with a new
//! UIDVALIDITY (above the old one when it can be read), with a warning
//! that names the file and the line.
//!
//! ## Files
//! Messages keep LF line ends. `size` is the stored size; `wire_size` the
//! size with CRLF line ends (POP3 sizes, RFC822.SIZE), from `,W=` in the
//! name (trusted when `,S=` is absent or right), else counted once and
//! kept in the list. [`Maildir::append`] names files as delivery does, with
//! `A<n>` where delivery has `Q<n>`:
//! `<secs>.M<usecs>P<pid>A<n>.<host>,S=<size>,W=<wire size>:2,<flags>`,
//! so an appended file never takes a delivered one's name.
//!
//! Running as root on a user's Maildir, the files written here (list,
//! lock, appended messages) are given to the Maildir's owner. Files are
//! opened with `O_NOFOLLOW` and must be regular files: a symlink or FIFO
//! planted in a Maildir is not read.
//!
//! Everything here blocks (file I/O, the lock, commits); async callers use
//! `spawn_blocking`.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub use super::flags::Flags;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::flags::{base_name, name_field, with_flags};
use super::lock::{self, ListLock};
use super::uidlist::{Entry, UidList};
use super::uring;
use crate::mailbox::context;
use crate::mailbox::maildir::{escape_host, to_lf, wire_size};

/// ironpost's UID list.
pub const UIDLIST: &str = "ironpost-uidlist";
/// Dovecot's, read once when ironpost's does not exist.
pub const DOVECOT_UIDLIST: &str = "dovecot-uidlist";
const UIDLIST_TMP: &str = "ironpost-uidlist.tmp";
const UIDLIST_LOCK: &str = "ironpost-uidlist.lock";

/// The scan cache of the Maildir `key` (a canonical path).
fn scan_cache(key: &Path) -> Arc<Mutex<ScanCache>> {
    static TABLE: OnceLock<Mutex<lock::PerPath<Mutex<ScanCache>>>> = OnceLock::new();
    lock::per_path(&TABLE, key)
}

/// How many times to follow a file that keeps moving.
const FOLLOW_TRIES: usize = 3;

/// One Maildir folder: the INBOX root or a Maildir++ subfolder directory
/// (see [`crate::mailbox::maildir::folder_path`]).
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    /// Shared by every `Maildir` of the same directory in this process.
    threads: Arc<Mutex<()>>,
    /// What the last scans found, shared the same way.
    cache: Arc<Mutex<ScanCache>>,
}

/// The last listing of `new/` and `cur/`, and the last UID list read, so
/// that a snapshot of an unchanged Maildir reads no directory and parses
/// no list, and one of a changed Maildir stats only the files it has not
/// seen.
#[derive(Debug, Default)]
struct ScanCache {
    dirs: [Option<DirScan>; 2],
    list: Option<(ListId, Arc<UidList>)>,
}

/// One directory as a scan read it.
#[derive(Debug)]
struct DirScan {
    /// The directory's mtime when it was read.
    mtime: SystemTime,
    /// When the reading began: a listing is reused only if this is more
    /// than [`DIR_SETTLE`] after `mtime`, since a change within the same
    /// tick of the file system's clock leaves the mtime as it was.
    read_at: SystemTime,
    /// By file name.
    files: HashMap<String, Found>,
}

/// Changes to a directory more recent than this are not trusted to show
/// in its mtime: a change within the same tick of the file system's
/// clock leaves the mtime as it was. File systems with whole-second
/// timestamps need a second; see [`settle`].
const DIR_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);
/// The same for a file system whose timestamps have sub-second parts
/// (ext4, XFS, Btrfs, tmpfs on Linux: the kernel's coarse clock, a tick
/// of at most 10 ms): five ticks.
const DIR_SETTLE_FINE: std::time::Duration = std::time::Duration::from_millis(50);

/// How long after `mtime` a directory's listing can be trusted: a
/// timestamp with nanoseconds proves a fine-grained clock.
fn settle(mtime: SystemTime) -> std::time::Duration {
    match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) if d.subsec_nanos() != 0 => DIR_SETTLE_FINE,
        _ => DIR_SETTLE,
    }
}

/// Which UID list file was read: it is only ever replaced whole, by
/// rename, so a new one has a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

impl ListId {
    fn of(m: &fs::Metadata) -> ListId {
        ListId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        }
    }
}

/// What tells whether a Maildir changed since a snapshot: the mtimes of
/// `new/` and `cur/` and which UID list is there. Only given when both
/// directories settled (see [`DIR_SETTLE`]), so that a change within the
/// same tick of the file system's clock cannot hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    new: SystemTime,
    cur: SystemTime,
    list: ListId,
}

/// The messages of a Maildir at one moment, by UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub uidvalidity: u32,
    /// The UID the next new message will get.
    pub uidnext: u32,
    /// In ascending UID order.
    pub messages: Vec<Message>,
}

impl Snapshot {
    /// The message with `uid`.
    pub fn get(&self, uid: u32) -> Option<&Message> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| &self.messages[i])
    }

    /// The POP3 UIDL of `m`: the one a migration kept (Dovecot's `P`
    /// field) or Dovecot's default `%08Xu%08Xv`.
    pub fn pop3_uidl(&self, m: &Message) -> String {
        m.pop3_uidl
            .clone()
            .unwrap_or_else(|| super::pop3_uidl(self.uidvalidity, m.uid))
    }
}

/// One message of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    /// The file name up to `:2,` (or `!2,`): the same for the message's
    /// whole life, whatever its flags.
    pub base: String,
    /// Where the file was when the snapshot was taken.
    pub path: PathBuf,
    /// Stored bytes (LF line ends).
    pub size: u64,
    /// Bytes with CRLF line ends: the POP3 size and IMAP RFC822.SIZE.
    pub wire_size: u64,
    pub flags: Flags,
    /// The file's mtime (IMAP INTERNALDATE; Dovecot uses it too).
    pub internal_date: SystemTime,
    /// In `new/`: no client has taken it in yet.
    pub recent: bool,
    /// A UIDL kept from before a migration (Dovecot's `P` field), used
    /// instead of the computed one.
    pub pop3_uidl: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    New,
    Cur,
}

impl Sub {
    fn dir(self) -> &'static str {
        match self {
            Sub::New => "new",
            Sub::Cur => "cur",
        }
    }
}

/// A message file found in `new/` or `cur/`.
#[derive(Debug, Clone)]
struct Found {
    name: String,
    sub: Sub,
    size: u64,
    mtime: SystemTime,
}

/// What a scan found, by base name.
type Files = HashMap<String, Found>;

impl Maildir {
    /// Opens the Maildir `path`; with `create`, makes it (and `tmp/`,
    /// `new/`, `cur/`, mode 0700) when missing.
    pub fn open(path: impl AsRef<Path>, create: bool) -> io::Result<Maildir> {
        let root = path.as_ref().to_path_buf();
        if create {
            crate::mailbox::maildir::create(&root, None)?;
        }
        for sub in ["new", "cur"] {
            let dir = root.join(sub);
            match fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("{}: not a Maildir: {sub} is no directory", root.display()),
                    ));
                }
                Err(e) => {
                    return Err(context(
                        format!("open Maildir {}: {sub}/", root.display()),
                        e,
                    ));
                }
            }
        }
        let key = fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
        Ok(Maildir {
            threads: lock::thread_mutex(&key),
            cache: scan_cache(&key),
            root,
        })
    }

    /// The Maildir's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The Maildir's [`Token`] now; `None` when it may be changing (a
    /// directory changed within the last second) or cannot be read. Take
    /// it before a snapshot: an equal token later means nothing changed
    /// since.
    pub fn token(&self) -> Option<Token> {
        let now = SystemTime::now();
        let mtime = |sub: &str| fs::metadata(self.root.join(sub)).ok()?.modified().ok();
        let (new, cur) = (mtime("new")?, mtime("cur")?);
        let list = ListId::of(&fs::symlink_metadata(self.root.join(UIDLIST)).ok()?);
        let settled = |t: SystemTime| now.duration_since(t).is_ok_and(|d| d > settle(t));
        (settled(new) && settled(cur)).then_some(Token { new, cur, list })
    }

    /// The messages now, each with its UID (see the module doc). Changes
    /// only the UID list, never a message file.
    pub fn snapshot(&self) -> io::Result<Snapshot> {
        if let Some(list) = self.read_list_quietly() {
            let files = self.scan()?;
            if let Some(snapshot) = self.build(&list, &files) {
                return Ok(snapshot);
            }
        }
        let _lock = self.lock()?;
        let (mut list, mut changed) = self.load_list()?;
        let mut files = self.scan()?;
        if list.entries.iter().any(|e| !files.contains_key(&e.base)) {
            // Gone, or renamed while we read: look again before dropping.
            files.extend(self.scan()?);
        }
        changed |= self.sync(&mut list, &mut files)?;
        if changed {
            self.write_list(&list)?;
        }
        self.build(&list, &files)
            .ok_or_else(|| io::Error::other(format!("{}: UID list incomplete", self.list_path())))
    }

    /// The message's bytes as stored (LF line ends). Follows a file that
    /// was renamed (flags changed, moved to `cur/`) since the snapshot;
    /// `NotFound` means it was expunged.
    pub fn read(&self, m: &Message) -> io::Result<Vec<u8>> {
        let mut path = m.path.clone();
        for _ in 0..FOLLOW_TRIES {
            match open_regular_len(&path) {
                Ok((f, len)) => {
                    // Message files do not change: read what fstat said is
                    // there, without probing for more (open, fstat, read,
                    // close: this runs for every message FETCH reads).
                    let mut data = Vec::with_capacity(len as usize);
                    f.take(len)
                        .read_to_end(&mut data)
                        .map_err(|e| context(format!("read {}", path.display()), e))?;
                    if data.len() as u64 != m.size {
                        // Changed in place, behind our back: the next
                        // snapshot looks at it again.
                        self.forget(&path);
                    }
                    return Ok(data);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match self.locate(&m.base)? {
                    Some(p) => path = p,
                    None => break,
                },
                Err(e) => return Err(context(format!("open {}", path.display()), e)),
            }
        }
        Err(expunged(m))
    }

    /// A reader of many messages: [`Reader::read_in`] opens each file
    /// relative to `cur/` and `new/`, opened once, instead of walking the
    /// whole path for each message.
    pub fn reader(&self) -> io::Result<Reader> {
        Ok(Reader {
            dirs: self.open_dirs()?,
            ring: Ring::Untried,
        })
    }

    /// `new/` and `cur/` opened (indexed by [`Sub`]), for many opens or
    /// renames relative to them.
    fn open_dirs(&self) -> io::Result<[OwnedFd; 2]> {
        let open = |sub: Sub| -> io::Result<OwnedFd> {
            let dir = self.root.join(sub.dir());
            nix::fcntl::open(
                &dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| context(format!("open {}", dir.display()), e.into()))
        };
        Ok([open(Sub::New)?, open(Sub::Cur)?])
    }

    /// Removes the messages (a file already gone is fine) and their UIDs
    /// from the list; durable when it returns.
    pub fn expunge(&self, msgs: &[&Message]) -> io::Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        for m in msgs {
            self.remove_file_of(m)?;
        }
        let (mut list, mut changed) = self.load_list()?;
        let gone: HashSet<&str> = msgs.iter().map(|m| m.base.as_str()).collect();
        let before = list.entries.len();
        list.entries.retain(|e| !gone.contains(e.base.as_str()));
        changed |= list.entries.len() != before;
        if changed {
            // Its commit covers the unlinks too.
            self.write_list(&list)?;
        } else {
            crate::durable::commit(&self.root)?;
        }
        // IMAP sessions in IDLE on this folder report it at once (a POP3
        // QUIT, for one).
        super::notify::changed(&self.root);
        Ok(())
    }

    /// Gives the message `flags`: renames its file to `cur/BASE:2,FLAGS`
    /// (following it if it moved) and returns the new path. Like Dovecot,
    /// not committed: a power failure may undo it.
    pub fn set_flags(&self, m: &Message, flags: &Flags) -> io::Result<PathBuf> {
        let _lock = self.lock()?;
        self.rename_in_cur(m, |_, name| Some(with_flags(name, flags)))?
            .ok_or_else(|| expunged(m))
    }

    /// Where [`Maildir::set_flags`] puts the file of `m` (as the snapshot
    /// saw it) for `flags`: `cur/BASE:2,FLAGS`.
    pub fn flag_target(&self, m: &Message, flags: &Flags) -> PathBuf {
        let name = m
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&m.base);
        self.root.join("cur").join(with_flags(name, flags))
    }

    /// [`Maildir::set_flags`] for many messages under one lock: each
    /// message's path now, `None` for one expunged meanwhile.
    pub fn set_flags_many(
        &self,
        changes: &[(&Message, Flags)],
    ) -> io::Result<Vec<Option<PathBuf>>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        let dirs = self.open_dirs().ok();
        changes
            .iter()
            .map(|(m, flags)| {
                self.rename_in_cur_at(dirs.as_ref(), m, |_, name| Some(with_flags(name, flags)))
            })
            .collect()
    }

    /// Copies messages of another folder (IMAP COPY and MOVE) into
    /// `cur/`, each with its flags, keeping its internal date: a hard
    /// link where the file system allows one (message files never
    /// change), else a copy. Lists them all with one write of the UID
    /// list; durable when it returns. Returns the new UIDs and paths in
    /// order; a source expunged meanwhile is `None` and gets no UID.
    pub fn copy_in(
        &self,
        sources: &[(&Message, Flags)],
    ) -> io::Result<Vec<Option<(u32, PathBuf)>>> {
        let tmp_dir = self.root.join("tmp");
        let mut staged: Vec<Option<(String, PathBuf, Flags)>> = Vec::with_capacity(sources.len());
        let cleanup = |staged: &[Option<(String, PathBuf, Flags)>]| {
            for (_, tmp, _) in staged.iter().flatten() {
                let _ = fs::remove_file(tmp);
            }
        };
        for (m, flags) in sources {
            let base = unique_base(m.size as usize, m.wire_size);
            let tmp = tmp_dir.join(&base);
            let mut linked = None;
            let mut from = m.path.clone();
            for _ in 0..FOLLOW_TRIES {
                match fs::hard_link(&from, &tmp) {
                    Ok(()) => {
                        linked = Some(true);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        match Maildir::locate_in(&from) {
                            Some(p) => from = p,
                            None => break,
                        }
                    }
                    // Another file system, or links not allowed.
                    Err(_) => {
                        linked = Some(false);
                        break;
                    }
                }
            }
            match linked {
                None => staged.push(None),
                Some(true) => staged.push(Some((base, tmp, flags.clone()))),
                Some(false) => {
                    let copied = (|| -> io::Result<()> {
                        let data = read_regular(&from)?;
                        let mut f = OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                            .open(&tmp)?;
                        self.give_to_owner(&f)?;
                        f.write_all(&data)?;
                        let t = m.internal_date;
                        f.set_times(FileTimes::new().set_modified(t).set_accessed(t))?;
                        Ok(())
                    })();
                    if let Err(e) = copied {
                        let _ = fs::remove_file(&tmp);
                        cleanup(&staged);
                        return Err(context(
                            format!("copy {} to {}", from.display(), tmp.display()),
                            e,
                        ));
                    }
                    staged.push(Some((base, tmp, flags.clone())));
                }
            }
        }
        let _lock = match self.lock() {
            Ok(l) => l,
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        };
        let mut placed: Vec<Option<(String, PathBuf)>> = Vec::with_capacity(staged.len());
        for s in &staged {
            let Some((base, tmp, flags)) = s else {
                placed.push(None);
                continue;
            };
            let target = self.root.join("cur").join(with_flags(base, flags));
            if let Err(e) = fs::rename(tmp, &target) {
                cleanup(&staged);
                for (_, p) in placed.iter().flatten() {
                    let _ = fs::remove_file(p);
                }
                return Err(context(format!("rename to {}", target.display()), e));
            }
            placed.push(Some((base.clone(), target)));
        }
        let listed = (|| {
            let (mut list, _) = self.load_list()?;
            let mut uids = Vec::with_capacity(placed.len());
            for p in &placed {
                let Some((base, _)) = p else {
                    uids.push(None);
                    continue;
                };
                let uid = list.next_uid;
                list.next_uid = uid.checked_add(1).ok_or_else(|| self.used_up())?;
                list.entries.push(Entry::new(uid, base));
                uids.push(Some(uid));
            }
            // Commits the files and their directory entries too.
            self.write_list(&list)?;
            Ok(uids)
        })();
        match listed {
            Ok(uids) => Ok(uids
                .into_iter()
                .zip(placed)
                .map(|(u, p)| Some((u?, p?.1)))
                .collect()),
            Err(e) => {
                for (_, p) in placed.iter().flatten() {
                    let _ = fs::remove_file(p);
                }
                Err(e)
            }
        }
    }

    /// Where a file of this Maildir that moved is now (the other of
    /// `new/` and `cur/`, any flags), from its old path.
    fn locate_in(old: &Path) -> Option<PathBuf> {
        let name = old.file_name()?.to_str()?;
        let root = old.parent()?.parent()?;
        let md = Maildir {
            root: root.to_path_buf(),
            threads: Arc::new(Mutex::new(())),
            cache: Arc::new(Mutex::new(ScanCache::default())),
        };
        md.locate(base_name(name)).ok().flatten()
    }

    /// Moves messages that are in `new/` to `cur/` (no flags), as an IMAP
    /// session does for the messages it has reported. Returns each
    /// message's path now, `None` for one expunged meanwhile.
    pub fn move_new_to_cur(&self, msgs: &[&Message]) -> io::Result<Vec<Option<PathBuf>>> {
        let _lock = self.lock()?;
        let dirs = self.open_dirs().ok();
        msgs.iter()
            .map(|m| {
                self.rename_in_cur_at(dirs.as_ref(), m, |sub, name| {
                    (sub == Sub::New).then(|| with_flags(name, &Flags::from_file_name(name)))
                })
            })
            .collect()
    }

    /// Stores a message (IMAP APPEND, COPY) in `cur/` with `flags` and the
    /// internal date given (else now), and lists it: returns its UID and
    /// path, durable. The message may have CRLF or LF line ends; it is
    /// stored with LF.
    pub fn append(
        &self,
        message: &[u8],
        flags: &Flags,
        internal_date: Option<SystemTime>,
    ) -> io::Result<(u32, PathBuf)> {
        let data = to_lf(message);
        let wire = wire_size(&data);
        let tmp_dir = self.root.join("tmp");
        let mut tries = 0;
        let (base, tmp, file) = loop {
            let base = unique_base(data.len(), wire);
            let tmp = tmp_dir.join(&base);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(&tmp)
            {
                Ok(f) => break (base, tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 10 => tries += 1,
                Err(e) => {
                    return Err(context(format!("create {}", tmp.display()), e));
                }
            }
        };
        let result = self.store_appended(&base, &tmp, file, &data, flags, internal_date);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn store_appended(
        &self,
        base: &str,
        tmp: &Path,
        mut file: File,
        data: &[u8],
        flags: &Flags,
        internal_date: Option<SystemTime>,
    ) -> io::Result<(u32, PathBuf)> {
        self.give_to_owner(&file)?;
        file.write_all(data)
            .map_err(|e| context(format!("write {}", tmp.display()), e))?;
        if let Some(t) = internal_date {
            file.set_times(FileTimes::new().set_modified(t).set_accessed(t))
                .map_err(|e| context(format!("set times of {}", tmp.display()), e))?;
        }
        drop(file);
        let _lock = self.lock()?;
        let target = self.root.join("cur").join(with_flags(base, flags));
        fs::rename(tmp, &target)
            .map_err(|e| context(format!("rename to {}", target.display()), e))?;
        let listed = (|| {
            let (mut list, _) = self.load_list()?;
            let uid = match list.entries.iter().find(|e| e.base == base) {
                Some(e) => e.uid,
                None => {
                    let uid = list.next_uid;
                    list.next_uid = uid.checked_add(1).ok_or_else(|| self.used_up())?;
                    list.entries.push(Entry::new(uid, base));
                    uid
                }
            };
            // Commits the message and its directory entry too.
            self.write_list(&list)?;
            Ok(uid)
        })();
        match listed {
            Ok(uid) => Ok((uid, target)),
            Err(e) => {
                // Not acknowledged: a retried APPEND must not make two.
                let _ = fs::remove_file(&target);
                Err(e)
            }
        }
    }

    fn list_path(&self) -> String {
        self.root.join(UIDLIST).display().to_string()
    }

    fn used_up(&self) -> io::Error {
        io::Error::other(format!("{}: UIDs used up", self.list_path()))
    }

    fn lock(&self) -> io::Result<ListLock<'_>> {
        lock::acquire(&self.threads, &self.root.join(UIDLIST_LOCK), |f| {
            self.give_to_owner(f)
        })
    }

    /// Running as root in someone's Maildir: gives them `f`.
    fn give_to_owner(&self, f: &File) -> io::Result<()> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        let m = fs::metadata(&self.root)?;
        if m.uid() == 0 {
            return Ok(());
        }
        std::os::unix::fs::fchown(f, Some(m.uid()), Some(m.gid()))
            .map_err(|e| context(format!("change owner in {}", self.root.display()), e))
    }

    /// Our list as it is, if it can be read; no lock, no warnings (the
    /// locked path reports).
    fn read_list_quietly(&self) -> Option<Arc<UidList>> {
        let path = self.root.join(UIDLIST);
        let id = ListId::of(&fs::symlink_metadata(&path).ok()?);
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((known, list)) = &cache.list
                && *known == id
            {
                return Some(list.clone());
            }
        }
        let f = open_regular(&path).ok()?;
        let id = ListId::of(&f.metadata().ok()?);
        let mut data = Vec::new();
        (&f).read_to_end(&mut data).ok()?;
        let list = Arc::new(UidList::parse(&data).ok()?);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).list = Some((id, list.clone()));
        Some(list)
    }

    /// Under the lock: our list; else Dovecot's; else a new one. True when
    /// it must be written.
    fn load_list(&self) -> io::Result<(UidList, bool)> {
        let path = self.root.join(UIDLIST);
        let data = match read_regular(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.take_over_dovecot(),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let v = fresh_uidvalidity(None);
                tracing::warn!(
                    "{}: {e}; rebuilt from the files with UIDVALIDITY {v}",
                    path.display()
                );
                return Ok((UidList::new(v), true));
            }
            Err(e) => return Err(context(format!("read {}", path.display()), e)),
        };
        match UidList::parse(&data) {
            Ok(list) => Ok((list, false)),
            Err(bad) => {
                let v = fresh_uidvalidity(bad.uidvalidity);
                tracing::warn!(
                    "{}: line {}: {}; rebuilt from the files with UIDVALIDITY {v}",
                    path.display(),
                    bad.line,
                    bad.what
                );
                Ok((UidList::new(v), true))
            }
        }
    }

    /// No list of ours: Dovecot's UIDs, when it left a list.
    fn take_over_dovecot(&self) -> io::Result<(UidList, bool)> {
        let path = self.root.join(DOVECOT_UIDLIST);
        let data = match read_regular(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((UidList::new(fresh_uidvalidity(None)), true));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!("{}: {e}; not used", path.display());
                return Ok((UidList::new(fresh_uidvalidity(None)), true));
            }
            // Unreadable for now: renumbering would lose its UIDs for good.
            Err(e) => return Err(context(format!("read {}", path.display()), e)),
        };
        match UidList::parse_lenient(&data) {
            Ok((list, skipped)) => {
                for bad in skipped {
                    tracing::warn!(
                        "{}: line {}: {}; skipped, that message gets a new UID",
                        path.display(),
                        bad.line,
                        bad.what
                    );
                }
                tracing::info!(
                    "{}: UIDVALIDITY {} and {} UIDs taken over into {UIDLIST}",
                    path.display(),
                    list.uidvalidity,
                    list.entries.len()
                );
                Ok((list, true))
            }
            Err(bad) => {
                let v = fresh_uidvalidity(bad.uidvalidity);
                tracing::warn!(
                    "{}: line {}: {}; not used, new UIDVALIDITY {v}",
                    path.display(),
                    bad.line,
                    bad.what
                );
                Ok((UidList::new(v), true))
            }
        }
    }

    /// Replaces the list (temporary file, fsync, rename) and commits.
    /// Under the lock only.
    fn write_list(&self, list: &UidList) -> io::Result<()> {
        let tmp = self.root.join(UIDLIST_TMP);
        let path = self.root.join(UIDLIST);
        // Whatever is there (a crash's leftover, a planted link) goes.
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
        self.give_to_owner(&f)?;
        f.write_all(list.to_text().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| context(format!("write {}", tmp.display()), e))?;
        drop(f);
        fs::rename(&tmp, &path)
            .map_err(|e| context(format!("rename {} to {UIDLIST}", tmp.display()), e))?;
        crate::durable::commit(&self.root)
    }

    /// Reads `new/` then `cur/` (a file moving from one to the other is
    /// seen at least once; `cur/` wins). A directory unchanged since the
    /// last scan is not read again; files seen before are not stat'ed
    /// again (message files do not change, only their names do).
    fn scan(&self) -> io::Result<Files> {
        let mut files = Files::new();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (i, sub) in [Sub::New, Sub::Cur].into_iter().enumerate() {
            let dir = self.root.join(sub.dir());
            let mtime = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .map_err(|e| context(format!("stat {}", dir.display()), e))?;
            let settled = cache.dirs[i].as_ref().is_some_and(|c| {
                c.mtime == mtime
                    && c.read_at
                        .duration_since(mtime)
                        .is_ok_and(|d| d > settle(mtime))
            });
            if !settled {
                let read_at = SystemTime::now();
                let old = cache.dirs[i].take().map(|c| c.files).unwrap_or_default();
                let found = self.read_dir(&dir, sub, &old)?;
                cache.dirs[i] = Some(DirScan {
                    mtime,
                    read_at,
                    files: found,
                });
            }
            let Some(scan) = &cache.dirs[i] else {
                continue;
            };
            for found in scan.files.values() {
                let base = base_name(&found.name);
                match files.get(base) {
                    // Two files of one message in one directory (a broken
                    // Maildir): the same one every time.
                    Some(other) if other.sub == sub && other.name < found.name => {}
                    _ => {
                        files.insert(base.to_string(), found.clone());
                    }
                }
            }
        }
        Ok(files)
    }

    /// Our own rename of `sub/name` to `cur/target`: the next scan, which
    /// reads `cur/` again since its mtime changed, then knows the file
    /// under its new name and need not stat it (renames change neither
    /// size nor mtime).
    fn cache_renamed(&self, sub: Sub, name: &str, target: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut found) = cache.dirs[sub as usize]
            .as_mut()
            .and_then(|d| d.files.remove(name))
        else {
            return;
        };
        found.name = target.to_string();
        found.sub = Sub::Cur;
        if let Some(cur) = cache.dirs[Sub::Cur as usize].as_mut() {
            // The listing as it was read stays untrusted: its mtime is
            // the directory's before the rename.
            cur.files.insert(target.to_string(), found);
        }
    }

    /// Makes the next scan stat the file at `path` again.
    fn forget(&self, path: &Path) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for scan in cache.dirs.iter_mut().flatten() {
            if scan.files.remove(name).is_some() {
                // Not settled: read again, stat what is not known.
                scan.read_at = scan.mtime;
            }
        }
    }

    /// The message files in `dir`, by name; those in `known` are taken
    /// from there instead of stat'ed.
    fn read_dir(
        &self,
        dir: &Path,
        sub: Sub,
        known: &HashMap<String, Found>,
    ) -> io::Result<HashMap<String, Found>> {
        let mut out = HashMap::with_capacity(known.len() + 16);
        let entries =
            fs::read_dir(dir).map_err(|e| context(format!("read {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| context(format!("read {}", dir.display()), e))?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                tracing::warn!(
                    "{}: file name not UTF-8, message not shown: {}",
                    dir.display(),
                    os_name.to_string_lossy()
                );
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if name.contains(['\n', '\r']) {
                tracing::warn!(
                    "{}: line break in a file name, message not shown: {}",
                    dir.display(),
                    name.escape_debug()
                );
                continue;
            }
            if base_name(name).is_empty() {
                continue;
            }
            if let Some(f) = known.get(name) {
                out.insert(name.to_string(), f.clone());
                continue;
            }
            // Not following symlinks.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(context(format!("stat {}/{name}", dir.display()), e));
                }
            };
            if !meta.file_type().is_file() {
                continue;
            }
            out.insert(
                name.to_string(),
                Found {
                    name: name.to_string(),
                    sub,
                    size: meta.len(),
                    mtime: meta.modified()?,
                },
            );
        }
        Ok(out)
    }

    /// Brings `list` in line with `files`: drops entries of files gone,
    /// lists new files, learns sizes. True when the list changed.
    fn sync(&self, list: &mut UidList, files: &mut Files) -> io::Result<bool> {
        let before = list.entries.len();
        list.entries.retain(|e| files.contains_key(&e.base));
        let mut changed = list.entries.len() != before;

        let listed: HashSet<&str> = list.entries.iter().map(|e| e.base.as_str()).collect();
        let mut new: Vec<String> = files
            .keys()
            .filter(|b| !listed.contains(b.as_str()))
            .cloned()
            .collect();
        drop(listed);
        new.sort_by(|a, b| natural_cmp(a, b));
        if u64::from(list.next_uid) + new.len() as u64 > u64::from(u32::MAX) {
            let v = fresh_uidvalidity(Some(list.uidvalidity));
            tracing::warn!(
                "{}: UIDs used up; renumbered with UIDVALIDITY {v}",
                self.list_path()
            );
            *list = UidList::new(v);
            return self.sync(list, files).map(|_| true);
        }
        for base in new {
            list.entries.push(Entry::new(list.next_uid, &base));
            list.next_uid += 1;
            changed = true;
        }

        let mut vanished = HashSet::new();
        for e in &mut list.entries {
            let Some(f) = files.get(&e.base) else {
                continue;
            };
            // Before `S` is brought up to date: a wrong `S` means the
            // listed `W` is stale too.
            if known_wire(e, f).is_none() {
                let path = self.root.join(f.sub.dir()).join(&f.name);
                match wire_size_of(&path) {
                    Ok(w) => {
                        e.wire = Some(w);
                        e.size = Some(f.size);
                        changed = true;
                    }
                    // Expunged meanwhile.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        vanished.insert(e.base.clone());
                    }
                    Err(err) => return Err(context(format!("read {}", path.display()), err)),
                }
            }
            if name_field(&e.base, 'S').is_none() && e.size != Some(f.size) {
                e.size = Some(f.size);
                changed = true;
            }
        }
        if !vanished.is_empty() {
            list.entries.retain(|e| !vanished.contains(&e.base));
            files.retain(|b, _| !vanished.contains(b));
            changed = true;
        }
        Ok(changed)
    }

    /// The snapshot `list` and `files` make, if they agree exactly.
    fn build(&self, list: &UidList, files: &Files) -> Option<Snapshot> {
        if list.entries.len() != files.len() {
            return None;
        }
        let (new_dir, cur_dir) = (self.root.join("new"), self.root.join("cur"));
        let messages = list
            .entries
            .iter()
            .map(|e| {
                let f = files.get(&e.base)?;
                let dir = match f.sub {
                    Sub::New => &new_dir,
                    Sub::Cur => &cur_dir,
                };
                Some(Message {
                    uid: e.uid,
                    base: e.base.clone(),
                    path: dir.join(&f.name),
                    size: f.size,
                    wire_size: known_wire(e, f)?,
                    flags: Flags::from_file_name(&f.name),
                    internal_date: f.mtime,
                    recent: f.sub == Sub::New,
                    pop3_uidl: e.pop3_uidl().map(str::to_string),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Snapshot {
            uidvalidity: list.uidvalidity,
            uidnext: list.next_uid,
            messages,
        })
    }

    /// Finds the file of base name `base` in `new/` then `cur/` (twice, in
    /// case it moved while we read).
    fn locate(&self, base: &str) -> io::Result<Option<PathBuf>> {
        for _ in 0..2 {
            for sub in [Sub::New, Sub::Cur] {
                let dir = self.root.join(sub.dir());
                let entries = fs::read_dir(&dir)
                    .map_err(|e| context(format!("read {}", dir.display()), e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| context(format!("read {}", dir.display()), e))?;
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else {
                        continue;
                    };
                    if !name.starts_with('.')
                        && base_name(name) == base
                        && entry.file_type().is_ok_and(|t| t.is_file())
                    {
                        return Ok(Some(dir.join(name)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The message's file now: where the snapshot saw it, or found again.
    fn current_path(&self, m: &Message) -> io::Result<Option<PathBuf>> {
        match fs::symlink_metadata(&m.path) {
            Ok(meta) if meta.is_file() => Ok(Some(m.path.clone())),
            Ok(_) => self.locate(&m.base),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.locate(&m.base),
            Err(e) => Err(context(format!("stat {}", m.path.display()), e)),
        }
    }

    /// Renames the message's file to `cur/<new name>`, `new_name` given
    /// where the file is and its name (`None`: leave it). Returns the path
    /// now, `None` when the message is gone.
    fn rename_in_cur(
        &self,
        m: &Message,
        new_name: impl Fn(Sub, &str) -> Option<String>,
    ) -> io::Result<Option<PathBuf>> {
        self.rename_in_cur_at(None, m, new_name)
    }

    /// [`Maildir::rename_in_cur`] relative to `dirs` (`new/`, `cur/`)
    /// when given.
    fn rename_in_cur_at(
        &self,
        dirs: Option<&[OwnedFd; 2]>,
        m: &Message,
        new_name: impl Fn(Sub, &str) -> Option<String>,
    ) -> io::Result<Option<PathBuf>> {
        for attempt in 0..FOLLOW_TRIES {
            // First where the snapshot saw it (no stat: a rename that
            // finds nothing tells as much), then wherever it went.
            let current = if attempt == 0 {
                m.path.clone()
            } else {
                match self.current_path(m)? {
                    Some(p) => p,
                    None => return Ok(None),
                }
            };
            let sub = match current.parent().and_then(Path::file_name) {
                Some(d) if d == "new" => Sub::New,
                _ => Sub::Cur,
            };
            let name = current
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(target_name) = new_name(sub, name) else {
                return Ok(Some(current));
            };
            let target = self.root.join("cur").join(&target_name);
            if target == current {
                return Ok(Some(current));
            }
            let renamed = match dirs {
                Some(fds) if current.parent() == Some(&self.root.join(sub.dir())) => {
                    let from = &fds[sub as usize];
                    nix::fcntl::renameat(from, name, &fds[Sub::Cur as usize], target_name.as_str())
                        .map_err(io::Error::from)
                }
                _ => fs::rename(&current, &target),
            };
            match renamed {
                Ok(()) => {
                    self.cache_renamed(sub, name, &target_name);
                    return Ok(Some(target));
                }
                // Moved by another client meanwhile: find it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(context(
                        format!("rename {} to {}", current.display(), target.display()),
                        e,
                    ));
                }
            }
        }
        Ok(None)
    }

    /// Unlinks the message's file, wherever it went; gone already is fine.
    fn remove_file_of(&self, m: &Message) -> io::Result<()> {
        let mut path = m.path.clone();
        for _ in 0..FOLLOW_TRIES {
            match fs::remove_file(&path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match self.locate(&m.base)? {
                    Some(p) => path = p,
                    None => return Ok(()),
                },
                Err(e) => return Err(context(format!("remove {}", path.display()), e)),
            }
        }
        Ok(())
    }
}

/// The size with CRLF line ends, if known without reading the file: from
/// `,W=` in the name (unless `,S=` there is wrong), else from the list
/// (unless the list's `S` is wrong: the file changed).
fn known_wire(e: &Entry, f: &Found) -> Option<u64> {
    let right = |claim: Option<u64>| claim.is_none_or(|s| s == f.size);
    let name_size = name_field(&e.base, 'S');
    if right(name_size)
        && let Some(w) = name_field(&e.base, 'W')
    {
        return Some(w);
    }
    e.wire.filter(|_| right(e.size))
}

/// Counts the size of a file with CRLF line ends (every LF not after a CR
/// is one more byte), as [`wire_size`] does for bytes in memory.
fn wire_size_of(path: &Path) -> io::Result<u64> {
    let mut f = open_regular(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut size, mut prev) = (0u64, 0u8);
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            if b == b'\n' && prev != b'\r' {
                size += 1;
            }
            prev = b;
        }
        size += n as u64;
    }
    Ok(size)
}

/// `O_NOATIME` was refused (the files are not this process's own, and it
/// may not act for their owner): opens go without it from then on.
static NOATIME_REFUSED: AtomicBool = AtomicBool::new(false);

/// Runs `open` with `O_NOATIME` as its extra flag while the kernel
/// allows it (the files are the server's own, or it runs as root), with
/// none once it refused. Reading a message then leaves its inode alone:
/// with `relatime`, the first read after a flag change (a rename, which
/// sets the inode's change time) would write a new access time, one inode
/// write per message a FETCH, SEARCH or POP3 RETR reads. Nothing reads a
/// Maildir message's access time: new mail is what is in `new/`.
fn without_atime<T>(open: impl Fn(nix::libc::c_int) -> io::Result<T>) -> io::Result<T> {
    if !NOATIME_REFUSED.load(AtomicOrdering::Relaxed) {
        match open(nix::libc::O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => {
                NOATIME_REFUSED.store(true, AtomicOrdering::Relaxed)
            }
            r => return r,
        }
    }
    open(0)
}

/// [`super::open_regular`] of a message file, without touching its
/// access time ([`without_atime`]).
fn open_regular_len(path: &Path) -> io::Result<(File, u64)> {
    without_atime(|noatime| super::open_regular(path, noatime))
}

/// How [`Reader`] opens message files: not following a symbolic link,
/// and a FIFO does not block the read.
const READ_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK);

/// See [`Maildir::reader`].
pub struct Reader {
    /// `new/` and `cur/`.
    dirs: [OwnedFd; 2],
    /// The ring of [`Reader::read_many`].
    ring: Ring,
}

/// The io_uring of a [`Reader`]: made at the first [`Reader::read_many`],
/// `Off` when it could not be or failed since.
enum Ring {
    Untried,
    Ready(Box<uring::Batch>),
    Off,
}

impl Reader {
    /// The file `name` in `cur/` (`in_cur`) or `new/`, which the index
    /// says holds `size` octets; `None` when it is not there as that
    /// (renamed or expunged since, changed, not a plain file), for
    /// [`Maildir::read`] to find or to say why.
    pub fn read_in(&self, in_cur: bool, name: impl AsRef<Path>, size: u64) -> Option<Vec<u8>> {
        let dir = &self.dirs[if in_cur { Sub::Cur } else { Sub::New } as usize];
        let flags = READ_FLAGS | OFlag::O_CLOEXEC;
        let fd = without_atime(|noatime| {
            nix::fcntl::openat(
                dir,
                name.as_ref(),
                flags | OFlag::from_bits_retain(noatime),
                Mode::empty(),
            )
            .map_err(io::Error::from)
        })
        .ok()?;
        // Message files do not change: the index's size is what is there
        // (no fstat). A directory or device fails the read or is cut at
        // that size; a shorter file is looked at again.
        let mut data = Vec::with_capacity(size as usize);
        match File::from(fd).take(size).read_to_end(&mut data) {
            Ok(_) if data.len() as u64 == size => Some(data),
            _ => None,
        }
    }

    /// [`Reader::read_in`] of each of `files` (`in_cur`, name, size), in
    /// that order. Where the kernel has io_uring, the files are opened
    /// and read in batches, a few system calls for many files
    /// ([`uring`]); a file the batch could not read is read again the
    /// plain way, which finds it renamed or says it is gone.
    pub fn read_many(&mut self, files: &[(bool, &str, u64)]) -> Vec<Option<Vec<u8>>> {
        match self.read_ring(files) {
            Some(got) => got
                .into_iter()
                .zip(files)
                .map(|(r, &(in_cur, name, size))| r.or_else(|| self.read_in(in_cur, name, size)))
                .collect(),
            None => files
                .iter()
                .map(|&(in_cur, name, size)| self.read_in(in_cur, name, size))
                .collect(),
        }
    }

    /// The batch reads of [`Reader::read_many`], `None` for a file not
    /// read; `None` as a whole without a ring.
    fn read_ring(&mut self, files: &[(bool, &str, u64)]) -> Option<Vec<Option<Vec<u8>>>> {
        if let Ring::Untried = self.ring {
            self.ring = match uring::Batch::new() {
                Ok(b) => Ring::Ready(Box::new(b)),
                Err(e) => {
                    tracing::debug!("io_uring: {e}; reading message files one by one");
                    Ring::Off
                }
            };
        }
        let Ring::Ready(ring) = &mut self.ring else {
            return None;
        };
        let names = files
            .iter()
            .map(|(_, name, _)| CString::new(*name))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let wanted: Vec<uring::Want> = files
            .iter()
            .zip(&names)
            .map(|(&(in_cur, _, size), name)| uring::Want {
                dir: self.dirs[if in_cur { Sub::Cur } else { Sub::New } as usize].as_fd(),
                name,
                size,
            })
            .collect();
        // As read_in; direct descriptors are never inherited (no O_CLOEXEC).
        let noatime = if NOATIME_REFUSED.load(AtomicOrdering::Relaxed) {
            0
        } else {
            nix::libc::O_NOATIME
        };
        let flags = READ_FLAGS.bits() | noatime;
        let got = match ring.read(&wanted, flags) {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!("io_uring: {e}; reading message files one by one");
                self.ring = Ring::Off;
                return None;
            }
        };
        // Kernels that do not replace a file in an occupied slot refuse
        // the open (EBADF): the plain way from then on.
        if got
            .iter()
            .any(|r| r == &Err(uring::Miss::Open(nix::libc::EBADF)))
        {
            self.ring = Ring::Off;
        }
        Some(got.into_iter().map(Result::ok).collect())
    }
}

/// [`open_regular_len`] without the size.
fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_len(path).map(|(f, _)| f)
}

fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    open_regular(path)?.read_to_end(&mut data)?;
    Ok(data)
}

fn expunged(m: &Message) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("message UID {} ({}) was expunged", m.uid, m.base),
    )
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

/// Orders names as their numbers say: digit runs compare as numbers, so
/// `<secs>` then `M<usecs>` order Maildir names by arrival.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (ra, rb) = (run(a), run(b));
                let trim = |s: &[u8]| {
                    let zeros = s.iter().take_while(|&&c| c == b'0').count();
                    s[zeros..].to_vec()
                };
                let (na, nb) = (trim(&a[..ra]), trim(&b[..rb]));
                let ord = na
                    .len()
                    .cmp(&nb.len())
                    .then_with(|| na.cmp(&nb))
                    .then(ra.cmp(&rb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[ra..];
                b = &b[rb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// The host name part of file names, escaped as delivery escapes it.
fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        if host.is_empty() {
            "localhost".to_string()
        } else {
            escape_host(&host)
        }
    })
}

/// A new base name for an appended message:
/// `<secs>.M<usecs>P<pid>A<n>.<host>,S=<size>,W=<wire>`.
fn unique_base(size: usize, wire: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}A{}.{},S={size},W={wire}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, AtomicOrdering::Relaxed),
        hostname(),
    )
}

#[cfg(test)]
mod tests;
