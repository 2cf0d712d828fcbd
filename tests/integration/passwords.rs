//! Stored passwords made by the real tools (Dovecot's `doveadm pw`, the
//! `mkpasswd` of Debian's whois package, as /etc/shadow holds them) are
//! checked by ours: the right password matches, a wrong one does not.

use ironpost::auth::password::{scheme_of, verify};

use crate::common::*;

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args.iter().copied()).run();
    assert_eq!(out.status, 0, "{program} {args:?}: {}", out.stderr);
    out.stdout.trim().to_string()
}

fn check(stored: &str, password: &str) {
    assert_eq!(verify(stored, password), Ok(true), "{stored}");
    assert_eq!(
        verify(stored, &format!("{password}x")),
        Ok(false),
        "{stored}"
    );
    assert_eq!(verify(stored, ""), Ok(false), "{stored}");
}

#[test]
fn dovecot_schemes() {
    for scheme in [
        "ARGON2ID",
        "BLF-CRYPT",
        "SHA512-CRYPT",
        "SHA256-CRYPT",
        "SSHA512",
        "SSHA256",
        "SSHA",
        "PLAIN",
    ] {
        for password in ["secret", "pässwörd with spaces", "x"] {
            let stored = tool("doveadm", &["pw", "-s", scheme, "-p", password]);
            assert_eq!(scheme_of(&stored).as_deref(), Some(scheme), "{stored}");
            check(&stored, password);
        }
    }
}

#[test]
fn shadow_crypt_formats() {
    for method in [
        "yescrypt",
        "sha512crypt",
        "sha256crypt",
        "bcrypt",
        "md5crypt",
    ] {
        for password in ["secret", "pässwörd with spaces", "x"] {
            let stored = tool("mkpasswd", &["-m", method, password]);
            assert!(stored.starts_with('$'), "{stored}");
            check(&stored, password);
            // The same string under Dovecot's {CRYPT} prefix.
            check(&format!("{{CRYPT}}{stored}"), password);
        }
    }
    // Explicit rounds, as some distributions set them.
    let stored = tool("mkpasswd", &["-m", "sha512crypt", "-R", "10000", "secret"]);
    assert!(stored.starts_with("$6$rounds=10000$"), "{stored}");
    check(&stored, "secret");
}
