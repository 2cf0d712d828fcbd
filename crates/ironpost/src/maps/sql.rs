//! `sqlite:`, `pgsql:` and `mysql:` tables, configured by a file as
//! Postfix's sqlite_table(5), pgsql_table(5) and mysql_table(5) describe,
//! so that the files of a postfixadmin-style setup work as they are:
//!
//! ```text
//! # mysql:/etc/ironpost/mysql-virtual-mailboxes.cf
//! hosts = 127.0.0.1
//! user = postfix
//! password = secret
//! dbname = postfix
//! query = SELECT maildir FROM mailbox WHERE username='%s' AND active = '1'
//! ```
//!
//! Keys: `hosts` (`host`, `host:port`, `inet:host:port`, `unix:/socket`,
//! and for pgsql `postgresql://` URIs; tried in order until one answers),
//! `user`, `password`, `dbname`; `dbpath` for sqlite; `query`, or the old
//! `select_field`, `table`, `where_field`, `additional_conditions`;
//! `result_format`, `domain`, `expansion_limit`.
//!
//! In `query`: `%%` is `%`; `%s` the key, `%u` its local part (the whole
//! key when it has no `@`), `%d` its domain, `%1`..`%9` the domain's labels
//! from the right, all quoted for the database; `%S`, `%U`, `%D` the same.
//! A key without the part a `%u`, `%d` or `%N` needs is not looked up. In
//! `result_format`, `%s`, `%u`, `%d` are the result's parts and `%S`, `%U`,
//! `%D` the key's. Every column of every row is a result; results are
//! joined with commas.

use std::path::Path;
use std::sync::Arc;

use ironpost_conf::maincf::MainCf;

use super::{LookupError, OpenError, TableError};
use crate::sql::{Backend, Db};

/// One SQL table.
#[derive(Debug)]
pub struct SqlTable {
    spec: String,
    backend: Backend,
    /// Connection URLs, tried in order.
    urls: Vec<String>,
    query: String,
    result_format: String,
    /// When set, only `user@domain` keys with one of these domains.
    domains: Option<Vec<String>>,
    expansion_limit: usize,
}

const KNOWN: &[&str] = &[
    "hosts",
    "user",
    "password",
    "dbname",
    "dbpath",
    "query",
    "select_field",
    "table",
    "where_field",
    "additional_conditions",
    "result_format",
    "domain",
    "expansion_limit",
    // Accepted and not used: connection tuning of Postfix's clients.
    "retry_interval",
    "idle_interval",
    "option_file",
    "option_group",
    "require_result_set",
    "charset",
    "encoding",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
];

/// Percent-encodes a URL component (user, password, database name).
fn url_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl SqlTable {
    /// Reads the configuration file of `type:file` (`ty` is sqlite, pgsql
    /// or mysql).
    pub fn open(spec: &str, ty: &str, file: &str) -> Result<SqlTable, OpenError> {
        let path = Path::new(file.trim());
        let text = std::fs::read_to_string(path).map_err(|e| {
            OpenError::Io(format!(
                "open {}: {}",
                path.display(),
                ironpost_conf::io_reason(&e)
            ))
        })?;
        SqlTable::parse(spec, ty, path, &text)
    }

    fn parse(spec: &str, ty: &str, path: &Path, text: &str) -> Result<SqlTable, OpenError> {
        let file = path.display().to_string();
        let cf = MainCf::parse(path, text).map_err(|e| {
            let line = e.location.as_ref().and_then(|l| l.line);
            OpenError::Syntax(TableError {
                file: file.clone(),
                line,
                message: ironpost_conf::ConfError {
                    location: None,
                    ..e
                }
                .to_string(),
            })
        })?;
        let fault = |line: Option<usize>, message: String| {
            OpenError::Syntax(TableError {
                file: file.clone(),
                line,
                message,
            })
        };
        for e in &cf.entries {
            if !KNOWN.contains(&e.name.as_str()) {
                tracing::warn!("{file}, line {}: unknown parameter \"{}\"", e.line, e.name);
            }
        }
        let get = |name: &str| cf.get(name).map(|e| e.value.clone());
        let backend = match ty {
            "sqlite" => Backend::Sqlite,
            "pgsql" => Backend::Postgres,
            _ => Backend::Mysql,
        };
        let query = match get("query") {
            Some(q) => q,
            None => {
                // The form before `query` existed.
                let (Some(select), Some(table), Some(wher)) =
                    (get("select_field"), get("table"), get("where_field"))
                else {
                    return Err(fault(
                        None,
                        "no \"query\" (nor select_field, table and where_field)".into(),
                    ));
                };
                let extra = get("additional_conditions").unwrap_or_default();
                format!("SELECT {select} FROM {table} WHERE {wher} = '%s' {extra}")
                    .trim_end()
                    .to_string()
            }
        };
        let urls = if backend == Backend::Sqlite {
            let Some(db) = get("dbpath") else {
                return Err(fault(None, "no \"dbpath\"".into()));
            };
            vec![format!("sqlite:{db}")]
        } else {
            let user = get("user").unwrap_or_default();
            let password = get("password").unwrap_or_default();
            let dbname = get("dbname").ok_or_else(|| fault(None, "no \"dbname\"".into()))?;
            let hosts = get("hosts").unwrap_or_else(|| "localhost".into());
            let auth = match (user.is_empty(), password.is_empty()) {
                (true, _) => String::new(),
                (false, true) => format!("{}@", url_part(&user)),
                (false, false) => format!("{}:{}@", url_part(&user), url_part(&password)),
            };
            let scheme = if backend == Backend::Postgres {
                "postgres"
            } else {
                "mysql"
            };
            let mut urls = Vec::new();
            for h in ironpost_conf::value::split_list(&hosts) {
                if h.starts_with("postgresql://") || h.starts_with("postgres://") {
                    urls.push(h);
                } else if let Some(socket) = h.strip_prefix("unix:") {
                    // sqlx: the socket (PostgreSQL: its directory) as a parameter.
                    let (param, value) = if backend == Backend::Postgres {
                        let dir = Path::new(socket)
                            .parent()
                            .filter(|_| socket.contains(".s.PGSQL."))
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| socket.to_string());
                        ("host", dir)
                    } else {
                        ("socket", socket.to_string())
                    };
                    urls.push(format!(
                        "{scheme}://{auth}localhost/{}?{param}={}",
                        url_part(&dbname),
                        url_part(&value)
                    ));
                } else {
                    let h = h.strip_prefix("inet:").unwrap_or(&h);
                    urls.push(format!("{scheme}://{auth}{h}/{}", url_part(&dbname)));
                }
            }
            if urls.is_empty() {
                return Err(fault(cf.get("hosts").map(|e| e.line), "no hosts".into()));
            }
            urls
        };
        let expansion_limit = match get("expansion_limit") {
            None => 0,
            Some(v) => v.trim().parse().map_err(|_| {
                fault(
                    cf.get("expansion_limit").map(|e| e.line),
                    format!("expansion_limit = {v}: expected a number"),
                )
            })?,
        };
        let domains = get("domain").map(|d| {
            ironpost_conf::value::split_list(&d)
                .into_iter()
                .map(|x| x.to_lowercase())
                .collect()
        });
        Ok(SqlTable {
            spec: spec.to_string(),
            backend,
            urls,
            query,
            result_format: get("result_format").unwrap_or_else(|| "%s".into()),
            domains,
            expansion_limit,
        })
    }

    /// Looks `key` (in lower case) up.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, LookupError> {
        if let Some(domains) = &self.domains {
            match key.rsplit_once('@') {
                Some((local, domain))
                    if !local.is_empty() && domains.iter().any(|d| d == domain) => {}
                _ => return Ok(None),
            }
        }
        let Some(sql) = expand(&self.query, key, None, Some(self.backend)) else {
            return Ok(None);
        };
        let mut last_error = None;
        for url in &self.urls {
            let db: Arc<Db> = match Db::open(url) {
                Ok(db) => db,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            match db.query(&sql, &[]) {
                Ok(rows) => return self.results(key, rows),
                Err(e) => last_error = Some(e),
            }
        }
        Err(LookupError(format!(
            "{} lookup error for \"{key}\": {}",
            self.spec,
            last_error.map(|e| e.0).unwrap_or_default()
        )))
    }

    fn results(
        &self,
        key: &str,
        rows: Vec<Vec<crate::sql::Value>>,
    ) -> Result<Option<String>, LookupError> {
        let mut out: Vec<String> = Vec::new();
        for row in rows {
            for v in row {
                let Some(v) = v.text() else { continue };
                if v.is_empty() {
                    continue;
                }
                if let Some(r) = expand(&self.result_format, &v, Some(key), None) {
                    out.push(r);
                }
                if self.expansion_limit > 0 && out.len() > self.expansion_limit {
                    return Err(LookupError(format!(
                        "{}: key \"{key}\": expansion limit {} exceeded",
                        self.spec, self.expansion_limit
                    )));
                }
            }
        }
        Ok((!out.is_empty()).then(|| out.join(",")))
    }
}

/// Quotes `s` for a string literal of `backend`.
fn quote(s: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match (backend, c) {
            (_, '\'') if backend != Backend::Mysql => out.push_str("''"),
            (Backend::Mysql, '\0') => out.push_str("\\0"),
            (Backend::Mysql, '\n') => out.push_str("\\n"),
            (Backend::Mysql, '\r') => out.push_str("\\r"),
            (Backend::Mysql, '\x1a') => out.push_str("\\Z"),
            (Backend::Mysql, '\\' | '\'' | '"') => {
                out.push('\\');
                out.push(c);
            }
            (_, '\0') => {}
            _ => out.push(c),
        }
    }
    out
}

/// Postfix's db_common_expand: `text` with `%` escapes filled from
/// `value`; `%S`/`%U`/`%D` from `key` when given (result_format), else
/// from `value`. Quoted for `backend` when given (a query). `None` when an
/// escape needs a part the value lacks: no lookup, no result.
fn expand(text: &str, value: &str, key: Option<&str>, backend: Option<Backend>) -> Option<String> {
    let parts = |v: &str| -> (String, Option<String>, Option<String>) {
        match v.rsplit_once('@') {
            Some((l, d)) => (v.to_string(), Some(l.to_string()), Some(d.to_string())),
            None => (v.to_string(), Some(v.to_string()), None),
        }
    };
    let (vs, vu, vd) = parts(value);
    let (ks, ku, kd) = parts(key.unwrap_or(value));
    let q = |s: &str| match backend {
        Some(b) => quote(s, b),
        None => s.to_string(),
    };
    let mut out = String::with_capacity(text.len() + value.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s') => out.push_str(&q(&vs)),
            Some('u') => out.push_str(&q(vu.as_deref().filter(|u| !u.is_empty())?)),
            Some('d') => out.push_str(&q(vd.as_deref()?)),
            Some('S') => out.push_str(&q(&ks)),
            Some('U') => out.push_str(&q(ku.as_deref().filter(|u| !u.is_empty())?)),
            Some('D') => out.push_str(&q(kd.as_deref()?)),
            Some(n @ '1'..='9') => {
                let domain = kd.as_deref()?;
                let labels: Vec<&str> = domain.rsplit('.').collect();
                let i = n as usize - '1' as usize;
                out.push_str(&q(labels.get(i)?));
            }
            // Postfix refuses other escapes at open; keep them as written.
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_expansion_as_postfix() {
        let e = |t: &str, k: &str| expand(t, k, None, Some(Backend::Postgres));
        assert_eq!(
            e(
                "SELECT goto FROM alias WHERE address='%s'",
                "jerry@example.com"
            )
            .as_deref(),
            Some("SELECT goto FROM alias WHERE address='jerry@example.com'")
        );
        assert_eq!(
            e("u=%u d=%d %1 %2 100%%", "jerry@mail.example.com").as_deref(),
            Some("u=jerry d=mail.example.com com example 100%")
        );
        // No domain: a query that needs one is not made.
        assert_eq!(e("d='%d'", "jerry"), None);
        assert_eq!(e("u='%u'", "jerry").as_deref(), Some("u='jerry'"));
        assert_eq!(e("u='%u'", "@example.com"), None);
        assert_eq!(e("%3", "a@example.com"), None);
        // Quoting per database.
        assert_eq!(
            e("'%s'", "o'brien@x.org").as_deref(),
            Some("'o''brien@x.org'")
        );
        assert_eq!(
            expand("'%s'", "o'b\\r\"@x", None, Some(Backend::Mysql)).as_deref(),
            Some("'o\\'b\\\\r\\\"@x'")
        );
        assert_eq!(
            expand("'%s'", "a'b", None, Some(Backend::Sqlite)).as_deref(),
            Some("'a''b'")
        );
        // result_format: the result's parts, and the key's in capitals.
        assert_eq!(
            expand("%d/%u/ for %S", "jerry@example.com", Some("j@x.org"), None).as_deref(),
            Some("example.com/jerry/ for j@x.org")
        );
    }

    fn parsed(ty: &str, text: &str) -> Result<SqlTable, OpenError> {
        SqlTable::parse(&format!("{ty}:/etc/x.cf"), ty, Path::new("/etc/x.cf"), text)
    }

    #[test]
    fn configuration_files() {
        let t = parsed(
            "mysql",
            "# postfixadmin\nhosts = unix:/run/mysqld/mysqld.sock 127.0.0.1:3307\nuser = postfix\npassword = p@ss word\ndbname = postfix\nquery = SELECT goto FROM alias\n  WHERE address='%s' AND active = '1'\n",
        )
        .unwrap();
        assert_eq!(
            t.urls,
            vec![
                "mysql://postfix:p%40ss%20word@localhost/postfix?socket=%2Frun%2Fmysqld%2Fmysqld.sock",
                "mysql://postfix:p%40ss%20word@127.0.0.1:3307/postfix"
            ]
        );
        // A continuation line joins as main.cf's do.
        assert_eq!(
            t.query,
            "SELECT goto FROM alias  WHERE address='%s' AND active = '1'"
        );
        let t = parsed(
            "pgsql",
            "hosts = inet:db.example:5433\nuser = u\ndbname = mail\nselect_field = maildir\ntable = mailbox\nwhere_field = username\nadditional_conditions = and active = true\n",
        )
        .unwrap();
        assert_eq!(t.urls, vec!["postgres://u@db.example:5433/mail"]);
        assert_eq!(
            t.query,
            "SELECT maildir FROM mailbox WHERE username = '%s' and active = true"
        );
        let t = parsed("sqlite", "dbpath = /var/lib/x.db\nquery = SELECT 1\n").unwrap();
        assert_eq!(t.urls, vec!["sqlite:/var/lib/x.db"]);
        let e = parsed("mysql", "hosts = h\nquery = SELECT 1\n").unwrap_err();
        assert_eq!(e.to_string(), "/etc/x.cf: no \"dbname\"");
        let e = parsed("sqlite", "dbpath = /x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/x.cf: no \"query\" (nor select_field, table and where_field)"
        );
        let e = parsed("sqlite", "dbpath = /x\nquery = q\nexpansion_limit = many\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/x.cf, line 3: expansion_limit = many: expected a number"
        );
        let e = parsed("sqlite", "dbpath /x\n").unwrap_err();
        assert!(e.to_string().starts_with("/etc/x.cf, line 1: "), "{e}");
    }

    #[test]
    fn lookups_in_a_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let dbpath = dir.path().join("pfa.db");
        let db = Db::create(&format!("sqlite:{}", dbpath.display())).unwrap();
        db.script(&[
            "CREATE TABLE alias (address VARCHAR(255), goto TEXT, active INTEGER)".into(),
            "INSERT INTO alias VALUES ('all@example.com', 'a@example.com,b@example.com', 1)".into(),
            "INSERT INTO alias VALUES ('o''brien@example.com', 'ob@example.com', 1)".into(),
            "INSERT INTO alias VALUES ('old@example.com', 'x@example.com', 0)".into(),
            "INSERT INTO alias VALUES ('two@example.com', 'p@example.com', 1)".into(),
            "INSERT INTO alias VALUES ('two@example.com', 'q@example.com', 1)".into(),
        ])
        .unwrap();
        let cf = dir.path().join("aliases.cf");
        std::fs::write(
            &cf,
            format!(
                "dbpath = {}\nquery = SELECT goto FROM alias WHERE address = '%s' AND active = 1 ORDER BY goto\ndomain = example.com\n",
                dbpath.display()
            ),
        )
        .unwrap();
        let spec = format!("sqlite:{}", cf.display());
        let t = SqlTable::open(&spec, "sqlite", &cf.display().to_string()).unwrap();
        assert_eq!(
            t.lookup("all@example.com").unwrap().as_deref(),
            Some("a@example.com,b@example.com")
        );
        assert_eq!(
            t.lookup("two@example.com").unwrap().as_deref(),
            Some("p@example.com,q@example.com")
        );
        assert_eq!(
            t.lookup("o'brien@example.com").unwrap().as_deref(),
            Some("ob@example.com")
        );
        // An injection attempt is just a key that is not there.
        assert_eq!(t.lookup("x' OR '1'='1@example.com").unwrap(), None);
        assert_eq!(t.lookup("old@example.com").unwrap(), None);
        // Outside `domain`: not looked up at all.
        assert_eq!(t.lookup("all@other.org").unwrap(), None);
        assert_eq!(t.lookup("all").unwrap(), None);
        // A query the database refuses is a temporary failure.
        std::fs::write(
            &cf,
            format!(
                "dbpath = {}\nquery = SELECT nothing FROM nowhere WHERE k = '%s'\n",
                dbpath.display()
            ),
        )
        .unwrap();
        let t = SqlTable::open(&spec, "sqlite", &cf.display().to_string()).unwrap();
        let e = t.lookup("all@example.com").unwrap_err();
        assert!(
            e.0.starts_with(&format!("{spec} lookup error for \"all@example.com\": ")),
            "{e}"
        );
    }
}
