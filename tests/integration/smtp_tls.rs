//! TLS (RFC 3207) with the certificate quickstart makes: STARTTLS with
//! Python's smtplib, swaks and openssl s_client; nothing pipelined after
//! STARTTLS is executed; smtpd_tls_security_level = encrypt; smtps
//! (wrapper mode) on a second listener.

use ironpost_testkit::instance::{Instance, free_port};

use crate::common::*;

#[test]
fn starttls_with_real_clients() {
    let mut inst = Instance::new(ironpost(), "");
    inst.start();
    let port = inst.port;
    let out = python(&format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", {port}) as s:
    s.ehlo("python.example")
    assert s.has_extn("starttls"), s.esmtp_features
    code, text = s.starttls(context=ctx)
    assert code == 220 and text == b"2.0.0 Ready to start TLS", (code, text)
    s.ehlo("python.example")
    assert not s.has_extn("starttls"), s.esmtp_features
    print(s.sock.version())
    s.sendmail("tom@example.test", ["jerry@example.test"], "Subject: over tls\r\n\r\nsecret\r\n")
"#
    ));
    assert_eq!(out.trim(), "TLSv1.3");
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(m.contains("\n\t(using TLSv1.3 with cipher TLS_"), "{m}");
    assert!(m.contains(" with ESMTPS id "), "{m}");
    inst.wait_log(
        "Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 with cipher TLS_",
    );

    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--from",
            "tom@example.test",
            "--to",
            "jerry@example.test",
            "--tls",
        ])
        .run();
    assert!(
        out.stdout.contains("=== TLS started with cipher"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("250 2.0.0 Ok: queued as "),
        "{}",
        out.stdout
    );

    let out = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-brief",
        ])
        .stdin("QUIT\r\n")
        .run();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("Protocol version: TLSv1.3"), "{text}");
    assert!(text.contains("mail.example.test"), "{text}");
}

#[test]
fn commands_pipelined_after_starttls_are_discarded() {
    let mut inst = Instance::new(ironpost(), "");
    inst.start();
    let out = python(&format!(
        r#"
import socket, ssl
s = socket.create_connection(("127.0.0.1", {port}))
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l.rstrip())
        if l[3:4] != "-":
            return lines
reply()
s.sendall(b"EHLO x\r\n"); reply()
# The injection: MAIL rides in the same packet as STARTTLS.
s.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
assert reply() == ["220 2.0.0 Ready to start TLS"]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="mail.example.test")
g = t.makefile("rb")
def treply():
    lines = []
    while True:
        l = g.readline().decode()
        lines.append(l.rstrip())
        if l[3:4] != "-":
            return lines
t.sendall(b"EHLO x\r\n"); treply()
t.sendall(b"RCPT TO:<jerry@example.test>\r\n"); print(treply()[-1])
t.sendall(b"STARTTLS\r\n"); print(treply()[-1])
"#,
        port = inst.port
    ));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "503 5.5.1 Error: need MAIL command",
            "554 5.5.1 Error: TLS already active"
        ]
    );
}

#[test]
fn encrypt_level_and_smtps() {
    let mut inst = Instance::new(ironpost(), "smtpd_tls_security_level = encrypt");
    let smtps = free_port();
    let mut master = std::fs::read_to_string(inst.etc().join("master.cf")).unwrap();
    master.push_str(&format!(
        "127.0.0.1:{smtps} inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n"
    ));
    std::fs::write(inst.etc().join("master.cf"), master).unwrap();
    inst.start();
    let mut s = inst.connect();
    s.cmd("ehlo x");
    assert_eq!(
        s.cmd("mail from:<tom@example.test>"),
        "530 5.7.0 Must issue a STARTTLS command first"
    );
    let out = python(&format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP_SSL("127.0.0.1", {smtps}, context=ctx) as s:
    code, _ = s.ehlo("python.example")
    assert code == 250
    assert not s.has_extn("starttls")
    s.sendmail("tom@example.test", ["jerry@example.test"], "Subject: smtps\r\n\r\nwrapped\r\n")
print("ok")
"#
    ));
    assert_eq!(out.trim(), "ok");
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(
        m.contains("Subject: smtps") && m.contains(" with ESMTPS id "),
        "{m}"
    );
}

/// The certificate's common name, as openssl s_client shows it.
fn peer_cn(port: u16) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-brief",
        ])
        .stdin("QUIT\r\n")
        .run();
    let text = format!("{}{}", out.stdout, out.stderr);
    text.lines()
        .find_map(|l| l.strip_prefix("Peer certificate: CN = "))
        .unwrap_or_else(|| panic!("no peer certificate in {text}"))
        .trim()
        .to_string()
}

#[test]
fn daemon_start_reload_with_a_new_certificate_and_stop() {
    // Started as a daemon with `ironpost start`, not by the harness.
    let inst = Instance::new(ironpost(), "");
    let etc = inst.etc().display().to_string();
    /// Stops the daemon even when the test fails half-way.
    struct StopOnDrop(String);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            let _ = ip("stop").args(["-c", &self.0]).run();
        }
    }
    let out = ip("start").args(["-c", &etc]).run();
    let _guard = StopOnDrop(etc.clone());
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "ironpost: starting the mail system\n");
    let out = ip("start").args(["-c", &etc]).run();
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("already running"), "{}", out.stderr);
    let out = ip("status").args(["-c", &etc]).run();
    assert_eq!(out.status, 0);
    assert!(
        out.stderr
            .starts_with("ironpost: the mail system is running: PID: "),
        "{}",
        out.stderr
    );
    assert_eq!(peer_cn(inst.port), "mail.example.test");

    // A new certificate, then reload: new sessions use it.
    let other = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &inst.path("etc/tls/key.pem").display().to_string(),
            "-out",
            &inst.path("etc/tls/cert.pem").display().to_string(),
            "-days",
            "1",
            "-subj",
            "/CN=renewed.example.test",
        ])
        .run();
    assert_eq!(other.status, 0, "{}", other.stderr);
    let out = ip("reload").args(["-c", &etc]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(peer_cn(inst.port), "renewed.example.test");

    // A broken main.cf: reload refuses it and the old configuration stays.
    let main_cf = inst.etc().join("main.cf");
    let good = std::fs::read_to_string(&main_cf).unwrap();
    std::fs::write(&main_cf, format!("{good}\nmessage_size_limit = lots\n")).unwrap();
    let out = ip("reload").args(["-c", &etc]).run();
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("message_size_limit"), "{}", out.stderr);
    std::fs::write(&main_cf, good).unwrap();
    assert_eq!(peer_cn(inst.port), "renewed.example.test");

    let out = ip("stop").args(["-c", &etc]).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = ip("status").args(["-c", &etc]).run();
    assert_eq!(out.status, 1);
    assert_eq!(out.stderr, "ironpost: the mail system is not running\n");
    assert!(std::net::TcpStream::connect(("127.0.0.1", inst.port)).is_err());
    assert!(inst.maillog().contains("ironpost/master["));
}
