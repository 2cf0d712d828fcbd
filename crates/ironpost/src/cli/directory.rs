//! `ironpost domain|user|alias ...`: the user directory (directory_url).
//!
//! ```text
//! ironpost domain add DOMAIN ...            ironpost user add ADDRESS [--password-stdin]
//! ironpost domain del DOMAIN [--all]                 [--quota SIZE] [--maildir PATH]
//! ironpost domain list                      ironpost user passwd ADDRESS [--password-stdin]
//! ironpost domain enable|disable DOMAIN     ironpost user del|show|enable|disable ADDRESS
//!                                           ironpost user quota ADDRESS SIZE
//! ironpost alias add ADDRESS TARGET[,TARGET...] ...   ironpost user list [DOMAIN]
//! ironpost alias del ADDRESS [TARGET ...]
//! ironpost alias list [DOMAIN]
//! ```
//!
//! Every command takes `-c DIR`. Passwords are asked twice on the terminal
//! (without echo), or read from the first line of standard input with
//! `--password-stdin`; they are stored as `{ARGON2ID}` with SCRAM keys
//! beside. Changes count at once: the daemon queries the directory at
//! each lookup. When main.cf does not use the `directory:` tables yet, the
//! commands say which parameter to set.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use ironpost_conf::{Config, params};

use super::{CmdResult, Fatal};
use crate::auth::directory::{DirError, Directory, password_fields};

const DOMAIN_USAGE: &str =
    "usage: ironpost domain add|del|list|enable|disable [DOMAIN ...] [--all] [-c DIR]";
const USER_USAGE: &str = "usage: ironpost user add|passwd|del|list|show|quota|enable|disable ADDRESS [--password-stdin] [--quota SIZE] [--maildir PATH] [-c DIR]";
const ALIAS_USAGE: &str =
    "usage: ironpost alias add|del|list ADDRESS [TARGET[,TARGET...] ...] [-c DIR]";

/// The command line after the subcommand word: options and operands.
struct Args {
    config_dir: Option<String>,
    password_stdin: bool,
    all: bool,
    quota: Option<String>,
    maildir: Option<String>,
    operands: Vec<String>,
}

fn parse(args: &[String], usage: &str) -> Result<Args, Fatal> {
    let mut a = Args {
        config_dir: None,
        password_stdin: false,
        all: false,
        quota: None,
        maildir: None,
        operands: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Fatal(format!("{name} needs a value\n{usage}")))
        };
        match key {
            "-c" | "--config-dir" => a.config_dir = Some(value(key)?),
            "--password-stdin" => a.password_stdin = true,
            "--all" => a.all = true,
            "--quota" => a.quota = Some(value(key)?),
            "--maildir" => a.maildir = Some(value(key)?),
            "--" => {
                a.operands.extend(it.by_ref().cloned());
            }
            k if k.starts_with('-') && k.len() > 1 => {
                return Err(Fatal(format!("unknown option \"{k}\"\n{usage}")));
            }
            _ => a.operands.push(arg.clone()),
        }
    }
    Ok(a)
}

fn open(cfg: &Config) -> Result<std::sync::Arc<Directory>, Fatal> {
    let url = cfg.get_str(params::DIRECTORY_URL)?.trim().to_string();
    if url.is_empty() {
        return Err(Fatal(format!(
            "directory_url is empty in {}: set it, e.g. postconf -e directory_url=sqlite:/var/lib/ironpost/directory.db",
            cfg.config_dir().join("main.cf").display()
        )));
    }
    Directory::open(&url).map_err(|e| Fatal(format!("cannot open the directory: {e}")))
}

fn dir_err(e: DirError) -> Fatal {
    Fatal(e.to_string())
}

/// Warns when `param` in main.cf does not use `table`: entries of the
/// directory would have no effect.
fn hint(cfg: &Config, param: &ironpost_conf::params::Param, table: &str) {
    let uses = cfg
        .get_list(param)
        .unwrap_or_default()
        .iter()
        .any(|v| v.trim() == table);
    if !uses {
        super::warn(&format!(
            "{} does not use {table}, so this has no effect on mail yet: postconf -e '{} = {table}'",
            param.name, param.name
        ));
    }
}

fn one<'a>(a: &'a Args, what: &str, usage: &str) -> Result<&'a str, Fatal> {
    match a.operands.as_slice() {
        [x] => Ok(x.as_str()),
        [] => Err(Fatal(format!("which {what}?\n{usage}"))),
        _ => Err(Fatal(format!("one {what} at a time\n{usage}"))),
    }
}

/// Tells a running daemon that the directory changed, so that it drops
/// the answers it keeps for a while; no daemon, nothing to tell.
fn tell_daemon(cfg: &Config) {
    if let Ok(dir) = cfg.get_str(params::QUEUE_DIRECTORY) {
        let _ = crate::ctl::request(std::path::Path::new(dir.trim()), "directory-changed");
    }
}

/// `ironpost domain ...`
pub fn run_domain(args: &[String]) -> CmdResult {
    let Some((verb, rest)) = args.split_first() else {
        return Err(Fatal(DOMAIN_USAGE.into()));
    };
    let a = parse(rest, DOMAIN_USAGE)?;
    let cfg = super::load_config(a.config_dir.as_deref())?;
    let dir = open(&cfg)?;
    match verb.as_str() {
        "add" => {
            if a.operands.is_empty() {
                return Err(Fatal(format!("which domain?\n{DOMAIN_USAGE}")));
            }
            for d in &a.operands {
                let name = dir.add_domain(d).map_err(dir_err)?;
                println!("domain {name} added");
            }
            hint(&cfg, params::VIRTUAL_MAILBOX_DOMAINS, "directory:domains");
        }
        "del" | "delete" | "remove" => {
            let d = one(&a, "domain", DOMAIN_USAGE)?;
            dir.del_domain(d, a.all).map_err(dir_err)?;
            println!("domain {} deleted", d.to_lowercase());
        }
        "enable" | "disable" => {
            let d = one(&a, "domain", DOMAIN_USAGE)?;
            dir.set_domain_enabled(d, verb == "enable")
                .map_err(dir_err)?;
            println!("domain {} {verb}d", d.to_lowercase());
        }
        "list" => {
            let list = dir.domains().map_err(|e| Fatal(e.to_string()))?;
            for d in list {
                println!(
                    "{}\t{} mailbox(es)\t{} alias(es){}",
                    d.name,
                    d.mailboxes,
                    d.aliases,
                    if d.enabled { "" } else { "\tdisabled" }
                );
            }
        }
        other => {
            return Err(Fatal(format!(
                "unknown domain command \"{other}\"\n{DOMAIN_USAGE}"
            )));
        }
    }
    tell_daemon(&cfg);
    Ok(ExitCode::SUCCESS)
}

/// Reads a new password: from standard input's first line, or twice from
/// the terminal without echo.
fn new_password(from_stdin: bool) -> Result<String, Fatal> {
    let pw = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Fatal(format!("cannot read the password from standard input: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = ask("New password: ")?;
        let second = ask("Retype new password: ")?;
        if first != second {
            return Err(Fatal("the passwords do not match; nothing changed".into()));
        }
        first
    };
    if pw.is_empty() {
        return Err(Fatal("empty password; nothing changed".into()));
    }
    Ok(pw)
}

/// Asks on the terminal with echo off.
fn ask(prompt: &str) -> Result<String, Fatal> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Fatal("no terminal to ask for the password on; use --password-stdin".into())
        })?;
    let saved = tcgetattr(&tty).map_err(|e| Fatal(format!("terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // Echo goes off before the prompt appears, and nothing typed is
    // flushed: an answer typed right after the prompt is kept.
    tcsetattr(&tty, SetArg::TCSANOW, &quiet).map_err(|e| Fatal(format!("terminal: {e}")))?;
    let mut out = &tty;
    let _ = out.write_all(prompt.as_bytes());
    let _ = out.flush();
    let mut line = String::new();
    let r = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &saved);
    r.map_err(|e| Fatal(format!("terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn parse_quota(q: &str) -> Result<u64, Fatal> {
    ironpost_conf::value::parse_size(q).map_err(|e| Fatal(format!("--quota \"{q}\": expected {e}")))
}

/// A size as Dovecot writes quotas: `1G`, `500M`, `10K`, or bytes.
fn show_size(n: u64) -> String {
    for (unit, div) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if n >= div && n.is_multiple_of(div) {
            return format!("{}{unit}", n / div);
        }
    }
    n.to_string()
}

/// `ironpost user ...`
pub fn run_user(args: &[String]) -> CmdResult {
    let Some((verb, rest)) = args.split_first() else {
        return Err(Fatal(USER_USAGE.into()));
    };
    let a = parse(rest, USER_USAGE)?;
    let cfg = super::load_config(a.config_dir.as_deref())?;
    let dir = open(&cfg)?;
    match verb.as_str() {
        "add" => {
            let address = one(&a, "address", USER_USAGE)?;
            let quota = a
                .quota
                .as_deref()
                .map(parse_quota)
                .transpose()?
                .unwrap_or(0);
            let pw = new_password(a.password_stdin)?;
            let fields = password_fields(&pw).map_err(Fatal)?;
            let m = dir
                .add_mailbox(address, &fields, quota, a.maildir.as_deref())
                .map_err(dir_err)?;
            let base = cfg.get_str(params::VIRTUAL_MAILBOX_BASE)?;
            println!(
                "mailbox {} added (Maildir {}/{})",
                m.address,
                base.trim().trim_end_matches('/'),
                m.maildir
            );
            hint(&cfg, params::VIRTUAL_MAILBOX_MAPS, "directory:mailboxes");
        }
        "passwd" | "password" => {
            let address = one(&a, "address", USER_USAGE)?;
            // Refuse before asking for a password nobody can use.
            if dir
                .mailbox(address)
                .map_err(|e| Fatal(e.to_string()))?
                .is_none()
            {
                return Err(Fatal(format!(
                    "{} is not a mailbox of the directory",
                    address.to_lowercase()
                )));
            }
            let pw = new_password(a.password_stdin)?;
            let fields = password_fields(&pw).map_err(Fatal)?;
            dir.set_password(address, &fields).map_err(dir_err)?;
            println!("password of {} changed", address.to_lowercase());
        }
        "del" | "delete" | "remove" => {
            let address = one(&a, "address", USER_USAGE)?;
            let m = dir.del_mailbox(address).map_err(dir_err)?;
            println!(
                "mailbox {} deleted (its Maildir {} is kept on disk)",
                m.address, m.maildir
            );
        }
        "enable" | "disable" => {
            let address = one(&a, "address", USER_USAGE)?;
            dir.set_mailbox_enabled(address, verb == "enable")
                .map_err(dir_err)?;
            println!("mailbox {} {verb}d", address.to_lowercase());
        }
        "quota" => {
            let (address, q) = match a.operands.as_slice() {
                [x, q] => (x.as_str(), q.as_str()),
                _ => {
                    return Err(Fatal(
                        "usage: ironpost user quota ADDRESS SIZE (0: no limit)".into(),
                    ));
                }
            };
            let quota = parse_quota(q)?;
            dir.set_quota(address, quota).map_err(dir_err)?;
            println!(
                "quota of {} set to {}",
                address.to_lowercase(),
                show_size(quota)
            );
        }
        "list" => {
            let domain = match a.operands.as_slice() {
                [] => None,
                [d] => Some(d.as_str()),
                _ => return Err(Fatal(format!("one domain at a time\n{USER_USAGE}"))),
            };
            for m in dir.mailboxes(domain).map_err(|e| Fatal(e.to_string()))? {
                let mut extra = String::new();
                if m.quota > 0 {
                    extra.push_str(&format!("\tquota {}", show_size(m.quota)));
                }
                if !m.enabled {
                    extra.push_str("\tdisabled");
                }
                println!("{}{extra}", m.address);
            }
        }
        "show" => {
            let address = one(&a, "address", USER_USAGE)?;
            let Some(m) = dir.mailbox(address).map_err(|e| Fatal(e.to_string()))? else {
                return Err(Fatal(format!(
                    "{} is not a mailbox of the directory",
                    address.to_lowercase()
                )));
            };
            let base = cfg.get_str(params::VIRTUAL_MAILBOX_BASE)?;
            let scheme =
                crate::auth::password::scheme_of(&m.password).unwrap_or_else(|| "none".into());
            let mut scram = Vec::new();
            if !m.scram_sha1.is_empty() {
                scram.push("SCRAM-SHA-1");
            }
            if !m.scram_sha256.is_empty() {
                scram.push("SCRAM-SHA-256");
            }
            println!("address:  {}", m.address);
            println!("domain:   {}", m.domain);
            println!(
                "maildir:  {}/{}",
                base.trim().trim_end_matches('/'),
                m.maildir
            );
            println!(
                "quota:    {}",
                if m.quota == 0 {
                    "none".to_string()
                } else {
                    show_size(m.quota)
                }
            );
            println!("enabled:  {}", if m.enabled { "yes" } else { "no" });
            if scram.is_empty() {
                println!("password: {scheme}");
            } else {
                println!("password: {scheme}, with {} keys", scram.join(" and "));
            }
            let created = chrono::DateTime::from_timestamp(m.created, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            println!("created:  {created}");
        }
        other => {
            return Err(Fatal(format!(
                "unknown user command \"{other}\"\n{USER_USAGE}"
            )));
        }
    }
    tell_daemon(&cfg);
    Ok(ExitCode::SUCCESS)
}

/// `ironpost alias ...`
pub fn run_alias(args: &[String]) -> CmdResult {
    let Some((verb, rest)) = args.split_first() else {
        return Err(Fatal(ALIAS_USAGE.into()));
    };
    let a = parse(rest, ALIAS_USAGE)?;
    let cfg = super::load_config(a.config_dir.as_deref())?;
    let dir = open(&cfg)?;
    let targets = |ops: &[String]| -> Vec<String> {
        ops.iter()
            .flat_map(|t| ironpost_conf::value::split_list(t))
            .collect()
    };
    match verb.as_str() {
        "add" => {
            let Some((address, rest)) = a.operands.split_first() else {
                return Err(Fatal(format!("which alias?\n{ALIAS_USAGE}")));
            };
            let alias = dir.add_alias(address, &targets(rest)).map_err(dir_err)?;
            println!("{}: {}", alias.address, alias.targets.join(", "));
            hint(&cfg, params::VIRTUAL_ALIAS_MAPS, "directory:aliases");
        }
        "del" | "delete" | "remove" => {
            let Some((address, rest)) = a.operands.split_first() else {
                return Err(Fatal(format!("which alias?\n{ALIAS_USAGE}")));
            };
            dir.del_alias(address, &targets(rest)).map_err(dir_err)?;
            println!("alias {} changed", address.to_lowercase());
        }
        "list" => {
            let domain = match a.operands.as_slice() {
                [] => None,
                [d] => Some(d.as_str()),
                _ => return Err(Fatal(format!("one domain at a time\n{ALIAS_USAGE}"))),
            };
            for alias in dir.aliases(domain).map_err(|e| Fatal(e.to_string()))? {
                println!("{}: {}", alias.address, alias.targets.join(", "));
            }
        }
        other => {
            return Err(Fatal(format!(
                "unknown alias command \"{other}\"\n{ALIAS_USAGE}"
            )));
        }
    }
    tell_daemon(&cfg);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(show_size(1 << 30), "1G");
        assert_eq!(show_size(500 << 20), "500M");
        assert_eq!(show_size(1500), "1500");
        assert_eq!(parse_quota("1G").unwrap(), 1 << 30);
        assert!(parse_quota("lots").is_err());
    }
}
