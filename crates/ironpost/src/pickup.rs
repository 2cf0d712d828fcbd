//! pickup(8): mail posted on this machine with `sendmail` waits in
//! `maildrop/`; pickup passes each finished file through cleanup (Received
//! header `from userid N`, missing Message-Id/Date/From added) into
//! `incoming/`, where the queue manager finds it.
//!
//! - [`Pickup::from_config`] takes the settings; [`Pickup::run_once`] moves
//!   what `maildrop/` holds now. The daemon calls it when sendmail pokes the
//!   control socket (`wake`) and every few seconds.
//! - A file without its end marker is being written (or its writer died):
//!   it is left alone while young, moved to `corrupt/` when older than
//!   [`INCOMPLETE_GRACE`].
//! - The message keeps its queue ID when no other queue file has it (Postfix
//!   gives it a new one; the log names the ID the message has from then on).
//! - The copy in `incoming/` is durable (file and directory fsync'd) before
//!   the maildrop file is removed: a crash in between may deliver a message
//!   twice, never lose one. When the crash left the new copy in the queue,
//!   it is recognised (same ID, sender and arrival time) and the maildrop
//!   file is only removed.
//!
//! Log lines, as Postfix's pickup and cleanup write them:
//! `ironpost/pickup[PID]: ID: uid=1000 from=<jerry@example.test>` and
//! `ironpost/cleanup[PID]: ID: message-id=<...>`.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ironpost_conf::{ConfError, Config, params};

use crate::cleanup::{self, Origin, ReceivedFrom};
use crate::maillog::MailLog;
use crate::queue::{self, Envelope, Queue, QueueId, QueueName};

/// How long an incomplete maildrop file may be (still being written)
/// before it counts as corrupt.
pub const INCOMPLETE_GRACE: Duration = Duration::from_secs(10);

/// The envelope attribute sendmail records the poster's user ID in.
pub const ATTR_UID: &str = "uid";
/// The envelope attribute with the sender's full name (`-F`, `$NAME` or
/// the passwd entry), used for a From header the message lacks.
pub const ATTR_FULLNAME: &str = "fullname";

/// The pickup service.
#[derive(Debug)]
pub struct Pickup {
    myhostname: String,
    mail_name: String,
    syslog_name: String,
    header_size_limit: usize,
    virtual_aliases: Option<std::sync::Arc<crate::virtual_alias::VirtualAliases>>,
}

impl Pickup {
    pub fn from_config(cfg: &Config) -> Result<Pickup, ConfError> {
        Ok(Pickup {
            myhostname: cfg.get_str(params::MYHOSTNAME)?.trim().to_string(),
            mail_name: cfg.get_str(params::MAIL_NAME)?.trim().to_string(),
            syslog_name: cfg.get_str(params::SYSLOG_NAME)?.trim().to_string(),
            header_size_limit: usize::try_from(cfg.get_size(params::HEADER_SIZE_LIMIT)?)
                .unwrap_or(usize::MAX),
            virtual_aliases: None,
        })
    }

    /// Applies virtual_alias_maps to the recipients, as cleanup does.
    pub fn with_virtual_aliases(
        mut self,
        v: std::sync::Arc<crate::virtual_alias::VirtualAliases>,
    ) -> Pickup {
        self.virtual_aliases = Some(v);
        self
    }

    fn log(&self, log: &MailLog, program: &str, text: &str) {
        log.log(&format!("{}/{program}", self.syslog_name), text);
    }

    /// Moves every finished file in `maildrop/` into `incoming/` and returns
    /// how many it moved. A file that fails is logged and left for the next
    /// run; only an unreadable maildrop directory is an error.
    pub fn run_once(&self, queue: &Queue, log: &MailLog) -> io::Result<usize> {
        // One run at a time in the process, whichever Pickup (a reload makes
        // a new one): two runs over the same file would each queue it.
        static RUNNING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        let mut moved = 0;
        for id in queue.list(QueueName::Maildrop)? {
            match self.pick_up(queue, log, &id) {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => self.log(log, "pickup", &format!("warning: maildrop/{id}: {e}")),
            }
        }
        Ok(moved)
    }

    /// One maildrop file. `Ok(false)` when it is not ready (or gone).
    fn pick_up(&self, queue: &Queue, log: &MailLog, id: &QueueId) -> io::Result<bool> {
        let path = queue.path(QueueName::Maildrop, id);
        let qf = match queue.read(QueueName::Maildrop, id) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let age = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or_default();
                if age >= INCOMPLETE_GRACE {
                    queue.move_to(id, QueueName::Maildrop, QueueName::Corrupt)?;
                    self.log(
                        log,
                        "pickup",
                        &format!("warning: {e}; moved to the corrupt queue"),
                    );
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let mut env = qf.envelope.clone();
        let content = qf.read_content()?;
        let file_uid = qf.path.metadata().map(|m| m.uid()).unwrap_or(0);
        drop(qf);
        let uid = env
            .attr(ATTR_UID)
            .and_then(|u| u.parse::<u32>().ok())
            .unwrap_or(file_uid);

        // Picked up before a crash? Then the copy is in the queue already.
        if let Some(q) = elsewhere(queue, id)
            && let Ok(other) = queue.read(q, id)
            && other.envelope.sender == env.sender
            && other.envelope.arrival == env.arrival
        {
            remove_durably(queue, id)?;
            return Ok(true);
        }

        // Left in maildrop/ for the next run when a table cannot answer.
        if let Some(v) = &self.virtual_aliases {
            env.recipients = v
                .expand(std::mem::take(&mut env.recipients))
                .map_err(|e| io::Error::other(e.0))?;
        }
        let mut candidate = Some(id.clone());
        for _ in 0..100 {
            let new_id = candidate.take().unwrap_or_else(fresh_id);
            if elsewhere(queue, &new_id).is_some()
                || (new_id != *id && queue.path(QueueName::Maildrop, &new_id).exists())
            {
                continue;
            }
            let (queued, message_id) = self.rewrite(&new_id, &env, &content, uid);
            if !create_durably(queue, &new_id, &env, &queued)? {
                continue;
            }
            remove_durably(queue, id)?;
            self.log(
                log,
                "pickup",
                &format!("{new_id}: uid={uid} from=<{}>", env.sender),
            );
            if let Some(mid) = message_id {
                self.log(log, "cleanup", &format!("{new_id}: message-id={mid}"));
            }
            return Ok(true);
        }
        Err(io::Error::other("cannot find a free queue ID"))
    }

    /// The message as cleanup leaves it, and its Message-ID.
    fn rewrite(
        &self,
        id: &QueueId,
        env: &Envelope,
        content: &[u8],
        uid: u32,
    ) -> (Vec<u8>, Option<String>) {
        let recipients: Vec<String> = env.recipients.iter().map(|r| r.address.clone()).collect();
        let origin = Origin {
            queue_id: id.as_str(),
            myhostname: &self.myhostname,
            mail_name: &self.mail_name,
            sender: &env.sender,
            recipients: &recipients,
            received: ReceivedFrom::Local { uid },
            add_missing_headers: true,
            header_size_limit: self.header_size_limit,
            now: chrono::Local::now().fixed_offset(),
        };
        let had_from = cleanup::has_header(&cleanup::split(content).headers, "from");
        let mut out = cleanup::process(content, &origin);
        if !had_from
            && !env.sender.is_empty()
            && let Some(name) = env.attr(ATTR_FULLNAME).filter(|n| !n.trim().is_empty())
        {
            out = with_full_name(&out, &env.sender, name);
        }
        let mid = cleanup::message_id(&out);
        (out, mid)
    }
}

/// The queue other than `maildrop/` that has a file named `id`.
fn elsewhere(queue: &Queue, id: &QueueId) -> Option<QueueName> {
    QueueName::ALL
        .into_iter()
        .filter(|q| *q != QueueName::Maildrop)
        .find(|q| queue.path(*q, id).exists())
}

/// Writes `incoming/ID` (see [`Queue::write_new`]) and commits it to
/// stable storage. `Ok(false)` when the name is taken.
fn create_durably(queue: &Queue, id: &QueueId, env: &Envelope, content: &[u8]) -> io::Result<bool> {
    if queue.path(QueueName::Incoming, id).exists()
        || !queue.write_new(QueueName::Incoming, id, env, |_| {
            std::borrow::Cow::Borrowed(content)
        })?
    {
        return Ok(false);
    }
    queue::sync_dir(&queue.dir(QueueName::Incoming))?;
    Ok(true)
}

/// Removes the maildrop file (not the defer log: the queued copy may have
/// the same ID and a defer log of its own by now).
fn remove_durably(queue: &Queue, id: &QueueId) -> io::Result<()> {
    match fs::remove_file(queue.path(QueueName::Maildrop, id)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    queue::sync_dir(&queue.dir(QueueName::Maildrop))
}

/// A queue ID for when the maildrop ID is taken elsewhere in the queue.
fn fresh_id() -> QueueId {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low =
        (u64::from(n).wrapping_mul(0x9E37_79B9) ^ u64::from(std::process::id()) << 4) & 0xF_FFFF;
    let text = format!(
        "{:05X}{:05X}",
        u64::from(now.subsec_micros()) & 0xF_FFFF,
        low
    );
    QueueId::parse(&text).expect("ten upper-case hex digits")
}

/// Replaces the `From: sender` line cleanup added with `From: Full Name
/// <sender>`, as Postfix's cleanup writes it when it knows the name.
fn with_full_name(message: &[u8], sender: &str, name: &str) -> Vec<u8> {
    let added = format!("From: {sender}\r\n");
    let parts = cleanup::split(message);
    let Some(h) = parts.headers.iter().rev().find(|h| **h == added.as_bytes()) else {
        return message.to_vec();
    };
    let start = h.as_ptr() as usize - message.as_ptr() as usize;
    let mut out = Vec::with_capacity(message.len() + name.len() + 4);
    out.extend_from_slice(&message[..start]);
    out.extend_from_slice(format!("From: {} <{sender}>\r\n", phrase(name)).as_bytes());
    out.extend_from_slice(&message[start + h.len()..]);
    out
}

/// A display name as an RFC 5322 phrase: as is when it is atoms and spaces,
/// else a quoted string (`"John Q. Public"`). Line ends become spaces.
pub fn phrase(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let name = name.trim();
    // RFC 5322 §3.2.3 atext, plus the spaces between atoms.
    let atext =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c) || !c.is_ascii();
    if name.chars().all(atext) {
        return name.to_string();
    }
    let mut q = String::with_capacity(name.len() + 2);
    q.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Recipient;

    const CF: &str = "myhostname = mail.example.test\nmail_name = Postfix\n";

    fn config(main_cf: &str) -> Config {
        let main = ironpost_conf::MainCf::parse(std::path::Path::new("main.cf"), main_cf).unwrap();
        let host = ironpost_conf::HostFacts {
            hostname: "mail.example.test".into(),
            interfaces: vec![],
        };
        Config::from_main(main, "/etc/ironpost".into(), false, &host)
    }

    fn setup() -> (tempfile::TempDir, Queue, Pickup, MailLog) {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let cfg = config(CF);
        let p = Pickup::from_config(&cfg).unwrap();
        (dir, q, p, MailLog::memory("mail"))
    }

    fn posted(
        q: &Queue,
        sender: &str,
        rcpts: &[&str],
        uid: u32,
        name: Option<&str>,
        msg: &[u8],
    ) -> QueueId {
        let mut env = Envelope::new(sender, rcpts.iter().map(|r| Recipient::new(r)).collect());
        env.set_attr(ATTR_UID, &uid.to_string());
        if let Some(n) = name {
            env.set_attr(ATTR_FULLNAME, n);
        }
        q.enqueue_into(QueueName::Maildrop, &env, msg).unwrap()
    }

    #[test]
    fn moves_through_cleanup_keeping_the_id() {
        let (_d, q, p, log) = setup();
        let id = posted(
            &q,
            "jerry@example.test",
            &["tom@example.test"],
            1000,
            Some("Jerry Mouse"),
            b"Subject: hi\r\n\r\nbody\r\n",
        );
        assert_eq!(p.run_once(&q, &log).unwrap(), 1);
        assert!(q.list(QueueName::Maildrop).unwrap().is_empty());
        assert_eq!(q.list(QueueName::Incoming).unwrap(), vec![id.clone()]);
        let f = q.read(QueueName::Incoming, &id).unwrap();
        assert_eq!(f.envelope.sender, "jerry@example.test");
        assert_eq!(f.envelope.recipients[0].address, "tom@example.test");
        let text = String::from_utf8(f.read_content().unwrap()).unwrap();
        assert!(
            text.starts_with(&format!(
                "Received: by mail.example.test (Postfix, from userid 1000)\r\n\tid {id}; "
            )),
            "{text}"
        );
        assert!(
            text.contains("Message-Id: <")
                && text.contains(&format!(".{id}@mail.example.test>\r\n")),
            "{text}"
        );
        assert!(
            text.contains("\r\nFrom: Jerry Mouse <jerry@example.test>\r\n\r\nbody\r\n"),
            "{text}"
        );
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains(" ironpost/pickup["), "{}", lines[0]);
        assert!(
            lines[0].ends_with(&format!("]: {id}: uid=1000 from=<jerry@example.test>")),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains(" ironpost/cleanup["), "{}", lines[1]);
        assert!(
            lines[1].contains(&format!("]: {id}: message-id=<")),
            "{}",
            lines[1]
        );
        // Nothing left: a second run moves nothing.
        assert_eq!(p.run_once(&q, &log).unwrap(), 0);
    }

    #[test]
    fn existing_from_and_message_id_are_kept() {
        let (_d, q, p, log) = setup();
        let id = posted(
            &q,
            "",
            &["a@x.test"],
            0,
            Some("Ignored Name"),
            b"From: Me <me@x.test>\r\nMessage-ID: <m1@x.test>\r\n\r\nbody\r\n",
        );
        assert_eq!(p.run_once(&q, &log).unwrap(), 1);
        let text = String::from_utf8(
            q.read(QueueName::Incoming, &id)
                .unwrap()
                .read_content()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(text.matches("From:").count(), 1, "{text}");
        assert!(text.contains("From: Me <me@x.test>\r\n"));
        assert!(log.lines()[0].ends_with(&format!("{id}: uid=0 from=<>")));
        assert!(log.lines()[1].ends_with(&format!("{id}: message-id=<m1@x.test>")));
    }

    #[test]
    fn incomplete_files_wait_then_go_to_corrupt() {
        let (_d, q, p, log) = setup();
        let id = posted(
            &q,
            "a@x.test",
            &["b@x.test"],
            0,
            None,
            b"Subject: x\r\n\r\nbody\r\n",
        );
        let path = q.path(QueueName::Maildrop, &id);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() - 3]).unwrap();
        assert_eq!(p.run_once(&q, &log).unwrap(), 0);
        assert_eq!(
            q.locate(&id),
            Some(QueueName::Maildrop),
            "a young file waits"
        );
        let old = SystemTime::now() - INCOMPLETE_GRACE - Duration::from_secs(1);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(p.run_once(&q, &log).unwrap(), 0);
        assert_eq!(q.locate(&id), Some(QueueName::Corrupt));
        assert!(
            log.lines()[0].contains("moved to the corrupt queue"),
            "{:?}",
            log.lines()
        );
    }

    #[test]
    fn crash_after_enqueue_does_not_duplicate() {
        let (_d, q, p, log) = setup();
        let id = posted(
            &q,
            "a@x.test",
            &["b@x.test"],
            0,
            None,
            b"Subject: x\r\n\r\nbody\r\n",
        );
        let maildrop_copy = fs::read(q.path(QueueName::Maildrop, &id)).unwrap();
        assert_eq!(p.run_once(&q, &log).unwrap(), 1);
        // As if the crash came before the maildrop file was removed.
        fs::write(q.path(QueueName::Maildrop, &id), &maildrop_copy).unwrap();
        assert_eq!(p.run_once(&q, &log).unwrap(), 1);
        assert!(q.list(QueueName::Maildrop).unwrap().is_empty());
        assert_eq!(q.list(QueueName::Incoming).unwrap(), vec![id]);
    }

    #[test]
    fn an_id_taken_by_another_message_gets_a_new_one() {
        let (_d, q, p, log) = setup();
        let id = posted(
            &q,
            "a@x.test",
            &["b@x.test"],
            0,
            None,
            b"Subject: mine\r\n\r\nbody\r\n",
        );
        // Another message (different sender) with the same ID in deferred/.
        let other = Envelope::new("z@x.test", vec![Recipient::new("y@x.test")]);
        fs::write(
            q.path(QueueName::Deferred, &id),
            queue::file::encode(&other, b"\r\nother\r\n"),
        )
        .unwrap();
        assert_eq!(p.run_once(&q, &log).unwrap(), 1);
        let incoming = q.list(QueueName::Incoming).unwrap();
        assert_eq!(incoming.len(), 1);
        assert_ne!(incoming[0], id);
        let new_id = &incoming[0];
        assert!(
            log.lines()[0].ends_with(&format!("{new_id}: uid=0 from=<a@x.test>")),
            "{:?}",
            log.lines()
        );
        assert_eq!(
            q.read(QueueName::Deferred, &id).unwrap().envelope.sender,
            "z@x.test"
        );
    }

    #[test]
    fn phrases() {
        assert_eq!(phrase("Jane Doe"), "Jane Doe");
        assert_eq!(phrase("John Q. Public"), "\"John Q. Public\"");
        assert_eq!(phrase("A, B"), "\"A, B\"");
        assert_eq!(phrase("say \"hi\"\n"), "\"say \\\"hi\\\"\"");
        assert_eq!(phrase("José"), "José");
    }
}
