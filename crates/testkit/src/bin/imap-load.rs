//! imap-load: the IMAP load client of bench/imap/run.sh.
//!
//! ```text
//! imap-load HOST:PORT [--clients N] [--user PATTERN] [--password P]
//!           [--expect N] [--body N] [--word W] [--expect-hits N] [--checksum]
//! imap-load HOST:PORT --idle N [--users K] [--parallel P] [--user PATTERN] [--password P]
//! ```
//!
//! Steps mode (the default) starts N clients (one thread and one connection
//! each, blocking sockets, buffered I/O). Client `i` (1..=N) logs in with
//! `LOGIN` as PATTERN with `%n` replaced by `i` (default `u%n@example.test`,
//! password `secret`). Then, all clients together, in measured steps:
//!
//! - select: `SELECT INBOX`;
//! - fetch_meta: `FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)`;
//! - fetch_body: `FETCH 1:B BODY.PEEK[]` (B = `--body`, default 1000, at
//!   most the number of messages);
//! - search: `UID SEARCH TEXT "W"` (W = `--word`, default `zanzibar`);
//! - store: `STORE 1:* +FLAGS (\Seen)`;
//!
//! then, not measured, `STORE 1:* -FLAGS.SILENT (\Seen)` (so that the next
//! run finds the mailbox as it was) and `LOGOUT`. Every answer is read to
//! its tagged status, literals (`{n}`) included, and must end in `OK`.
//! SELECT must announce EXISTS (`--expect N`: N messages); FETCH 1:* must
//! give every message from 1 to EXISTS once, each with FLAGS, a UID
//! (ascending), RFC822.SIZE and an ENVELOPE of ten fields; each BODY[]
//! literal must be as long as that message's RFC822.SIZE; every UID that
//! SEARCH returns must exist (`--expect-hits N`: N of them); STORE must
//! answer a FETCH with `\Seen` among the FLAGS for every message.
//! `--checksum` adds an order-independent sum of FNV-1a hashes of the
//! BODY[] literals (to compare two servers' answers).
//!
//! A step's time is the wall time from the moment every client is ready
//! until the last one has finished it; `client_cpu_s` is the CPU time this
//! client used over all the steps (it shares the machine with the server).
//!
//! Idle mode (`--idle N`) opens N connections and logs each in (connection
//! `i` as user `(i - 1) % K + 1`, K = `--users`, default N; P = `--parallel`
//! logins at a time, default 8), does nothing else, prints its line with
//! `ready=1`, and holds the connections until its standard input closes;
//! then it logs them out. The caller measures the server in between.
//!
//! Prints one line of `key=value` pairs on stdout; an error (refused login,
//! bad answer, no answer for two minutes) goes to stderr with exit status 1.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

struct Options {
    addr: String,
    clients: usize,
    user: String,
    password: String,
    expect: Option<usize>,
    body: usize,
    word: String,
    expect_hits: Option<usize>,
    checksum: bool,
    idle: Option<usize>,
    users: Option<usize>,
    parallel: usize,
}

const USAGE: &str = "usage: imap-load HOST:PORT [--clients N] [--user PATTERN] [--password P] [--expect N] [--body N] [--word W] [--expect-hits N] [--checksum]\n       imap-load HOST:PORT --idle N [--users K] [--parallel P] [--user PATTERN] [--password P]";

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        addr: String::new(),
        clients: 1,
        user: "u%n@example.test".into(),
        password: "secret".into(),
        expect: None,
        body: 1000,
        word: "zanzibar".into(),
        expect_hits: None,
        checksum: false,
        idle: None,
        users: None,
        parallel: 8,
    };
    let number = |v: Option<String>, name: &str| -> Result<usize, String> {
        v.and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{name} needs a positive number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clients" => o.clients = number(args.next(), "--clients")?,
            "--expect" => o.expect = Some(number(args.next(), "--expect")?),
            "--body" => o.body = number(args.next(), "--body")?,
            "--expect-hits" => {
                o.expect_hits = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--expect-hits needs a number")?,
                )
            }
            "--idle" => o.idle = Some(number(args.next(), "--idle")?),
            "--users" => o.users = Some(number(args.next(), "--users")?),
            "--parallel" => o.parallel = number(args.next(), "--parallel")?,
            "--user" => o.user = args.next().ok_or("--user needs a pattern")?,
            "--password" => o.password = args.next().ok_or("--password needs a value")?,
            "--word" => o.word = args.next().ok_or("--word needs a word")?,
            "--checksum" => o.checksum = true,
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if o.addr.is_empty() => o.addr = a,
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    if o.addr.is_empty() {
        return Err("HOST:PORT is missing".into());
    }
    if o.word.is_empty() || o.word.bytes().any(|b| b == b'"' || b == b'\\' || b < b' ') {
        return Err("--word must be a plain word".into());
    }
    Ok(o)
}

fn fnv1a(data: &[u8], mut h: u64) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// CPU seconds (user + system) this process has used so far, from
/// /proc/self/stat (in units of USER_HZ, 100 a second on Linux); 0 where
/// there is no /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses: state is
    // the 3rd field of the line, utime the 14th and stime the 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// One value of a response (RFC 9051 §4): the parser keeps slices of the
/// response's bytes; quoted strings keep their escapes (nothing here needs
/// them resolved).
#[derive(Debug)]
enum Value<'a> {
    Atom(&'a [u8]),
    Str(&'a [u8]),
    Nil,
    List(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    fn number(&self) -> Option<u64> {
        match self {
            Value::Atom(a) => std::str::from_utf8(a).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// A cursor over one whole response: its lines and the literals in them,
/// as they came on the wire (CRLFs included).
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(b: &'a [u8]) -> Parser<'a> {
        Parser { b, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn space(&mut self) -> Result<(), String> {
        if self.peek() == Some(b' ') {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected a space at byte {}", self.i))
        }
    }

    fn at_end(&self) -> bool {
        self.b[self.i..] == *b"\r\n"
    }

    /// An atom: up to a space, a parenthesis or the line end; a `[...]`
    /// inside it (as in `BODY[HEADER.FIELDS (FROM)]`) is taken whole.
    fn atom(&mut self) -> Result<&'a [u8], String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'(' | b')' | b'\r' | b'\n' => break,
                b'[' => match self.b[self.i..].iter().position(|&c| c == b']') {
                    Some(n) => self.i += n + 1,
                    None => return Err("unterminated [".into()),
                },
                _ => self.i += 1,
            }
        }
        if self.i == start {
            return Err(format!("expected an atom at byte {start}"));
        }
        Ok(&self.b[start..self.i])
    }

    fn value(&mut self) -> Result<Value<'a>, String> {
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(b')') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b' ') if !items.is_empty() => self.i += 1,
                        None => return Err("unterminated list".into()),
                        _ => {}
                    }
                    items.push(self.value()?);
                }
            }
            Some(b'"') => {
                let start = self.i + 1;
                let mut j = start;
                loop {
                    match self.b.get(j) {
                        Some(b'"') => break,
                        Some(b'\\') => j += 2,
                        Some(b'\r') | Some(b'\n') | None => {
                            return Err("unterminated quoted string".into());
                        }
                        _ => j += 1,
                    }
                }
                self.i = j + 1;
                Ok(Value::Str(&self.b[start..j]))
            }
            Some(b'{') => {
                let close = self.b[self.i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("unterminated literal length")?;
                let n: usize = std::str::from_utf8(&self.b[self.i + 1..self.i + close])
                    .ok()
                    .and_then(|v| v.trim_end_matches('+').parse().ok())
                    .ok_or("bad literal length")?;
                let start = self.i + close + 1;
                if self.b.get(start..start + 2) != Some(b"\r\n") || start + 2 + n > self.b.len() {
                    return Err("bad literal".into());
                }
                self.i = start + 2 + n;
                Ok(Value::Str(&self.b[start + 2..start + 2 + n]))
            }
            _ => {
                let a = self.atom()?;
                Ok(if a.eq_ignore_ascii_case(b"NIL") {
                    Value::Nil
                } else {
                    Value::Atom(a)
                })
            }
        }
    }
}

/// The length of the literal that ends this line (`{n}CRLF`), if any.
fn literal_at_end(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&c| c == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A FETCH response: `* N FETCH (...)`, its number and attributes.
fn fetch_attrs<'a>(seq: u64, p: &mut Parser<'a>) -> Result<Vec<(&'a [u8], Value<'a>)>, String> {
    let Value::List(items) = p.value()? else {
        return Err(format!("FETCH {seq}: no list"));
    };
    if !p.at_end() {
        return Err(format!("FETCH {seq}: something after the list"));
    }
    if items.len() % 2 != 0 {
        return Err(format!("FETCH {seq}: odd number of items"));
    }
    let mut attrs = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let Value::Atom(k) = k else {
            return Err(format!("FETCH {seq}: an item name that is not an atom"));
        };
        attrs.push((k, v));
    }
    Ok(attrs)
}

/// One connection.
struct Client {
    name: String,
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
    /// The response being read: its lines and literals, as received.
    resp: Vec<u8>,
    tag: u32,
    exists: u64,
    /// RFC822.SIZE and UID of each message, from fetch_meta.
    sizes: Vec<u64>,
    uids: Vec<u64>,
}

/// What one client saw.
#[derive(Default)]
struct Done {
    messages: u64,
    body_messages: u64,
    body_bytes: u64,
    hits: u64,
    checksum: u64,
}

/// An untagged response, split after `* `: the number (if it starts with
/// one), the keyword in upper case, and a parser at the rest.
struct Untagged<'a> {
    number: Option<u64>,
    keyword: String,
    rest: Parser<'a>,
}

fn untagged(resp: &[u8]) -> Result<Untagged<'_>, String> {
    let mut p = Parser::new(resp);
    p.i = 2;
    let first = p.atom()?;
    let (number, keyword) = match std::str::from_utf8(first).ok().and_then(|v| v.parse().ok()) {
        Some(n) => {
            p.space()?;
            (Some(n), p.atom()?)
        }
        None => (None, first),
    };
    if p.peek() == Some(b' ') {
        p.i += 1;
    }
    Ok(Untagged {
        number,
        keyword: String::from_utf8_lossy(keyword).to_ascii_uppercase(),
        rest: p,
    })
}

fn show(resp: &[u8]) -> String {
    let s = String::from_utf8_lossy(&resp[..resp.len().min(200)]);
    s.trim_end().replace("\r\n", " ")
}

impl Client {
    fn connect(addr: &str, name: String) -> Result<Client, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        let r = s.try_clone().map_err(|e| e.to_string())?;
        let mut c = Client {
            name,
            r: BufReader::with_capacity(256 * 1024, r),
            w: BufWriter::with_capacity(16 * 1024, s),
            resp: Vec::with_capacity(16 * 1024),
            tag: 0,
            exists: 0,
            sizes: Vec::new(),
            uids: Vec::new(),
        };
        c.read_response("the greeting")?;
        if !c.resp.starts_with(b"* OK") {
            return Err(c.err(&format!("greeting: {}", show(&c.resp))));
        }
        Ok(c)
    }

    fn err(&self, what: &str) -> String {
        format!("{}: {what}", self.name)
    }

    /// Reads one whole response into `self.resp`: a line, and when it ends
    /// with a literal's length, the literal and the line that goes on after
    /// it, and so on.
    fn read_response(&mut self, during: &str) -> Result<(), String> {
        self.resp.clear();
        loop {
            let start = self.resp.len();
            match self.r.read_until(b'\n', &mut self.resp) {
                Ok(0) => return Err(self.err(&format!("connection closed during {during}"))),
                Ok(_) => {}
                Err(e) => return Err(self.err(&format!("reading the answer to {during}: {e}"))),
            }
            let line = &self.resp[start..];
            if !line.ends_with(b"\r\n") {
                return Err(self.err(&format!("{during}: a line without CRLF")));
            }
            let Some(n) = literal_at_end(line) else {
                return Ok(());
            };
            let at = self.resp.len();
            self.resp.resize(at + n, 0);
            if let Err(e) = self.r.read_exact(&mut self.resp[at..]) {
                return Err(self.err(&format!("reading a literal during {during}: {e}")));
            }
        }
    }

    /// Sends `TAG cmd`, then reads the answer up to the tagged status,
    /// which must be OK, calling `each` with every untagged response.
    fn command(
        &mut self,
        cmd: &str,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        self.tag += 1;
        let tag = format!("A{:04}", self.tag);
        let during = cmd.split(' ').next().unwrap_or(cmd).to_string();
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .and_then(|_| self.w.flush())
            .map_err(|e| self.err(&format!("sending {during}: {e}")))?;
        loop {
            self.read_response(&during)?;
            if self.resp.starts_with(b"* ") {
                let resp = std::mem::take(&mut self.resp);
                let r = each(&resp).map_err(|e| format!("{e}: {}", show(&resp)));
                self.resp = resp;
                r.map_err(|e| self.err(&format!("{during}: {e}")))?;
            } else if let Some(rest) = self.resp.strip_prefix(tag.as_bytes()) {
                if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b" OK") {
                    return Ok(());
                }
                return Err(self.err(&format!("{during}: {}", show(&self.resp))));
            } else {
                return Err(self.err(&format!(
                    "{during}: unexpected response {}",
                    show(&self.resp)
                )));
            }
        }
    }

    fn login(&mut self, user: &str, password: &str) -> Result<(), String> {
        self.command(&format!("LOGIN \"{user}\" \"{password}\""), |_| Ok(()))
    }

    fn select(&mut self, expect: Option<usize>) -> Result<(), String> {
        let mut exists = None;
        self.command("SELECT INBOX", |r| {
            let u = untagged(r)?;
            if u.keyword == "EXISTS" {
                exists = u.number;
            }
            Ok(())
        })?;
        let Some(exists) = exists else {
            return Err(self.err("SELECT: no EXISTS"));
        };
        if let Some(want) = expect
            && exists != want as u64
        {
            return Err(self.err(&format!("SELECT: {exists} messages, expected {want}")));
        }
        self.exists = exists;
        Ok(())
    }

    fn fetch_meta(&mut self) -> Result<(), String> {
        let n = self.exists as usize;
        let mut sizes = vec![None; n];
        let mut uids = vec![0u64; n];
        self.command("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)", |r| {
            let mut u = untagged(r)?;
            if u.keyword != "FETCH" {
                return Ok(());
            }
            let seq = u.number.ok_or("FETCH without a number")?;
            if seq == 0 || seq > n as u64 {
                return Err(format!("FETCH {seq} of {n} messages"));
            }
            let (mut flags, mut uid, mut size, mut envelope) = (false, None, None, false);
            for (k, v) in fetch_attrs(seq, &mut u.rest)? {
                match (k.to_ascii_uppercase().as_slice(), &v) {
                    (b"FLAGS", Value::List(_)) => flags = true,
                    (b"UID", v) => uid = v.number(),
                    (b"RFC822.SIZE", v) => size = v.number(),
                    (b"ENVELOPE", Value::List(e)) => {
                        // date subject from sender reply-to to cc bcc in-reply-to message-id
                        if e.len() != 10 {
                            return Err(format!("an ENVELOPE of {} fields", e.len()));
                        }
                        if !matches!(e[1], Value::Str(_)) {
                            return Err("an ENVELOPE without a subject".into());
                        }
                        match &e[2] {
                            Value::List(from)
                                if from
                                    .iter()
                                    .all(|a| matches!(a, Value::List(a) if a.len() == 4)) => {}
                            _ => return Err("an ENVELOPE without a From address".into()),
                        }
                        envelope = true;
                    }
                    _ => {}
                }
            }
            let (Some(uid), Some(size)) = (uid, size) else {
                return Err(format!("FETCH {seq} without UID or RFC822.SIZE"));
            };
            if !flags || !envelope {
                return Err(format!("FETCH {seq} without FLAGS or ENVELOPE"));
            }
            let i = seq as usize - 1;
            if sizes[i].is_some() {
                return Err(format!("message {seq} twice"));
            }
            sizes[i] = Some(size);
            uids[i] = uid;
            Ok(())
        })?;
        let sizes: Vec<u64> = match sizes.iter().position(Option::is_none) {
            Some(i) => return Err(self.err(&format!("FETCH 1:*: nothing for message {}", i + 1))),
            None => sizes.into_iter().flatten().collect(),
        };
        if uids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(self.err("FETCH 1:*: UIDs not ascending"));
        }
        self.sizes = sizes;
        self.uids = uids;
        Ok(())
    }

    fn fetch_body(&mut self, count: usize, checksum: bool, done: &mut Done) -> Result<(), String> {
        let n = count.min(self.exists as usize);
        if n == 0 {
            return Ok(());
        }
        let sizes = std::mem::take(&mut self.sizes);
        let mut seen = vec![false; n];
        let (mut bytes, mut sum) = (0u64, 0u64);
        let r = self.command(&format!("FETCH 1:{n} BODY.PEEK[]"), |r| {
            let mut u = untagged(r)?;
            if u.keyword != "FETCH" {
                return Ok(());
            }
            let seq = u.number.ok_or("FETCH without a number")?;
            if seq == 0 || seq > n as u64 || seen[seq as usize - 1] {
                return Err(format!("FETCH {seq} unasked or twice"));
            }
            let body = fetch_attrs(seq, &mut u.rest)?
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(b"BODY[]"))
                .map(|(_, v)| v);
            let Some(Value::Str(body)) = body else {
                return Err(format!("FETCH {seq} without BODY[]"));
            };
            let want = sizes[seq as usize - 1];
            if body.len() as u64 != want {
                return Err(format!(
                    "BODY[] of message {seq}: {} bytes, RFC822.SIZE {want}",
                    body.len()
                ));
            }
            seen[seq as usize - 1] = true;
            bytes += body.len() as u64;
            if checksum {
                sum = sum.wrapping_add(fnv1a(body, FNV_OFFSET));
            }
            Ok(())
        });
        self.sizes = sizes;
        r?;
        if let Some(i) = seen.iter().position(|&s| !s) {
            return Err(self.err(&format!("FETCH BODY.PEEK[]: nothing for message {}", i + 1)));
        }
        done.body_messages += n as u64;
        done.body_bytes += bytes;
        done.checksum = done.checksum.wrapping_add(sum);
        Ok(())
    }

    fn search(&mut self, word: &str, expect: Option<usize>, done: &mut Done) -> Result<(), String> {
        let known: HashSet<u64> = self.uids.iter().copied().collect();
        let mut hits = HashSet::new();
        self.command(&format!("UID SEARCH TEXT \"{word}\""), |r| {
            let u = untagged(r)?;
            if u.keyword != "SEARCH" {
                return Ok(());
            }
            let rest = &u.rest.b[u.rest.i..];
            for w in std::str::from_utf8(rest)
                .map_err(|_| "not UTF-8")?
                .split_whitespace()
            {
                let uid: u64 = w.parse().map_err(|_| format!("not a UID: {w}"))?;
                if !known.contains(&uid) {
                    return Err(format!("UID {uid} does not exist"));
                }
                if !hits.insert(uid) {
                    return Err(format!("UID {uid} twice"));
                }
            }
            Ok(())
        })?;
        if let Some(want) = expect
            && hits.len() != want
        {
            return Err(self.err(&format!("SEARCH: {} hits, expected {want}", hits.len())));
        }
        done.hits += hits.len() as u64;
        Ok(())
    }

    fn store(&mut self) -> Result<(), String> {
        let n = self.exists as usize;
        let mut seen = vec![false; n];
        self.command("STORE 1:* +FLAGS (\\Seen)", |r| {
            let mut u = untagged(r)?;
            if u.keyword != "FETCH" {
                return Ok(());
            }
            let seq = u.number.ok_or("FETCH without a number")?;
            if seq == 0 || seq > n as u64 {
                return Err(format!("FETCH {seq} of {n} messages"));
            }
            let flags = fetch_attrs(seq, &mut u.rest)?
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(b"FLAGS"))
                .map(|(_, v)| v);
            let Some(Value::List(flags)) = flags else {
                return Err(format!("FETCH {seq} without FLAGS"));
            };
            if !flags
                .iter()
                .any(|f| matches!(f, Value::Atom(f) if f.eq_ignore_ascii_case(b"\\Seen")))
            {
                return Err(format!("message {seq} without \\Seen"));
            }
            seen[seq as usize - 1] = true;
            Ok(())
        })?;
        if let Some(i) = seen.iter().position(|&s| !s) {
            return Err(self.err(&format!("STORE: no FLAGS for message {}", i + 1)));
        }
        Ok(())
    }

    /// Takes the `\Seen` flags off again, and logs out.
    fn reset_and_logout(&mut self) -> Result<(), String> {
        if self.exists > 0 {
            self.command("STORE 1:* -FLAGS.SILENT (\\Seen)", |_| Ok(()))?;
        }
        self.logout()
    }

    fn logout(&mut self) -> Result<(), String> {
        self.command("LOGOUT", |_| Ok(()))
    }
}

const STEPS: [&str; 5] = ["select", "fetch_meta", "fetch_body", "search", "store"];

/// One client's thread: login, then each step between two barriers. It
/// waits at every barrier even after an error, so that the others are not
/// left waiting.
fn client(o: Arc<Options>, i: usize, barrier: Arc<Barrier>) -> Result<Done, String> {
    let user = o.user.replace("%n", &i.to_string());
    let mut done = Done::default();
    let mut c = Client::connect(&o.addr, user.clone()).and_then(|mut c| {
        c.login(&user, &o.password)?;
        Ok(c)
    });
    barrier.wait();
    for step in STEPS {
        // Each step starts when the main thread has its clock running.
        barrier.wait();
        if let Ok(ref mut cl) = c {
            let r = match step {
                "select" => cl.select(o.expect),
                "fetch_meta" => cl.fetch_meta(),
                "fetch_body" => cl.fetch_body(o.body, o.checksum, &mut done),
                "search" => cl.search(&o.word, o.expect_hits, &mut done),
                _ => cl.store(),
            };
            if let Err(e) = r {
                c = Err(e);
            }
        }
        barrier.wait();
    }
    let mut c = c?;
    c.reset_and_logout()?;
    done.messages = c.exists;
    Ok(done)
}

fn steps(o: Arc<Options>) -> ExitCode {
    let barrier = Arc::new(Barrier::new(o.clients + 1));
    let t0 = Instant::now();
    let threads: Vec<_> = (1..=o.clients)
        .map(|i| {
            let (o, b) = (o.clone(), barrier.clone());
            thread::spawn(move || client(o, i, b))
        })
        .collect();
    barrier.wait();
    let mut times = vec![(t0.elapsed().as_secs_f64(), "login")];
    let cpu0 = cpu_seconds();
    for step in STEPS {
        let t = Instant::now();
        barrier.wait();
        barrier.wait();
        times.push((t.elapsed().as_secs_f64(), step));
    }
    let cpu = cpu_seconds() - cpu0;
    let mut total = Done::default();
    let mut failed = false;
    for t in threads {
        match t.join() {
            Ok(Ok(d)) => {
                total.messages += d.messages;
                total.body_messages += d.body_messages;
                total.body_bytes += d.body_bytes;
                total.hits += d.hits;
                total.checksum = total.checksum.wrapping_add(d.checksum);
            }
            Ok(Err(e)) => {
                eprintln!("imap-load: {e}");
                failed = true;
            }
            Err(_) => {
                eprintln!("imap-load: a client thread panicked");
                failed = true;
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    let mut out = format!(
        "clients={} messages={} body_messages={} body_bytes={} hits={}",
        o.clients, total.messages, total.body_messages, total.body_bytes, total.hits
    );
    for (s, step) in times {
        out.push_str(&format!(" {step}_s={s:.6}"));
    }
    out.push_str(&format!(" client_cpu_s={cpu:.3}"));
    if o.checksum {
        out.push_str(&format!(" checksum={:016x}", total.checksum));
    }
    println!("{out}");
    ExitCode::SUCCESS
}

/// Idle mode: N logged-in connections, held until standard input closes.
fn idle(o: Arc<Options>, n: usize) -> ExitCode {
    let users = o.users.unwrap_or(n);
    let next = Arc::new(AtomicUsize::new(1));
    let clients = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..o.parallel.min(n))
        .map(|_| {
            let (o, next, clients) = (o.clone(), next.clone(), clients.clone());
            thread::spawn(move || -> Result<(), String> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i > n {
                        return Ok(());
                    }
                    let user = o.user.replace("%n", &((i - 1) % users + 1).to_string());
                    let mut c = Client::connect(&o.addr, format!("{user} (connection {i})"))?;
                    c.login(&user, &o.password)?;
                    clients.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                }
            })
        })
        .collect();
    let mut failed = false;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("imap-load: {e}");
                failed = true;
            }
            Err(_) => {
                eprintln!("imap-load: a client thread panicked");
                failed = true;
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    let login = t0.elapsed().as_secs_f64();
    println!("ready=1 connections={n} users={users} login_s={login:.3}");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let mut clients = std::mem::take(&mut *clients.lock().unwrap_or_else(|p| p.into_inner()));
    for c in &mut clients {
        if let Err(e) = c.logout() {
            eprintln!("imap-load: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("imap-load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match o.idle {
        Some(n) => idle(o, n),
        None => steps(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_in_an_envelope() {
        let r = b"* 3 FETCH (UID 7 ENVELOPE (\"d\" {5}\r\nhe\"y) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL))\r\n";
        assert_eq!(
            literal_at_end(b"* 3 FETCH (UID 7 ENVELOPE (\"d\" {5}\r\n"),
            Some(5)
        );
        let mut u = untagged(r).unwrap();
        assert_eq!((u.number, u.keyword.as_str()), (Some(3), "FETCH"));
        let attrs = fetch_attrs(3, &mut u.rest).unwrap();
        assert_eq!(attrs[0].1.number(), Some(7));
        let Value::List(e) = &attrs[1].1 else {
            panic!()
        };
        assert!(matches!(e[1], Value::Str(b"he\"y)")));
        assert_eq!(e.len(), 10);
        assert!(u.rest.at_end());
    }

    #[test]
    fn section_atoms() {
        let mut p = Parser::new(b"BODY[HEADER.FIELDS (FROM)] {2}\r\nab");
        assert_eq!(p.atom().unwrap(), b"BODY[HEADER.FIELDS (FROM)]");
        p.space().unwrap();
        assert!(matches!(p.value().unwrap(), Value::Str(b"ab")));
    }
}
