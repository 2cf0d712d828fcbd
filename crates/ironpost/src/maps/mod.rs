//! Lookup tables, named `type:name` as in Postfix (DATABASE_README).
//!
//! ## Layout
//! - [`Map`]: one opened table; [`Map::open`] takes a `type:name` spec and
//!   [`Map::lookup`] answers found, not found, or a temporary failure.
//! - [`MapList`]: the tables of one `*_maps` parameter, searched in order,
//!   with Postfix's key search order for addresses ([`MapList::find_address`])
//!   and the network match for client addresses.
//! - [`source`]: the `key whitespace value` source format of postmap(1).
//! - [`hash`]: `hash:` tables: our indexed file, built by postmap next to the
//!   source as `NAME.db`, read with positioned reads, never loaded whole.
//! - [`lists`]: domain and network match lists (mydestination, mynetworks).
//! - [`memory`]: `texthash:` and `inline:{...}`, held in memory.
//! - [`cidr`]: `cidr:` tables, network patterns.
//! - [`regexp`]: `regexp:` (POSIX extended) and `pcre:` tables.
//! - [`unix`]: `unix:passwd.byname`, `unix:group.byname`.
//! - [`sql`]: `sqlite:`, `pgsql:`, `mysql:` tables configured by a file,
//!   as Postfix's *_table(5).
//! - [`directory`]: `directory:domains`, `directory:mailboxes`,
//!   `directory:aliases`, `directory:senders`: the user directory.
//! - [`aliases`]: the aliases(5) source format and alias values.
//!
//! A table that cannot be read where it should be (a missing `.db`, an
//! unreadable file) is a *temporary* failure, never "not found": callers defer
//! (451 4.3.0) rather than bounce or accept wrongly.

pub mod aliases;
pub mod cidr;
pub mod directory;
pub mod hash;
pub mod lists;
pub mod memory;
pub mod regexp;
pub mod source;
pub mod sql;
pub mod unix;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ironpost_conf::value::{split_list, strip_braces};

/// The table types this build supports, as `postconf -m` lists them.
pub const SUPPORTED_TYPES: &[&str] = &[
    "cidr",
    "directory",
    "hash",
    "inline",
    "mysql",
    "pcre",
    "pgsql",
    "regexp",
    "sqlite",
    "static",
    "texthash",
    "unix",
];

/// A fault in a table's source text, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// The file name, or the table spec for inline tables.
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}, line {}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for TableError {}

/// Why a table could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// `type:` is not a table type of this build.
    UnsupportedType(String),
    /// The spec has no `type:` part.
    NoType(String),
    /// The table's source has a fault; lookups would be wrong.
    Syntax(TableError),
    /// The file could not be read.
    Io(String),
    /// The table's name is malformed (the message says how).
    Invalid(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::UnsupportedType(spec) => {
                write!(f, "unsupported dictionary type: {spec}")
            }
            OpenError::NoType(spec) => write!(
                f,
                "table \"{spec}\" has no type: write it as type:name, like hash:{spec}"
            ),
            OpenError::Syntax(e) => write!(f, "{e}"),
            OpenError::Io(msg) | OpenError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for OpenError {}

/// A lookup that could not be answered now: the caller must defer, not treat
/// the key as absent. The message is Postfix's, for example
/// `hash:/etc/ironpost/aliases is unavailable. open database
/// /etc/ironpost/aliases.db: No such file or directory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError(pub String);

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LookupError {}

/// Settings a table may need beyond its name.
#[derive(Debug, Clone)]
pub struct MapContext {
    /// The passwd file behind `unix:passwd.byname`.
    pub passwd_file: PathBuf,
    /// The group file behind `unix:group.byname`.
    pub group_file: PathBuf,
    /// directory_url: the user directory behind `directory:` tables.
    pub directory_url: String,
}

impl MapContext {
    /// The files named by passwd_file and group_file.
    pub fn from_config(
        cfg: &ironpost_conf::Config,
    ) -> Result<MapContext, ironpost_conf::ConfError> {
        use ironpost_conf::params;
        Ok(MapContext {
            passwd_file: PathBuf::from(cfg.get_str(params::PASSWD_FILE)?.trim()),
            group_file: PathBuf::from(cfg.get_str(params::GROUP_FILE)?.trim()),
            directory_url: cfg.get_str(params::DIRECTORY_URL)?.trim().to_string(),
        })
    }
}

impl Default for MapContext {
    fn default() -> Self {
        MapContext {
            passwd_file: PathBuf::from("/etc/passwd"),
            group_file: PathBuf::from("/etc/group"),
            directory_url: String::new(),
        }
    }
}

#[derive(Debug)]
enum Table {
    Hash(hash::HashTable),
    Memory(memory::MemoryTable),
    Static(String),
    Cidr(cidr::CidrTable),
    Regexp(regexp::RegexpTable),
    Unix(unix::UnixTable),
    Directory(directory::DirectoryTable),
    Sql(sql::SqlTable),
    /// A table that could not be opened: every lookup is a temporary failure.
    Unavailable(String),
}

/// One opened lookup table.
#[derive(Debug)]
pub struct Map {
    spec: String,
    table: Table,
}

impl Map {
    /// Opens `type:name`. Syntax errors and unreadable files are errors here;
    /// a missing `.db` for `hash:` is not (lookups report it, and the table
    /// starts working as soon as postmap builds it).
    pub fn open(spec: &str, ctx: &MapContext) -> Result<Map, OpenError> {
        let spec = spec.trim();
        let Some((ty, name)) = spec.split_once(':') else {
            return Err(OpenError::NoType(spec.to_string()));
        };
        let table = match ty {
            // Postfix's proxymap is for chrooted daemons; we read directly.
            "proxy" => {
                return Map::open(name, ctx).map(|m| Map {
                    spec: spec.to_string(),
                    ..m
                });
            }
            "hash" => Table::Hash(hash::HashTable::new(spec, name)),
            "texthash" => Table::Memory(memory::MemoryTable::texthash(name)?),
            "inline" => Table::Memory(memory::MemoryTable::inline(spec, name)?),
            "static" => Table::Static(strip_braces(name).to_string()),
            "cidr" => {
                let (file, text) = read_source(spec, name)?;
                Table::Cidr(cidr::CidrTable::parse(&file, &text).map_err(OpenError::Syntax)?)
            }
            "regexp" | "pcre" => {
                let flavor = if ty == "pcre" {
                    regexp::Flavor::Pcre
                } else {
                    regexp::Flavor::Posix
                };
                let (file, text) = read_source(spec, name)?;
                Table::Regexp(
                    regexp::RegexpTable::parse(&file, &text, flavor).map_err(OpenError::Syntax)?,
                )
            }
            "unix" => Table::Unix(unix::UnixTable::open(name, ctx)?),
            "directory" => Table::Directory(directory::DirectoryTable::new(name, ctx)?),
            "sqlite" | "pgsql" | "mysql" => Table::Sql(sql::SqlTable::open(spec, ty, name)?),
            _ => return Err(OpenError::UnsupportedType(spec.to_string())),
        };
        Ok(Map {
            spec: spec.to_string(),
            table,
        })
    }

    /// Opens `spec`, or, when that fails, a table whose every lookup is a
    /// temporary failure carrying the reason (Postfix's surrogate table), so
    /// that a daemon defers mail instead of dying or misrouting it.
    pub fn open_or_unavailable(spec: &str, ctx: &MapContext) -> Map {
        match Map::open(spec, ctx) {
            Ok(map) => map,
            Err(e) => {
                let reason = format!("{} is unavailable. {e}", spec.trim());
                tracing::warn!("{reason}");
                Map {
                    spec: spec.trim().to_string(),
                    table: Table::Unavailable(reason),
                }
            }
        }
    }

    /// The `type:name` this table was opened with.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Whether the table matches patterns against the whole key (cidr,
    /// regexp, pcre, static) rather than looking up exact keys; pattern
    /// tables are not searched with partial address keys.
    pub fn is_pattern(&self) -> bool {
        matches!(
            self.table,
            Table::Cidr(_) | Table::Regexp(_) | Table::Static(_)
        )
    }

    /// Looks `key` up. Exact-key tables fold the key to lower case, as
    /// Postfix does for its indexed and text tables.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, LookupError> {
        match &self.table {
            Table::Hash(t) => t.lookup(&key.to_lowercase()),
            Table::Memory(t) => Ok(t.lookup(&key.to_lowercase()).map(str::to_string)),
            Table::Static(v) => Ok(Some(v.clone())),
            Table::Cidr(t) => Ok(t.lookup(key)),
            Table::Regexp(t) => Ok(t.lookup(key)),
            Table::Unix(t) => t.lookup(key),
            Table::Directory(t) => t.lookup(&key.to_lowercase()),
            Table::Sql(t) => t.lookup(&key.to_lowercase()),
            Table::Unavailable(reason) => Err(LookupError(reason.clone())),
        }
    }
}

/// Reads the source of a file-based table, or takes the inline form
/// `type:{ {rule}, {rule} }` (one rule per line). Returns the name to use in
/// messages and the text.
fn read_source(spec: &str, name: &str) -> Result<(String, String), OpenError> {
    let trimmed = name.trim();
    if trimmed.starts_with('{') {
        let inner = strip_braces(trimmed);
        let text = split_list(inner)
            .iter()
            .map(|r| strip_braces(r).to_string())
            .collect::<Vec<_>>()
            .join("\n");
        return Ok((spec.to_string(), text));
    }
    let text = std::fs::read_to_string(trimmed)
        .map_err(|e| OpenError::Io(format!("open {trimmed}: {}", ironpost_conf::io_reason(&e))))?;
    Ok((trimmed.to_string(), text))
}

/// What a successful address search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The key that matched (`user+ext@domain`, `user@domain`, `user`, `@domain`).
    pub key: String,
    pub value: String,
    /// The address extension (`ext` of `user+ext`) that the matched key did
    /// not include, for callers that propagate it.
    pub unmatched_extension: Option<String>,
}

/// The tables of one `*_maps` parameter, searched in order.
#[derive(Debug, Default)]
pub struct MapList {
    pub maps: Vec<Map>,
}

impl MapList {
    /// Opens each spec; a table that cannot be opened becomes an unavailable
    /// one (see [`Map::open_or_unavailable`]).
    pub fn open_all<S: AsRef<str>>(specs: &[S], ctx: &MapContext) -> MapList {
        MapList {
            maps: specs
                .iter()
                .map(|s| Map::open_or_unavailable(s.as_ref(), ctx))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Looks `key` up in each table in turn; the first answer wins. A
    /// temporary failure stops the search (the answer is unknown).
    pub fn find(&self, key: &str) -> Result<Option<String>, LookupError> {
        self.find_in(key, false)
    }

    fn find_in(&self, key: &str, exact_only: bool) -> Result<Option<String>, LookupError> {
        for map in &self.maps {
            if exact_only && map.is_pattern() {
                continue;
            }
            if let Some(v) = map.lookup(key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Postfix's search order for an address (mail_addr_find(3)):
    /// `user+ext@domain` (every table), then in exact-key tables only:
    /// `user@domain`; when the domain is local, `user+ext` and `user`; then
    /// `@domain`. `delimiters` are recipient_delimiter's characters.
    pub fn find_address(
        &self,
        address: &str,
        delimiters: &str,
        domain_is_local: bool,
    ) -> Result<Option<Found>, LookupError> {
        let found = |key: String, value: String, ext: Option<&str>| Found {
            key,
            value,
            unmatched_extension: ext.map(str::to_string),
        };
        if let Some(v) = self.find_in(address, false)? {
            return Ok(Some(found(address.to_string(), v, None)));
        }
        let (local, domain) = match address.rfind('@') {
            Some(at) => (&address[..at], Some(&address[at + 1..])),
            None => (address, None),
        };
        let (user, ext) = split_extension(local, delimiters);
        if ext.is_some()
            && let Some(domain) = domain
        {
            let key = format!("{user}@{domain}");
            if let Some(v) = self.find_in(&key, true)? {
                return Ok(Some(found(key, v, ext)));
            }
        }
        if domain_is_local || domain.is_none() {
            if domain.is_some()
                && let Some(v) = self.find_in(local, true)?
            {
                return Ok(Some(found(local.to_string(), v, None)));
            }
            if (ext.is_some() || domain.is_some())
                && let Some(v) = self.find_in(user, true)?
            {
                return Ok(Some(found(user.to_string(), v, ext)));
            }
        }
        if let Some(domain) = domain {
            let key = format!("@{domain}");
            if let Some(v) = self.find_in(&key, true)? {
                return Ok(Some(found(key, v, None)));
            }
        }
        Ok(None)
    }

    /// Looks a client address up: cidr tables match networks; exact-key
    /// tables are searched with the address, then with its parent networks
    /// written as Postfix's access(5) does (`1.2.3.4`, `1.2.3`, `1.2`, `1`).
    pub fn find_ip(&self, ip: IpAddr) -> Result<Option<String>, LookupError> {
        let text = ip.to_string();
        if let Some(v) = self.find_in(&text, false)? {
            return Ok(Some(v));
        }
        let sep = if ip.is_ipv4() { '.' } else { ':' };
        let mut key = text.as_str();
        while let Some(pos) = key.rfind(sep) {
            key = key[..pos].trim_end_matches(sep);
            if key.is_empty() {
                break;
            }
            if let Some(v) = self.find_in(key, true)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// Splits `user+ext` at the first delimiter character. Postfix leaves
/// special local parts alone: an address that starts with a delimiter, or
/// owner-/-request names, is not split.
pub fn split_extension<'a>(local: &'a str, delimiters: &str) -> (&'a str, Option<&'a str>) {
    if delimiters.is_empty() {
        return (local, None);
    }
    match local.find(|c: char| delimiters.contains(c)) {
        Some(0) | None => (local, None),
        Some(pos) => {
            let (user, rest) = local.split_at(pos);
            (
                user,
                Some(&rest[rest.chars().next().map_or(0, char::len_utf8)..]),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(specs: &[&str]) -> MapList {
        let maps = specs
            .iter()
            .map(|s| Map::open(s, &MapContext::default()).unwrap())
            .collect();
        MapList { maps }
    }

    #[test]
    fn address_search_order() {
        let maps = list(&[
            "inline:{ jerry+tag@example.com=full, jerry@example.com=noext, root=bare, @example.com=catchall, tom+x=localext }",
        ]);
        let get = |a: &str, local: bool| {
            maps.find_address(a, "+", local)
                .unwrap()
                .map(|f| (f.key, f.value, f.unmatched_extension))
        };
        assert_eq!(
            get("jerry+tag@example.com", false),
            Some(("jerry+tag@example.com".into(), "full".into(), None))
        );
        assert_eq!(
            get("jerry+other@example.com", false),
            Some((
                "jerry@example.com".into(),
                "noext".into(),
                Some("other".into())
            ))
        );
        assert_eq!(
            get("Jerry@Example.COM", false),
            Some(("Jerry@Example.COM".into(), "noext".into(), None))
        );
        // The bare user part is tried only for local domains.
        assert_eq!(
            get("root@example.com", false),
            Some(("@example.com".into(), "catchall".into(), None))
        );
        assert_eq!(
            get("root@example.com", true),
            Some(("root".into(), "bare".into(), None))
        );
        assert_eq!(
            get("tom+x@example.com", true),
            Some(("tom+x".into(), "localext".into(), None))
        );
        assert_eq!(get("nobody@other.org", true), None);
        assert_eq!(
            get("root", true),
            Some(("root".into(), "bare".into(), None))
        );
    }

    #[test]
    fn pattern_tables_see_only_the_full_address() {
        let maps = list(&["static:{ all mail }"]);
        let f = maps.find_address("a+b@c", "+", true).unwrap().unwrap();
        assert_eq!((f.key.as_str(), f.value.as_str()), ("a+b@c", "all mail"));
    }

    #[test]
    fn unsupported_and_untyped_specs() {
        let ctx = MapContext::default();
        assert_eq!(
            Map::open("btree:/etc/x", &ctx).unwrap_err().to_string(),
            "unsupported dictionary type: btree:/etc/x"
        );
        assert!(matches!(
            Map::open("/etc/aliases", &ctx),
            Err(OpenError::NoType(_))
        ));
        let m = Map::open_or_unavailable("btree:/etc/x", &ctx);
        assert!(m.lookup("a").is_err());
    }

    #[test]
    fn extension_split() {
        assert_eq!(split_extension("user+foo", "+"), ("user", Some("foo")));
        assert_eq!(
            split_extension("user-foo+bar", "+-"),
            ("user", Some("foo+bar"))
        );
        assert_eq!(split_extension("+foo", "+"), ("+foo", None));
        assert_eq!(split_extension("user", "+"), ("user", None));
        assert_eq!(split_extension("user+foo", ""), ("user+foo", None));
    }
}
