//! Mail through the whole server: local(8) delivery to system accounts
//! (Maildir and mbox, aliases, .forward, files, commands, bounces), mail
//! posted with sendmail, s-nail and `sendmail -bs`, the queue commands
//! against a running daemon, and pflogsumm reading the mail log.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ironpost_testkit::instance::Instance;

use crate::common::*;

/// The account the fixture users get: a distinct one when the tests run
/// as root (so ownership can be checked), else our own.
fn fixture_ids() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (4321, 4321)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }
}

/// An instance where example.test is a local domain (mydestination) with
/// the system accounts of a fixture passwd file: tom and ann.
fn local_instance(extra: &str) -> (Instance, PathBuf) {
    let (uid, gid) = fixture_ids();
    let inst = Instance::new(ironpost(), "");
    let homes = inst.path("home");
    for user in ["tom", "ann"] {
        let h = homes.join(user);
        std::fs::create_dir_all(&h).unwrap();
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(
                &h,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .unwrap();
        }
    }
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
         tom:x:{uid}:{gid}:Tom:{}:/bin/sh\n\
         ann:x:{uid}:{gid}:Ann:{}:/bin/sh\n",
        homes.join("tom").display(),
        homes.join("ann").display()
    );
    std::fs::write(inst.path("etc/passwd"), passwd).unwrap();
    let main_cf = format!(
        "passwd_file = {etc}/passwd\n\
         virtual_mailbox_domains =\n\
         virtual_alias_maps =\n\
         mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\n\
         {extra}",
        etc = inst.etc().display()
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(inst.etc().join("main.cf"))
        .unwrap();
    std::io::Write::write_all(&mut f, main_cf.as_bytes()).unwrap();
    (inst, homes)
}

fn newaliases(inst: &Instance, aliases: &str) {
    std::fs::write(inst.etc().join("aliases"), aliases).unwrap();
    let out = ip("newaliases")
        .args(["-c", &inst.etc().display().to_string()])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
}

/// Waits for `n` files in a directory and returns them, sorted.
fn wait_files(dir: &Path, n: usize, inst: &Instance) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        if v.len() >= n {
            v.sort();
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} files, expected {n}; mail log:\n{}",
            dir.display(),
            v.len(),
            inst.maillog()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(inst: &Instance, from: &str, to: &[&str], body: &str) -> String {
    let mut s = inst.connect();
    assert!(s.cmd("helo client.example").starts_with("250"));
    assert_eq!(s.cmd(&format!("mail from:{from}")), "250 2.1.0 Ok");
    for r in to {
        let got = s.cmd(&format!("rcpt to:{r}"));
        assert_eq!(got, "250 2.1.5 Ok", "{r}");
    }
    assert!(s.cmd("data").starts_with("354"));
    s.send_raw(body.as_bytes());
    s.send_raw(b".\r\n");
    let r = s.read_reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    s.cmd("quit");
    r.trim_end().rsplit(' ').next().unwrap().to_string()
}

#[test]
fn local_delivery_with_aliases_forward_files_and_commands() {
    let (mut inst, homes) = local_instance("home_mailbox = Maildir/\n");
    let out_file = inst.path("archive.mbox");
    let cmd_out = inst.path("command.out");
    std::fs::write(inst.path("team.list"), "# the team\ntom\nann\n").unwrap();
    newaliases(
        &inst,
        &format!(
            "postmaster: root\nmarry: tom\nteam: :include:{}\narchive: {}\nrunner: \"|/bin/sh -c 'cat > {}'\"\nghost: nosuchuser\n",
            inst.path("team.list").display(),
            out_file.display(),
            cmd_out.display()
        ),
    );
    if nix::unistd::geteuid().is_root() {
        // Files and commands named in aliases run as default_privs; let
        // that account write here.
        let _ = std::fs::set_permissions(
            inst.root(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        );
    }
    inst.start();

    let mut s = inst.connect();
    s.cmd("helo client.example");
    s.cmd("mail from: root");
    assert_eq!(
        s.cmd("rcpt to:<nobody-here@example.test>"),
        "550 5.1.1 <nobody-here@example.test>: Recipient address rejected: User unknown in local recipient table"
    );
    s.cmd("quit");

    send(
        &inst,
        "<root@example.test>",
        &["tom"],
        "Subject: to tom\r\n\r\nhello tom\r\n",
    );
    let tom_new = homes.join("tom/Maildir/new");
    let files = wait_files(&tom_new, 1, &inst);
    let m = std::fs::read_to_string(&files[0]).unwrap();
    assert!(m.starts_with("Return-Path: <root@example.test>\nX-Original-To: tom\nDelivered-To: tom@example.test\nReceived: from client.example (localhost [127.0.0.1])\n"), "{m}");
    assert!(m.ends_with("\n\nhello tom\n"), "{m}");
    let (uid, _) = fixture_ids();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().uid(),
        uid,
        "the mail belongs to tom"
    );

    // An alias, and :include: to two users.
    send(
        &inst,
        "<root@example.test>",
        &["marry", "team@example.test"],
        "Subject: aliases\r\n\r\nto marry and the team\r\n",
    );
    let files = wait_files(&tom_new, 2, &inst);
    let ann = wait_files(&homes.join("ann/Maildir/new"), 1, &inst);
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Subject: aliases") && t.contains("X-Original-To: marry\n")),
        "{texts:?}"
    );
    assert!(
        std::fs::read_to_string(&ann[0])
            .unwrap()
            .contains("Subject: aliases")
    );

    // A file and a command.
    send(
        &inst,
        "<root@example.test>",
        &["archive", "runner"],
        "Subject: machines\r\n\r\nFrom the start\r\nline\r\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(out_file.exists() && cmd_out.exists()) {
        assert!(
            Instant::now() < deadline,
            "no file or command delivery:\n{}",
            inst.maillog()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let archived = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        archived.starts_with("From root@example.test "),
        "{archived}"
    );
    assert!(archived.contains("\n>From the start\nline\n"), "{archived}");
    let piped = std::fs::read_to_string(&cmd_out).unwrap();
    assert!(
        piped.contains("Subject: machines\n") && piped.contains("\nFrom the start\n"),
        "{piped}"
    );

    // ~/.forward sends tom's mail to ann (and keeps a copy with \tom).
    std::fs::write(homes.join("tom/.forward"), "ann, \\tom\n").unwrap();
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(
            &homes.join("tom/.forward"),
            Some(nix::unistd::Uid::from_raw(uid)),
            None,
        )
        .unwrap();
    }
    send(
        &inst,
        "<root@example.test>",
        &["tom"],
        "Subject: forwarded\r\n\r\nvia .forward\r\n",
    );
    let ann = wait_files(&homes.join("ann/Maildir/new"), 2, &inst);
    assert!(ann.iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap()
            .contains("Subject: forwarded")
    }));
    wait_files(&tom_new, 3, &inst);

    // A failed delivery comes back to the sender as a DSN.
    send(
        &inst,
        "<tom@example.test>",
        &["ghost"],
        "Subject: lost\r\n\r\nnobody home\r\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let bounce = loop {
        let found = std::fs::read_dir(&tom_new)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .find(|t| t.contains("Undelivered Mail Returned to Sender"));
        if let Some(b) = found {
            break b;
        }
        assert!(Instant::now() < deadline, "no bounce:\n{}", inst.maillog());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(bounce.contains("Return-Path: <>\n"), "{bounce}");
    assert!(
        bounce.contains("Content-Type: multipart/report; report-type=delivery-status;"),
        "{bounce}"
    );
    assert!(
        bounce.contains("Final-Recipient: rfc822; nosuchuser@example.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.1.1"), "{bounce}");
    assert!(bounce.contains("Subject: lost"), "{bounce}");
    let log = inst.wait_log("sender non-delivery notification");
    assert!(log.contains("relay=local"), "{log}");
    assert!(log.contains("status=bounced"), "{log}");
}

#[test]
fn mbox_delivery_with_from_line_and_quoting() {
    let (mut inst, _homes) = local_instance("");
    inst.start();
    send(
        &inst,
        "<root@example.test>",
        &["tom@example.test"],
        "Subject: mbox\r\n\r\nFrom here on\r\n>From quoted\r\nend\r\n",
    );
    send(
        &inst,
        "<>",
        &["tom@example.test"],
        "Subject: second\r\n\r\nagain\r\n",
    );
    let spool = inst.path("mail/tom");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&spool).unwrap_or_default();
        if text.matches("\nFrom ").count() + usize::from(text.starts_with("From ")) >= 2 {
            assert!(text.starts_with("From root@example.test "), "{text}");
            assert!(text.contains("\n\nFrom MAILER-DAEMON "), "{text}");
            // Postfix quotes only "From " lines (mboxo), as mail(1) expects.
            assert!(
                text.contains("\n>From here on\n>From quoted\nend\n\n"),
                "{text}"
            );
            assert!(text.contains("Delivered-To: tom@example.test\n"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mbox:\n{text}\nlog:\n{}",
            inst.maillog()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (uid, _) = fixture_ids();
    assert_eq!(std::fs::metadata(&spool).unwrap().uid(), uid);
}

/// The sendmail command linked under its name, with the instance's
/// configuration.
fn sendmail(inst: &Instance) -> Command {
    Command::new(compat_bin(ironpost(), "sendmail"))
        .env("MAIL_CONFIG", &inst.etc().display().to_string())
}

#[test]
fn sendmail_s_nail_and_bs_reach_the_mailbox() {
    let mut inst = Instance::new(ironpost(), "");
    inst.start();
    let out = sendmail(&inst)
        .args(["-t", "-i"])
        .stdin("To: jerry\nSubject: via sendmail -t\n\nposted\n.\nstill posted\n")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(m.contains("Subject: via sendmail -t\n"), "{m}");
    assert!(m.contains("\nposted\n.\nstill posted\n"), "{m}");
    assert!(m.contains("(ironpost, from userid "), "{m}");

    // Debian's s-nail, as `mail -s hi jerry < body`, through our sendmail.
    let link = compat_bin(ironpost(), "sendmail");
    let out = Command::new("s-nail")
        .args([
            "-n",
            "-S",
            &format!("mta={}", link.display()),
            "-s",
            "hi from mail",
            "jerry",
        ])
        .env("MAIL_CONFIG", &inst.etc().display().to_string())
        .env("HOME", &inst.root().display().to_string())
        .stdin("How are you?\n")
        .run();
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    let all = inst.wait_messages("jerry", 2);
    let m = all
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("Subject: hi from mail"))
        .expect("the s-nail message");
    assert!(
        m.contains("\nTo: jerry") || m.contains("\nTo: <jerry"),
        "{m}"
    );
    assert!(m.ends_with("\nHow are you?\n"), "{m}");

    // sendmail -bs: an SMTP session on standard input.
    let out = sendmail(&inst)
        .arg("-bs")
        .stdin("EHLO me\r\nMAIL FROM:<tom@example.test>\r\nRCPT TO:<jerry@example.test>\r\nDATA\r\nSubject: bs\r\n\r\nover stdin\r\n.\r\nQUIT\r\n")
        .run();
    assert!(
        out.stdout
            .starts_with("220 mail.example.test ESMTP ironpost\r\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("250 2.0.0 Ok: queued as "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("221 2.0.0 Bye\r\n"), "{}", out.stdout);
    let all = inst.wait_messages("jerry", 3);
    assert!(
        all.iter()
            .any(|m| String::from_utf8_lossy(m).contains("Subject: bs\n"))
    );
}

#[test]
fn queue_commands_with_a_running_daemon() {
    // Mail to another domain waits in the deferred queue: the relay host
    // refuses connections.
    let dead = ironpost_testkit::instance::free_port();
    let mut inst = Instance::new(ironpost(), &format!("relayhost = [127.0.0.1]:{dead}"));
    inst.start();
    let etc = inst.etc().display().to_string();
    let mut s = inst.connect();
    s.cmd("ehlo x");
    s.cmd("mail from:<tom@example.test>");
    s.cmd("rcpt to:<far@example.org>");
    s.cmd("data");
    s.send_raw(b"Subject: far\r\n\r\naway\r\n.\r\n");
    let id = s
        .read_reply()
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    inst.wait_log(&format!("{id}: to=<far@example.org>"));
    let out = compat("mailq").args(["-c", &etc]).run();
    let lines = out.lines();
    assert_eq!(
        lines[0], "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------",
        "{}",
        out.stdout
    );
    assert!(lines[1].starts_with(&id), "{}", out.stdout);
    assert!(lines[1].ends_with("tom@example.test"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            " (connect to 127.0.0.1[127.0.0.1]:{dead}: Connection refused)\n"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\n                                         far@example.org\n"),
        "{}",
        out.stdout
    );
    assert!(
        lines.last().unwrap().starts_with("-- ")
            && lines.last().unwrap().ends_with(" Kbytes in 1 Request."),
        "{}",
        out.stdout
    );
    // postqueue -f reaches the daemon.
    let out = compat("postqueue").args(["-c", &etc, "-f"]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    // postcat shows it; postsuper deletes it.
    let out = compat("postcat").args(["-c", &etc, "-q", &id]).run();
    assert!(out.stdout.contains("Subject: far"), "{}", out.stdout);
    let out = compat("postsuper").args(["-c", &etc, "-d", &id]).run();
    assert!(
        out.stderr.contains(&format!("postsuper: {id}: removed")),
        "{}",
        out.stderr
    );
    let out = compat("mailq").args(["-c", &etc]).run();
    assert_eq!(out.stdout, "Mail queue is empty\n");
    // The daemon's own status.
    let out = ip("status").args(["-c", &etc]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("the mail system is running: PID: "),
        "{}",
        out.stderr
    );
}

#[test]
fn pflogsumm_reads_the_mail_log() {
    let mut inst = Instance::new(ironpost(), "mynetworks = 192.0.2.0/24");
    inst.start();
    for n in 0..3 {
        let mut s = inst.connect();
        s.cmd("ehlo client.example");
        s.cmd("mail from:<tom@example.test>");
        s.cmd("rcpt to:<jerry@example.test>");
        s.cmd("data");
        s.send_raw(format!("Subject: {n}\r\n\r\nbody\r\n.\r\n").as_bytes());
        s.read_reply();
        s.cmd("quit");
    }
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    s.cmd("mail from:<spam@example.org>");
    s.cmd("rcpt to:<victim@example.org>");
    s.cmd("quit");
    inst.wait_messages("jerry", 3);
    inst.wait_log("removed");
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("pflogsumm")
        .args([
            "--syslog-name=ironpost",
            "--smtpd-stats",
            &inst.path("log/maillog").display().to_string(),
        ])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let grab = |label: &str| -> u64 {
        out.stdout
            .lines()
            .find(|l| {
                l.trim_end().ends_with(label)
                    && l.trim_start().starts_with(|c: char| c.is_ascii_digit())
            })
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no \"{label}\" in:\n{}", out.stdout))
    };
    assert_eq!(grab("received"), 3, "{}", out.stdout);
    assert_eq!(grab("delivered"), 3, "{}", out.stdout);
    assert_eq!(grab("rejected (25%)"), 1, "{}", out.stdout);
    // Our four sessions (the harness waits for the daemon on its control
    // socket, not with an SMTP connection).
    let log = inst.maillog();
    assert_eq!(log.matches(": connect from ").count(), 4, "{log}");
    assert_eq!(grab("connections"), 4, "{}\n{log}", out.stdout);
}

#[test]
fn temporary_failures_are_retried_and_loops_bounce() {
    let (mut inst, homes) = local_instance("home_mailbox = Maildir/\n");
    let flag = inst.path("flag");
    let out = inst.path("flaky.out");
    newaliases(
        &inst,
        &format!(
            "flaky: \"|/bin/sh -c 'test -e {} && cat > {} || exit 75'\"\n",
            flag.display(),
            out.display()
        ),
    );
    if nix::unistd::geteuid().is_root() {
        let _ = std::fs::set_permissions(
            inst.root(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        );
    }
    inst.start();
    let etc = inst.etc().display().to_string();

    // EX_TEMPFAIL from the command: deferred, kept, retried on a flush.
    let id = send(
        &inst,
        "<ann@example.test>",
        &["flaky"],
        "Subject: flaky\r\n\r\ntry again\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<flaky@example.test>"));
    assert!(log.contains("status=deferred"), "{log}");
    let q = compat("mailq").args(["-c", &etc]).run();
    assert!(q.stdout.contains(&id), "{}", q.stdout);
    std::fs::write(&flag, "").unwrap();
    let f = compat("postqueue").args(["-c", &etc, "-f"]).run();
    assert_eq!(f.status, 0, "{}", f.stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.exists() {
        assert!(
            Instant::now() < deadline,
            "not retried:\n{}",
            inst.maillog()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    inst.wait_log(&format!("{id}: removed"));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("Subject: flaky")
    );

    // A message that was already delivered to tom comes back: a loop.
    send(
        &inst,
        "<ann@example.test>",
        &["tom@example.test"],
        "Delivered-To: tom@example.test\r\nSubject: looping\r\n\r\nround and round\r\n",
    );
    let ann_new = homes.join("ann/Maildir/new");
    let files = wait_files(&ann_new, 1, &inst);
    let bounce = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        bounce.contains("mail forwarding loop for tom@example.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Status: 5.4.6"), "{bounce}");
    assert!(
        !homes.join("tom/Maildir/new").exists()
            || std::fs::read_dir(homes.join("tom/Maildir/new"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn virtual_mail_is_in_the_maildir_before_the_250() {
    let mut inst = Instance::new(ironpost(), "");
    inst.start();
    let etc = inst.etc().display().to_string();
    let out = ip("user")
        .args(["add", "tom@example.test", "--password-stdin", "-c", &etc])
        .stdin("secret\n")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);

    // One virtual mailbox: delivered before the reply, no queue file.
    let id = send(
        &inst,
        "<ann@example.org>",
        &["<jerry@example.test>"],
        "Subject: at once\r\n\r\nbody\r\n",
    );
    let new = inst.maildir_new("jerry");
    assert_eq!(new.len(), 1, "not in the Maildir at the 250");
    let msg = std::fs::read_to_string(&new[0]).unwrap();
    assert!(msg.contains(&format!("with SMTP id {id}")), "{msg}");
    assert!(msg.starts_with("Return-Path: <ann@example.org>\n"), "{msg}");
    let q = compat("mailq").args(["-c", &etc]).run();
    assert_eq!(q.stdout.trim(), "Mail queue is empty", "{}", q.stdout);
    let log = inst.wait_log(&format!("{id}: removed"));
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
    let shapes = ["/smtpd[", "/cleanup[", "/qmgr[", "/virtual[", "/qmgr["];
    assert_eq!(lines.len(), shapes.len(), "{log}");
    for (l, s) in lines.iter().zip(shapes) {
        assert!(l.contains(s), "{l}\n{log}");
    }
    assert!(
        lines[2].contains("from=<ann@example.org>, size=")
            && lines[2].ends_with("nrcpt=1 (queue active)"),
        "{log}"
    );
    assert!(
        lines[3].contains("to=<jerry@example.test>, relay=virtual, delay=")
            && lines[3].contains("dsn=2.0.0, status=sent (delivered to maildir)"),
        "{log}"
    );

    // Two, one of which cannot be written to now (a file where its
    // Maildir goes): jerry's copy at once, tom's through the queue,
    // deferred, then delivered on a flush; jerry gets no second copy.
    let tom = inst.path("vmail/example.test/tom");
    std::fs::write(&tom, "in the way").unwrap();
    let id = send(
        &inst,
        "<ann@example.org>",
        &["<jerry@example.test>", "<tom@example.test>"],
        "Subject: half\r\n\r\nbody\r\n",
    );
    assert_eq!(inst.maildir_new("jerry").len(), 2);
    let log = inst.wait_log(&format!("{id}: to=<tom@example.test>"));
    assert!(
        log.contains(&format!("{id}: to=<tom@example.test>, relay=virtual")),
        "{log}"
    );
    let tom_line = log
        .lines()
        .rfind(|l| l.contains(&format!("{id}: to=<tom")))
        .unwrap();
    assert!(tom_line.contains("status=deferred"), "{log}");
    assert_eq!(
        log.matches(&format!("{id}: to=<jerry@example.test>"))
            .count(),
        1,
        "{log}"
    );
    let q = compat("mailq").args(["-c", &etc]).run();
    assert!(q.stdout.contains(&id), "{}", q.stdout);
    assert!(q.stdout.contains("tom@example.test"), "{}", q.stdout);
    assert!(!q.stdout.contains("jerry@example.test"), "{}", q.stdout);
    std::fs::remove_file(&tom).unwrap();
    let f = compat("postqueue").args(["-c", &etc, "-f"]).run();
    assert_eq!(f.status, 0, "{}", f.stderr);
    inst.wait_log(&format!("{id}: removed"));
    let got = inst.wait_messages("tom", 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: half"));
    assert_eq!(inst.maildir_new("jerry").len(), 2);
    let log = inst.maillog();
    assert_eq!(
        log.matches(&format!("{id}: to=<jerry@example.test>"))
            .count(),
        1,
        "{log}"
    );

    // smtpd_virtual_delivery = no: through the queue, as Postfix does;
    // the same log lines.
    inst.append_main_cf("smtpd_virtual_delivery = no\n");
    inst.stop();
    inst.start();
    let id = send(
        &inst,
        "<ann@example.org>",
        &["<jerry@example.test>"],
        "Subject: queued\r\n\r\nbody\r\n",
    );
    inst.wait_log(&format!("{id}: removed"));
    assert_eq!(inst.wait_messages("jerry", 3).len(), 3);
}
