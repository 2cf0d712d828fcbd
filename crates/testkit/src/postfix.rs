//! A private Postfix instance (Debian's postfix package) as a peer for
//! tests: its own configuration, queue and mailboxes in a temporary
//! folder, SMTP on one address, one virtual mailbox domain delivered to
//! Maildir, outgoing mail through a relay host. Needs root (Postfix's
//! master runs as root); stopped when dropped.
//!
//! Postfix's commands accept a configuration directory other than
//! /etc/postfix only when /etc/postfix/main.cf lists it in
//! alternate_config_directories; the instance adds itself there while it
//! runs and takes itself out again. Its listening address is in master.cf
//! (`127.0.0.6:PORT inet ... smtpd`), with inet_interfaces = all: Postfix
//! refuses an inet_interfaces address that no interface has, and
//! 127.0.0.6 is only routed to lo, not configured on it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running Postfix.
pub struct Postfix {
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub domain: String,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Serializes changes of /etc/postfix/main.cf within the test process.
static GLOBAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alternate_dirs(change: impl FnOnce(Vec<String>) -> Vec<String>) {
    let _g = GLOBAL.lock().unwrap_or_else(|p| p.into_inner());
    if !Path::new("/etc/postfix/main.cf").exists() {
        std::fs::write("/etc/postfix/main.cf", "compatibility_level = 3.6\n")
            .expect("write /etc/postfix/main.cf");
    }
    let now = run(Command::new("/usr/sbin/postconf").args(["-h", "alternate_config_directories"]));
    let list: Vec<String> = now
        .split([',', ' ', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let new = change(list).join(", ");
    run(Command::new("/usr/sbin/postconf")
        .arg("-e")
        .arg(format!("alternate_config_directories = {new}")));
}

impl Postfix {
    /// Starts Postfix on `addr` for `domain` (mailbox `user@domain`), with
    /// `relayhost` for everything else. `main_cf` is appended.
    pub fn start(
        addr: SocketAddr,
        domain: &str,
        user: &str,
        relayhost: &str,
        main_cf: &str,
    ) -> Postfix {
        assert!(
            nix_is_root(),
            "this test runs Debian's Postfix as a peer and needs root (scripts/test runs as root in CI)"
        );
        crate::postfix_tool("postfix");
        let dir = tempfile::Builder::new()
            .prefix("ironpost-postfix")
            .tempdir()
            .expect("temporary directory");
        let d = dir.path();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["etc", "spool", "data", "vmail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (uid, gid) = (65534, 65534);
        std::os::unix::fs::chown(d.join("vmail"), Some(uid), Some(gid)).unwrap();
        let p = d.display();
        std::fs::write(
            d.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {p}/spool\n\
                 data_directory = {p}/data\n\
                 maillog_file = {p}/maillog\n\
                 maillog_file_prefixes = /tmp\n\
                 myhostname = mx.{domain}\n\
                 mydomain = {domain}\n\
                 myorigin = $mydomain\n\
                 mydestination = localhost\n\
                 inet_interfaces = all\n\
                 inet_protocols = ipv4\n\
                 smtp_bind_address = {ip}\n\
                 mynetworks = {ip}/32\n\
                 relayhost = {relayhost}\n\
                 virtual_mailbox_domains = {domain}\n\
                 virtual_mailbox_base = {p}/vmail\n\
                 virtual_mailbox_maps = hash:{p}/etc/vmailbox\n\
                 virtual_uid_maps = static:{uid}\n\
                 virtual_gid_maps = static:{gid}\n\
                 alias_maps =\n\
                 alias_database =\n\
                 {main_cf}\n",
                ip = addr.ip()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("etc/vmailbox"),
            format!("{user}@{domain}\t{domain}/{user}/\n"),
        )
        .unwrap();
        let master = std::fs::read_to_string("/usr/share/postfix/master.cf.dist")
            .expect("read Postfix's master.cf.dist");
        let master: String = master
            .lines()
            .map(|l| {
                if l.starts_with("smtp ") && l.contains(" inet ") {
                    l.replacen("smtp ", &format!("{addr} "), 1)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(d.join("etc/master.cf"), master + "\n").unwrap();
        let etc = d.join("etc");
        run(Command::new("/usr/sbin/postmap").arg(d.join("etc/vmailbox")));
        run(Command::new("/usr/sbin/postconf")
            .arg("-c")
            .arg(&etc)
            .args(["-F", "*/*/chroot = n"]));
        let etc_s = etc.display().to_string();
        alternate_dirs(|mut l| {
            l.push(etc_s.clone());
            l
        });
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&etc)
            .arg("set-permissions")
            .output();
        let _ = Command::new("chown")
            .args(["-R", "postfix"])
            .arg(d.join("data"))
            .status();
        let pf = Postfix {
            dir,
            addr,
            domain: domain.to_string(),
        };
        let out = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&etc)
            .arg("start")
            .output()
            .expect("run postfix start");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            pf.maillog()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix did not listen on {addr}: {}",
                pf.maillog()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        pf
    }

    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The messages in `user`'s Maildir `new/`.
    pub fn messages(&self, user: &str) -> Vec<String> {
        let dir = self
            .dir
            .path()
            .join("vmail")
            .join(&self.domain)
            .join(user)
            .join("new");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Posts a message with Postfix's own sendmail.
    pub fn sendmail(&self, from: &str, to: &str, message: &str) {
        use std::io::Write;
        let mut child = Command::new("/usr/sbin/sendmail")
            .arg("-C")
            .arg(self.etc())
            .args(["-f", from, to])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run Postfix's sendmail");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "Postfix's sendmail failed");
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .output();
        let etc = self.etc().display().to_string();
        alternate_dirs(|l| l.into_iter().filter(|d| *d != etc).collect());
    }
}

fn nix_is_root() -> bool {
    // The effective user ID, from /proc (no libc call needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
