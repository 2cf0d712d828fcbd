//! The mail log: Postfix's line shapes, so that pflogsumm and the usual grok
//! patterns read it.
//!
//! ```text
//! Nov 22 06:07:14 mail ironpost/smtpd[4242]: 3F1A2B4C5D: client=localhost[127.0.0.1]
//! ```
//!
//! The time is local time in syslog's form, the host is the machine's short
//! name, the program is `syslog_name/PROGRAM` (master.cf's `-o syslog_name=`
//! changes it per service, as in Postfix). Lines go to maillog_file, or to
//! standard error when maillog_file is empty. [`MailLog::reopen`] reopens
//! the file after log rotation.
//!
//! Lines for the file are appended to a buffer and written by a writer
//! thread, a batch per write: sessions never wait for the disk or for each
//! other to log. [`MailLog::flush`] (also run when the log is dropped)
//! waits until everything logged so far is written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

/// The buffer between the loggers and the writer thread.
struct Pending {
    state: Mutex<PendingState>,
    /// Signalled when lines arrive (to the writer) and when a batch has
    /// been written (to flushers).
    cv: Condvar,
}

#[derive(Default)]
struct PendingState {
    buf: Vec<u8>,
    /// Bytes appended and bytes written so far.
    appended: u64,
    written: u64,
    file: Option<File>,
    stop: bool,
}

impl Pending {
    fn writer(self: Arc<Self>) {
        loop {
            {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                while st.buf.is_empty() && !st.stop {
                    st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.buf.is_empty() && st.stop {
                    return;
                }
            }
            // Let a busy server add more lines to this batch: one write and
            // one wake-up for many lines, at the cost of a millisecond.
            std::thread::sleep(std::time::Duration::from_millis(1));
            let (batch, mut file) = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                (std::mem::take(&mut st.buf), st.file.take())
            };
            // A failing log must not stop mail.
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(&batch);
            }
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.file.is_none() {
                st.file = file;
            }
            st.written += batch.len() as u64;
            self.cv.notify_all();
        }
    }
}

enum Sink {
    File(PathBuf, Arc<Pending>),
    Stderr,
    /// Collected lines, for tests.
    Memory(Vec<String>),
}

/// The mail log.
pub struct MailLog {
    sink: Mutex<Sink>,
    host: String,
    pid: u32,
}

impl std::fmt::Debug for MailLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailLog").field("host", &self.host).finish()
    }
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

impl MailLog {
    /// Opens `maillog_file` (created with its directory if missing); an
    /// empty name means standard error. `host` is the machine's name; only
    /// its first label is written, as syslog does.
    pub fn open(maillog_file: &str, host: &str) -> io::Result<MailLog> {
        let sink = if maillog_file.trim().is_empty() {
            Sink::Stderr
        } else {
            let path = PathBuf::from(maillog_file.trim());
            let file = open_append(&path)?;
            let pending = Arc::new(Pending {
                state: Mutex::new(PendingState {
                    file: Some(file),
                    ..Default::default()
                }),
                cv: Condvar::new(),
            });
            let w = pending.clone();
            std::thread::Builder::new()
                .name("maillog".into())
                .spawn(move || w.writer())?;
            Sink::File(path, pending)
        };
        Ok(MailLog {
            sink: Mutex::new(sink),
            host: host.split('.').next().unwrap_or(host).to_string(),
            pid: std::process::id(),
        })
    }

    /// A log that keeps its lines in memory (for tests).
    pub fn memory(host: &str) -> MailLog {
        MailLog {
            sink: Mutex::new(Sink::Memory(Vec::new())),
            host: host.to_string(),
            pid: std::process::id(),
        }
    }

    /// The lines a memory log holds.
    pub fn lines(&self) -> Vec<String> {
        match &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            Sink::Memory(lines) => lines.clone(),
            _ => Vec::new(),
        }
    }

    /// Writes one line: `TIME HOST NAME[PID]: TEXT`, where NAME is
    /// `syslog_name/program` (`ironpost/smtpd`).
    pub fn log(&self, name: &str, text: &str) {
        self.log_as(name, self.pid, text);
    }

    /// Like [`MailLog::log`], with another number in the brackets: SMTP
    /// sessions carry their own (see [`session_number`]).
    pub fn log_as(&self, name: &str, pid: u32, text: &str) {
        let line = format!(
            "{} {} {}[{}]: {}\n",
            timestamp(),
            self.host,
            name,
            pid,
            text.replace('\n', " ")
        );
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            // Whole lines into the buffer: lines from concurrent sessions
            // never interleave.
            Sink::File(_, pending) => {
                let mut st = pending.state.lock().unwrap_or_else(|p| p.into_inner());
                // The writer sleeps only on an empty buffer: wake it then,
                // not for every line of a busy server.
                let was_empty = st.buf.is_empty();
                st.buf.extend_from_slice(line.as_bytes());
                st.appended += line.len() as u64;
                drop(st);
                if was_empty {
                    pending.cv.notify_all();
                }
            }
            Sink::Stderr => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
            Sink::Memory(lines) => lines.push(line.trim_end().to_string()),
        }
    }

    /// Reopens the file (after rotation). Errors leave the old file in use.
    pub fn reopen(&self) -> io::Result<()> {
        self.flush();
        let sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Sink::File(path, pending) = &*sink {
            let file = open_append(path)?;
            let mut st = pending.state.lock().unwrap_or_else(|p| p.into_inner());
            // The writer may hold the old file for a moment; it puts it
            // back only if no new one is there.
            st.file = Some(file);
        }
        Ok(())
    }

    /// Waits until every line logged so far is written to the file.
    pub fn flush(&self) {
        let pending = match &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            Sink::File(_, p) => p.clone(),
            _ => return,
        };
        let mut st = pending.state.lock().unwrap_or_else(|p| p.into_inner());
        let target = st.appended;
        while st.written < target {
            st = pending.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for MailLog {
    fn drop(&mut self) {
        self.flush();
        if let Sink::File(_, pending) = &*self.sink.lock().unwrap_or_else(|p| p.into_inner()) {
            pending.state.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            pending.cv.notify_all();
        }
    }
}

/// `Dec  2 07:29:25` in local time. Formatted once per second: finding
/// the local time zone costs a look at /etc/localtime each time.
fn timestamp() -> String {
    use std::sync::Mutex as StdMutex;
    static CACHE: StdMutex<(u64, String)> = StdMutex::new((0, String::new()));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if c.0 != secs || c.1.is_empty() {
        *c = (
            secs,
            chrono::Local::now().format("%b %e %H:%M:%S").to_string(),
        );
    }
    c.1.clone()
}

/// A number for one SMTP session, written where Postfix writes the smtpd
/// process ID. Postfix runs one session at a time per smtpd process, and
/// log readers (pflogsumm, grep for `smtpd[N]`) rely on that: every line of
/// one session has the number, and no other session uses it at the same
/// time. One process serves every session here, so each session gets its
/// own number, counting up from the daemon's process ID.
pub fn session_number() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let _ = NEXT.compare_exchange(0, std::process::id(), Ordering::Relaxed, Ordering::Relaxed);
    }
    NEXT.fetch_add(1, Ordering::Relaxed).wrapping_add(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/maillog");
        let log = MailLog::open(path.to_str().unwrap(), "mail.example.test").unwrap();
        log.log("ironpost/smtpd", "3F1A2B4C5D: client=localhost[127.0.0.1]");
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let re = regex::Regex::new(
            r"^[A-Z][a-z]{2} [ 1-3][0-9] \d\d:\d\d:\d\d mail ironpost/smtpd\[\d+\]: 3F1A2B4C5D: client=localhost\[127\.0\.0\.1\]\n$",
        )
        .unwrap();
        assert!(re.is_match(&text), "{text:?}");
        std::fs::rename(&path, dir.path().join("log/maillog.1")).unwrap();
        log.reopen().unwrap();
        log.log("ironpost/qmgr", "3F1A2B4C5D: removed");
        log.flush();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .ends_with("3F1A2B4C5D: removed\n")
        );
    }
}
