//! The mail queue: one file per message under queue_directory, in Postfix's
//! queues (`maildrop/ incoming/ active/ deferred/ hold/ corrupt/`).
//!
//! ## Layout
//! - [`QueueId`]: Postfix-style upper-case hexadecimal queue IDs.
//! - [`file`]: the queue file format ([`Envelope`], [`Recipient`]) and its
//!   reader and writer.
//! - [`Queue`]: the directories; [`Queue::enqueue`] writes a message and
//!   makes it durable, the other methods list, move and remove files.
//!
//! ## Durability
//! [`Queue::enqueue`] writes the whole file under a dot name in `incoming/`,
//! links it under its ID and commits it to stable storage (file and
//! directory entry; concurrent callers share one commit, see
//! [`crate::durable`]), and only then returns the ID: the caller answers `250 Ok: queued as ID` after that, so no
//! acknowledged message can be lost by a crash.
//!
//! What happens later only needs to be durable where undoing it could lose
//! mail: moves between queues and removals are plain renames and unlinks
//! (undone by a power failure, they mean a second delivery), and a
//! delivered recipient is marked in place with one byte before the next
//! attempt could repeat it. A dot file left by a crash was never
//! acknowledged and is removed at start-up.
//!
//! The time of the next delivery attempt of a deferred message is the queue
//! file's modification time, as in Postfix.

pub mod file;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use file::{Envelope, QueueFile, Recipient};

/// The queues, in the order `mailq` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    Maildrop,
    Incoming,
    Active,
    Deferred,
    Hold,
    Corrupt,
}

impl QueueName {
    pub const ALL: [QueueName; 6] = [
        QueueName::Maildrop,
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
        QueueName::Corrupt,
    ];

    pub fn dir(self) -> &'static str {
        match self {
            QueueName::Maildrop => "maildrop",
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
        }
    }

    pub fn parse(name: &str) -> Option<QueueName> {
        QueueName::ALL.into_iter().find(|q| q.dir() == name)
    }
}

/// A queue ID: upper-case hexadecimal, as Postfix's short IDs
/// (`35EC31BB80`). Unique among the files in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(String);

impl QueueId {
    /// Accepts what [`QueueId::generate`] makes: 10 to 16 upper-case hex
    /// digits. Anything else (a path, `..`) is refused.
    pub fn parse(s: &str) -> Option<QueueId> {
        let ok = (6..=16).contains(&s.len())
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c));
        ok.then(|| QueueId(s.to_string()))
    }

    /// A fresh ID from the clock's microseconds and a per-process counter;
    /// callers retry with another one if the name is taken.
    pub fn generate() -> QueueId {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let micros = now.as_micros() as u64;
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mix = (u64::from(count).wrapping_mul(0x9E37_79B9) ^ u64::from(std::process::id()) << 8)
            & 0xF_FFFF;
        QueueId(format!(
            "{:05X}{:05X}",
            (micros ^ (now.as_secs() << 20)) & 0xF_FFFF,
            mix
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The queue directories.
#[derive(Debug, Clone)]
pub struct Queue {
    root: PathBuf,
    /// Files of removed messages, kept in `active/` under `.free-ID` names
    /// to be rewritten by the next messages instead of freeing and
    /// allocating an inode per message (file systems slow down under that
    /// churn). Most messages are removed from `active/`, so keeping them
    /// there makes the removal a rename within one directory.
    free: Arc<Mutex<Vec<String>>>,
}

/// The most files kept for reuse.
const MAX_FREE: usize = 1024;
/// The name prefix of files kept for reuse (in `active/`).
const FREE_PREFIX: &str = ".free-";

impl Queue {
    /// Opens the queue at `root`, creating the directories it lacks.
    pub fn open(root: &Path) -> io::Result<Queue> {
        for q in QueueName::ALL {
            fs::create_dir_all(root.join(q.dir()))?;
        }
        fs::create_dir_all(root.join("defer"))?;
        let mut free = Vec::new();
        for entry in fs::read_dir(root.join(QueueName::Active.dir()))?.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(FREE_PREFIX) {
                continue;
            }
            if free.len() < MAX_FREE {
                free.push(name.to_string());
            } else {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Queue {
            root: root.to_path_buf(),
            free: Arc::new(Mutex::new(free)),
        })
    }

    /// Takes a file from `free/` and renames it to `to` (which must not
    /// exist), emptied; `None` when there is none.
    fn take_free(&self, to: &Path) -> Option<File> {
        loop {
            let name = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            let from = self.dir(QueueName::Active).join(&name);
            match nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &from,
                nix::fcntl::AT_FDCWD,
                to,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {}
                Err(nix::errno::Errno::EEXIST) => {
                    self.free
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(name);
                    return None;
                }
                // Gone (removed by hand, or listed twice): try the next.
                Err(_) => continue,
            }
            // Overwritten in place, not truncated: the file keeps its
            // blocks (no freeing and allocating them again, no discard of
            // them on a file system mounted with `discard`); the writer
            // cuts it to the new length. The queue ID inside tells a crash
            // that left the old bytes under the new name.
            match OpenOptions::new().write(true).open(to) {
                Ok(f) => return Some(f),
                Err(_) => {
                    let _ = fs::remove_file(to);
                    return None;
                }
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, q: QueueName) -> PathBuf {
        self.root.join(q.dir())
    }

    pub fn path(&self, q: QueueName, id: &QueueId) -> PathBuf {
        self.dir(q).join(id.as_str())
    }

    /// Writes a message with its envelope into `incoming/`, durably, and
    /// returns its ID. Nothing may acknowledge the message before this
    /// returns.
    pub fn enqueue(&self, env: &Envelope, content: &[u8]) -> io::Result<QueueId> {
        self.enqueue_into(QueueName::Incoming, env, content)
    }

    /// Like [`Queue::enqueue`], into another queue (`maildrop` for sendmail,
    /// `hold`).
    pub fn enqueue_into(
        &self,
        q: QueueName,
        env: &Envelope,
        content: &[u8],
    ) -> io::Result<QueueId> {
        self.enqueue_with(q, env, |_| std::borrow::Cow::Borrowed(content))
    }

    /// Like [`Queue::enqueue_into`], for content that names its own queue
    /// ID (the Received header does): `content` is called with the ID the
    /// file gets, again if that name turns out to be taken.
    pub fn enqueue_with<'c>(
        &self,
        q: QueueName,
        env: &Envelope,
        content: impl FnMut(&QueueId) -> std::borrow::Cow<'c, [u8]>,
    ) -> io::Result<QueueId> {
        let id = self.enqueue_uncommitted(q, env, content)?;
        sync_dir(&self.dir(q))?;
        Ok(id)
    }

    /// [`Queue::enqueue_with`] without the final commit: the file is whole
    /// and visible under its ID, but not known to be on stable storage
    /// until the caller has run [`crate::durable::commit`] (or its async
    /// form) on the queue directory. Nothing may be acknowledged before.
    pub fn enqueue_uncommitted<'c>(
        &self,
        q: QueueName,
        env: &Envelope,
        mut content: impl FnMut(&QueueId) -> std::borrow::Cow<'c, [u8]>,
    ) -> io::Result<QueueId> {
        for _ in 0..100 {
            let id = QueueId::generate();
            if self.write_new(q, &id, env, &mut content)? {
                return Ok(id);
            }
        }
        Err(io::Error::other("cannot find a free queue ID"))
    }

    /// Writes the queue file `q/ID`, not committed: under a dot name that
    /// no scan picks up, then renamed to its ID once whole, so the queue
    /// manager never sees a half-written file. `Ok(false)` when the name is
    /// taken.
    pub fn write_new<'c>(
        &self,
        q: QueueName,
        id: &QueueId,
        env: &Envelope,
        mut content: impl FnMut(&QueueId) -> std::borrow::Cow<'c, [u8]>,
    ) -> io::Result<bool> {
        let dir = self.dir(q);
        let path = dir.join(id.as_str());
        let tmp = dir.join(format!(".{id}"));
        let mut f = match self.take_free(&tmp) {
            Some(f) => f,
            None => match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            },
        };
        let bytes = file::encode_for(Some(id.as_str()), env, &content(id));
        if let Err(e) = f
            .write_all(&bytes)
            .and_then(|()| f.set_len(bytes.len() as u64))
        {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        drop(f);
        // Under its ID in one step, never over a file of that name.
        let renamed = nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &tmp,
            nix::fcntl::AT_FDCWD,
            &path,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        );
        let done = match renamed {
            Ok(()) => return Ok(true),
            // A file system without RENAME_NOREPLACE: a link does the same.
            Err(nix::errno::Errno::EINVAL) => fs::hard_link(&tmp, &path),
            Err(e) => Err(io::Error::from(e)),
        };
        let _ = fs::remove_file(&tmp);
        match done {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes what an interrupted [`Queue::enqueue_with`] left behind
    /// (dot files: never acknowledged).
    pub fn remove_unfinished(&self) -> io::Result<usize> {
        let mut n = 0;
        for q in QueueName::ALL {
            for entry in fs::read_dir(self.dir(q))? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && !name.starts_with(FREE_PREFIX) {
                    fs::remove_file(entry.path())?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The IDs in one queue, sorted.
    pub fn list(&self, q: QueueName) -> io::Result<Vec<QueueId>> {
        let mut ids: Vec<QueueId> = fs::read_dir(self.dir(q))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(QueueId::parse))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Which queue holds `id`, if any.
    pub fn locate(&self, id: &QueueId) -> Option<QueueName> {
        QueueName::ALL
            .into_iter()
            .find(|q| self.path(*q, id).exists())
    }

    /// Moves a message between queues (a rename). Not synced: if a crash
    /// undoes it, the message is in its old queue, from where it is
    /// delivered again; nothing is lost.
    pub fn move_to(&self, id: &QueueId, from: QueueName, to: QueueName) -> io::Result<()> {
        if from == to {
            return Ok(());
        }
        fs::rename(self.path(from, id), self.path(to, id))
    }

    /// Like [`Queue::move_to`], and durable: for moves that must not be
    /// undone (a message put on hold by the administrator).
    pub fn move_to_durably(&self, id: &QueueId, from: QueueName, to: QueueName) -> io::Result<()> {
        self.move_to(id, from, to)?;
        sync_dir(&self.dir(to))
    }

    /// Removes a message and its defer log. Not synced: a removal undone by
    /// a power failure means a second delivery, never a lost message.
    pub fn remove(&self, q: QueueName, id: &QueueId) -> io::Result<()> {
        let path = self.path(q, id);
        let keep = self.free.lock().unwrap_or_else(|p| p.into_inner()).len() < MAX_FREE;
        let name = format!("{FREE_PREFIX}{id}");
        let kept = keep && fs::rename(&path, self.dir(QueueName::Active).join(&name)).is_ok();
        if kept {
            self.free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(name);
        } else {
            fs::remove_file(&path)?;
        }
        let _ = fs::remove_file(self.defer_log(id));
        let _ = fs::remove_file(self.warn_mark(id));
        Ok(())
    }

    /// Present once the delay warning of a message was sent.
    pub fn warn_mark(&self, id: &QueueId) -> PathBuf {
        self.root.join("defer").join(format!("{id}.warned"))
    }

    /// The file with the reasons for deferred recipients (for mailq).
    pub fn defer_log(&self, id: &QueueId) -> PathBuf {
        self.root.join("defer").join(id.as_str())
    }

    /// Opens a queued message.
    pub fn read(&self, q: QueueName, id: &QueueId) -> io::Result<QueueFile> {
        QueueFile::open(&self.path(q, id))
    }

    /// Sets the time of the next delivery attempt (the file's mtime).
    pub fn set_next_attempt(&self, q: QueueName, id: &QueueId, at: SystemTime) -> io::Result<()> {
        let f = File::options().write(true).open(self.path(q, id))?;
        f.set_modified(at)
    }
}

/// Makes names created or renamed in `dir` (and everything else written
/// to its file system) durable; concurrent callers share one commit (see
/// [`crate::durable`]).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::durable::commit(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = QueueId::generate();
            assert!(QueueId::parse(id.as_str()).is_some(), "{id}");
            seen.insert(id);
        }
        assert!(seen.len() > 9_990, "ids repeat too often: {}", seen.len());
        assert!(QueueId::parse("../etc").is_none());
        assert!(QueueId::parse("35ec31bb80").is_none());
    }

    #[test]
    fn enqueue_list_move_remove() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let env = Envelope::new("a@example.com", vec![Recipient::new("b@example.com")]);
        let id = q.enqueue(&env, b"Subject: x\r\n\r\nbody\r\n").unwrap();
        assert_eq!(q.list(QueueName::Incoming).unwrap(), vec![id.clone()]);
        assert_eq!(q.locate(&id), Some(QueueName::Incoming));
        q.move_to(&id, QueueName::Incoming, QueueName::Active)
            .unwrap();
        let f = q.read(QueueName::Active, &id).unwrap();
        assert_eq!(f.envelope.sender, "a@example.com");
        assert_eq!(f.read_content().unwrap(), b"Subject: x\r\n\r\nbody\r\n");
        q.remove(QueueName::Active, &id).unwrap();
        assert_eq!(q.locate(&id), None);
    }

    #[test]
    fn a_reused_file_holds_only_the_new_message() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let env = Envelope::new("a@example.com", vec![Recipient::new("b@example.com")]);
        let big = [&b"Subject: big\r\n\r\n"[..], &[b'x'; 50_000]].concat();
        let first = q.enqueue(&env, &big).unwrap();
        q.remove(QueueName::Incoming, &first).unwrap();
        // The next message goes into the same file, overwritten in place
        // and cut to its own length.
        let other = Envelope::new("c@example.com", vec![Recipient::new("d@example.com")]);
        let id = q.enqueue(&other, b"Subject: small\r\n\r\nhi\r\n").unwrap();
        assert!(
            q.free.lock().unwrap().is_empty(),
            "the freed file was taken"
        );
        let f = q.read(QueueName::Incoming, &id).unwrap();
        assert_eq!(f.envelope.sender, "c@example.com");
        assert!(f.envelope.attrs.is_empty(), "{:?}", f.envelope.attrs);
        assert_eq!(f.read_content().unwrap(), b"Subject: small\r\n\r\nhi\r\n");
        // Byte for byte what a new file would hold: nothing of the old
        // message after the end.
        assert_eq!(
            fs::read(q.path(QueueName::Incoming, &id)).unwrap(),
            file::encode_for(Some(id.as_str()), &other, b"Subject: small\r\n\r\nhi\r\n")
        );
    }

    #[test]
    fn a_file_under_another_id_is_refused() {
        // What a crash can leave: a reused file renamed to its new ID
        // while it still holds the bytes of the message it had before.
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let env = Envelope::new("a@example.com", vec![Recipient::new("b@example.com")]);
        let old = q.enqueue(&env, b"Subject: old\r\n\r\n").unwrap();
        let new = QueueId::generate();
        fs::rename(
            q.path(QueueName::Incoming, &old),
            q.path(QueueName::Incoming, &new),
        )
        .unwrap();
        let err = q.read(QueueName::Incoming, &new).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(old.as_str()), "{err}");
    }
}
