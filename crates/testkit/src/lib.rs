//! # ironpost-testkit: the test harness
//!
//! Helpers for tests that drive ironpost the way users do: a configuration
//! directory in a temporary folder, the binary run under its own name or a
//! Postfix command's name, and the real Postfix tools beside it where a test
//! compares behaviour.
//!
//! ## Layout
//! - [`ConfigDir`]: a temporary configuration directory with a main.cf.
//! - [`Command`]: one run of a program, with arguments, environment and
//!   standard input; [`Output`] is what it printed and its exit status.
//! - [`compat_bin`]: the ironpost binary linked under a Postfix command name.
//! - [`postfix_tool`]: the real Postfix command of that name (the test
//!   script installs Debian's postfix); tests fail with a clear message when
//!   it is missing rather than pass silently.
//! - [`dns`]: an in-process authoritative DNS server (hickory-server) with
//!   the zone a test gives, changeable while it runs.
//! - [`postfix`]: a private Postfix instance as a peer (needs root).
//! - [`instance`]: a whole instance in a temporary folder, started and
//!   killed as a process, and a raw SMTP client.

pub mod dns;
pub mod instance;
pub mod postfix;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A temporary configuration directory, removed when dropped.
pub struct ConfigDir {
    dir: tempfile::TempDir,
}

impl ConfigDir {
    /// A directory holding `main.cf` with `main_cf` in it (and an empty
    /// master.cf, which the Postfix tools expect).
    pub fn new(main_cf: &str) -> ConfigDir {
        let dir = tempfile::Builder::new()
            .prefix("ironpost-test")
            .tempdir()
            .expect("create a temporary directory");
        let cd = ConfigDir { dir };
        cd.write("main.cf", main_cf);
        cd.write("master.cf", "");
        cd
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path as a string, for command lines.
    pub fn arg(&self) -> String {
        self.path().display().to_string()
    }

    /// A file name inside the directory, as a string.
    pub fn file(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }

    /// Writes a file. Its modification time is set a few seconds back:
    /// Postfix's tools wait until a configuration file they read is at
    /// least a second old (so as not to read one being written), which
    /// would slow every comparison with them.
    pub fn write(&self, name: &str, content: &str) {
        let path = self.path().join(name);
        std::fs::write(&path, content).expect("write a test file");
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(past))
            .expect("set a test file's time");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).expect("read a test file")
    }
}

/// What a command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit status; -1 when killed by a signal.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The stderr lines, each once, in order of first appearance (Postfix
    /// repeats some warnings).
    pub fn stderr_lines(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for l in self.stderr.lines() {
            if !seen.contains(&l) {
                seen.push(l);
            }
        }
        seen
    }
}

/// One run of a program.
pub struct Command {
    program: PathBuf,
    args: Vec<String>,
    env: HashMap<String, String>,
    stdin: Option<Vec<u8>>,
}

impl Command {
    pub fn new(program: impl AsRef<Path>) -> Command {
        Command {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            env: HashMap::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Command {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Command {
        self.env.insert(k.to_string(), v.to_string());
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(input.into());
        self
    }

    /// Runs the program to completion. The environment is the test's, minus
    /// the variables that would point the program at another configuration.
    pub fn run(self) -> Output {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args)
            .env_remove("IRONPOST_CONFIG_DIR")
            .env_remove("MAIL_CONFIG")
            .envs(&self.env)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.program.display()));
        if let Some(input) = self.stdin {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            // A program may exit before reading everything; that is its answer.
            let _ = stdin.write_all(&input);
        }
        let out = child.wait_with_output().expect("wait for the command");
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The ironpost binary linked as `name` (postconf, postmap, ...) in a
/// directory that lives as long as the test process.
pub fn compat_bin(ironpost: &str, name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("ironpost-bin")
            .tempdir()
            .expect("create a directory for links")
    });
    let link = dir.path().join(name);
    if !link.exists() {
        // Several tests may race to create the same link; losing is fine.
        let _ = std::os::unix::fs::symlink(ironpost, &link);
    }
    link
}

/// The real Postfix command `name` (for differential tests). Panics with
/// the fix when Postfix is not installed: such a test must not pass unseen.
pub fn postfix_tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/sbin").join(name);
    assert!(
        path.exists(),
        "{} is missing: this test compares ironpost with Postfix; install Debian's postfix \
         and postfix-pcre packages (scripts/test does)",
        path.display()
    );
    path
}
