//! An in-process authoritative DNS server for tests, on UDP and TCP of
//! 127.0.0.1 with a port the system picks, running on a thread of its own
//! with its own tokio runtime (so synchronous tests can use it). It stops
//! when dropped.
//!
//! Its records come from a zone text, one record a line, `#` comments and
//! blank lines ignored, names absolute (a trailing dot is allowed) and
//! case-insensitive:
//!
//! ```text
//! example.com       MX    10 mx1.example.com
//! null.example      MX    0 .                    # a null MX (RFC 7505)
//! mx1.example.com   A     127.0.0.2
//! mx1.example.com   AAAA  ::1
//! 2.0.0.127.in-addr.arpa PTR mx1.example.com
//! 127.0.0.3         PTR   mx3.example.com        # the same, by address
//! example.com       TXT   "v=spf1 -all"          # quotes optional
//! long.example      TXT   "first part" "second"  # several strings
//! www.example.com   CNAME mx1.example.com
//! broken.example    SERVFAIL                     # every query: SERVFAIL
//! silent.example    TIMEOUT                      # never answered
//! *                 SERVFAIL                     # every other name too
//! ```
//!
//! `*` stands for every name that the zone does not list (nor lists names
//! below): with SERVFAIL or TIMEOUT it is the answer to everything else.
//!
//! Every record has TTL 0. Answers are authoritative (AA). A name with
//! records of other types only, or with names below it only, answers
//! NOERROR without records (NODATA); a name not in the zone at all answers
//! NXDOMAIN; both carry an SOA (TTL 0, minimum 0) in the authority
//! section. A CNAME is answered with the records of the asked type of its
//! target, when there are any, after it. [`DnsServer::set_zone`] replaces
//! the records while the server runs. A malformed line panics, naming it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// A running server; stops when dropped.
pub struct DnsServer {
    /// Where it listens, on UDP and TCP.
    pub addr: SocketAddr,
    zone: Arc<RwLock<Zone>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Starts a server answering from `zone` (see the module doc).
    pub fn start(zone: &str) -> DnsServer {
        let zone = Arc::new(RwLock::new(Zone::parse(zone)));
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("the DNS server's address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = Handler { zone: zone.clone() };
        let thread = std::thread::Builder::new()
            .name("testkit-dns".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the DNS server");
                rt.block_on(async move {
                    let mut server = Server::new(handler);
                    server.register_socket(
                        tokio::net::UdpSocket::from_std(udp).expect("register the UDP socket"),
                    );
                    server.register_listener(
                        tokio::net::TcpListener::from_std(tcp).expect("register the TCP socket"),
                        Duration::from_secs(5),
                        64,
                    );
                    // Dropping the server (and then the runtime) ends its
                    // tasks and closes the sockets.
                    let _ = stopped.await;
                    drop(server);
                });
            })
            .expect("start the DNS server's thread");
        DnsServer {
            addr,
            zone,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Replaces every record by those of `zone`; the next query sees them.
    pub fn set_zone(&self, zone: &str) {
        let parsed = Zone::parse(zone);
        *self.zone.write().unwrap_or_else(|e| e.into_inner()) = parsed;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free port of 127.0.0.1.
fn bind_pair() -> (std::net::UdpSocket, std::net::TcpListener) {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        let port = udp.local_addr().expect("a UDP address").port();
        if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            udp.set_nonblocking(true).expect("non-blocking UDP");
            tcp.set_nonblocking(true).expect("non-blocking TCP");
            return (udp, tcp);
        }
    }
    panic!("no port of 127.0.0.1 free for both UDP and TCP");
}

/// The records, by lower-case absolute name (`mx1.example.com.`).
#[derive(Default)]
struct Zone {
    records: HashMap<String, Vec<Record>>,
    /// Every name in the zone and every name above one (down to the root).
    names: HashSet<String>,
    servfail: HashSet<String>,
    silent: HashSet<String>,
    /// `* SERVFAIL` / `* TIMEOUT`: the answer to names not in the zone.
    otherwise: Option<Failure>,
}

/// The answer of `* SERVFAIL` and `* TIMEOUT`.
#[derive(Clone, Copy)]
enum Failure {
    Silent,
    ServFail,
}

/// What a query gets.
enum Answer {
    /// Nothing, ever.
    Silent,
    ServFail,
    /// NOERROR or NXDOMAIN, with the answer section.
    Records(ResponseCode, Vec<Record>),
}

fn key(name: &Name) -> String {
    name.to_lowercase().to_ascii()
}

impl Zone {
    fn parse(text: &str) -> Zone {
        let mut zone = Zone::default();
        zone.names.insert(".".into());
        for (i, line) in text.lines().enumerate() {
            let bad = |why: &str| -> ! { panic!("zone line {}: {why}: {line:?}", i + 1) };
            let (words, rest) = tokens(line).unwrap_or_else(|why| bad(why));
            let Some((owner, _)) = words.first() else {
                continue;
            };
            if owner == "*" {
                zone.otherwise = match words.get(1).map(|(w, _)| w.to_ascii_uppercase()) {
                    Some(w) if w == "SERVFAIL" && words.len() == 2 => Some(Failure::ServFail),
                    Some(w) if w == "TIMEOUT" && words.len() == 2 => Some(Failure::Silent),
                    _ => bad("* takes SERVFAIL or TIMEOUT only"),
                };
                continue;
            }
            let name = match owner.parse::<IpAddr>() {
                Ok(ip) => Name::from(ip),
                Err(_) => parse_name(owner).unwrap_or_else(|| bad("bad name")),
            };
            let Some((rtype, _)) = words.get(1) else {
                bad("no type");
            };
            let data = &words[2..];
            let k = key(&name);
            let mut above = name.clone();
            while !above.is_root() {
                zone.names.insert(key(&above));
                above = above.base_name();
            }
            let one = |n: usize| -> &str {
                if data.len() != n {
                    bad(&format!("{rtype} takes {n} value(s)"));
                }
                &data[0].0
            };
            let rdata = match rtype.to_ascii_uppercase().as_str() {
                "SERVFAIL" | "TIMEOUT" if !data.is_empty() => bad("no value expected"),
                "SERVFAIL" => {
                    zone.servfail.insert(k);
                    continue;
                }
                "TIMEOUT" => {
                    zone.silent.insert(k);
                    continue;
                }
                "A" => RData::A(A(one(1)
                    .parse()
                    .unwrap_or_else(|_| bad("bad IPv4 address")))),
                "AAAA" => RData::AAAA(AAAA(
                    one(1).parse().unwrap_or_else(|_| bad("bad IPv6 address")),
                )),
                "MX" => {
                    one(2);
                    let preference = data[0].0.parse().unwrap_or_else(|_| bad("bad preference"));
                    let exchange = parse_name(&data[1].0).unwrap_or_else(|| bad("bad exchange"));
                    RData::MX(MX::new(preference, exchange))
                }
                "PTR" => RData::PTR(PTR(parse_name(one(1)).unwrap_or_else(|| bad("bad name")))),
                "CNAME" => {
                    RData::CNAME(CNAME(parse_name(one(1)).unwrap_or_else(|| bad("bad name"))))
                }
                "TXT" => {
                    let strings: Vec<String> = if data.iter().any(|(_, quoted)| *quoted) {
                        data.iter().map(|(s, _)| s.clone()).collect()
                    } else {
                        vec![rest.to_string()]
                    };
                    // A character-string holds 255 bytes at most: longer
                    // texts (DKIM keys) are split, as zone files do.
                    let mut chunks: Vec<&[u8]> = Vec::new();
                    for s in &strings {
                        if s.is_empty() {
                            chunks.push(b"");
                        }
                        chunks.extend(s.as_bytes().chunks(255));
                    }
                    RData::TXT(TXT::from_bytes(chunks))
                }
                _ => bad("unknown type"),
            };
            zone.records
                .entry(k)
                .or_default()
                .push(Record::from_rdata(name, 0, rdata));
        }
        zone
    }

    fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let k = key(qname);
        if self.silent.contains(&k) {
            return Answer::Silent;
        }
        if self.servfail.contains(&k) {
            return Answer::ServFail;
        }
        let mut answers = Vec::new();
        let mut name = k;
        // Follow CNAMEs, a few hops at most (a loop ends there).
        for _ in 0..8 {
            let records = self.records.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            let matching: Vec<&Record> = records
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .collect();
            if !matching.is_empty() {
                answers.extend(matching.into_iter().cloned());
                return Answer::Records(ResponseCode::NoError, answers);
            }
            let cname = records.iter().find_map(|r| match &r.data {
                RData::CNAME(CNAME(target)) => Some((r, target)),
                _ => None,
            });
            match cname {
                Some((record, target)) => {
                    answers.push(record.clone());
                    name = key(target);
                }
                None => break,
            }
        }
        let code = match self.names.contains(&name) {
            true => ResponseCode::NoError,
            false => match (self.otherwise, answers.is_empty()) {
                (Some(Failure::ServFail), true) => return Answer::ServFail,
                (Some(Failure::Silent), true) => return Answer::Silent,
                _ => ResponseCode::NXDomain,
            },
        };
        Answer::Records(code, answers)
    }
}

/// `name` (a trailing dot allowed; `.` is the root) as an absolute name.
fn parse_name(text: &str) -> Option<Name> {
    if text == "." {
        return Some(Name::root());
    }
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return None;
    }
    let mut name = Name::from_str_relaxed(text).ok()?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}

/// One word of a zone line: a quoted string (with `\"` and `\\` inside)
/// or a run of other characters.
type Word = (String, bool);

/// The words of a zone line (and whether each was quoted), up to a `#`
/// that starts a word, and the text after the second word (an unquoted
/// TXT value).
fn tokens(line: &str) -> Result<(Vec<Word>, &str), &'static str> {
    let mut words = Vec::new();
    let mut rest = "";
    let mut chars = line.char_indices().peekable();
    let mut end = line.len();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            end = at;
            break;
        }
        if words.len() == 2 {
            rest = &line[at..];
        }
        if c == '"' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted string"),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => word.push(c),
                        None => return Err("unterminated quoted string"),
                    },
                    Some((_, c)) => word.push(c),
                }
            }
            words.push((word, true));
        } else {
            let mut word = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            words.push((word, false));
        }
    }
    if !rest.is_empty() {
        let start = line.len() - rest.len();
        rest = line[start..end].trim_end();
    }
    Ok((words, rest))
}

/// The SOA of negative answers: TTL 0 and minimum 0, so that resolvers
/// cache no NXDOMAIN or NODATA answer.
fn soa() -> Record {
    let name = |s: &str| Name::from_ascii(s).expect("a fixed name");
    Record::from_rdata(
        Name::root(),
        0,
        RData::SOA(SOA::new(
            name("ns.testkit."),
            name("hostmaster.testkit."),
            1,
            3600,
            600,
            86400,
            0,
        )),
    )
}

struct Handler {
    zone: Arc<RwLock<Zone>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }

        let answer = if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            Err(ResponseCode::NotImp)
        } else {
            match request.request_info() {
                Ok(info) => {
                    let name = Name::from(info.query.name());
                    let zone = self.zone.read().unwrap_or_else(|e| e.into_inner());
                    Ok(zone.answer(&name, info.query.query_type()))
                }
                Err(_) => Err(ResponseCode::FormErr),
            }
        };
        let unanswered = |metadata| {
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        };
        let (code, records, authority) = match answer {
            Ok(Answer::Silent) => return unanswered(metadata),
            Ok(Answer::ServFail) => (ResponseCode::ServFail, Vec::new(), Vec::new()),
            Err(code) => (code, Vec::new(), Vec::new()),
            Ok(Answer::Records(code, records)) => {
                let negative = records.is_empty() || code == ResponseCode::NXDomain;
                (
                    code,
                    records,
                    if negative { vec![soa()] } else { Vec::new() },
                )
            }
        };
        metadata.response_code = code;
        let sent = response_handle
            .send_response(builder.build(
                metadata,
                records.iter(),
                std::iter::empty(),
                authority.iter(),
                std::iter::empty(),
            ))
            .await;
        sent.unwrap_or_else(|_| unanswered(metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_server::proto::op::{Message, Query};
    use std::io::{Read, Write};

    /// One query over UDP, the answer decoded.
    fn udp(server: &DnsServer, name: &str, rtype: RecordType) -> Message {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut query = Message::query();
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        socket
            .send_to(&query.to_vec().unwrap(), server.addr)
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        let answer = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(answer.metadata.id, query.metadata.id);
        answer
    }

    /// One query over TCP (two-byte length prefix).
    fn tcp(server: &DnsServer, name: &str, rtype: RecordType) -> Message {
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut query = Message::query();
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        let bytes = query.to_vec().unwrap();
        stream
            .write_all(&(bytes.len() as u16).to_be_bytes())
            .unwrap();
        stream.write_all(&bytes).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).unwrap();
        Message::from_vec(&buf).unwrap()
    }

    const ZONE: &str = "example.com MX 10 mx1.example.com\n\
                        mx1.example.com A 127.0.0.2   # a comment\n\
                        # a comment line\n\n\
                        www.example.com CNAME MX1.example.com.\n\
                        broken.example SERVFAIL\n\
                        silent.example TIMEOUT\n";

    #[test]
    fn answers_authoritatively_over_udp_and_tcp() {
        let server = DnsServer::start(ZONE);
        for m in [
            udp(&server, "example.com.", RecordType::MX),
            tcp(&server, "EXAMPLE.com.", RecordType::MX),
        ] {
            assert!(m.metadata.authoritative);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.answers.len(), 1);
            assert_eq!(m.answers[0].ttl, 0);
            assert_eq!(
                m.answers[0].data,
                RData::MX(MX::new(10, Name::from_ascii("mx1.example.com.").unwrap()))
            );
            assert!(m.authorities.is_empty());
        }
    }

    #[test]
    fn nodata_nxdomain_servfail_and_silence() {
        let server = DnsServer::start(ZONE);
        let m = udp(&server, "mx1.example.com.", RecordType::MX);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        let m = udp(&server, "com.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let m = udp(&server, "nosuch.example.com.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.metadata.authoritative);
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        let m = tcp(&server, "broken.example.", RecordType::TXT);
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut query = Message::query();
        query.add_query(Query::query(
            Name::from_ascii("silent.example.").unwrap(),
            RecordType::A,
        ));
        socket
            .send_to(&query.to_vec().unwrap(), server.addr)
            .unwrap();
        assert!(socket.recv(&mut [0u8; 512]).is_err());
    }

    #[test]
    fn a_default_failure_for_every_other_name() {
        let server = DnsServer::start("* SERVFAIL\nhost.example A 192.0.2.1\n");
        let m = udp(&server, "host.example.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        // A name above a listed one exists (NODATA), as without `*`.
        let m = udp(&server, "example.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        for name in ["other.example.", "1.0.0.127.in-addr.arpa."] {
            let m = udp(&server, name, RecordType::PTR);
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{name}");
        }
    }

    #[test]
    fn cname_then_target_records() {
        let server = DnsServer::start(ZONE);
        let m = udp(&server, "www.example.com.", RecordType::A);
        let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::A]);
        let m = udp(&server, "www.example.com.", RecordType::CNAME);
        assert_eq!(m.answers.len(), 1);
        let m = udp(&server, "www.example.com.", RecordType::MX);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
    }

    #[test]
    fn set_zone_replaces_the_records() {
        let server = DnsServer::start(ZONE);
        server.set_zone("other.example A 192.0.2.1\n");
        let m = udp(&server, "example.com.", RecordType::MX);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let m = udp(&server, "other.example.", RecordType::A);
        assert_eq!(m.answers.len(), 1);
    }

    #[test]
    fn zone_lines() {
        let z = Zone::parse(
            "a.example TXT \"x \\\"y\\\"\" \"z\"\nb.example TXT plain  text # c\n\
             192.0.2.1 PTR a.example\n2001:db8::1 PTR a.example\nnull.example MX 0 .\n",
        );
        let txt = |name: &str| match &z.records[name][0].data {
            RData::TXT(t) => t
                .txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>(),
            _ => panic!(),
        };
        assert_eq!(txt("a.example."), ["x \"y\"", "z"]);
        assert_eq!(txt("b.example."), ["plain  text"]);
        assert!(z.records.contains_key("1.2.0.192.in-addr.arpa."));
        assert!(z.names.contains("in-addr.arpa."));
        assert!(z.records.contains_key(
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        ));
        assert_eq!(
            z.records["null.example."][0].data,
            RData::MX(MX::new(0, Name::root()))
        );
    }

    #[test]
    #[should_panic(expected = "zone line 2: A takes 1 value(s): \"b.example A\"")]
    fn malformed_lines_panic_naming_the_line() {
        Zone::parse("a.example A 192.0.2.1\nb.example A\n");
    }

    #[test]
    #[should_panic(expected = "zone line 1: unknown type")]
    fn unknown_types_panic() {
        Zone::parse("a.example SRV 0 0 25 b.example\n");
    }
}
