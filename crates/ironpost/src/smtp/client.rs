//! One SMTP client connection (RFC 5321): replies read whole (multi-line
//! included), commands written, EHLO's extensions understood, STARTTLS
//! (RFC 3207) with rustls. Blocking, with a timeout per step: the caller
//! runs on a blocking thread.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Every line as received, without CRLF (`250-PIPELINING`, `250 OK`).
    pub lines: Vec<String>,
}

impl Reply {
    /// The lines joined with spaces, as Postfix quotes a reply in its log
    /// and in bounces: `550 5.1.1 <x@y>: Recipient address rejected`.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// The RFC 3463 code of the last line, when it has one whose class
    /// agrees with the reply code.
    pub fn enhanced(&self) -> Option<String> {
        let last = self.lines.last()?;
        let word = last.get(4..)?.split_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let ok = class.len() == 1
            && class.as_bytes()[0] == b'0' + (self.code / 100) as u8
            && parts.clone().count() == 2
            && parts
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| word.to_string())
    }

    /// The status for the log and bounces: the reply's own, else the
    /// generic one of its class.
    pub fn dsn(&self) -> String {
        self.enhanced().unwrap_or_else(|| match self.code / 100 {
            2 => "2.0.0".into(),
            4 => "4.0.0".into(),
            _ => "5.0.0".into(),
        })
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

/// What EHLO said the server supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub esmtp: bool,
    pub pipelining: bool,
    /// SIZE, with its limit (0: none given).
    pub size: Option<u64>,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub chunking: bool,
    pub starttls: bool,
}

impl Extensions {
    pub fn from_ehlo(r: &Reply) -> Extensions {
        let mut e = Extensions {
            esmtp: true,
            ..Default::default()
        };
        for line in r.lines.iter().skip(1) {
            let kw = line.get(4..).unwrap_or("");
            let mut words = kw.split_whitespace();
            let name = words.next().unwrap_or("").to_ascii_uppercase();
            match name.as_str() {
                "PIPELINING" => e.pipelining = true,
                "SIZE" => e.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => e.eightbitmime = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "DSN" => e.dsn = true,
                "CHUNKING" => e.chunking = true,
                "STARTTLS" => e.starttls = true,
                _ => {}
            }
        }
        e
    }
}

/// Why a step failed.
#[derive(Debug)]
pub enum StepError {
    /// The connection broke or closed.
    Lost,
    /// The peer did not answer in time.
    Timeout,
    /// The peer's reply could not be read as SMTP.
    Garbled(String),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The longest reply line read (RFC 5321 §4.5.3.1.5 says 512; be lenient).
const MAX_LINE: usize = 4096;
/// The most lines in one reply.
const MAX_LINES: usize = 200;

/// One connection to a server.
pub struct Client {
    io: BufReader<Stream>,
    /// The socket, for timeouts (shared with the stream).
    tcp: TcpStream,
    /// `host[address]:port`, for the log.
    pub relay: String,
    /// `host[address]`, for messages.
    pub peer: String,
    pub host: String,
    pub addr: SocketAddr,
    pub ext: Extensions,
    /// `TLSv1.3 with cipher ...` once TLS is on.
    pub tls: Option<String>,
    /// Messages sent on this connection (Postfix's conn_use).
    pub uses: u32,
}

fn map_io(e: io::Error) -> StepError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => StepError::Timeout,
        _ => StepError::Lost,
    }
}

impl Client {
    /// Connects to `addr`, from `bind` when given.
    pub fn connect(
        host: &str,
        addr: SocketAddr,
        bind: Option<IpAddr>,
        timeout: Duration,
    ) -> io::Result<Client> {
        let tcp = connect_tcp(addr, bind, timeout)?;
        let _ = tcp.set_nodelay(true);
        let stream = Stream::Plain(tcp.try_clone()?);
        let peer = format!("{host}[{}]", addr.ip());
        Ok(Client {
            io: BufReader::new(stream),
            tcp,
            relay: format!("{peer}:{}", addr.port()),
            peer,
            host: host.to_string(),
            addr,
            ext: Extensions::default(),
            tls: None,
            uses: 0,
        })
    }

    /// Reads one reply.
    pub fn reply(&mut self, timeout: Duration) -> Result<Reply, StepError> {
        let _ = self
            .tcp
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.io)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .map_err(map_io)?;
            if n == 0 {
                return Err(StepError::Lost);
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let code = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| StepError::Garbled(line.clone()))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() > MAX_LINES {
                return Err(StepError::Garbled("reply too long".into()));
            }
        }
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), StepError> {
        let _ = self
            .tcp
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))));
        let s = self.io.get_mut();
        s.write_all(bytes).map_err(map_io)?;
        s.flush().map_err(map_io)
    }

    /// Sends one command line and reads its reply.
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<Reply, StepError> {
        self.send(format!("{line}\r\n").as_bytes(), timeout)?;
        self.reply(timeout)
    }

    /// STARTTLS has been answered with 220: the TLS handshake, verifying
    /// the certificate as `config` says, for `server_name`.
    pub fn start_tls(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
        timeout: Duration,
    ) -> Result<Client, String> {
        if !self.io.buffer().is_empty() {
            // Bytes after 220 and before the handshake: a broken or
            // hostile server (RFC 3207 §4.2 forbids them).
            return Err("unexpected data after the STARTTLS reply".into());
        }
        let name = match rustls::pki_types::ServerName::try_from(server_name.to_string()) {
            Ok(n) => n,
            Err(_) => rustls::pki_types::ServerName::IpAddress(self.addr.ip().into()),
        };
        let conn = match rustls::ClientConnection::new(config, name) {
            Ok(c) => c,
            Err(e) => return Err(e.to_string()),
        };
        let _ = self.tcp.set_read_timeout(Some(timeout));
        let _ = self.tcp.set_write_timeout(Some(timeout));
        let tcp = match self.tcp.try_clone() {
            Ok(t) => t,
            Err(e) => return Err(e.to_string()),
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                return Err(e.to_string());
            }
        }
        let version = match tls.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        let (cipher, bits) = tls
            .conn
            .negotiated_cipher_suite()
            .map(|c| crate::tls::cipher_name(c.suite()))
            .unwrap_or_default();
        self.tls = Some(format!(
            "{version} with cipher {cipher} ({bits}/{bits} bits)"
        ));
        self.io = BufReader::new(Stream::Tls(Box::new(tls)));
        self.ext = Extensions::default();
        Ok(self)
    }

    /// Says goodbye without waiting long for the answer.
    pub fn quit(mut self, timeout: Duration) {
        let _ = self.command("QUIT", timeout.min(Duration::from_secs(5)));
    }
}

/// A TCP connection to `addr` within `timeout`, from `bind` when given
/// (tokio's socket does bind-then-connect; the stream is then used
/// blocking).
fn connect_tcp(addr: SocketAddr, bind: Option<IpAddr>, timeout: Duration) -> io::Result<TcpStream> {
    let fut = async move {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(ip) = bind {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        match tokio::time::timeout(timeout, socket.connect(addr)).await {
            Ok(Ok(s)) => s.into_std(),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "Connection timed out",
            )),
        }
    };
    let tcp = crate::bridge::block(fut, timeout + Duration::from_secs(5))
        .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e.0))??;
    tcp.set_nonblocking(false)?;
    Ok(tcp)
}

/// The bytes of a message as DATA sends them: lines starting with `.`
/// get another, the end is `CRLF.CRLF`. `content` has CRLF line ends.
pub fn dot_stuffed(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in content {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !content.is_empty() && !content.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> Reply {
        Reply {
            code: lines[0][..3].parse().unwrap(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn replies() {
        let r = reply(&["550-5.1.1 The account", "550 5.1.1 does not exist"]);
        assert_eq!(r.text(), "550-5.1.1 The account 550 5.1.1 does not exist");
        assert_eq!(r.dsn(), "5.1.1");
        assert!(r.is_permanent());
        assert_eq!(reply(&["451 try later"]).dsn(), "4.0.0");
        // A code of the wrong class is not taken.
        assert_eq!(reply(&["550 4.1.1 odd"]).dsn(), "5.0.0");
        assert_eq!(reply(&["250 2.0.0 Ok: queued as ABC"]).dsn(), "2.0.0");
    }

    #[test]
    fn ehlo_extensions() {
        let r = reply(&[
            "250-mx.example",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-STARTTLS",
            "250-8BITMIME",
            "250-DSN",
            "250-SMTPUTF8",
            "250 CHUNKING",
        ]);
        let e = Extensions::from_ehlo(&r);
        assert!(e.pipelining && e.starttls && e.eightbitmime && e.dsn && e.smtputf8 && e.chunking);
        assert_eq!(e.size, Some(10240000));
        let e = Extensions::from_ehlo(&reply(&["250 mx.example"]));
        assert_eq!(
            e,
            Extensions {
                esmtp: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(
            dot_stuffed(b"a\r\n.b\r\n..\r\n"),
            b"a\r\n..b\r\n...\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuffed(b"no end"), b"no end\r\n.\r\n");
    }
}
