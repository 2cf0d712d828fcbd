//! `postmap`, `postalias` and `newaliases` (postmap(1), postalias(1)):
//! build the indexed file of a `hash:` table from its source, and query,
//! list or change tables of any type.
//!
//! ```text
//! postmap [-fimnNoprsuUvw] [-c DIR] [-d KEY] [-q KEY] [TYPE:]FILE ...
//! postalias (same flags; the source is in aliases(5) format)
//! newaliases [-c DIR]   (postalias on every table in alias_database)
//! ```
//!
//! `-q KEY` prints the value and exits 0 when found, 1 when not; `-q -` reads
//! keys from standard input and prints `key<TAB>value` for each one found.
//! `-s` lists every entry, `-d KEY` removes one, `-i` adds entries read from
//! standard input. `-f` keeps keys' case, `-r` lets later duplicates win,
//! `-w` silences duplicate warnings.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use ironpost_conf::params;
use ironpost_conf::value::is_table_spec;

use super::getopt::{Parsed, getopt};
use super::{CmdResult, Fatal, config_dir, load_config, warn};
use crate::maps::hash::{self, db_path};
use crate::maps::memory::MemoryTable;
use crate::maps::source::{SourceOptions, parse_source};
use crate::maps::{Map, MapContext, aliases};

/// Which source format a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `key whitespace value` (postmap).
    KeyValue,
    /// `name: value, value` (postalias).
    Aliases,
}

const POSTMAP_USAGE: &str =
    "usage: postmap [-fimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...";
const POSTALIAS_USAGE: &str =
    "usage: postalias [-fimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...";

pub fn run_postmap(args: &[String]) -> CmdResult {
    run(args, Format::KeyValue, POSTMAP_USAGE)
}

pub fn run_postalias(args: &[String]) -> CmdResult {
    run(args, Format::Aliases, POSTALIAS_USAGE)
}

/// `newaliases`: rebuild every table in alias_database.
pub fn run_newaliases(args: &[String]) -> CmdResult {
    let p = getopt(args, "c:vI").map_err(Fatal)?;
    let cfg = load_config(p.value('c'))?;
    for spec in cfg.get_maps(params::ALIAS_DATABASE)? {
        build(&spec, Format::Aliases, source_options(&p))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn source_options(p: &Parsed) -> SourceOptions {
    SourceOptions {
        fold_case: !p.has('f'),
        last_wins: p.has('r'),
        warn_duplicates: !p.has('w') && !p.has('r'),
    }
}

fn run(args: &[String], format: Format, usage: &str) -> CmdResult {
    let p = getopt(args, "bc:d:fFhimnNopq:rsuUvw").map_err(Fatal)?;
    if p.operands.is_empty() {
        return Err(Fatal(usage.to_string()));
    }
    let modes = [p.has('q'), p.has('d'), p.has('s')]
        .iter()
        .filter(|m| **m)
        .count();
    if modes > 1 {
        return Err(Fatal("specify only one of -s -q or -d".into()));
    }
    let default_type = default_type(p.value('c'))?;
    let specs: Vec<String> = p
        .operands
        .iter()
        .map(|o| {
            if is_table_spec(o) {
                o.clone()
            } else {
                format!("{default_type}:{o}")
            }
        })
        .collect();
    let opts = source_options(&p);
    if let Some(key) = p.value('q') {
        return query(&specs, key, &map_context(p.value('c'))?);
    }
    if let Some(key) = p.value('d') {
        return delete(&specs, key);
    }
    if p.has('s') {
        return list(&specs, format);
    }
    if p.has('i') {
        for spec in &specs {
            incremental(spec, format, opts)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for spec in &specs {
        build(spec, format, opts)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The settings tables need (passwd_file, directory_url) from main.cf when
/// there is one, else the defaults.
fn map_context(flag: Option<&str>) -> Result<MapContext, Fatal> {
    let dir = config_dir(flag).unwrap_or_else(|| params::DEFAULT_CONFIG_DIRECTORY.into());
    if dir.join("main.cf").exists() {
        Ok(MapContext::from_config(&load_config(flag)?)?)
    } else {
        Ok(MapContext::default())
    }
}

/// default_database_type from main.cf when there is one, else the default.
fn default_type(flag: Option<&str>) -> Result<String, Fatal> {
    let dir = config_dir(flag).unwrap_or_else(|| params::DEFAULT_CONFIG_DIRECTORY.into());
    if dir.join("main.cf").exists() {
        Ok(load_config(flag)?.get_enum(params::DEFAULT_DATABASE_TYPE)?)
    } else {
        Ok("hash".to_string())
    }
}

fn split_spec(spec: &str) -> (&str, &str) {
    spec.split_once(':').unwrap_or(("", spec))
}

/// Reads a source file and returns its entries (warnings printed).
fn read_source(
    path: &str,
    format: Format,
    opts: SourceOptions,
    text: Option<String>,
) -> Result<Vec<(String, String)>, Fatal> {
    let text = match text {
        Some(t) => t,
        None => std::fs::read_to_string(path)
            .map_err(|e| Fatal(format!("open {path}: {}", ironpost_conf::io_reason(&e))))?,
    };
    let (pairs, warnings) = match format {
        Format::KeyValue => {
            let (entries, warnings) = parse_source(path, &text, opts);
            (
                entries.into_iter().map(|e| (e.key, e.value)).collect(),
                warnings,
            )
        }
        Format::Aliases => {
            let (entries, warnings) = aliases::parse_aliases(path, &text);
            (
                entries.into_iter().map(|e| (e.name, e.value)).collect(),
                warnings,
            )
        }
    };
    for w in warnings {
        warn(&w);
    }
    Ok(pairs)
}

fn build(spec: &str, format: Format, opts: SourceOptions) -> Result<(), Fatal> {
    let (ty, name) = split_spec(spec);
    if ty != "hash" {
        return Err(not_indexed(ty));
    }
    let entries = read_source(name, format, opts, None)?;
    write(name, &entries)
}

fn write(name: &str, entries: &[(String, String)]) -> Result<(), Fatal> {
    let db = db_path(Path::new(name));
    hash::write_index(&db, entries).map_err(|e| {
        Fatal(format!(
            "create database {}: {}",
            db.display(),
            ironpost_conf::io_reason(&e)
        ))
    })
}

fn not_indexed(ty: &str) -> Fatal {
    if crate::maps::SUPPORTED_TYPES.contains(&ty) {
        Fatal(format!(
            "unsupported dictionary type: {ty} does not support bulk-mode creation."
        ))
    } else {
        Fatal(format!("unsupported dictionary type: {ty}"))
    }
}

/// The entries of an existing hash table, or a Postfix-worded fatal error.
fn existing_entries(name: &str) -> Result<Vec<(String, String)>, Fatal> {
    let db = db_path(Path::new(name));
    hash::read_entries(&db).map_err(|e| {
        Fatal(format!(
            "open database {}: {}",
            db.display(),
            ironpost_conf::io_reason(&e)
        ))
    })
}

fn incremental(spec: &str, format: Format, opts: SourceOptions) -> Result<(), Fatal> {
    let (ty, name) = split_spec(spec);
    if ty != "hash" {
        return Err(not_indexed(ty));
    }
    let added = read_source("-", format, opts, Some(read_stdin_lossy()))?;
    let db = db_path(Path::new(name));
    let mut entries = if db.exists() {
        existing_entries(name)?
    } else {
        Vec::new()
    };
    for (k, v) in added {
        match entries.iter_mut().find(|(ek, _)| *ek == k) {
            Some(e) if opts.last_wins => e.1 = v,
            Some(_) => {
                if opts.warn_duplicates {
                    warn(&format!("{}: duplicate entry: \"{k}\"", db.display()));
                }
            }
            None => entries.push((k, v)),
        }
    }
    write(name, &entries)
}

fn open_for_query(spec: &str, ctx: &MapContext) -> Result<Map, Fatal> {
    let (ty, name) = split_spec(spec);
    if ty == "hash" {
        // Postfix opens the database before the first query and dies if it
        // is missing; do the same, with its words.
        let db = db_path(Path::new(name));
        std::fs::metadata(&db).map_err(|e| {
            Fatal(format!(
                "open database {}: {}",
                db.display(),
                ironpost_conf::io_reason(&e)
            ))
        })?;
    }
    Map::open(spec, ctx).map_err(|e| Fatal(e.to_string()))
}

fn query(specs: &[String], key: &str, ctx: &MapContext) -> CmdResult {
    let maps: Vec<Map> = specs
        .iter()
        .map(|s| open_for_query(s, ctx))
        .collect::<Result<_, _>>()?;
    let find = |k: &str| -> Result<Option<String>, Fatal> {
        for m in &maps {
            if let Some(v) = m.lookup(k).map_err(|e| Fatal(e.to_string()))? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    let mut out = std::io::stdout().lock();
    let mut any = false;
    if key == "-" {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| Fatal(format!("read standard input: {e}")))?;
            let k = line.strip_suffix('\r').unwrap_or(&line);
            if k.is_empty() {
                continue;
            }
            if let Some(v) = find(k)? {
                any = true;
                let _ = writeln!(out, "{k}\t{v}");
            }
        }
    } else if let Some(v) = find(key)? {
        any = true;
        let _ = writeln!(out, "{v}");
    }
    let _ = out.flush();
    Ok(if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn delete(specs: &[String], key: &str) -> CmdResult {
    let keys: Vec<String> = if key == "-" {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        vec![key.to_lowercase()]
    };
    let mut any = false;
    for spec in specs {
        let (ty, name) = split_spec(spec);
        if ty != "hash" {
            return Err(Fatal(format!(
                "table {spec}: delete operation is not supported"
            )));
        }
        let mut entries = existing_entries(name)?;
        let before = entries.len();
        entries.retain(|(k, _)| !keys.contains(k));
        if entries.len() != before {
            any = true;
            write(name, &entries)?;
        }
    }
    Ok(if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list(specs: &[String], format: Format) -> CmdResult {
    let mut out = std::io::stdout().lock();
    let sep = if format == Format::Aliases {
        ":\t"
    } else {
        "\t"
    };
    for spec in specs {
        let (ty, name) = split_spec(spec);
        let entries: Vec<(String, String)> = match ty {
            "hash" => existing_entries(name)?,
            "texthash" => MemoryTable::texthash(name)
                .map_err(|e| Fatal(e.to_string()))?
                .entries()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            "inline" => MemoryTable::inline(spec, name)
                .map_err(|e| Fatal(e.to_string()))?
                .entries()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _ => {
                return Err(Fatal(format!(
                    "table {spec}: sequence operation is not supported"
                )));
            }
        };
        for (k, v) in entries {
            let _ = writeln!(out, "{k}{sep}{v}");
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// Standard input as text, invalid UTF-8 replaced.
fn read_stdin_lossy() -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
