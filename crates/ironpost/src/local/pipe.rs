//! Delivery to a command (`|command` in aliases or .forward), as local(8)
//! does it: `/bin/sh -c command` with a clean environment, the message on
//! standard input preceded by a `From sender date` line, a time limit
//! (command_time_limit), and the exit status read as sysexits(3): 0 is
//! success, EX_TEMPFAIL (75) and a few others defer, anything else bounces
//! with the command's first output line as the reason.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::Outcome;
use crate::sysuser::SysUser;

/// What to run and for whom.
#[derive(Debug)]
pub struct Request<'a> {
    pub command: &'a str,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub original: &'a str,
    /// Run as this user (when delivering as root).
    pub user: Option<&'a SysUser>,
    pub time_limit: Duration,
    pub arrival: SystemTime,
}

/// The most command output kept for the log and bounces.
const OUTPUT_LIMIT: usize = 2048;

/// sysexits(3) values that mean "try again later".
fn is_temporary(code: i32) -> bool {
    matches!(code, 69 | 70 | 71 | 74 | 75)
}

fn sysexit_dsn(code: i32) -> &'static str {
    match code {
        64 => "5.3.0", // EX_USAGE
        65 => "5.6.0", // EX_DATAERR
        66 => "5.3.0", // EX_NOINPUT
        67 => "5.1.1", // EX_NOUSER
        68 => "5.1.2", // EX_NOHOST
        69 => "4.3.0", // EX_UNAVAILABLE
        70 => "4.3.0", // EX_SOFTWARE
        71 => "4.3.0", // EX_OSERR
        73 => "5.3.0", // EX_CANTCREAT
        74 => "4.3.0", // EX_IOERR
        75 => "4.3.0", // EX_TEMPFAIL
        76 => "5.5.0", // EX_PROTOCOL
        77 => "5.7.0", // EX_NOPERM
        78 => "5.3.5", // EX_CONFIG
        _ => "5.3.0",
    }
}

/// Runs the command with the message (CRLF line ends; LF on the pipe).
pub fn deliver(req: &Request<'_>, content: &[u8]) -> Outcome {
    const RELAY: &str = "local";
    let fail = |dsn: &str, text: String| Outcome::failed(req.recipient, RELAY, dsn, text);
    let (local, domain) = req
        .recipient
        .rsplit_once('@')
        .unwrap_or((req.recipient, ""));
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(req.command)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .env("SENDER", req.sender)
        .env("RECIPIENT", req.recipient)
        .env("ORIGINAL_RECIPIENT", req.original)
        .env("LOCAL", local)
        .env("DOMAIN", domain)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(u) = req.user {
        cmd.env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .uid(u.uid)
            .gid(u.gid)
            .current_dir(if u.home.is_dir() {
                &u.home
            } else {
                std::path::Path::new("/")
            });
    } else {
        cmd.current_dir("/");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail("4.3.0", format!("cannot run command {}: {e}", req.command)),
    };
    let mut input = crate::mailbox::mbox::from_line(req.sender, req.arrival).into_bytes();
    input.extend(crate::mailbox::maildir::to_lf(content));
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            // A command may exit without reading everything: that is its answer.
            let _ = s.write_all(&input);
        }
    });
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(OUTPUT_LIMIT as u64).read_to_end(&mut out);
            let _ = std::io::copy(s, &mut std::io::sink());
        }
        if let Some(s) = stderr.as_mut() {
            let mut err = Vec::new();
            let _ = s.take(OUTPUT_LIMIT as u64).read_to_end(&mut err);
            let _ = std::io::copy(s, &mut std::io::sink());
            out.extend(err);
        }
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() >= req.time_limit => {
                // The whole process group, so children of the shell go too.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return fail("4.3.0", format!("command {}: {e}", req.command)),
        }
    };
    let _ = writer.join();
    let output = reader.join().unwrap_or_default();
    let first_line = String::from_utf8_lossy(&output)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let Some(status) = status else {
        return fail(
            "4.3.0",
            format!("Command time limit exceeded: \"{}\"", req.command),
        );
    };
    match status.code() {
        Some(0) => Outcome::sent(
            req.recipient,
            RELAY,
            format!("delivered to command: {}", req.command),
        ),
        Some(code) => {
            let dsn = sysexit_dsn(code);
            let dsn = if is_temporary(code) {
                dsn
            } else if dsn.starts_with('4') {
                "5.3.0"
            } else {
                dsn
            };
            let why = if first_line.is_empty() {
                format!("Command died with status {code}: \"{}\"", req.command)
            } else {
                format!(
                    "Command died with status {code}: \"{}\". Command output: {first_line}",
                    req.command
                )
            };
            fail(dsn, why)
        }
        None => fail(
            "4.3.0",
            format!("Command killed by signal: \"{}\"", req.command),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::Status;

    fn req<'a>(cmd: &'a str, limit: Duration) -> Request<'a> {
        Request {
            command: cmd,
            sender: "a@b.test",
            recipient: "list@example.test",
            original: "list",
            user: None,
            time_limit: limit,
            arrival: SystemTime::now(),
        }
    }

    #[test]
    fn success_gets_the_message_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = format!(
            "cat > {} && echo \"$SENDER $RECIPIENT $LOCAL $DOMAIN\" >> {}",
            out.display(),
            out.display()
        );
        let o = deliver(
            &req(&cmd, Duration::from_secs(10)),
            b"Subject: x\r\n\r\nbody\r\n",
        );
        assert_eq!(o.status, Status::Sent, "{o:?}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("From a@b.test  "), "{text}");
        assert!(text.contains("Subject: x\n\nbody\n"), "{text}");
        assert!(
            text.ends_with("a@b.test list@example.test list example.test\n"),
            "{text}"
        );
    }

    #[test]
    fn exit_codes() {
        let o = deliver(&req("exit 75", Duration::from_secs(10)), b"x\r\n");
        assert_eq!((o.status, o.dsn.as_str()), (Status::Deferred, "4.3.0"));
        let o = deliver(
            &req("echo no such user; exit 67", Duration::from_secs(10)),
            b"x\r\n",
        );
        assert_eq!((o.status, o.dsn.as_str()), (Status::Bounced, "5.1.1"));
        assert!(
            o.text.contains("Command output: no such user"),
            "{}",
            o.text
        );
        let o = deliver(&req("exit 1", Duration::from_secs(10)), b"x\r\n");
        assert_eq!(o.status, Status::Bounced);
        // A command that does not read its input still finishes.
        let o = deliver(
            &req("exit 0", Duration::from_secs(10)),
            &vec![b'x'; 1 << 20],
        );
        assert_eq!(o.status, Status::Sent);
    }

    #[test]
    fn time_limit_kills_and_defers() {
        let o = deliver(&req("sleep 30", Duration::from_millis(300)), b"x\r\n");
        assert_eq!(o.status, Status::Deferred, "{o:?}");
        assert!(o.text.contains("time limit"), "{}", o.text);
    }
}
