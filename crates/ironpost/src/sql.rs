//! SQL databases, for the user directory and the `sqlite:`, `pgsql:` and
//! `mysql:` lookup tables: SQLite (embedded), PostgreSQL and MySQL/MariaDB
//! through sqlx's driver-generic `Any` pool.
//!
//! Lookup tables and password checks are synchronous code, called from
//! SMTP sessions and delivery agents. sqlx is async, so every database runs
//! on the background runtime of [`crate::bridge`], and [`Db`]'s calls wait
//! for their answer there.
//!
//! The SQL text given here is either ironpost's own (values always bound
//! to placeholders) or an administrator's `query = ...` from a table's
//! configuration file, whose expansions the caller has quoted for the
//! backend: that is why it is passed to sqlx as `AssertSqlSafe`.
//!
//! Queries are written with `?` placeholders; [`Db`] rewrites them as
//! `$1, $2, ...` for PostgreSQL. Only two column types are used, text and
//! 64-bit integers, which every backend reads back the same way.
//!
//! Pools are shared per URL within the process ([`Db::open`]), connect
//! lazily, and a database that is down makes each call fail after
//! `connect_timeout`: callers turn that into a temporary failure, never
//! into "not found".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Arguments, AssertSqlSafe, Row};

/// The kinds of database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// A database call that failed; the text says which database and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError(pub String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::Text(s)
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Arg {
        Arg::Int(n)
    }
}

/// A column value read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
}

impl Value {
    /// The value as text (integers in decimal); NULL is `None`.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            Value::Int(n) => Some(n.to_string()),
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Null => None,
        }
    }
}

/// How long a call may take, connecting included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to a database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After a database could not be reached, calls fail at once for this
/// long instead of each waiting CONNECT_TIMEOUT (Postfix's retry_interval
/// for its SQL tables does the same).
const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// One database (a pool of connections to it).
pub struct Db {
    pool: AnyPool,
    pub backend: Backend,
    /// The URL without its password, for messages.
    name: String,
    /// Unreachable until then, with the reason.
    down: Mutex<Option<(std::time::Instant, String)>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("name", &self.name).finish()
    }
}

/// Runs `fut` on the background runtime and waits for its result.
fn block<T, F>(fut: F) -> Result<T, SqlError>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    crate::bridge::block(fut, CALL_TIMEOUT).map_err(|e| SqlError(format!("the database: {e}")))
}

/// The URL with its password replaced by `*`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:*@{host}");
    }
    url.to_string()
}

/// Which backend a URL names, and the URL sqlx is given. SQLite URLs are
/// `sqlite:/path/to/file` (created when missing, with mode 0600, since the
/// directory holds password hashes).
fn parse_url(url: &str) -> Result<(Backend, String), SqlError> {
    let url = url.trim();
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        SqlError(format!(
            "\"{url}\" is not a database URL (sqlite:/path, postgresql://..., mysql://...)"
        ))
    })?;
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let path = rest.trim_start_matches("//");
            if path.is_empty() || path == ":memory:" {
                return Err(SqlError(format!(
                    "\"{url}\": a SQLite database needs a file name (sqlite:/path/to/file)"
                )));
            }
            Ok((Backend::Sqlite, format!("sqlite://{path}")))
        }
        "postgres" | "postgresql" | "pgsql" => Ok((Backend::Postgres, format!("postgres:{rest}"))),
        "mysql" | "mariadb" => Ok((Backend::Mysql, format!("mysql:{rest}"))),
        _ => Err(SqlError(format!(
            "\"{url}\": unknown database type \"{scheme}\" (sqlite, postgresql, mysql)"
        ))),
    }
}

/// Creates a SQLite file (and its directory) readable by its owner only.
fn create_sqlite_file(path: &str) -> Result<(), SqlError> {
    let p = std::path::Path::new(path);
    if p.exists() {
        return Ok(());
    }
    let fail = |e: std::io::Error| {
        SqlError(format!(
            "cannot create {}: {}",
            p.display(),
            ironpost_conf::io_reason(&e)
        ))
    };
    if let Some(dir) = p.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

impl Db {
    /// The database at `url`, shared by every caller in this process; a
    /// SQLite file is created when missing. Nothing is connected yet; the
    /// first call connects.
    pub fn create(url: &str) -> Result<Arc<Db>, SqlError> {
        Db::open_with(url, true)
    }

    /// Like [`Db::create`], but a missing SQLite file is an error at the
    /// first call (lookup tables never make one).
    pub fn open(url: &str) -> Result<Arc<Db>, SqlError> {
        Db::open_with(url, false)
    }

    fn open_with(url: &str, create: bool) -> Result<Arc<Db>, SqlError> {
        static POOLS: OnceLock<Mutex<HashMap<String, Arc<Db>>>> = OnceLock::new();
        let url = url.trim();
        let key = format!("{create} {url}");
        let pools = POOLS.get_or_init(Default::default);
        if let Some(db) = pools.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(db.clone());
        }
        let (backend, mut sqlx_url) = parse_url(url)?;
        if backend == Backend::Sqlite {
            if create {
                create_sqlite_file(sqlx_url.trim_start_matches("sqlite://"))?;
            } else {
                sqlx_url.push_str("?mode=rw");
            }
        }
        sqlx::any::install_default_drivers();
        let name = redact(url);
        let pool = {
            let url = sqlx_url.clone();
            let max = if backend == Backend::Sqlite { 4 } else { 8 };
            // connect_lazy needs the runtime's context.
            block(async move {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .idle_timeout(Some(Duration::from_secs(300)))
                    .connect_lazy(&url)
            })?
            .map_err(|e| SqlError(format!("{name}: {e}")))?
        };
        let db = Arc::new(Db {
            pool,
            backend,
            name,
            down: Mutex::new(None),
        });
        let mut map = pools.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.entry(key).or_insert(db).clone())
    }

    /// The URL, without its password.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `sql` with the placeholders this backend wants.
    fn placeholders(&self, sql: &str) -> String {
        if self.backend != Backend::Postgres {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    fn error(&self, e: sqlx::Error) -> SqlError {
        let err = SqlError(format!("{}: {e}", self.name));
        if matches!(
            e,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_)
        ) {
            *self.down.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((std::time::Instant::now() + RETRY_INTERVAL, err.0.clone()));
        }
        err
    }

    /// Fails at once while the database is known to be unreachable.
    fn check_up(&self) -> Result<(), SqlError> {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        match &*down {
            Some((until, why)) if std::time::Instant::now() < *until => Err(SqlError(why.clone())),
            Some(_) => {
                *down = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, SqlError> {
        self.batch(&[(sql, args)]).map(|v| v.into_iter().sum())
    }

    /// Runs statements in one transaction: all of them or none.
    pub fn batch(&self, statements: &[(&str, &[Arg])]) -> Result<Vec<u64>, SqlError> {
        self.check_up()?;
        let pool = self.pool.clone();
        let stmts: Vec<(String, Vec<Arg>)> = statements
            .iter()
            .map(|(s, a)| (self.placeholders(s), a.to_vec()))
            .collect();
        block(async move {
            let mut tx = pool.begin().await?;
            let mut counts = Vec::with_capacity(stmts.len());
            for (sql, args) in &stmts {
                let r = sqlx::query_with(AssertSqlSafe(sql.as_str()), bind(args)?)
                    .execute(&mut *tx)
                    .await?;
                counts.push(r.rows_affected());
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(counts)
        })?
        .map_err(|e| self.error(e))
    }

    /// Runs statements one by one, outside a transaction (schema changes,
    /// which MySQL cannot roll back anyway).
    pub fn script(&self, statements: &[String]) -> Result<(), SqlError> {
        self.check_up()?;
        let pool = self.pool.clone();
        let stmts = statements.to_vec();
        block(async move {
            for sql in &stmts {
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .execute(&pool)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        })?
        .map_err(|e| self.error(e))
    }

    /// Runs a query; every row's columns in order.
    pub fn query(&self, sql: &str, args: &[Arg]) -> Result<Vec<Vec<Value>>, SqlError> {
        self.check_up()?;
        let pool = self.pool.clone();
        let sql = self.placeholders(sql);
        let args = args.to_vec();
        block(async move {
            let rows = sqlx::query_with(AssertSqlSafe(sql), bind(&args)?)
                .fetch_all(&pool)
                .await?;
            Ok::<_, sqlx::Error>(rows.iter().map(row_values).collect())
        })?
        .map_err(|e| self.error(e))
    }
}

fn bind(args: &[Arg]) -> Result<AnyArguments, sqlx::Error> {
    let mut a = AnyArguments::default();
    for arg in args {
        match arg {
            Arg::Text(s) => a.add(s.clone()),
            Arg::Int(n) => a.add(*n),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(a)
}

fn row_values(row: &AnyRow) -> Vec<Value> {
    (0..row.len())
        .map(|i| {
            if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                return v.map_or(Value::Null, Value::Text);
            }
            if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                return v.map_or(Value::Null, Value::Int);
            }
            if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
                return v.map_or(Value::Null, |n| Value::Int(n.into()));
            }
            if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
                return v.map_or(Value::Null, |b| Value::Int(b.into()));
            }
            if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                return v.map_or(Value::Null, |b| {
                    Value::Text(String::from_utf8_lossy(&b).into_owned())
                });
            }
            if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
                return v.map_or(Value::Null, |f| Value::Text(f.to_string()));
            }
            Value::Null
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("sqlite:/var/lib/ironpost/directory.db").unwrap(),
            (
                Backend::Sqlite,
                "sqlite:///var/lib/ironpost/directory.db".to_string()
            )
        );
        assert_eq!(
            parse_url("postgresql://u:p@127.0.0.1:5432/mail").unwrap().0,
            Backend::Postgres
        );
        assert_eq!(
            parse_url("mariadb://u:p@localhost/mail").unwrap(),
            (Backend::Mysql, "mysql://u:p@localhost/mail".to_string())
        );
        assert!(parse_url("oracle://x").is_err());
        assert!(parse_url("sqlite::memory:").is_err());
        assert_eq!(
            redact("postgres://mail:s3cret@db.example/mail"),
            "postgres://mail:*@db.example/mail"
        );
    }

    #[test]
    fn sqlite_round_trip_from_plain_and_async_code() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}/sub/t.db", dir.path().display());
        let db = Db::create(&url).unwrap();
        db.script(&["CREATE TABLE t (k VARCHAR(10) NOT NULL, n BIGINT NOT NULL)".into()])
            .unwrap();
        db.batch(&[
            (
                "INSERT INTO t (k, n) VALUES (?, ?)",
                &["a".into(), 1.into()],
            ),
            (
                "INSERT INTO t (k, n) VALUES (?, ?)",
                &["b".into(), 2.into()],
            ),
        ])
        .unwrap();
        let rows = db.query("SELECT k, n FROM t ORDER BY k", &[]).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Value::Text("a".into()), Value::Int(1)],
                vec![Value::Text("b".into()), Value::Int(2)]
            ]
        );
        // The file is private.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("sub/t.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // From a tokio worker, as smtpd calls it.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let db2 = Db::create(&url).unwrap();
        let n = rt.block_on(async move {
            tokio::spawn(async move { db2.query("SELECT n FROM t WHERE k = ?", &["b".into()]) })
                .await
                .unwrap()
                .unwrap()
        });
        assert_eq!(n, vec![vec![Value::Int(2)]]);
        // A failing statement rolls the whole batch back.
        assert!(
            db.batch(&[
                (
                    "INSERT INTO t (k, n) VALUES (?, ?)",
                    &["c".into(), 3.into()]
                ),
                ("INSERT INTO nowhere VALUES (1)", &[]),
            ])
            .is_err()
        );
        assert_eq!(db.query("SELECT k FROM t", &[]).unwrap().len(), 2);
        // Without create, a missing file stays missing.
        let missing = format!("sqlite:{}/missing.db", dir.path().display());
        assert!(Db::open(&missing).unwrap().query("SELECT 1", &[]).is_err());
        assert!(!dir.path().join("missing.db").exists());
    }

    #[test]
    fn a_database_that_is_down_is_an_error_not_a_hang() {
        // Nobody listens on port 1.
        let db = Db::open("postgresql://u:p@127.0.0.1:1/x").unwrap();
        let e = db.query("SELECT 1", &[]).unwrap_err();
        assert!(e.0.starts_with("postgresql://u:*@127.0.0.1:1/x: "), "{e}");
        // The next call fails at once with the same reason.
        assert_eq!(db.query("SELECT 1", &[]).unwrap_err(), e);
    }
}
