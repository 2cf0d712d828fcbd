//! A whole ironpost instance in a temporary folder: made by `ironpost
//! quickstart`, listening on a free port of 127.0.0.1, run as a child
//! process (so a test can kill it with SIGKILL and start it again), and
//! talked to over real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The order of a Maildir file name `<secs>.M<usecs>P<pid>Q<n>...`: its
/// runs of digits as numbers, the rest as text.
fn delivery_key(path: &Path) -> Vec<(String, u64)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

/// A running (or stopped) instance.
pub struct Instance {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The address the instance listens on (127.0.0.1 unless made with
    /// [`Instance::on_host`]).
    pub ip: std::net::IpAddr,
    /// The SMTP port.
    pub port: u16,
    /// The submission (587) and smtps (465) ports on 127.0.0.1.
    pub submission_port: u16,
    pub smtps_port: u16,
    /// POP3 (110, STLS) and POP3S (995, TLS) ports.
    pub pop3_port: u16,
    pub pop3s_port: u16,
    /// IMAP (143, STARTTLS) and IMAPS (993, TLS) ports.
    pub imap_port: u16,
    pub imaps_port: u16,
    child: Option<Child>,
    pub domain: String,
    pub user: String,
    /// The DNS server of `dns_nameservers` unless the test names its own:
    /// it answers every query with SERVFAIL.
    _dns: crate::dns::DnsServer,
}

/// A UDP port nobody listens on right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("find a free UDP port")
}

/// `n` different ports nobody listens on right now.
///
/// They come from below the system's ephemeral range, which is where every
/// outgoing connection of the tests gets its local port: a port picked
/// from the ephemeral range and released could be taken by a client socket
/// before the server binds it. One counter for the whole test process hands
/// each port out once, and each is tried with a bind before it is handed out.
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

/// A port nobody listens on right now (see [`free_ports`]).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, span) = listen_range();
    if span == 0 {
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("find a free port");
    }
    // Test processes run one after another, but start each at its own place
    // so that a port left in use by the last one is not tried first.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = (low + n) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port of 127.0.0.1 below the ephemeral range");
}

/// The first port and the number of ports of the range the tests listen
/// on: the 20,000 ports (or fewer) below the ephemeral range, or none when
/// that range starts too low.
fn listen_range() -> (u32, u32) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let low = ephemeral_low.saturating_sub(20_000).max(10_000);
    (low, ephemeral_low.saturating_sub(low))
}

impl Instance {
    /// `ironpost quickstart` into a temporary folder (domain example.test,
    /// user jerry with password "secret"), SMTP, submission and smtps on
    /// free ports, and `main_cf` appended to main.cf.
    /// Not started yet.
    pub fn new(ironpost: &str, main_cf: &str) -> Instance {
        Instance::make(ironpost, "example.test", None, main_cf)
    }

    /// An instance that stands for a host of its own in tests with several
    /// hosts: quickstart with `domain` (user jerry, password "secret"),
    /// every service on `ip` (127.0.0.2, 127.0.0.3, ...), SMTP on `port`
    /// (the same port on every host, as port 25 would be: smtp_tcp_port is
    /// set to it), `myhostname = mx.DOMAIN`, outgoing connections from
    /// `ip`. `main_cf` is appended. Not started yet.
    pub fn on_host(
        ironpost: &str,
        ip: std::net::IpAddr,
        port: u16,
        domain: &str,
        main_cf: &str,
    ) -> Instance {
        let host_cf = format!(
            "myhostname = mx.{domain}\ninet_interfaces = {ip}\nsmtp_tcp_port = {port}\n\
             smtp_bind_address = {ip}\n{main_cf}"
        );
        Instance::make(ironpost, domain, Some((ip, port)), &host_cf)
    }

    fn make(
        ironpost: &str,
        domain: &str,
        host: Option<(std::net::IpAddr, u16)>,
        main_cf: &str,
    ) -> Instance {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("demo");
        let out = std::process::Command::new(ironpost)
            .arg("quickstart")
            .arg(&root)
            .args([
                "--domain",
                domain,
                "--user",
                "jerry",
                "--password",
                "secret",
                "--port-offset",
                "10000",
            ])
            .output()
            .expect("run ironpost quickstart");
        assert!(
            out.status.success(),
            "quickstart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ip = host.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |(ip, _)| ip);
        // All at once: ports chosen one by one may come out the same.
        let p = free_ports(7);
        let (port, submission_port, smtps_port) = (host.map_or(p[0], |(_, p)| p), p[1], p[2]);
        let (pop3_port, pop3s_port) = (p[3], p[4]);
        let (imap_port, imaps_port) = (p[5], p[6]);
        let master = std::fs::read_to_string(root.join("etc/master.cf"))
            .unwrap()
            .replace("127.0.0.1:10025 ", &format!("{ip}:{port} "))
            .replace("127.0.0.1:10587 ", &format!("{ip}:{submission_port} "))
            .replace("127.0.0.1:10465 ", &format!("{ip}:{smtps_port} "))
            .replace("127.0.0.1:10110 ", &format!("{ip}:{pop3_port} "))
            .replace("127.0.0.1:10995 ", &format!("{ip}:{pop3s_port} "))
            .replace("127.0.0.1:10143 ", &format!("{ip}:{imap_port} "))
            .replace("127.0.0.1:10993 ", &format!("{ip}:{imaps_port} "));
        std::fs::write(root.join("etc/master.cf"), master).unwrap();
        // Tests never ask the machine's DNS: by default a server that
        // answers every query with SERVFAIL, at once (loopback clients are
        // then `localhost`, and mail to other domains is deferred) unless a
        // test says where to send it (relayhost, or dns_nameservers of its
        // own). A server that never answered would cost each connection
        // the client name lookup's timeout.
        let dns = crate::dns::DnsServer::start("* SERVFAIL");
        {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(root.join("etc/main.cf"))
                .unwrap();
            writeln!(f, "dns_nameservers = {}\ndns_timeout = 1s", dns.addr).unwrap();
        }
        if !main_cf.is_empty() {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(root.join("etc/main.cf"))
                .unwrap();
            writeln!(f, "{main_cf}").unwrap();
        }
        Instance {
            dir,
            bin: PathBuf::from(ironpost),
            ip,
            port,
            submission_port,
            smtps_port,
            pop3_port,
            pop3s_port,
            imap_port,
            imaps_port,
            child: None,
            domain: domain.into(),
            user: "jerry".into(),
            _dns: dns,
        }
    }

    /// Appends lines to main.cf (before [`Instance::start`], or followed by
    /// a reload).
    pub fn append_main_cf(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.etc().join("main.cf"))
            .expect("open main.cf");
        writeln!(f, "{text}").expect("append to main.cf");
    }

    /// The instance's folder.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("demo")
    }

    /// The configuration directory.
    pub fn etc(&self) -> PathBuf {
        self.root().join("etc")
    }

    /// Starts `ironpost serve` and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already started");
        // The daemon's diagnostics go to a file (a pipe nobody reads could
        // fill up and stall it); failures quote it.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("open the daemon's stderr file");
        let child = std::process::Command::new(&self.bin)
            .arg("serve")
            .arg("-c")
            .arg(self.etc())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start ironpost serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(c) = &mut self.child
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "ironpost serve exited with {status}: {}",
                    std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
                );
            }
            // Ready when the control socket answers (the listeners are
            // bound before it opens); no SMTP connection is made, so the
            // tests see only their own sessions.
            if self.control("status").is_some_and(|r| r.starts_with("ok ")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "ironpost serve did not listen on port {} within 20 s",
            self.port
        );
    }

    /// One request on the daemon's control socket; `None` when nobody
    /// answers.
    pub fn control(&self, command: &str) -> Option<String> {
        use std::os::unix::net::UnixStream;
        let path = self.root().join("spool/public/ctl");
        let mut s = UnixStream::connect(path).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(format!("{command}\n").as_bytes()).ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        Some(reply.trim().to_string())
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// A new SMTP connection, greeting read.
    pub fn connect(&self) -> Smtp {
        let mut s = Smtp::connect_to(self.ip, self.port);
        let greeting = s.read_reply();
        assert!(
            greeting.starts_with("220 "),
            "greeting: {greeting:?} ({})\n{}",
            s.last_error.as_deref().unwrap_or("no read error"),
            self.diagnostics()
        );
        s
    }

    /// A new SMTP connection from the local address `source` (127.0.0.3,
    /// ...: a client host of its own), greeting read.
    pub fn connect_from(&self, source: std::net::IpAddr) -> Smtp {
        let mut s = Smtp::connect_from(source, self.ip, self.port);
        let greeting = s.read_reply();
        assert!(
            greeting.starts_with("220 "),
            "greeting: {greeting:?} ({})\n{}",
            s.last_error.as_deref().unwrap_or("no read error"),
            self.diagnostics()
        );
        s
    }

    /// Where the daemon's standard error goes.
    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("serve.stderr")
    }

    /// What a failing test should show: whether the daemon still runs, its
    /// standard error and the end of the mail log.
    pub fn diagnostics(&self) -> String {
        let state = match std::process::Command::new("kill")
            .args(["-0", &self.child.as_ref().map_or(0, |c| c.id()).to_string()])
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() && self.child.is_some() => "the daemon runs",
            _ => "the daemon is gone",
        };
        let log = self.maillog();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        format!(
            "{state}; its stderr:\n{}\nmail log (last lines):\n{}",
            std::fs::read_to_string(self.stderr_path()).unwrap_or_default(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// The mail log so far.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.root().join("log/maillog")).unwrap_or_default()
    }

    /// Waits until the mail log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.maillog();
            if log.contains(needle) {
                return log;
            }
            if Instant::now() > deadline {
                panic!("the mail log never showed {needle:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The Maildir `new/` files of a virtual user, sorted by name.
    pub fn maildir_new(&self, user: &str) -> Vec<PathBuf> {
        let dir = self
            .root()
            .join("vmail")
            .join(&self.domain)
            .join(user)
            .join("new");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        // In delivery order: `<secs>.M<usecs>...` names compared by their
        // numbers, as the server orders them (a plain string sort puts
        // M123456 before M99 within one second).
        v.sort_by_key(|p| delivery_key(p));
        v
    }

    /// Waits until `user` has `n` messages and returns their contents.
    pub fn wait_messages(&self, user: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let files = self.maildir_new(user);
            if files.len() >= n {
                return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            }
            if Instant::now() > deadline {
                panic!(
                    "{user} has {} messages, expected {n}; mail log:\n{}",
                    files.len(),
                    self.maillog()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Files in one queue directory (`incoming`, `deferred`, ...).
    pub fn queue_files(&self, queue: &str) -> Vec<PathBuf> {
        std::fs::read_dir(self.root().join("spool").join(queue))
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A raw SMTP client connection, line by line, as telnet.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    /// The last read error, if a read failed (a reply then reads as "").
    pub last_error: Option<String>,
}

impl Smtp {
    pub fn connect(port: u16) -> Smtp {
        Smtp::try_connect(port).expect("connect")
    }

    /// A connection to `ip:port`.
    pub fn connect_to(ip: std::net::IpAddr, port: u16) -> Smtp {
        Smtp::try_connect_to(ip, port).expect("connect")
    }

    /// A connection to `ip:port` from the local address `source` (std
    /// cannot bind a stream before connecting; tokio's socket can).
    pub fn connect_from(source: std::net::IpAddr, ip: std::net::IpAddr, port: u16) -> Smtp {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime to connect");
        let stream = rt
            .block_on(async {
                let socket = match source {
                    std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                    std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
                }?;
                socket.bind(std::net::SocketAddr::new(source, 0))?;
                socket.connect(std::net::SocketAddr::new(ip, port)).await
            })
            .and_then(|s| s.into_std())
            .unwrap_or_else(|e| panic!("connect from {source} to {ip}:{port}: {e}"));
        stream.set_nonblocking(false).unwrap();
        Smtp::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Smtp {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Smtp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
            last_error: None,
        }
    }

    /// Like [`Smtp::connect`], `None` when nobody listens.
    pub fn try_connect(port: u16) -> Option<Smtp> {
        Smtp::try_connect_to(std::net::IpAddr::from([127, 0, 0, 1]), port)
    }

    /// Like [`Smtp::connect_to`], `None` when nobody listens.
    pub fn try_connect_to(ip: std::net::IpAddr, port: u16) -> Option<Smtp> {
        let stream = TcpStream::connect((ip, port)).ok()?;
        Some(Smtp::from_stream(stream))
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one line, CRLF added.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// Reads one whole reply (all its lines), CRLFs included, or "" at EOF.
    pub fn read_reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return out,
                Err(e) => {
                    self.last_error = Some(e.to_string());
                    return out;
                }
                Ok(_) => {}
            }
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return out;
            }
        }
    }

    /// Sends a line and returns the reply without the final CRLF.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.read_reply().trim_end().to_string()
    }

    /// Whether the server closed the connection (EOF on read).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}
