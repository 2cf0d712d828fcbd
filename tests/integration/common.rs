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

/// This machine's host name, as myhostname's default is computed from it.
pub fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read the host name")
        .trim()
        .to_string()
}
