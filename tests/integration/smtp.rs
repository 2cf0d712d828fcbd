//! The SMTP server over real sockets: the classic telnet session byte for
//! byte, Postfix's replies to errors, pipelining, limits, relay control,
//! DATA and BDAT content, and the mail log.

use ironpost_testkit::instance::{Instance, Smtp};

use crate::common::*;

fn instance(main_cf: &str) -> Instance {
    let mut i = Instance::new(ironpost(), main_cf);
    i.start();
    i
}

/// The names of a delivered message's header fields, in order. Maildir
/// files have LF line ends, as Postfix and Dovecot write them.
fn header_names(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\n\n").next().unwrap_or("");
    head.split('\n')
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_string()))
        .collect()
}

#[test]
fn classic_telnet_session() {
    let inst = instance("");
    let mut s = Smtp::connect(inst.port);
    let mut transcript = s.read_reply();
    let mut step = |s: &mut Smtp, line: &str| {
        transcript.push_str(line);
        transcript.push_str("\r\n");
        s.send(line);
        transcript.push_str(&s.read_reply());
    };
    step(&mut s, "helo");
    step(&mut s, "ehlo localhost");
    step(&mut s, "mail from: root");
    step(&mut s, "mail from: obama@whitehouse.com");
    step(&mut s, "rcpt to:jerry");
    step(&mut s, "data");
    s.send("Subject: How are you these days?\r\n\r\nAre you well?\r\n.");
    let queued = s.read_reply();
    step(&mut s, "quit");
    let want = "220 mail.example.test ESMTP ironpost\r
helo\r
501 Syntax: HELO hostname\r
ehlo localhost\r
250-mail.example.test\r
250-PIPELINING\r
250-SIZE 10240000\r
250-VRFY\r
250-ETRN\r
250-STARTTLS\r
250-ENHANCEDSTATUSCODES\r
250-8BITMIME\r
250-DSN\r
250-SMTPUTF8\r
250 CHUNKING\r
mail from: root\r
250 2.1.0 Ok\r
mail from: obama@whitehouse.com\r
503 5.5.1 Error: nested MAIL command\r
rcpt to:jerry\r
250 2.1.5 Ok\r
data\r
354 End data with <CR><LF>.<CR><LF>\r
quit\r
221 2.0.0 Bye\r
";
    assert_eq!(transcript, want);
    let id = queued
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not queued: {queued}"))
        .trim_end()
        .to_string();
    assert!(
        id.len() >= 10
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "queue ID {id}"
    );
    assert!(s.is_closed());

    let messages = inst.wait_messages("jerry", 1);
    let m = String::from_utf8(messages[0].clone()).unwrap();
    assert_eq!(
        header_names(&messages[0]),
        [
            "Return-Path",
            "X-Original-To",
            "Delivered-To",
            "Received",
            "Subject",
            "Message-Id",
            "Date",
            "From"
        ],
        "{m}"
    );
    assert!(m.starts_with("Return-Path: <root@example.test>\nX-Original-To: jerry\nDelivered-To: jerry@example.test\nReceived: from localhost (localhost [127.0.0.1])\n\tby mail.example.test (ironpost) with ESMTP id "), "{m}");
    assert!(
        m.contains(&format!("with ESMTP id {id}\n\tfor <jerry>; ")),
        "{m}"
    );
    assert!(m.contains(&format!(".{id}@mail.example.test>\n")), "{m}");
    assert!(m.contains("\nFrom: root@example.test\n"), "{m}");
    assert!(m.ends_with("\n\nAre you well?\n"), "{m}");

    // The log is written by its own thread: wait for each line.
    for needle in [
        format!("{id}: removed"),
        "ironpost/smtpd[".to_string(),
        "connect from localhost[127.0.0.1]".to_string(),
        format!("{id}: client=localhost[127.0.0.1]"),
        "ironpost/cleanup[".to_string(),
        format!("{id}: message-id=<"),
        format!("{id}: from=<root@example.test>, size="),
        ", nrcpt=1 (queue active)".to_string(),
        format!("{id}: to=<jerry@example.test>, orig_to=<jerry>, relay=virtual, delay="),
        "dsn=2.0.0, status=sent (delivered to maildir)".to_string(),
        "disconnect from localhost[127.0.0.1] helo=0/1 ehlo=1 mail=1/2 rcpt=1 data=1 quit=1 commands=5/7".to_string(),
    ] {
        inst.wait_log(&needle);
    }
}

#[test]
fn postfix_replies_to_errors() {
    let inst = instance("smtpd_hard_error_limit = 100\nsmtpd_soft_error_limit = 100");
    let mut s = inst.connect();
    // smtpd_helo_required is off by default: MAIL works without HELO.
    assert_eq!(s.cmd("mail from:<a@example.test>"), "250 2.1.0 Ok");
    assert_eq!(s.cmd("rset"), "250 2.0.0 Ok");
    for (cmd, want) in [
        ("ehlo", "501 Syntax: EHLO hostname"),
        (
            "rcpt to:<jerry@example.test>",
            "503 5.5.1 Error: need MAIL command",
        ),
        ("data", "503 5.5.1 Error: need RCPT command"),
        ("bogus", "500 5.5.2 Error: command not recognized"),
        ("expn jerry", "500 5.5.2 Error: command not recognized"),
        ("starttls x", "501 5.5.4 Syntax: STARTTLS"),
        ("auth plain", "503 5.5.1 Error: authentication not enabled"),
        ("vrfy", "501 5.5.4 Syntax: VRFY address [SMTPUTF8]"),
        ("vrfy jerry", "252 2.0.0 jerry"),
        ("etrn", "500 Syntax: ETRN domain"),
        ("etrn example.org", "459 <example.org>: service unavailable"),
        ("noop whatever", "250 2.0.0 Ok"),
        ("rset x", "501 5.5.4 Syntax: RSET"),
        ("ehlo client.example", ""),
        ("mail", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("mail to:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("mail from:<a@b", "501 5.1.7 Bad sender address syntax"),
        ("mail from:<a b@c>", "501 5.1.7 Bad sender address syntax"),
        (
            "mail from:<a@example.test> SIZE=abc",
            "501 5.5.4 Bad message size syntax",
        ),
        (
            "mail from:<a@example.test> BODY=9BIT",
            "555 5.5.4 Unsupported option: BODY=9BIT",
        ),
        (
            "mail from:<a@example.test> FOO=bar",
            "555 5.5.4 Unsupported option: FOO=bar",
        ),
        (
            "mail from:<a@example.test> SIZE=99999999",
            "552 5.3.4 Message size exceeds fixed limit",
        ),
        (
            "mail from:<a@example.test> RET=BAD",
            "501 5.5.4 Bad RET parameter syntax",
        ),
        (
            "mail from:<a@example.test> ENVID=a+b",
            "501 5.5.4 Bad ENVID parameter syntax",
        ),
        (
            "mail from:<@a.example,@b.example:a@example.test> SIZE=10 BODY=8BITMIME",
            "250 2.1.0 Ok",
        ),
        ("rcpt to:", "501 5.5.4 Syntax: RCPT TO:<address>"),
        (
            "rcpt to:<jerry@example.test> NOTIFY=BAD",
            "501 5.5.4 Error: Bad NOTIFY parameter syntax",
        ),
        (
            "rcpt to:<jerry@example.test> ORCPT=rfc822;a+b",
            "501 5.5.4 Error: Bad ORCPT parameter syntax",
        ),
        (
            "rcpt to:<nobody@example.test>",
            "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table",
        ),
        (
            "rcpt to:<JERRY@Example.TEST> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;jerry+40example.test",
            "250 2.1.5 Ok",
        ),
        ("data x", "501 5.5.4 Syntax: DATA"),
        ("rset", "250 2.0.0 Ok"),
    ] {
        let got = s.cmd(cmd);
        if want.is_empty() {
            assert!(got.starts_with("250-mail.example.test"), "{cmd}: {got}");
        } else {
            assert_eq!(got, want, "{cmd}");
        }
    }
    // An over-long line is cut at line_length_limit and answered once.
    let long = format!("NOOP{}", "x".repeat(3000));
    s.send(&long);
    assert_eq!(
        s.read_reply().trim_end(),
        "500 5.5.2 Error: command not recognized"
    );
    assert_eq!(s.cmd("noop"), "250 2.0.0 Ok");
    // A malformed BDAT cannot be skipped: the connection ends.
    assert_eq!(s.cmd("bdat x"), "521 5.5.4 Syntax: BDAT count [LAST]");
    assert!(s.is_closed());
    inst.wait_log("NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.test> to=<nobody@example.test> proto=ESMTP helo=<client.example>");
}

#[test]
fn too_many_errors_and_timeout() {
    let inst = instance("smtpd_hard_error_limit = 3\nsmtpd_timeout = 1s");
    let mut s = inst.connect();
    assert_eq!(s.cmd("bogus1"), "500 5.5.2 Error: command not recognized");
    assert_eq!(s.cmd("bogus2"), "500 5.5.2 Error: command not recognized");
    s.send("bogus3");
    assert_eq!(
        s.read_reply(),
        "500 5.5.2 Error: command not recognized\r\n"
    );
    assert_eq!(
        s.read_reply(),
        "421 4.7.0 mail.example.test Error: too many errors\r\n"
    );
    assert!(s.is_closed());
    // A silent client is dropped after smtpd_timeout.
    let mut s = inst.connect();
    assert_eq!(
        s.read_reply(),
        "421 4.4.2 mail.example.test Error: timeout exceeded\r\n"
    );
    assert!(s.is_closed());
    let log = inst.wait_log("timeout after CONNECT from localhost[127.0.0.1]");
    assert!(
        log.contains("too many errors after UNKNOWN from localhost[127.0.0.1]"),
        "{log}"
    );
}

#[test]
fn vrfy_can_be_disabled() {
    let inst = instance("disable_vrfy_command = yes");
    let mut s = inst.connect();
    let ehlo = s.cmd("ehlo x");
    assert!(!ehlo.contains("VRFY"), "{ehlo}");
    assert_eq!(s.cmd("vrfy jerry"), "502 5.5.1 VRFY command is disabled");
}

#[test]
fn whole_transactions_in_one_write() {
    let inst = instance("");
    let mut s = inst.connect();
    // Two messages, every command in one packet (RFC 2920).
    s.send_raw(
        b"EHLO client.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<jerry@example.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\nSubject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<b@example.test>\r\nRCPT TO:<jerry@example.test>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n",
    );
    let mut replies = Vec::new();
    loop {
        let r = s.read_reply();
        if r.is_empty() {
            break;
        }
        replies.push(r.lines().last().unwrap().to_string());
    }
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        [
            "250", "250", "250", "550", "354", "250", "250", "250", "354", "250", "221"
        ],
        "{replies:#?}"
    );
    let messages = inst.wait_messages("jerry", 2);
    let all: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(
        all.iter()
            .any(|m| m.contains("\nSubject: one\n") && m.ends_with("\n\nfirst\n")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|m| m.contains("\nSubject: two\n") && m.ends_with("\n\nsecond\n")),
        "{all:?}"
    );
}

#[test]
fn message_content_is_byte_exact_and_cannot_be_smuggled() {
    let inst = instance("");
    let mut s = inst.connect();
    assert!(s.cmd("ehlo x").starts_with("250"));
    assert_eq!(s.cmd("mail from:<a@example.test>"), "250 2.1.0 Ok");
    assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
    assert!(s.cmd("data").starts_with("354"));
    // Dot-stuffed lines, 8-bit text, a bare CR, trailing white space, and
    // the smuggling tricks: none of them may end the message.
    s.send_raw(
        "Subject: exact\r\n\r\n..leading dot\r\n...\r\nutf-8: héllo wörld \r\ncr\rinside\r\nsmuggle\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<jerry@example.test>\r\nDATA\r\nsmuggled\r\n\n.\r\nsecond\r.\rthird\r\n.\r\n"
            .as_bytes(),
    );
    let r = s.read_reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert_eq!(s.cmd("quit"), "221 2.0.0 Bye");
    let messages = inst.wait_messages("jerry", 1);
    let m = &messages[0];
    let body_at = m.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    // In the Maildir file CRLF is LF; the bare CR stays.
    assert_eq!(
        String::from_utf8_lossy(&m[body_at..]),
        ".leading dot\n..\nutf-8: héllo wörld \ncr\rinside\nsmuggle\n.\nMAIL FROM:<evil@example.org>\nRCPT TO:<jerry@example.test>\nDATA\nsmuggled\n\n.\nsecond\r.\rthird\n"
    );
    // Exactly one message arrived.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(inst.maildir_new("jerry").len(), 1);
}

#[test]
fn bare_newlines_can_be_refused() {
    let inst = instance("smtpd_forbid_bare_newline = reject");
    let mut s = inst.connect();
    s.cmd("ehlo x");
    s.cmd("mail from:<a@example.test>");
    s.cmd("rcpt to:<jerry@example.test>");
    s.cmd("data");
    s.send_raw(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n");
    assert_eq!(s.read_reply(), "550 5.5.2 Error: bare <LF> received\r\n");
    assert_eq!(s.cmd("noop"), "250 2.0.0 Ok");
}

#[test]
fn size_limits() {
    let inst = instance("message_size_limit = 2000");
    let mut s = inst.connect();
    let ehlo = s.cmd("ehlo x");
    assert!(ehlo.contains("250-SIZE 2000\r\n"), "{ehlo}");
    assert_eq!(
        s.cmd("mail from:<a@example.test> SIZE=2001"),
        "552 5.3.4 Message size exceeds fixed limit"
    );
    assert_eq!(s.cmd("mail from:<a@example.test> SIZE=100"), "250 2.1.0 Ok");
    assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
    s.cmd("data");
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(3000));
    s.send_raw(big.as_bytes());
    assert_eq!(s.read_reply(), "552 5.3.4 Error: message file too big\r\n");
    // BDAT over the limit.
    s.cmd("mail from:<a@example.test>");
    s.cmd("rcpt to:<jerry@example.test>");
    s.send_raw(format!("BDAT 3000 LAST\r\n{}", "y".repeat(3000)).as_bytes());
    assert_eq!(s.read_reply(), "552 5.3.4 Error: message file too big\r\n");
    assert_eq!(s.cmd("noop"), "250 2.0.0 Ok");
    assert!(inst.maildir_new("jerry").is_empty());
}

#[test]
fn bdat_chunks() {
    let inst = instance("");
    let mut s = inst.connect();
    s.cmd("ehlo x");
    s.cmd("mail from:<a@example.test>");
    s.cmd("rcpt to:<jerry@example.test>");
    let part1 = "Subject: chunked\r\n\r\nline one\r\n";
    let part2 = ".line two starts with a dot\r\n";
    s.send_raw(format!("BDAT {}\r\n{part1}", part1.len()).as_bytes());
    assert_eq!(
        s.read_reply(),
        format!("250 2.0.0 Ok: {} bytes\r\n", part1.len())
    );
    s.send_raw(format!("BDAT {} LAST\r\n{part2}", part2.len()).as_bytes());
    let r = s.read_reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    assert_eq!(s.cmd("data"), "503 5.5.1 Error: need RCPT command");
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(m.contains("\nSubject: chunked\n"), "{m}");
    assert!(
        m.ends_with("\n\nline one\n.line two starts with a dot\n"),
        "{m}"
    );
    // BDAT without a transaction still reads its bytes.
    s.send_raw(b"BDAT 5 LAST\r\nNOOP\rQUIT\r\n");
    assert_eq!(s.read_reply(), "503 5.5.1 Error: need MAIL command\r\n");
    assert_eq!(s.read_reply(), "221 2.0.0 Bye\r\n");
}

#[test]
fn no_open_relay() {
    // The client is not in mynetworks here.
    let inst = instance("mynetworks = 192.0.2.0/24");
    let mut s = inst.connect();
    s.cmd("ehlo outside.example");
    assert_eq!(s.cmd("mail from:<someone@example.org>"), "250 2.1.0 Ok");
    assert_eq!(
        s.cmd("rcpt to:<victim@example.org>"),
        "554 5.7.1 <victim@example.org>: Relay access denied"
    );
    for trick in [
        "<victim%example.org@example.test>",
        "<\"victim@example.org\"@example.test>",
        "<@example.test:victim@example.org>",
        "<victim@example.org.>",
        "<example.org!victim@example.test>",
        "<victim@example.org@example.test>",
        "<victim@[192.0.2.7]>",
        "<victim@EXAMPLE.ORG>",
    ] {
        let r = s.cmd(&format!("rcpt to:{trick}"));
        assert!(r.starts_with('5'), "{trick}: {r}");
    }
    // Mail for our own users is still welcome.
    assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
    let log = inst.wait_log("Relay access denied");
    assert!(log.contains("NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 554 5.7.1 <victim@example.org>: Relay access denied; from=<someone@example.org> to=<victim@example.org> proto=ESMTP helo=<outside.example>"), "{log}");
}

#[test]
fn dsn_parameters_are_kept_in_the_queue() {
    // Mail to another domain waits in the queue (its relay host refuses
    // connections), so its queue file can be read.
    let dead = ironpost_testkit::instance::free_port();
    let inst = instance(&format!("relayhost = [127.0.0.1]:{dead}"));
    let mut s = inst.connect();
    s.cmd("ehlo x");
    assert_eq!(
        s.cmd("mail from:<a@example.test> RET=HDRS ENVID=QQ+2B314"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        s.cmd("rcpt to:<far@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;far+40example.org"),
        "250 2.1.5 Ok"
    );
    s.cmd("data");
    s.send_raw(b"Subject: far\r\n\r\naway\r\n.\r\n");
    let r = s.read_reply();
    let id = r.trim_end().rsplit(' ').next().unwrap().to_string();
    inst.wait_log(&format!("{id}: to=<far@example.org>"));
    let file = inst.path(&format!("spool/deferred/{id}"));
    let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
    for needle in [
        "attr :envid :QQ+2B314",
        "attr :ret :HDRS",
        ":SUCCESS,DELAY",
        ":rfc822;far+40example.org",
    ] {
        assert!(text.contains(needle), "no {needle:?} in {text}");
    }
}

#[test]
fn python_smtplib_sends() {
    let inst = instance("");
    let script = format!(
        r#"
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "tom@example.test"
m["To"] = "jerry@example.test"
m["Subject"] = "smtplib"
m.set_content("Grüße aus Python\n.\nnot the end\n")
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.ehlo("python.example")
    assert s.has_extn("pipelining") and s.has_extn("smtputf8") and s.has_extn("8bitmime")
    refused = s.send_message(m, mail_options=["SMTPUTF8"])
    assert refused == {{}}, refused
    try:
        s.sendmail("tom@example.test", ["nobody@example.test"], "Subject: x\r\n\r\ny\r\n")
        raise SystemExit("unknown recipient accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["nobody@example.test"]
        assert code == 550 and b"5.1.1" in text, e.recipients
print("ok")
"#,
        port = inst.port
    );
    let out = Command::new("python3").args(["-c", &script]).run();
    assert_eq!(out.stdout.trim(), "ok", "{}", out.stderr);
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(m.contains("\nSubject: smtplib\n"), "{m}");
    assert!(m.contains("\n\nGrüße aus Python\n.\nnot the end\n"), "{m}");
}

#[test]
fn swaks_sends() {
    let inst = instance("");
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &inst.port.to_string(),
            "--from",
            "tom@example.test",
            "--to",
            "jerry@example.test",
            "--header",
            "Subject: from swaks",
            "--pipeline",
        ])
        .run();
    assert!(
        out.stdout.contains("<-  250 2.0.0 Ok: queued as "),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(m.contains("\nSubject: from swaks\n"), "{m}");
}

/// Sends messages on `n` connections until the server goes away; returns
/// the tokens of the messages it acknowledged with 250.
fn load(port: u16, threads: usize, stop_after: std::time::Duration) -> Vec<String> {
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut n = 0;
                'conn: while start.elapsed() < stop_after * 4 {
                    let Some(mut s) = Smtp::try_connect(port) else {
                        break;
                    };
                    if !s.read_reply().starts_with("220") {
                        break;
                    }
                    s.send("EHLO load.example");
                    if !s.read_reply().starts_with("250") {
                        break;
                    }
                    for _ in 0..20 {
                        n += 1;
                        let token = format!("token-{t}-{n}");
                        s.send_raw(
                            format!(
                                "MAIL FROM:<load@example.test>\r\nRCPT TO:<jerry@example.test>\r\nDATA\r\nSubject: {token}\r\n\r\n{}\r\n{token}\r\n.\r\n",
                                "body line\r\n".repeat(50)
                            )
                            .as_bytes(),
                        );
                        let replies = [s.read_reply(), s.read_reply(), s.read_reply(), s.read_reply()];
                        if replies[3].starts_with("250 2.0.0 Ok: queued as") {
                            acked.push(token);
                        } else {
                            break 'conn;
                        }
                    }
                    s.send("QUIT");
                    let _ = s.read_reply();
                }
                acked
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

#[test]
fn kill_9_loses_no_acknowledged_message() {
    let mut inst = instance("");
    let port = inst.port;
    let loader = std::thread::spawn(move || load(port, 4, std::time::Duration::from_millis(700)));
    std::thread::sleep(std::time::Duration::from_millis(700));
    inst.kill9();
    let acked = loader.join().unwrap();
    assert!(
        acked.len() > 10,
        "only {} messages were sent before the kill",
        acked.len()
    );
    inst.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let files = inst.maildir_new("jerry");
        let texts: Vec<String> = files
            .iter()
            .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
            .collect();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|t| !texts.iter().any(|m| m.ends_with(&format!("\n{t}\n"))))
            .collect();
        if missing.is_empty() {
            // Every delivered message is whole.
            for m in &texts {
                let token = m
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .expect("a subject");
                assert!(
                    m.ends_with(&format!("\n{token}\n")),
                    "a truncated message: {m}"
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} acknowledged messages lost, e.g. {:?}; mail log:\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)],
            inst.maillog()
                .lines()
                .filter(|l| !l.contains("status=sent")
                    && !l.contains(": removed")
                    && !l.contains("client=")
                    && !l.contains("message-id=")
                    && !l.contains("(queue active)")
                    && !l.contains("connect from"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn recipient_and_connection_limits() {
    let inst = instance(
        "smtpd_recipient_limit = 2\nsmtpd_client_connection_count_limit = 2\nmynetworks = 192.0.2.0/24",
    );
    let mut s = inst.connect();
    s.cmd("ehlo x");
    s.cmd("mail from:<a@example.test>");
    assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
    assert_eq!(s.cmd("rcpt to:<jerry+tag@example.test>"), "250 2.1.5 Ok");
    assert_eq!(
        s.cmd("rcpt to:<postmaster@example.test>"),
        "452 4.5.3 Error: too many recipients"
    );
    // Two connections from one client are allowed, a third is not.
    let _second = inst.connect();
    let mut third = Smtp::connect(inst.port);
    assert_eq!(
        third.read_reply(),
        "421 4.7.0 mail.example.test Error: too many connections\r\n"
    );
    assert!(third.is_closed());
    let log = inst.wait_log("Connection concurrency limit exceeded");
    assert!(
        log.contains("warning: Connection concurrency limit exceeded: 3 from localhost[127.0.0.1] for service 127.0.0.1:"),
        "{log}"
    );
    // user+tag is delivered to the user (recipient_delimiter).
    s.cmd("data");
    s.send_raw(b"Subject: tagged\r\n\r\nx\r\n.\r\n");
    assert!(s.read_reply().starts_with("250 2.0.0 Ok: queued as"));
    let all = inst.wait_messages("jerry", 2);
    let texts: Vec<String> = all
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(
        texts
            .iter()
            .any(|m| m.contains("Delivered-To: jerry+tag@example.test\n")),
        "{texts:?}"
    );
}

#[test]
fn access_table_warn_hold_and_discard() {
    let inst = instance(
        "smtpd_recipient_restrictions = check_recipient_access inline:{ \
         { jerry@example.test = WARN watch this one } }, \
         check_sender_access inline:{ ann@example.org=HOLD, { bob@example.org = DISCARD spam } }, \
         permit_mynetworks, reject_unauth_destination\n",
    );
    let etc = inst.etc().display().to_string();
    let send = |from: &str, subject: &str| {
        let mut s = inst.connect();
        s.cmd("ehlo client.example");
        s.cmd(&format!("mail from:<{from}>"));
        assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
        assert!(s.cmd("data").starts_with("354"));
        s.send_raw(format!("Subject: {subject}\r\n\r\nbody\r\n.\r\n").as_bytes());
        let r = s.read_reply();
        assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
        s.cmd("quit");
        r.trim_end().rsplit(' ').next().unwrap().to_string()
    };

    // HOLD: the message waits in the hold queue until released.
    let held = send("ann@example.org", "held");
    let log = inst.maillog();
    assert!(
        log.contains(
            "NOQUEUE: warn: RCPT from localhost[127.0.0.1]: watch this one; \
             from=<ann@example.org> to=<jerry@example.test> proto=ESMTP helo=<client.example>"
        ),
        "{log}"
    );
    assert!(
        log.contains(
            "NOQUEUE: hold: RCPT from localhost[127.0.0.1]: <ann@example.org>: \
             Sender address triggers HOLD action; from=<ann@example.org> \
             to=<jerry@example.test> proto=ESMTP helo=<client.example>"
        ),
        "{log}"
    );
    assert_eq!(inst.queue_files("hold").len(), 1);
    let q = compat("mailq").args(["-c", &etc]).run();
    assert!(q.stdout.contains(&format!("{held}!")), "{}", q.stdout);
    assert!(inst.maildir_new("jerry").is_empty());

    // DISCARD: taken, logged, dropped.
    send("bob@example.org", "dropped");
    let log = inst.wait_log("NOQUEUE: discard:");
    assert!(
        log.contains(
            "NOQUEUE: discard: RCPT from localhost[127.0.0.1]: <bob@example.org>: spam; \
             from=<bob@example.org> to=<jerry@example.test> proto=ESMTP helo=<client.example>"
        ),
        "{log}"
    );

    // Released, the held message is delivered; the discarded one never is.
    let r = compat("postsuper").args(["-c", &etc, "-H", &held]).run();
    assert_eq!(r.status, 0, "{}", r.stderr);
    let got = inst.wait_messages("jerry", 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: held"));
    inst.wait_log(&format!("{held}: removed"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(inst.maildir_new("jerry").len(), 1);
    assert!(inst.queue_files("hold").is_empty());
}
