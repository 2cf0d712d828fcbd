//! The mailbox store that POP3 and IMAP read: messages with UIDs that do
//! not change across sessions, restarts and deliveries, whichever
//! protocol reads them, so that a POP3 UIDL and an IMAP UID name the same
//! message for its whole life.
//!
//! ## Map
//! - [`maildir`]: [`Maildir`], one Maildir folder (the INBOX root or a
//!   Maildir++ subfolder): [`Maildir::snapshot`] (the messages by UID,
//!   [`Snapshot`], [`Message`]), `read`, `expunge`, `set_flags`, `append`,
//!   `move_new_to_cur`. The entry point.
//! - [`flags`]: [`Flags`] and the `:2,<letters>` info part of Maildir file
//!   names; base names.
//! - `uidlist`: the UID list file `ironpost-uidlist`, in the text format
//!   of Dovecot's `dovecot-uidlist` version 3 (a `dovecot-uidlist` is
//!   taken over when ours does not exist).
//! - `lock`: the lock of a UID list: a mutex per Maildir between threads,
//!   the dot lock `ironpost-uidlist.lock` between processes.
//! - [`mbox`]: [`Mbox`], one mbox file (`/var/mail/USER`): the same
//!   snapshots, `read` and `expunge`, and `write_flags` (the `Status:`,
//!   `X-Status:` and `X-Keywords:` headers) and `append` (in place, under
//!   delivery's locks),
//!   UIDs kept in a state directory outside the spool, keyed by a hash of
//!   each message's `From ` line and headers; Dovecot's `X-IMAPbase` and
//!   `X-UID` taken over.
//! - [`index`]: [`index::Index`], what IMAP keeps about a mailbox beyond
//!   its files (MODSEQs, expunge history for QRESYNC, cached ENVELOPE and
//!   BODYSTRUCTURE), in the data directory, rebuilt from the mailbox
//!   when lost; [`index::state_dir`] names the directory of a mailbox's
//!   state there.
//! - [`pop3_uidl`]: the POP3 UIDL of a UID, as Dovecot makes it.
//!
//! Delivery (`crate::mailbox::maildir`) writes into the same Maildirs
//! without any lock: `tmp/`, then a link into `new/`. The store never
//! looks into `tmp/`, so it never shows a half-written message.
//!
//! ## The UID list
//! ```text
//! 3 V1700000000 N4 G5d41402abc4b2a76b9719d911017c592
//! 1 :1700000000.M123456P4242Q1.mx.example,S=1355,W=1394
//! 3 W2481 S2424 :1700000321.hand-made
//! ```
//! Header: version 3, `V` UIDVALIDITY, `N` next UID, `G` mailbox GUID.
//! Lines: UID, `W` (CRLF size) and `S` (stored size) when the file name
//! lacks `,W=`/`,S=`, other Dovecot fields kept as read, ` :` base name.
//! UIDs only grow and are never given twice within one UIDVALIDITY; the
//! UIDVALIDITY (the Unix time when the list was made, as Dovecot does)
//! changes only when the list is lost or corrupt and cannot be read.

pub mod flags;
pub mod index;
pub mod keywords;
pub mod location;
mod lock;
pub mod maildir;
pub mod mbox;
pub mod notify;
pub mod quota;
mod uidlist;
mod uring;

pub use flags::Flags;
pub use maildir::{Maildir, Message, Snapshot};
pub use mbox::Mbox;

/// Opens a regular file for reading, with `extra` open(2) flags: no
/// symlink followed, no FIFO waited on (`InvalidData` for anything but a
/// regular file). Gives its size too.
fn open_regular(
    path: &std::path::Path,
    extra: nix::libc::c_int,
) -> std::io::Result<(std::fs::File, u64)> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | extra)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                Error::new(ErrorKind::InvalidData, "a symbolic link")
            } else {
                e
            }
        })?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidData, "not a regular file"));
    }
    Ok((f, meta.len()))
}

/// The POP3 UIDL of message `uid` in a mailbox of `uidvalidity`:
/// Dovecot's default `pop3_uidl_format = %08Xu%08Xv` (the UID, then the
/// UIDVALIDITY, each eight hex digits; Dovecot's `X` writes them in lower
/// case), so POP3 clients that leave mail on the server see the same
/// UIDLs after a move from Dovecot.
pub fn pop3_uidl(uidvalidity: u32, uid: u32) -> String {
    format!("{uid:08x}{uidvalidity:08x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn pop3_uidl_is_dovecots_default() {
        // As Dovecot 2.3.19 answers UIDL for UID 1 of UIDVALIDITY
        // 0x6b104578.
        assert_eq!(super::pop3_uidl(0x6b10_4578, 1), "000000016b104578");
        assert_eq!(super::pop3_uidl(1275660208, 25006), "000061ae4c0907b0");
        assert_eq!(super::pop3_uidl(u32::MAX, 0xAB), "000000abffffffff");
    }
}
