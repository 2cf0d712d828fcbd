//! SMTP AUTH (RFC 4954) against system accounts (passwd + shadow fixture
//! files with hashes made by mkpasswd): PLAIN and LOGIN by hand, Python's
//! smtplib and swaks; relaying allowed only after authentication.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ironpost_testkit::instance::Instance;

use crate::common::*;

fn instance(extra: &str) -> Instance {
    let mut inst = Instance::new(ironpost(), "");
    let hash = Command::new("mkpasswd")
        .args(["-m", "sha512crypt", "secret"])
        .run()
        .stdout
        .trim()
        .to_string();
    assert!(hash.starts_with("$6$"), "mkpasswd: {hash}");
    std::fs::write(
        inst.path("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\njerry:x:1000:1000:Jerry:/home/jerry:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        inst.path("etc/shadow"),
        format!("root:*:19000:0:99999:7:::\njerry:{hash}:19000:0:99999:7:::\n"),
    )
    .unwrap();
    let main_cf = format!(
        "passwd_file = {etc}/passwd\nshadow_file = {etc}/shadow\n\
         smtpd_sasl_auth_enable = yes\nbroken_sasl_auth_clients = yes\n\
         auth_failure_delay = 0s\n\
         mynetworks = 192.0.2.0/24\n{extra}\n",
        etc = inst.etc().display()
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(inst.etc().join("main.cf"))
        .unwrap();
    std::io::Write::write_all(&mut f, main_cf.as_bytes()).unwrap();
    inst.start();
    inst
}

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

#[test]
fn plain_and_login_then_relay() {
    let inst = instance("");
    let mut s = inst.connect();
    assert_eq!(
        s.cmd("auth plain AGplcnJ5AHNlY3JldA=="),
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    let ehlo = s.cmd("ehlo client.example");
    assert!(
        ehlo.contains(
            "250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES"
        ),
        "{ehlo}"
    );
    // Not authenticated: no relaying.
    s.cmd("mail from:<jerry@example.test>");
    assert_eq!(
        s.cmd("rcpt to:<far@example.org>"),
        "554 5.7.1 <far@example.org>: Relay access denied"
    );
    assert_eq!(
        s.cmd("auth plain AGplcnJ5AHNlY3JldA=="),
        "503 5.5.1 Error: MAIL transaction in progress"
    );
    s.cmd("rset");
    assert_eq!(
        s.cmd(&format!("auth plain {}", b64(b"\0jerry\0wrong"))),
        "535 5.7.8 Error: authentication failed: authentication failure"
    );
    assert_eq!(
        s.cmd("auth cram-md5"),
        "535 5.7.8 Error: authentication failed: Invalid authentication mechanism"
    );
    assert_eq!(s.cmd("auth plain"), "334");
    assert_eq!(s.cmd("*"), "501 5.7.0 Authentication aborted");
    assert_eq!(
        s.cmd("auth plain !!!"),
        "501 5.5.2 Error: invalid base64 data"
    );
    assert_eq!(
        s.cmd(&format!("auth plain {}", b64(b"admin\0jerry\0secret"))),
        "535 5.7.8 Error: authentication failed: authorization failure"
    );
    // LOGIN, step by step.
    assert_eq!(s.cmd("auth login"), "334 VXNlcm5hbWU6");
    assert_eq!(s.cmd(&b64(b"jerry")), "334 UGFzc3dvcmQ6");
    assert_eq!(
        s.cmd(&b64(b"secret")),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        s.cmd("auth plain AGplcnJ5AHNlY3JldA=="),
        "503 5.5.1 Error: already authenticated"
    );
    // Now relaying is allowed (permit_sasl_authenticated).
    assert_eq!(s.cmd("mail from:<jerry@example.test>"), "250 2.1.0 Ok");
    assert_eq!(s.cmd("rcpt to:<far@example.org>"), "250 2.1.5 Ok");
    s.cmd("data");
    s.send_raw(b"Subject: relayed\r\n\r\nbody\r\n.\r\n");
    let r = s.read_reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let id = r.trim_end().rsplit(' ').next().unwrap().to_string();
    s.cmd("quit");
    // The log is written by its own thread: wait for the last line.
    let log = inst.wait_log(" ehlo=1 auth=1/9 mail=2 rcpt=1/2 data=1 rset=1 quit=1 commands=8/17");
    assert!(
        log.contains(&format!(
            "{id}: client=localhost[127.0.0.1], sasl_method=LOGIN, sasl_username=jerry"
        )),
        "{log}"
    );
    assert!(log.contains("warning: localhost[127.0.0.1]: SASL PLAIN authentication failed: authentication failure"), "{log}");
    // The queued message says who sent it.
    let text = String::from_utf8_lossy(
        &std::fs::read(inst.path(&format!("spool/deferred/{id}")))
            .or_else(|_| std::fs::read(inst.path(&format!("spool/incoming/{id}"))))
            .or_else(|_| std::fs::read(inst.path(&format!("spool/active/{id}"))))
            .unwrap(),
    )
    .into_owned();
    assert!(
        text.contains("\t(Authenticated sender: jerry)\r\n"),
        "{text}"
    );
    assert!(text.contains("with ESMTPA id "), "{text}");
}

#[test]
fn smtplib_and_swaks_log_in() {
    let inst = instance("");
    let script = format!(
        r#"
import smtplib
for mech in ("PLAIN", "LOGIN"):
    with smtplib.SMTP("127.0.0.1", {port}) as s:
        s.ehlo("python.example")
        assert "PLAIN" in s.esmtp_features["auth"], s.esmtp_features
        s.user, s.password = "jerry", "secret"
        code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()))
        assert code == 235, (code, text)
        s.sendmail("jerry@example.test", ["far@example.org"], "Subject: py\r\n\r\nhi\r\n")
with smtplib.SMTP("127.0.0.1", {port}) as s:
    try:
        s.login("jerry", "wrong")
        raise SystemExit("a wrong password was accepted")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
print("ok")
"#,
        port = inst.port
    );
    let out = Command::new("python3").args(["-c", &script]).run();
    assert_eq!(out.stdout.trim(), "ok", "{}", out.stderr);
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &inst.port.to_string(),
            "--from",
            "jerry@example.test",
            "--to",
            "far@example.org",
            "--auth",
            "LOGIN",
            "--auth-user",
            "jerry",
            "--auth-password",
            "secret",
        ])
        .run();
    assert!(
        out.stdout
            .contains("<-  235 2.7.0 Authentication successful"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("<-  250 2.0.0 Ok: queued as "),
        "{}",
        out.stdout
    );
}

#[test]
fn auth_only_over_tls_when_asked() {
    let inst = instance("smtpd_tls_auth_only = yes");
    let mut s = inst.connect();
    let ehlo = s.cmd("ehlo client.example");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert_eq!(
        s.cmd("auth plain AGplcnJ5AHNlY3JldA=="),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
}

#[test]
fn repeated_failures_lock_the_client_out() {
    let inst = instance("auth_failure_limit = 3");
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    let wrong = format!("auth plain {}", b64(b"\0jerry\0guess"));
    for _ in 0..3 {
        assert_eq!(
            s.cmd(&wrong),
            "535 5.7.8 Error: authentication failed: authentication failure"
        );
    }
    // Now even the right password is refused, on a new connection too.
    let right = format!("auth plain {}", b64(b"\0jerry\0secret"));
    let refused =
        "454 4.7.0 Temporary authentication failure: too many failed logins, try again later";
    assert_eq!(s.cmd(&right), refused);
    let mut s2 = inst.connect();
    s2.cmd("ehlo client.example");
    assert_eq!(s2.cmd(&right), refused);
    inst.wait_log(
        "warning: localhost[127.0.0.1]: too many failed authentications; logins refused for 600s",
    );
}

#[test]
fn sender_login_mismatch() {
    let inst = instance(
        "smtpd_sender_restrictions = reject_sender_login_mismatch\n\
         smtpd_sender_login_maps = inline:{ jerry@example.test=jerry, boss@example.test=boss }",
    );
    // Not logged in: an address that belongs to a login is refused, others
    // go on to the usual checks.
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    s.cmd("mail from:<boss@example.test>");
    assert_eq!(
        s.cmd("rcpt to:<jerry@example.test>"),
        "553 5.7.1 <boss@example.test>: Sender address rejected: not logged in"
    );
    s.cmd("rset");
    s.cmd("mail from:<someone@example.org>");
    assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
    s.cmd("rset");
    // Logged in as jerry: only jerry's addresses.
    assert_eq!(
        s.cmd(&format!("auth plain {}", b64(b"\0jerry\0secret"))),
        "235 2.7.0 Authentication successful"
    );
    for (sender, want) in [
        ("jerry@example.test", "250 2.1.5 Ok"),
        (
            "boss@example.test",
            "553 5.7.1 <boss@example.test>: Sender address rejected: not owned by user jerry",
        ),
        (
            "nobody@example.org",
            "553 5.7.1 <nobody@example.org>: Sender address rejected: not owned by user jerry",
        ),
    ] {
        s.cmd(&format!("mail from:<{sender}>"));
        assert_eq!(s.cmd("rcpt to:<far@example.org>"), want, "{sender}");
        s.cmd("rset");
    }
}

#[test]
fn noplaintext_keeps_passwords_off_unencrypted_connections() {
    let inst = instance("smtpd_sasl_security_options = noanonymous, noplaintext");
    let mut s = inst.connect();
    let ehlo = s.cmd("ehlo client.example");
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert_eq!(
        s.cmd("auth plain AGplcnJ5AHNlY3JldA=="),
        "535 5.7.8 Error: authentication failed: Invalid authentication mechanism"
    );
}

#[test]
fn quickstart_user_sends_through_submission_and_smtps() {
    let mut inst = Instance::new(ironpost(), "");
    inst.start();
    // Submission: STARTTLS required, then login, then any destination.
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &inst.submission_port.to_string(),
            "--from",
            "jerry@example.test",
            "--to",
            "far@example.org",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "jerry@example.test",
            "--auth-password",
            "secret",
        ])
        .run();
    assert!(
        out.stdout
            .contains("<~  235 2.7.0 Authentication successful"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("<~  250 2.0.0 Ok: queued as "),
        "{}",
        out.stdout
    );
    // Without logging in, submission takes nothing, not even local mail.
    let out = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &inst.submission_port.to_string(),
            "--from",
            "jerry@example.test",
            "--to",
            "jerry@example.test",
            "--tls",
        ])
        .run();
    assert!(
        out.stdout.contains(
            "<~* 554 5.7.1 <jerry@example.test>: Recipient address rejected: Access denied"
        ),
        "{}",
        out.stdout
    );
    // Plain text before STARTTLS is refused on submission.
    let mut s = ironpost_testkit::instance::Smtp::connect(inst.submission_port);
    s.read_reply();
    let ehlo = s.cmd("ehlo x");
    assert!(
        ehlo.contains("250-STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert_eq!(
        s.cmd("mail from:<jerry@example.test>"),
        "530 5.7.0 Must issue a STARTTLS command first"
    );
    // smtps with Python, a wrong password then the right one.
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP_SSL("127.0.0.1", {port}, context=ctx) as s:
    try:
        s.login("jerry@example.test", "nope")
        raise SystemExit("wrong password accepted")
    except smtplib.SMTPAuthenticationError:
        pass
    s.login("jerry@example.test", "secret")
    s.sendmail("jerry@example.test", ["far@example.org"], "Subject: smtps\r\n\r\nx\r\n")
print("ok")
"#,
        port = inst.smtps_port
    );
    let out = Command::new("python3").args(["-c", &script]).run();
    assert_eq!(out.stdout.trim(), "ok", "{}", out.stderr);
    inst.wait_log("ironpost/submission/smtpd[");
    inst.wait_log("sasl_method=PLAIN, sasl_username=jerry@example.test");
}

/// A SCRAM-SHA-256 client (RFC 5802 §3, RFC 7677), for the test.
pub mod scram_client {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    /// client-final and the server signature to expect.
    pub fn final_message(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, String) {
        final_message_bound(password, client_first_bare, server_first, b"n,,")
    }

    /// The same, with the GS2 header and channel-binding data for `c=`.
    pub fn final_message_bound(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        cbind: &[u8],
    ) -> (String, String) {
        let f: Vec<&str> = server_first.split(',').collect();
        let nonce = f[0].strip_prefix("r=").unwrap();
        let salt = B64.decode(f[1].strip_prefix("s=").unwrap()).unwrap();
        let iterations: u32 = f[2].strip_prefix("i=").unwrap().parse().unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without = format!("c={},r={nonce}", B64.encode(cbind));
        let auth = format!("{client_first_bare},{server_first},{without}");
        let signature = hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        (
            format!("{without},p={}", B64.encode(proof)),
            format!("v={}", B64.encode(hmac(&server_key, auth.as_bytes()))),
        )
    }
}

#[test]
fn scram_sha_256_with_a_password_stored_by_doveadm() {
    let stored = Command::new("doveadm")
        .args(["pw", "-s", "SCRAM-SHA-256", "-p", "pencil"])
        .run()
        .stdout
        .trim()
        .to_string();
    let mut inst = Instance::new(
        ironpost(),
        "smtpd_sasl_auth_enable = yes\nauth_mechanisms = scram-sha-256 plain\nauth_failure_delay = 0s",
    );
    std::fs::write(
        inst.etc().join("users"),
        format!("tom@example.test:{stored}\n"),
    )
    .unwrap();
    inst.append_main_cf(&format!(
        "auth_passwd_file = {}/users",
        inst.etc().display()
    ));
    inst.start();
    for (password, ok) in [("wrong", false), ("pencil", true)] {
        let mut s = inst.connect();
        let ehlo = s.cmd("ehlo client.example");
        assert!(ehlo.contains("250-AUTH SCRAM-SHA-256 PLAIN\r\n"), "{ehlo}");
        let first_bare = "n=tom@example.test,r=rOprNGfwEbeRWgbNEkqO";
        let r = s.cmd(&format!(
            "auth scram-sha-256 {}",
            b64(format!("n,,{first_bare}").as_bytes())
        ));
        let server_first = String::from_utf8(
            B64.decode(r.strip_prefix("334 ").expect("a challenge"))
                .unwrap(),
        )
        .unwrap();
        assert!(
            server_first.starts_with("r=rOprNGfwEbeRWgbNEkqO"),
            "{server_first}"
        );
        let (fin, want) = scram_client::final_message(password, first_bare, &server_first);
        let r = s.cmd(&b64(fin.as_bytes()));
        if ok {
            let server_final =
                String::from_utf8(B64.decode(r.strip_prefix("334 ").unwrap()).unwrap()).unwrap();
            assert_eq!(server_final, want, "the server proves it knows the keys");
            assert_eq!(s.cmd(""), "235 2.7.0 Authentication successful");
        } else {
            assert_eq!(
                r,
                "535 5.7.8 Error: authentication failed: authentication failure"
            );
        }
    }
    // The same stored password works with PLAIN.
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    assert_eq!(
        s.cmd(&format!(
            "auth plain {}",
            b64(b"\0tom@example.test\0pencil")
        )),
        "235 2.7.0 Authentication successful"
    );
}

#[test]
fn scram_sha_256_plus_binds_to_the_tls_channel() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    let stored = Command::new("doveadm")
        .args(["pw", "-s", "SCRAM-SHA-256", "-p", "pencil"])
        .run()
        .stdout
        .trim()
        .to_string();
    let mut inst = Instance::new(
        ironpost(),
        "smtpd_sasl_auth_enable = yes\nauth_mechanisms = scram-sha-256 scram-sha-256-plus\nauth_failure_delay = 0s",
    );
    std::fs::write(
        inst.etc().join("users"),
        format!("tom@example.test:{stored}\n"),
    )
    .unwrap();
    inst.append_main_cf(&format!(
        "auth_passwd_file = {}/users",
        inst.etc().display()
    ));
    inst.start();
    // Trust the instance's own self-signed certificate.
    let pem = std::fs::read(inst.etc().join("tls/cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let session = |flag: &str, mech: &str, password: &str| -> (String, String) {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", inst.port)).unwrap();
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        let reply = |r: &mut BufReader<std::net::TcpStream>| {
            let mut all = String::new();
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                all.push_str(&l);
                if l.as_bytes().get(3) != Some(&b'-') {
                    return all;
                }
            }
        };
        reply(&mut r);
        tcp.write_all(b"EHLO x\r\n").unwrap();
        let plain_ehlo = reply(&mut r);
        tcp.write_all(b"STARTTLS\r\n").unwrap();
        assert!(reply(&mut r).starts_with("220 "));
        let conn =
            rustls::ClientConnection::new(config.clone(), "mail.example.test".try_into().unwrap())
                .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let line =
            |tls: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
             cmd: &str| {
                tls.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
                let mut all = String::new();
                loop {
                    let mut l = Vec::new();
                    let mut b = [0u8; 1];
                    loop {
                        std::io::Read::read_exact(tls, &mut b).unwrap();
                        l.push(b[0]);
                        if b[0] == b'\n' {
                            break;
                        }
                    }
                    let l = String::from_utf8(l).unwrap();
                    all.push_str(&l);
                    if l.as_bytes().get(3) != Some(&b'-') {
                        return all.trim_end().to_string();
                    }
                }
            };
        let ehlo = line(&mut tls, "EHLO x");
        let exporter = tls
            .conn
            .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
            .unwrap();
        let gs2 = flag.to_string();
        let first_bare = "n=tom@example.test,r=clientnonce123";
        let r = line(
            &mut tls,
            &format!(
                "AUTH {mech} {}",
                b64(format!("{gs2}{first_bare}").as_bytes())
            ),
        );
        let Some(challenge) = r.strip_prefix("334 ") else {
            return (format!("{plain_ehlo}|{ehlo}"), r);
        };
        let server_first = String::from_utf8(B64.decode(challenge).unwrap()).unwrap();
        let mut cbind = gs2.as_bytes().to_vec();
        if gs2.starts_with("p=") {
            cbind.extend_from_slice(&exporter);
        }
        let (fin, want) =
            scram_client::final_message_bound(password, first_bare, &server_first, &cbind);
        let r = line(&mut tls, &b64(fin.as_bytes()));
        let result = match r.strip_prefix("334 ") {
            Some(v) => {
                assert_eq!(String::from_utf8(B64.decode(v).unwrap()).unwrap(), want);
                line(&mut tls, "")
            }
            None => r,
        };
        (format!("{plain_ehlo}|{ehlo}"), result)
    };
    let (ehlos, result) = session("p=tls-exporter,,", "SCRAM-SHA-256-PLUS", "pencil");
    let (plain_ehlo, tls_ehlo) = ehlos.split_once('|').unwrap();
    assert!(
        plain_ehlo.contains("250-AUTH SCRAM-SHA-256\r\n"),
        "{plain_ehlo}"
    );
    assert!(
        tls_ehlo.contains("250-AUTH SCRAM-SHA-256 SCRAM-SHA-256-PLUS\r\n"),
        "{tls_ehlo}"
    );
    assert_eq!(result, "235 2.7.0 Authentication successful");
    // A wrong password, bound.
    let (_, result) = session("p=tls-exporter,,", "SCRAM-SHA-256-PLUS", "pen");
    assert_eq!(
        result,
        "535 5.7.8 Error: authentication failed: authentication failure"
    );
    // "y" (client could bind, thinks the server cannot) while -PLUS is on
    // offer: a downgrade, refused.
    let (_, result) = session("y,,", "SCRAM-SHA-256", "pencil");
    assert!(result.starts_with("535 5.7.8"), "{result}");
    // The plain variant without binding still works over TLS.
    let (_, result) = session("n,,", "SCRAM-SHA-256", "pencil");
    assert_eq!(result, "235 2.7.0 Authentication successful");
}
