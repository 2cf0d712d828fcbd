//! The user directory: virtual domains, mailboxes (address, password hash,
//! SCRAM keys, quota, enabled, Maildir path) and aliases, in SQL. SQLite in
//! data_directory by default; PostgreSQL or MySQL/MariaDB when
//! `directory_url` names one. The same statements run on all three.
//!
//! smtpd and virtual delivery read it through the `directory:` lookup
//! tables (`virtual_mailbox_domains = directory:domains`,
//! `virtual_mailbox_maps = directory:mailboxes`, `virtual_alias_maps =
//! directory:aliases`); logins with a full address check its passwords.
//! Lookups are answered from the database, through a short-lived cache in
//! the daemon (directory_cache_ttl, one second by default; a relayed
//! message asks the directory half a dozen times). A change made with
//! `ironpost domain|user|alias` counts from the next lookup on: the command
//! tells the daemon, which drops its cache. A change made by another SQL
//! client counts after directory_cache_ttl at most. No restart, no postmap
//! step.
//!
//! The schema is created and migrated by [`Directory::open`] (the daemon
//! opens it at start, the commands when they run); its version is in
//! `ironpost_schema`. Names are stored in lower case, as Postfix folds
//! table keys. A disabled domain disables its mailboxes and aliases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::sql::{Arg, Backend, Db, SqlError, Value};

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 1;

/// A mailbox as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub address: String,
    pub domain: String,
    /// `{SCHEME}hash`, as Dovecot writes it.
    pub password: String,
    /// `{SCRAM-SHA-1}...` and `{SCRAM-SHA-256}...` (Dovecot's form), or empty.
    pub scram_sha1: String,
    pub scram_sha256: String,
    /// Bytes; 0 is no limit.
    pub quota: u64,
    pub enabled: bool,
    /// Under virtual_mailbox_base, with a trailing `/` (Maildir), as in a
    /// virtual(5) table: `example.com/jerry/`.
    pub maildir: String,
    /// Seconds since the epoch.
    pub created: i64,
}

/// A domain as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub enabled: bool,
    pub mailboxes: u64,
    pub aliases: u64,
}

/// One alias: mail for `address` goes to `targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub address: String,
    pub targets: Vec<String>,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirError {
    /// The database failed.
    Sql(SqlError),
    /// The change makes no sense (the text says why).
    Refused(String),
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::Sql(e) => write!(f, "{e}"),
            DirError::Refused(why) => f.write_str(why),
        }
    }
}

impl From<SqlError> for DirError {
    fn from(e: SqlError) -> Self {
        DirError::Sql(e)
    }
}

fn refused<T>(why: impl Into<String>) -> Result<T, DirError> {
    Err(DirError::Refused(why.into()))
}

/// The directory behind one `directory_url`.
#[derive(Debug)]
pub struct Directory {
    db: Arc<Db>,
    cache: Mutex<Cache>,
}

/// Bumped by every change this process makes or hears of: cached answers
/// from before are dropped.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// How long an answer may be reused, in milliseconds; 0 (the default in
/// commands) is no cache at all.
static CACHE_TTL_MS: AtomicU64 = AtomicU64::new(0);

/// The directory changed (told by a command over the control socket, or
/// changed here): every cached answer is dropped.
pub fn changed() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// How long the daemon may reuse an answer (directory_cache_ttl).
pub fn set_cache_ttl(ttl: Duration) {
    CACHE_TTL_MS.store(
        u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        Ordering::SeqCst,
    );
}

/// The most answers kept; more, and the cache starts afresh.
const CACHE_SIZE: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Domain(String),
    Mailbox(String),
    Alias(String),
}

#[derive(Debug, Clone)]
enum Cached {
    Domain(bool),
    Mailbox(Option<Mailbox>),
    Alias(Vec<String>),
}

#[derive(Debug, Default)]
struct Cache {
    generation: u64,
    entries: HashMap<CacheKey, (Instant, Cached)>,
}

impl Directory {
    /// A cached answer, or `ask` for a fresh one (kept when the cache is on).
    fn cached(
        &self,
        key: CacheKey,
        ask: impl FnOnce() -> Result<Cached, SqlError>,
    ) -> Result<Cached, SqlError> {
        let ttl = Duration::from_millis(CACHE_TTL_MS.load(Ordering::Relaxed));
        if ttl.is_zero() {
            return ask();
        }
        let generation = GENERATION.load(Ordering::SeqCst);
        {
            let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if c.generation != generation {
                c.entries.clear();
                c.generation = generation;
            }
            if let Some((at, v)) = c.entries.get(&key)
                && at.elapsed() < ttl
            {
                return Ok(v.clone());
            }
        }
        let v = ask()?;
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.generation == generation {
            if c.entries.len() >= CACHE_SIZE {
                c.entries.clear();
            }
            c.entries.insert(key, (Instant::now(), v.clone()));
        }
        Ok(v)
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn text(v: &Value) -> String {
    v.text().unwrap_or_default()
}

/// The domain of an address (after the last `@`), lower case.
fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d)
}

/// Whether `d` is a domain name a directory can hold.
fn valid_domain(d: &str) -> bool {
    ironpost_proto::smtp::address::valid_domain(d) && d.contains('.') && !d.ends_with('.')
}

/// Checks an address for a mailbox or alias: `local@domain` (`@domain`
/// too when `catch_all`), in lower case.
fn normalize_address(address: &str, catch_all: bool) -> Result<String, DirError> {
    let a = address.trim().to_lowercase();
    let Some((local, domain)) = a.rsplit_once('@') else {
        return refused(format!(
            "\"{address}\" is not an address (write it as user@domain)"
        ));
    };
    if local.is_empty() && !catch_all {
        return refused(format!("\"{address}\" has no user part"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>,;:\"\\".contains(c))
        || local.len() > 64
    {
        return refused(format!(
            "\"{address}\": the user part may not contain white space or <>,;:\"\\"
        ));
    }
    if !valid_domain(domain) {
        return refused(format!("\"{address}\": \"{domain}\" is not a domain name"));
    }
    Ok(a)
}

/// The statements of each schema version, for a backend.
fn migration(version: i64, backend: Backend) -> Vec<String> {
    let _ = backend;
    match version {
        1 => vec![
            "CREATE TABLE IF NOT EXISTS domains (
                name VARCHAR(255) NOT NULL PRIMARY KEY,
                enabled BIGINT NOT NULL DEFAULT 1,
                created BIGINT NOT NULL)"
                .into(),
            "CREATE TABLE IF NOT EXISTS mailboxes (
                address VARCHAR(320) NOT NULL PRIMARY KEY,
                domain VARCHAR(255) NOT NULL,
                password VARCHAR(1024) NOT NULL,
                scram_sha1 VARCHAR(255) NOT NULL DEFAULT '',
                scram_sha256 VARCHAR(255) NOT NULL DEFAULT '',
                quota BIGINT NOT NULL DEFAULT 0,
                enabled BIGINT NOT NULL DEFAULT 1,
                maildir VARCHAR(1024) NOT NULL,
                created BIGINT NOT NULL)"
                .into(),
            "CREATE INDEX mailboxes_domain ON mailboxes (domain)".into(),
            "CREATE TABLE IF NOT EXISTS aliases (
                address VARCHAR(320) NOT NULL,
                target VARCHAR(320) NOT NULL,
                domain VARCHAR(255) NOT NULL,
                enabled BIGINT NOT NULL DEFAULT 1,
                created BIGINT NOT NULL,
                PRIMARY KEY (address, target))"
                .into(),
            "CREATE INDEX aliases_domain ON aliases (domain)".into(),
        ],
        _ => Vec::new(),
    }
}

impl Directory {
    /// The directory at `url` (`sqlite:/path`, `postgresql://...`,
    /// `mysql://...`), its schema brought up to date (once per process).
    pub fn open(url: &str) -> Result<Arc<Directory>, SqlError> {
        static OPEN: OnceLock<Mutex<std::collections::HashMap<String, Arc<Directory>>>> =
            OnceLock::new();
        let key = url.trim().to_string();
        let open = OPEN.get_or_init(Default::default);
        // Held while migrating, so that two threads do not both migrate.
        let mut map = open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = map.get(&key) {
            return Ok(d.clone());
        }
        let dir = Directory {
            db: Db::create(&key)?,
            cache: Mutex::new(Cache::default()),
        };
        dir.migrate()?;
        let dir = Arc::new(dir);
        map.insert(key, dir.clone());
        Ok(dir)
    }

    /// The database's name (its URL without the password).
    pub fn name(&self) -> &str {
        self.db.name()
    }

    fn migrate(&self) -> Result<(), SqlError> {
        let db = &self.db;
        if db.backend == Backend::Sqlite {
            // Readers (the daemon) and writers (the commands) at once.
            db.query("PRAGMA journal_mode=WAL", &[])?;
        }
        db.script(&[
            "CREATE TABLE IF NOT EXISTS ironpost_schema (version BIGINT NOT NULL)".into(),
        ])?;
        let rows = db.query("SELECT version FROM ironpost_schema", &[])?;
        let mut version = rows.first().and_then(|r| r[0].int()).unwrap_or(0);
        if rows.is_empty() {
            db.execute("INSERT INTO ironpost_schema (version) VALUES (0)", &[])?;
        }
        if version > SCHEMA_VERSION {
            return Err(SqlError(format!(
                "{}: the directory's schema is version {version}, newer than this ironpost knows ({SCHEMA_VERSION})",
                db.name()
            )));
        }
        while version < SCHEMA_VERSION {
            version += 1;
            db.script(&migration(version, db.backend))?;
            db.execute(
                "UPDATE ironpost_schema SET version = ?",
                &[Arg::Int(version)],
            )?;
        }
        Ok(())
    }

    // Lookups, as the lookup tables and logins use them.

    /// Whether `domain` is an enabled domain of the directory.
    pub fn has_domain(&self, domain: &str) -> Result<bool, SqlError> {
        let domain = domain.trim().to_lowercase();
        let v = self.cached(CacheKey::Domain(domain.clone()), || {
            let rows = self.db.query(
                "SELECT name FROM domains WHERE name = ? AND enabled = 1",
                &[domain.into()],
            )?;
            Ok(Cached::Domain(!rows.is_empty()))
        })?;
        Ok(matches!(v, Cached::Domain(true)))
    }

    /// The Maildir of an enabled mailbox in an enabled domain.
    pub fn maildir(&self, address: &str) -> Result<Option<String>, SqlError> {
        Ok(self.active_mailbox(address)?.map(|m| m.maildir))
    }

    /// An enabled mailbox in an enabled domain (what may log in and get
    /// mail).
    pub fn active_mailbox(&self, address: &str) -> Result<Option<Mailbox>, SqlError> {
        let address = address.trim().to_lowercase();
        let v = self.cached(CacheKey::Mailbox(address.clone()), || {
            let rows = self.db.query(
                "SELECT m.address, m.domain, m.password, m.scram_sha1, m.scram_sha256, m.quota, \
                 m.enabled, m.maildir, m.created FROM mailboxes m JOIN domains d ON d.name = m.domain \
                 WHERE m.address = ? AND m.enabled = 1 AND d.enabled = 1",
                &[address.into()],
            )?;
            Ok(Cached::Mailbox(rows.first().map(|r| row_mailbox(r))))
        })?;
        Ok(match v {
            Cached::Mailbox(m) => m,
            _ => None,
        })
    }

    /// The targets of an enabled alias in an enabled domain, in order.
    pub fn alias_targets(&self, address: &str) -> Result<Vec<String>, SqlError> {
        let address = address.trim().to_lowercase();
        let v = self.cached(CacheKey::Alias(address.clone()), || {
            let rows = self.db.query(
                "SELECT a.target FROM aliases a JOIN domains d ON d.name = a.domain \
                 WHERE a.address = ? AND a.enabled = 1 AND d.enabled = 1 ORDER BY a.created, a.target",
                &[address.into()],
            )?;
            Ok(Cached::Alias(rows.iter().map(|r| text(&r[0])).collect()))
        })?;
        Ok(match v {
            Cached::Alias(t) => t,
            _ => Vec::new(),
        })
    }

    /// Who may send as `address` (smtpd_sender_login_maps): the mailbox
    /// itself, and the mailboxes an alias of that name goes to.
    pub fn senders(&self, address: &str) -> Result<Vec<String>, SqlError> {
        let mut owners = Vec::new();
        if self.active_mailbox(address)?.is_some() {
            owners.push(address.trim().to_lowercase());
        }
        for t in self.alias_targets(address)? {
            if !owners.contains(&t) {
                owners.push(t);
            }
        }
        Ok(owners)
    }

    // Reading and changing, as the commands do.

    /// A change: cached answers are dropped.
    fn write_one(&self, sql: &str, args: &[Arg]) -> Result<u64, SqlError> {
        let r = self.db.execute(sql, args);
        changed();
        r
    }

    fn write_batch(&self, statements: &[(&str, &[Arg])]) -> Result<Vec<u64>, SqlError> {
        let r = self.db.batch(statements);
        changed();
        r
    }

    /// A mailbox, enabled or not.
    pub fn mailbox(&self, address: &str) -> Result<Option<Mailbox>, SqlError> {
        let rows = self.db.query(
            "SELECT address, domain, password, scram_sha1, scram_sha256, quota, enabled, maildir, created \
             FROM mailboxes WHERE address = ?",
            &[address.trim().to_lowercase().into()],
        )?;
        Ok(rows.first().map(|r| row_mailbox(r)))
    }

    /// The domains, sorted, with their numbers of mailboxes and aliases.
    pub fn domains(&self) -> Result<Vec<Domain>, SqlError> {
        let rows = self.db.query(
            "SELECT d.name, d.enabled, \
             (SELECT COUNT(*) FROM mailboxes m WHERE m.domain = d.name), \
             (SELECT COUNT(DISTINCT a.address) FROM aliases a WHERE a.domain = d.name) \
             FROM domains d ORDER BY d.name",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| Domain {
                name: text(&r[0]),
                enabled: r[1].int() == Some(1),
                mailboxes: r[2].int().unwrap_or(0).max(0) as u64,
                aliases: r[3].int().unwrap_or(0).max(0) as u64,
            })
            .collect())
    }

    /// The mailboxes, of one domain or all, sorted by address.
    pub fn mailboxes(&self, domain: Option<&str>) -> Result<Vec<Mailbox>, SqlError> {
        let base = "SELECT address, domain, password, scram_sha1, scram_sha256, quota, enabled, maildir, created FROM mailboxes";
        let rows = match domain {
            Some(d) => self.db.query(
                &format!("{base} WHERE domain = ? ORDER BY address"),
                &[d.trim().to_lowercase().into()],
            )?,
            None => self.db.query(&format!("{base} ORDER BY address"), &[])?,
        };
        Ok(rows.iter().map(|r| row_mailbox(r)).collect())
    }

    /// The aliases, of one domain or all, sorted by address.
    pub fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, SqlError> {
        let base = "SELECT address, target FROM aliases";
        let order = "ORDER BY address, created, target";
        let rows = match domain {
            Some(d) => self.db.query(
                &format!("{base} WHERE domain = ? {order}"),
                &[d.trim().to_lowercase().into()],
            )?,
            None => self.db.query(&format!("{base} {order}"), &[])?,
        };
        let mut out: Vec<Alias> = Vec::new();
        for r in &rows {
            let (address, target) = (text(&r[0]), text(&r[1]));
            match out.last_mut() {
                Some(a) if a.address == address => a.targets.push(target),
                _ => out.push(Alias {
                    address,
                    targets: vec![target],
                }),
            }
        }
        Ok(out)
    }

    fn domain_row(&self, name: &str) -> Result<Option<bool>, SqlError> {
        let rows = self
            .db
            .query("SELECT enabled FROM domains WHERE name = ?", &[name.into()])?;
        Ok(rows.first().map(|r| r[0].int() == Some(1)))
    }

    fn require_domain(&self, domain: &str) -> Result<(), DirError> {
        if self.domain_row(domain)?.is_none() {
            return refused(format!(
                "domain {domain} is not in the directory (ironpost domain add {domain})"
            ));
        }
        Ok(())
    }

    pub fn add_domain(&self, name: &str) -> Result<String, DirError> {
        let name = name.trim().to_lowercase();
        if !valid_domain(&name) {
            return refused(format!("\"{name}\" is not a domain name"));
        }
        if self.domain_row(&name)?.is_some() {
            return refused(format!("domain {name} is already in the directory"));
        }
        self.write_one(
            "INSERT INTO domains (name, enabled, created) VALUES (?, 1, ?)",
            &[name.clone().into(), now().into()],
        )?;
        Ok(name)
    }

    /// Removes a domain; with `all`, its mailboxes and aliases too (the
    /// Maildirs stay on disk), else only an empty domain.
    pub fn del_domain(&self, name: &str, all: bool) -> Result<(), DirError> {
        let name = name.trim().to_lowercase();
        self.require_domain(&name)?;
        let d = Arg::Text(name.clone());
        if !all {
            let m = self.mailboxes(Some(&name))?.len();
            let a = self.aliases(Some(&name))?.len();
            if m + a > 0 {
                return refused(format!(
                    "domain {name} still has {m} mailbox(es) and {a} alias(es); delete them first, or use --all"
                ));
            }
        }
        self.write_batch(&[
            (
                "DELETE FROM aliases WHERE domain = ?",
                std::slice::from_ref(&d),
            ),
            (
                "DELETE FROM mailboxes WHERE domain = ?",
                std::slice::from_ref(&d),
            ),
            (
                "DELETE FROM domains WHERE name = ?",
                std::slice::from_ref(&d),
            ),
        ])?;
        Ok(())
    }

    pub fn set_domain_enabled(&self, name: &str, enabled: bool) -> Result<(), DirError> {
        let name = name.trim().to_lowercase();
        self.require_domain(&name)?;
        self.write_one(
            "UPDATE domains SET enabled = ? WHERE name = ?",
            &[Arg::Int(enabled.into()), name.into()],
        )?;
        Ok(())
    }

    /// Adds a mailbox with a password already hashed (see
    /// [`password_fields`]). `maildir` defaults to `domain/user/`.
    pub fn add_mailbox(
        &self,
        address: &str,
        fields: &PasswordFields,
        quota: u64,
        maildir: Option<&str>,
    ) -> Result<Mailbox, DirError> {
        let address = normalize_address(address, false)?;
        let (local, domain) = address.rsplit_once('@').unwrap_or(("", ""));
        self.require_domain(domain)?;
        if self.mailbox(&address)?.is_some() {
            return refused(format!("{address} is already a mailbox"));
        }
        let maildir = match maildir {
            Some(m) => check_maildir(m)?,
            None => format!("{domain}/{local}/"),
        };
        let quota = i64::try_from(quota).unwrap_or(i64::MAX);
        let created = now();
        self.write_one(
            "INSERT INTO mailboxes (address, domain, password, scram_sha1, scram_sha256, quota, enabled, maildir, created) \
             VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
            &[
                address.clone().into(),
                domain.into(),
                fields.password.clone().into(),
                fields.scram_sha1.clone().into(),
                fields.scram_sha256.clone().into(),
                quota.into(),
                maildir.into(),
                created.into(),
            ],
        )?;
        self.mailbox(&address)?
            .ok_or_else(|| DirError::Refused(format!("{address} vanished")))
    }

    fn require_mailbox(&self, address: &str) -> Result<String, DirError> {
        let a = address.trim().to_lowercase();
        if self.mailbox(&a)?.is_none() {
            return refused(format!("{a} is not a mailbox of the directory"));
        }
        Ok(a)
    }

    pub fn set_password(&self, address: &str, fields: &PasswordFields) -> Result<(), DirError> {
        let a = self.require_mailbox(address)?;
        self.write_one(
            "UPDATE mailboxes SET password = ?, scram_sha1 = ?, scram_sha256 = ? WHERE address = ?",
            &[
                fields.password.clone().into(),
                fields.scram_sha1.clone().into(),
                fields.scram_sha256.clone().into(),
                a.into(),
            ],
        )?;
        Ok(())
    }

    pub fn set_quota(&self, address: &str, quota: u64) -> Result<(), DirError> {
        let a = self.require_mailbox(address)?;
        self.write_one(
            "UPDATE mailboxes SET quota = ? WHERE address = ?",
            &[Arg::Int(i64::try_from(quota).unwrap_or(i64::MAX)), a.into()],
        )?;
        Ok(())
    }

    pub fn set_mailbox_enabled(&self, address: &str, enabled: bool) -> Result<(), DirError> {
        let a = self.require_mailbox(address)?;
        self.write_one(
            "UPDATE mailboxes SET enabled = ? WHERE address = ?",
            &[Arg::Int(enabled.into()), a.into()],
        )?;
        Ok(())
    }

    /// Removes a mailbox (its Maildir stays on disk).
    pub fn del_mailbox(&self, address: &str) -> Result<Mailbox, DirError> {
        let a = self.require_mailbox(address)?;
        let m = self
            .mailbox(&a)?
            .ok_or_else(|| DirError::Refused(format!("{a} vanished")))?;
        self.db
            .execute("DELETE FROM mailboxes WHERE address = ?", &[a.into()])?;
        Ok(m)
    }

    /// Adds targets to an alias (made when new). Targets are addresses,
    /// anywhere.
    pub fn add_alias(&self, address: &str, targets: &[String]) -> Result<Alias, DirError> {
        let address = normalize_address(address, true)?;
        let domain = domain_of(&address).unwrap_or("").to_string();
        self.require_domain(&domain)?;
        if targets.is_empty() {
            return refused(format!("alias {address}: no target given"));
        }
        let existing: Vec<String> = self
            .aliases(Some(&domain))?
            .into_iter()
            .find(|a| a.address == address)
            .map(|a| a.targets)
            .unwrap_or_default();
        let mut new = Vec::new();
        for t in targets {
            let t = normalize_address(t, false)?;
            if t == address {
                return refused(format!("alias {address} cannot point to itself"));
            }
            if !existing.contains(&t) && !new.contains(&t) {
                new.push(t);
            }
        }
        let created = now();
        let args: Vec<[Arg; 4]> = new
            .iter()
            .map(|t| {
                [
                    address.clone().into(),
                    t.clone().into(),
                    domain.clone().into(),
                    created.into(),
                ]
            })
            .collect();
        let stmts: Vec<(&str, &[Arg])> = args
            .iter()
            .map(|a| {
                (
                    "INSERT INTO aliases (address, target, domain, enabled, created) VALUES (?, ?, ?, 1, ?)",
                    &a[..],
                )
            })
            .collect();
        self.write_batch(&stmts)?;
        Ok(Alias {
            targets: existing.into_iter().chain(new).collect(),
            address,
        })
    }

    /// Removes an alias, or only some of its targets.
    pub fn del_alias(&self, address: &str, targets: &[String]) -> Result<(), DirError> {
        let address = address.trim().to_lowercase();
        let n = if targets.is_empty() {
            self.write_one(
                "DELETE FROM aliases WHERE address = ?",
                &[address.clone().into()],
            )?
        } else {
            let args: Vec<[Arg; 2]> = targets
                .iter()
                .map(|t| [address.clone().into(), t.trim().to_lowercase().into()])
                .collect();
            let stmts: Vec<(&str, &[Arg])> = args
                .iter()
                .map(|a| {
                    (
                        "DELETE FROM aliases WHERE address = ? AND target = ?",
                        &a[..],
                    )
                })
                .collect();
            self.write_batch(&stmts)?.into_iter().sum()
        };
        if n == 0 {
            return refused(if targets.is_empty() {
                format!("{address} is not an alias of the directory")
            } else {
                format!("alias {address} has no such target")
            });
        }
        Ok(())
    }
}

fn row_mailbox(r: &[Value]) -> Mailbox {
    Mailbox {
        address: text(&r[0]),
        domain: text(&r[1]),
        password: text(&r[2]),
        scram_sha1: text(&r[3]),
        scram_sha256: text(&r[4]),
        quota: r[5].int().unwrap_or(0).max(0) as u64,
        enabled: r[6].int() == Some(1),
        maildir: text(&r[7]),
        created: r[8].int().unwrap_or(0),
    }
}

/// A Maildir path given by an administrator: relative, no `..`, ends in `/`.
fn check_maildir(m: &str) -> Result<String, DirError> {
    let m = m.trim();
    if m.is_empty()
        || m.starts_with('/')
        || m.split('/').any(|c| c == "..")
        || m.chars().any(char::is_control)
    {
        return refused(format!(
            "maildir \"{m}\": write a path under virtual_mailbox_base, like example.com/jerry/"
        ));
    }
    Ok(if m.ends_with('/') {
        m.to_string()
    } else {
        format!("{m}/")
    })
}

/// What is stored for a password: the hash and the SCRAM keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordFields {
    pub password: String,
    pub scram_sha1: String,
    pub scram_sha256: String,
}

/// Hashes a new password: `{ARGON2ID}` for PLAIN and LOGIN, and the SCRAM
/// keys (4096 iterations, a random salt each, as Dovecot's default) so that
/// SCRAM-SHA-1 and SCRAM-SHA-256 work too.
pub fn password_fields(password: &str) -> Result<PasswordFields, String> {
    use ironpost_proto::sasl::scram::{ScramHash, ScramKeys};
    let hash = super::password::hash(password).map_err(|e| e.to_string())?;
    let scram = |h: ScramHash| -> Result<String, String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| format!("no random numbers: {e}"))?;
        Ok(ScramKeys::derive(h, password, &salt, 4096).to_dovecot(h))
    };
    Ok(PasswordFields {
        password: hash,
        scram_sha1: scram(ScramHash::Sha1)?,
        scram_sha256: scram(ScramHash::Sha256)?,
    })
}
