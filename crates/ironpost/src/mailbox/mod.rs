//! Mailbox writers: how delivered mail is stored on disk, for local(8) and
//! virtual(8) delivery.
//!
//! ## Map
//! - [`maildir`]: Maildir. The message is written to `tmp/` under a unique
//!   name (`<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<wire size>`, as
//!   Dovecot names files), fsync'd, linked into `new/`, and `new/` is
//!   fsync'd. Files hold LF line ends. Maildir++ folder names
//!   ([`maildir::folder_path`]).
//! - [`mbox`]: mbox files (`/var/mail/USER`, `~/Mailbox`) as Postfix's
//!   local(8) writes them: a `From sender  asctime` line, `>From ` quoting,
//!   an empty line after each message; dot lock and fcntl lock; truncated
//!   back to the old length when anything fails.
//! - [`Mailbox`]: one or the other, chosen from a path (a trailing `/` means
//!   Maildir, as in home_mailbox, mail_spool_directory and
//!   virtual_mailbox_maps).
//!
//! Both writers take the message in SMTP form (CRLF line ends) and store it
//! with LF line ends, as Postfix and every reader of these formats expect.
//!
//! ## Privileges
//! Postfix changes its effective uid to the recipient's before it touches a
//! mailbox, so the kernel applies the recipient's permissions. ironpost
//! delivers as root and passes the recipient as `owner`; the writers then
//! do what the kernel would have refused themselves: Maildir directories
//! are only written when the owner could write them (see [`maildir`]), mbox
//! files are opened as Postfix's `safe_open()` does (no symlinks unless
//! owned by root, no hard-linked files, see [`mbox`]).

pub mod maildir;
pub mod mbox;

use std::fmt::Display;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A mailbox to deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailbox {
    /// A Maildir directory (holding `tmp/`, `new/`, `cur/`).
    Maildir(PathBuf),
    /// An mbox file.
    Mbox(PathBuf),
}

impl Mailbox {
    /// A path ending in `/` is a Maildir, anything else an mbox file, as
    /// Postfix reads home_mailbox and virtual_mailbox_maps results.
    pub fn from_path(path: impl AsRef<Path>) -> Mailbox {
        let path = path.as_ref();
        if path.as_os_str().as_bytes().ends_with(b"/") {
            Mailbox::Maildir(path.to_path_buf())
        } else {
            Mailbox::Mbox(path.to_path_buf())
        }
    }

    /// The directory or file.
    pub fn path(&self) -> &Path {
        match self {
            Mailbox::Maildir(p) | Mailbox::Mbox(p) => p,
        }
    }

    /// Delivers a message (CRLF line ends). `owner` is the uid and gid that
    /// new files and directories get, and whose permissions are checked,
    /// when delivering as root. `sender` and `arrival` make the mbox
    /// `From ` line; Maildir does not use them.
    ///
    /// Returns the new file's path for a Maildir, `None` for an mbox. On
    /// error nothing of the message is left behind; the caller defers or
    /// bounces.
    pub fn deliver(
        &self,
        sender: &str,
        arrival: SystemTime,
        message: &[u8],
        owner: Option<(u32, u32)>,
    ) -> io::Result<Option<PathBuf>> {
        match self {
            Mailbox::Maildir(dir) => maildir::deliver(dir, message, owner).map(Some),
            Mailbox::Mbox(file) => mbox::deliver(
                file,
                sender,
                arrival,
                message,
                &mbox::MboxOptions {
                    owner,
                    ..mbox::MboxOptions::default()
                },
            )
            .map(|()| None),
        }
    }
}

/// `e` with `what` in front of the system's description of it (without
/// Rust's " (os error N)"), keeping its kind: "create maildir file
/// /x/tmp/y: Permission denied".
pub(crate) fn context(what: impl Display, e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    };
    io::Error::new(e.kind(), format!("{what}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_means_maildir() {
        assert_eq!(
            Mailbox::from_path("/home/j/Maildir/"),
            Mailbox::Maildir(PathBuf::from("/home/j/Maildir/"))
        );
        assert_eq!(
            Mailbox::from_path(Path::new("/var/mail/j")),
            Mailbox::Mbox(PathBuf::from("/var/mail/j"))
        );
        assert_eq!(Mailbox::from_path("Mailbox").path(), Path::new("Mailbox"));
    }

    #[test]
    fn deliver_dispatches() {
        let dir = tempfile::tempdir().unwrap();
        let md = Mailbox::from_path(format!("{}/Maildir/", dir.path().display()));
        let got = md
            .deliver("a@b.test", SystemTime::now(), b"S: x\r\n\r\nhi\r\n", None)
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), b"S: x\n\nhi\n");
        let mb = Mailbox::from_path(dir.path().join("mbox"));
        let got = mb
            .deliver("a@b.test", SystemTime::now(), b"S: x\r\n\r\nhi\r\n", None)
            .unwrap();
        assert_eq!(got, None);
        let text = std::fs::read_to_string(dir.path().join("mbox")).unwrap();
        assert!(text.starts_with("From a@b.test  "), "{text}");
        assert!(text.ends_with("\nS: x\n\nhi\n\n"), "{text}");
    }

    #[test]
    fn context_keeps_kind_and_drops_os_error_number() {
        let e = context(
            "create maildir file /x",
            io::Error::from_raw_os_error(nix::libc::EACCES),
        );
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(e.to_string(), "create maildir file /x: Permission denied");
    }
}
