//! pop3-load: the POP3 load client of bench/pop3/run.sh.
//!
//! ```text
//! pop3-load HOST:PORT [--clients N] [--user PATTERN] [--password P]
//!           [--batch N] [--expect N] [--checksum]
//! ```
//!
//! Starts N clients (one thread and one connection each, blocking sockets,
//! buffered I/O). Client `i` (1..=N) logs in with USER/PASS as PATTERN with
//! `%n` replaced by `i` (default `u%n@example.test`, password `secret`).
//! Then, all clients together, in two measured phases:
//!
//! - list: STAT, LIST and UIDL;
//! - retr: RETR of every message, in batches of `--batch` commands sent
//!   together (default 64) when the server's CAPA lists PIPELINING, one at
//!   a time when it does not or `--batch 1`.
//!
//! and QUIT without DELE, so the mailbox stays as it was. Every multi-line
//! answer is read to its end (`CRLF.CRLF`); LIST must agree with STAT,
//! UIDL must give each message a distinct UID, and each message's bytes
//! after un-stuffing (CRLF line ends) must be what LIST said. `--expect N`
//! also requires N messages in each mailbox. `--checksum` adds an
//! order-independent sum of FNV-1a hashes of the messages (to compare two
//! servers' answers; it costs CPU, so it is meant for a warm-up run).
//!
//! A phase's time is the wall time from the moment every client is ready
//! until the last one has finished it; `retr_client_cpu_s` is the CPU time
//! this client itself used during the RETR phase (it shares the machine
//! with the server). Prints one line of `key=value`
//! pairs on stdout; an error (refused login, bad answer, wrong size, no
//! answer for two minutes) goes to stderr with exit status 1.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

struct Options {
    addr: String,
    clients: usize,
    user: String,
    password: String,
    batch: usize,
    expect: Option<usize>,
    checksum: bool,
}

const USAGE: &str = "usage: pop3-load HOST:PORT [--clients N] [--user PATTERN] [--password P] [--batch N] [--expect N] [--checksum]";

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        addr: String::new(),
        clients: 1,
        user: "u%n@example.test".into(),
        password: "secret".into(),
        batch: 64,
        expect: None,
        checksum: false,
    };
    let number = |v: Option<String>, name: &str| -> Result<usize, String> {
        v.and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{name} needs a positive number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clients" => o.clients = number(args.next(), "--clients")?,
            "--batch" => o.batch = number(args.next(), "--batch")?,
            "--expect" => o.expect = Some(number(args.next(), "--expect")?),
            "--user" => o.user = args.next().ok_or("--user needs a pattern")?,
            "--password" => o.password = args.next().ok_or("--password needs a value")?,
            "--checksum" => o.checksum = true,
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if o.addr.is_empty() => o.addr = a,
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    if o.addr.is_empty() {
        return Err("HOST:PORT is missing".into());
    }
    Ok(o)
}

/// One connection.
struct Client {
    name: String,
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
    line: Vec<u8>,
    pipelining: bool,
    sizes: Vec<u64>,
}

/// What one client did.
#[derive(Default)]
struct Done {
    messages: u64,
    bytes: u64,
    checksum: u64,
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
            w: BufWriter::with_capacity(64 * 1024, s),
            line: Vec::with_capacity(1024),
            pipelining: false,
            sizes: Vec::new(),
        };
        c.status("greeting")?;
        Ok(c)
    }

    fn err(&self, what: &str) -> String {
        format!("{}: {what}", self.name)
    }

    /// Reads one line into `self.line` (with its line end).
    fn read_line(&mut self, during: &str) -> Result<(), String> {
        self.line.clear();
        match self.r.read_until(b'\n', &mut self.line) {
            Ok(0) => Err(self.err(&format!("connection closed during {during}"))),
            Ok(_) => Ok(()),
            Err(e) => Err(self.err(&format!("reading the answer to {during}: {e}"))),
        }
    }

    /// Reads a status line; it must be `+OK`. Returns the text after it.
    fn status(&mut self, during: &str) -> Result<String, String> {
        self.read_line(during)?;
        if !self.line.starts_with(b"+OK") {
            let l = String::from_utf8_lossy(&self.line).trim_end().to_string();
            return Err(self.err(&format!("{during}: {l}")));
        }
        if !self.line.ends_with(b"\r\n") {
            return Err(self.err(&format!("{during}: status line without CRLF")));
        }
        Ok(String::from_utf8_lossy(&self.line[3..self.line.len() - 2])
            .trim()
            .to_string())
    }

    fn send(&mut self, cmd: &str) -> Result<(), String> {
        self.w
            .write_all(cmd.as_bytes())
            .and_then(|_| self.w.write_all(b"\r\n"))
            .map_err(|e| self.err(&format!("sending {cmd}: {e}")))
    }

    fn flush(&mut self) -> Result<(), String> {
        self.w
            .flush()
            .map_err(|e| self.err(&format!("sending: {e}")))
    }

    fn command(&mut self, cmd: &str, during: &str) -> Result<String, String> {
        self.send(cmd)?;
        self.flush()?;
        self.status(during)
    }

    /// Reads the lines of a multi-line answer up to its terminating
    /// `.CRLF`, calling `each` with every line un-stuffed (line end kept).
    fn lines(
        &mut self,
        during: &str,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            self.read_line(during)?;
            if !self.line.ends_with(b"\r\n") {
                let what = if self.line.ends_with(b"\n") {
                    "a line ends with a bare LF"
                } else {
                    "the answer ends without CRLF"
                };
                return Err(self.err(&format!("{during}: {what}")));
            }
            if self.line == b".\r\n" {
                return Ok(());
            }
            let l = if self.line[0] == b'.' {
                &self.line[1..]
            } else {
                &self.line[..]
            };
            each(l).map_err(|e| self.err(&format!("{during}: {e}")))?;
        }
    }

    fn login(&mut self, user: &str, password: &str) -> Result<(), String> {
        self.send("CAPA")?;
        self.flush()?;
        self.status("CAPA")?;
        let mut pipelining = false;
        self.lines("CAPA", |l| {
            if l.eq_ignore_ascii_case(b"PIPELINING\r\n") {
                pipelining = true;
            }
            Ok(())
        })?;
        self.pipelining = pipelining;
        self.command(&format!("USER {user}"), "USER")?;
        self.command(&format!("PASS {password}"), "PASS")?;
        Ok(())
    }

    /// STAT, LIST, UIDL.
    fn listing(&mut self, expect: Option<usize>) -> Result<(), String> {
        let stat = self.command("STAT", "STAT")?;
        let mut f = stat.split_whitespace().map(|x| x.parse::<u64>());
        let (Some(Ok(count)), Some(Ok(octets))) = (f.next(), f.next()) else {
            return Err(self.err(&format!("STAT: cannot read +OK {stat}")));
        };
        if let Some(want) = expect
            && count != want as u64
        {
            return Err(self.err(&format!("STAT: {count} messages, expected {want}")));
        }
        self.command("LIST", "LIST")?;
        let mut sizes = Vec::with_capacity(count as usize);
        self.lines("LIST", |l| {
            let t = std::str::from_utf8(l).map_err(|_| "not UTF-8".to_string())?;
            let mut f = t.split_whitespace().map(|x| x.parse::<u64>());
            match (f.next(), f.next()) {
                (Some(Ok(n)), Some(Ok(size))) if n == sizes.len() as u64 + 1 => {
                    sizes.push(size);
                    Ok(())
                }
                _ => Err(format!("unexpected line {}", t.trim_end())),
            }
        })?;
        if sizes.len() as u64 != count || sizes.iter().sum::<u64>() != octets {
            return Err(self.err(&format!(
                "LIST: {} messages, {} octets; STAT said {count}, {octets}",
                sizes.len(),
                sizes.iter().sum::<u64>()
            )));
        }
        self.command("UIDL", "UIDL")?;
        let mut uids = HashSet::with_capacity(count as usize);
        let mut n = 0u64;
        self.lines("UIDL", |l| {
            let t = std::str::from_utf8(l).map_err(|_| "not UTF-8".to_string())?;
            let mut f = t.split_whitespace();
            n += 1;
            match (f.next().map(|x| x.parse::<u64>()), f.next()) {
                (Some(Ok(i)), Some(uid)) if i == n => {
                    if uids.insert(uid.to_string()) {
                        Ok(())
                    } else {
                        Err(format!("UID {uid} given twice"))
                    }
                }
                _ => Err(format!("unexpected line {}", t.trim_end())),
            }
        })?;
        if n != count {
            return Err(self.err(&format!("UIDL: {n} messages, STAT said {count}")));
        }
        self.sizes = sizes;
        Ok(())
    }

    /// RETR of every message.
    fn retrieve(&mut self, batch: usize, checksum: bool) -> Result<Done, String> {
        let batch = if self.pipelining { batch } else { 1 };
        let sizes = std::mem::take(&mut self.sizes);
        let mut done = Done::default();
        for start in (0..sizes.len()).step_by(batch) {
            let end = (start + batch).min(sizes.len());
            for i in start..end {
                self.send(&format!("RETR {}", i + 1))?;
            }
            self.flush()?;
            for (i, &size) in sizes.iter().enumerate().take(end).skip(start) {
                let during = format!("RETR {}", i + 1);
                self.status(&during)?;
                let mut got = 0u64;
                let mut h = FNV_OFFSET;
                self.lines(&during, |l| {
                    got += l.len() as u64;
                    if checksum {
                        h = fnv1a(l, h);
                    }
                    Ok(())
                })?;
                if got != size {
                    return Err(self.err(&format!(
                        "{during}: {got} bytes after un-stuffing, LIST said {size}"
                    )));
                }
                done.messages += 1;
                done.bytes += got;
                done.checksum = done.checksum.wrapping_add(h);
            }
        }
        Ok(done)
    }

    fn quit(&mut self) -> Result<(), String> {
        self.command("QUIT", "QUIT").map(|_| ())
    }
}

/// One client's thread: login, (barrier) listing, (barrier) retrieval,
/// (barrier). It waits at every barrier even after an error, so that the
/// others are not left waiting.
fn client(o: Arc<Options>, i: usize, barrier: Arc<Barrier>) -> Result<(Done, bool), String> {
    let user = o.user.replace("%n", &i.to_string());
    let mut c = Client::connect(&o.addr, user.clone()).and_then(|mut c| {
        c.login(&user, &o.password)?;
        Ok(c)
    });
    barrier.wait();
    if let Ok(ref mut cl) = c
        && let Err(e) = cl.listing(o.expect)
    {
        c = Err(e);
    }
    barrier.wait();
    let done = match c {
        Ok(ref mut cl) => cl.retrieve(o.batch, o.checksum),
        Err(ref e) => Err(e.clone()),
    };
    barrier.wait();
    let mut c = c?;
    let done = done?;
    c.quit()?;
    Ok((done, c.pipelining))
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("pop3-load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let barrier = Arc::new(Barrier::new(o.clients + 1));
    let t0 = Instant::now();
    let threads: Vec<_> = (1..=o.clients)
        .map(|i| {
            let (o, b) = (o.clone(), barrier.clone());
            thread::spawn(move || client(o, i, b))
        })
        .collect();
    barrier.wait();
    let t1 = Instant::now();
    barrier.wait();
    let t2 = Instant::now();
    let cpu2 = cpu_seconds();
    barrier.wait();
    let t3 = Instant::now();
    let cpu3 = cpu_seconds();
    let mut total = Done::default();
    let mut pipelining = true;
    let mut failed = false;
    for t in threads {
        match t.join() {
            Ok(Ok((d, p))) => {
                total.messages += d.messages;
                total.bytes += d.bytes;
                total.checksum = total.checksum.wrapping_add(d.checksum);
                pipelining &= p;
            }
            Ok(Err(e)) => {
                eprintln!("pop3-load: {e}");
                failed = true;
            }
            Err(_) => {
                eprintln!("pop3-load: a client thread panicked");
                failed = true;
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    let (login, list, retr) = (
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
    );
    let mut out = format!(
        "clients={} messages={} bytes={} login_s={login:.6} list_s={list:.6} retr_s={retr:.6} \
         retr_msgs_per_s={:.0} retr_mb_per_s={:.1} retr_client_cpu_s={:.2} pipelining={} batch={}",
        o.clients,
        total.messages,
        total.bytes,
        total.messages as f64 / retr,
        total.bytes as f64 / 1e6 / retr,
        cpu3 - cpu2,
        if pipelining { "yes" } else { "no" },
        if pipelining { o.batch } else { 1 },
    );
    if o.checksum {
        out.push_str(&format!(" checksum={:016x}", total.checksum));
    }
    println!("{out}");
    ExitCode::SUCCESS
}
