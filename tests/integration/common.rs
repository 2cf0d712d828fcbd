//! Shared helpers for the integration tests.

pub use ironpost_testkit::{Command, ConfigDir, compat_bin, postfix_tool};

/// The ironpost binary under test.
pub fn ironpost() -> &'static str {
    env!("CARGO_BIN_EXE_ironpost")
}

/// `ironpost SUBCOMMAND` as a command to complete.
pub fn ip(sub: &str) -> Command {
    Command::new(ironpost()).arg(sub)
}

/// The ironpost binary invoked under a Postfix command's name.
pub fn compat(name: &str) -> Command {
    Command::new(compat_bin(ironpost(), name))
}

/// Sends one message from ann to tom (the system user of
/// [`system_user_instance`]) over SMTP; it must be queued.
pub fn send_to_tom(inst: &ironpost_testkit::instance::Instance, subject: &str) {
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    s.cmd("mail from:<ann@example.test>");
    assert_eq!(s.cmd("rcpt to:<tom@example.test>"), "250 2.1.5 Ok");
    s.cmd("data");
    s.send_raw(format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n.\r\n").as_bytes());
    assert!(s.read_reply().starts_with("250 "));
    s.cmd("quit");
}

/// Runs a Python script (`python3 -c`) that must succeed; its output.
pub fn python(script: &str) -> String {
    let out = Command::new("python3").args(["-c", script]).run();
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    out.stdout
}

/// This machine's host name, as myhostname's default is computed from it.
pub fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read the host name")
        .trim()
        .to_string()
}

/// An instance (not started) with a system account `tom`, password
/// `secret` (sha512crypt in its own shadow file), home under the
/// instance, whose mail local(8) delivers to the mbox spool
/// `mail/tom`, as in the classic tutorials.
pub fn system_user_instance() -> ironpost_testkit::instance::Instance {
    let inst = ironpost_testkit::instance::Instance::new(ironpost(), "auth_failure_delay = 0s");
    let hash = Command::new("mkpasswd")
        .args(["-m", "sha512crypt", "secret"])
        .run()
        .stdout
        .trim()
        .to_string();
    assert!(hash.starts_with("$6$"), "mkpasswd: {hash}");
    let home = inst.path("home/tom");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        inst.path("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\ntom:x:{}:{}:Tom:{}:/bin/sh\n",
            nix::unistd::getuid(),
            nix::unistd::getgid(),
            home.display()
        ),
    )
    .unwrap();
    std::fs::write(
        inst.path("etc/shadow"),
        format!("root:*:19000:0:99999:7:::\ntom:{hash}:19000:0:99999:7:::\n"),
    )
    .unwrap();
    inst.append_main_cf(&format!(
        "passwd_file = {etc}/passwd\nshadow_file = {etc}/shadow\n\
         virtual_mailbox_domains =\nvirtual_alias_maps =\n\
         mydestination = $myhostname, localhost, $mydomain\n\
         home_mailbox =\n",
        etc = inst.etc().display()
    ));
    inst
}

/// Delivers a message to jerry@example.test over SMTP.
pub fn deliver(inst: &ironpost_testkit::instance::Instance, body: &str) {
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    s.cmd("mail from:<tom@example.test>");
    assert_eq!(s.cmd("rcpt to:<jerry@example.test>"), "250 2.1.5 Ok");
    s.cmd("data");
    s.send_raw(body.as_bytes());
    s.send_raw(b".\r\n");
    assert!(s.read_reply().starts_with("250 "));
    s.cmd("quit");
}

/// A started instance without the failed-login delay, `extra` added to
/// main.cf.
pub fn started(extra: &str) -> ironpost_testkit::instance::Instance {
    let mut inst = ironpost_testkit::instance::Instance::new(
        ironpost(),
        &format!("auth_failure_delay = 0s\n{extra}"),
    );
    inst.start();
    inst
}
