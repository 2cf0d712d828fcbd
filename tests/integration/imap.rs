//! IMAP with real clients over real sockets: sessions by hand (the exact
//! answers of SELECT, FETCH, STORE, COPY, MOVE, APPEND, EXPUNGE, CONDSTORE,
//! IDLE and bad input), Python's imaplib (LOGIN, AUTHENTICATE, STARTTLS,
//! imaps, folders, STATUS), imapclient, mbsync syncing a whole account both
//! ways, mutt and curl reading over imap:// and imaps://; the Maildir on disk
//! as other programs see it; the log lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ironpost_testkit::instance::Instance;

use crate::common::*;

/// What every Python script starts with: a TLS context that takes the
/// instance's self-signed certificate, and `ok()` for an answer that must
/// be OK.
const PY_HEAD: &str = r#"
import imaplib, ssl, base64, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def ok(r):
    typ, data = r
    assert typ == "OK", r
    return data
"#;

fn python(script: &str) -> String {
    crate::common::python(&format!("{PY_HEAD}\n{script}"))
}

/// jerry's Maildir.
fn maildir(inst: &Instance) -> PathBuf {
    inst.path("vmail/example.test/jerry")
}

/// The file names in a Maildir's cur/ and new/, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = ["cur", "new"]
        .iter()
        .flat_map(|s| std::fs::read_dir(dir.join(s)).into_iter().flatten())
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A message as IMAP serves it: every line ending in CRLF.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The flags of a FETCH response, as a set.
fn flagset(line: &str) -> std::collections::BTreeSet<String> {
    let rest = line
        .split("FLAGS (")
        .nth(1)
        .unwrap_or_else(|| panic!("no FLAGS in {line}"));
    let inner = rest.split(')').next().unwrap();
    inner.split_whitespace().map(String::from).collect()
}

/// The EXPUNGE responses (an EXISTS with the new count may come along:
/// redundant, but allowed).
fn expunges(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.ends_with(" EXPUNGE"))
        .cloned()
        .collect()
}

/// FETCH responses with their flags in one order (the order of flags
/// has no meaning in IMAP).
fn norm(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match l.split_once("FLAGS (") {
            Some((head, rest)) if !l.starts_with("* FLAGS") => {
                let (inner, tail) = rest.split_once(')').unwrap();
                let mut f: Vec<&str> = inner.split_whitespace().collect();
                f.sort_unstable();
                format!("{head}FLAGS ({}){tail}", f.join(" "))
            }
            _ => l.clone(),
        })
        .collect()
}

/// The size of the literal announced at the end of a line (`{N}\r\n`,
/// `~{N}\r\n`).
fn literal_size(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"}\r\n")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..]).ok()?.parse().ok()
}

/// A raw IMAP connection: commands with tags a1, a2, ..., responses with
/// their literals inline.
struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
    greeting: String,
}

impl Imap {
    fn connect(port: u16) -> Imap {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect to imap");
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut i = Imap {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
            n: 0,
            greeting: String::new(),
        };
        i.greeting = i.text();
        i
    }

    /// Connected and logged in as jerry, INBOX selected when `select`.
    fn login(port: u16, select: bool) -> Imap {
        let mut i = Imap::connect(port);
        i.ok("LOGIN jerry@example.test secret");
        if select {
            i.ok("SELECT INBOX");
        }
        i
    }

    /// One response, literals included, without its last CRLF.
    fn read(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut l = Vec::new();
            let n = self.r.read_until(b'\n', &mut l).unwrap_or_else(|e| {
                panic!("read: {e}; so far: {:?}", String::from_utf8_lossy(&out))
            });
            assert!(
                n > 0,
                "connection closed; so far: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&l);
            if let Some(size) = literal_size(&l) {
                let mut buf = vec![0; size];
                self.r.read_exact(&mut buf).unwrap();
                out.extend_from_slice(&buf);
                continue;
            }
            if out.ends_with(b"\r\n") {
                out.truncate(out.len() - 2);
            }
            return out;
        }
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(&self.read()).into_owned()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    fn tag(&mut self) -> String {
        self.n += 1;
        format!("a{}", self.n)
    }

    /// Sends `TAG command`: the untagged responses (raw) and the tagged
    /// answer without the tag.
    fn raw_cmd(&mut self, c: &[u8]) -> (Vec<Vec<u8>>, String) {
        let tag = self.tag();
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(c);
        line.extend_from_slice(b"\r\n");
        self.send(&line);
        self.until_tagged(&tag)
    }

    fn until_tagged(&mut self, tag: &str) -> (Vec<Vec<u8>>, String) {
        let mut untagged = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let r = self.read();
            if let Some(rest) = r.strip_prefix(prefix.as_bytes()) {
                return (untagged, String::from_utf8_lossy(rest).into_owned());
            }
            untagged.push(r);
        }
    }

    fn cmd(&mut self, c: &str) -> (Vec<String>, String) {
        let (u, done) = self.raw_cmd(c.as_bytes());
        (
            u.iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
            done,
        )
    }

    /// A command that must answer OK; its untagged responses.
    fn ok(&mut self, c: &str) -> Vec<String> {
        let (u, done) = self.cmd(c);
        assert!(done.starts_with("OK"), "{c} -> {done} ({u:?})");
        u
    }

    /// Reads responses until one satisfies `want` (at most `secs`
    /// seconds); the ones read.
    fn wait_for(&mut self, secs: u64, want: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        self.w
            .set_read_timeout(Some(Duration::from_secs(secs)))
            .unwrap();
        let mut seen = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "never came; saw {seen:?}");
            let l = self.text();
            let done = want(&l);
            seen.push(l);
            if done {
                self.w
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                return seen;
            }
        }
    }
}

/// The multipart message of the FETCH tests: a base64 text part and a
/// binary part.
const MULTIPART: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
From: Tom <tom@example.test>\r\n\
To: jerry@example.test\r\n\
Subject: parts\r\n\
Message-ID: <m1@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
preamble\r\n\
--b1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8gcGFydCBvbmUNCg==\r\n\
--b1\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwQF/w==\r\n\
--b1--\r\n";

/// A literal's bytes in a response: what follows `{N}\r\n` after
/// `item`.
fn literal_after(resp: &[u8], item: &str) -> Vec<u8> {
    let at = resp
        .windows(item.len())
        .position(|w| w == item.as_bytes())
        .unwrap_or_else(|| panic!("{item} not in {:?}", String::from_utf8_lossy(resp)));
    let rest = &resp[at + item.len()..];
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let rest = rest.strip_prefix(b"~").unwrap_or(rest);
    assert_eq!(rest[0], b'{', "{:?}", String::from_utf8_lossy(rest));
    let close = rest.iter().position(|&b| b == b'}').unwrap();
    let n: usize = std::str::from_utf8(&rest[1..close])
        .unwrap()
        .parse()
        .unwrap();
    rest[close + 3..close + 3 + n].to_vec()
}

#[test]
fn capabilities_login_and_sasl_ir_by_hand() {
    let inst = started("");
    let mut i = Imap::connect(inst.imap_port);
    assert_eq!(
        i.greeting,
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] ironpost ready."
    );
    let (u, done) = i.cmd("CAPABILITY");
    assert_eq!(
        u,
        [
            "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN"
        ]
    );
    assert_eq!(done, "OK Capability completed.");
    // ID and NOOP before login.
    let u = i.ok("ID (\"name\" \"raw\")");
    assert!(
        u[0].starts_with("* ID (\"name\" \"ironpost\" \"version\" "),
        "{u:?}"
    );
    i.ok("NOOP");
    // A wrong password, then AUTHENTICATE PLAIN with the initial response
    // on the command line (RFC 4959).
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (_, done) = i.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        b64("\0jerry@example.test\0wrong")
    ));
    assert_eq!(done, "NO [AUTHENTICATIONFAILED] Authentication failed.");
    let (u, done) = i.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        b64("\0jerry@example.test\0secret")
    ));
    assert!(u.is_empty(), "{u:?}");
    assert!(
        done.starts_with("OK [CAPABILITY IMAP4rev1 ") && done.ends_with("] Logged in"),
        "{done}"
    );
    for c in [
        "MOVE",
        "UIDPLUS",
        "CONDSTORE",
        "IDLE",
        "NAMESPACE",
        "SPECIAL-USE",
    ] {
        assert!(done.split(' ').any(|w| w == c), "{c} missing: {done}");
    }
    assert!(
        !done.contains("STARTTLS") && !done.contains("AUTH="),
        "{done}"
    );
    let (u, done) = i.cmd("NAMESPACE");
    assert_eq!(u, ["* NAMESPACE ((\"\" \".\")) NIL NIL"]);
    assert_eq!(done, "OK Namespace completed.");
    assert_eq!(i.cmd("LOGOUT").0, ["* BYE Logging out"]);
    let log = inst.wait_log("Disconnected: Logged out");
    assert!(
        log.contains("imap-login: Login: user=<jerry@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid="),
        "{log}"
    );
    assert!(
        log.contains("imap(jerry@example.test): Disconnected: Logged out in="),
        "{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("Disconnected: Logged out in="))
        .unwrap();
    assert!(
        line.contains(" out=") && line.contains("expunged=0"),
        "{line}"
    );
    assert!(
        log.contains("Aborted login") || log.contains("auth failed"),
        "the wrong password is logged: {log}"
    );
}

#[test]
fn imaplib_login_starttls_imaps_and_wrong_password() {
    let inst = started("");
    deliver(&inst, "Subject: for imaplib\r\n\r\nhello\r\n");
    inst.wait_messages("jerry", 1);
    let out = python(&format!(
        r#"
M = imaplib.IMAP4("127.0.0.1", {p})
c = M.capabilities
assert "STARTTLS" in c and "AUTH=PLAIN" in c and "LOGINDISABLED" not in c and "MOVE" not in c, c
try:
    M.login("jerry@example.test", "wrong")
    raise SystemExit("wrong password accepted")
except M.error as e:
    print("wrong:", e)
ok(M.login("jerry@example.test", "secret"))
caps = ok(M.capability())[0].decode().split()
assert "MOVE" in caps and "STARTTLS" not in caps, caps
print("select:", ok(M.select("INBOX")))
M.logout()
M = imaplib.IMAP4("127.0.0.1", {p})
ok(M.starttls(ssl_context=ctx))
assert "STARTTLS" not in M.capabilities, M.capabilities
ok(M.authenticate("PLAIN", lambda _: b"\0jerry@example.test\0secret"))
print("starttls:", ok(M.status("INBOX", "(MESSAGES)")))
M.logout()
M = imaplib.IMAP4_SSL("127.0.0.1", {s}, ssl_context=ctx)
assert "STARTTLS" not in M.capabilities and "AUTH=PLAIN" in M.capabilities, M.capabilities
ok(M.login("jerry@example.test", "secret"))
ok(M.select("INBOX", readonly=True))
typ, data = M.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("imaps:", data[0][1])
M.logout()
"#,
        p = inst.imap_port,
        s = inst.imaps_port
    ));
    assert_eq!(
        out,
        "wrong: b'[AUTHENTICATIONFAILED] Authentication failed.'\n\
         select: [b'1']\n\
         starttls: [b'\"INBOX\" (MESSAGES 1)']\n\
         imaps: b'Subject: for imaplib\\r\\n\\r\\n'\n"
    );
    let log = inst.wait_log("Disconnected: Logged out");
    assert!(
        log.contains("imap-login: Login: user=<jerry@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=")
            && log.contains(", TLS"),
        "{log}"
    );
}

#[test]
fn ssl_required_disables_login_until_starttls() {
    let inst = started("ssl = required");
    let out = python(&format!(
        r#"
M = imaplib.IMAP4("127.0.0.1", {p})
c = M.capabilities
assert "LOGINDISABLED" in c and "STARTTLS" in c and "AUTH=PLAIN" not in c, c
try:
    M.login("jerry@example.test", "secret")
    raise SystemExit("plaintext login accepted")
except M.error as e:
    print("plain:", e)
ok(M.starttls(ssl_context=ctx))
assert "LOGINDISABLED" not in M.capabilities and "AUTH=PLAIN" in M.capabilities, M.capabilities
print(ok(M.login("jerry@example.test", "secret"))[0].decode().split("] ")[1])
M.logout()
"#,
        p = inst.imap_port
    ));
    assert_eq!(
        out,
        "plain: b'[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.'\n\
         Logged in\n"
    );
}

#[test]
fn imaplib_folders_list_subscribe_create_rename_delete_status() {
    let inst = started("");
    deliver(&inst, "Subject: one\r\n\r\nfirst body\r\n");
    deliver(&inst, "Subject: two\r\n\r\nsecond\r\n");
    inst.wait_messages("jerry", 2);
    let out = python(&format!(
        r#"
M = imaplib.IMAP4("127.0.0.1", {p})
ok(M.login("jerry@example.test", "secret"))
def show(label, data):
    print(label)
    for l in data:
        if l is not None:
            print(" ", l.decode())
show("list", ok(M.list()))
show("lsub", ok(M.lsub()))
ok(M.create("Work"))
ok(M.create("Work.Reports"))
ok(M.create("a.b"))
typ, data = M.create("Work")
print("again:", typ, data)
typ, data = M.create("INBOX")
print("inbox:", typ, data)
show("tree", ok(M.list('""', "*")))
show("pct", ok(M.list('""', "%")))
ok(M.subscribe("Work.Reports"))
ok(M.unsubscribe("Junk"))
show("lsub2", ok(M.lsub('""', "*")))
typ, data = M.subscribe("Nothing")
print("sub-missing:", typ)
ok(M.rename("Work", "Job"))
show("renamed", ok(M.list('""', "Job*")))
show("lsub3", ok(M.lsub('""', "Job*")))
typ, data = M.rename("Job", "Archive")
print("rename-exists:", typ, data)
typ, data = M.rename("Nothing", "Other")
print("rename-missing:", typ, data)
typ, data = M.rename("Job", "INBOX")
print("rename-to-inbox:", typ)
typ, data = M.delete("INBOX")
print("delete-inbox:", typ, data)
print("status:", ok(M.status("INBOX", "(MESSAGES UIDNEXT UNSEEN RECENT)")))
st = ok(M.status("INBOX", "(UIDVALIDITY SIZE)"))[0].decode()
print("validity:", st.split()[2].isdigit())
# RENAME INBOX moves its messages to the new folder; INBOX stays, empty.
ok(M.rename("INBOX", "Old"))
print("old:", ok(M.status("Old", "(MESSAGES)")))
print("inbox-after:", ok(M.status("INBOX", "(MESSAGES)")))
ok(M.delete("Job.Reports"))
ok(M.delete("Job"))
typ, data = M.delete("Job")
print("delete-missing:", typ, data)
show("end", ok(M.list('""', "*")))
typ, data = M.select("Nothing")
print("select-missing:", typ, data)
M.logout()
"#,
        p = inst.imap_port
    ));
    let lines: Vec<&str> = out.lines().collect();
    let section = |name: &str| -> Vec<String> {
        let start = lines
            .iter()
            .position(|l| *l == name)
            .unwrap_or_else(|| panic!("{name}: {out}"));
        lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let value = |name: &str| -> String {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .to_string()
    };
    assert_eq!(
        section("list"),
        [
            r#"(\HasNoChildren \Archive) "." "Archive""#,
            r#"(\HasNoChildren \Drafts) "." "Drafts""#,
            r#"(\HasNoChildren) "." "INBOX""#,
            r#"(\HasNoChildren \Junk) "." "Junk""#,
            r#"(\HasNoChildren \Sent) "." "Sent""#,
            r#"(\HasNoChildren \Trash) "." "Trash""#,
        ],
        "{out}"
    );
    assert_eq!(
        section("lsub"),
        [
            r#"() "." "Archive""#,
            r#"() "." "Drafts""#,
            r#"() "." "Junk""#,
            r#"() "." "Sent""#,
            r#"() "." "Trash""#,
        ],
        "{out}"
    );
    assert_eq!(
        value("again"),
        "NO [b'[ALREADYEXISTS] Mailbox already exists']"
    );
    assert_eq!(
        value("inbox"),
        "NO [b'[ALREADYEXISTS] Mailbox already exists']"
    );
    assert_eq!(
        section("tree"),
        [
            r#"(\HasNoChildren \Archive) "." "Archive""#,
            r#"(\HasNoChildren \Drafts) "." "Drafts""#,
            r#"(\HasNoChildren) "." "INBOX""#,
            r#"(\HasNoChildren \Junk) "." "Junk""#,
            r#"(\HasNoChildren \Sent) "." "Sent""#,
            r#"(\HasNoChildren \Trash) "." "Trash""#,
            r#"(\HasChildren) "." "Work""#,
            r#"(\HasNoChildren) "." "Work.Reports""#,
            r#"(\Noselect \HasChildren) "." "a""#,
            r#"(\HasNoChildren) "." "a.b""#,
        ],
        "{out}"
    );
    let pct = section("pct");
    assert!(
        pct.contains(&r#"(\HasChildren) "." "Work""#.to_string())
            && pct.contains(&r#"(\Noselect \HasChildren) "." "a""#.to_string())
            && !pct
                .iter()
                .any(|l| l.contains("Reports") || l.ends_with("a.b")),
        "{out}"
    );
    assert_eq!(
        section("lsub2"),
        [
            r#"() "." "Archive""#,
            r#"() "." "Drafts""#,
            r#"() "." "Sent""#,
            r#"() "." "Trash""#,
            r#"() "." "Work.Reports""#,
        ],
        "{out}"
    );
    assert_eq!(value("sub-missing"), "NO");
    assert_eq!(
        section("renamed"),
        [
            r#"(\HasChildren) "." "Job""#,
            r#"(\HasNoChildren) "." "Job.Reports""#
        ],
        "{out}"
    );
    assert_eq!(section("lsub3"), [r#"() "." "Job.Reports""#], "{out}");
    assert_eq!(
        value("rename-exists"),
        "NO [b'[ALREADYEXISTS] Target mailbox already exists']"
    );
    assert_eq!(
        value("rename-missing"),
        "NO [b\"[NONEXISTENT] Mailbox doesn't exist: Nothing\"]"
    );
    assert_eq!(value("rename-to-inbox"), "NO");
    assert_eq!(
        value("delete-inbox"),
        "NO [b\"[CANNOT] INBOX can't be deleted.\"]"
    );
    assert_eq!(
        value("status"),
        "[b'\"INBOX\" (MESSAGES 2 UIDNEXT 3 UNSEEN 2 RECENT 2)']"
    );
    assert_eq!(value("validity"), "True");
    assert_eq!(value("old"), "[b'\"Old\" (MESSAGES 2)']");
    assert_eq!(value("inbox-after"), "[b'\"INBOX\" (MESSAGES 0)']");
    assert_eq!(
        value("delete-missing"),
        "NO [b\"[NONEXISTENT] Mailbox doesn't exist: Job\"]"
    );
    assert_eq!(
        value("select-missing"),
        "NO [b\"[NONEXISTENT] Mailbox doesn't exist: Nothing\"]"
    );
    let end = section("end");
    assert!(
        end.iter().any(|l| l.ends_with("\".\" \"Old\"")) && !end.iter().any(|l| l.contains("Job")),
        "{out}"
    );
    // The folders on disk are Maildir++ folders: `.Name/` with cur, new
    // and tmp; a hierarchy is dots in one name.
    let md = maildir(&inst);
    for f in [".Old", ".a.b", ".Archive", ".Trash"] {
        for sub in ["cur", "new", "tmp"] {
            assert!(md.join(f).join(sub).is_dir(), "{f}/{sub}");
        }
    }
    assert!(!md.join(".Job").exists());
    assert_eq!(files(&md.join(".Old")).len(), 2);
    assert!(files(&md).is_empty());
}

#[test]
fn select_examine_and_fetch_by_hand() {
    let inst = started("");
    deliver(&inst, MULTIPART);
    // The queue may deliver two messages in either order: the second is
    // sent once the first is in the Maildir, so it gets UID 2.
    inst.wait_messages("jerry", 1);
    deliver(&inst, "Subject: second\r\n\r\nline\r\n");
    let raw = inst.wait_messages("jerry", 2);
    // The first file is the first delivered (names start with the time).
    let first = crlf(&raw[0]);
    assert!(
        String::from_utf8_lossy(&first).contains("Subject: parts"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    let mut i = Imap::login(inst.imap_port, false);
    // EXAMINE: read-only, no flags may be changed; FETCH BODY[] then sets
    // no \Seen.
    let (u, done) = i.cmd("EXAMINE INBOX");
    assert_eq!(done, "OK [READ-ONLY] Examine completed.");
    assert_eq!(u[0], r"* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)");
    assert_eq!(u[1], "* OK [PERMANENTFLAGS ()] Read-only mailbox.");
    assert!(u.contains(&"* 2 EXISTS".to_string()), "{u:?}");
    assert!(
        u.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{u:?}"
    );
    assert!(
        u.contains(&"* OK [UIDNEXT 3] Predicted next UID".to_string()),
        "{u:?}"
    );
    let (_, done) = i.cmd("STORE 1 +FLAGS (\\Flagged)");
    assert!(done.starts_with("NO "), "{done}");
    let (u, done) = i.raw_cmd(b"FETCH 1 BODY[]");
    assert_eq!(done, "OK Fetch completed.");
    assert_eq!(literal_after(&u[0], "BODY[]"), first);
    assert!(!String::from_utf8_lossy(&u[0]).contains("\\Seen"));
    // SELECT: read-write; the messages are \Recent in this session only
    // (the EXAMINE did not take them).
    let (u, done) = i.cmd("SELECT INBOX");
    assert_eq!(done, "OK [READ-WRITE] Select completed.");
    let validity = u
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY "))
        .and_then(|l| l.split(']').next())
        .unwrap()
        .to_string();
    let highest = u
        .iter()
        .find(|l| l.starts_with("* OK [HIGHESTMODSEQ "))
        .cloned()
        .unwrap_or_else(|| panic!("no HIGHESTMODSEQ: {u:?}"));
    assert_eq!(
        u,
        [
            r"* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)".to_string(),
            r"* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted."
                .to_string(),
            "* 2 EXISTS".to_string(),
            "* 2 RECENT".to_string(),
            "* OK [UNSEEN 1] First unseen.".to_string(),
            format!("* OK [UIDVALIDITY {validity}] UIDs valid"),
            "* OK [UIDNEXT 3] Predicted next UID".to_string(),
            highest,
        ]
    );
    let size = first.len();
    let (u, done) = i.cmd("FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE)");
    assert_eq!(done, "OK Fetch completed.");
    assert_eq!(u.len(), 1);
    assert!(
        u[0].starts_with(&format!(
            "* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size} INTERNALDATE \""
        )),
        "{u:?}"
    );
    let (u, _) = i.cmd("FETCH 1 ENVELOPE");
    assert_eq!(
        u,
        [
            "* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"parts\" \
             ((\"Tom\" NIL \"tom\" \"example.test\")) ((\"Tom\" NIL \"tom\" \"example.test\")) \
             ((\"Tom\" NIL \"tom\" \"example.test\")) ((NIL NIL \"jerry\" \"example.test\")) \
             NIL NIL NIL \"<m1@example.test>\"))"
        ]
    );
    let (u, _) = i.cmd("FETCH 1 BODYSTRUCTURE");
    assert_eq!(
        u,
        [
            "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 24 0 NIL NIL NIL NIL)\
             (\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 12 NIL NIL NIL NIL) \
             \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL))"
        ]
    );
    let (u, _) = i.cmd("FETCH 1 BODY");
    assert_eq!(
        u,
        [
            "* 1 FETCH (BODY ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 24 0)\
             (\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 12) \"mixed\"))"
        ]
    );
    // Sections, byte for byte against the delivered file; PEEK sets no
    // \Seen.
    let (u, _) = i.raw_cmd(b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert_eq!(
        literal_after(&u[0], "BODY[HEADER.FIELDS (SUBJECT)]"),
        b"Subject: parts\r\n\r\n"
    );
    let (u, _) = i.raw_cmd(b"FETCH 1 BODY.PEEK[HEADER]");
    let header_end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(literal_after(&u[0], "BODY[HEADER]"), &first[..header_end]);
    let (u, _) = i.raw_cmd(b"FETCH 1 BODY.PEEK[TEXT]");
    assert_eq!(literal_after(&u[0], "BODY[TEXT]"), &first[header_end..]);
    let (u, _) = i.raw_cmd(b"FETCH 1 BODY.PEEK[]<0.10>");
    assert_eq!(literal_after(&u[0], "BODY[]<0>"), &first[..10]);
    let (u, _) = i.raw_cmd(b"FETCH 1 BODY.PEEK[1]");
    assert_eq!(literal_after(&u[0], "BODY[1]"), b"aGVsbG8gcGFydCBvbmUNCg==");
    let (u, _) = i.raw_cmd(b"FETCH 1 BODY.PEEK[1.MIME]");
    assert_eq!(
        literal_after(&u[0], "BODY[1.MIME]"),
        b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    let (u, _) = i.raw_cmd(b"FETCH 1 BINARY.PEEK[1]");
    assert_eq!(literal_after(&u[0], "BINARY[1]"), b"hello part one\r\n");
    let (u, _) = i.raw_cmd(b"FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])");
    let text = String::from_utf8_lossy(&u[0]).into_owned();
    assert!(text.contains("BINARY.SIZE[2] 7"), "{text}");
    assert_eq!(literal_after(&u[0], "BINARY[2]"), [0, 1, 2, 3, 4, 5, 0xff]);
    assert!(text.contains("~{7}"), "a literal8 for binary data: {text}");
    let (u, _) = i.cmd("FETCH 1 FLAGS");
    assert_eq!(u, ["* 1 FETCH (FLAGS (\\Recent))"], "PEEK sets no \\Seen");
    // BODY[] sets \Seen, and says so in the same FETCH response.
    let (u, done) = i.raw_cmd(b"FETCH 1 BODY[]");
    assert_eq!(done, "OK Fetch completed.");
    let text = String::from_utf8_lossy(&u[0]).into_owned();
    assert_eq!(literal_after(&u[0], "BODY[]"), first);
    assert!(text.contains("FLAGS (\\Seen \\Recent)"), "{text}");
    let (u, _) = i.cmd("UID FETCH 1:* (FLAGS)");
    assert_eq!(
        u,
        [
            "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))",
            "* 2 FETCH (UID 2 FLAGS (\\Recent))"
        ]
    );
    let (u, _) = i.cmd("FETCH 2 RFC822.HEADER");
    assert!(u[0].contains("Subject: second"), "{u:?}");
    let (u, _) = i.cmd("FETCH 1:2 FAST");
    assert_eq!(u.len(), 2);
    assert!(u[1].contains("RFC822.SIZE"), "{u:?}");
    // Bad sets.
    let (_, done) = i.cmd("FETCH 3 FLAGS");
    assert!(done.starts_with("BAD "), "{done}");
    let (u, done) = i.cmd("UID FETCH 99 FLAGS");
    assert!(u.is_empty() && done.starts_with("OK"), "{u:?} {done}");
    i.ok("LOGOUT");
    let log = inst.wait_log("Disconnected: Logged out");
    assert!(log.contains("body_count="), "{log}");
}

#[test]
fn store_copy_move_append_expunge_by_hand() {
    let inst = started("");
    for n in 1..=4 {
        deliver(&inst, &format!("Subject: m{n}\r\n\r\nbody {n}\r\n"));
    }
    inst.wait_messages("jerry", 4);
    let mut i = Imap::login(inst.imap_port, true);
    // STORE: +FLAGS, -FLAGS, FLAGS, .SILENT, keywords.
    // A new keyword: FLAGS and PERMANENTFLAGS again (in any order with
    // the FETCH).
    let mut u = i.ok("STORE 1 +FLAGS (\\Flagged $Work)");
    u.sort();
    assert_eq!(
        u,
        [
            "* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))",
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted.",
        ]
    );
    assert_eq!(
        norm(&i.ok("STORE 1 -FLAGS ($Work)")),
        norm(&["* 1 FETCH (FLAGS (\\Flagged \\Recent))"].map(String::from))
    );
    assert_eq!(
        norm(&i.ok("STORE 1:2 FLAGS (\\Seen \\Answered)")),
        norm(
            &[
                "* 1 FETCH (FLAGS (\\Answered \\Seen \\Recent))",
                "* 2 FETCH (FLAGS (\\Answered \\Seen \\Recent))"
            ]
            .map(String::from)
        )
    );
    assert!(i.ok("STORE 2 +FLAGS.SILENT (\\Draft)").is_empty());
    assert_eq!(
        norm(&i.ok("UID STORE 2 -FLAGS (\\Answered)")),
        norm(&["* 2 FETCH (UID 2 FLAGS (\\Seen \\Draft \\Recent))"].map(String::from))
    );
    assert_eq!(
        norm(&i.ok("FETCH 1:4 FLAGS")),
        norm(
            &[
                "* 1 FETCH (FLAGS (\\Answered \\Seen \\Recent))",
                "* 2 FETCH (FLAGS (\\Seen \\Draft \\Recent))",
                "* 3 FETCH (FLAGS (\\Recent))",
                "* 4 FETCH (FLAGS (\\Recent))"
            ]
            .map(String::from)
        )
    );
    // \Recent cannot be altered by the client (RFC 3501 §2.3.2): refused
    // or ignored, never stored.
    let (_, done) = i.cmd("STORE 3 FLAGS (\\Recent)");
    assert!(!done.starts_with("NO"), "{done}");
    assert_eq!(i.ok("FETCH 3 FLAGS"), ["* 3 FETCH (FLAGS (\\Recent))"]);
    // COPY with COPYUID (RFC 4315 §3); flags go along.
    let (u, done) = i.cmd("COPY 1:2 Archive");
    assert!(u.is_empty(), "{u:?}");
    let validity = {
        let mut j = Imap::login(inst.imap_port, false);
        let u = j.ok("STATUS Archive (UIDVALIDITY MESSAGES)");
        let l = u[0].clone();
        assert!(l.contains("MESSAGES 2"), "{l}");
        l.split("UIDVALIDITY ")
            .nth(1)
            .unwrap()
            .split([' ', ')'])
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        done,
        format!("OK [COPYUID {validity} 1:2 1:2] Copy completed.")
    );
    let (_, done) = i.cmd("COPY 1 Nothing");
    assert_eq!(done, "NO [TRYCREATE] Mailbox doesn't exist: Nothing");
    // MOVE (RFC 6851): COPYUID untagged, then EXPUNGE of the source.
    let u = i.ok("UID MOVE 3 Trash");
    // (A redundant `* 3 EXISTS` after the EXPUNGE is allowed.)
    assert!(
        u.len() == 2 || (u.len() == 3 && u[2] == "* 3 EXISTS"),
        "{u:?}"
    );
    assert!(
        u[0].starts_with("* OK [COPYUID ") && u[0].ends_with(" 3 1] Moved UIDs."),
        "{u:?}"
    );
    assert_eq!(u[1], "* 3 EXPUNGE");
    // APPEND with flags and a date, as a non-synchronizing literal
    // (LITERAL+) and as a synchronizing one.
    let msg = b"Subject: appended\r\nFrom: me@example.test\r\n\r\nappended body\r\n";
    let mut cmd = format!(
        "APPEND INBOX (\\Seen $Later) \"05-Mar-2021 10:11:12 +0100\" {{{}+}}\r\n",
        msg.len()
    )
    .into_bytes();
    cmd.extend_from_slice(msg);
    let (u, done) = i.raw_cmd(&cmd);
    let uv = done
        .strip_prefix("OK [APPENDUID ")
        .unwrap_or_else(|| panic!("{done}"));
    assert!(uv.ends_with(" 5] Append completed."), "{done}");
    // The session sees the new message at once.
    let u: Vec<String> = u
        .iter()
        .map(|l| String::from_utf8_lossy(l).into())
        .collect();
    assert!(u.contains(&"* 4 EXISTS".to_string()), "{u:?}");
    let (u, _) = i.raw_cmd(b"UID FETCH 5 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
    let text = String::from_utf8_lossy(&u[0]).into_owned();
    assert!(text.starts_with("* 4 FETCH (UID 5 FLAGS ("), "{text}");
    // "In either case, the Recent flag is also set" (RFC 3501 §6.3.11):
    // for the appending session, the first to see the message; not for
    // another one.
    assert_eq!(
        flagset(&text),
        flagset("FLAGS (\\Seen $Later \\Recent)"),
        "{text}"
    );
    let mut other = Imap::login(inst.imap_port, true);
    assert_eq!(
        other.ok("UID FETCH 5 FLAGS"),
        ["* 4 FETCH (UID 5 FLAGS (\\Seen $Later))"]
    );
    other.ok("LOGOUT");
    // The date given, as the same instant (a Maildir keeps no zone).
    assert!(
        text.contains("INTERNALDATE \"05-Mar-2021 10:11:12 +0100\"")
            || text.contains("INTERNALDATE \"05-Mar-2021 09:11:12 +0000\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("RFC822.SIZE {}", msg.len())),
        "{text}"
    );
    assert_eq!(literal_after(&u[0], "BODY[]"), msg);
    let tag = i.tag();
    i.send(format!("{tag} APPEND Drafts (\\Draft) {{{}}}\r\n", msg.len()).as_bytes());
    assert_eq!(i.text(), "+ OK");
    i.send(msg);
    i.send(b"\r\n");
    let (_, done) = i.until_tagged(&tag);
    assert!(
        done.starts_with("OK [APPENDUID ") && done.ends_with(" 1] Append completed."),
        "{done}"
    );
    let (_, done) = i.cmd("APPEND Nothing {1+}\r\nx");
    assert_eq!(done, "NO [TRYCREATE] Mailbox doesn't exist: Nothing");
    // EXPUNGE and UID EXPUNGE (RFC 4315 §2.1): only the given UIDs.
    i.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(expunges(&i.ok("UID EXPUNGE 2")), ["* 2 EXPUNGE"]);
    assert_eq!(
        i.ok("FETCH 1:* (UID)"),
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 4)",
            "* 3 FETCH (UID 5)"
        ]
    );
    assert_eq!(expunges(&i.ok("EXPUNGE")), ["* 1 EXPUNGE"]);
    assert_eq!(
        i.ok("FETCH 1:* (UID)"),
        ["* 1 FETCH (UID 4)", "* 2 FETCH (UID 5)"]
    );
    // CLOSE expunges \Deleted silently; UNSELECT does not.
    i.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert!(i.ok("UNSELECT").is_empty());
    let (_, done) = i.cmd("FETCH 1 FLAGS");
    assert_eq!(done, "BAD No mailbox selected.");
    let u = i.ok("SELECT INBOX");
    assert!(u.contains(&"* 2 EXISTS".to_string()), "{u:?}");
    assert!(i.ok("CLOSE").is_empty());
    let u = i.ok("STATUS INBOX (MESSAGES UIDNEXT)");
    assert_eq!(u, ["* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 6)"]);
    // NOOP shows mail delivered by SMTP meanwhile.
    let u = i.ok("SELECT INBOX");
    assert!(u.contains(&"* 1 EXISTS".to_string()), "{u:?}");
    deliver(&inst, "Subject: meanwhile\r\n\r\nnew\r\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let u = i.ok("NOOP");
        if u.contains(&"* 2 EXISTS".to_string()) {
            assert!(
                u.contains(&"* 1 RECENT".to_string()) || u.contains(&"* 2 RECENT".to_string()),
                "{u:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no EXISTS after delivery");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (u, _) = i.cmd("FETCH 2 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        u[0].starts_with("* 2 FETCH (UID 6 ") && u[0].contains("Subject: meanwhile"),
        "{u:?}"
    );
    i.ok("LOGOUT");
    // This session's line (another session logged out before).
    let log = inst.wait_log("deleted=3 expunged=4");
    assert!(
        log.lines().any(
            |l| l.contains("imap(jerry@example.test): Disconnected: Logged out")
                && l.contains("deleted=3 expunged=4")
        ),
        "{log}"
    );
}

#[test]
fn condstore_modseq_changedsince_unchangedsince() {
    let inst = started("");
    deliver(&inst, "Subject: a\r\n\r\nx\r\n");
    deliver(&inst, "Subject: b\r\n\r\ny\r\n");
    inst.wait_messages("jerry", 2);
    let mut i = Imap::login(inst.imap_port, false);
    assert_eq!(i.ok("ENABLE CONDSTORE"), ["* ENABLED CONDSTORE"]);
    let u = i.ok("SELECT INBOX");
    let highest: u64 = u
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|l| l.split(']').next())
        .unwrap_or_else(|| panic!("no HIGHESTMODSEQ: {u:?}"))
        .parse()
        .unwrap();
    let modseq = |l: &str| -> u64 {
        l.split("MODSEQ (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or_else(|| panic!("no MODSEQ in {l}"))
            .parse()
            .unwrap()
    };
    let u = i.ok("FETCH 1:2 (MODSEQ)");
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(
        modseq(&u[0]) <= highest && modseq(&u[1]) <= highest,
        "{u:?}"
    );
    let u = i.ok("STORE 1 +FLAGS (\\Flagged)");
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(
        u[0].starts_with("* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{u:?}"
    );
    let m1 = modseq(&u[0]);
    assert!(m1 > highest, "{u:?}");
    // CHANGEDSINCE: only what changed after the given mod-sequence.
    let u = i.ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"));
    assert_eq!(
        u,
        [format!(
            "* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ({m1}))"
        )]
    );
    assert!(
        i.ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {m1})"))
            .is_empty()
    );
    // UNCHANGEDSINCE: message 1 changed after `highest`: MODIFIED 1; 2
    // is stored.
    let (u, done) = i.cmd(&format!(
        "STORE 1:2 (UNCHANGEDSINCE {highest}) +FLAGS (\\Seen)"
    ));
    assert_eq!(done, "OK [MODIFIED 1] Conditional store failed.");
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(
        u[0].starts_with("* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ ("),
        "{u:?}"
    );
    let m2 = modseq(&u[0]);
    assert!(m2 > m1);
    let u = i.ok("STATUS INBOX (HIGHESTMODSEQ)");
    assert_eq!(u, [format!("* STATUS \"INBOX\" (HIGHESTMODSEQ {m2})")]);
    let (u, done) = i.cmd(&format!(
        "UID STORE 1 (UNCHANGEDSINCE {m1}) FLAGS.SILENT (\\Answered)"
    ));
    assert_eq!(done, "OK Store completed.");
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].starts_with("* 1 FETCH (UID 1 MODSEQ ("), "{u:?}");
}

#[test]
fn idle_sees_deliveries_flag_changes_and_expunges() {
    let inst = started("");
    deliver(&inst, "Subject: first\r\n\r\nx\r\n");
    inst.wait_messages("jerry", 1);
    let mut a = Imap::login(inst.imap_port, true);
    let tag = a.tag();
    a.send(format!("{tag} IDLE\r\n").as_bytes());
    assert_eq!(a.text(), "+ idling");
    deliver(&inst, "Subject: second\r\n\r\ny\r\n");
    // Within a generous bound; the server tells at once or at its next
    // poll.
    a.wait_for(10, |l| l == "* 2 EXISTS");
    let mut b = Imap::login(inst.imap_port, true);
    b.ok("STORE 1 +FLAGS (\\Flagged)");
    let seen = a.wait_for(10, |l| l.starts_with("* 1 FETCH ("));
    let l = seen.last().unwrap();
    assert!(l.contains("FLAGS (") && l.contains("\\Flagged"), "{seen:?}");
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    b.ok("EXPUNGE");
    a.wait_for(10, |l| l == "* 2 EXPUNGE");
    a.send(b"DONE\r\n");
    let (_, done) = a.until_tagged(&tag);
    assert_eq!(done, "OK Idle completed.");
    assert_eq!(a.ok("FETCH 1:* (UID)"), ["* 1 FETCH (UID 1)"]);
    // Something other than DONE ends IDLE with BAD.
    let tag = a.tag();
    a.send(format!("{tag} IDLE\r\n").as_bytes());
    assert_eq!(a.text(), "+ idling");
    a.send(b"NOOP\r\n");
    let (_, done) = a.until_tagged(&tag);
    assert!(done.starts_with("BAD"), "{done}");
    a.ok("NOOP");
}

#[test]
fn a_big_store_renames_the_files_right_after_its_answer() {
    let mut inst = started("");
    deliver(&inst, "Subject: first\r\n\r\nx\r\n");
    inst.wait_messages("jerry", 1);
    let md = maildir(&inst);
    // 99 more, put in new/ as another delivery agent would.
    for n in 0..99 {
        let name = format!("1700000000.M{n}P1.elsewhere");
        std::fs::write(
            md.join("tmp").join(&name),
            format!("Subject: {n}\n\nbody\n"),
        )
        .unwrap();
        std::fs::rename(md.join("tmp").join(&name), md.join("new").join(&name)).unwrap();
    }
    let mut a = Imap::login(inst.imap_port, true);
    let mut b = Imap::login(inst.imap_port, true);
    let seen_files = |md: &Path| {
        files(md)
            .iter()
            .filter(|n| n.ends_with(":2,S") || n.ends_with(":2,FS"))
            .count()
    };
    let u = a.ok("STORE 1:* +FLAGS (\\Seen)");
    assert_eq!(
        u.iter().filter(|l| l.contains("\\Seen")).count(),
        100,
        "{u:?}"
    );
    // Another session renames one of the same files at once: both
    // changes stay.
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    // Mutt and other Maildir programs see the flags within moments,
    // without another command.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen_files(&md) < 100 {
        assert!(Instant::now() < deadline, "renamed: {}", seen_files(&md));
        std::thread::sleep(Duration::from_millis(20));
    }
    let both = files(&md).iter().filter(|n| n.ends_with(":2,FS")).count();
    assert_eq!(both, 1, "{:?}", files(&md));
    b.ok("STORE 1 -FLAGS.SILENT (\\Flagged)");
    // Another session sees what the first was told, at once.
    let f = b.ok("FETCH 1:* (FLAGS)");
    assert_eq!(
        f.iter().filter(|l| l.contains("\\Seen")).count(),
        100,
        "{f:?}"
    );
    a.ok("STORE 1:* -FLAGS.SILENT (\\Seen)");
    let f = b.ok("FETCH 1:* (FLAGS)");
    assert!(f.iter().all(|l| !l.contains("\\Seen")), "{f:?}");
    // By the time LOGOUT is answered the files are renamed.
    a.ok("LOGOUT");
    assert_eq!(seen_files(&md), 0, "{:?}", files(&md));
    // And the flags survive a restart, as the files say.
    // And a server stopped right after a big STORE's answer, with the
    // session still open, leaves the files renamed.
    b.ok("STORE 1:80 +FLAGS.SILENT (\\Flagged)");
    inst.stop();
    drop(b);
    inst.start();
    let mut c = Imap::login(inst.imap_port, true);
    let f = c.ok("FETCH 1:* (FLAGS)");
    assert_eq!(
        f.iter().filter(|l| l.contains("\\Flagged")).count(),
        80,
        "{f:?}"
    );
    assert_eq!(
        files(&md).iter().filter(|n| n.ends_with(":2,F")).count(),
        80
    );
}

#[test]
fn maildir_flags_keywords_and_uids_as_other_programs_see_them() {
    let mut inst = started("");
    deliver(&inst, "Subject: one\r\n\r\nx\r\n");
    deliver(&inst, "Subject: two\r\n\r\ny\r\n");
    inst.wait_messages("jerry", 2);
    let md = maildir(&inst);
    let mut i = Imap::login(inst.imap_port, true);
    i.ok("STORE 1 +FLAGS (\\Seen \\Flagged)");
    let names = files(&md);
    assert!(
        names.iter().any(|n| n.ends_with(":2,FS")),
        "flags in the file name: {names:?}"
    );
    // A keyword gets a letter, kept in dovecot-keywords.
    i.ok("STORE 1 +FLAGS ($Work Urgent)");
    let kw = std::fs::read_to_string(md.join("dovecot-keywords")).unwrap();
    assert!(kw.lines().any(|l| l == "0 $Work"), "{kw}");
    assert!(kw.lines().any(|l| l == "1 Urgent"), "{kw}");
    let names = files(&md);
    assert!(names.iter().any(|n| n.ends_with(":2,FSab")), "{names:?}");
    // Another program (mutt, say) marks message 2 replied and read by
    // renaming its file: NOOP shows the new flags.
    let two = ["cur", "new"]
        .iter()
        .flat_map(|s| std::fs::read_dir(md.join(s)).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("Subject: two"))
        .unwrap();
    let base = two
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .split(":2,")
        .next()
        .unwrap()
        .to_string();
    std::fs::rename(&two, md.join("cur").join(format!("{base}:2,RS"))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let u = i.ok("NOOP");
        if let Some(l) = u.iter().find(|l| l.starts_with("* 2 FETCH")) {
            assert_eq!(
                flagset(l),
                flagset("(FLAGS (\\Answered \\Seen \\Recent))"),
                "{l}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the rename never showed");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The other program adds a keyword letter and removes one.
    let one = ["cur", "new"]
        .iter()
        .flat_map(|s| std::fs::read_dir(md.join(s)).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(":2,FSab"))
        .unwrap();
    let renamed = one.to_string_lossy().replace(":2,FSab", ":2,Sb");
    std::fs::rename(&one, &renamed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let u = i.ok("NOOP");
        if let Some(l) = u.iter().find(|l| l.starts_with("* 1 FETCH")) {
            assert_eq!(
                flagset(l),
                flagset("(FLAGS (\\Seen Urgent \\Recent))"),
                "{l}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the rename never showed");
        std::thread::sleep(Duration::from_millis(300));
    }
    // A folder made over IMAP is a Maildir++ folder, and a message put in
    // its new/ by hand shows there.
    i.ok("CREATE Lists.Rust");
    let f = md.join(".Lists.Rust");
    for sub in ["cur", "new", "tmp"] {
        assert!(f.join(sub).is_dir(), "{sub}");
    }
    std::fs::write(
        f.join("new/1700000000.M1P1.test"),
        "Subject: by hand\n\nput there\n",
    )
    .unwrap();
    let u = i.ok("STATUS Lists.Rust (MESSAGES UNSEEN)");
    assert_eq!(u, ["* STATUS \"Lists.Rust\" (MESSAGES 1 UNSEEN 1)"]);
    let before = i.ok("UID FETCH 1:* (UID FLAGS)");
    let validity = i.ok("STATUS INBOX (UIDVALIDITY UIDNEXT)");
    i.ok("LOGOUT");
    drop(i);
    // UIDs, flags and UIDVALIDITY stay across a restart; the new mail gets
    // the next UID.
    inst.stop();
    inst.start();
    deliver(&inst, "Subject: three\r\n\r\nz\r\n");
    inst.wait_messages("jerry", 1);
    let mut i = Imap::login(inst.imap_port, true);
    let after = i.ok("UID FETCH 1:2 (UID FLAGS)");
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|l| l.replace(" \\Recent", "").replace("(\\Recent)", "()"))
            .collect()
    };
    assert_eq!(strip(&after), strip(&before));
    let u = i.ok("UID FETCH 3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        u[0].contains("UID 3 ") && u[0].contains("Subject: three"),
        "{u:?}"
    );
    let v2 = i.ok("STATUS INBOX (UIDVALIDITY UIDNEXT)");
    assert_eq!(
        validity[0].replace("UIDNEXT 3", "UIDNEXT 4"),
        v2[0],
        "{validity:?} {v2:?}"
    );
    // A message in the folder is found with its words: a plain-text LF
    // file served with CRLF.
    i.ok("SELECT Lists.Rust");
    let (u, _) = i.raw_cmd(b"FETCH 1 BODY[]");
    assert_eq!(
        literal_after(&u[0], "BODY[]"),
        b"Subject: by hand\r\n\r\nput there\r\n"
    );
}

#[test]
fn bad_input_limits_and_states() {
    let inst = started("imap_max_line_length = 8192\nmail_max_userip_connections = 3");
    let mut i = Imap::connect(inst.imap_port);
    // Wrong state before login.
    let (_, done) = i.cmd("SELECT INBOX");
    assert!(done.starts_with("BAD "), "{done}");
    let (_, done) = i.cmd("FETCH 1 FLAGS");
    assert!(done.starts_with("BAD "), "{done}");
    // A synchronizing literal too large before login is refused without
    // being waited for.
    let tag = i.tag();
    i.send(format!("{tag} LOGIN {{99999999}}\r\n").as_bytes());
    let l = i.text();
    assert!(
        l.starts_with(&format!("{tag} BAD [TOOBIG]"))
            || l.starts_with(&format!("{tag} NO [TOOBIG]")),
        "{l}"
    );
    i.ok("NOOP");
    i.ok("LOGIN jerry@example.test secret");
    // Garbage and unknown commands: BAD with the tag, the session goes on.
    let (_, done) = i.cmd("FROBNICATE");
    assert!(done.starts_with("BAD "), "{done}");
    i.send(b"\x01\x02\xff garbage\r\n");
    let l = i.text();
    assert!(l.starts_with("* BAD") || l.starts_with("\x01"), "{l:?}");
    i.ok("NOOP");
    let (_, done) = i.cmd("FETCH 1 FLAGS");
    assert_eq!(done, "BAD No mailbox selected.");
    let (_, done) = i.cmd("SELECT");
    assert!(done.starts_with("BAD "), "{done}");
    let (_, done) = i.cmd("LOGIN jerry@example.test secret");
    assert!(done.starts_with("BAD "), "{done}");
    i.ok("SELECT INBOX");
    let (_, done) = i.cmd("FETCH 1 (FLAGS");
    assert!(done.starts_with("BAD "), "{done}");
    let (_, done) = i.cmd("FETCH 1 FLAGS");
    assert!(
        done.starts_with("BAD "),
        "empty folder, no message 1: {done}"
    );
    // A command line over imap_max_line_length.
    let long = format!("NOOP {}", "x".repeat(10000));
    let (u, done) = i.cmd(&long);
    assert!(
        done.starts_with("BAD") || u.iter().any(|l| l.starts_with("* BAD")),
        "{u:?} {done}"
    );
    i.ok("NOOP");
    // A literal over the limit: NO [TOOBIG] at once, without the server
    // waiting for it (RFC 7889 APPENDLIMIT, RFC 4469 §4.2).
    let tag = i.tag();
    i.send(format!("{tag} APPEND INBOX {{99999999}}\r\n").as_bytes());
    let l = i.text();
    assert!(
        l.starts_with(&format!("{tag} NO [TOOBIG]"))
            || l.starts_with(&format!("{tag} BAD [TOOBIG]")),
        "{l}"
    );
    i.ok("NOOP");
    assert_eq!(i.ok("UID FETCH 1:* (UID)").len(), 0);
    // mail_max_userip_connections: with 3 open (this one and two more),
    // the fourth login is refused, and works when one is gone.
    let b = Imap::login(inst.imap_port, false);
    let c = Imap::login(inst.imap_port, false);
    let mut d = Imap::connect(inst.imap_port);
    let (_, done) = d.cmd("LOGIN jerry@example.test secret");
    assert!(done.starts_with("NO "), "{done}");
    assert!(done.contains("mail_max_userip_connections=3"), "{done}");
    drop(b);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, done) = d.cmd("LOGIN jerry@example.test secret");
        if done.starts_with("OK") {
            break;
        }
        assert!(Instant::now() < deadline, "{done}");
        std::thread::sleep(Duration::from_millis(100));
    }
    inst.wait_log("Maximum number of connections from user+IP exceeded");
}

#[test]
fn default_userip_limit_refuses_the_eleventh_session() {
    let inst = started("");
    let open: Vec<Imap> = (0..10)
        .map(|_| Imap::login(inst.imap_port, false))
        .collect();
    let mut eleventh = Imap::connect(inst.imap_port);
    let (_, done) = eleventh.cmd("LOGIN jerry@example.test secret");
    assert!(
        done.starts_with("NO ") && done.contains("mail_max_userip_connections=10"),
        "{done}"
    );
    drop(open);
}

#[test]
fn imapclient_login_select_fetch_flags_append_move() {
    let inst = started("");
    deliver(&inst, "Subject: for imapclient\r\n\r\nhello\r\n");
    deliver(&inst, "Subject: second\r\n\r\nworld\r\n");
    inst.wait_messages("jerry", 2);
    let out = python(&format!(
        r#"
from imapclient import IMAPClient
import datetime
c = IMAPClient("127.0.0.1", port={p}, ssl=False)
c.login("jerry@example.test", "secret")
info = c.select_folder("INBOX")
print("exists:", info[b"EXISTS"], info[b"UIDNEXT"], b"READ-WRITE" in info)
data = c.fetch([1, 2], ["FLAGS", "ENVELOPE", "RFC822.SIZE"])
for uid in sorted(data):
    print(uid, data[uid][b"ENVELOPE"].subject, data[uid][b"FLAGS"])
c.add_flags([1], [b"\\Flagged", b"$Label1"])
c.remove_flags([1], [b"$Label1"])
print("flags:", c.get_flags([1, 2]))
when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
r = c.append("Archive", b"Subject: via append\r\n\r\nx\r\n", flags=[b"\\Seen"], msg_time=when)
print("append:", r.split(b"]")[1].strip())
c.move([2], "Archive")
print("inbox:", c.folder_status("INBOX", [b"MESSAGES"]))
c.select_folder("Archive", readonly=True)
data = c.fetch([1, 2], ["FLAGS", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
for uid in sorted(data):
    print(uid, data[uid][b"FLAGS"], data[uid][b"INTERNALDATE"].isoformat(), data[uid][b"BODY[HEADER.FIELDS (SUBJECT)]"].strip())
print("folders:", sorted(f[2] for f in c.list_folders()))
c.logout()
"#,
        p = inst.imap_port
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exists: 2 3 True", "{out}");
    assert_eq!(lines[1], "1 b'for imapclient' (b'\\\\Recent',)", "{out}");
    assert_eq!(lines[2], "2 b'second' (b'\\\\Recent',)", "{out}");
    assert_eq!(
        lines[3], "flags: {1: (b'\\\\Flagged', b'\\\\Recent'), 2: (b'\\\\Recent',)}",
        "{out}"
    );
    assert_eq!(lines[4], "append: b'Append completed.'", "{out}");
    assert_eq!(lines[5], "inbox: {b'MESSAGES': 1}", "{out}");
    // The internal date is the one given (shown in local time by
    // imapclient, so compared as an instant below).
    assert!(
        lines[6].starts_with("1 (b'\\\\Seen',) ") && lines[6].ends_with(" b'Subject: via append'"),
        "{out}"
    );
    assert!(
        lines[7].starts_with("2 () ") && lines[7].ends_with(" b'Subject: second'"),
        "{out}"
    );
    assert_eq!(
        lines[8], "folders: ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']",
        "{out}"
    );
    let mut i = Imap::login(inst.imap_port, false);
    i.ok("EXAMINE Archive");
    let u = i.ok("FETCH 1 INTERNALDATE");
    assert_eq!(
        u,
        ["* 1 FETCH (INTERNALDATE \"02-Jan-2020 03:04:05 +0000\")"]
    );
}

#[test]
fn mbsync_syncs_an_account_both_ways() {
    let inst = started("");
    for n in 1..=3 {
        deliver(&inst, &format!("Subject: sync {n}\r\n\r\nbody {n}\r\n"));
    }
    inst.wait_messages("jerry", 3);
    let dir = tempfile::tempdir().unwrap();
    let near = dir.path().join("mail");
    std::fs::create_dir_all(&near).unwrap();
    let rc = dir.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount ironpost\nHost 127.0.0.1\nPort {port}\nUser jerry@example.test\nPass secret\n\
             SSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore far\nAccount ironpost\n\n\
             MaildirStore near\nPath {near}/\nInbox {near}/INBOX\nSubFolders Verbatim\n\n\
             Channel all\nFar :far:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            port = inst.imap_port,
            near = near.display()
        ),
    )
    .unwrap();
    let sync = || {
        // -Dn: the protocol as mbsync sees it (after inflating).
        let out = Command::new("mbsync")
            .args(["-Dn", "-c", &rc.display().to_string(), "-a"])
            .env("HOME", &dir.path().display().to_string())
            .run();
        assert_eq!(
            out.status,
            0,
            "{}\n{}\n{}",
            out.stdout,
            out.stderr,
            inst.diagnostics()
        );
        // mbsync compresses when the server offers it: the whole sync
        // ran over COMPRESS=DEFLATE.
        assert!(
            out.stdout.contains("COMPRESS DEFLATE") && out.stdout.contains("OK Begin compression."),
            "{}",
            out.stdout
        );
    };
    sync();
    let inbox = near.join("INBOX");
    let local = files(&inbox);
    assert_eq!(local.len(), 3, "{local:?}");
    for f in ["Archive", "Drafts", "Junk", "Sent", "Trash"] {
        assert!(near.join(f).join("cur").is_dir(), "{f} pulled down");
    }
    // Locally: flag one, delete one, add one, and a message in Sent.
    let path_of = |subject: &str| -> PathBuf {
        ["cur", "new"]
            .iter()
            .flat_map(|s| std::fs::read_dir(inbox.join(s)).unwrap())
            .map(|e| e.unwrap().path())
            .find(|p| std::fs::read_to_string(p).unwrap().contains(subject))
            .unwrap_or_else(|| panic!("{subject} not pulled"))
    };
    let one = path_of("Subject: sync 1");
    let name = one.file_name().unwrap().to_str().unwrap().to_string();
    let base = name.split(":2,").next().unwrap();
    std::fs::rename(&one, inbox.join("cur").join(format!("{base}:2,FS"))).unwrap();
    std::fs::remove_file(path_of("Subject: sync 2")).unwrap();
    std::fs::write(
        inbox.join("new/1600000000.local1.host"),
        "Subject: made locally\n\nhi\n",
    )
    .unwrap();
    std::fs::write(
        near.join("Sent/cur/1600000001.local2.host:2,S"),
        "Subject: sent locally\n\nbye\n",
    )
    .unwrap();
    sync();
    // The server sees all of it.
    let mut i = Imap::login(inst.imap_port, false);
    i.ok("EXAMINE INBOX");
    let u = i.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert_eq!(u.len(), 3, "{u:?}");
    let of = |s: &str| {
        u.iter()
            .find(|l| l.contains(s))
            .unwrap_or_else(|| panic!("{s}: {u:?}"))
    };
    assert_eq!(
        flagset(of("sync 1")),
        flagset("FLAGS (\\Flagged \\Seen)"),
        "{u:?}"
    );
    assert!(of("sync 3").contains("FLAGS ()"), "{u:?}");
    assert!(of("made locally").contains("FLAGS ()"), "{u:?}");
    assert!(!u.iter().any(|l| l.contains("sync 2")), "{u:?}");
    let u = i.ok("STATUS Sent (MESSAGES UNSEEN)");
    assert_eq!(u, ["* STATUS \"Sent\" (MESSAGES 1 UNSEEN 0)"]);
    // And a change on the server comes down.
    i.ok("SELECT INBOX");
    let u = i.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let seq = u
        .iter()
        .find(|l| l.contains("sync 3"))
        .and_then(|l| l.split(' ').nth(1))
        .unwrap()
        .to_string();
    i.ok(&format!("STORE {seq} +FLAGS (\\Answered)"));
    i.ok("LOGOUT");
    sync();
    let three = path_of("Subject: sync 3");
    assert!(three.to_string_lossy().ends_with(":2,R"), "{three:?}");
}

/// COMPRESS=DEFLATE (RFC 4978) from a client written with Python's zlib:
/// every answer after the OK arrives compressed and inflates on its own
/// (a sync flush per write), commands sent compressed are understood, in
/// IDLE too, and a second COMPRESS is refused.
#[test]
fn compress_deflate_both_ways() {
    let inst = started("");
    let big: String = (0..2000)
        .map(|n| format!("line {n} of a long body\r\n"))
        .collect();
    deliver(&inst, &format!("Subject: big\r\n\r\n{big}"));
    inst.wait_messages("jerry", 1);
    let script = format!(
        r#"
import socket, sys, zlib
s = socket.create_connection(("127.0.0.1", {port}))
s.settimeout(20)
buf = b""
z_in = None
def until(marker):
    # Everything up to and including marker, inflated when compressed.
    global buf
    while marker not in buf:
        data = s.recv(65536)
        assert data, ("connection closed", buf)
        buf += z_in.decompress(data) if z_in else data
    i = buf.index(marker) + len(marker)
    got, buf = buf[:i], buf[i:]
    return got
until(b"\r\n")
s.sendall(b"a LOGIN jerry@example.test secret\r\n")
r = until(b"a OK")
r += until(b"\r\n")
assert b" COMPRESS=DEFLATE" in r, r
s.sendall(b"b COMPRESS DEFLATE\r\n")
assert until(b"\r\n") == b"b OK Begin compression.\r\n"
assert buf == b""
z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
z_in = zlib.decompressobj(-15)
def send(data):
    s.sendall(z_out.compress(data) + z_out.flush(zlib.Z_SYNC_FLUSH))
send(b"c CAPABILITY\r\n")
r = until(b"c OK Capability completed.\r\n")
assert r.startswith(b"* CAPABILITY IMAP4rev1 ") and b" COMPRESS=DEFLATE" in r, r
send(b"d SELECT INBOX\r\n")
r = until(b"d OK [READ-WRITE] Select completed")
assert b"\r\n* 1 EXISTS\r\n" in r, r
until(b"\r\n")
send(b"e FETCH 1 BODY.PEEK[TEXT]\r\n")
r = until(b"e OK Fetch completed")
until(b"\r\n")
head, body = r.split(b"}}\r\n", 1)
n = int(head.rsplit(b"{{", 1)[1])
assert body[:n] == "".join("line %d of a long body\r\n" % i for i in range(2000)).encode(), body[:100]
# A command split across two writes, and two commands in one write.
send(b"f NOOP\r\ng NO")
send(b"OP\r\n")
r = until(b"g OK NOOP completed.\r\n")
assert r == b"f OK NOOP completed.\r\ng OK NOOP completed.\r\n", r
send(b"h COMPRESS DEFLATE\r\n")
r = until(b"\r\n")
assert r == b"h NO [COMPRESSIONACTIVE] COMPRESSION already enabled.\r\n", r
send(b"i IDLE\r\n")
assert until(b"\r\n") == b"+ idling\r\n"
print("idling", flush=True)
sys.stdin.readline()
r = until(b"* 2 EXISTS\r\n")
send(b"DONE\r\n")
r = until(b"i OK Idle completed.\r\n")
send(b"j LOGOUT\r\n")
r = until(b"j OK Logout completed.\r\n")
assert r.startswith(b"* BYE "), r
print("done", flush=True)
"#,
        port = inst.imap_port
    );
    let mut py = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    if line == "idling\n" {
        // A delivery while the client idles, compressed.
        deliver(&inst, "Subject: second\r\n\r\ny\r\n");
        py.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
    }
    let out = py.wait_with_output().unwrap();
    assert_eq!(
        line,
        "done\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        inst.diagnostics()
    );
}

/// Runs mutt on a pseudo-terminal (it needs one), with the keys given.
fn mutt(dir: &Path, muttrc: &Path, url: &str, keys: &str) -> crate::common::Command {
    let _ = dir;
    Command::new("timeout")
        .args(["60", "script", "-q", "-e", "-c"])
        .arg(format!(
            "mutt -n -F {} -f '{url}' -e 'push \"{keys}\"'",
            muttrc.display()
        ))
        .arg("/dev/null")
        .env("TERM", "vt100")
        .env("HOME", &dir.display().to_string())
}

#[test]
fn mutt_and_curl_read_over_imap() {
    let inst = started("");
    deliver(&inst, "Subject: for mutt\r\n\r\nread me with mutt\r\n");
    deliver(&inst, "Subject: for curl\r\n\r\nfetch me with curl\r\n");
    inst.wait_messages("jerry", 2);
    // curl: one message by UID over imap:// and imaps://, and the folder
    // list.
    let out = Command::new("curl")
        .args(["-s", "-u", "jerry@example.test:secret"])
        .arg(format!("imap://127.0.0.1:{}/INBOX;UID=2", inst.imap_port))
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Subject: for curl") && out.stdout.contains("fetch me with curl"),
        "{}",
        out.stdout
    );
    let out = Command::new("curl")
        .args(["-s", "-k", "-u", "jerry@example.test:secret"])
        .arg(format!("imaps://127.0.0.1:{}/INBOX;UID=1", inst.imaps_port))
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Subject: for mutt"), "{}", out.stdout);
    let out = Command::new("curl")
        .args(["-s", "-u", "jerry@example.test:secret"])
        .arg(format!("imap://127.0.0.1:{}/", inst.imap_port))
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\""),
        "{}",
        out.stdout
    );
    let out = Command::new("curl")
        .args(["-s", "-u", "jerry@example.test:wrong"])
        .arg(format!("imap://127.0.0.1:{}/INBOX;UID=1", inst.imap_port))
        .run();
    assert_eq!(out.status, 67, "curl: login denied: {}", out.stdout);
    // mutt: open the INBOX over IMAP, pipe the first message to a file,
    // delete the second and quit.
    let dir = tempfile::tempdir().unwrap();
    // mutt asks to create ~/Mail when it is missing.
    std::fs::create_dir_all(dir.path().join("Mail")).unwrap();
    let muttrc = dir.path().join("muttrc");
    let message = dir.path().join("message.txt");
    std::fs::write(
        &muttrc,
        "set imap_user=jerry@example.test\nset imap_pass=secret\nset ssl_starttls=no\n\
             set ssl_force_tls=no\nset wait_key=no\nset quit=yes\nset delete=yes\n\
             set move=no\nset mbox_type=Maildir\nset sort=mailbox-order\nset confirmappend=no\n\
             set header_cache=\nset imap_check_subscribed=no\n\
             set pipe_decode=no\n",
    )
    .unwrap();
    let url = format!("imap://127.0.0.1:{}/INBOX", inst.imap_port);
    let keys = format!(
        "<first-entry><pipe-message>cat > {}<enter><next-entry><delete-message><sync-mailbox><quit>",
        message.display()
    );
    let out = mutt(dir.path(), &muttrc, &url, &keys).run();
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    let text = std::fs::read_to_string(&message).unwrap_or_default();
    assert!(
        text.contains("Subject: for mutt") && text.contains("read me with mutt"),
        "mutt piped: {text:?}\n{}",
        out.stdout
    );
    let mut i = Imap::login(inst.imap_port, false);
    let u = i.ok("STATUS INBOX (MESSAGES)");
    assert_eq!(
        u,
        ["* STATUS \"INBOX\" (MESSAGES 1)"],
        "mutt deleted the second"
    );
    i.ok("EXAMINE INBOX");
    let u = i.ok("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(u[0].contains("for mutt"), "{u:?}");
}

#[test]
fn search_and_uid_search() {
    let inst = started("");
    deliver(
        &inst,
        "Subject: apples\r\nFrom: ann@example.test\r\n\r\nred fruit\r\n",
    );
    deliver(
        &inst,
        "Subject: pears\r\nFrom: bob@example.test\r\n\r\ngreen fruit\r\n",
    );
    deliver(
        &inst,
        "Subject: apples again\r\nFrom: bob@example.test\r\n\r\nmore\r\n",
    );
    inst.wait_messages("jerry", 3);
    let mut i = Imap::login(inst.imap_port, true);
    i.ok("STORE 2 +FLAGS (\\Seen)");
    assert_eq!(i.ok("SEARCH ALL"), ["* SEARCH 1 2 3"]);
    assert_eq!(i.ok("SEARCH SUBJECT apples"), ["* SEARCH 1 3"]);
    assert_eq!(i.ok("SEARCH FROM bob UNSEEN"), ["* SEARCH 3"]);
    assert_eq!(i.ok("SEARCH BODY fruit"), ["* SEARCH 1 2"]);
    assert_eq!(i.ok("SEARCH SEEN"), ["* SEARCH 2"]);
    assert_eq!(i.ok("SEARCH NOT SEEN"), ["* SEARCH 1 3"]);
    assert_eq!(i.ok("SEARCH OR FROM ann SEEN"), ["* SEARCH 1 2"]);
    assert_eq!(i.ok("UID SEARCH SUBJECT apples"), ["* SEARCH 1 3"]);
    assert_eq!(i.ok("SEARCH SUBJECT nothing"), ["* SEARCH"]);
    let caps = i.ok("CAPABILITY")[0].clone();
    if caps.contains(" SORT") {
        assert_eq!(i.ok("SORT (SUBJECT) UTF-8 ALL"), ["* SORT 1 3 2"]);
    }
    if caps.contains("THREAD=REFERENCES") {
        let u = i.ok("THREAD REFERENCES UTF-8 ALL");
        assert!(u[0].starts_with("* THREAD "), "{u:?}");
    }
}

/// SEARCH of text reads many message files ahead, on another thread: a
/// file another program renamed since is still found, one it deleted is
/// left out, and every other message is matched as before.
#[test]
fn search_reads_many_messages_ahead_renamed_or_gone() {
    let inst = started("");
    for n in 0..30 {
        let word = if n % 3 == 0 { "kiwi" } else { "plum" };
        deliver(
            &inst,
            &format!("Subject: note-{n:02}-end\r\n\r\na {word} a day\r\n"),
        );
    }
    inst.wait_messages("jerry", 30);
    let md = maildir(&inst);
    let mut i = Imap::login(inst.imap_port, true);
    i.ok("SELECT INBOX");
    let uid_of = |i: &mut Imap, n: usize| -> String {
        let u = i.ok(&format!("UID SEARCH SUBJECT note-{n:02}-end"));
        assert_eq!(u.len(), 1, "{u:?}");
        let uid = u[0].strip_prefix("* SEARCH ").expect("one UID").to_string();
        assert!(uid.parse::<u32>().is_ok(), "{u:?}");
        uid
    };
    let kiwis: Vec<String> = (0..30).step_by(3).map(|n| uid_of(&mut i, n)).collect();
    assert_eq!(
        i.ok("UID SEARCH BODY kiwi"),
        [format!("* SEARCH {}", kiwis.join(" "))]
    );
    assert_eq!(i.ok("SEARCH BODY plum").len(), 1);
    // Another program marks note 3 as read (a rename) and deletes note 6.
    let file_of = |n: usize| {
        ["cur", "new"]
            .iter()
            .flat_map(|s| std::fs::read_dir(md.join(s)).unwrap())
            .map(|e| e.unwrap().path())
            .find(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .contains(&format!("note-{n:02}-end"))
            })
            .unwrap()
    };
    let three = file_of(3);
    let base = three.file_name().unwrap().to_str().unwrap();
    let base = base.split(":2,").next().unwrap().to_string();
    std::fs::rename(&three, md.join("cur").join(format!("{base}:2,S"))).unwrap();
    std::fs::remove_file(file_of(6)).unwrap();
    let want: Vec<&str> = kiwis
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != 2)
        .map(|(_, u)| u.as_str())
        .collect();
    let got = i.ok("UID SEARCH BODY kiwi");
    let line = got
        .iter()
        .find(|l| l.starts_with("* SEARCH"))
        .expect("a SEARCH answer");
    assert_eq!(line, &format!("* SEARCH {}", want.join(" ")), "{got:?}");
}

/// The value after `word ` in a response line (`UIDVALIDITY 123]`).
fn number_after(lines: &[String], word: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| {
            let rest = l.split(&format!("{word} ")).nth(1)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {word} in {lines:?}"))
}

#[test]
fn quota_from_the_directory_for_imap_and_delivery() {
    let mut inst = Instance::new(ironpost(), "auth_failure_delay = 0s");
    let out = ip("user")
        .args(["quota", "jerry@example.test", "20000", "-c"])
        .arg(inst.etc().display().to_string())
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    inst.start();
    deliver(&inst, "Subject: small\r\n\r\nhello\r\n");
    inst.wait_messages("jerry", 1);
    let mut i = Imap::login(inst.imap_port, true);
    let caps = i.ok("CAPABILITY");
    assert!(caps[0].contains(" QUOTA QUOTA=RES-STORAGE"), "{caps:?}");
    let u = i.ok("GETQUOTAROOT INBOX");
    assert_eq!(u[0], "* QUOTAROOT \"INBOX\" \"User quota\"");
    let used = files(&maildir(&inst))
        .iter()
        .map(|n| {
            std::fs::metadata(maildir(&inst).join("new").join(n))
                .or_else(|_| std::fs::metadata(maildir(&inst).join("cur").join(n)))
                .unwrap()
                .len()
        })
        .sum::<u64>();
    assert_eq!(
        u[1],
        format!(
            "* QUOTA \"User quota\" (STORAGE {} 19)",
            used.div_ceil(1024)
        )
    );
    assert_eq!(i.ok("GETQUOTA \"User quota\"")[0], u[1]);
    let (_, done) = i.cmd("GETQUOTA \"other\"");
    assert!(done.starts_with("NO [NONEXISTENT]"), "{done}");
    let (_, done) = i.cmd("SETQUOTA \"User quota\" (STORAGE 100)");
    assert!(done.starts_with("NO [NOPERM]"), "{done}");

    // APPEND past the quota: refused, nothing stored.
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(30_000));
    let (_, done) = i.cmd(&format!("APPEND INBOX {{{}+}}\r\n{big}", big.len()));
    assert!(done.starts_with("NO [OVERQUOTA] Quota exceeded"), "{done}");
    // Under it: stored; a COPY that would pass it is refused too.
    let mid = format!("Subject: mid\r\n\r\n{}\r\n", "y".repeat(12_000));
    let (_, done) = i.cmd(&format!("APPEND INBOX {{{}+}}\r\n{mid}", mid.len()));
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    let (_, done) = i.cmd("COPY 1:* Archive");
    assert!(done.starts_with("NO [OVERQUOTA]"), "{done}");
    assert!(i.ok("STATUS Archive (MESSAGES)")[0].ends_with("(MESSAGES 0)"));
    // A move takes no more room.
    let (_, done) = i.cmd("MOVE 2 Archive");
    assert!(done.starts_with("OK"), "{done}");

    // Delivery past the quota is bounced with 5.2.2, as Dovecot's LDA does.
    deliver(&inst, &big);
    let log = inst.wait_log("dsn=5.2.2, status=bounced");
    assert!(
        log.contains("to=<jerry@example.test>, relay=virtual"),
        "{log}"
    );
    assert!(
        log.contains("Quota exceeded (mailbox for user is full)"),
        "{log}"
    );
    i.ok("NOOP");
    assert!(i.ok("STATUS INBOX (MESSAGES)")[0].ends_with("(MESSAGES 1)"));
}

#[test]
fn qresync_reports_vanished_and_catches_up_at_select() {
    let inst = started("");
    for n in 1..=3 {
        deliver(&inst, &format!("Subject: m{n}\r\n\r\nbody {n}\r\n"));
    }
    inst.wait_messages("jerry", 3);
    let mut i = Imap::login(inst.imap_port, false);
    assert_eq!(i.ok("ENABLE QRESYNC"), ["* ENABLED QRESYNC"]);
    let sel = i.ok("SELECT INBOX");
    let validity = number_after(&sel, "UIDVALIDITY");
    let modseq = number_after(&sel, "HIGHESTMODSEQ");
    i.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    i.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    // With QRESYNC, expunges are VANISHED, not EXPUNGE (RFC 7162 §3.2.10).
    let u = i.ok("EXPUNGE");
    assert!(u.contains(&"* VANISHED 2".to_string()), "{u:?}");
    assert!(expunges(&u).is_empty(), "{u:?}");

    // Another client comes back with what it knew.
    let mut j = Imap::login(inst.imap_port, false);
    j.ok("ENABLE QRESYNC");
    let (_, done) = j.cmd("SELECT INBOX (QRESYNC (1 1))");
    assert!(done.starts_with("OK"), "{done}");
    let sel = j.ok(&format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:3))"));
    assert_eq!(sel[0], "* OK [CLOSED]");
    assert!(
        sel.contains(&"* VANISHED (EARLIER) 2".to_string()),
        "{sel:?}"
    );
    let changed: Vec<&String> = sel.iter().filter(|l| l.contains(" FETCH ")).collect();
    assert_eq!(changed.len(), 1, "{sel:?}");
    assert!(
        changed[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ("),
        "{sel:?}"
    );
    let u = j.ok(&format!(
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"
    ));
    assert_eq!(u[0], "* VANISHED (EARLIER) 2");
    assert_eq!(u.len(), 2, "{u:?}");
    // Without QRESYNC enabled, the parameter is refused.
    let mut k = Imap::login(inst.imap_port, false);
    let (_, done) = k.cmd(&format!("SELECT INBOX (QRESYNC ({validity} {modseq}))"));
    assert!(done.starts_with("BAD"), "{done}");
}

#[test]
fn imap4rev2_when_enabled() {
    let inst = started("");
    deliver(&inst, "Subject: one\r\n\r\nfirst\r\n");
    deliver(&inst, "Subject: two\r\n\r\nsecond\r\n");
    inst.wait_messages("jerry", 2);
    let mut i = Imap::connect(inst.imap_port);
    assert!(
        i.greeting.contains(" IMAP4rev1 IMAP4rev2 "),
        "{}",
        i.greeting
    );
    i.ok("LOGIN jerry@example.test secret");
    assert_eq!(i.ok("ENABLE IMAP4rev2"), ["* ENABLED IMAP4rev2"]);
    let sel = i.ok("SELECT INBOX");
    assert!(
        sel.contains(&"* LIST (\\HasNoChildren) \".\" \"INBOX\"".to_string()),
        "{sel:?}"
    );
    assert!(!sel.iter().any(|l| l.ends_with(" RECENT")), "{sel:?}");
    assert!(!sel.iter().any(|l| l.contains("[UNSEEN ")), "{sel:?}");
    // SEARCH answers with ESEARCH (RFC 9051 §7.3.4).
    let tag = format!("a{}", i.n + 1);
    assert_eq!(
        i.ok("SEARCH ALL"),
        [format!("* ESEARCH (TAG \"{tag}\") ALL 1:2")]
    );
    // No \Recent any more.
    let f = i.ok("FETCH 1:2 (FLAGS)");
    assert!(f.iter().all(|l| !l.contains("\\Recent")), "{f:?}");
    // Mailbox names are UTF-8 on the wire, modified UTF-7 on disk.
    i.ok("CREATE \"Entwürfe\"");
    assert!(maildir(&inst).join(".Entw&APw-rfe/cur").is_dir());
    let l = i.ok("LIST \"\" \"Entw*\"");
    assert_eq!(l, ["* LIST (\\HasNoChildren) \".\" \"Entwürfe\""]);
}

#[test]
fn esearch_and_saved_results() {
    let inst = started("");
    deliver(
        &inst,
        "From: ann@example.test\r\nSubject: a\r\n\r\napples\r\n",
    );
    deliver(
        &inst,
        "From: bob@example.test\r\nSubject: b\r\n\r\nbananas\r\n",
    );
    deliver(
        &inst,
        "From: ann@example.test\r\nSubject: c\r\n\r\ncherries\r\n",
    );
    inst.wait_messages("jerry", 3);
    let mut i = Imap::login(inst.imap_port, true);
    let tag = format!("a{}", i.n + 1);
    assert_eq!(
        i.ok("SEARCH RETURN (MIN MAX COUNT) ALL"),
        [format!("* ESEARCH (TAG \"{tag}\") MIN 1 MAX 3 COUNT 3")]
    );
    let tag = format!("a{}", i.n + 1);
    assert_eq!(
        i.ok("UID SEARCH RETURN () FROM ann"),
        [format!("* ESEARCH (TAG \"{tag}\") UID ALL 1,3")]
    );
    // SEARCHRES: SAVE alone answers nothing; `$` is the result.
    assert!(i.ok("SEARCH RETURN (SAVE) FROM ann").is_empty());
    let f = i.ok("FETCH $ (UID)");
    assert_eq!(f, ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)"]);
    let s = i.ok("UID SEARCH UID $ TEXT cherries");
    assert_eq!(s, ["* SEARCH 3"]);
    // An unknown charset is refused with the ones known.
    let (_, done) = i.cmd("SEARCH CHARSET KOI8-R TEXT x");
    assert!(
        done.starts_with("NO [BADCHARSET (US-ASCII UTF-8)]"),
        "{done}"
    );
}

#[test]
fn system_user_reads_the_mbox_spool_over_imap() {
    let mut inst = system_user_instance();
    inst.start();
    let spool = inst.path("mail/tom");
    let send = send_to_tom;
    let wait_count = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&spool).unwrap_or_default();
            if text.matches("Subject: ").count() == n {
                return text;
            }
            assert!(Instant::now() < deadline, "mbox:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    send(&inst, "one");
    send(&inst, "two");
    let text = wait_count(2);

    let mut i = Imap::connect(inst.imap_port);
    i.ok("LOGIN tom secret");
    // The INBOX is the spool; no other folders.
    assert_eq!(
        i.ok("LIST \"\" \"*\""),
        ["* LIST (\\HasNoChildren) \".\" \"INBOX\""]
    );
    let (_, done) = i.cmd("CREATE Archive");
    assert!(done.starts_with("NO [CANNOT]"), "{done}");
    let sel = i.ok("SELECT INBOX");
    assert!(sel.contains(&"* 2 EXISTS".to_string()), "{sel:?}");
    assert!(sel.contains(&"* 2 RECENT".to_string()), "{sel:?}");
    // The messages as stored, without the `From ` line, CRLF line ends.
    let (u, done) = i.raw_cmd(b"FETCH 1 (FLAGS BODY[])");
    assert!(done.starts_with("OK"), "{done}");
    let body = literal_after(&u[0], "BODY[]");
    let first = &text[text.find('\n').unwrap() + 1..text.find("body of one").unwrap()];
    assert!(
        body.starts_with(&crlf(first.as_bytes())),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    assert!(String::from_utf8_lossy(&u[0]).contains("FLAGS (\\Seen \\Recent)"));
    // Flags are kept across sessions and restarts (written into the
    // spool's headers at LOGOUT: imap_mbox_flags.rs).
    i.ok("STORE 2 +FLAGS (\\Flagged $Work)");
    let f = i.ok("FETCH 1:2 (UID FLAGS)");
    assert!(flagset(&f[0]).contains("\\Seen"), "{f:?}");
    assert!(
        f[1].contains("\\Flagged") && f[1].contains("$Work"),
        "{f:?}"
    );
    let uids = i.ok("UID SEARCH ALL");
    i.ok("LOGOUT");
    inst.stop();
    inst.start();
    let mut i = Imap::connect(inst.imap_port);
    i.ok("LOGIN tom secret");
    let sel = i.ok("SELECT INBOX");
    assert!(sel.contains(&"* 0 RECENT".to_string()), "{sel:?}");
    assert_eq!(i.ok("UID SEARCH ALL"), uids);
    let f = i.ok("FETCH 1:2 (FLAGS)");
    assert!(f[0].contains("FLAGS (\\Seen)"), "{f:?}");
    assert!(
        f[1].contains("\\Flagged") && f[1].contains("$Work"),
        "{f:?}"
    );
    // New mail shows; EXPUNGE rewrites the spool under local(8)'s locks.
    send(&inst, "three");
    wait_count(3);
    let n = i.ok("NOOP");
    assert!(n.contains(&"* 3 EXISTS".to_string()), "{n:?}");
    i.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let e = i.ok("EXPUNGE");
    assert_eq!(expunges(&e), ["* 1 EXPUNGE"]);
    let text = wait_count(2);
    assert!(!text.contains("Subject: one") && text.contains("Subject: two"));
    assert!(text.contains("Subject: three"), "{text}");
    i.ok("LOGOUT");
    inst.wait_log("imap(tom): Disconnected: Logged out");
}

#[test]
fn create_special_use() {
    let inst = started("");
    let mut i = Imap::login(inst.imap_port, false);
    let caps = i.ok("CAPABILITY");
    assert!(
        caps[0].contains(" SPECIAL-USE CREATE-SPECIAL-USE "),
        "{caps:?}"
    );
    i.ok("CREATE \"Sent Mail\" (USE (\\Sent))");
    let (_, done) = i.cmd("CREATE Odd (USE (\\Bogus))");
    assert!(done.starts_with("NO [USEATTR]"), "{done}");
    assert!(!maildir(&inst).join(".Odd").exists());
    let l = i.ok("LIST \"\" \"Sent*\"");
    assert!(
        l.contains(&"* LIST (\\HasNoChildren \\Sent) \".\" \"Sent Mail\"".to_string()),
        "{l:?}"
    );
    // RFC 6154 §5.1: LIST (SPECIAL-USE) lists only the folders with one.
    let l = i.ok("LIST (SPECIAL-USE) \"\" \"*\"");
    let names: Vec<&str> = l
        .iter()
        .map(|l| l.split("\".\" ").nth(1).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "\"Archive\"",
            "\"Drafts\"",
            "\"Junk\"",
            "\"Sent\"",
            "\"Sent Mail\"",
            "\"Trash\""
        ],
        "{l:?}"
    );
    // The use goes with the folder when it is renamed.
    i.ok("RENAME \"Sent Mail\" Outbox");
    let l = i.ok("LIST \"\" Outbox");
    assert_eq!(l, ["* LIST (\\HasNoChildren \\Sent) \".\" \"Outbox\""]);
}
