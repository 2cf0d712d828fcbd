//! TLS (RFC 3207) with the certificate quickstart makes: STARTTLS with
//! Python's smtplib, swaks and openssl s_client; nothing pipelined after
//! STARTTLS is executed; smtpd_tls_security_level = encrypt; smtps
//! (wrapper mode) on a second listener.

use ironpost_testkit::instance::{Instance, free_port};

use crate::common::*;

fn python(script: &str) -> String {
    let out = Command::new("python3").args(["-c", script]).run();
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    out.stdout
}

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
