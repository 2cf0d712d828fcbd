//! The commands. One binary answers to many names: invoked as `postconf`,
//! `postmap`, `postalias` or `newaliases` (a symlink, or `ironpost compat
//! NAME ...`) it behaves as that Postfix command, flags and output included.
//! Invoked as `ironpost` it takes a subcommand.
//!
//! ## Layout
//! - [`getopt`]: getopt(3) for the Postfix-style flags.
//! - [`postconf`]: `postconf` (show, edit, check main.cf).
//! - [`postmap`]: `postmap`, `postalias`, `newaliases`.
//! - [`daemon`]: `serve`, and `start`/`stop`/`reload`/`status`/`flush`
//!   (also as `postfix start` ...).
//! - [`quickstart`]: a self-contained instance in one folder.
//! - [`directory`]: `domain`, `user`, `alias`: the user directory.
//! - [`sendmail`]: Postfix's sendmail(1): posting into `maildrop/`.
//! - [`queuetools`]: `mailq`, `postqueue`, `postsuper`, `postcat`.
//!
//! Messages go to stderr as Postfix prints them: `postconf: warning: ...`,
//! `postmap: fatal: ...` (exit status 1).

pub mod daemon;
pub mod directory;
pub mod getopt;
pub mod postconf;
pub mod postmap;
pub mod queuetools;
pub mod quickstart;
pub mod sendmail;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use ironpost_conf::{ConfError, Config};

/// Postfix-compatible command names this binary answers to.
pub const COMPAT_COMMANDS: &[&str] = &[
    "mailq",
    "newaliases",
    "postalias",
    "postcat",
    "postconf",
    "postfix",
    "postmap",
    "postqueue",
    "postsuper",
    "sendmail",
];

/// A fatal error: printed as `PROGRAM: fatal: MESSAGE`, exit status 1.
#[derive(Debug)]
pub struct Fatal(pub String);

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConfError> for Fatal {
    fn from(e: ConfError) -> Self {
        Fatal(e.to_string())
    }
}

impl From<String> for Fatal {
    fn from(s: String) -> Self {
        Fatal(s)
    }
}

/// The result of a command: its exit status, or a fatal error.
pub type CmdResult = Result<ExitCode, Fatal>;

static PROGRAM: OnceLock<String> = OnceLock::new();

/// The name messages are prefixed with (`postconf`, `postmap`, `ironpost`).
pub fn program() -> &'static str {
    PROGRAM.get().map(String::as_str).unwrap_or("ironpost")
}

/// Prints `PROGRAM: warning: MESSAGE` on stderr.
pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{}: warning: {msg}", program());
}

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let mut args: Vec<String> = Vec::new();
    for a in std::env::args_os() {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(a) => {
                eprintln!("ironpost: fatal: argument is not valid UTF-8: {a:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    if COMPAT_COMMANDS.contains(&argv0.as_str()) {
        return run_compat(&argv0, rest);
    }
    run_ironpost(rest)
}

/// Runs a Postfix-compatible command by name.
pub fn run_compat(name: &str, args: &[String]) -> ExitCode {
    let _ = PROGRAM.set(name.to_string());
    install_diagnostics();
    let result = match name {
        "postconf" => postconf::run(args),
        "postmap" => postmap::run_postmap(args),
        "postalias" => postmap::run_postalias(args),
        "newaliases" => postmap::run_newaliases(args),
        "sendmail" => sendmail::run_sendmail(args),
        "mailq" => queuetools::run_mailq(args),
        "postqueue" => queuetools::run_postqueue(args),
        "postsuper" => queuetools::run_postsuper(args),
        "postcat" => queuetools::run_postcat(args),
        "postfix" => {
            // `postfix [-c DIR] start`: the word may follow the options.
            let word = args
                .iter()
                .enumerate()
                .find(|(i, a)| !a.starts_with('-') && (*i == 0 || args[i - 1] != "-c"))
                .map(|(i, _)| i);
            match word {
                Some(i) => {
                    let mut rest = args.to_vec();
                    let w = rest.remove(i);
                    daemon::run_control(&w, &rest)
                }
                None => Err(Fatal(
                    "usage: postfix [-c DIR] start|stop|reload|status|flush|check".into(),
                )),
            }
        }
        _ => Err(Fatal(format!("unknown command: {name}"))),
    };
    finish(result)
}

fn finish(result: CmdResult) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(Fatal(msg)) => {
            let _ = writeln!(std::io::stderr(), "{}: fatal: {msg}", program());
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "\
usage: ironpost COMMAND [ARGS]

Commands:
  postconf [-dhHmnx] [-c DIR] [-e|-X|-#] [NAME ...]   show or edit main.cf
  postmap [-fiqrsdw] [-c DIR] [TYPE:]FILE ...         build or query lookup tables
  postalias [-fiqrsdw] [-c DIR] [TYPE:]FILE ...       build or query alias tables
  newaliases [-c DIR]                                rebuild alias_database
  check [-c DIR]                                     check main.cf, as `postfix check`
  quickstart DIR [--domain D] [--user U] [--port-offset N]
                                                     make a self-contained instance in DIR
  domain add|del|list|enable|disable DOMAIN          virtual domains of the user directory
  user add|passwd|del|list|show|quota|enable|disable ADDRESS
                                                     mailboxes (passwords asked twice, or --password-stdin)
  alias add|del|list ADDRESS [TARGET,...]            aliases of the user directory
  serve [-c DIR]                                     run the mail system in the foreground
  start|stop|reload|status|flush [-c DIR]            control the mail system as a daemon
  sendmail [-t] [-i] [-f SENDER] [RCPT ...]          post a message (also -bs, -bp, -bi)
  mailq | postqueue -p|-f|-j                         list or flush the queue
  postsuper -d ID|ALL [QUEUE]                        delete queued messages
  postcat -q ID                                      show a queued message
  compat NAME [ARGS]                                 run a Postfix command by name
  doc parameters                                     the parameter reference (Markdown)
  version                                            print the version

The configuration directory is -c DIR, else $IRONPOST_CONFIG_DIR, else
$MAIL_CONFIG, else /etc/ironpost. Linked or copied under a Postfix command's
name (postconf, postmap, postalias, newaliases, sendmail, mailq, postqueue,
postsuper, postcat, postfix), ironpost behaves as that command.
";

fn run_ironpost(args: &[String]) -> ExitCode {
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    match cmd.as_str() {
        c if COMPAT_COMMANDS.contains(&c) => run_compat(c, rest),
        "compat" => match rest.first() {
            Some(name) if COMPAT_COMMANDS.contains(&name.as_str()) => run_compat(name, &rest[1..]),
            Some(name) => {
                eprintln!(
                    "ironpost: fatal: compat: unknown command \"{name}\" (known: {})",
                    COMPAT_COMMANDS.join(", ")
                );
                ExitCode::from(2)
            }
            None => {
                eprintln!(
                    "ironpost: fatal: compat: which command? ({})",
                    COMPAT_COMMANDS.join(", ")
                );
                ExitCode::from(2)
            }
        },
        "check" => {
            let _ = PROGRAM.set("ironpost".to_string());
            install_diagnostics();
            finish(check(rest))
        }
        "serve" => {
            let _ = PROGRAM.set("ironpost".to_string());
            install_diagnostics();
            finish(daemon::run_serve(rest))
        }
        "start" | "stop" | "reload" | "status" | "flush" => {
            let _ = PROGRAM.set("ironpost".to_string());
            install_diagnostics();
            finish(daemon::run_control(cmd, rest))
        }
        "quickstart" => {
            let _ = PROGRAM.set("ironpost".to_string());
            install_diagnostics();
            finish(quickstart::run_quickstart(rest))
        }
        "domain" | "user" | "alias" => {
            let _ = PROGRAM.set("ironpost".to_string());
            install_diagnostics();
            finish(match cmd.as_str() {
                "domain" => directory::run_domain(rest),
                "user" => directory::run_user(rest),
                _ => directory::run_alias(rest),
            })
        }
        "doc" => match rest.first().map(String::as_str) {
            Some("parameters") => {
                print!("{}", ironpost_conf::params::markdown_reference());
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!("ironpost: fatal: usage: ironpost doc parameters");
                ExitCode::from(2)
            }
        },
        "version" | "--version" | "-V" => {
            println!("ironpost {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("ironpost: fatal: unknown command \"{other}\"\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The configuration directory: `-c DIR`, else `$IRONPOST_CONFIG_DIR`, else
/// `$MAIL_CONFIG` (Postfix's variable), else the default.
pub fn config_dir(flag: Option<&str>) -> Option<PathBuf> {
    flag.map(PathBuf::from).or_else(|| {
        ["IRONPOST_CONFIG_DIR", "MAIL_CONFIG"]
            .iter()
            .filter_map(std::env::var_os)
            .find(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Loads main.cf from the configuration directory.
pub fn load_config(flag: Option<&str>) -> Result<Config, Fatal> {
    let dir = config_dir(flag);
    Ok(Config::load(dir.as_deref(), &crate::host::facts())?)
}

/// `ironpost check`: every parameter expanded and checked against its type;
/// each fault printed with file, line and parameter; exit 1 if any.
pub(crate) fn check(args: &[String]) -> CmdResult {
    let p = getopt::getopt(args, "c:v").map_err(Fatal)?;
    let config = load_config(p.value('c'))?;
    for w in config.warnings() {
        warn(&w);
    }
    let errors = config.check();
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &errors[..errors.len() - 1] {
        let _ = writeln!(std::io::stderr(), "{}: error: {e}", program());
    }
    Err(Fatal(errors[errors.len() - 1].to_string()))
}

/// Sends tracing events (warnings from table code, for instance) to stderr
/// in Postfix's shape: `PROGRAM: warning: MESSAGE`.
fn install_diagnostics() {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    struct PostfixStyle;
    impl<S, N> FormatEvent<S, N> for PostfixStyle
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> fmt::Result {
            let level = match *event.metadata().level() {
                tracing::Level::ERROR => "error: ",
                tracing::Level::WARN => "warning: ",
                _ => "",
            };
            write!(writer, "{}: {level}", program())?;
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            writeln!(writer)
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .event_format(PostfixStyle)
        .try_init();
}
