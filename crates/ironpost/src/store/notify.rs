//! Change notices between the parts of one ironpost process that touch a
//! mailbox: delivery and IMAP sessions bump a folder's counter after a
//! change, and a session in IDLE waits on it, so new mail shows at once
//! rather than at the next poll. Changes made by other programs (mutt,
//! Dovecot, a shell) are found by polling the folder anyway.
//!
//! Folders are named by their directory path as given (delivery and the
//! IMAP server both derive it from the same settings, so they agree).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::watch;

type Table = HashMap<PathBuf, Weak<watch::Sender<u64>>>;

static FOLDERS: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// A subscription to one folder's changes; dropping it unsubscribes.
pub struct Watch {
    sender: Arc<watch::Sender<u64>>,
    pub receiver: watch::Receiver<u64>,
}

/// Starts watching `folder` (a Maildir's directory).
pub fn watch(folder: &Path) -> Watch {
    let mut t = FOLDERS.lock().unwrap_or_else(|e| e.into_inner());
    let sender = match t.get(folder).and_then(Weak::upgrade) {
        Some(s) => s,
        None => {
            let s = Arc::new(watch::channel(0u64).0);
            t.insert(folder.to_path_buf(), Arc::downgrade(&s));
            // Forget folders nobody watches any more.
            if t.len() > 64 && t.len().is_power_of_two() {
                t.retain(|_, w| w.strong_count() > 0);
            }
            s
        }
    };
    let receiver = sender.subscribe();
    Watch { sender, receiver }
}

impl Watch {
    /// Tells the other watchers of this folder that it changed.
    pub fn changed(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Tells the watchers of `folder`, if any, that it changed.
pub fn changed(folder: &Path) {
    let sender = {
        let t = FOLDERS.lock().unwrap_or_else(|e| e.into_inner());
        t.get(folder).and_then(Weak::upgrade)
    };
    if let Some(s) = sender {
        s.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_every_watcher_of_that_folder_only() {
        let a = Path::new("/nonexistent/a/Maildir");
        let b = Path::new("/nonexistent/b/Maildir");
        let mut w1 = watch(a);
        let mut w2 = watch(a);
        let mut other = watch(b);
        w1.receiver.mark_unchanged();
        w2.receiver.mark_unchanged();
        other.receiver.mark_unchanged();
        changed(a);
        assert!(w1.receiver.has_changed().unwrap());
        assert!(w2.receiver.has_changed().unwrap());
        assert!(!other.receiver.has_changed().unwrap());
        w1.receiver.changed().await.unwrap();
        // A watcher's own notice reaches the others.
        w2.receiver.mark_unchanged();
        w1.changed();
        assert!(w2.receiver.has_changed().unwrap());
        // Nobody watching: nothing kept, nothing fails.
        drop((w1, w2));
        changed(a);
        let t = FOLDERS.lock().unwrap();
        assert!(t.get(a).and_then(Weak::upgrade).is_none());
    }
}
