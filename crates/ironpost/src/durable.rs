//! Durability with group commit.
//!
//! Writers that must not acknowledge before their data is on stable storage
//! (the queue before `250`, a Maildir delivery before the queue file goes)
//! write their files and directory entries first, then call [`commit`]. A
//! commit is one `syncfs(2)` of the file system: it writes back every dirty
//! page and inode, commits the journal and flushes the device cache, so it
//! covers file data and directory entries (what an fsync of each file and
//! of its directory would). Callers that arrive while a commit runs wait
//! for the next one, which covers all of them: twenty sessions queueing at
//! once cost two device flushes, not forty.
//!
//! A caller returns only after a commit that started after its call has
//! finished, so everything it wrote before calling is durable. An error of
//! that commit is returned to every caller it covered.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

#[derive(Default)]
struct State {
    /// Tickets handed out.
    requested: u64,
    /// Every ticket up to this one is covered by a finished commit.
    committed: u64,
    running: bool,
    /// The last commit failed for the tickets up to `failed_upto`.
    failed_upto: u64,
    error: Option<(io::ErrorKind, String)>,
}

type Group = Arc<(Mutex<State>, Condvar)>;

fn group(dev: u64) -> Group {
    static GROUPS: OnceLock<Mutex<HashMap<u64, Group>>> = OnceLock::new();
    GROUPS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(dev)
        .or_default()
        .clone()
}

/// Makes everything written so far to the file system holding `path` (a
/// file or a directory) durable.
pub fn commit(path: &Path) -> io::Result<()> {
    let anchor = File::open(path)?;
    let dev = anchor.metadata()?.dev();
    let g = group(dev);
    let (lock, cv) = &*g;
    let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
    st.requested += 1;
    let ticket = st.requested;
    loop {
        if st.committed >= ticket {
            return match &st.error {
                Some((kind, msg)) if ticket <= st.failed_upto => {
                    Err(io::Error::new(*kind, msg.clone()))
                }
                _ => Ok(()),
            };
        }
        if !st.running {
            st.running = true;
            let target = st.requested;
            drop(st);
            let result = nix::unistd::syncfs(&anchor).map_err(io::Error::from);
            st = lock.lock().unwrap_or_else(|p| p.into_inner());
            st.running = false;
            st.committed = target;
            match result {
                Ok(()) => st.error = None,
                Err(e) => {
                    st.failed_upto = target;
                    st.error = Some((e.kind(), e.to_string()));
                }
            }
            cv.notify_all();
            continue;
        }
        st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
    }
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
}
