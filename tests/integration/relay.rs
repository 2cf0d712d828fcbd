//! Delivery to other hosts, with several hosts on one machine: ironpost
//! instances on 127.0.0.2, 127.0.0.3, ... (each its own config dir), all
//! with SMTP on one port (smtp_tcp_port, as port 25 would be), an
//! in-process DNS server with their MX records, scripted peers for the
//! odd cases, and Debian's real Postfix as a peer. Retries are driven with
//! `postqueue -f` and short backoffs, never waited for.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironpost_testkit::dns::DnsServer;
use ironpost_testkit::instance::{Instance, free_port};

use crate::common::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Settings every host of a test shares: its DNS, and short timers.
fn common(dns: &DnsServer) -> String {
    format!(
        "dns_nameservers = {}\n\
         minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n\
         smtp_connect_timeout = 2s\nsmtp_helo_timeout = 5s\n",
        dns.addr
    )
}

fn host(last: u8, port: u16, domain: &str, extra: &str) -> Instance {
    Instance::on_host(ironpost(), ip(last), port, domain, extra)
}

/// A port free on every address used by a test.
fn shared_port(ips: &[u8]) -> u16 {
    loop {
        let p = free_port();
        if ips.iter().all(|&l| TcpListener::bind((ip(l), p)).is_ok()) {
            return p;
        }
    }
}

/// Sends a message to `inst` from the test (127.0.0.1); the queue ID.
fn submit(inst: &Instance, from: &str, to: &[&str], body: &str) -> String {
    let mut s = inst.connect();
    assert!(s.cmd("ehlo client.example").starts_with("250"));
    assert_eq!(s.cmd(&format!("mail from:<{from}>")), "250 2.1.0 Ok");
    for r in to {
        assert_eq!(s.cmd(&format!("rcpt to:<{r}>")), "250 2.1.5 Ok", "{r}");
    }
    assert!(s.cmd("data").starts_with("354"));
    s.send_raw(body.as_bytes());
    s.send_raw(b".\r\n");
    let r = s.read_reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    s.cmd("quit");
    r.trim_end().rsplit(' ').next().unwrap().to_string()
}

fn flush(inst: &Instance) {
    let out = compat("postqueue")
        .args(["-c", &inst.etc().display().to_string(), "-f"])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
}

fn messages_with(inst: &Instance, user: &str, needle: &str) -> Vec<String> {
    inst.maildir_new(user)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter(|m| m.contains(needle))
        .collect()
}

fn wait_message(inst: &Instance, user: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = messages_with(inst, user, needle).pop() {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{user}@{} never got a message with {needle:?}; mail log:\n{}",
            inst.domain,
            inst.maillog()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn mail_between_hosts_with_mx_failover_and_retries() {
    let port = shared_port(&[2, 3, 4]);
    let dns = DnsServer::start(
        "a.test MX 10 mx.a.test\n\
         mx.a.test A 127.0.0.2\n\
         127.0.0.2 PTR mx.a.test\n\
         b.test MX 10 mx.b.test\n\
         b.test MX 20 mx2.b.test\n\
         mx.b.test A 127.0.0.3\n\
         127.0.0.3 PTR mx.b.test\n\
         mx2.b.test A 127.0.0.4\n\
         127.0.0.4 PTR mx2.b.test\n",
    );
    let c = common(&dns);
    let mut a = host(
        2,
        port,
        "a.test",
        &format!("mynetworks = 127.0.0.1/32\n{c}"),
    );
    let mut b = host(3, port, "b.test", &c);
    // The backup MX of b.test: relays for it, delivers nothing itself.
    let mut b2 = host(
        4,
        port,
        "backup.test",
        &format!("myhostname = mx2.b.test\nrelay_domains = b.test\n{c}"),
    );
    a.start();
    b.start();
    b2.start();

    // From an account on host A to a mailbox on host B, through B's MX.
    let id = submit(
        &a,
        "jerry@a.test",
        &["jerry@b.test"],
        "From: jerry@a.test\r\nTo: jerry@b.test\r\nSubject: first\r\n\r\nhello B\r\n",
    );
    let m = wait_message(&b, "jerry", "Subject: first");
    // Opportunistic TLS between the hosts (quickstart made certificates).
    assert!(
        m.contains(
            "Received: from mx.a.test (mx.a.test [127.0.0.2])\n\t(using TLSv1.3 with cipher "
        ),
        "{m}"
    );
    assert!(
        m.contains("\tby mx.b.test (ironpost) with ESMTPS id "),
        "{m}"
    );
    let log = a.wait_log(&format!("{id}: removed"));
    assert!(
        log.contains(&format!(
            "ironpost/smtp[{}]: {id}: to=<jerry@b.test>, relay=mx.b.test[127.0.0.3]:{port}, delay=",
            log_pid(&log)
        )),
        "{log}"
    );
    assert!(
        log.contains(", dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "),
        "{log}"
    );

    // B's primary is down: mail goes to the secondary, which keeps it.
    b.stop();
    submit(
        &a,
        "jerry@a.test",
        &["jerry@b.test"],
        "Subject: second\r\n\r\nvia the backup\r\n",
    );
    a.wait_log(&format!("relay=mx2.b.test[127.0.0.4]:{port}"));
    let log = b2.wait_log("status=deferred");
    assert!(
        log.contains("to=<jerry@b.test>, relay=none, delay=")
            && log.contains(&format!(
                "status=deferred (connect to mx.b.test[127.0.0.3]:{port}: Connection refused)"
            )),
        "{log}"
    );
    // The primary is back: the backup hands the message over when asked.
    b.start();
    flush(&b2);
    wait_message(&b, "jerry", "Subject: second");

    // Both down: host A keeps the message and says why.
    b.stop();
    b2.stop();
    let id = submit(
        &a,
        "jerry@a.test",
        &["jerry@b.test"],
        "Subject: third\r\n\r\nlater\r\n",
    );
    let log = a.wait_log(&format!("{id}: to=<jerry@b.test>, relay=none"));
    assert!(
        log.contains(&format!(
            "status=deferred (connect to mx2.b.test[127.0.0.4]:{port}: Connection refused)"
        )),
        "{log}"
    );
    let q = compat("mailq")
        .args(["-c", &a.etc().display().to_string()])
        .run();
    assert!(q.stdout.contains(&id), "{}", q.stdout);
    b.start();
    b2.start();
    flush(&a);
    wait_message(&b, "jerry", "Subject: third");

    // A 550 from the peer bounces, with the peer's words quoted.
    submit(
        &a,
        "jerry@a.test",
        &["nobody@b.test"],
        "Subject: to nobody\r\n\r\nx\r\n",
    );
    let bounce = wait_message(&a, "jerry", "Undelivered Mail Returned to Sender");
    assert!(
        bounce.contains("<nobody@b.test>: host mx.b.test[127.0.0.3] said: 550 5.1.1 <nobody@b.test>:\n    Recipient address rejected: User unknown in virtual mailbox table (in\n    reply to RCPT TO command)"),
        "{bounce}"
    );
    assert!(bounce.contains("Remote-MTA: dns; mx.b.test\n"), "{bounce}");
    assert!(
        bounce.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody@b.test>: Recipient address rejected:\n    User unknown in virtual mailbox table\n"),
        "{bounce}"
    );
    assert!(bounce.contains("Subject: to nobody"), "{bounce}");
}

/// The `[PID]` of the lines of one instance's log.
fn log_pid(log: &str) -> String {
    log.lines()
        .find_map(|l| l.split("ironpost/master[").nth(1))
        .and_then(|r| r.split(']').next())
        .unwrap_or("")
        .to_string()
}

/// A scripted SMTP server: answers as `script` says and records what it
/// was sent.
struct Peer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<Mutex<usize>>,
    /// Transactions under way now (from MAIL to the reply after the
    /// message), and the most at once: what a destination concurrency
    /// limit counts. (Sockets would overlap for a moment when a client
    /// opens the next connection while the peer is still reading the
    /// QUIT of the last one.)
    pub open: Arc<Mutex<(usize, usize)>>,
}

#[derive(Clone)]
struct Script {
    /// None: never greet.
    greeting: Option<&'static str>,
    ehlo: Vec<&'static str>,
    /// Replies to RCPT TO for addresses containing the key.
    rcpt: Vec<(&'static str, &'static str)>,
    data_reply: &'static str,
}

impl Script {
    fn normal(ehlo: &[&'static str]) -> Script {
        Script {
            greeting: Some("220 peer.example ESMTP"),
            ehlo: ehlo.to_vec(),
            rcpt: Vec::new(),
            data_reply: "250 2.0.0 Ok: queued as PEER1",
        }
    }
}

impl Peer {
    fn start(addr: IpAddr, script: Script) -> Peer {
        let listener = TcpListener::bind((addr, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let open = Arc::new(Mutex::new((0, 0)));
        let (seen2, conns2, open2) = (seen.clone(), connections.clone(), open.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                *conns2.lock().unwrap() += 1;
                let script = script.clone();
                let seen = seen2.clone();
                let open = open2.clone();
                std::thread::spawn(move || {
                    let mut tx = Transaction {
                        count: &open,
                        on: false,
                    };
                    serve(stream, &script, &seen, &mut tx);
                });
            }
        });
        Peer {
            port,
            seen,
            connections,
            open,
        }
    }

    fn transcript(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

/// Counts a transaction of a peer's session while it is under way.
struct Transaction<'a> {
    count: &'a Mutex<(usize, usize)>,
    on: bool,
}

impl Transaction<'_> {
    fn begin(&mut self) {
        if !self.on {
            self.on = true;
            let mut c = self.count.lock().unwrap();
            c.0 += 1;
            c.1 = c.1.max(c.0);
        }
    }

    fn end(&mut self) {
        if self.on {
            self.on = false;
            self.count.lock().unwrap().0 -= 1;
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

fn serve(stream: TcpStream, script: &Script, seen: &Mutex<Vec<String>>, tx: &mut Transaction<'_>) {
    let mut w = stream.try_clone().unwrap();
    let Some(greeting) = script.greeting else {
        // Hold the connection open and say nothing.
        std::thread::sleep(Duration::from_secs(30));
        return;
    };
    let _ = write!(w, "{greeting}\r\n");
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_string();
        seen.lock().unwrap().push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            let mut lines = vec!["peer.example".to_string()];
            lines.extend(script.ehlo.iter().map(|s| s.to_string()));
            let n = lines.len();
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 < n { "-" } else { " " }))
                .collect::<String>()
        } else if upper.starts_with("MAIL") {
            tx.begin();
            "250 2.0.0 Ok\r\n".to_string()
        } else if upper.starts_with("RSET") {
            tx.end();
            "250 2.0.0 Ok\r\n".to_string()
        } else if upper.starts_with("RCPT") {
            script
                .rcpt
                .iter()
                .find(|(k, _)| cmd.contains(k))
                .map_or("250 2.1.5 Ok\r\n".to_string(), |(_, r)| format!("{r}\r\n"))
        } else if upper.starts_with("DATA") {
            let _ = write!(w, "354 go ahead\r\n");
            let mut body = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                body.push_str(&l);
            }
            seen.lock().unwrap().push(format!("BODY:{body}"));
            let _ = write!(w, "{}\r\n", script.data_reply);
            tx.end();
            continue;
        } else if upper.starts_with("BDAT") {
            let n: usize = cmd.split_whitespace().nth(1).unwrap().parse().unwrap();
            let mut buf = vec![0u8; n];
            std::io::Read::read_exact(&mut r, &mut buf).unwrap();
            seen.lock()
                .unwrap()
                .push(format!("BODY:{}", String::from_utf8_lossy(&buf)));
            let _ = write!(w, "{}\r\n", script.data_reply);
            if upper.contains(" LAST") {
                tx.end();
            }
            continue;
        } else if upper.starts_with("STARTTLS") {
            // Says yes, then breaks the handshake.
            let _ = w.write_all(b"220 2.0.0 Ready to start TLS\r\n");
            let _ = w.write_all(b"this is not TLS\r\n");
            return;
        } else if upper.starts_with("QUIT") {
            let _ = write!(w, "221 2.0.0 Bye\r\n");
            return;
        } else {
            "250 2.0.0 Ok\r\n".to_string()
        };
        let _ = w.write_all(reply.as_bytes());
    }
}

/// One instance whose mail for `*.peer.test` goes to scripted peers
/// through transport_maps.
fn sender(extra: &str) -> Instance {
    let mut inst = Instance::new(
        ironpost(),
        &format!(
            "mynetworks = 127.0.0.1/32\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n\
             smtp_helo_timeout = 1s\nsmtp_connect_timeout = 2s\n{extra}"
        ),
    );
    inst.start();
    inst
}

#[test]
fn pipelining_dsn_and_per_recipient_results() {
    let peer = Peer::start(
        ip(1),
        Script {
            rcpt: vec![
                ("later@", "450 4.2.0 <later@one.peer.test>: mailbox busy"),
                ("gone@", "550 5.1.1 <gone@one.peer.test>: no such user"),
            ],
            ..Script::normal(&["PIPELINING", "SIZE 1000000", "8BITMIME", "DSN"])
        },
    );
    let inst = sender(&format!(
        "transport_maps = inline:{{ one.peer.test=smtp:[127.0.0.1]:{} }}",
        peer.port
    ));
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    assert_eq!(
        s.cmd("mail from:<jerry@example.test> RET=HDRS ENVID=ID+2B1"),
        "250 2.1.0 Ok"
    );
    for r in ["ok", "later", "gone"] {
        assert_eq!(
            s.cmd(&format!(
                "rcpt to:<{r}@one.peer.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;{r}@one.peer.test"
            )),
            "250 2.1.5 Ok"
        );
    }
    s.cmd("data");
    // A line that starts with a dot (stuffed by the client, as it must).
    s.send_raw(b"Subject: three\r\n\r\n..dot line\r\n.\r\n");
    let id = s
        .read_reply()
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    s.cmd("quit");
    let log = inst.wait_log(&format!("{id}: to=<gone@one.peer.test>"));
    let t = peer.transcript();
    assert!(
        t.contains("MAIL FROM:<jerry@example.test> SIZE=") && t.contains(" RET=HDRS ENVID=ID+2B1"),
        "{t}"
    );
    assert!(
        t.contains("RCPT TO:<ok@one.peer.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;ok@one.peer.test"),
        "{t}"
    );
    assert!(t.contains("BODY:Received: from client.example"), "{t}");
    assert!(
        t.contains("\r\n..dot line\r\n"),
        "dot-stuffed on the wire: {t}"
    );
    let relay = format!("relay=127.0.0.1[127.0.0.1]:{}", peer.port);
    assert!(
        log.contains(&format!("to=<ok@one.peer.test>, {relay}, ")),
        "{log}"
    );
    assert!(
        log.contains("status=sent (250 2.0.0 Ok: queued as PEER1)"),
        "{log}"
    );
    assert!(
        log.contains("dsn=4.2.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <later@one.peer.test>: mailbox busy (in reply to RCPT TO command))"),
        "{log}"
    );
    assert!(
        log.contains("dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <gone@one.peer.test>: no such user (in reply to RCPT TO command))"),
        "{log}"
    );
    // The next attempt retries only the deferred recipient.
    let before = peer.transcript().matches("RCPT TO:").count();
    flush(&inst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while peer.transcript().matches("RCPT TO:").count() == before {
        assert!(Instant::now() < deadline, "no retry: {}", inst.maillog());
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = peer.transcript();
    let retry: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("BODY:"))
        .filter(|l| l.starts_with("RCPT TO:"))
        .collect();
    assert_eq!(
        retry,
        vec!["RCPT TO:<later@one.peer.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;later@one.peer.test"],
        "{t}"
    );
}

#[test]
fn odd_peers_timeouts_size_8bit_and_reuse() {
    let silent = Peer::start(
        ip(1),
        Script {
            greeting: None,
            ..Script::normal(&[])
        },
    );
    let small = Peer::start(ip(1), Script::normal(&["SIZE 100"]));
    let old = Peer::start(ip(1), Script::normal(&[]));
    let chunky = Peer::start(
        ip(1),
        Script::normal(&["PIPELINING", "8BITMIME", "CHUNKING"]),
    );
    let inst = sender(&format!(
        "transport_maps = inline:{{ silent.peer.test=smtp:[127.0.0.1]:{}, small.peer.test=smtp:[127.0.0.1]:{}, \
         old.peer.test=smtp:[127.0.0.1]:{}, chunky.peer.test=smtp:[127.0.0.1]:{} }}\n\
         smtp_connection_cache_time_limit = 10s",
        silent.port, small.port, old.port, chunky.port
    ));
    // A server that never greets: a timeout per smtp_helo_timeout.
    let id = submit(
        &inst,
        "jerry@example.test",
        &["x@silent.peer.test"],
        "Subject: s\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<x@silent.peer.test>"));
    assert!(
        log.contains("status=deferred (conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting)"),
        "{log}"
    );
    // Too big for the server's SIZE: bounced without sending.
    let id = submit(
        &inst,
        "jerry@example.test",
        &["x@small.peer.test"],
        &format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(200)),
    );
    let log = inst.wait_log(&format!("{id}: to=<x@small.peer.test>"));
    assert!(
        log.contains("dsn=5.3.4, status=bounced (message size "),
        "{log}"
    );
    assert!(
        !small.transcript().contains("MAIL FROM"),
        "{}",
        small.transcript()
    );
    // No 8BITMIME: 8-bit text arrives as quoted-printable.
    let id = submit(
        &inst,
        "jerry@example.test",
        &["x@old.peer.test"],
        "Subject: accents\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e\r\n",
    );
    inst.wait_log(&format!("{id}: to=<x@old.peer.test>"));
    let t = old.transcript();
    assert!(
        t.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"),
        "{t}"
    );
    assert!(!t.contains("BODY=8BITMIME"), "{t}");
    assert!(t.contains("HELO ") || t.contains("EHLO "), "{t}");
    // CHUNKING: BDAT, 8-bit as it is; two messages share one connection.
    for n in 1..=2 {
        let id = submit(
            &inst,
            "jerry@example.test",
            &["x@chunky.peer.test"],
            &format!("Subject: chunk {n}\r\n\r\nS\u{e9}ance {n}\r\n"),
        );
        let log = inst.wait_log(&format!("{id}: to=<x@chunky.peer.test>"));
        if n == 2 {
            assert!(
                log.contains(&format!(
                    "relay=127.0.0.1[127.0.0.1]:{}, conn_use=2, delay=",
                    chunky.port
                )),
                "{log}"
            );
        }
    }
    let t = chunky.transcript();
    assert!(
        t.contains("MAIL FROM:<jerry@example.test> BODY=8BITMIME"),
        "{t}"
    );
    assert!(t.contains("BODY:Received: "), "{t}");
    assert!(t.contains("S\u{e9}ance 2"), "{t}");
    // Reused without an RSET: the finished transaction left it ready.
    assert_eq!(t.matches("RSET").count(), 0, "{t}");
    assert_eq!(*chunky.connections.lock().unwrap(), 1, "{t}");
}

#[test]
fn null_mx_unknown_domains_and_dns_failures() {
    let dns = DnsServer::start(
        "nullmx.test MX 0 .\n\
         broken.test SERVFAIL\n\
         nomx.test A 127.0.0.1\n",
    );
    let inst = sender(&format!(
        "dns_nameservers = {}\ndns_timeout = 1s\nsmtp_tcp_port = {}",
        dns.addr,
        free_port()
    ));
    let id = submit(
        &inst,
        "jerry@example.test",
        &["a@nullmx.test"],
        "Subject: n\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<a@nullmx.test>"));
    assert!(
        log.contains(
            "dsn=5.1.10, status=bounced (Domain nullmx.test does not accept mail (nullMX))"
        ),
        "{log}"
    );
    let id = submit(
        &inst,
        "jerry@example.test",
        &["a@nowhere.test"],
        "Subject: n\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<a@nowhere.test>"));
    assert!(
        log.contains("dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found)"),
        "{log}"
    );
    let id = submit(
        &inst,
        "jerry@example.test",
        &["a@broken.test"],
        "Subject: n\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<a@broken.test>"));
    assert!(
        log.contains("dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=broken.test type=MX: Host not found, try again)"),
        "{log}"
    );
    // No MX: the domain's own address (nobody listens there: deferred).
    let id = submit(
        &inst,
        "jerry@example.test",
        &["a@nomx.test"],
        "Subject: n\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<a@nomx.test>"));
    assert!(
        log.contains("status=deferred (connect to nomx.test[127.0.0.1]:"),
        "{log}"
    );
}

#[test]
fn debian_postfix_as_a_peer() {
    let port = shared_port(&[2, 6]);
    let dns = DnsServer::start(
        "a.test MX 10 mx.a.test\nmx.a.test A 127.0.0.2\n\
         pf.test MX 10 mx.pf.test\nmx.pf.test A 127.0.0.6\n",
    );
    let mut a = host(
        2,
        port,
        "a.test",
        &format!("mynetworks = 127.0.0.1/32\n{}", common(&dns)),
    );
    a.start();
    let pf = ironpost_testkit::postfix::Postfix::start(
        (ip(6), port).into(),
        "pf.test",
        "tom",
        &format!("[127.0.0.2]:{port}"),
        "",
    );
    // Ours to Postfix, found through its MX.
    let id = submit(
        &a,
        "jerry@a.test",
        &["tom@pf.test"],
        "Subject: to postfix\r\n\r\nhello\r\n",
    );
    let log = a.wait_log(&format!("{id}: to=<tom@pf.test>"));
    assert!(
        log.contains(&format!("relay=mx.pf.test[127.0.0.6]:{port}"))
            && log.contains("status=sent (250 2.0.0 Ok: "),
        "{log}\n{}",
        pf.maillog()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pf
        .messages("tom")
        .iter()
        .any(|m| m.contains("Subject: to postfix"))
    {
        assert!(
            Instant::now() < deadline,
            "Postfix did not deliver: {}",
            pf.maillog()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Postfix's mail to us.
    pf.sendmail(
        "tom@pf.test",
        "jerry@a.test",
        "Subject: from postfix\n\nhi there\n",
    );
    let m = wait_message(&a, "jerry", "Subject: from postfix");
    assert!(m.contains("Received: from mx.pf.test"), "{m}");
}

#[test]
fn delay_warnings_double_bounces_and_site_flushes() {
    let dead = free_port();
    let peer = Peer::start(
        ip(1),
        Script {
            rcpt: vec![("gone@", "550 5.1.1 <gone@bad.peer.test>: no such user")],
            ..Script::normal(&["PIPELINING"])
        },
    );
    let inst = sender(&format!(
        "transport_maps = inline:{{ hold.test=smtp:[127.0.0.1]:{dead}, other.test=smtp:[127.0.0.1]:{dead}, \
         bad.peer.test=smtp:[127.0.0.1]:{} }}\n\
         delay_warning_time = 1s\nfast_flush_domains = hold.test\n\
         minimal_backoff_time = 1h\nmaximal_backoff_time = 1h",
        peer.port
    ));
    let etc = inst.etc().display().to_string();
    let held = submit(
        &inst,
        "jerry@example.test",
        &["x@hold.test"],
        "Subject: held\r\n\r\nx\r\n",
    );
    let other = submit(
        &inst,
        "jerry@example.test",
        &["x@other.test"],
        "Subject: other\r\n\r\nx\r\n",
    );
    inst.wait_log(&format!("{held}: to=<x@hold.test>, relay=none"));
    inst.wait_log(&format!("{other}: to=<x@other.test>, relay=none"));
    let attempts = |id: &str| inst.maillog().matches(&format!("{id}: to=<")).count();
    // Once the message is older than delay_warning_time, the next attempt
    // warns its sender, once.
    std::thread::sleep(Duration::from_millis(1100));
    let out = compat("postqueue")
        .args(["-c", &etc, "-s", "hold.test"])
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    inst.wait_log(&format!("{held}: sender delay notification: "));
    let warning = wait_message(&inst, "jerry", "Delayed Mail (still being retried)");
    assert!(warning.contains("Action: delayed\n"), "{warning}");
    assert!(
        warning.contains("Final-Recipient: rfc822; x@hold.test\n"),
        "{warning}"
    );
    // -s flushed only hold.test's message.
    assert_eq!(attempts(&held), 2, "{}", inst.maillog());
    assert_eq!(attempts(&other), 1, "{}", inst.maillog());
    // ETRN for a fast-flush domain does the same from a client.
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    assert_eq!(s.cmd("etrn hold.test"), "250 2.0.0 Queuing started");
    assert_eq!(
        s.cmd("etrn other.test"),
        "459 <other.test>: service unavailable"
    );
    s.cmd("quit");
    let deadline = Instant::now() + Duration::from_secs(20);
    while attempts(&held) < 3 {
        assert!(Instant::now() < deadline, "{}", inst.maillog());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(attempts(&other), 1, "{}", inst.maillog());
    assert_eq!(
        messages_with(&inst, "jerry", "Delayed Mail (still being retried)").len(),
        1,
        "one warning only"
    );
    // A bounce that bounces goes to the postmaster (here an alias of
    // jerry), from double-bounce.
    let mut s = inst.connect();
    s.cmd("ehlo client.example");
    assert_eq!(s.cmd("mail from:<>"), "250 2.1.0 Ok");
    assert_eq!(s.cmd("rcpt to:<gone@bad.peer.test>"), "250 2.1.5 Ok");
    s.cmd("data");
    s.send_raw(b"Subject: a bounce\r\n\r\nx\r\n.\r\n");
    let id = s
        .read_reply()
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    s.cmd("quit");
    inst.wait_log(&format!("{id}: postmaster non-delivery notification: "));
    let m = wait_message(&inst, "jerry", "Subject: a bounce");
    assert!(
        m.starts_with("Return-Path: <double-bounce@example.test>\n"),
        "{m}"
    );
    assert!(
        m.contains("To: postmaster\n") || m.contains("To: postmaster@example.test\n"),
        "{m}"
    );
}

#[test]
fn tls_policies_and_a_message_to_three_domains() {
    let port = shared_port(&[2, 3]);
    let dns = DnsServer::start(
        "b.test MX 10 mx.b.test\nmx.b.test A 127.0.0.3\nmail.b.test A 127.0.0.3\n",
    );
    let c = common(&dns);
    let mut b = host(3, port, "b.test", &c);
    b.start();
    let plain = Peer::start(ip(1), Script::normal(&["PIPELINING"]));
    let fine = Peer::start(ip(1), Script::normal(&["PIPELINING"]));
    // b.test over TLS verified against B's own (self-signed) certificate,
    // for the name in it; plain.peer.test must encrypt but cannot.
    let a_cf = |ca: &str| {
        format!(
            "mynetworks = 127.0.0.1/32\n{c}\
             transport_maps = inline:{{ b.test=smtp:[mail.b.test]:{port}, plain.peer.test=smtp:[127.0.0.1]:{}, \
             fine.peer.test=smtp:[127.0.0.1]:{} }}\n\
             smtp_tls_policy_maps = inline:{{ [mail.b.test]:{port}=verify, [127.0.0.1]:{}=encrypt }}\n\
             smtp_tls_CAfile = {ca}\n",
            plain.port, fine.port, plain.port
        )
    };
    let mut a = host(
        2,
        port,
        "a.test",
        &a_cf(&b.etc().join("tls/cert.pem").display().to_string()),
    );
    a.start();
    let id = submit(
        &a,
        "jerry@a.test",
        &["jerry@b.test", "x@plain.peer.test", "y@fine.peer.test"],
        "Subject: three domains\r\n\r\nhello\r\n",
    );
    let log = a.wait_log(&format!("{id}: to=<x@plain.peer.test>"));
    a.wait_log(&format!("{id}: to=<y@fine.peer.test>"));
    let log = a.wait_log(&format!("{id}: to=<jerry@b.test>")) + &log;
    assert!(
        log.contains(&format!(
            "Verified TLS connection established to mail.b.test[127.0.0.3]:{port}: TLSv1.3 with cipher "
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "to=<x@plain.peer.test>, relay=127.0.0.1[127.0.0.1]:{}, delay=",
            plain.port
        )) && log.contains("dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])"),
        "{log}"
    );
    assert!(
        !plain.transcript().contains("MAIL FROM"),
        "{}",
        plain.transcript()
    );
    wait_message(&b, "jerry", "Subject: three domains");
    // The retry is for the third domain only.
    flush(&a);
    let deadline = Instant::now() + Duration::from_secs(20);
    while a
        .maillog()
        .matches(&format!("{id}: to=<x@plain.peer.test>"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{}", a.maillog());
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = a.maillog();
    assert_eq!(
        log.matches(&format!("{id}: to=<jerry@b.test>")).count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches(&format!("{id}: to=<y@fine.peer.test>")).count(),
        1,
        "{log}"
    );
    assert_eq!(
        messages_with(&b, "jerry", "Subject: three domains").len(),
        1
    );
    assert_eq!(fine.transcript().matches("RCPT TO:").count(), 1);

    // verify with a CA that did not sign B's certificate: not sent.
    let mut a2 = host(
        4,
        port,
        "c.test",
        &a_cf(&a.etc().join("tls/cert.pem").display().to_string()),
    );
    a2.start();
    let id = submit(
        &a2,
        "jerry@c.test",
        &["jerry@b.test"],
        "Subject: unverified\r\n\r\nx\r\n",
    );
    let log = a2.wait_log(&format!("{id}: to=<jerry@b.test>"));
    assert!(
        log.contains(
            "dsn=4.7.5, status=deferred (Server certificate not verified: mail.b.test[127.0.0.3]: "
        ),
        "{log}"
    );
    assert!(messages_with(&b, "jerry", "Subject: unverified").is_empty());
}

#[test]
fn fallback_relays_address_limits_plaintext_retries_and_concurrency() {
    let dns = DnsServer::start(
        "dead.test MX 10 mx1.dead.test\ndead.test MX 20 mx2.dead.test\ndead.test MX 30 mx3.dead.test\n\
         mx1.dead.test A 127.0.0.1\nmx2.dead.test A 127.0.0.1\nmx3.dead.test A 127.0.0.1\n",
    );
    let fallback = Peer::start(ip(1), Script::normal(&["PIPELINING"]));
    // Advertises STARTTLS and breaks the handshake: mail goes in plaintext.
    let badtls = Peer::start(ip(1), Script::normal(&["PIPELINING", "STARTTLS"]));
    let slow = Peer::start(ip(1), Script::normal(&["PIPELINING"]));
    let inst = sender(&format!(
        "dns_nameservers = {}\nsmtp_tcp_port = {}\nsmtp_mx_address_limit = 2\n\
         transport_maps = inline:{{ badtls.test=smtp:[127.0.0.1]:{}, one.test=smtp:[127.0.0.1]:{} }}\n\
         smtp_fallback_relay = [127.0.0.1]:{}\n\
         default_destination_concurrency_limit = 1\nsmtp_connection_cache_on_demand = no",
        dns.addr,
        free_port(),
        badtls.port,
        slow.port,
        fallback.port
    ));
    // Every MX refuses: after two addresses (smtp_mx_address_limit), the
    // fallback relay takes the mail.
    let id = submit(
        &inst,
        "jerry@example.test",
        &["x@dead.test"],
        "Subject: fb\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<x@dead.test>"));
    assert!(
        log.contains(&format!(
            "to=<x@dead.test>, relay=127.0.0.1[127.0.0.1]:{}, ",
            fallback.port
        )) && log.contains("status=sent (250 2.0.0 Ok: queued as PEER1)"),
        "{log}"
    );
    assert!(fallback.transcript().contains("RCPT TO:<x@dead.test>"));
    // A broken TLS handshake at level may: the same server again, in
    // plaintext.
    let id = submit(
        &inst,
        "jerry@example.test",
        &["x@badtls.test"],
        "Subject: tls\r\n\r\nx\r\n",
    );
    let log = inst.wait_log(&format!("{id}: to=<x@badtls.test>"));
    assert!(
        log.contains("status=sent (250 2.0.0 Ok: queued as PEER1)"),
        "{log}"
    );
    let t = badtls.transcript();
    assert_eq!(t.matches("EHLO ").count(), 2, "{t}");
    assert_eq!(t.matches("STARTTLS").count(), 1, "{t}");
    assert!(t.contains("RCPT TO:<x@badtls.test>"), "{t}");
    // default_destination_concurrency_limit = 1: one connection at a time.
    let ids: Vec<String> = (0..6)
        .map(|n| {
            submit(
                &inst,
                "jerry@example.test",
                &["x@one.test"],
                &format!("Subject: one {n}\r\n\r\nx\r\n"),
            )
        })
        .collect();
    for id in &ids {
        inst.wait_log(&format!("{id}: to=<x@one.test>"));
    }
    assert_eq!(slow.transcript().matches("RCPT TO:").count(), 6);
    assert_eq!(
        slow.open.lock().unwrap().1,
        1,
        "at most one delivery at once"
    );
}

#[test]
fn messages_that_wait_too_long_expire_and_return() {
    let dead = free_port();
    let inst = sender(&format!(
        "transport_maps = inline:{{ hold.test=smtp:[127.0.0.1]:{dead} }}\n\
         maximal_queue_lifetime = 1s\nbounce_queue_lifetime = 1s\n\
         minimal_backoff_time = 1h\nmaximal_backoff_time = 1h"
    ));
    let id = submit(
        &inst,
        "jerry@example.test",
        &["x@hold.test"],
        "Subject: old\r\n\r\nx\r\n",
    );
    inst.wait_log(&format!("{id}: to=<x@hold.test>, relay=none"));
    std::thread::sleep(Duration::from_millis(1100));
    flush(&inst);
    let log = inst.wait_log(&format!("{id}: removed"));
    assert!(
        log.contains(&format!(
            "{id}: to=<x@hold.test>, relay=none, delay="
        )) && log.contains(&format!(
            "dsn=4.4.7, status=expired, returned to sender (message expired: connect to 127.0.0.1[127.0.0.1]:{dead}: Connection refused)"
        )),
        "{log}"
    );
    let m = wait_message(&inst, "jerry", "Undelivered Mail Returned to Sender");
    assert!(m.contains("Status: 5.4.7\n"), "{m}");
}
