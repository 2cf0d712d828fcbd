//! A system user's mbox INBOX over IMAP with Python's imaplib: flags set
//! over IMAP end up in the file's `Status:`, `X-Status:` and
//! `X-Keywords:` headers as Dovecot writes them (read back by Python's
//! `mailbox` module, as mail readers read them), stay with the same UIDs
//! across sessions and restarts, flags written by another program are
//! taken, and APPEND and COPY into the INBOX land in the file.

use std::time::{Duration, Instant};

use ironpost_testkit::instance::Instance;

use crate::common::*;

const PY_HEAD: &str = r#"
import imaplib, mailbox, sys, time
def ok(r):
    typ, data = r
    assert typ == "OK", r
    return data
def login(port):
    m = imaplib.IMAP4("127.0.0.1", port)
    ok(m.login("tom", "secret"))
    return m
"#;

fn python(script: &str) -> String {
    crate::common::python(&format!("{PY_HEAD}\n{script}"))
}

/// [`python`] of `script` in a session of tom's, the INBOX selected as `m`.
fn in_inbox(port: u16, script: &str) -> String {
    python(&format!(
        "m = login({port})\nok(m.select(\"INBOX\"))\n{script}"
    ))
}

/// `UID n FLAGS (...)` of every INBOX message, a line each, as imaplib
/// gets them in a new session.
fn uids_and_flags(port: u16) -> String {
    python(&format!(
        r#"
m = login({port})
ok(m.select("INBOX"))
for line in ok(m.fetch("1:*", "(UID FLAGS)")):
    print(line.decode())
m.logout()
"#
    ))
}

/// A started instance whose system user tom has one message per subject
/// in his spool, delivered one at a time (the file's order is then the
/// sequence numbers').
fn started_with(subjects: &[&str]) -> Instance {
    let mut inst = system_user_instance();
    inst.start();
    for (n, s) in subjects.iter().enumerate() {
        send_to_tom(&inst, s);
        wait_count(&inst, n + 1);
    }
    inst
}

/// The spool once it holds `n` messages.
fn wait_count(inst: &Instance, n: usize) -> String {
    let spool = inst.path("mail/tom");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&spool).unwrap_or_default();
        if text.matches("\nSubject: ").count() == n {
            return text;
        }
        assert!(Instant::now() < deadline, "mbox:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What Python's `mailbox.mbox` reads in the spool: subject, the flags
/// of `Status:` and `X-Status:` (`get_flags()`), `X-Keywords:`.
fn as_mail_readers_see_it(inst: &Instance) -> String {
    python(&format!(
        r#"
for m in mailbox.mbox("{}"):
    print(m["Subject"], "".join(sorted(m.get_flags())), m["X-Keywords"])
"#,
        inst.path("mail/tom").display()
    ))
}

#[test]
fn flags_are_written_into_the_mbox_and_read_back() {
    let mut inst = started_with(&["one", "two", "three"]);
    let port = inst.imap_port;
    let before = wait_count(&inst, 3);
    let inode = |inst: &Instance| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(inst.path("mail/tom")).unwrap().ino()
    };
    let ino = inode(&inst);

    // Until a session lets go of them, the flags are only in the index.
    let out = python(&format!(
        r#"
m = login({port})
ok(m.select("INBOX"))
before = open("{spool}").read()
ok(m.store("1", "+FLAGS", r"(\Seen \Flagged $Label1)"))
ok(m.store("2", "+FLAGS", r"(\Answered \Draft)"))
ok(m.store("3", "+FLAGS", r"(\Deleted)"))
print(open("{spool}").read() == before)
print(ok(m.uid("SEARCH", None, "ALL"))[0].decode())
ok(m.close())
m.logout()
"#,
        spool = inst.path("mail/tom").display()
    ));
    assert_eq!(out, "True\n1 2 3\n");
    let text = wait_count(&inst, 2);
    assert_ne!(text, before);
    // In place: the same file (a delivery waiting for its locks still
    // appends to the right one).
    assert_eq!(inode(&inst), ino);
    // Dovecot's fields, spelling and order, at the end of the header.
    assert!(
        text.contains(
            "From: ann@example.test\nStatus: RO\nX-Status: F\nX-Keywords: $Label1\n\nbody of one\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("From: ann@example.test\nStatus: O\nX-Status: AT\n\nbody of two\n"),
        "{text}"
    );
    // CLOSE expunged the third.
    assert!(!text.contains("Subject: three"), "{text}");
    assert_eq!(
        as_mail_readers_see_it(&inst),
        "one FOR $Label1\ntwo AOT None\n"
    );

    // A new session after a restart: the same UIDs and flags, nothing
    // recent.
    inst.stop();
    inst.start();
    let port = inst.imap_port;
    let out = python(&format!(
        r#"
m = login({port})
ok(m.select("INBOX"))
print(m.untagged_responses.get("RECENT"))
for line in ok(m.fetch("1:*", "(UID FLAGS)")):
    print(line.decode())
m.logout()
"#
    ));
    assert_eq!(
        out,
        "[b'0']\n1 (UID 1 FLAGS (\\Seen \\Flagged $Label1))\n2 (UID 2 FLAGS (\\Answered \\Draft))\n",
        "{}",
        inst.diagnostics()
    );

    // The index lost (its keywords file with it): the flags come from
    // the headers, the UIDs from the state kept beside them.
    inst.stop();
    let index = inst.path("data/index");
    assert!(index.is_dir(), "{}", index.display());
    std::fs::remove_dir_all(&index).unwrap();
    inst.start();
    let port = inst.imap_port;
    let out = uids_and_flags(port);
    assert_eq!(
        out,
        "1 (UID 1 FLAGS (\\Seen \\Flagged $Label1))\n2 (UID 2 FLAGS (\\Answered \\Draft))\n",
        "{}",
        inst.diagnostics()
    );

    // Another program (mutt) marks the second read in the file: taken, at
    // once by a session that has the folder selected.
    let out = python(&format!(
        r#"
m = login({port})
ok(m.select("INBOX"))
with open("{spool}", "r+b") as f:
    data = f.read().replace(b"Status: O\nX-Status: AT\n", b"Status: RO\nX-Status: A\n", 1)
    f.seek(0)
    f.write(data)
    f.truncate()
time.sleep(1.1)
m.untagged_responses.clear()
ok(m.noop())
print(sorted(m.untagged_responses))
for line in ok(m.fetch("1:*", "(UID FLAGS)")):
    print(line.decode())
m.logout()
"#,
        spool = inst.path("mail/tom").display()
    ));
    assert_eq!(
        out,
        // The NOOP's FETCH, which imaplib hands over with the next one.
        "['FETCH']\n2 (FLAGS (\\Seen \\Answered))\n1 (UID 1 FLAGS (\\Seen \\Flagged $Label1))\n2 (UID 2 FLAGS (\\Seen \\Answered))\n"
    );
    // And the logout left the file as that program wrote it.
    assert_eq!(
        as_mail_readers_see_it(&inst),
        "one FOR $Label1\ntwo AOR None\n"
    );
}

#[test]
fn our_write_back_is_no_change_for_other_sessions() {
    let inst = started_with(&["one", "two"]);
    let port = inst.imap_port;
    // Session a watches while b changes flags and UNSELECTs (written
    // into the file then): a hears of the flags and of nothing else, then
    // nothing at all once the file has settled.
    let out = python(&format!(
        r#"
a = login({port})
b = login({port})
ok(a.select("INBOX"))
ok(b.select("INBOX"))
ok(b.store("2", "+FLAGS", r"(\Flagged)"))
ok(b.unselect())
print("written", open("{spool}").read().count("\nX-Status: F\n"))
for i in range(2):
    a.untagged_responses.clear()
    ok(a.noop())
    print(sorted(a.untagged_responses))
    time.sleep(1.2)
print(ok(a.fetch("1:*", "(UID FLAGS)")))
b.logout()
a.logout()
"#,
        spool = inst.path("mail/tom").display()
    ));
    assert_eq!(
        out,
        "written 1\n['FETCH']\n[]\n[b'1 (UID 1 FLAGS (\\\\Recent))', b'2 (UID 2 FLAGS (\\\\Flagged \\\\Recent))']\n",
        "{}",
        inst.diagnostics()
    );

    // A client that goes away without a word: its flags are written all
    // the same.
    python(&format!(
        r#"
c = login({port})
ok(c.select("INBOX"))
ok(c.store("1", "+FLAGS", r"(\Deleted)"))
c.shutdown()
"#
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(inst.path("mail/tom")).unwrap();
        if text.contains("\nX-Status: D\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn append_and_copy_into_the_mbox_inbox() {
    let inst = started_with(&["one"]);
    let out = in_inbox(
        inst.imap_port,
        r#"
msg = b"From: tom@example.test\r\nSubject: appended\r\n\r\nFrom the top\r\nhello\r\n"
typ, data = m.append("INBOX", r"(\Seen $Sent)", None, msg)
assert typ == "OK", data
print(data[0].decode().split("]")[0].split()[-1])
typ, data = m.uid("COPY", "1", "INBOX")
assert typ == "OK", data
print(m.response("COPYUID")[1][-1].decode().split()[-1])
ok(m.noop())
for line in ok(m.fetch("1:*", "(UID FLAGS)")):
    print(line.decode())
body = ok(m.uid("FETCH", "2", "(BODY.PEEK[])"))[0][1]
# Served as stored (mboxo: nothing unquoted).
assert body == msg.replace(b"\r\nFrom the", b"\r\n>From the"), body
m.logout()
"#,
    );
    assert_eq!(
        out,
        "2\n3\n1 (UID 1 FLAGS (\\Recent))\n2 (UID 2 FLAGS (\\Seen $Sent \\Recent))\n3 (UID 3 FLAGS (\\Recent))\n",
        "{}",
        inst.diagnostics()
    );
    let text = wait_count(&inst, 3);
    // As delivery writes it: a `From ` line, `>From ` quoting, an empty
    // line after it; the flags in its headers.
    let appended = text.find("\nFrom MAILER-DAEMON  ").expect("From line");
    assert!(
        text[appended..].starts_with("\nFrom MAILER-DAEMON  ")
            && text[appended..].contains(
                "\nFrom: tom@example.test\nSubject: appended\nStatus: RO\nX-Keywords: $Sent\n\n>From the top\nhello\n\n"
            ),
        "{text}"
    );
    assert_eq!(
        as_mail_readers_see_it(&inst),
        "one  None\nappended OR $Sent\none  None\n"
    );
}

/// MULTIAPPEND (RFC 3502) into the mbox INBOX: the messages land
/// together, in order, each with its flags (and \Recent for the session
/// that added them), and get consecutive UIDs.
#[test]
fn multiappend_into_the_mbox_inbox() {
    let inst = started_with(&["one"]);
    let out = in_inbox(
        inst.imap_port,
        r#"
msgs = [(r"(\Seen)", b"Subject: first\r\n\r\nbody 1\r\n"),
        ("()", b"Subject: second\r\n\r\nbody 2\r\n"),
        (r"(\Flagged $Work)", b"Subject: third\r\n\r\nbody 3\r\n")]
cmd = b"A1 APPEND INBOX"
for flags, msg in msgs:
    cmd += b" " + flags.encode() + b" {%d+}\r\n" % len(msg) + msg
m.send(cmd + b"\r\n")
while True:
    line = m.readline()
    if line.startswith(b"A1 "):
        break
print(line.decode().split("[")[1].split("]")[0])
ok(m.noop())
for line in ok(m.fetch("2:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")):
    if isinstance(line, tuple):
        print(line[0].decode().split(" BODY")[0], line[1].decode().strip())
m.logout()
"#,
    );
    let validity = out.split_whitespace().nth(1).unwrap_or("?").to_string();
    assert_eq!(
        out,
        format!(
            "APPENDUID {validity} 2:4\n\
             2 (UID 2 FLAGS (\\Seen \\Recent) Subject: first\n\
             3 (UID 3 FLAGS (\\Recent) Subject: second\n\
             4 (UID 4 FLAGS (\\Flagged $Work \\Recent) Subject: third\n"
        ),
        "{}",
        inst.diagnostics()
    );
    wait_count(&inst, 4);
    assert_eq!(
        as_mail_readers_see_it(&inst),
        "one  None\nfirst OR None\nsecond  None\nthird FO $Work\n"
    );
}

#[test]
fn mutt_and_ironpost_take_each_others_flags() {
    if Command::new("sh")
        .args(["-c", "command -v mutt"])
        .run()
        .status
        != 0
    {
        eprintln!("mutt is not installed: skipped");
        return;
    }
    let inst = started_with(&["one", "two"]);
    let port = inst.imap_port;
    python(&format!(
        r#"
m = login({port})
ok(m.select("INBOX"))
ok(m.store("1", "+FLAGS", r"(\Seen $Label1)"))
m.logout()
"#
    ));
    // mutt opens the spool: the first message is read (ours), so it
    // starts on the second, the first new one; flags it, marks it read
    // and writes the file back (its own way, `Content-Length:` and
    // `Lines:` added).
    // Let the session's last background sync pass first: ironpost takes
    // the dot lock before the fcntl lock, as local(8) does, mutt the other
    // way round; when both lock at once, mutt sees the dot lock stay and
    // asks whether to remove it (ironpost gives up after its timeout).
    std::thread::sleep(Duration::from_secs(1));
    let home = inst.path("mutt");
    std::fs::create_dir_all(home.join("Mail")).unwrap();
    std::fs::write(home.join("muttrc"), "").unwrap();
    let out = Command::new("timeout")
        .args(["60", "script", "-q", "-e", "-c"])
        .arg(format!(
            "mutt -n -F {} -f {} -e 'set move=no quit=yes mark_old=no resolve=no' \
             -e 'push \"<flag-message><toggle-new><sync-mailbox><quit>\"'",
            home.join("muttrc").display(),
            inst.path("mail/tom").display()
        ))
        .arg(home.join("typescript").display().to_string())
        .env("TERM", "vt100")
        .env("HOME", &home.display().to_string())
        .run();
    assert_eq!(
        out.status,
        0,
        "{}\n{}",
        out.stderr,
        String::from_utf8_lossy(&std::fs::read(home.join("typescript")).unwrap_or_default())
    );
    let text = wait_count(&inst, 2);
    assert!(
        text.contains("\nSubject: two\n") && text.contains("Status: RO\nX-Status: F\n"),
        "{text}"
    );
    let out = uids_and_flags(port);
    assert_eq!(
        out, "1 (UID 1 FLAGS (\\Seen $Label1))\n2 (UID 2 FLAGS (\\Seen \\Flagged))\n",
        "{text}"
    );
}
