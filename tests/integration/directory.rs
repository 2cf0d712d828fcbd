//! The user directory, the same suite on each database: SQLite (a file of
//! the instance), PostgreSQL and MariaDB (real servers, started by
//! scripts/test through scripts/sql-servers, which sets
//! IRONPOST_TEST_PGSQL_URL and IRONPOST_TEST_MYSQL_URL). Each run gets a
//! database of its own.
//!
//! What the suite checks: `ironpost domain|user|alias` with their errors;
//! a running server that takes mail for directory users and aliases,
//! refuses unknown and disabled ones, lets them log in (PLAIN and
//! SCRAM-SHA-256 with the keys stored beside the hash), and sees every
//! change at once, without a restart or postmap; and a Postfix-style SQL
//! table (`pgsql:`/`mysql:`/`sqlite:` with a .cf file) over the same
//! database, in postmap -q and in smtpd.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ironpost::sql::Db;
use ironpost_testkit::Output;
use ironpost_testkit::instance::Instance;

use crate::common::*;
use crate::smtp_auth::scram_client;

/// A database for one run of the suite: its URL, and how a .cf file of a
/// Postfix SQL table names it.
struct TestDb {
    url: String,
    table_type: &'static str,
    cf: String,
}

/// A fresh database on the server behind `$var`, or a failure saying how
/// to get one.
fn server_db(var: &str, table_type: &'static str) -> Option<TestDb> {
    let Ok(base) = std::env::var(var) else {
        if std::env::var_os("IRONPOST_TEST_NO_SQL_SERVERS").is_some() {
            eprintln!("{var} is not set: skipped (IRONPOST_TEST_NO_SQL_SERVERS)");
            return None;
        }
        panic!(
            "{var} is not set: this test needs a database server. Run scripts/test, which \
             starts one with scripts/sql-servers, or set IRONPOST_TEST_NO_SQL_SERVERS=1 to skip it"
        );
    };
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "ironpost_t{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let admin = Db::open(&base).unwrap();
    admin
        .script(&[
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ])
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    // scheme://user:password@host:port/db
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let (scheme, rest) = prefix.split_once("://").unwrap();
    let (auth, hostport) = rest.rsplit_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let cf =
        format!("hosts = inet:{hostport}\nuser = {user}\npassword = {password}\ndbname = {name}\n");
    Some(TestDb {
        url: format!("{scheme}://{auth}@{hostport}/{name}"),
        table_type,
        cf,
    })
}

fn cli(inst: &Instance, args: &[&str]) -> Output {
    Command::new(ironpost())
        .args(args.iter().copied())
        .args(["-c", &inst.etc().display().to_string()])
        .run()
}

fn ok(out: Output) -> String {
    assert_eq!(
        out.status, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out.stdout
}

fn fails(out: Output) -> String {
    assert_eq!(
        out.status, 1,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out.stderr
}

fn user_add(inst: &Instance, address: &str, password: &str) -> String {
    ok(Command::new(ironpost())
        .args(["user", "add", address, "--password-stdin", "-c"])
        .arg(inst.etc().display().to_string())
        .stdin(format!("{password}\n"))
        .run())
}

/// Sends one message over SMTP; the reply to RCPT and the final one.
fn send(inst: &Instance, rcpt: &str, subject: &str) -> (String, String) {
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    s.cmd("mail from:<tom@remote.example>");
    let r = s.cmd(&format!("rcpt to:<{rcpt}>"));
    if !r.starts_with("250") {
        s.cmd("quit");
        return (r, String::new());
    }
    s.cmd("data");
    s.send_raw(format!("Subject: {subject}\r\n\r\nhello\r\n.\r\n").as_bytes());
    let fin = s.read_reply().trim_end().to_string();
    s.cmd("quit");
    (r, fin)
}

/// The messages in a virtual user's Maildir `new/`.
fn maildir(inst: &Instance, domain: &str, user: &str) -> Vec<String> {
    let dir = inst.path(&format!("vmail/{domain}/{user}/new"));
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn wait_maildir(inst: &Instance, domain: &str, user: &str, subject: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if maildir(inst, domain, user)
            .iter()
            .any(|m| m.contains(&format!("Subject: {subject}\n")))
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!(
        "{user}@{domain} never got \"{subject}\"; mail log:\n{}",
        inst.maillog()
    );
}

fn auth_plain(inst: &Instance, user: &str, password: &str) -> String {
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    let r = s.cmd(&format!(
        "auth plain {}",
        B64.encode(format!("\0{user}\0{password}"))
    ));
    s.cmd("quit");
    r
}

fn auth_scram(inst: &Instance, user: &str, password: &str) -> String {
    let mut s = inst.connect();
    let ehlo = s.cmd("ehlo client.example");
    assert!(ehlo.contains("SCRAM-SHA-256"), "{ehlo}");
    let first_bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
    let r = s.cmd(&format!(
        "auth scram-sha-256 {}",
        B64.encode(format!("n,,{first_bare}"))
    ));
    let server_first = String::from_utf8(
        B64.decode(r.strip_prefix("334 ").expect("a challenge"))
            .unwrap(),
    )
    .unwrap();
    let (fin, want) = scram_client::final_message(password, &first_bare, &server_first);
    let r = s.cmd(&B64.encode(fin));
    let out = match r.strip_prefix("334 ") {
        Some(v) => {
            let server_final = String::from_utf8(B64.decode(v).unwrap()).unwrap();
            assert_eq!(server_final, want, "the server knows the keys");
            s.cmd("")
        }
        None => r,
    };
    s.cmd("quit");
    out
}

fn suite(db: Option<TestDb>) {
    let mut inst = Instance::new(
        ironpost(),
        // Not in mynetworks: mail for domains that are not ours is refused.
        "mynetworks = 192.0.2.0/24\nsmtpd_sasl_auth_enable = yes\n\
         auth_mechanisms = plain scram-sha-256\nauth_failure_delay = 0s",
    );
    let (url, table_type, cf) = match &db {
        Some(d) => (d.url.clone(), d.table_type, d.cf.clone()),
        None => {
            let path = inst.path("data/directory.db");
            (
                format!("sqlite:{}", path.display()),
                "sqlite",
                format!("dbpath = {}\n", path.display()),
            )
        }
    };
    inst.append_main_cf(&format!("directory_url = {url}"));

    // The commands, with their errors.
    assert_eq!(
        ok(cli(&inst, &["domain", "add", "Example.ORG"])),
        "domain example.org added\n"
    );
    assert_eq!(
        fails(cli(&inst, &["domain", "add", "example.org"])),
        "ironpost: fatal: domain example.org is already in the directory\n"
    );
    assert_eq!(
        fails(cli(&inst, &["domain", "add", "not a domain"])),
        "ironpost: fatal: \"not a domain\" is not a domain name\n"
    );
    let out = user_add(&inst, "Jerry@example.org", "pw-one");
    assert_eq!(
        out,
        format!(
            "mailbox jerry@example.org added (Maildir {}/example.org/jerry/)\n",
            inst.path("vmail").display()
        )
    );
    user_add(&inst, "marry@example.org", "pw-marry");
    assert_eq!(
        fails(
            Command::new(ironpost())
                .args([
                    "user",
                    "add",
                    "tom@nowhere.example",
                    "--password-stdin",
                    "-c"
                ])
                .arg(inst.etc().display().to_string())
                .stdin("x\n")
                .run()
        ),
        "ironpost: fatal: domain nowhere.example is not in the directory (ironpost domain add nowhere.example)\n"
    );
    assert_eq!(
        fails(
            Command::new(ironpost())
                .args(["user", "add", "jerry@example.org", "--password-stdin", "-c"])
                .arg(inst.etc().display().to_string())
                .stdin("x\n")
                .run()
        ),
        "ironpost: fatal: jerry@example.org is already a mailbox\n"
    );
    assert_eq!(
        fails(
            Command::new(ironpost())
                .args(["user", "add", "empty@example.org", "--password-stdin", "-c"])
                .arg(inst.etc().display().to_string())
                .stdin("\n")
                .run()
        ),
        "ironpost: fatal: empty password; nothing changed\n"
    );
    assert_eq!(
        ok(cli(
            &inst,
            &[
                "alias",
                "add",
                "team@example.org",
                "jerry@example.org,marry@example.org"
            ]
        )),
        "team@example.org: jerry@example.org, marry@example.org\n"
    );
    ok(cli(
        &inst,
        &["alias", "add", "sales@example.org", "jerry@example.org"],
    ));
    assert_eq!(
        ok(cli(&inst, &["user", "list", "example.org"])),
        "jerry@example.org\nmarry@example.org\n"
    );
    ok(cli(&inst, &["user", "quota", "marry@example.org", "500M"]));
    let show = ok(cli(&inst, &["user", "show", "marry@example.org"]));
    assert!(show.contains("quota:    500M\n"), "{show}");
    assert!(
        show.contains("password: ARGON2ID, with SCRAM-SHA-1 and SCRAM-SHA-256 keys\n"),
        "{show}"
    );
    assert!(!show.contains("$argon2id$"), "no hash is shown: {show}");
    let domains = ok(cli(&inst, &["domain", "list"]));
    assert!(
        domains.contains("example.org\t2 mailbox(es)\t2 alias(es)\n"),
        "{domains}"
    );

    // The server uses the directory as it is now.
    inst.start();
    let (r, fin) = send(&inst, "jerry@example.org", "direct");
    assert_eq!(r, "250 2.1.5 Ok");
    assert!(fin.starts_with("250 2.0.0 Ok: queued as "), "{fin}");
    wait_maildir(&inst, "example.org", "jerry", "direct");
    send(&inst, "team@example.org", "to the team");
    wait_maildir(&inst, "example.org", "jerry", "to the team");
    wait_maildir(&inst, "example.org", "marry", "to the team");
    assert_eq!(
        send(&inst, "nobody@example.org", "x").0,
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
    );
    // Directory users log in, with PLAIN and with SCRAM.
    assert_eq!(
        auth_plain(&inst, "jerry@example.org", "pw-one"),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        auth_plain(&inst, "jerry@example.org", "wrong"),
        "535 5.7.8 Error: authentication failed: authentication failure"
    );
    assert_eq!(
        auth_scram(&inst, "jerry@example.org", "pw-one"),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        auth_scram(&inst, "jerry@example.org", "wrong"),
        "535 5.7.8 Error: authentication failed: authentication failure"
    );

    // Changes count at once: no restart, no postmap.
    assert_eq!(
        send(&inst, "tom@example.org", "x").0,
        "550 5.1.1 <tom@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
    );
    user_add(&inst, "tom@example.org", "pw-tom");
    send(&inst, "tom@example.org", "welcome");
    wait_maildir(&inst, "example.org", "tom", "welcome");
    ok(Command::new(ironpost())
        .args([
            "user",
            "passwd",
            "jerry@example.org",
            "--password-stdin",
            "-c",
        ])
        .arg(inst.etc().display().to_string())
        .stdin("pw-two\n")
        .run());
    assert_eq!(
        auth_plain(&inst, "jerry@example.org", "pw-one"),
        "535 5.7.8 Error: authentication failed: authentication failure"
    );
    assert_eq!(
        auth_scram(&inst, "jerry@example.org", "pw-two"),
        "235 2.7.0 Authentication successful"
    );
    ok(cli(&inst, &["user", "disable", "tom@example.org"]));
    assert!(
        send(&inst, "tom@example.org", "x")
            .0
            .starts_with("550 5.1.1 ")
    );
    assert_eq!(
        auth_plain(&inst, "tom@example.org", "pw-tom"),
        "535 5.7.8 Error: authentication failed: authentication failure"
    );
    ok(cli(
        &inst,
        &["alias", "del", "team@example.org", "marry@example.org"],
    ));
    assert_eq!(
        ok(cli(&inst, &["alias", "list", "example.org"])),
        "sales@example.org: jerry@example.org\nteam@example.org: jerry@example.org\n"
    );
    // A disabled domain is no longer ours: relaying is refused.
    ok(cli(&inst, &["domain", "disable", "example.org"]));
    assert_eq!(
        send(&inst, "jerry@example.org", "x").0,
        "554 5.7.1 <jerry@example.org>: Relay access denied"
    );
    ok(cli(&inst, &["domain", "enable", "example.org"]));
    assert_eq!(send(&inst, "jerry@example.org", "x").0, "250 2.1.5 Ok");

    // A Postfix-style SQL table over the same database: what an
    // administrator coming from postfixadmin writes.
    let tdb = Db::open(&url).unwrap();
    tdb.script(&[
        "CREATE TABLE blocked (address VARCHAR(255) NOT NULL, action VARCHAR(255) NOT NULL)".into(),
        "INSERT INTO blocked VALUES ('marry@example.org', 'REJECT no mail for marry today')".into(),
    ])
    .unwrap();
    let cf_path = inst.etc().join("blocked.cf");
    std::fs::write(
        &cf_path,
        format!("{cf}query = SELECT action FROM blocked WHERE address = '%s'\n"),
    )
    .unwrap();
    let table = format!("{table_type}:{}", cf_path.display());
    assert_eq!(
        ok(cli(&inst, &["postmap", "-q", "Marry@Example.org", &table])),
        "REJECT no mail for marry today\n"
    );
    assert_eq!(
        cli(&inst, &["postmap", "-q", "x' or '1'='1", &table]).status,
        1
    );
    // The directory's own tables answer postmap -q too.
    assert_eq!(
        ok(cli(
            &inst,
            &["postmap", "-q", "jerry@example.org", "directory:mailboxes"]
        )),
        "example.org/jerry/\n"
    );
    inst.append_main_cf(&format!(
        "smtpd_recipient_restrictions = check_recipient_access {table}"
    ));
    assert_eq!(
        inst.control("reload")
            .as_deref()
            .map(|r| r.starts_with("ok")),
        Some(true)
    );
    assert_eq!(
        send(&inst, "marry@example.org", "x").0,
        "554 5.7.1 <marry@example.org>: Recipient address rejected: no mail for marry today"
    );
    assert_eq!(send(&inst, "jerry@example.org", "x").0, "250 2.1.5 Ok");

    // Deleting.
    assert_eq!(
        fails(cli(&inst, &["domain", "del", "example.org"])),
        "ironpost: fatal: domain example.org still has 3 mailbox(es) and 2 alias(es); delete them first, or use --all\n"
    );
    assert_eq!(
        ok(cli(&inst, &["user", "del", "tom@example.org"])),
        "mailbox tom@example.org deleted (its Maildir example.org/tom/ is kept on disk)\n"
    );
    ok(cli(&inst, &["domain", "del", "example.org", "--all"]));
    assert!(!ok(cli(&inst, &["domain", "list"])).contains("example.org"));
    assert_eq!(
        send(&inst, "jerry@example.org", "x").0,
        "554 5.7.1 <jerry@example.org>: Relay access denied"
    );
}

#[test]
fn directory_on_sqlite() {
    suite(None);
}

#[test]
fn directory_on_postgresql() {
    if let Some(db) = server_db("IRONPOST_TEST_PGSQL_URL", "pgsql") {
        suite(Some(db));
    }
}

#[test]
fn directory_on_mariadb() {
    if let Some(db) = server_db("IRONPOST_TEST_MYSQL_URL", "mysql") {
        suite(Some(db));
    }
}

#[test]
fn quickstart_role_addresses_reach_the_user() {
    let mut inst = Instance::new(ironpost(), "");
    inst.start();
    assert_eq!(
        ok(cli(&inst, &["alias", "list"])),
        "abuse@example.test: jerry@example.test\n\
         postmaster@example.test: jerry@example.test\n\
         root@example.test: jerry@example.test\n"
    );
    // `rcpt to:postmaster` as typed by hand: completed, then aliased; the
    // original stays as typed, as Postfix keeps it.
    let mut s = inst.connect();
    s.cmd("helo client.example");
    s.cmd("mail from:<tom@remote.example>");
    assert_eq!(s.cmd("rcpt to:postmaster"), "250 2.1.5 Ok");
    assert_eq!(s.cmd("rcpt to:<jerry+lists@example.test>"), "250 2.1.5 Ok");
    s.cmd("data");
    s.send_raw(b"Subject: for the postmaster\r\n\r\nhello\r\n.\r\n");
    assert!(s.read_reply().starts_with("250 2.0.0 Ok: queued as "));
    s.cmd("quit");
    let msgs = inst.wait_messages("jerry", 2);
    let all = msgs
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect::<Vec<_>>()
        .join("\n----\n");
    assert!(
        all.contains("X-Original-To: postmaster\nDelivered-To: jerry@example.test\n"),
        "{all}"
    );
    assert!(
        all.contains(
            "X-Original-To: jerry+lists@example.test\nDelivered-To: jerry+lists@example.test\n"
        ),
        "{all}"
    );
    let log = inst.wait_log("orig_to=<postmaster>");
    assert!(
        log.contains("to=<jerry@example.test>, orig_to=<postmaster>, relay=virtual"),
        "{log}"
    );
}

/// `ironpost user add` asks for the password twice on the terminal,
/// without echoing it: driven through a pseudo-terminal by Python.
#[test]
fn user_add_asks_twice_on_the_terminal() {
    let inst = Instance::new(ironpost(), "");
    let script = |address: &str, first: &str, second: &str| {
        format!(
            r#"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv({bin:?}, [{bin:?}, "user", "add", {address:?}, "-c", {etc:?}])
out = b""
deadline = time.time() + 30
def read_until(s):
    global out
    while s not in out:
        if not select.select([fd], [], [], max(0, deadline - time.time()))[0]:
            os.kill(pid, signal.SIGKILL)
            sys.exit("no answer; so far: %r" % out)
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return
        if not chunk:
            return
        out += chunk
read_until(b"New password: ")
os.write(fd, {first:?}.encode() + b"\n")
read_until(b"Retype new password: ")
os.write(fd, {second:?}.encode() + b"\n")
read_until(b"\0")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode())
sys.exit(os.waitstatus_to_exitcode(status))
"#,
            bin = ironpost(),
            etc = inst.etc().display().to_string(),
        )
    };
    let out = Command::new("python3")
        .args(["-c", &script("ann@example.test", "hunter2", "hunter2")])
        .run();
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("hunter2"), "echoed: {}", out.stdout);
    assert!(
        out.stdout.contains("mailbox ann@example.test added"),
        "{}",
        out.stdout
    );
    let out = Command::new("python3")
        .args(["-c", &script("bob@example.test", "one", "two")])
        .run();
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("ironpost: fatal: the passwords do not match; nothing changed"),
        "{}",
        out.stdout
    );
    // Without a terminal (setsid: no controlling terminal) and without
    // --password-stdin: a clear refusal.
    assert_eq!(
        fails(
            Command::new("setsid")
                .args(["-w", ironpost(), "user", "add", "carl@example.test", "-c"])
                .arg(inst.etc().display().to_string())
                .run()
        ),
        "ironpost: fatal: no terminal to ask for the password on; use --password-stdin\n"
    );
    assert_eq!(
        ok(cli(&inst, &["user", "list", "example.test"])),
        "ann@example.test\njerry@example.test\n"
    );
}

/// The daemon keeps directory answers for directory_cache_ttl; the
/// commands tell it when they change something, so their changes count at
/// once, while a change made behind its back waits for the time limit.
#[test]
fn cached_answers_and_the_commands_that_drop_them() {
    let mut inst = Instance::new(
        ironpost(),
        "mynetworks = 192.0.2.0/24\ndirectory_cache_ttl = 1h",
    );
    inst.start();
    let tom = "tom@example.test";
    assert!(send(&inst, tom, "x").0.starts_with("550 5.1.1 "));
    // Added with SQL, not with ironpost: the daemon still has its answer.
    let fields = ironpost::auth::directory::password_fields("pw").unwrap();
    let db = Db::open(&format!(
        "sqlite:{}",
        inst.path("data/directory.db").display()
    ))
    .unwrap();
    db.execute(
        "INSERT INTO mailboxes (address, domain, password, scram_sha1, scram_sha256, quota, enabled, maildir, created) \
         VALUES (?, 'example.test', ?, '', '', 0, 1, 'example.test/tom/', 0)",
        &[tom.into(), fields.password.into()],
    )
    .unwrap();
    assert!(send(&inst, tom, "x").0.starts_with("550 5.1.1 "));
    // Any change through ironpost tells the daemon, which asks again.
    ok(cli(&inst, &["alias", "add", "tom2@example.test", tom]));
    assert_eq!(send(&inst, tom, "cached").0, "250 2.1.5 Ok");
    assert_eq!(send(&inst, "tom2@example.test", "alias").0, "250 2.1.5 Ok");
}
