//! mbox delivery, as Postfix's local(8) writes `/var/mail/USER` and
//! `~/Mailbox`.
//!
//! Each message is appended as
//!
//! ```text
//! From jerry@example.test  Sun Nov 22 19:22:52 2026
//! <message with LF line ends, lines starting "From " written ">From ">
//! <empty line>
//! ```
//!
//! Locking, so that mail readers (mutt, mail, Dovecot) can work on the file
//! meanwhile, follows Postfix's `mailbox_delivery_lock = fcntl, dotlock`:
//! an fcntl write lock on the whole file (open-file-description locks,
//! which conflict with other processes' fcntl locks and with other threads
//! of ours alike) and a `FILE.lock` dot lock created exclusively. A dot lock
//! older than 500 seconds (Postfix's stale_lock_time) is removed. When the
//! directory is not writable (a mail spool owned by group mail), the dot
//! lock is skipped, as Postfix does, and the fcntl lock alone protects the
//! file.
//!
//! If writing fails midway, the file is truncated back to its old length,
//! so it never holds half a message. The write is fsync'd before success
//! is reported.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{FcntlArg, fcntl};

/// How to deliver into an mbox file.
#[derive(Debug, Clone)]
pub struct MboxOptions {
    /// Owner of a file created now (when delivering as root).
    pub owner: Option<(u32, u32)>,
    pub create_mode: u32,
    pub dotlock: bool,
    pub fcntl_lock: bool,
    /// How long to wait for the locks.
    pub lock_timeout: Duration,
}

impl Default for MboxOptions {
    fn default() -> Self {
        MboxOptions {
            owner: None,
            create_mode: 0o600,
            dotlock: true,
            fcntl_lock: true,
            lock_timeout: Duration::from_secs(20),
        }
    }
}

/// Postfix's stale_lock_time.
const STALE_LOCK: Duration = Duration::from_secs(500);
const RETRY: Duration = Duration::from_millis(50);

/// The `From ` line: sender (or MAILER-DAEMON) and the arrival time in
/// ctime(3) form.
pub fn from_line(sender: &str, arrival: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Local> = arrival.into();
    let who = if sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        sender
    };
    format!("From {who}  {}\n", t.format("%a %b %e %H:%M:%S %Y"))
}

/// The bytes appended for one message.
pub fn encode(sender: &str, arrival: SystemTime, message: &[u8]) -> Vec<u8> {
    let mut out = from_line(sender, arrival).into_bytes();
    let lf = super::maildir::to_lf(message);
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

/// A dot lock; removed when dropped.
struct DotLock(PathBuf);

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn dotlock(path: &Path, timeout: Duration) -> io::Result<Option<DotLock>> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
    let started = Instant::now();
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&lock)
        {
            Ok(_) => return Ok(Some(DotLock(lock))),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                tracing::warn!(
                    "cannot create dot lock {}: {e}; relying on fcntl locking",
                    lock.display()
                );
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_LOCK);
                if stale {
                    tracing::warn!("removing stale lock file {}", lock.display());
                    let _ = std::fs::remove_file(&lock);
                    continue;
                }
                if started.elapsed() >= timeout {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "unable to lock {} (dot lock held by another process)",
                            path.display()
                        ),
                    ));
                }
                std::thread::sleep(RETRY);
            }
            Err(e) => return Err(e),
        }
    }
}

fn fcntl_lock(file: &File, path: &Path, timeout: Duration) -> io::Result<()> {
    let started = Instant::now();
    loop {
        let lock = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as i16,
            l_whence: nix::libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        match fcntl(file.as_fd(), FcntlArg::F_OFD_SETLK(&lock)) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {
                if started.elapsed() >= timeout {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "unable to lock {} (fcntl lock held by another process)",
                            path.display()
                        ),
                    ));
                }
                std::thread::sleep(RETRY);
            }
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Appends one message to the mbox file at `path`.
pub fn deliver(
    path: &Path,
    sender: &str,
    arrival: SystemTime,
    message: &[u8],
    opts: &MboxOptions,
) -> io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
    }
    let _dot = if opts.dotlock {
        dotlock(path, opts.lock_timeout)?
    } else {
        None
    };
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(opts.create_mode)
        .open(path)?;
    if !existed && let Some((uid, gid)) = opts.owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
    }
    if opts.fcntl_lock {
        fcntl_lock(&file, path, opts.lock_timeout)?;
    }
    // The file may have grown while we waited for the lock.
    let old_len = file.seek(SeekFrom::End(0))?;
    let data = encode(sender, arrival, message);
    let written = file.write_all(&data).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = file.set_len(old_len);
        let _ = file.sync_all();
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn python_read(path: &Path) -> String {
        let script = format!(
            "import mailbox\nfor m in mailbox.mbox({:?}):\n    print('MSG', m.get_from())\n    print(m.get_payload())",
            path.to_str().unwrap()
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn python_reads_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        let t = SystemTime::now();
        deliver(
            &mbox,
            "a@b.test",
            t,
            b"Subject: one\r\n\r\nFrom here on\r\nbody\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        deliver(
            &mbox,
            "",
            t,
            b"Subject: two\r\n\r\nno final newline",
            &MboxOptions::default(),
        )
        .unwrap();
        let text = std::fs::read_to_string(&mbox).unwrap();
        assert!(text.starts_with("From a@b.test  "), "{text}");
        assert!(text.contains("\n>From here on\n"), "{text}");
        assert!(!mbox.with_extension("lock").exists());
        let read = python_read(&mbox);
        assert_eq!(read.matches("MSG ").count(), 2, "{read}");
        assert!(read.contains(">From here on\nbody\n"), "{read}");
        assert!(read.contains("MSG MAILER-DAEMON"), "{read}");
        assert!(read.contains("no final newline"), "{read}");
    }

    #[test]
    fn concurrent_deliveries_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = Arc::new(dir.path().join("shared"));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let mbox = mbox.clone();
                std::thread::spawn(move || {
                    let body = format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(100_000));
                    deliver(
                        &mbox,
                        "a@b",
                        SystemTime::now(),
                        body.as_bytes(),
                        &MboxOptions::default(),
                    )
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let read = python_read(&mbox);
        assert_eq!(read.matches("MSG ").count(), 8);
        assert_eq!(read.matches(&"x".repeat(100_000)).count(), 8);
    }

    #[test]
    fn stale_dot_lock_is_removed_and_a_fresh_one_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("jerry");
        let lock = dir.path().join("jerry.lock");
        std::fs::write(&lock, "").unwrap();
        let old = SystemTime::now() - Duration::from_secs(600);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        deliver(
            &mbox,
            "a@b",
            SystemTime::now(),
            b"x\r\n",
            &MboxOptions::default(),
        )
        .unwrap();
        assert!(!lock.exists());
        std::fs::write(&lock, "").unwrap();
        let opts = MboxOptions {
            lock_timeout: Duration::from_millis(200),
            ..MboxOptions::default()
        };
        let err = deliver(&mbox, "a@b", SystemTime::now(), b"x\r\n", &opts).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn held_fcntl_lock_makes_delivery_wait_then_fail() {
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
        let holder = File::options().read(true).write(true).open(&mbox).unwrap();
        fcntl_lock(&holder, &mbox, Duration::from_secs(1)).unwrap();
        let opts = MboxOptions {
            lock_timeout: Duration::from_millis(200),
            dotlock: false,
            ..MboxOptions::default()
        };
        let err = deliver(&mbox, "a@b", SystemTime::now(), b"second\r\n", &opts).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(std::fs::metadata(&mbox).unwrap().len(), before);
        drop(holder);
        deliver(&mbox, "a@b", SystemTime::now(), b"second\r\n", &opts).unwrap();
    }
}
