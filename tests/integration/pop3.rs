//! POP3 with real clients over real sockets: Python's poplib (USER/PASS,
//! STLS, POP3S, APOP), curl's pop3:// and pop3s://, fetchmail and
//! getmail6 fetching into local files; the exact replies of a session by
//! hand; UIDLs stable across restarts; nothing deleted when a session
//! drops; sessions and deliveries at the same time; the plaintext rules;
//! the log lines.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpStream};
use std::time::Duration;

use ironpost_testkit::instance::{Instance, free_port};

use crate::common::*;

/// A raw POP3 connection, line by line.
struct Pop {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Pop {
    fn connect(ip: IpAddr, port: u16) -> Pop {
        let w = TcpStream::connect((ip, port)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Pop {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end_matches(['\r', '\n']).to_string()
    }

    fn cmd(&mut self, c: &str) -> String {
        write!(self.w, "{c}\r\n").unwrap();
        self.line()
    }

    /// The lines of a multi-line answer up to the final ".".
    fn multi(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return v;
            }
            v.push(l);
        }
    }
}

#[test]
fn a_session_by_hand() {
    let inst = started("");
    deliver(
        &inst,
        "Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\nlast line\r\n",
    );
    inst.wait_messages("jerry", 1);
    let mut p = Pop::connect(inst.ip, inst.pop3_port);
    assert_eq!(p.line(), "+OK ironpost ready.");
    assert_eq!(p.cmd("STAT"), "-ERR Unknown command.");
    assert_eq!(p.cmd("CAPA"), "+OK");
    let capa = p.multi();
    assert_eq!(
        capa,
        [
            "CAPA",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "PIPELINING",
            "AUTH-RESP-CODE",
            "EXPIRE NEVER",
            "UTF8 USER",
            "STLS",
            "USER",
            "SASL PLAIN LOGIN"
        ]
    );
    // RFC 6856: UTF8 before login only.
    assert_eq!(p.cmd("UTF8"), "+OK UTF8 enabled");
    assert_eq!(p.cmd("PASS secret"), "-ERR No username given.");
    assert_eq!(p.cmd("user jerry@example.test"), "+OK");
    assert_eq!(p.cmd("pass wrong"), "-ERR [AUTH] Authentication failed.");
    assert_eq!(p.cmd("user jerry@example.test"), "+OK");
    assert_eq!(p.cmd("pass secret"), "+OK Logged in.");
    assert_eq!(p.cmd("USER again"), "-ERR Unknown command: USER");
    assert_eq!(p.cmd("UTF8"), "-ERR Unknown command: UTF8");
    let size = {
        let stat = p.cmd("STAT");
        let f: Vec<&str> = stat.split(' ').collect();
        assert_eq!((f[0], f[1]), ("+OK", "1"), "{stat}");
        f[2].parse::<u64>().unwrap()
    };
    assert_eq!(p.cmd("LIST"), "+OK 1 messages:");
    assert_eq!(p.multi(), [format!("1 {size}")]);
    assert_eq!(p.cmd("LIST 2"), "-ERR There's no message 2.");
    assert_eq!(p.cmd("LIST x"), "-ERR Invalid message number: x");
    assert_eq!(p.cmd("RETR 1"), format!("+OK {size} octets"));
    let lines = p.multi();
    // Dot-stuffed on the wire; the client removes one dot.
    let tail: Vec<&str> = lines.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(tail, ["last line", "...two dots", "..leading dot"]);
    // The size is what was sent, CRLF included, before stuffing.
    let sent: usize = lines
        .iter()
        .map(|l| {
            l.strip_prefix('.')
                .filter(|_| l.starts_with(".."))
                .unwrap_or(l)
                .len()
                + 2
        })
        .sum();
    assert_eq!(sent as u64, size);
    // The logout line counts what RETR sent, as Dovecot does: the status
    // line and the stuffed lines, not the final ".".
    let retr_bytes =
        format!("+OK {size} octets\r\n").len() + lines.iter().map(|l| l.len() + 2).sum::<usize>();
    // Two lines were stuffed with a dot each.
    let status = "+OK  octets\r\n".len() + size.to_string().len();
    assert_eq!(retr_bytes as u64, status as u64 + size + 2);
    assert_eq!(p.cmd("TOP 1 0"), "+OK");
    let head = p.multi();
    assert_eq!(head.last().map(String::as_str), Some(""));
    assert!(head.iter().any(|l| l == "Subject: dots"), "{head:?}");
    assert_eq!(p.cmd("UIDL 1").split(' ').count(), 3);
    assert_eq!(p.cmd("DELE 1"), "+OK Marked to be deleted.");
    assert_eq!(p.cmd("DELE 1"), "-ERR Message is deleted.");
    assert_eq!(p.cmd("RETR 1"), "-ERR Message is deleted.");
    assert_eq!(p.cmd("STAT"), "+OK 0 0");
    assert_eq!(p.cmd("RSET"), "+OK");
    assert_eq!(p.cmd("STAT"), format!("+OK 1 {size}"));
    assert_eq!(p.cmd("NOOP"), "+OK");
    assert_eq!(p.cmd("DELE 1"), "+OK Marked to be deleted.");
    assert_eq!(p.cmd("QUIT"), "+OK Logging out, messages deleted.");
    assert!(inst.maildir_new("jerry").is_empty());
    let log = inst.wait_log("Disconnected: Logged out");
    assert!(
        log.contains("pop3-login: Login: user=<jerry@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid="),
        "{log}"
    );
    assert!(
        log.contains("pop3(jerry@example.test): Disconnected: Logged out top=1/")
            && log.contains(&format!(", retr=1/{retr_bytes}, del=1/1, size={size}")),
        "{log}"
    );
    // Pipelined commands, answered in order.
    deliver(&inst, "Subject: again\r\n\r\nx\r\n");
    inst.wait_messages("jerry", 1);
    let mut p = Pop::connect(inst.ip, inst.pop3_port);
    p.line();
    write!(
        p.w,
        "USER jerry@example.test\r\nPASS secret\r\nSTAT\r\nQUIT\r\n"
    )
    .unwrap();
    assert_eq!(p.line(), "+OK");
    assert_eq!(p.line(), "+OK Logged in.");
    assert!(p.line().starts_with("+OK 1 "));
    assert_eq!(p.line(), "+OK Logging out.");
}

#[test]
fn python_poplib_with_stls_pop3s_and_apop() {
    let mut inst = Instance::new(
        ironpost(),
        "auth_failure_delay = 0s\nauth_mechanisms = plain login apop",
    );
    // APOP needs the password in plain text: a passwd-file user (whose
    // mailbox is in the directory).
    std::fs::write(inst.etc().join("users"), "ann@example.test:{PLAIN}pencil\n").unwrap();
    inst.append_main_cf(&format!(
        "auth_passwd_file = {}/users",
        inst.etc().display()
    ));
    let out = ip("user")
        .args(["add", "ann@example.test", "--password-stdin", "-c"])
        .arg(inst.etc().display().to_string())
        .stdin("other\n")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    inst.start();
    deliver(&inst, "Subject: for poplib\r\n\r\nhello\r\n");
    inst.wait_messages("jerry", 1);
    let (port, tls_port) = (inst.pop3_port, inst.pop3s_port);
    let out = python(&format!(
        r#"
import poplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3("127.0.0.1", {port})
assert p.getwelcome().startswith(b"+OK ironpost ready. <"), p.getwelcome()
p.stls(context=ctx)
assert "STLS" not in p.capa(), p.capa()
p.user("jerry@example.test"); p.pass_("secret")
n, size = p.stat()
resp, lines, octets = p.retr(1)
assert b"Subject: for poplib" in lines and octets == size, (lines, octets, size)
uidl = p.uidl(1)
p.quit()
q = poplib.POP3_SSL("127.0.0.1", {tls_port}, context=ctx)
q.user("jerry@example.test"); q.pass_("secret")
assert q.uidl(1) == uidl, (q.uidl(1), uidl)
q.dele(1)
q.quit()
a = poplib.POP3("127.0.0.1", {port})
a.apop("ann@example.test", "pencil")
print(a.stat())
a.quit()
a = poplib.POP3("127.0.0.1", {port})
try:
    a.apop("ann@example.test", "wrong")
    raise SystemExit("wrong APOP accepted")
except poplib.error_proto as e:
    print(e)
"#
    ));
    assert_eq!(out, "(0, 0)\nb'-ERR [AUTH] Authentication failed.'\n");
    assert!(inst.maildir_new("jerry").is_empty());
    let log = inst.wait_log("method=APOP");
    assert!(log.contains(", TLS\n") || log.contains(", TLS"), "{log}");
}

#[test]
fn curl_fetchmail_and_getmail() {
    let inst = started("");
    for n in 1..=3 {
        deliver(&inst, &format!("Subject: number {n}\r\n\r\nbody {n}\r\n"));
    }
    inst.wait_messages("jerry", 3);
    let port = inst.pop3_port;
    // curl: a listing, then a message, over pop3:// and pop3s://.
    let out = Command::new("curl")
        .args(["-s", "-u", "jerry@example.test:secret"])
        .arg(format!("pop3://127.0.0.1:{port}/"))
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    let out = Command::new("curl")
        .args(["-s", "-k", "-u", "jerry@example.test:secret"])
        .arg(format!("pop3s://127.0.0.1:{}/2", inst.pop3s_port))
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Subject: number 2"), "{}", out.stdout);
    // fetchmail, keeping the mail on the server, into a file.
    let dir = tempfile::tempdir().unwrap();
    let fetched = dir.path().join("fetchmail.mbox");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 service {port} protocol pop3 user \"jerry@example.test\" password \"secret\" \
             keep sslproto '' mda \"/bin/sh -c 'cat >> {}'\"\n",
            fetched.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .args(["-f"])
        .arg(rc.display().to_string())
        .args(["--nodetach", "--nosyslog", "-s"])
        .env("HOME", &dir.path().display().to_string())
        .env("FETCHMAILHOME", &dir.path().display().to_string())
        .run();
    assert!(
        out.status == 0 || out.status == 1,
        "{}{}",
        out.stdout,
        out.stderr
    );
    let text = std::fs::read_to_string(&fetched).unwrap_or_default();
    for n in 1..=3 {
        assert!(
            text.contains(&format!("Subject: number {n}")),
            "{text}\n{}",
            out.stderr
        );
    }
    assert_eq!(inst.maildir_new("jerry").len(), 3, "keep: nothing deleted");
    // getmail6, deleting what it took. Run as root it writes as `user`
    // (nobody), so the file is open to all.
    let gm = dir.path().join("getmail");
    std::fs::create_dir_all(&gm).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mbox = dir.path().join("getmail.mbox");
    std::fs::write(&mbox, "").unwrap();
    std::fs::set_permissions(&mbox, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(
        gm.join("getmailrc"),
        format!(
            "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = {port}\n\
             username = jerry@example.test\npassword = secret\n\n\
             [destination]\ntype = Mboxrd\npath = {}\nuser = nobody\n\n\
             [options]\ndelete = true\nread_all = true\nverbose = 0\n",
            mbox.display()
        ),
    )
    .unwrap();
    let out = Command::new("getmail")
        .arg(format!("--getmaildir={}", gm.display()))
        .run();
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert_eq!(text.matches("Subject: number").count(), 3, "{text}");
    assert!(inst.maildir_new("jerry").is_empty(), "getmail deleted them");
}

#[test]
fn uidls_survive_restarts_and_drops_delete_nothing() {
    let mut inst = started("");
    deliver(&inst, "Subject: one\r\n\r\nx\r\n");
    deliver(&inst, "Subject: two\r\n\r\ny\r\n");
    inst.wait_messages("jerry", 2);
    let uidls = |inst: &Instance| {
        let mut p = Pop::connect(inst.ip, inst.pop3_port);
        p.line();
        p.cmd("USER jerry@example.test");
        assert_eq!(p.cmd("PASS secret"), "+OK Logged in.");
        assert_eq!(p.cmd("UIDL"), "+OK");
        let v = p.multi();
        p.cmd("QUIT");
        v
    };
    let before = uidls(&inst);
    assert_eq!(before.len(), 2);
    // A session that marks a message and drops: nothing is deleted.
    let mut p = Pop::connect(inst.ip, inst.pop3_port);
    p.line();
    p.cmd("USER jerry@example.test");
    p.cmd("PASS secret");
    assert_eq!(p.cmd("DELE 1"), "+OK Marked to be deleted.");
    drop(p);
    inst.wait_log("Disconnected: Connection closed");
    assert_eq!(inst.maildir_new("jerry").len(), 2);
    // Restart, and a new delivery: the old UIDLs stay, the new one is new.
    inst.stop();
    inst.start();
    deliver(&inst, "Subject: three\r\n\r\nz\r\n");
    inst.wait_messages("jerry", 3);
    let after = uidls(&inst);
    assert_eq!(&after[..2], &before[..]);
    assert!(
        !before
            .iter()
            .any(|u| u.split(' ').nth(1) == after[2].split(' ').nth(1))
    );
}

#[test]
fn concurrent_sessions_and_deliveries() {
    let inst = started("");
    deliver(&inst, "Subject: first\r\n\r\nx\r\n");
    inst.wait_messages("jerry", 1);
    let login = |inst: &Instance| {
        let mut p = Pop::connect(inst.ip, inst.pop3_port);
        p.line();
        p.cmd("USER jerry@example.test");
        assert_eq!(p.cmd("PASS secret"), "+OK Logged in.");
        p
    };
    let mut a = login(&inst);
    let mut b = login(&inst);
    // Mail that arrives during a session shows at the next one.
    deliver(&inst, "Subject: second\r\n\r\ny\r\n");
    inst.wait_messages("jerry", 2);
    assert!(a.cmd("STAT").starts_with("+OK 1 "));
    // A deletes message 1; B, which still lists it, finds it gone.
    assert_eq!(a.cmd("DELE 1"), "+OK Marked to be deleted.");
    assert_eq!(a.cmd("QUIT"), "+OK Logging out, messages deleted.");
    assert_eq!(b.cmd("RETR 1"), "-ERR Message 1 expunged.");
    assert_eq!(b.cmd("QUIT"), "+OK Logging out.");
    let mut c = login(&inst);
    assert!(c.cmd("STAT").starts_with("+OK 1 "));
    assert_eq!(c.cmd("TOP 1 0"), "+OK");
    assert!(c.multi().iter().any(|l| l == "Subject: second"));
    c.cmd("QUIT");
}

#[test]
fn plaintext_rules_limits_and_idle_clients() {
    // The instance on 127.0.0.2; the client comes from 127.0.0.3: not the
    // same host, no TLS, so no plaintext password.
    let port = free_port();
    let mut inst = Instance::on_host(
        ironpost(),
        IpAddr::from([127, 0, 0, 2]),
        port,
        "example.test",
        "auth_failure_delay = 0s\npop3_idle_timeout = 1s",
    );
    inst.start();
    // Python binds the client's source address (std cannot bind before
    // connecting).
    let out = python(&format!(
        r#"
import socket
s = socket.socket(); s.bind(("127.0.0.3", 0)); s.connect(("127.0.0.2", {p}))
f = s.makefile("rb")
def cmd(c):
    s.sendall(c + b"\r\n"); return f.readline().rstrip(b"\r\n")
print(f.readline().rstrip(b"\r\n"))
s.sendall(b"CAPA\r\n")
capa = []
while True:
    l = f.readline().rstrip(b"\r\n")
    if l == b".": break
    capa.append(l)
print(capa)
print(cmd(b"USER jerry@example.test"))
print(cmd(b"AUTH PLAIN AGplcnJ5QGV4YW1wbGUudGVzdABzZWNyZXQ="))
print(cmd(b"X" * 2000))
"#,
        p = inst.pop3_port
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "b'+OK ironpost ready.'");
    assert!(
        !lines[1].contains("b'USER'") && !lines[1].contains("PLAIN"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("b'STLS'"), "{}", lines[1]);
    assert_eq!(
        lines[2],
        "b'-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.'"
    );
    assert_eq!(
        lines[3],
        "b'-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.'"
    );
    assert_eq!(lines[4], "b'-ERR Input buffer full, aborting'");
    // After STLS, the same login works.
    let out = python(&format!(
        r#"
import poplib, socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
class P(poplib.POP3):
    def _create_socket(self, timeout):
        s = socket.socket(); s.bind(("127.0.0.3", 0)); s.settimeout(timeout); s.connect((self.host, self.port)); return s
p = P("127.0.0.2", {p}, timeout=10)
p.stls(context=ctx)
p.user("jerry@example.test"); print(p.pass_("secret"))
p.quit()
"#,
        p = inst.pop3_port
    ));
    assert_eq!(out, "b'+OK Logged in.'\n");
    // A client that says nothing is disconnected after pop3_idle_timeout.
    let mut p = Pop::connect(IpAddr::from([127, 0, 0, 2]), inst.pop3_port);
    p.line();
    assert_eq!(p.line(), "");
    let log = inst.wait_log("Disconnected: Inactivity during authentication");
    assert!(log.contains("rip=127.0.0.1, lip=127.0.0.2"), "{log}");
    let _ = port;
}

#[test]
fn failed_logins_lock_the_client_out() {
    let inst =
        started("auth_failure_limit = 3\nauth_failure_window = 1h\nauth_failure_lockout = 1h");
    let mut p = Pop::connect(inst.ip, inst.pop3_port);
    p.line();
    for _ in 0..3 {
        p.cmd("USER jerry@example.test");
        assert_eq!(p.cmd("PASS wrong"), "-ERR [AUTH] Authentication failed.");
    }
    p.cmd("USER jerry@example.test");
    assert_eq!(
        p.cmd("PASS secret"),
        "-ERR [SYS/TEMP] Temporary authentication failure."
    );
    let log = inst.wait_log("login refused");
    assert!(log.contains("pop3-login: Disconnected"), "{log}");
}

#[test]
fn auth_with_sasl() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let inst = started("auth_mechanisms = plain login scram-sha-256");
    let mut p = Pop::connect(inst.ip, inst.pop3_port);
    p.line();
    assert_eq!(p.cmd("AUTH"), "+OK");
    assert_eq!(p.multi(), ["PLAIN", "LOGIN", "SCRAM-SHA-256"]);
    assert_eq!(
        p.cmd("AUTH CRAM-MD5"),
        "-ERR [AUTH] Unsupported authentication mechanism."
    );
    assert_eq!(
        p.cmd("AUTH PLAIN !!!"),
        "-ERR Invalid base64 data in initial response"
    );
    assert_eq!(p.cmd("AUTH PLAIN"), "+ ");
    assert_eq!(p.cmd("*"), "-ERR Authentication aborted by client.");
    assert_eq!(p.cmd("AUTH LOGIN"), format!("+ {}", b64("Username:")));
    assert_eq!(
        p.cmd(&b64("jerry@example.test")),
        format!("+ {}", b64("Password:"))
    );
    assert_eq!(p.cmd(&b64("wrong")), "-ERR [AUTH] Authentication failed.");
    assert_eq!(
        p.cmd(&format!(
            "AUTH PLAIN {}",
            b64("\0jerry@example.test\0secret")
        )),
        "+OK Logged in."
    );
    assert_eq!(p.cmd("QUIT"), "+OK Logging out.");
    let log = inst.wait_log("Disconnected: Logged out");
    assert!(log.contains("method=PLAIN"), "{log}");
    assert!(
        log.contains(
            "Aborted login (auth failed, 1 attempts): user=<jerry@example.test>, method=LOGIN"
        ),
        "{log}"
    );
}

/// A system account (passwd + shadow fixture) whose mail local(8) appends
/// to mail_spool_directory/USER as an mbox: POP3 reads it, DELE removes
/// only the chosen message from the file, and UIDLs stay put when new
/// mail arrives and across restarts.
#[test]
fn system_user_reads_the_mbox_spool() {
    let mut inst = system_user_instance();
    inst.start();
    let spool = inst.path("mail/tom");
    let send = |inst: &Instance, subject: &str| {
        let mut s = inst.connect();
        s.cmd("ehlo client.example");
        s.cmd("mail from:<ann@example.test>");
        assert_eq!(s.cmd("rcpt to:<tom@example.test>"), "250 2.1.5 Ok");
        s.cmd("data");
        s.send_raw(
            format!("Subject: {subject}\r\n\r\nFrom the {subject} body\r\n.\r\n").as_bytes(),
        );
        assert!(s.read_reply().starts_with("250 "));
        s.cmd("quit");
    };
    let wait_count = |inst: &Instance, n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&spool).unwrap_or_default();
            if text.matches("Subject: ").count() == n {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "mbox:\n{text}\nlog:\n{}",
                inst.maillog()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    send(&inst, "one");
    send(&inst, "two");
    wait_count(&inst, 2);

    let login = |inst: &Instance| {
        let mut p = Pop::connect(inst.ip, inst.pop3_port);
        assert!(p.line().starts_with("+OK "));
        assert_eq!(p.cmd("USER tom"), "+OK");
        assert_eq!(p.cmd("PASS secret"), "+OK Logged in.");
        p
    };
    let mut p = login(&inst);
    let stat = p.cmd("STAT");
    assert!(stat.starts_with("+OK 2 "), "{stat}");
    assert_eq!(p.cmd("UIDL"), "+OK");
    let uidls = p.multi();
    assert_eq!(uidls.len(), 2, "{uidls:?}");
    assert_eq!(p.cmd("LIST"), "+OK 2 messages:");
    let sizes = p.multi();
    let size1: usize = sizes[0].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(p.cmd("RETR 1").starts_with("+OK "));
    let lines = p.multi();
    // The mbox "From " separator is not part of the message; a body line
    // local(8) quoted stays quoted, as with Dovecot (mboxo quoting cannot
    // be undone without guessing); the size LIST announced is the size
    // RETR sent.
    assert!(!lines[0].starts_with("From "), "{lines:?}");
    assert!(lines.contains(&"Subject: one".to_string()), "{lines:?}");
    assert!(
        lines.contains(&">From the one body".to_string()),
        "{lines:?}"
    );
    let octets: usize = lines.iter().map(|l| l.len() + 2).sum();
    assert_eq!(octets, size1, "{lines:?}");
    assert_eq!(p.cmd("DELE 1"), "+OK Marked to be deleted.");
    assert!(p.cmd("QUIT").starts_with("+OK "));
    drop(p);
    let text = wait_count(&inst, 1);
    assert!(text.starts_with("From ann@example.test "), "{text}");
    assert!(text.contains("Subject: two") && !text.contains("Subject: one"));

    // New mail, then a restart: message two keeps its UIDL.
    send(&inst, "three");
    wait_count(&inst, 2);
    inst.stop();
    inst.start();
    let mut p = login(&inst);
    assert_eq!(p.cmd("UIDL"), "+OK");
    let after = p.multi();
    assert_eq!(after.len(), 2, "{after:?}");
    let uid_of = |l: &str| l.split(' ').nth(1).unwrap().to_string();
    assert_eq!(uid_of(&after[0]), uid_of(&uidls[1]));
    assert_ne!(uid_of(&after[1]), uid_of(&uidls[0]));
    assert_ne!(uid_of(&after[1]), uid_of(&uidls[1]));
    assert!(p.cmd("TOP 2 0").starts_with("+OK"));
    let head = p.multi();
    assert!(head.contains(&"Subject: three".to_string()), "{head:?}");
    p.cmd("QUIT");
    inst.wait_log("pop3(tom)");
}
