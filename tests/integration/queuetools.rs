//! `sendmail`, `mailq`, `postqueue`, `postsuper` and `postcat` as users run
//! them, against a queue in a temporary directory (no daemon: mail posted
//! with sendmail waits in `maildrop/`, as with Postfix stopped).

use std::time::{Duration, SystemTime};

use ironpost::queue::{Queue, QueueId, QueueName};

use crate::common::*;

/// A configuration whose queue is in the same temporary directory.
fn instance(extra: &str) -> (ConfigDir, Queue) {
    let cd = ConfigDir::new("");
    let qdir = cd.path().join("queue");
    cd.write(
        "main.cf",
        &format!(
            "queue_directory = {}\nmyhostname = mail.example.test\nmydomain = example.test\nmyorigin = $mydomain\n{extra}",
            qdir.display()
        ),
    );
    let q = Queue::open(&qdir).expect("create the queue");
    (cd, q)
}

fn run(cd: &ConfigDir, name: &str, args: &[&str]) -> Command {
    compat(name)
        .args(["-c", &cd.arg()])
        .args(args.iter().copied())
}

fn maildrop(q: &Queue) -> Vec<QueueId> {
    q.list(QueueName::Maildrop).unwrap()
}

fn login() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

#[test]
fn sendmail_t_reads_headers_drops_bcc_and_stops_at_a_dot() {
    let (cd, q) = instance("");
    let out = run(
        &cd,
        "sendmail",
        &["-t", "-f", "jerry@example.test", "extra"],
    )
    .stdin(
        "To: tom@remote.test,\n  \"Team\": a@remote.test, b@remote.test;\n\
             Cc: undisclosed-recipients:;\nBcc: hidden@remote.test\nSubject: hi\n\n\
             line one\n..two dots stay\n.\nnot part of the message\n",
    )
    .run();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    let ids = maildrop(&q);
    assert_eq!(ids.len(), 1);
    let f = q.read(QueueName::Maildrop, &ids[0]).unwrap();
    assert_eq!(f.envelope.sender, "jerry@example.test");
    let rcpts: Vec<(&str, &str)> = f
        .envelope
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.original.as_str()))
        .collect();
    assert_eq!(
        rcpts,
        vec![
            ("extra@example.test", "extra"),
            ("tom@remote.test", "tom@remote.test"),
            ("a@remote.test", "a@remote.test"),
            ("b@remote.test", "b@remote.test"),
            ("hidden@remote.test", "hidden@remote.test"),
        ]
    );
    let uid = nix::unistd::getuid().as_raw().to_string();
    assert_eq!(f.envelope.attr("uid"), Some(uid.as_str()));
    assert_eq!(
        String::from_utf8(f.read_content().unwrap()).unwrap(),
        "To: tom@remote.test,\r\n  \"Team\": a@remote.test, b@remote.test;\r\n\
         Cc: undisclosed-recipients:;\r\nSubject: hi\r\n\r\nline one\r\n..two dots stay\r\n"
    );
}

#[test]
fn sendmail_with_i_keeps_dots_and_defaults_the_sender() {
    let (cd, q) = instance("");
    let out = run(&cd, "sendmail", &["-oi", "-F", "Jerry Q. Mouse", "tom"])
        .stdin("Subject: x\r\n\r\n.\r\nbare\rcr\r\nlast")
        .run();
    assert_eq!((out.status, out.stderr.as_str()), (0, ""));
    let ids = maildrop(&q);
    let f = q.read(QueueName::Maildrop, &ids[0]).unwrap();
    assert_eq!(f.envelope.sender, format!("{}@example.test", login()));
    assert_eq!(f.envelope.recipients[0].address, "tom@example.test");
    assert_eq!(f.envelope.attr("fullname"), Some("Jerry Q. Mouse"));
    assert_eq!(
        f.read_content().unwrap(),
        b"Subject: x\r\n\r\n.\r\nbare\rcr\r\nlast\r\n"
    );
    // -f <> is the null sender.
    let out = run(&cd, "sendmail", &["-f", "<>", "tom"])
        .stdin("Subject: y\n\nz\n")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let senders: Vec<String> = maildrop(&q)
        .iter()
        .map(|id| q.read(QueueName::Maildrop, id).unwrap().envelope.sender)
        .collect();
    assert!(senders.contains(&String::new()), "{senders:?}");
}

#[test]
fn sendmail_failures_as_postfix_words_them() {
    let (cd, q) = instance("message_size_limit = 100\n");
    let me = format!("{}({})", login(), nix::unistd::getuid());
    let out = run(&cd, "sendmail", &[])
        .stdin("Subject: x\n\nbody\n")
        .run();
    assert_eq!(out.status, 75);
    assert_eq!(
        out.stderr,
        format!(
            "sendmail: fatal: {me}: Recipient addresses must be specified on the command line or via the -t option\n"
        )
    );
    let out = run(&cd, "sendmail", &["-t"])
        .stdin("Subject: x\n\nbody\n")
        .run();
    assert_eq!(out.status, 75);
    assert_eq!(
        out.stderr,
        format!("sendmail: fatal: {me}: No recipient addresses found in message header\n")
    );
    let out = run(&cd, "sendmail", &["tom"])
        .stdin(format!("Subject: x\n\n{}\n", "a".repeat(200)))
        .run();
    assert_eq!(out.status, 75);
    assert_eq!(
        out.stderr,
        format!("sendmail: fatal: {me}: message file too big\n")
    );
    let out = run(&cd, "sendmail", &["-z", "tom"]).stdin("x\n").run();
    assert_eq!(out.status, 75);
    assert_eq!(
        out.stderr,
        "sendmail: invalid option -- 'z'\nsendmail: fatal: usage: sendmail [options]\n"
    );
    assert!(maildrop(&q).is_empty(), "nothing was queued");
}

/// Posts a message and returns its ID.
fn post(cd: &ConfigDir, q: &Queue, args: &[&str], msg: &str) -> QueueId {
    let before = maildrop(q);
    let out = run(cd, "sendmail", args).stdin(msg).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    maildrop(q)
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("a new maildrop file")
}

#[test]
fn mailq_lists_the_queue_as_postfix_does() {
    let (cd, q) = instance("");
    let out = run(&cd, "mailq", &[]).run();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Mail queue is empty\n")
    );

    let a = post(
        &cd,
        &q,
        &["-f", "jerry@example.test", "tom@remote.test"],
        "Subject: a\n\nbody\n",
    );
    let b = post(
        &cd,
        &q,
        &["-f", "", "x@remote.test", "y@remote.test"],
        "Subject: b\n\nbody\n",
    );
    // b is deferred, with a reason for x only.
    q.move_to(&b, QueueName::Maildrop, QueueName::Deferred)
        .unwrap();
    std::fs::write(
        q.defer_log(&b),
        "x@remote.test\tconnect to mx.remote.test[192.0.2.1]:25: Connection refused\n",
    )
    .unwrap();
    let c = post(
        &cd,
        &q,
        &["-f", "a@example.test", "h@remote.test"],
        "Subject: c\n\nbody\n",
    );
    q.move_to(&c, QueueName::Maildrop, QueueName::Hold).unwrap();

    let size = |id: &QueueId| q.read(q.locate(id).unwrap(), id).unwrap().content_len();
    let time = r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d";
    let reason = "connect to mx.remote.test[192.0.2.1]:25: Connection refused";
    let reason_line = regex::escape(&format!("{:w$}({reason})", "", w = 76 - reason.len()));
    let want = format!(
        r"^-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
{a}  {:>7} {time}  jerry@example\.test
                                         tom@remote\.test

{b}  {:>7} {time}  MAILER-DAEMON
{reason_line}
                                         x@remote\.test
                                                          \(reason unavailable\)
                                         y@remote\.test

{c}! {:>7} {time}  a@example\.test
                                         h@remote\.test

-- 0 Kbytes in 3 Requests\.
$",
        size(&a),
        size(&b),
        size(&c),
    );
    let out = run(&cd, "mailq", &[]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let re = regex::Regex::new(&want).unwrap();
    assert!(
        re.is_match(&out.stdout),
        "got:\n{}\nwant:\n{want}",
        out.stdout
    );
    assert_eq!(run(&cd, "postqueue", &["-p"]).run().stdout, out.stdout);
    assert_eq!(run(&cd, "sendmail", &["-bp"]).run().stdout, out.stdout);

    let out = run(&cd, "postqueue", &["-j"]).run();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[1].starts_with(&format!(
            "{{\"queue_name\": \"deferred\", \"queue_id\": \"{b}\", \"arrival_time\": "
        )),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(&format!(", \"message_size\": {}, \"forced_expire\": false, \"sender\": \"MAILER-DAEMON\", \"recipients\": [{{\"address\": \"x@remote.test\", \"delay_reason\": \"connect to mx.remote.test[192.0.2.1]:25: Connection refused\"}}, {{\"address\": \"y@remote.test\"}}]}}", size(&b))), "{}", lines[1]);
}

#[test]
fn postqueue_flush_without_a_daemon() {
    let (cd, _q) = instance("");
    let out = run(&cd, "postqueue", &["-f"]).run();
    assert_eq!(out.status, 69);
    assert_eq!(
        out.stderr,
        "postqueue: fatal: Cannot flush mail queue - mail system is down\n"
    );
}

#[test]
fn postsuper_deletes_holds_and_releases() {
    let (cd, q) = instance("");
    let ids: Vec<QueueId> = (0..3)
        .map(|i| {
            let id = post(
                &cd,
                &q,
                &["tom@remote.test"],
                &format!("Subject: {i}\n\nbody\n"),
            );
            q.move_to(&id, QueueName::Maildrop, QueueName::Deferred)
                .unwrap();
            id
        })
        .collect();

    let out = run(&cd, "postsuper", &["-h", ids[0].as_str()]).run();
    assert_eq!(
        (out.status, out.stderr.clone()),
        (
            0,
            format!(
                "postsuper: {}: placed on hold\npostsuper: Placed on hold: 1 message\n",
                ids[0]
            )
        )
    );
    assert_eq!(q.locate(&ids[0]), Some(QueueName::Hold));

    let out = run(&cd, "postsuper", &["-H", "ALL"]).run();
    assert_eq!(
        out.stderr,
        format!(
            "postsuper: {}: released from hold\npostsuper: Released from hold: 1 message\n",
            ids[0]
        )
    );
    assert_eq!(q.locate(&ids[0]), Some(QueueName::Deferred));
    // Released mail is due now.
    let due = std::fs::metadata(q.path(QueueName::Deferred, &ids[0]))
        .unwrap()
        .modified()
        .unwrap();
    assert!(due <= SystemTime::now() + Duration::from_secs(1));

    let out = run(
        &cd,
        "postsuper",
        &["-d", ids[1].as_str(), "-d", "bad/id", "-d", "ABCDEF0123"],
    )
    .run();
    assert_eq!(
        out.stderr,
        format!(
            "postsuper: warning: invalid mail queue id: bad/id\npostsuper: {}: removed\npostsuper: Deleted: 1 message\n",
            ids[1]
        )
    );
    assert_eq!(q.locate(&ids[1]), None);

    // -d - reads IDs from standard input; a queue name limits the search.
    let out = run(&cd, "postsuper", &["-d", "-", "hold"])
        .stdin(format!("{}\n", ids[2]))
        .run();
    assert_eq!(out.stderr, "postsuper: Deleted: 0 messages\n");
    let out = run(&cd, "postsuper", &["-d", "ALL", "deferred"]).run();
    let mut lines: Vec<&str> = out.stderr.lines().collect();
    let summary = lines.pop().unwrap();
    lines.sort();
    let mut want = vec![
        format!("postsuper: {}: removed", ids[0]),
        format!("postsuper: {}: removed", ids[2]),
    ];
    want.sort();
    assert_eq!(lines, want);
    assert_eq!(summary, "postsuper: Deleted: 2 messages");
    assert_eq!(run(&cd, "mailq", &[]).run().stdout, "Mail queue is empty\n");
}

#[test]
fn postcat_shows_envelope_header_and_body() {
    let (cd, q) = instance("");
    let id = post(
        &cd,
        &q,
        &["-f", "jerry@example.test", "-F", "Jerry", "tom"],
        "Subject: s\nX-A: 1\n\nline 1\nline 2\n",
    );
    let out = run(&cd, "postcat", &["-q", id.as_str()]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let label = format!("maildrop/{id}");
    let text = out.stdout;
    assert!(
        text.starts_with(&format!("*** ENVELOPE RECORDS {label} ***\nmessage_size: ")),
        "{text}"
    );
    assert!(text.contains("\nmessage_arrival_time: "), "{text}");
    assert!(text.contains("\nsender_fullname: Jerry\n"), "{text}");
    assert!(
        text.ends_with(&format!(
            "sender: jerry@example.test\noriginal_recipient: tom\nrecipient: tom@example.test\n\
             *** MESSAGE CONTENTS {label} ***\nSubject: s\nX-A: 1\n\nline 1\nline 2\n\
             *** HEADER EXTRACTED {label} ***\n*** MESSAGE FILE END {label} ***\n"
        )),
        "{text}"
    );
    let out = run(&cd, "postcat", &["-hq", id.as_str()]).run();
    assert_eq!(out.stdout, "Subject: s\nX-A: 1\n");
    let out = run(&cd, "postcat", &["-bq", id.as_str()]).run();
    assert_eq!(out.stdout, "\nline 1\nline 2\n");
    // A file named on the command line.
    let path = q.path(QueueName::Maildrop, &id).display().to_string();
    let out = compat("postcat").args(["-h", &path]).run();
    assert_eq!(out.stdout, "Subject: s\nX-A: 1\n");

    let out = run(&cd, "postcat", &["-q", "ABCDEF0123"]).run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "postcat: fatal: open queue file ABCDEF0123: No such file or directory\n"
    );
}
