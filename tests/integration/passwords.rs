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
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
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

#[test]
fn system_accounts_from_passwd_and_shadow_files() {
    use ironpost::auth::system::{Check, Identity, SystemAuth};
    let dir = tempfile::tempdir().unwrap();
    let methods = [
        "yescrypt",
        "sha512crypt",
        "sha256crypt",
        "bcrypt",
        "md5crypt",
    ];
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut shadow = String::from("root:*:19000:0:99999:7:::\n");
    for (i, m) in methods.iter().enumerate() {
        let hash = tool("mkpasswd", &["-m", m, &format!("pw-{m}")]);
        passwd.push_str(&format!(
            "u{i}:x:{}:{}::/home/u{i}:/bin/sh\n",
            2000 + i,
            2000 + i
        ));
        shadow.push_str(&format!("u{i}:{hash}:19000:0:99999:7:::\n"));
    }
    std::fs::write(dir.path().join("passwd"), passwd).unwrap();
    std::fs::write(dir.path().join("shadow"), shadow).unwrap();
    let auth = SystemAuth {
        passwd_file: dir.path().join("passwd"),
        shadow_file: dir.path().join("shadow"),
        enabled: true,
        default_realm: "example.test".into(),
        users_file: None,
        directory_url: None,
    };
    for (i, m) in methods.iter().enumerate() {
        let user = format!("u{i}");
        assert_eq!(
            auth.identify(&user).unwrap(),
            Identity::System(user.clone())
        );
        assert_eq!(
            auth.check(&user, &format!("pw-{m}")),
            Check::Accepted,
            "{m}"
        );
        assert_eq!(auth.check(&user, "pw-wrong"), Check::Refused, "{m}");
    }
    assert_eq!(auth.check("root", ""), Check::Refused);
}

#[test]
fn scram_keys_match_dovecot() {
    use ironpost_proto::sasl::scram::ScramKeys;
    for scheme in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        for password in ["pencil", "pässwörd with spaces"] {
            let stored = tool("doveadm", &["pw", "-s", scheme, "-p", password]);
            let (hash, theirs) =
                ScramKeys::from_dovecot(&stored).unwrap_or_else(|| panic!("cannot read {stored}"));
            let ours = ScramKeys::derive(hash, password, &theirs.salt, theirs.iterations);
            assert_eq!(ours, theirs, "{stored}");
            assert_eq!(ours.to_dovecot(hash), stored);
            let wrong = ScramKeys::derive(hash, "other", &theirs.salt, theirs.iterations);
            assert_ne!(wrong, theirs);
        }
    }
}
