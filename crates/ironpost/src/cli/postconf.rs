//! `postconf`: show the configuration, and edit main.cf in place, with
//! Postfix's flags and output (postconf(1)):
//!
//! | flags          | does                                                     |
//! |----------------|----------------------------------------------------------|
//! | (none)         | every parameter, `name = value`, sorted                  |
//! | `-n`           | only the parameters set in main.cf                       |
//! | `-d`           | the built-in defaults                                    |
//! | `-h` / `-H`    | values only / names only                                 |
//! | `-x`           | values with `$name` expanded                             |
//! | `NAME ...`     | only these parameters                                    |
//! | `-o name=value`| override a value for this run                            |
//! | `-e name=value ...` | edit main.cf: replace or append                     |
//! | `-X name ...`  | remove parameters from main.cf                           |
//! | `-# name ...`  | comment parameters out                                   |
//! | `-m`           | the lookup table types this build supports               |
//! | `-c DIR`       | the configuration directory                              |

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use ironpost_conf::edit::{Edit, edit_main_cf};
use ironpost_conf::maincf::split_nameval;
use ironpost_conf::params::{self, DEFAULT_CONFIG_DIRECTORY};
use ironpost_conf::{Config, ErrorKind};

use super::getopt::getopt;
use super::{CmdResult, Fatal, config_dir, warn};
use crate::maps::SUPPORTED_TYPES;

pub fn run(args: &[String]) -> CmdResult {
    let p = getopt(args, "c:dehHmno:pvxX#f").map_err(Fatal)?;
    let edits = ['e', 'X', '#'].iter().filter(|c| p.has(**c)).count();
    if edits > 1 {
        return Err(Fatal("specify one of -e, -X or -#".into()));
    }
    if p.has('m') {
        let mut out = String::new();
        for t in SUPPORTED_TYPES {
            out.push_str(t);
            out.push('\n');
        }
        print(&out);
        return Ok(ExitCode::SUCCESS);
    }
    if edits == 1 {
        return edit(&p);
    }
    show(&p)
}

fn show(p: &super::getopt::Parsed) -> CmdResult {
    let host = crate::host::facts();
    let dir = config_dir(p.value('c'));
    let defaults = p.has('d');
    let mut cfg = if defaults {
        Config::defaults_only(dir.as_deref(), &host)
    } else {
        Config::load(dir.as_deref(), &host)?
    };
    for o in p.values('o') {
        let (name, value) =
            split_nameval(o).map_err(|k| Fatal(ironpost_conf::ConfError::new(k).to_string()))?;
        cfg.set_override(name, value, None);
    }
    if !defaults {
        for w in cfg.warnings() {
            warn(&w);
        }
        // Like Postfix, refuse to show a configuration whose values cannot
        // be expanded (a syntax error or a reference loop), -x or not.
        cfg.check_expansions()?;
    }
    let names: Vec<String> = if !p.operands.is_empty() {
        p.operands.clone()
    } else if p.has('n') {
        cfg.set_names()
    } else if defaults {
        params::PARAMS.iter().map(|p| p.name.to_string()).collect()
    } else {
        cfg.names()
    };
    let known = if p.operands.is_empty() {
        None
    } else {
        Some(if defaults {
            params::PARAMS.iter().map(|p| p.name.to_string()).collect()
        } else {
            cfg.names()
        })
    };

    let mut out = String::new();
    for name in &names {
        if let Some(known) = &known
            && !known.contains(name)
        {
            warn(&format!("{name}: unknown parameter"));
            continue;
        }
        let value = if p.has('x') {
            cfg.expand(name)?.value
        } else {
            cfg.raw(name).unwrap_or_default().to_string()
        };
        // postconf prints values with white space runs folded to one space.
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if p.has('H') {
            out.push_str(name);
        } else if p.has('h') {
            out.push_str(&value);
        } else if value.is_empty() {
            out.push_str(name);
            out.push_str(" =");
        } else {
            out.push_str(name);
            out.push_str(" = ");
            out.push_str(&value);
        }
        out.push('\n');
    }
    print(&out);
    Ok(ExitCode::SUCCESS)
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (postconf | head) is not an error worth reporting.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn edit(p: &super::getopt::Parsed) -> CmdResult {
    let dir = config_dir(p.value('c')).unwrap_or_else(|| DEFAULT_CONFIG_DIRECTORY.into());
    let path = dir.join("main.cf");
    let op = if p.has('e') {
        if p.operands.is_empty() {
            return Err(Fatal("-e requires name=value arguments".into()));
        }
        let mut pairs = Vec::new();
        for arg in &p.operands {
            let (name, value) = split_nameval(arg).map_err(|k| {
                Fatal(match k {
                    ErrorKind::MissingEquals(_) => {
                        format!("missing '=' after attribute name: \"{}\"", arg.trim())
                    }
                    other => ironpost_conf::ConfError::new(other).to_string(),
                })
            })?;
            pairs.push((name.to_string(), value.to_string()));
        }
        Edit::Set(pairs)
    } else {
        let flag = if p.has('X') { "-X" } else { "-#" };
        if p.operands.is_empty() {
            return Err(Fatal(format!("{flag} requires parameter names")));
        }
        for name in &p.operands {
            if name.contains('=') || name.trim().is_empty() || name.contains(char::is_whitespace) {
                return Err(Fatal(format!(
                    "{flag} takes parameter names, not \"{name}\""
                )));
            }
        }
        let names = p.operands.clone();
        if flag == "-X" {
            Edit::Remove(names)
        } else {
            Edit::CommentOut(names)
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Fatal(format!(
            "open {} for reading: {}",
            path.display(),
            ironpost_conf::io_reason(&e)
        ))
    })?;
    let edited = edit_main_cf(&text, &op);
    for name in &edited.multiple {
        warn(&format!(
            "{}: multiple entries for \"{name}\"",
            path.display()
        ));
    }
    if edited.text != text {
        replace_file(&path, edited.text.as_bytes()).map_err(|e| {
            Fatal(format!(
                "write {}: {}",
                path.display(),
                ironpost_conf::io_reason(&e)
            ))
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces `path` atomically: a temporary file in the same directory with
/// the same permissions, fsync'd, renamed over the original.
fn replace_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("main.cf"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
