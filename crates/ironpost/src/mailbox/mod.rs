//! Mailbox writers: how delivered mail is stored on disk.
//!
//! ## Layout
//! - [`maildir`]: Maildir (`tmp/` → `new/`, fsync'd, Dovecot-style names).
//! - [`mbox`]: mbox files with `From ` lines, fcntl and dot locking.
//! - [`Mailbox`]: one or the other, from a path (a trailing `/` means
//!   Maildir, as in home_mailbox and virtual_mailbox_maps).

pub mod maildir;
pub mod mbox;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A mailbox to deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailbox {
    Maildir(PathBuf),
    Mbox(PathBuf),
}

impl Mailbox {
    /// A trailing `/` means Maildir, anything else an mbox file.
    pub fn from_path(path: &str) -> Mailbox {
        if path.ends_with('/') {
            Mailbox::Maildir(PathBuf::from(path))
        } else {
            Mailbox::Mbox(PathBuf::from(path))
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Mailbox::Maildir(p) | Mailbox::Mbox(p) => p,
        }
    }

    /// Delivers a message (CRLF line ends). `owner` is the uid and gid that
    /// new files and directories get (when delivering as root).
    pub fn deliver(
        &self,
        sender: &str,
        arrival: SystemTime,
        message: &[u8],
        owner: Option<(u32, u32)>,
    ) -> io::Result<()> {
        match self {
            Mailbox::Maildir(dir) => maildir::deliver(dir, message, owner).map(drop),
            Mailbox::Mbox(file) => mbox::deliver(
                file,
                sender,
                arrival,
                message,
                &mbox::MboxOptions {
                    owner,
                    ..mbox::MboxOptions::default()
                },
            ),
        }
    }
}
