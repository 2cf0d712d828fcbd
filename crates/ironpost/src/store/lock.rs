//! The lock that serializes changes of a UID list: a mutex per Maildir for
//! the threads of this process, then a dot lock file for other processes.
//!
//! The dot lock is `ironpost-uidlist.lock` in the Maildir, created with
//! `O_CREAT|O_EXCL` (as Dovecot's `dovecot-uidlist.lock`). Its holder
//! keeps an `flock(2)` on it and writes `<pid>:<host>` into it; release
//! unlinks it. A lock left by a process that died is stale, and broken,
//! when nobody holds its `flock` and either its pid (on this host) no
//! longer runs or it is older than two minutes (Dovecot's stale time for
//! its uidlist lock). A live holder's lock is never broken, however long
//! it takes. Breaking takes the `flock` first and checks that the name
//! still points at the same file, so two processes breaking the same
//! stale lock cannot remove each other's new one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// A dot lock older than this, with no live holder, is stale.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(120);

/// How long to wait for a live holder before giving up.
const WAIT_AT_MOST: Duration = Duration::from_secs(180);

/// Process-wide state of one mailbox, by canonical path: one `T` per path
/// while anyone holds it.
pub(crate) struct PerPath<T> {
    map: HashMap<PathBuf, Weak<T>>,
    /// Prune closed mailboxes when the map grows past this.
    prune_at: usize,
}

/// The `T` of `key` in `table`, made when nobody holds one.
pub(crate) fn per_path<T: Default>(
    table: &'static OnceLock<Mutex<PerPath<T>>>,
    key: &Path,
) -> Arc<T> {
    let mut t = table
        .get_or_init(|| {
            Mutex::new(PerPath {
                map: HashMap::new(),
                prune_at: 64,
            })
        })
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = t.map.get(key).and_then(Weak::upgrade) {
        return m;
    }
    if t.map.len() >= t.prune_at {
        t.map.retain(|_, w| w.strong_count() > 0);
        t.prune_at = (t.map.len() * 2).max(64);
    }
    let m = Arc::new(T::default());
    t.map.insert(key.to_path_buf(), Arc::downgrade(&m));
    m
}

/// The mutex of the Maildir `key` (a canonical path) for this process's
/// threads; one per path while any [`super::Maildir`] of it is open.
pub(crate) fn thread_mutex(key: &Path) -> Arc<Mutex<()>> {
    static TABLE: OnceLock<Mutex<PerPath<Mutex<()>>>> = OnceLock::new();
    per_path(&TABLE, key)
}

/// A held UID list lock; released (the dot lock unlinked) when dropped.
pub(crate) struct ListLock<'a> {
    path: PathBuf,
    file: Option<Flock<File>>,
    _thread: MutexGuard<'a, ()>,
}

impl Drop for ListLock<'_> {
    fn drop(&mut self) {
        // Unlink while the flock is still held, so that nobody breaking
        // it can take the name for a stale lock meanwhile.
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("remove {}: {e}", self.path.display());
        }
        drop(self.file.take());
    }
}

/// This host's name, as written into lock files.
fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// Takes `mutex`, then the dot lock `path`. `owner` is given the lock
/// file (root writing a user's Maildir).
pub(crate) fn acquire<'a>(
    mutex: &'a Mutex<()>,
    path: &Path,
    owner: impl Fn(&File) -> io::Result<()>,
) -> io::Result<ListLock<'a>> {
    let guard = mutex.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(path)
        {
            Ok(file) => {
                let mut lock = ListLock {
                    path: path.to_path_buf(),
                    file: None,
                    _thread: guard,
                };
                // Blocking: someone probing a just-created lock holds the
                // flock for a moment, finds no pid yet, and lets go.
                let mut file = Flock::lock(file, FlockArg::LockExclusive)
                    .map_err(|(_, e)| lock_error(path, "lock", e.into()))?;
                owner(&file)?;
                file.write_all(format!("{}:{}\n", std::process::id(), host()).as_bytes())
                    .map_err(|e| lock_error(path, "write", e))?;
                lock.file = Some(file);
                return Ok(lock);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(lock_error(path, "create", e)),
        }
        if break_if_stale(path)? {
            continue;
        }
        if started.elapsed() > WAIT_AT_MOST {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{}: held by another process for over {} s",
                    path.display(),
                    WAIT_AT_MOST.as_secs()
                ),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn lock_error(path: &Path, what: &str, e: io::Error) -> io::Error {
    crate::mailbox::context(format!("{what} {}", path.display()), e)
}

/// Removes the dot lock `path` if it is stale. True when the caller should
/// try to create it again (removed, or gone meanwhile).
pub(crate) fn break_if_stale(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(lock_error(path, "open", e)),
    };
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => f,
        // A live holder.
        Err((_, Errno::EWOULDBLOCK)) => return Ok(false),
        Err((_, e)) => return Err(lock_error(path, "lock", e.into())),
    };
    let held = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
        // Released (and perhaps taken again) meanwhile.
        Ok(_) => return Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(lock_error(path, "stat", e)),
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let dead_holder = text
        .trim_end()
        .split_once(':')
        .filter(|(_, h)| *h == host())
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
        .is_some_and(|pid| !process_runs(pid));
    let age = held
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if !dead_holder && age < STALE_AFTER {
        return Ok(false);
    }
    tracing::warn!(
        "{}: removing a stale lock ({})",
        path.display(),
        if dead_holder {
            "its process is gone".to_string()
        } else {
            format!("{} s old", age.as_secs())
        }
    );
    // We hold its flock and the name is still it: nobody else removes it.
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(lock_error(path, "remove", e)),
    }
}

/// Whether process `pid` exists (signal 0: permission denied means it
/// does).
fn process_runs(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_owner(_: &File) -> io::Result<()> {
        Ok(())
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn lock_is_exclusive_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let m = Mutex::new(());
        let lock = acquire(&m, &path, no_owner).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}:{}\n", std::process::id(), host()));
        // Held by a live flock: not stale, whatever its age.
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!break_if_stale(&path).unwrap());
        assert!(path.exists());
        drop(lock);
        assert!(!path.exists());
        // Gone: try again.
        assert!(break_if_stale(&path).unwrap());
    }

    #[test]
    fn lock_of_a_dead_process_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, format!("{}:{}\n", dead_pid(), host())).unwrap();
        assert!(break_if_stale(&path).unwrap());
        assert!(!path.exists());
        std::fs::write(&path, format!("{}:{}\n", dead_pid(), host())).unwrap();
        let m = Mutex::new(());
        drop(acquire(&m, &path, no_owner).unwrap());
    }

    #[test]
    fn old_lock_is_broken_fresh_one_of_a_live_pid_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // A live pid (ours, but no flock held: as if from another host or
        // a pid reused since).
        std::fs::write(&path, format!("{}:{}\n", std::process::id(), host())).unwrap();
        assert!(!break_if_stale(&path).unwrap());
        // Another host's lock: its pid cannot be checked.
        std::fs::write(&path, format!("{}:elsewhere.example\n", dead_pid())).unwrap();
        assert!(!break_if_stale(&path).unwrap());
        // Empty (its creator has not written yet).
        std::fs::write(&path, b"").unwrap();
        assert!(!break_if_stale(&path).unwrap());
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(break_if_stale(&path).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn threads_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let m = thread_mutex(dir.path());
        let inside = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _l = acquire(&m, &path, no_owner).unwrap();
                        assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(!path.exists());
        assert!(Arc::ptr_eq(&m, &thread_mutex(dir.path())));
    }
}
