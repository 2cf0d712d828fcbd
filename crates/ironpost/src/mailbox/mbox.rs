//! mbox delivery, as Postfix's local(8) writes `/var/mail/USER` and
//! `~/Mailbox` (and virtual(8) its mbox mailboxes).
//!
//! ## Format
//! Each message is appended as
//!
//! ```text
//! From jerry@example.test  Sun Nov 22 19:22:52 2026
//! <the message, LF line ends, a line starting "From " written ">From ">
//! <an empty line>
//! ```
//!
//! This is Postfix's `mail_copy()` byte for byte: `"From %s  %.24s\n"` with
//! the sender's local part quoted as RFC 822 wants (`quote_822_local()`,
//! see [`quote_822_local`]) or `MAILER-DAEMON` for the null sender, two
//! spaces, and the date in asctime(3) form in local time. Lines that start
//! with `From ` get a `>` in front and nothing else is changed: this is
//! "mboxo", which Postfix, mutt, Dovecot and Python's `mailbox.mbox` all
//! write; a `>From ` line already in the message stays as it is (mboxrd
//! would make it `>>From `, and readers of mboxo do not unquote). A message
//! that does not end in a line end gets one, then the empty line follows,
//! so the next `From ` line is found. When the file does not end in a line
//! end (written by something else, or damaged), a line end is written
//! first, so our `From ` line always starts a line (Postfix does not do
//! this; it costs nothing and saves the next message).
//!
//! ## Locking
//! Postfix's `mbox_open()` does it in this order, whatever the order in
//! `mailbox_delivery_lock = fcntl, dotlock` (Linux's default):
//!
//! 1. open the file as `safe_open()` does: an existing file must not be a
//!    symbolic link (unless owned by root) and must have exactly one hard
//!    link; a missing file is created exclusively, with `create_mode` and
//!    the owner given;
//! 2. create the dot lock `FILE.lock` with `O_EXCL` (mutt, mail(1),
//!    procmail and Dovecot honour it). A lock older than `stale_lock_time`
//!    (500 s, Postfix's default) is removed. If the lock file cannot be
//!    created for any reason but "it exists" (typically the spool directory
//!    is not writable, e.g. `/var/mail` writable by group mail only),
//!    Postfix logs a warning and carries on with the kernel lock only; so
//!    do we (local(8) opens mailboxes with `MBOX_DOT_LOCK_MAY_FAIL`);
//! 3. take an fcntl write lock on the whole file. We use open file
//!    description locks (`F_OFD_SETLK`): they conflict with the classic
//!    `F_SETLK` locks of mutt, mail(1) and Dovecot exactly like classic
//!    locks do, but they also exclude the other threads of this process,
//!    and closing some other descriptor of the file does not drop them.
//!    (Where the kernel has no OFD locks, classic `F_SETLK` is used.)
//!
//! Both locks are retried until `lock_timeout` (Postfix: 20 attempts a
//! second apart), then delivery fails with [`io::ErrorKind::WouldBlock`]
//! (EAGAIN, Postfix's 4.2.0 "try again"). After locking, the file must
//! still have one link and still be the file at `path`; a mail reader that
//! replaced it meanwhile makes us start over.
//!
//! ## Atomicity
//! The file's length is taken once the locks are held; if writing or the
//! fsync fails, the file is truncated back to it (as Postfix's
//! `mail_copy()` does), so it never holds part of a message. Success is
//! reported only after fsync. Character devices such as `/dev/null` are
//! written without locks, fsync or truncation, as Postfix does.

use std::borrow::Cow;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

use super::context;

/// How to deliver into an mbox file.
#[derive(Debug, Clone)]
pub struct MboxOptions {
    /// Uid and gid of a file created now (when delivering as root).
    pub owner: Option<(u32, u32)>,
    /// Permissions of a file created now (exactly these; the umask does
    /// not apply). Postfix: 0600.
    pub create_mode: u32,
    /// Take the `FILE.lock` dot lock.
    pub dotlock: bool,
    /// Take an fcntl lock on the file.
    pub fcntl_lock: bool,
    /// How long to keep trying for the locks, both together.
    pub lock_timeout: Duration,
    /// A dot lock older than this is removed (Postfix's stale_lock_time).
    pub stale_lock_time: Duration,
    /// Refuse (temporarily) an existing file not owned by `owner`'s uid, as
    /// Postfix's strict_mailbox_ownership does for mailboxes (not for file
    /// deliveries). Only checked when `owner` is given.
    pub strict_owner: bool,
}

impl Default for MboxOptions {
    /// Postfix's defaults: mode 0600, both locks, 20 s (deliver_lock_attempts
    /// × deliver_lock_delay), stale after 500 s.
    fn default() -> Self {
        MboxOptions {
            owner: None,
            create_mode: 0o600,
            dotlock: true,
            fcntl_lock: true,
            lock_timeout: Duration::from_secs(20),
            stale_lock_time: Duration::from_secs(500),
            strict_owner: false,
        }
    }
}

/// Time between lock attempts.
const RETRY: Duration = Duration::from_millis(50);
/// How often to start over when the file is replaced under us.
const OPEN_TRIES: usize = 3;

/// The sender as Postfix writes it in `From ` and `Return-Path:`: the
/// local part as an RFC 822 quoted-string when it is not a dot-atom
/// (`john doe@x` → `"john doe"@x`), 8-bit text left alone
/// (`quote_822_local()` with Postfix's default flags).
pub fn quote_822_local(addr: &str) -> Cow<'_, str> {
    // Skip a source route ("@a,@b:user@c").
    let start = match addr.find(':') {
        Some(colon) if addr.starts_with('@') => colon + 1,
        _ => 0,
    };
    let rest = addr.get(start..).unwrap_or("");
    let end = start + rest.rfind('@').unwrap_or(rest.len());
    let local = addr.get(start..end).unwrap_or("");
    if is_822_dot_string(local) {
        return Cow::Borrowed(addr);
    }
    let mut out = String::with_capacity(addr.len() + 4);
    out.push_str(addr.get(..start).unwrap_or(""));
    out.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\' | '\r') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out.push_str(addr.get(end..).unwrap_or(""));
    Cow::Owned(out)
}

fn is_822_dot_string(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local.bytes().any(|b| {
            b == b' '
                || b.is_ascii_control()
                || matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'['
                        | b']'
                )
        })
}

/// The `From ` line, with its LF: `From <sender>  <asctime>`, the sender
/// quoted as [`quote_822_local`] does, `MAILER-DAEMON` for the null
/// sender; the time in local time, in asctime(3) form
/// (`Sun Nov  2 09:05:00 2026`). A line end inside the sender (which SMTP
/// cannot carry) is written as `?` so that it cannot end the line.
pub fn from_line(sender: &str, arrival: SystemTime) -> String {
    let who = if sender.is_empty() {
        Cow::Borrowed("MAILER-DAEMON")
    } else {
        quote_822_local(sender)
    };
    let who = who.replace('\n', "?");
    format!("From {who}  {}\n", asctime(arrival))
}

/// asctime(3) of localtime(3), without the newline.
fn asctime(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => (
            i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
            0,
        ),
    };
    let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_else(chrono::Utc::now);
    utc.with_timezone(&chrono::Local)
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// The bytes appended for one message: `From ` line, the message with LF
/// line ends and `From ` lines quoted, a line end if the message lacks a
/// final one, and the empty line.
pub fn encode(sender: &str, arrival: SystemTime, message: &[u8]) -> Vec<u8> {
    let lf = super::maildir::to_lf(message);
    let mut out = from_line(sender, arrival).into_bytes();
    out.reserve(lf.len() + 64);
    for line in lf.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Appends one message to the mbox file at `path`, creating the file
/// (not its directory) when missing. See the module documentation for the
/// format, the locks and what happens on failure.
pub fn deliver(
    path: &Path,
    sender: &str,
    arrival: SystemTime,
    message: &[u8],
    opts: &MboxOptions,
) -> io::Result<()> {
    deliver_encoded(path, &encode(sender, arrival, message), opts)
}

/// [`deliver`] of what [`encode`] made (of one message or more, written
/// together: all of them, or none when it fails).
pub fn deliver_encoded(path: &Path, data: &[u8], opts: &MboxOptions) -> io::Result<()> {
    let now = Instant::now();
    let deadline = now
        .checked_add(opts.lock_timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86400));
    for _ in 0..OPEN_TRIES {
        let (file, meta) = open_mbox(path, opts)?;
        if !meta.file_type().is_file() {
            // /dev/null and the like: no locks, no fsync, no truncation.
            return (&file)
                .write_all(data)
                .map_err(|e| context("error writing message", e));
        }
        if opts.strict_owner
            && let Some((uid, _)) = opts.owner
            && meta.uid() != uid
        {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("destination {} is not owned by recipient", path.display()),
            ));
        }
        let dot = if opts.dotlock {
            dotlock(path, deadline, opts.stale_lock_time)?
        } else {
            None
        };
        if opts.fcntl_lock {
            fcntl_lock(&file, deadline)?;
        }
        // Still the file at `path`, still with one link? (A reader may have
        // replaced it while we waited.)
        let meta = file
            .metadata()
            .map_err(|e| context(format!("stat {}", path.display()), e))?;
        let same = std::fs::metadata(path)
            .is_ok_and(|now| now.dev() == meta.dev() && now.ino() == meta.ino());
        if meta.nlink() != 1 || !same {
            tracing::warn!("{}: file status changed unexpectedly", path.display());
            drop(file);
            drop(dot);
            continue;
        }
        let old_len = meta.len();
        let result = append(&file, old_len, |mut f| {
            if needs_line_end(f, old_len)? {
                f.write_all(b"\n")?;
            }
            f.write_all(data)
        });
        // Kernel lock first, then the dot lock, as Postfix releases them.
        drop(file);
        drop(dot);
        return result;
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!(
            "{}: target file status changed unexpectedly",
            path.display()
        ),
    ))
}

/// Does the file (of length `len`) end in something other than a line end?
pub(crate) fn needs_line_end(file: &File, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Runs `write` (which appends to `file`), then fsyncs. If either fails,
/// truncates the file back to `old_len` and returns the error.
pub(crate) fn append(
    file: &File,
    old_len: u64,
    write: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    let result = write(file).and_then(|()| file.sync_all());
    if let Err(e) = result {
        match file.set_len(old_len).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(te) => tracing::warn!("cannot truncate mailbox to {old_len} bytes: {te}"),
        }
        return Err(context("error writing message", e));
    }
    Ok(())
}

/// Opens (or creates) the mbox file as Postfix's `safe_open()` does.
fn open_mbox(path: &Path, opts: &MboxOptions) -> io::Result<(File, Metadata)> {
    let flags = nix::libc::O_NONBLOCK;
    for _ in 0..OPEN_TRIES {
        let opened = OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(flags | nix::libc::O_NOFOLLOW)
            .open(path);
        match opened {
            Ok(f) => return check_existing(f, path),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                // A symbolic link: followed only when root owns it.
                let l = std::fs::symlink_metadata(path)
                    .map_err(|e| context(format!("cannot open file {}", path.display()), e))?;
                if !l.file_type().is_symlink() {
                    continue;
                }
                if l.uid() != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "cannot open file {}: file is a symbolic link",
                            path.display()
                        ),
                    ));
                }
                let f = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .custom_flags(flags)
                    .open(path)
                    .map_err(|e| context(format!("cannot open file {}", path.display()), e))?;
                return check_existing(f, path);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create_new(true)
                    .mode(opts.create_mode & 0o7777)
                    .custom_flags(flags | nix::libc::O_NOFOLLOW)
                    .open(path)
                {
                    Ok(f) => return created(f, path, opts),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => {
                        return Err(context(
                            format!("cannot create file exclusively {}", path.display()),
                            e,
                        ));
                    }
                }
            }
            Err(e) => return Err(context(format!("cannot open file {}", path.display()), e)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("{}: file status changed unexpectedly", path.display()),
    ))
}

/// An existing file must be a regular file with one link, or a
/// character device.
fn check_existing(f: File, path: &Path) -> io::Result<(File, Metadata)> {
    let meta = f
        .metadata()
        .map_err(|e| context(format!("stat {}", path.display()), e))?;
    let ft = meta.file_type();
    if ft.is_file() {
        if meta.nlink() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "cannot open file {}: file has {} hard links",
                    path.display(),
                    meta.nlink()
                ),
            ));
        }
    } else if !std::os::unix::fs::FileTypeExt::is_char_device(&ft) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("destination {} is not a regular file", path.display()),
        ));
    }
    Ok((f, meta))
}

/// A file we just created: exact mode, and the owner (a failed chown is
/// only logged, as Postfix does: the file may already be open elsewhere).
fn created(f: File, path: &Path, opts: &MboxOptions) -> io::Result<(File, Metadata)> {
    if let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(opts.create_mode & 0o7777)) {
        tracing::warn!("{}: cannot change file mode: {e}", path.display());
    }
    if let Some((uid, gid)) = opts.owner
        && let Err(e) = std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
    {
        tracing::warn!("{}: cannot change file ownership: {e}", path.display());
    }
    let meta = f
        .metadata()
        .map_err(|e| context(format!("stat {}", path.display()), e))?;
    Ok((f, meta))
}

/// A dot lock we hold; removed when dropped.
pub(crate) struct DotLock(PathBuf);

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Creates `path.lock`. `Ok(None)`: it cannot be created for a reason
/// other than "exists" (warned; the caller goes on without it).
pub(crate) fn dotlock(
    path: &Path,
    deadline: Instant,
    stale: Duration,
) -> io::Result<Option<DotLock>> {
    let lock = lock_path(path);
    loop {
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&lock);
        match created {
            Ok(_) => return Ok(Some(DotLock(lock))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Postfix looks at st_ctime; a lock file is never written,
                // so its mtime is its creation time too (and tests can set
                // it).
                let age = std::fs::symlink_metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if age.is_some_and(|age| age > stale) {
                    tracing::warn!("{}: removing stale lock file", lock.display());
                    match std::fs::remove_file(&lock) {
                        Ok(()) => continue,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            tracing::warn!(
                                "unable to remove stale lock file {}: {e}; \
                                 locking {} with fcntl only",
                                lock.display(),
                                path.display()
                            );
                            return Ok(None);
                        }
                    }
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("unable to create lock file {}: File exists", lock.display()),
                    ));
                }
                std::thread::sleep(RETRY.min(deadline - now));
            }
            Err(e) => {
                tracing::warn!(
                    "{}; locking {} with fcntl only",
                    context(format!("unable to create lock file {}", lock.display()), e),
                    path.display()
                );
                return Ok(None);
            }
        }
    }
}

/// A write lock on the whole file, retried until `deadline`.
pub(crate) fn fcntl_lock(file: &File, deadline: Instant) -> io::Result<()> {
    let lock = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as _,
        l_whence: nix::libc::SEEK_SET as _,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let mut ofd = true;
    loop {
        let arg = if ofd {
            FcntlArg::F_OFD_SETLK(&lock)
        } else {
            FcntlArg::F_SETLK(&lock)
        };
        match fcntl(file.as_fd(), arg) {
            Ok(_) => return Ok(()),
            Err(Errno::EINVAL) if ofd => ofd = false,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN | Errno::EACCES) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "unable to lock for exclusive access: Resource temporarily unavailable",
                    ));
                }
                std::thread::sleep(RETRY.min(deadline - now));
            }
            Err(e) => {
                return Err(context("unable to lock for exclusive access", e.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Reads the mbox with Python's `mailbox.mbox`: (From line, raw message
    /// bytes) for each message.
    fn python_read(path: &Path) -> Vec<(String, Vec<u8>)> {
        let script = "import mailbox, sys\n\
                      mb = mailbox.mbox(sys.argv[1], factory=None, create=False)\n\
                      for k in mb.keys():\n\
                      \x20   out = sys.stdout.buffer\n\
                      \x20   out.write(mb.get_message(k).get_from().encode('utf-8', 'surrogateescape') + b'\\0')\n\
                      \x20   out.write(mb.get_bytes(k) + b'\\0')\n";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(path)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut parts: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
        assert_eq!(parts.pop(), Some(&b""[..]));
        parts
            .chunks(2)
            .map(|c| (String::from_utf8_lossy(c[0]).into_owned(), c[1].to_vec()))
            .collect()
    }

    fn quick(timeout_ms: u64) -> MboxOptions {
        MboxOptions {
            lock_timeout: Duration::from_millis(timeout_ms),
            ..MboxOptions::default()
        }
    }

    #[test]
    fn python_reads_two_messages_back() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        let t = SystemTime::now();
        let one = b"Subject: one\r\n\r\nFrom here on\r\n>From there\r\nbody\r\n";
        let two = b"Subject: two\r\n\r\nno final newline";
        deliver(&mbox, "a@b.test", t, one, &MboxOptions::default()).unwrap();
        deliver(&mbox, "", t, two, &MboxOptions::default()).unwrap();
        let text = std::fs::read_to_string(&mbox).unwrap();
        let date = asctime(t);
        assert_eq!(
            text,
            format!(
                "From a@b.test  {date}\nSubject: one\n\n>From here on\n>From there\nbody\n\n\
                 From MAILER-DAEMON  {date}\nSubject: two\n\nno final newline\n\n"
            )
        );
        assert!(!lock_path(&mbox).exists());
        let read = python_read(&mbox);
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(read[0].0, format!("a@b.test  {date}"));
        assert_eq!(
            read[0].1,
            b"Subject: one\n\n>From here on\n>From there\nbody\n"
        );
        assert_eq!(read[1].0, format!("MAILER-DAEMON  {date}"));
        assert_eq!(read[1].1, b"Subject: two\n\nno final newline\n");
    }

    #[test]
    fn from_line_is_c_asctime() {
        // 2026-11-02 09:05:00 UTC: a one-digit day, padded with a space.
        let t = UNIX_EPOCH + Duration::from_secs(1_793_610_300);
        let line = from_line("jerry@example.test", t);
        let out = Command::new("python3")
            .args([
                "-c",
                "import time, sys; print(time.asctime(time.localtime(int(sys.argv[1]))))",
                "1793610300",
            ])
            .output()
            .expect("python3 runs");
        let want = String::from_utf8(out.stdout).unwrap();
        assert_eq!(line, format!("From jerry@example.test  {want}"));
        assert_eq!(line.len(), "From jerry@example.test  ".len() + 24 + 1);
        // Times out of chrono's range do not panic.
        let _ = from_line("a@b", UNIX_EPOCH + Duration::from_secs(u64::MAX / 2));
        let _ = from_line("a@b", UNIX_EPOCH - Duration::from_secs(1 << 40));
    }

    #[test]
    fn senders_are_quoted_as_postfix_does() {
        for (sender, want) in [
            ("jerry@example.test", "jerry@example.test"),
            ("first.last@x", "first.last@x"),
            ("john doe@x", "\"john doe\"@x"),
            ("a\"b@x", "\"a\\\"b\"@x"),
            ("a\\b@x", "\"a\\\\b\"@x"),
            (".lead@x", "\".lead\"@x"),
            ("a..b@x", "\"a..b\"@x"),
            ("trail.@x", "\"trail.\"@x"),
            ("a@b@x", "\"a@b\"@x"),
            ("@r1,@r2:a b@x", "@r1,@r2:\"a b\"@x"),
            ("jörg@x", "jörg@x"),
            ("local-only", "local-only"),
            ("@x", "\"\"@x"),
        ] {
            assert_eq!(quote_822_local(sender), want, "{sender}");
        }
        let t = UNIX_EPOCH;
        assert!(from_line("john doe@x", t).starts_with("From \"john doe\"@x  "));
        assert!(from_line("", t).starts_with("From MAILER-DAEMON  "));
        let odd = from_line("a\nFrom b@x", t);
        assert_eq!(odd.matches('\n').count(), 1, "{odd}");
    }

    #[test]
    fn eight_threads_give_eight_whole_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("shared");
        let body = |i: usize| format!("{i}").repeat(200_000);
        std::thread::scope(|s| {
            for i in 0..8 {
                let mbox = &mbox;
                s.spawn(move || {
                    let msg = format!("Subject: {i}\r\n\r\n{}\r\nFrom end\r\n", body(i));
                    deliver(
                        mbox,
                        "a@b",
                        SystemTime::now(),
                        msg.as_bytes(),
                        &MboxOptions::default(),
                    )
                    .unwrap();
                });
            }
        });
        let mut read = python_read(&mbox);
        assert_eq!(read.len(), 8);
        read.sort_by(|a, b| a.1.cmp(&b.1));
        for (i, (_, raw)) in read.iter().enumerate() {
            assert_eq!(
                raw,
                format!("Subject: {i}\n\n{}\n>From end\n", body(i)).as_bytes()
            );
        }
    }

    #[test]
    fn stale_dot_lock_is_removed_and_a_fresh_one_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        let lock = dir.path().join("jerry.lock");
        std::fs::write(&lock, "").unwrap();
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(501))
            .unwrap();
        deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &quick(200)).unwrap();
        assert!(!lock.exists());
        assert_eq!(python_read(&mbox).len(), 1);

        // A fresh lock (400 s old is not stale yet) is waited for...
        std::fs::write(&lock, "").unwrap();
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(400))
            .unwrap();
        let started = Instant::now();
        let err = deliver(&mbox, "a@b", SystemTime::now(), b"y\r\n", &quick(300)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(err.to_string().contains("jerry.lock"), "{err}");
        assert!(lock.exists(), "someone else's lock stays");
        assert_eq!(python_read(&mbox).len(), 1);

        // ...and delivery goes on when it goes away in time.
        let remover = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::remove_file(lock).unwrap();
            })
        };
        deliver(&mbox, "a@b", SystemTime::now(), b"y\r\n", &quick(5000)).unwrap();
        remover.join().unwrap();
        assert_eq!(python_read(&mbox).len(), 2);
    }

    #[test]
    fn dot_lock_impossible_falls_back_to_fcntl() {
        let dir = tempfile::tempdir().unwrap();
        // "NAME.lock" is longer than NAME_MAX: the lock file cannot be
        // created (ENAMETOOLONG), as when the directory is not writable.
        let mbox = dir.path().join("m".repeat(250));
        deliver(
            &mbox,
            "a@b",
            SystemTime::now(),
            b"x\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        assert_eq!(python_read(&mbox).len(), 1);
        if !is_root() {
            // The real case: a spool directory we may not write.
            let spool = dir.path().join("spool");
            std::fs::create_dir(&spool).unwrap();
            let mbox = spool.join("jerry");
            std::fs::write(&mbox, "").unwrap();
            std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o555)).unwrap();
            let r = deliver(
                &mbox,
                "a@b",
                SystemTime::now(),
                b"x\r\n",
                &MboxOptions::default(),
            );
            std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
            r.unwrap();
            assert_eq!(python_read(&mbox).len(), 1);
        }
    }

    /// Takes an OFD write lock on `path` through its own open file
    /// description.
    fn hold_lock(path: &Path) -> File {
        let holder = File::options().read(true).write(true).open(path).unwrap();
        // A moment's wait: a delivery that just finished may still be
        // letting go of its lock on a loaded machine.
        fcntl_lock(&holder, Instant::now() + Duration::from_secs(10)).unwrap();
        holder
    }

    #[test]
    fn held_fcntl_lock_makes_delivery_wait_then_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        deliver(
            &mbox,
            "a@b",
            SystemTime::now(),
            b"first\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        let before = std::fs::metadata(&mbox).unwrap().len();

        let holder = hold_lock(&mbox);
        let started = Instant::now();
        let err = deliver(&mbox, "a@b", SystemTime::now(), b"second\r\n", &quick(300)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert_eq!(std::fs::metadata(&mbox).unwrap().len(), before);
        assert!(!lock_path(&mbox).exists(), "dot lock released on failure");

        // Released while we wait: delivery goes through.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(holder);
        });
        let started = Instant::now();
        deliver(&mbox, "a@b", SystemTime::now(), b"second\r\n", &quick(5000)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        releaser.join().unwrap();
        let read = python_read(&mbox);
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].1, b"second\n");
    }

    #[test]
    fn classic_lock_of_another_process_is_honoured() {
        // What mutt, mail(1) and Dovecot take: a classic POSIX lock from
        // another process (Python's fcntl.lockf is F_SETLKW).
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        std::fs::write(&mbox, "").unwrap();
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys\n\
                 f = open(sys.argv[1], 'r+')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .arg(&mbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "locked\n");
        let err = deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &quick(300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert_eq!(std::fs::metadata(&mbox).unwrap().len(), 0);
        drop(child.stdin.take()); // EOF: the holder exits, its lock goes
        assert!(child.wait().unwrap().success());
        deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &quick(300)).unwrap();
        assert_eq!(python_read(&mbox).len(), 1);
    }

    #[test]
    fn failure_midway_truncates_to_old_length() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        deliver(
            &mbox,
            "a@b",
            SystemTime::now(),
            b"first\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        let before = std::fs::read(&mbox).unwrap();
        let file = File::options().read(true).append(true).open(&mbox).unwrap();
        let err = append(&file, before.len() as u64, |mut f| {
            f.write_all(b"From x  Sun Nov 22 19:00:00 2026\nhalf a mess")?;
            Err(io::Error::from_raw_os_error(nix::libc::ENOSPC))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            err.to_string(),
            "error writing message: No space left on device"
        );
        assert_eq!(std::fs::read(&mbox).unwrap(), before);
        let mut rest = Vec::new();
        File::open(&mbox).unwrap().read_to_end(&mut rest).unwrap();
        assert_eq!(rest, before);
    }

    #[test]
    fn missing_line_end_before_our_from_line_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        std::fs::write(
            &mbox,
            "From x@y  Sun Nov 22 19:00:00 2026\nSubject: cut\n\nbody",
        )
        .unwrap();
        deliver(
            &mbox,
            "a@b",
            SystemTime::now(),
            b"S: 2\r\n\r\nnext\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        let read = python_read(&mbox);
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(read[1].1, b"S: 2\n\nnext\n");
    }

    #[test]
    fn created_with_mode_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        let owner = if is_root() {
            Some((65534, 65533))
        } else {
            None
        };
        let opts = MboxOptions {
            owner,
            create_mode: 0o660,
            ..MboxOptions::default()
        };
        deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &opts).unwrap();
        let m = std::fs::metadata(&mbox).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o660);
        if let Some((uid, gid)) = owner {
            assert_eq!((m.uid(), m.gid()), (uid, gid));
            // strict_owner: the file is the owner's, so fine...
            let strict = MboxOptions {
                strict_owner: true,
                ..opts.clone()
            };
            deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &strict).unwrap();
            // ...but not someone else's.
            let other = MboxOptions {
                owner: Some((1234, 1234)),
                ..strict
            };
            let err = deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &other).unwrap_err();
            assert!(err.to_string().contains("not owned by recipient"), "{err}");
        }
        // The directory is not created.
        let err = deliver(
            &dir.path().join("no/such/dir/jerry"),
            "a@b",
            SystemTime::now(),
            b"x\r\n",
            &MboxOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn symlinks_and_hard_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("passwd");
        std::fs::write(&target, "root:x:0:0\n").unwrap();
        let link = dir.path().join("jerry");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        if is_root() {
            // A user's symlink. (Root's own are followed, as Postfix does.)
            std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        }
        let err = deliver(
            &link,
            "a@b",
            SystemTime::now(),
            b"x\r\n",
            &MboxOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let hard = dir.path().join("tom");
        std::fs::hard_link(&target, &hard).unwrap();
        let err = deliver(
            &hard,
            "a@b",
            SystemTime::now(),
            b"x\r\n",
            &MboxOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("2 hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0:0\n");

        if is_root() {
            std::os::unix::fs::lchown(&link, Some(0), Some(0)).unwrap();
            std::fs::remove_file(&hard).unwrap();
            deliver(
                &link,
                "a@b",
                SystemTime::now(),
                b"x\r\n",
                &MboxOptions::default(),
            )
            .unwrap();
            assert!(
                std::fs::read_to_string(&target)
                    .unwrap()
                    .contains("\nx\n\n")
            );
        }
    }

    #[test]
    fn dev_null_and_directories() {
        deliver(
            Path::new("/dev/null"),
            "a@b",
            SystemTime::now(),
            b"x\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        assert!(!Path::new("/dev/null.lock").exists());
        let dir = tempfile::tempdir().unwrap();
        assert!(
            deliver(
                dir.path(),
                "a@b",
                SystemTime::now(),
                b"x\r\n",
                &MboxOptions::default()
            )
            .is_err()
        );
    }

    #[test]
    fn real_mail_readers_if_installed() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        for i in 0..2 {
            let msg = format!("From: a@b.test\r\nSubject: msg {i}\r\n\r\nFrom x\r\n");
            deliver(
                &mbox,
                "a@b.test",
                SystemTime::now(),
                msg.as_bytes(),
                &MboxOptions::default(),
            )
            .unwrap();
        }
        let mut ran = false;
        for tool in ["s-nail", "mailx"] {
            let Ok(out) = Command::new(tool)
                .args(["-N", "-H", "-f"])
                .arg(&mbox)
                .env("MAILRC", "/dev/null")
                .stdin(Stdio::null())
                .output()
            else {
                continue;
            };
            ran = true;
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("msg 0") && text.contains("msg 1"),
                "{tool}: {text}"
            );
        }
        if !ran {
            eprintln!("skipped: neither s-nail nor mailx is installed (mutt needs a terminal)");
        }
    }
}
