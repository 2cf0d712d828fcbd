//! The queue commands, with Postfix's flags and output:
//!
//! - `mailq`, `postqueue -p`: the listing of showq(8) as Postfix's
//!   postqueue prints it (`-Queue ID-  --Size-- ...`, `ID*` active, `ID!`
//!   on hold, the deferral reason in parentheses, one recipient a line,
//!   `-- N Kbytes in M Requests.` or `Mail queue is empty`).
//! - `postqueue -j`: the same as JSON, one message per line (Postfix 3.1).
//! - `postqueue -f`, `-s SITE`, `-i ID`: asks the daemon over the control
//!   socket to retry deferred mail now: all of it, the messages with a
//!   recipient in that domain, or one message.
//! - `postsuper -d ID|ALL|-`, `-h` (hold), `-H` (release), `-r` (requeue),
//!   optionally limited to named queues; messages on stderr as Postfix's
//!   (`postsuper: ID: removed`, `postsuper: Deleted: 2 messages`).
//! - `postcat -q ID` / `postcat FILE`: envelope and message in postcat's
//!   layout; `-e`, `-h`, `-b` show only the envelope, header or body.
//!
//! The queue is read directly (ironpost needs no showq service), so these
//! work with the daemon stopped.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local};
use ironpost_conf::params;

use crate::cleanup;
use crate::cli::getopt::getopt;
use crate::cli::{CmdResult, Fatal, load_config, program, warn};
use crate::ctl;
use crate::qmgr::deferred_reason;
use crate::queue::{Queue, file::Envelope};
use crate::queue::{QueueFile, QueueId, QueueName};

/// sysexits(3) EX_UNAVAILABLE: what postqueue -f exits with when the mail
/// system is down.
const EX_UNAVAILABLE: u8 = 69;

/// The queues mailq lists, in its order (not `corrupt/`).
const LISTED: [QueueName; 5] = [
    QueueName::Maildrop,
    QueueName::Incoming,
    QueueName::Active,
    QueueName::Deferred,
    QueueName::Hold,
];

fn open_queue(config_flag: Option<&str>) -> Result<Queue, Fatal> {
    let cfg = load_config(config_flag)?;
    let dir = cfg.get_str(params::QUEUE_DIRECTORY)?;
    let dir = PathBuf::from(dir.trim());
    if !dir.is_dir() {
        return Err(Fatal(format!(
            "chdir {}: No such file or directory",
            dir.display()
        )));
    }
    Queue::open(&dir).map_err(|e| Fatal(format!("open queue {}: {e}", dir.display())))
}

/// One message as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub queue: QueueName,
    pub id: String,
    pub size: u64,
    pub arrival: SystemTime,
    /// Empty for the null sender.
    pub sender: String,
    /// Pending recipients and the reason each was last deferred ("" if none).
    pub recipients: Vec<(String, String)>,
}

/// The messages in the listed queues. Files that vanish or are not finished
/// (being written) are left out.
pub fn scan(queue: &Queue) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for q in LISTED {
        for id in queue.list(q)? {
            let Ok(f) = queue.read(q, &id) else { continue };
            let recipients = f
                .envelope
                .recipients
                .iter()
                .filter(|r| !r.done)
                .map(|r| {
                    let why = deferred_reason(queue, &id, &r.address).unwrap_or_default();
                    (r.address.clone(), why)
                })
                .collect();
            out.push(Entry {
                queue: q,
                id: id.to_string(),
                size: f.content_len(),
                arrival: f.envelope.arrival,
                sender: f.envelope.sender.clone(),
                recipients,
            });
        }
    }
    Ok(out)
}

/// asctime(3)'s first 20 characters, in local time: `Wed Dec  2 06:40:38 `.
fn asctime20(t: SystemTime) -> String {
    let t: DateTime<Local> = t.into();
    t.format("%a %b %e %H:%M:%S ").to_string()
}

/// The listing exactly as Postfix's `postqueue -p` prints it (short queue
/// IDs). `time` formats the arrival time (asctime's first 20 characters).
pub fn format_listing(entries: &[Entry], time: &dyn Fn(SystemTime) -> String) -> String {
    if entries.is_empty() {
        return "Mail queue is empty\n".to_string();
    }
    let mut s = String::new();
    s.push_str(&format!(
        "{:<11} {:>7} {:<20} {}\n",
        "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------"
    ));
    let mut total = 0u64;
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        total += e.size;
        let mark = match e.queue {
            QueueName::Active => "*",
            QueueName::Hold => "!",
            _ => "",
        };
        let sender = if e.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            e.sender.as_str()
        };
        let when: String = time(e.arrival).chars().take(20).collect();
        s.push_str(&format!(
            "{:<11} {:>7} {:>20} {}\n",
            format!("{}{mark}", e.id),
            e.size,
            when,
            sender
        ));
        // A reason line when it differs from the previous recipient's.
        let mut shown = "";
        for (rcpt, why) in &e.recipients {
            if why != shown {
                shown = why;
                let text = if why.is_empty() {
                    "reason unavailable"
                } else {
                    why.as_str()
                };
                let pad = 76usize.saturating_sub(text.len());
                s.push_str(&format!("{:pad$}({text})\n", ""));
            }
            s.push_str(&format!("{:41}{rcpt}\n", ""));
        }
    }
    let count = entries.len();
    s.push_str(&format!(
        "\n-- {} Kbytes in {count} Request{}.\n",
        total / 1024,
        if count == 1 { "" } else { "s" }
    ));
    s
}

/// A JSON string.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `postqueue -j`: one JSON object per message, as Postfix 3.1+ prints.
pub fn format_json(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        let arrival = e
            .arrival
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let sender = if e.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            &e.sender
        };
        let rcpts: Vec<String> = e
            .recipients
            .iter()
            .map(|(a, why)| {
                if why.is_empty() {
                    format!("{{\"address\": {}}}", json_str(a))
                } else {
                    format!(
                        "{{\"address\": {}, \"delay_reason\": {}}}",
                        json_str(a),
                        json_str(why)
                    )
                }
            })
            .collect();
        s.push_str(&format!(
            "{{\"queue_name\": {}, \"queue_id\": {}, \"arrival_time\": {arrival}, \"message_size\": {}, \"forced_expire\": false, \"sender\": {}, \"recipients\": [{}]}}\n",
            json_str(e.queue.dir()),
            json_str(&e.id),
            e.size,
            json_str(sender),
            rcpts.join(", ")
        ));
    }
    s
}

fn print_out(text: &str) -> CmdResult {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A closed pipe (mailq | head) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Fatal(format!("output write error: {e}"))),
    }
}

fn list(config_flag: Option<&str>, json: bool) -> CmdResult {
    let queue = open_queue(config_flag)?;
    let entries = scan(&queue).map_err(|e| Fatal(format!("scan queue: {e}")))?;
    if json {
        print_out(&format_json(&entries))
    } else {
        print_out(&format_listing(&entries, &asctime20))
    }
}

/// `mailq [-c DIR]`: the queue listing.
pub fn run_mailq(args: &[String]) -> CmdResult {
    let p = getopt(args, "c:v").map_err(Fatal)?;
    list(p.value('c'), false)
}

/// `postqueue -p | -j | -f | -i ID | -s SITE [-c DIR]`.
pub fn run_postqueue(args: &[String]) -> CmdResult {
    let p = getopt(args, "c:fi:jps:v").map_err(Fatal)?;
    let modes = ['f', 'i', 'j', 'p', 's']
        .iter()
        .filter(|m| p.has(**m))
        .count();
    if modes != 1 || !p.operands.is_empty() {
        return Err(Fatal(
            "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site"
                .into(),
        ));
    }
    if p.has('p') {
        return list(p.value('c'), false);
    }
    if p.has('j') {
        return list(p.value('c'), true);
    }
    // -f: everything deferred; -s SITE: mail for that domain; -i ID: one
    // message.
    let cfg = load_config(p.value('c'))?;
    let dir = PathBuf::from(cfg.get_str(params::QUEUE_DIRECTORY)?.trim());
    let request = if let Some(site) = p.value('s') {
        format!(
            "flush-site {}",
            site.trim_start_matches('@').to_ascii_lowercase()
        )
    } else if let Some(id) = p.value('i') {
        format!("flush-id {id}")
    } else {
        "flush".to_string()
    };
    match ctl::request(&dir, &request) {
        Ok(reply) if reply == "ok" || reply.starts_with("ok ") => Ok(ExitCode::SUCCESS),
        Ok(reply) => Err(Fatal(format!(
            "Cannot flush mail queue: {}",
            reply.strip_prefix("error ").unwrap_or(&reply)
        ))),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            let _ = writeln!(
                io::stderr(),
                "{}: fatal: Cannot flush mail queue - mail system is down",
                program()
            );
            Ok(ExitCode::from(EX_UNAVAILABLE))
        }
        Err(e) => Err(Fatal(format!("Cannot flush mail queue: {e}"))),
    }
}

/// One postsuper operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Delete,
    Hold,
    Release,
    Requeue,
}

impl Op {
    /// The queues the operation looks in by default (postsuper(1)).
    fn default_queues(self) -> &'static [QueueName] {
        match self {
            Op::Delete | Op::Requeue => &[
                QueueName::Hold,
                QueueName::Incoming,
                QueueName::Active,
                QueueName::Deferred,
            ],
            Op::Hold => &[QueueName::Incoming, QueueName::Active, QueueName::Deferred],
            Op::Release => &[QueueName::Hold],
        }
    }

    /// `removed`, and the summary's `Deleted`.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Op::Delete => ("removed", "Deleted"),
            Op::Hold => ("placed on hold", "Placed on hold"),
            Op::Release => ("released from hold", "Released from hold"),
            Op::Requeue => ("requeued", "Requeued"),
        }
    }

    fn apply(self, queue: &Queue, q: QueueName, id: &QueueId) -> io::Result<()> {
        match self {
            Op::Delete => queue.remove(q, id),
            Op::Hold => queue.move_to_durably(id, q, QueueName::Hold),
            Op::Release => queue.move_to(id, q, QueueName::Deferred).and_then(|()| {
                // Due now.
                queue.set_next_attempt(QueueName::Deferred, id, SystemTime::now())
            }),
            Op::Requeue => queue.move_to(id, q, QueueName::Incoming),
        }
    }
}

/// `postsuper [-d ID] [-h ID] [-H ID] [-r ID] [-c DIR] [queue ...]`; an ID
/// may be `ALL`, or `-` for IDs read from standard input.
pub fn run_postsuper(args: &[String]) -> CmdResult {
    let p = getopt(args, "c:d:h:H:pr:sSv").map_err(Fatal)?;
    let queues: Vec<QueueName> = p
        .operands
        .iter()
        .map(|n| QueueName::parse(n).ok_or_else(|| Fatal(format!("invalid queue name: {n}"))))
        .collect::<Result<_, _>>()?;
    let queue = open_queue(p.value('c'))?;
    let mut stdin_ids: Option<Vec<String>> = None;
    let mut err = io::stderr().lock();
    for (flag, op) in [
        ('d', Op::Delete),
        ('r', Op::Requeue),
        ('h', Op::Hold),
        ('H', Op::Release),
    ] {
        let values = p.values(flag);
        if values.is_empty() {
            continue;
        }
        let search: Vec<QueueName> = if queues.is_empty() {
            op.default_queues().to_vec()
        } else {
            queues.clone()
        };
        let mut count = 0usize;
        let mut targets: Vec<(QueueName, QueueId)> = Vec::new();
        for v in values {
            let ids: Vec<String> = if v == "-" {
                stdin_ids
                    .get_or_insert_with(|| {
                        io::stdin()
                            .lock()
                            .lines()
                            .map_while(Result::ok)
                            .flat_map(|l| {
                                l.split_whitespace().map(str::to_string).collect::<Vec<_>>()
                            })
                            .collect()
                    })
                    .clone()
            } else {
                vec![v.to_string()]
            };
            for id in ids {
                if id == "ALL" {
                    for q in &search {
                        for id in queue.list(*q).unwrap_or_default() {
                            targets.push((*q, id));
                        }
                    }
                    continue;
                }
                let Some(qid) = QueueId::parse(&id) else {
                    warn(&format!("invalid mail queue id: {id}"));
                    continue;
                };
                if let Some(q) = search.iter().find(|q| queue.path(**q, &qid).exists()) {
                    targets.push((*q, qid));
                }
            }
        }
        let (done, summary) = op.words();
        for (q, id) in targets {
            match op.apply(&queue, q, &id) {
                Ok(()) => {
                    count += 1;
                    let _ = writeln!(err, "{}: {id}: {done}", program());
                }
                // Gone meanwhile (delivered): nothing to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => warn(&format!("{}/{id}: {e}", q.dir())),
            }
        }
        let _ = writeln!(
            err,
            "{}: {summary}: {count} message{}",
            program(),
            if count == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What postcat shows.
#[derive(Debug, Clone, Copy)]
struct Show {
    envelope: bool,
    header: bool,
    body: bool,
}

/// `postcat [-behq] [-c DIR] FILE|ID ...`.
pub fn run_postcat(args: &[String]) -> CmdResult {
    let p = getopt(args, "bc:dehoqrsv").map_err(Fatal)?;
    let mut show = Show {
        envelope: p.has('e'),
        header: p.has('h'),
        body: p.has('b'),
    };
    if !show.envelope && !show.header && !show.body {
        show = Show {
            envelope: true,
            header: true,
            body: true,
        };
    }
    if p.operands.is_empty() {
        return Err(Fatal(
            "usage: postcat [-bdehoqv] [-c config_dir] [files...]".into(),
        ));
    }
    let queue = if p.has('q') {
        Some(open_queue(p.value('c'))?)
    } else {
        None
    };
    let mut out = String::new();
    for name in &p.operands {
        let (path, label) = match &queue {
            Some(queue) => {
                let found = QueueId::parse(name).and_then(|id| {
                    QueueName::ALL
                        .into_iter()
                        .find(|q| queue.path(*q, &id).exists())
                        .map(|q| (queue.path(q, &id), format!("{}/{id}", q.dir())))
                });
                match found {
                    Some(f) => f,
                    None => {
                        return Err(Fatal(format!(
                            "open queue file {name}: No such file or directory"
                        )));
                    }
                }
            }
            None => (PathBuf::from(name), name.clone()),
        };
        let f = QueueFile::open(&path).map_err(|e| {
            Fatal(match e.kind() {
                io::ErrorKind::NotFound => format!("open {label}: No such file or directory"),
                _ => format!("{label}: {e}"),
            })
        })?;
        let content = f
            .read_content()
            .map_err(|e| Fatal(format!("{label}: {e}")))?;
        let file_len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        out.push_str(&format_postcat(
            &f.envelope,
            &content,
            file_len,
            &label,
            show,
        ));
    }
    print_out(&out)
}

/// asctime(3) without its newline: `Wed Dec  2 06:40:38 2026`.
fn asctime(t: SystemTime) -> String {
    let t: DateTime<Local> = t.into();
    t.format("%a %b %e %H:%M:%S %Y").to_string()
}

/// CRLF to LF, for display.
fn lf(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

/// One queue file in postcat's layout.
fn format_postcat(
    env: &Envelope,
    content: &[u8],
    file_len: u64,
    label: &str,
    show: Show,
) -> String {
    let mut s = String::new();
    let size = content.len() as u64;
    if show.envelope {
        s.push_str(&format!("*** ENVELOPE RECORDS {label} ***\n"));
        // Postfix's fields: content size, data offset, recipients, qmgr
        // options, content length, SMTPUTF8 flags.
        let offset = file_len.saturating_sub(size + 4);
        s.push_str(&format!(
            "message_size: {size:>15} {offset:>15} {:>15} {:>15} {size:>15} {:>15}\n",
            env.recipients.len(),
            0,
            0
        ));
        s.push_str(&format!("message_arrival_time: {}\n", asctime(env.arrival)));
        for (k, v) in &env.attrs {
            if k == crate::pickup::ATTR_FULLNAME {
                s.push_str(&format!("sender_fullname: {v}\n"));
            } else {
                s.push_str(&format!("named_attribute: {k}={v}\n"));
            }
        }
        s.push_str(&format!("sender: {}\n", env.sender));
        for r in &env.recipients {
            if let Some(o) = &r.orcpt {
                s.push_str(&format!("named_attribute: dsn_orig_rcpt={o}\n"));
            }
            if let Some(n) = &r.notify {
                s.push_str(&format!("named_attribute: dsn_notify={n}\n"));
            }
            if !r.original.is_empty() {
                s.push_str(&format!("original_recipient: {}\n", r.original));
            }
            let kind = if r.done {
                "done_recipient"
            } else {
                "recipient"
            };
            s.push_str(&format!("{kind}: {}\n", r.address));
        }
        s.push_str(&format!("*** MESSAGE CONTENTS {label} ***\n"));
    }
    let parts = cleanup::split(content);
    let header_len: usize = parts.headers.iter().map(|h| h.len()).sum();
    if show.header {
        s.push_str(&lf(&content[..header_len]));
    }
    if show.body {
        s.push_str(&lf(&content[header_len..]));
    }
    if show.envelope {
        s.push_str(&format!("*** HEADER EXTRACTED {label} ***\n"));
        s.push_str(&format!("*** MESSAGE FILE END {label} ***\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Recipient;
    use std::time::Duration;

    fn fixed_time(_: SystemTime) -> String {
        "Wed Dec  2 06:40:38 2026".to_string()
    }

    fn entry(queue: QueueName, id: &str, size: u64, sender: &str, rcpts: &[(&str, &str)]) -> Entry {
        Entry {
            queue,
            id: id.into(),
            size,
            arrival: UNIX_EPOCH + Duration::from_secs(1_796_193_638),
            sender: sender.into(),
            recipients: rcpts
                .iter()
                .map(|(a, w)| (a.to_string(), w.to_string()))
                .collect(),
        }
    }

    /// The listing Postfix 3.7's postqueue -p printed for the same queue
    /// (its long IDs shortened to ours).
    #[test]
    fn listing_as_postfix_prints_it() {
        let why = "connect to 127.0.0.1[127.0.0.1]:1: Connection refused";
        let entries = vec![
            entry(
                QueueName::Deferred,
                "D407398C1A",
                273,
                "root@example.test",
                &[("bare@example.test", why)],
            ),
            entry(
                QueueName::Deferred,
                "CDFA798C0F",
                262,
                "",
                &[("bob@remote.test", why)],
            ),
            entry(
                QueueName::Hold,
                "C86D498C0E",
                274,
                "jerry@example.test",
                &[("tom@remote.test", why)],
            ),
            entry(
                QueueName::Active,
                "7519298C1D",
                1117,
                "jq@example.test",
                &[
                    ("u1@remote.test", ""),
                    ("u2@remote.test", why),
                    ("u3@remote.test", why),
                    ("u4@remote.test", ""),
                ],
            ),
        ];
        let want = "\
-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
D407398C1A      273 Wed Dec  2 06:40:38  root@example.test
                       (connect to 127.0.0.1[127.0.0.1]:1: Connection refused)
                                         bare@example.test

CDFA798C0F      262 Wed Dec  2 06:40:38  MAILER-DAEMON
                       (connect to 127.0.0.1[127.0.0.1]:1: Connection refused)
                                         bob@remote.test

C86D498C0E!     274 Wed Dec  2 06:40:38  jerry@example.test
                       (connect to 127.0.0.1[127.0.0.1]:1: Connection refused)
                                         tom@remote.test

7519298C1D*    1117 Wed Dec  2 06:40:38  jq@example.test
                                         u1@remote.test
                       (connect to 127.0.0.1[127.0.0.1]:1: Connection refused)
                                         u2@remote.test
                                         u3@remote.test
                                                          (reason unavailable)
                                         u4@remote.test

-- 1 Kbytes in 4 Requests.
";
        assert_eq!(format_listing(&entries, &fixed_time), want);
        assert_eq!(format_listing(&[], &fixed_time), "Mail queue is empty\n");
        let one = format_listing(&entries[..1], &fixed_time);
        assert!(one.ends_with("\n\n-- 0 Kbytes in 1 Request.\n"), "{one}");
    }

    #[test]
    fn json_as_postfix_prints_it() {
        let why = "connect to 127.0.0.1[127.0.0.1]:1: Connection refused";
        let e = entry(
            QueueName::Deferred,
            "D407398C1A",
            273,
            "",
            &[("bare@example.test", why), ("q\"x@y", "")],
        );
        assert_eq!(
            format_json(&[e]),
            "{\"queue_name\": \"deferred\", \"queue_id\": \"D407398C1A\", \"arrival_time\": 1796193638, \"message_size\": 273, \"forced_expire\": false, \"sender\": \"MAILER-DAEMON\", \"recipients\": [{\"address\": \"bare@example.test\", \"delay_reason\": \"connect to 127.0.0.1[127.0.0.1]:1: Connection refused\"}, {\"address\": \"q\\\"x@y\"}]}\n"
        );
    }

    #[test]
    fn asctime_shapes() {
        let t: SystemTime = Local::now().into();
        let a = asctime20(t);
        assert_eq!(a.len(), 20);
        let re =
            regex::Regex::new(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d $").unwrap();
        assert!(re.is_match(&a), "{a:?}");
        assert!(asctime(t).starts_with(a.trim_end()));
    }

    #[test]
    fn scan_lists_pending_recipients_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let mut env = Envelope::new(
            "a@x.test",
            vec![Recipient::new("b@x.test"), Recipient::new("c@x.test")],
        );
        env.recipients[0].done = true;
        let id = q.enqueue(&env, b"Subject: s\r\n\r\nbody\r\n").unwrap();
        q.move_to(&id, QueueName::Incoming, QueueName::Deferred)
            .unwrap();
        std::fs::write(q.defer_log(&id), "c@x.test\tconnection refused\n").unwrap();
        // An unfinished file in maildrop is not listed.
        std::fs::write(
            q.dir(QueueName::Maildrop).join("ABCDEF0123"),
            "IRONPOST-QUEUE 1\n",
        )
        .unwrap();
        let got = scan(&q).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].queue, QueueName::Deferred);
        assert_eq!(got[0].size, 20);
        assert_eq!(
            got[0].recipients,
            vec![("c@x.test".to_string(), "connection refused".to_string())]
        );
    }

    #[test]
    fn postcat_layout() {
        let mut env = Envelope::new(
            "root@example.test",
            vec![Recipient {
                original: "bare".into(),
                ..Recipient::new("bare@example.test")
            }],
        );
        env.set_attr(crate::pickup::ATTR_FULLNAME, "root");
        env.arrival = UNIX_EPOCH + Duration::from_secs(1_796_193_638);
        let content = b"Subject: bare\r\nFrom: root <root@example.test>\r\n\r\nbody\r\n";
        let all = Show {
            envelope: true,
            header: true,
            body: true,
        };
        let text = format_postcat(&env, content, 300, "deferred/D407398C1A", all);
        let first = text.lines().next().unwrap();
        assert_eq!(first, "*** ENVELOPE RECORDS deferred/D407398C1A ***");
        assert!(
            text.contains(&format!(
                "\nmessage_size: {:>15} {:>15} {:>15} {:>15} {:>15} {:>15}\n",
                55, 241, 1, 0, 55, 0
            )),
            "{text}"
        );
        assert!(text.contains("\nsender_fullname: root\nsender: root@example.test\noriginal_recipient: bare\nrecipient: bare@example.test\n*** MESSAGE CONTENTS deferred/D407398C1A ***\nSubject: bare\nFrom: root <root@example.test>\n\nbody\n*** HEADER EXTRACTED deferred/D407398C1A ***\n*** MESSAGE FILE END deferred/D407398C1A ***\n"), "{text}");
        let h = format_postcat(
            &env,
            content,
            300,
            "x",
            Show {
                envelope: false,
                header: true,
                body: false,
            },
        );
        assert_eq!(h, "Subject: bare\nFrom: root <root@example.test>\n");
        let b = format_postcat(
            &env,
            content,
            300,
            "x",
            Show {
                envelope: false,
                header: false,
                body: true,
            },
        );
        assert_eq!(b, "\nbody\n");
        let e = format_postcat(
            &env,
            content,
            300,
            "x",
            Show {
                envelope: true,
                header: false,
                body: false,
            },
        );
        assert!(e.ends_with("recipient: bare@example.test\n*** MESSAGE CONTENTS x ***\n*** HEADER EXTRACTED x ***\n*** MESSAGE FILE END x ***\n"), "{e}");
    }
}
