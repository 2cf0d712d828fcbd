//! `ironpost quickstart DIR`: a self-contained instance under one folder
//! (configuration, queue, mailboxes, log) that runs without root.
//!
//! The demo domain is a virtual mailbox domain of the user directory
//! (SQLite in `DIR/data`), so its users need no system account; `myorigin = $mydomain`, so `root` and
//! `jerry` typed in a session become addresses in that domain. With
//! `--port-offset N` every service listens on 127.0.0.1 at N plus its
//! standard port (smtp 25 -> N+25).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{CmdResult, Fatal};

const USAGE: &str = "usage: ironpost quickstart DIR [--domain DOMAIN] [--user NAME] [--password SECRET] [--port-offset N] [--force]";

struct Options {
    dir: PathBuf,
    domain: String,
    user: String,
    password: Option<String>,
    port_offset: Option<u16>,
    force: bool,
}

fn parse(args: &[String]) -> Result<Options, Fatal> {
    let mut dir = None;
    let mut o = Options {
        dir: PathBuf::new(),
        domain: "example.test".into(),
        user: "jerry".into(),
        password: None,
        port_offset: None,
        force: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, Fatal> {
            match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) => Ok(v),
                None => Err(Fatal(format!("quickstart: {name} needs a value\n{USAGE}"))),
            }
        };
        match key {
            "--domain" => o.domain = value("--domain")?.to_ascii_lowercase(),
            "--user" => o.user = value("--user")?,
            "--password" => o.password = Some(value("--password")?),
            "--port-offset" => {
                let v = value("--port-offset")?;
                o.port_offset = Some(v.parse().map_err(|_| {
                    Fatal(format!(
                        "quickstart: --port-offset: \"{v}\" is not a number from 0 to 64000"
                    ))
                })?);
            }
            "--force" => o.force = true,
            k if k.starts_with('-') => {
                return Err(Fatal(format!(
                    "quickstart: unknown option \"{k}\"\n{USAGE}"
                )));
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => {
                return Err(Fatal(format!(
                    "quickstart: unexpected argument \"{a}\"\n{USAGE}"
                )));
            }
        }
    }
    o.dir = dir.ok_or_else(|| Fatal(format!("quickstart: which directory?\n{USAGE}")))?;
    if !ironpost_proto::smtp::address::valid_domain(&o.domain) || !o.domain.contains('.') {
        return Err(Fatal(format!(
            "quickstart: --domain: \"{}\" is not a domain name",
            o.domain
        )));
    }
    if o.user.is_empty()
        || !o
            .user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(Fatal(format!(
            "quickstart: --user: \"{}\" must be letters, digits, '.', '_' or '-'",
            o.user
        )));
    }
    if let Some(off) = o.port_offset
        && off > 64000
    {
        return Err(Fatal(
            "quickstart: --port-offset must be at most 64000".into(),
        ));
    }
    Ok(o)
}

fn write(path: &Path, text: &str) -> Result<(), Fatal> {
    std::fs::write(path, text).map_err(|e| {
        Fatal(format!(
            "write {}: {}",
            path.display(),
            ironpost_conf::io_reason(&e)
        ))
    })
}

/// The master.cf of the instance.
fn master_cf(offset: Option<u16>) -> String {
    let name = |service: &str, port: u16| match offset {
        Some(n) => format!("127.0.0.1:{}", n + port),
        None => service.to_string(),
    };
    let mut s = String::from(
        "# master.cf: the services, in Postfix's format (master(5)).\n\
         # service      type  private unpriv  chroot  wakeup  maxproc command + args\n",
    );
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       smtpd\n",
        name("smtp", 25)
    ));
    // As Postfix's stock master.cf: mail clients log in on submission
    // (STARTTLS required) and smtps (TLS from the start).
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       smtpd\n  -o syslog_name=ironpost/submission\n  -o smtpd_tls_security_level=encrypt\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n",
        name("submission", 587)
    ));
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       smtpd\n  -o syslog_name=ironpost/smtps\n  -o smtpd_tls_wrappermode=yes\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n",
        name("smtps", 465)
    ));
    // As Dovecot's pop3 and pop3s listeners: STLS on 110, TLS on 995.
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       pop3d\n",
        name("pop3", 110)
    ));
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       pop3d\n  -o pop3_tls_wrappermode=yes\n",
        name("pop3s", 995)
    ));
    // As Dovecot's imap and imaps listeners: STARTTLS on 143, TLS on 993.
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       imapd\n",
        name("imap", 143)
    ));
    s.push_str(&format!(
        "{:<14} inet  n       -       n       -       -       imapd\n  -o imap_tls_wrappermode=yes\n",
        name("imaps", 993)
    ));
    s
}

pub fn run_quickstart(args: &[String]) -> CmdResult {
    let o = parse(args)?;
    let dir = if o.dir.is_absolute() {
        o.dir.clone()
    } else {
        std::env::current_dir()
            .map_err(|e| Fatal(format!("cannot find the current directory: {e}")))?
            .join(&o.dir)
    };
    // `./demo` is written as `/current/demo` in the configuration.
    let dir: PathBuf = dir
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let etc = dir.join("etc");
    if etc.join("main.cf").exists() && !o.force {
        return Err(Fatal(format!(
            "{} exists; not overwriting it (use --force to start afresh)",
            etc.join("main.cf").display()
        )));
    }
    for sub in ["etc", "etc/tls", "spool", "data", "log", "mail", "vmail"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| {
            Fatal(format!(
                "create {}: {}",
                p.display(),
                ironpost_conf::io_reason(&e)
            ))
        })?;
    }
    let d = dir.display().to_string();
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let (domain, user) = (&o.domain, &o.user);
    let interfaces = if o.port_offset.is_some() {
        "127.0.0.1"
    } else {
        "all"
    };
    let main_cf = format!(
        "# main.cf of an ironpost instance made by `ironpost quickstart`.\n\
         # Postfix syntax; `ironpost postconf -n -c {d}/etc` shows what is set.\n\
         \n\
         myhostname = mail.{domain}\n\
         mydomain = {domain}\n\
         myorigin = $mydomain\n\
         # {domain} is a virtual mailbox domain (below), so it is not listed here.\n\
         mydestination = localhost\n\
         # jerry+lists@{domain} goes to jerry (Debian's default too).\n\
         recipient_delimiter = +\n\
         inet_interfaces = {interfaces}\n\
         # Only this machine may send to other domains; others get\n\
         # \"554 5.7.1 Relay access denied\" (Postfix's default says 454, try later).\n\
         smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n\
         \n\
         # Everything of this instance lives under {d}.\n\
         queue_directory = {d}/spool\n\
         data_directory = {d}/data\n\
         maillog_file = {d}/log/maillog\n\
         mail_spool_directory = {d}/mail\n\
         alias_maps = hash:{d}/etc/aliases\n\
         alias_database = hash:{d}/etc/aliases\n\
         \n\
         # Virtual mailboxes: one Maildir per user under virtual_mailbox_base.\n\
         # Domains, mailboxes and aliases are in the user directory (SQLite):\n\
         # `ironpost domain|user|alias ... -c {d}/etc` changes them, at once.\n\
         directory_url = sqlite:{d}/data/directory.db\n\
         virtual_mailbox_domains = directory:domains\n\
         virtual_mailbox_base = {d}/vmail\n\
         virtual_mailbox_maps = directory:mailboxes\n\
         virtual_alias_maps = directory:aliases\n\
         virtual_uid_maps = static:{uid}\n\
         virtual_gid_maps = static:{gid}\n\
         virtual_minimum_uid = {}\n\
         \n\
         # TLS: STARTTLS offered on port 25 with a self-signed certificate made\n\
         # by quickstart (replace the files with your own).\n\
         smtpd_tls_cert_file = {d}/etc/tls/cert.pem\n\
         smtpd_tls_key_file = {d}/etc/tls/key.pem\n\
         smtpd_tls_security_level = may\n",
        uid.min(100)
    );
    let (cert, key) = crate::tls::self_signed(&format!("mail.{domain}"))
        .map_err(|e| Fatal(format!("cannot make a certificate: {e}")))?;
    write(&etc.join("tls/cert.pem"), &cert)?;
    write(&etc.join("tls/key.pem"), &key)?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(
            etc.join("tls/key.pem"),
            std::fs::Permissions::from_mode(0o600),
        );
    }
    write(&etc.join("main.cf"), &main_cf)?;
    write(&etc.join("master.cf"), &master_cf(o.port_offset))?;
    write(
        &etc.join("aliases"),
        "# aliases(5): run `ironpost newaliases -c DIR/etc` after a change.\n\
         postmaster: root\n\
         MAILER-DAEMON: postmaster\n\
         abuse: postmaster\n",
    )?;
    let c = etc.display().to_string();
    let r = super::postmap::run_postalias(&[
        "-c".to_string(),
        c,
        format!("hash:{}", etc.join("aliases").display()),
    ])?;
    if r != ExitCode::SUCCESS {
        return Err(Fatal("postalias aliases failed".into()));
    }
    // The user directory: the domain, the user, and the role addresses.
    let url = format!("sqlite:{d}/data/directory.db");
    let dir = crate::auth::directory::Directory::open(&url)
        .map_err(|e| Fatal(format!("cannot make the user directory: {e}")))?;
    let dir_err = |e: crate::auth::directory::DirError| Fatal(format!("user directory: {e}"));
    dir.add_domain(domain).map_err(dir_err)?;
    // Without --password the mailbox gets mail but nobody can log in
    // ("!" is a locked password) until `ironpost user passwd`.
    let fields = match &o.password {
        Some(pw) => crate::auth::directory::password_fields(pw)
            .map_err(|e| Fatal(format!("cannot hash the password: {e}")))?,
        None => crate::auth::directory::PasswordFields {
            password: "!".into(),
            scram_sha1: String::new(),
            scram_sha256: String::new(),
        },
    };
    dir.add_mailbox(&format!("{user}@{domain}"), &fields, 0, None)
        .map_err(dir_err)?;
    for role in ["postmaster", "abuse", "root"] {
        if role != user {
            dir.add_alias(&format!("{role}@{domain}"), &[format!("{user}@{domain}")])
                .map_err(dir_err)?;
        }
    }
    let smtp = match o.port_offset {
        Some(n) => format!("127.0.0.1 {}", n + 25),
        None => "localhost 25".to_string(),
    };
    println!("ironpost: a new instance is in {d}");
    println!("  configuration  {d}/etc (main.cf, master.cf, aliases)");
    println!("  users          {d}/data/directory.db (ironpost domain|user|alias ... -c {d}/etc)");
    println!("  certificate    {d}/etc/tls/cert.pem (self-signed, for mail.{domain})");
    println!("  queue          {d}/spool");
    println!("  mailboxes      {d}/vmail/{domain}/{user}/ (Maildir)");
    println!("  mail log       {d}/log/maillog");
    println!();
    println!("Run it in the foreground:   ironpost serve -c {d}/etc");
    println!("or as a daemon:             ironpost start -c {d}/etc   (stop, reload, status)");
    println!("Then send {user}@{domain} a message:   telnet {smtp}");
    let port = |p: u16| match o.port_offset {
        Some(n) => format!("127.0.0.1 port {}", n + p),
        None => format!("port {p}"),
    };
    if o.password.is_some() {
        println!(
            "Mail clients log in as {user}@{domain} on {} (STARTTLS) or {} (TLS).",
            port(587),
            port(465)
        );
        println!(
            "They read mail over IMAP on {} (STARTTLS) or {} (TLS), or POP3 on {} or {}.",
            port(143),
            port(993),
            port(110),
            port(995)
        );
    } else {
        println!(
            "No password was given: {user}@{domain} gets mail but cannot log in until\n  ironpost user passwd {user}@{domain} -c {d}/etc"
        );
    }
    if o.port_offset.is_none() && !crate::sysuser::running_as_root() {
        println!();
        println!(
            "Note: without --port-offset the services use the standard ports (25), which need root."
        );
    }
    Ok(ExitCode::SUCCESS)
}
