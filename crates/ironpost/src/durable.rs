//! Durability with group commit.
//!
//! Writers that must not acknowledge before their data is on stable storage
//! (the queue before `250`, a Maildir delivery before the queue file goes)
//! write their files and directory entries first, then call [`commit`] (or
//! await [`commit_async`]). A commit is one `syncfs(2)` of the file system:
//! it writes back every dirty page and inode, and flushes the device cache,
//! so it covers file data and directory entries (what an fsync of each file
//! and of its directory would).
//!
//! One committer thread per file system runs the commits: it takes every
//! waiter that has arrived, runs one `syncfs`, and answers them all, while
//! the next waiters gather for the following one. When waiters arrived
//! during the last commit (a busy server), it first lets more join for
//! half as long as that commit took (1 ms at most); a lone waiter on an
//! idle server is served at once. Twenty sessions queueing at once cost
//! one device flush, not forty, and nobody holds a thread while waiting in
//! async code.
//!
//! A waiter is answered only by a commit that started after it arrived, so
//! everything it wrote before is durable; an error of that commit is
//! returned to every waiter it covered.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

enum Waiter {
    Blocking(std::sync::mpsc::Sender<io::Result<()>>),
    Async(tokio::sync::oneshot::Sender<io::Result<()>>),
}

impl Waiter {
    fn answer(self, r: &Result<(), (io::ErrorKind, String)>) {
        let r = r
            .as_ref()
            .map(|_| ())
            .map_err(|(kind, msg)| io::Error::new(*kind, msg.clone()));
        match self {
            Waiter::Blocking(tx) => {
                let _ = tx.send(r);
            }
            Waiter::Async(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// The committer of one file system.
struct Committer {
    waiting: Mutex<Vec<Waiter>>,
    cv: Condvar,
}

fn committer(path: &Path) -> io::Result<Arc<Committer>> {
    // The committer of a directory already asked for: no stat per commit.
    static BY_PATH: OnceLock<Mutex<HashMap<std::path::PathBuf, Arc<Committer>>>> = OnceLock::new();
    let by_path = BY_PATH.get_or_init(Default::default);
    if let Some(c) = by_path.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        return Ok(c.clone());
    }
    let c = committer_of_device(path)?;
    let mut map = by_path.lock().unwrap_or_else(|p| p.into_inner());
    // Directories are few; files named one by one are not kept.
    if map.len() < 1000 && path.is_dir() {
        map.insert(path.to_path_buf(), c.clone());
    }
    Ok(c)
}

fn committer_of_device(path: &Path) -> io::Result<Arc<Committer>> {
    static ALL: OnceLock<Mutex<HashMap<u64, Arc<Committer>>>> = OnceLock::new();
    let dev = std::fs::metadata(path)?.dev();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = all.get(&dev) {
        return Ok(c.clone());
    }
    let anchor = File::open(path)?;
    let c = Arc::new(Committer {
        waiting: Mutex::new(Vec::new()),
        cv: Condvar::new(),
    });
    let me = c.clone();
    std::thread::Builder::new()
        .name(format!("commit-{dev}"))
        .spawn(move || me.run(anchor))?;
    all.insert(dev, c.clone());
    Ok(c)
}

impl Committer {
    fn run(&self, anchor: File) {
        let mut last_sync = std::time::Duration::ZERO;
        loop {
            let (mut batch, busy) = {
                let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                // Waiters that came during the last syncfs: the server is
                // busy.
                let busy = !w.is_empty();
                while w.is_empty() {
                    w = self.cv.wait(w).unwrap_or_else(|p| p.into_inner());
                }
                (std::mem::take(&mut *w), busy)
            };
            if busy {
                // Busy: let more writers join this commit, for a part of
                // what a commit takes. An idle server's lone writer is
                // served at once.
                std::thread::sleep((last_sync / 2).min(std::time::Duration::from_millis(1)));
                batch.append(&mut self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
            }
            let started = std::time::Instant::now();
            let result = nix::unistd::syncfs(&anchor).map_err(|e| {
                let e = io::Error::from(e);
                (e.kind(), e.to_string())
            });
            last_sync = started.elapsed();
            for waiter in batch {
                waiter.answer(&result);
            }
        }
    }

    fn add(&self, w: Waiter) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
        self.cv.notify_one();
    }
}

thread_local! {
    /// Inside [`deferring`]: the paths whose commit was put off.
    static DEFERRED: std::cell::RefCell<Option<Vec<std::path::PathBuf>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with [`commit`] calls put off: they return at once and their
/// paths are returned with `f`'s result. The caller must commit them (with
/// [`commit_async`]) before anything that relies on what `f` wrote.
pub fn deferring<T>(f: impl FnOnce() -> T) -> (T, Vec<std::path::PathBuf>) {
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
    let out = f();
    let paths = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    (out, paths)
}

/// Inside [`deferring`]: commits what was put off so far, now.
pub fn commit_deferred_now() -> io::Result<()> {
    let paths = DEFERRED.with(|d| d.borrow_mut().as_mut().map(std::mem::take));
    for p in paths.unwrap_or_default() {
        commit_blocking(&p)?;
    }
    Ok(())
}

/// Makes everything written so far to the file system holding `path` (a
/// file or a directory) durable; blocks until it is (inside [`deferring`],
/// only notes the path).
pub fn commit(path: &Path) -> io::Result<()> {
    let put_off = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            if !list.iter().any(|p| p == path) {
                list.push(path.to_path_buf());
            }
            true
        }
        None => false,
    });
    if put_off {
        return Ok(());
    }
    commit_blocking(path)
}

fn commit_blocking(path: &Path) -> io::Result<()> {
    let c = committer(path)?;
    let (tx, rx) = std::sync::mpsc::channel();
    c.add(Waiter::Blocking(tx));
    rx.recv()
        .unwrap_or_else(|_| Err(io::Error::other("the committer stopped")))
}

/// [`commit`] for async code: waits without holding a thread.
pub async fn commit_async(path: &Path) -> io::Result<()> {
    commit_all_async(&[path]).await
}

/// [`commit_async`] of several paths: one commit per file system, not one
/// per path.
pub async fn commit_all_async<P: AsRef<Path>>(paths: &[P]) -> io::Result<()> {
    let mut committers: Vec<Arc<Committer>> = Vec::new();
    for p in paths {
        let c = committer(p.as_ref())?;
        if !committers.iter().any(|k| Arc::ptr_eq(k, &c)) {
            committers.push(c);
        }
    }
    let mut answers = Vec::with_capacity(committers.len());
    for c in committers {
        let (tx, rx) = tokio::sync::oneshot::channel();
        c.add(Waiter::Async(tx));
        answers.push(rx);
    }
    for rx in answers {
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("the committer stopped")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_commits_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let p = path.clone();
                std::thread::spawn(move || {
                    std::fs::write(p.join(format!("f{i}")), b"x").unwrap();
                    commit(&p)
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert!(commit(&path.join("f0")).is_ok());
        assert!(commit(&path.join("missing")).is_err());
    }

    #[test]
    fn deferred_commits_are_noted_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let ((), paths) = deferring(|| {
            std::fs::write(dir.path().join("a"), b"x").unwrap();
            commit(dir.path()).unwrap();
            commit(dir.path()).unwrap();
        });
        assert_eq!(paths, vec![dir.path().to_path_buf()]);
        let ((), none) = deferring(|| ());
        assert!(none.is_empty());
    }

    #[test]
    fn async_commits_return() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            std::fs::write(dir.path().join("a"), b"x").unwrap();
            commit_async(dir.path()).await.unwrap();
            let two = [dir.path().to_path_buf(), dir.path().join("a")];
            commit_all_async(&two).await.unwrap();
            assert!(
                commit_all_async(&[dir.path().join("missing")])
                    .await
                    .is_err()
            );
        });
    }
}
