//! smtp(8): delivery to other hosts over SMTP.
//!
//! ## Layout
//! - [`SmtpAgent::deliver`]: one message to one next hop, for up to
//!   default_destination_recipient_limit recipients: the mail exchangers
//!   in order, one SMTP transaction, an outcome per recipient.
//! - [`client`]: one connection: replies, commands, EHLO extensions,
//!   STARTTLS.
//! - [`tls`]: the TLS level per destination and rustls configurations.
//! - [`mime`]: 8-bit to quoted-printable for servers without 8BITMIME.
//!
//! The order of a delivery (RFC 5321 §5.1, Postfix's smtp_connect):
//! MX records sorted by preference, equal ones shuffled; when this host
//! is one of them, only better ones are used (and none at all is a mail
//! loop); no MX: the domain's own addresses; a null MX (RFC 7505) bounces.
//! `[host]` next hops skip the MX lookup. Each address is tried in turn,
//! up to smtp_mx_address_limit addresses and smtp_mx_session_limit
//! sessions, then smtp_fallback_relay. A temporary failure before the
//! message is accepted (connection refused, 4xx greeting or MAIL, lost
//! connection) moves on to the next address; a 5xx to MAIL bounces every
//! recipient; RCPT replies count per recipient.
//!
//! A connection that finished a transaction cleanly waits in a cache for
//! smtp_connection_cache_time_limit, for the next message to the same
//! next hop (checked with RSET first).

pub mod client;
pub mod mime;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ironpost_conf::{ConfError, Config, params};

use crate::dns::{Dns, DnsError};
use crate::local::{Message, Outcome, Status};
use crate::maps::MapContext;
use crate::queue::{Envelope, Recipient};
use crate::transport::Nexthop;
use client::{Client, Extensions, Reply, StepError};
use tls::{ClientTls, Level};

/// The SMTP client's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub helo_name: String,
    pub myhostname: String,
    pub port: u16,
    pub ipv4: bool,
    pub ipv6: bool,
    pub bind4: Option<IpAddr>,
    pub bind6: Option<IpAddr>,
    pub connect_timeout: Duration,
    pub helo_timeout: Duration,
    pub starttls_timeout: Duration,
    pub mail_timeout: Duration,
    pub rcpt_timeout: Duration,
    pub data_init_timeout: Duration,
    pub data_xfer_timeout: Duration,
    pub data_done_timeout: Duration,
    pub quit_timeout: Duration,
    pub rset_timeout: Duration,
    pub mx_address_limit: usize,
    pub mx_session_limit: usize,
    pub skip_5xx_greeting: bool,
    pub cache_on_demand: bool,
    pub cache_time_limit: Duration,
    pub fallback_relay: Vec<Nexthop>,
    pub destination_concurrency: usize,
    pub rate_delay: Duration,
    /// Where this server listens: a mail exchanger there is ourselves.
    pub own_addresses: Vec<SocketAddr>,
}

fn service_port(s: &str) -> Option<u16> {
    match s.trim() {
        "smtp" => Some(25),
        "submission" => Some(587),
        "smtps" | "submissions" => Some(465),
        n => n.parse().ok(),
    }
}

impl Settings {
    pub fn from_config(
        cfg: &Config,
        own_addresses: Vec<SocketAddr>,
    ) -> Result<Settings, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        let bad = |p: &ironpost_conf::Param, v: String, expected: &str| {
            ConfError::new(ironpost_conf::ErrorKind::BadValue {
                value: v,
                expected: expected.into(),
            })
            .for_param(p.name)
        };
        let port_text = s(params::SMTP_TCP_PORT)?;
        let port = service_port(&port_text)
            .ok_or_else(|| bad(params::SMTP_TCP_PORT, port_text, "a port number or smtp"))?;
        let bind = |p: &'static ironpost_conf::Param| -> Result<Option<IpAddr>, ConfError> {
            let v = s(p)?;
            if v.is_empty() {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| bad(p, v, "an IP address of this host"))
        };
        let protocols = cfg.get_list(params::INET_PROTOCOLS)?;
        let all = protocols.iter().any(|p| p == "all");
        let limit = |p| -> Result<usize, ConfError> {
            Ok(usize::try_from(cfg.get_int(p)?).unwrap_or(usize::MAX))
        };
        let mut fallback = Vec::new();
        for h in cfg.get_list(params::SMTP_FALLBACK_RELAY)? {
            fallback.push(Nexthop::parse(&h).ok_or_else(|| {
                bad(
                    params::SMTP_FALLBACK_RELAY,
                    h.clone(),
                    "host, host:port, [host] or [host]:port",
                )
            })?);
        }
        Ok(Settings {
            helo_name: s(params::SMTP_HELO_NAME)?,
            myhostname: s(params::MYHOSTNAME)?.to_lowercase(),
            port,
            ipv4: all || protocols.iter().any(|p| p == "ipv4"),
            ipv6: all || protocols.iter().any(|p| p == "ipv6"),
            bind4: bind(params::SMTP_BIND_ADDRESS)?,
            bind6: bind(params::SMTP_BIND_ADDRESS6)?,
            connect_timeout: cfg.get_time(params::SMTP_CONNECT_TIMEOUT)?,
            helo_timeout: cfg.get_time(params::SMTP_HELO_TIMEOUT)?,
            starttls_timeout: cfg.get_time(params::SMTP_STARTTLS_TIMEOUT)?,
            mail_timeout: cfg.get_time(params::SMTP_MAIL_TIMEOUT)?,
            rcpt_timeout: cfg.get_time(params::SMTP_RCPT_TIMEOUT)?,
            data_init_timeout: cfg.get_time(params::SMTP_DATA_INIT_TIMEOUT)?,
            data_xfer_timeout: cfg.get_time(params::SMTP_DATA_XFER_TIMEOUT)?,
            data_done_timeout: cfg.get_time(params::SMTP_DATA_DONE_TIMEOUT)?,
            quit_timeout: cfg.get_time(params::SMTP_QUIT_TIMEOUT)?,
            rset_timeout: cfg.get_time(params::SMTP_RSET_TIMEOUT)?,
            mx_address_limit: limit(params::SMTP_MX_ADDRESS_LIMIT)?,
            mx_session_limit: limit(params::SMTP_MX_SESSION_LIMIT)?,
            skip_5xx_greeting: cfg.get_bool(params::SMTP_SKIP_5XX_GREETING)?,
            cache_on_demand: cfg.get_bool(params::SMTP_CONNECTION_CACHE_ON_DEMAND)?,
            cache_time_limit: cfg.get_time(params::SMTP_CONNECTION_CACHE_TIME_LIMIT)?,
            fallback_relay: fallback,
            destination_concurrency: limit(params::DEFAULT_DESTINATION_CONCURRENCY_LIMIT)?.max(1),
            rate_delay: cfg.get_time(params::DEFAULT_DESTINATION_RATE_DELAY)?,
            own_addresses,
        })
    }
}

/// One delivery: a message, some of its recipients, one next hop.
pub struct Job<'a> {
    pub msg: &'a Message<'a>,
    pub env: &'a Envelope,
    pub recipients: Vec<&'a Recipient>,
    pub nexthop: &'a Nexthop,
    /// The transport's name (`smtp`, `relay`): the log's program name.
    pub transport: &'a str,
    /// When the transaction (MAIL FROM) began: what came before is the
    /// connection setup (DNS, connect, greeting, EHLO, TLS), Postfix's `c`
    /// in `delays=a/b/c/d`; set by the delivery.
    pub transaction_start: std::cell::Cell<Option<Instant>>,
    /// Writes a line to the mail log as the transport (TLS sessions).
    pub log: &'a dyn Fn(&str),
}

/// A failure that applies to every recipient not yet finished.
#[derive(Debug, Clone)]
struct Failure {
    dsn: String,
    text: String,
    relay: String,
    /// The server and its reply, for bounces.
    remote: Option<(String, String)>,
}

impl Failure {
    fn temp(dsn: &str, text: impl Into<String>) -> Failure {
        Failure {
            dsn: dsn.into(),
            text: text.into(),
            relay: "none".into(),
            remote: None,
        }
    }

    fn permanent(&self) -> bool {
        self.dsn.starts_with('5')
    }

    /// The failure of a reply to `command`.
    fn said(c: &Client, r: &Reply, command: &str) -> Failure {
        Failure {
            dsn: r.dsn(),
            text: format!(
                "host {} said: {} (in reply to {command} command)",
                c.peer,
                r.text()
            ),
            relay: c.relay.clone(),
            remote: Some((c.host.clone(), r.text())),
        }
    }

    fn step(c: &Client, e: &StepError, doing: &str) -> Failure {
        let text = match e {
            StepError::Timeout => format!("conversation with {} timed out while {doing}", c.peer),
            StepError::Lost => format!("lost connection with {} while {doing}", c.peer),
            StepError::Garbled(line) => format!(
                "host {} sent a malformed reply while {doing}: {}",
                c.peer,
                line.chars().take(100).collect::<String>()
            ),
        };
        Failure {
            dsn: if matches!(e, StepError::Garbled(_)) {
                "4.5.0".into()
            } else {
                "4.4.2".into()
            },
            text,
            relay: c.relay.clone(),
            remote: None,
        }
    }

    fn outcome(&self, to: &str, program: &str) -> Outcome {
        Outcome {
            to: to.to_string(),
            status: if self.permanent() {
                Status::Bounced
            } else {
                Status::Deferred
            },
            dsn: self.dsn.clone(),
            text: self.text.clone(),
            relay: self.relay.clone(),
            program: Some(program.to_string()),
            remote: self.remote.clone(),
        }
    }
}

/// What one session (one connection) came to.
enum Session {
    /// Every recipient has an outcome; the connection is fit for reuse
    /// when given back.
    Done(Vec<Outcome>, Option<Box<Client>>),
    /// Nothing was delivered; the next address may do better.
    Next(Failure),
    /// Nothing can be delivered anywhere (a permanent failure for all).
    Fatal(Failure),
}

/// Where a session connects.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    addr: SocketAddr,
}

/// The SMTP client with its connection cache.
pub struct SmtpAgent {
    s: Settings,
    dns: Dns,
    tls: ClientTls,
    cache: Mutex<HashMap<String, Vec<(Instant, Client)>>>,
    /// Deliveries running per next hop, and when the last one started.
    busy: Mutex<HashMap<String, (usize, Option<Instant>)>>,
    freed: Condvar,
}

impl std::fmt::Debug for SmtpAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpAgent")
            .field("settings", &self.s)
            .finish_non_exhaustive()
    }
}

/// Whether a message has bytes outside ASCII.
fn is_8bit(content: &[u8]) -> bool {
    content.iter().any(|b| *b >= 0x80)
}

impl SmtpAgent {
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        own_addresses: Vec<SocketAddr>,
    ) -> Result<SmtpAgent, ConfError> {
        Ok(SmtpAgent {
            s: Settings::from_config(cfg, own_addresses)?,
            dns: Dns::from_config(cfg)?,
            tls: ClientTls::from_config(cfg, ctx)?,
            cache: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// The DNS resolver the client uses.
    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// Delivers `job`; an outcome per recipient, in order.
    pub fn deliver(&self, job: &Job<'_>) -> Vec<Outcome> {
        let key = format!("{}:{}", job.transport, job.nexthop);
        self.enter(&key);
        let out = self.deliver_inner(job, &key);
        self.leave(&key);
        out
    }

    /// Waits for a free slot of the destination (and its rate delay).
    fn enter(&self, key: &str) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let e = busy.entry(key.to_string()).or_insert((0, None));
            if e.0 < self.s.destination_concurrency {
                e.0 += 1;
                let wait = match e.1 {
                    Some(last) if !self.s.rate_delay.is_zero() => {
                        self.s.rate_delay.saturating_sub(last.elapsed())
                    }
                    _ => Duration::ZERO,
                };
                e.1 = Some(Instant::now() + wait);
                drop(busy);
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                return;
            }
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn leave(&self, key: &str) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = busy.get_mut(key) {
            e.0 = e.0.saturating_sub(1);
        }
        drop(busy);
        self.freed.notify_all();
    }

    fn deliver_inner(&self, job: &Job<'_>, key: &str) -> Vec<Outcome> {
        let all = |f: &Failure| -> Vec<Outcome> {
            job.recipients
                .iter()
                .map(|r| f.outcome(&r.address, job.transport))
                .collect()
        };
        let level = match self.tls.level_for(job.nexthop) {
            Ok(l) => l,
            Err(e) => return all(&Failure::temp("4.3.0", e.0)),
        };
        // A connection left open by the previous delivery.
        // A transaction that finished leaves the session ready for the
        // next MAIL (RFC 5321 §4.1.4): no RSET first. A connection the
        // server has dropped meanwhile fails at MAIL, before anything is
        // accepted, and a fresh one is made.
        while let Some(c) = self.take_cached(key) {
            match self.transaction(c, job) {
                Session::Done(outcomes, back) => {
                    self.put_back(key, back);
                    return outcomes;
                }
                Session::Fatal(f) => return all(&f),
                // The cached connection went bad: the next one, or afresh.
                Session::Next(_) => {}
            }
        }
        let targets = match self.targets(job.nexthop) {
            Ok(t) => t,
            Err(f) => return all(&f),
        };
        let mut last: Option<Failure> = None;
        let mut sessions = 0;
        let mut tried = 0;
        let mut lists = vec![targets];
        for hop in &self.s.fallback_relay {
            if hop != job.nexthop {
                match self.targets(hop) {
                    Ok(t) => lists.push(t),
                    Err(f) => last = last.or(Some(f)),
                }
            }
        }
        for (i, targets) in lists.into_iter().enumerate() {
            if i > 0 {
                // Fallback relays get their own budget.
                sessions = 0;
                tried = 0;
            }
            for t in targets {
                if self.s.mx_address_limit > 0 && tried >= self.s.mx_address_limit {
                    break;
                }
                if self.s.mx_session_limit > 0 && sessions >= self.s.mx_session_limit {
                    break;
                }
                tried += 1;
                match self.session(&t, job, level) {
                    Ok(Session::Done(outcomes, back)) => {
                        self.put_back(key, back);
                        return outcomes;
                    }
                    Ok(Session::Fatal(f)) => return all(&f),
                    Ok(Session::Next(f)) => {
                        sessions += 1;
                        last = Some(f);
                    }
                    Err(f) => last = Some(f),
                }
            }
        }
        let f =
            last.unwrap_or_else(|| Failure::temp("4.4.1", "no mail exchanger could be reached"));
        // Every address failed: whatever the last one said, try again later
        // unless it was final.
        all(&f)
    }

    fn take_cached(&self, key: &str) -> Option<Client> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let limit = self.s.cache_time_limit;
        let mut stale = Vec::new();
        for list in cache.values_mut() {
            let (old, fresh): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|(t, _)| t.elapsed() >= limit);
            stale.extend(old.into_iter().map(|(_, c)| c));
            *list = fresh;
        }
        cache.retain(|_, l| !l.is_empty());
        let c = cache.get_mut(key).and_then(|l| l.pop()).map(|(_, c)| c);
        drop(cache);
        for s in stale {
            s.quit(self.s.quit_timeout);
        }
        c
    }

    fn put_back(&self, key: &str, c: Option<Box<Client>>) {
        let Some(c) = c.map(|b| *b) else { return };
        if !self.s.cache_on_demand || self.s.cache_time_limit.is_zero() {
            c.quit(self.s.quit_timeout);
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let list = cache.entry(key.to_string()).or_default();
        if list.len() >= self.s.destination_concurrency {
            drop(cache);
            c.quit(self.s.quit_timeout);
            return;
        }
        list.push((Instant::now(), c));
    }

    /// The addresses to try for a next hop, in order.
    fn targets(&self, hop: &Nexthop) -> Result<Vec<Target>, Failure> {
        let port = hop.port.unwrap_or(self.s.port);
        if let Ok(ip) = hop.host.parse::<IpAddr>() {
            return Ok(vec![Target {
                host: ip.to_string(),
                addr: SocketAddr::new(ip, port),
            }]);
        }
        let dns_failure = |name: &str, ty: &str, e: &DnsError| -> Failure {
            match e {
                // In Postfix's words already: "Host or domain name not found.
                // Name service error for name=... type=...: ..., try again".
                DnsError::Failed(text) => Failure::temp("4.4.3", text.clone()),
                _ => Failure {
                    dsn: "5.4.4".into(),
                    text: format!(
                        "Host or domain name not found. Name service error for name={name} type={ty}: Host not found"
                    ),
                    relay: "none".into(),
                    remote: None,
                },
            }
        };
        let hosts: Vec<String> = if !hop.mx {
            vec![hop.host.clone()]
        } else {
            match self.dns.mx(&hop.host) {
                Ok(mxs) if mxs.iter().any(|m| m.is_null()) => {
                    return Err(Failure {
                        dsn: "5.1.10".into(),
                        text: format!("Domain {} does not accept mail (nullMX)", hop.host),
                        relay: "none".into(),
                        remote: None,
                    });
                }
                Ok(mxs) if !mxs.is_empty() => {
                    let mut mxs = shuffle_ties(mxs);
                    // We are one of them: only better ones will do.
                    if let Some(ours) = mxs
                        .iter()
                        .filter(|m| m.exchange == self.s.myhostname)
                        .map(|m| m.preference)
                        .min()
                    {
                        mxs.retain(|m| m.preference < ours);
                        if mxs.is_empty() {
                            return Err(Failure {
                                dsn: "5.4.6".into(),
                                text: format!("mail for {} loops back to myself", hop.host),
                                relay: "none".into(),
                                remote: None,
                            });
                        }
                    }
                    mxs.into_iter().map(|m| m.exchange).collect()
                }
                Ok(_) | Err(DnsError::NoData) => vec![hop.host.clone()],
                Err(e) => return Err(dns_failure(&hop.host, "MX", &e)),
            }
        };
        let mut out = Vec::new();
        let mut failure: Option<Failure> = None;
        let mut ourselves = false;
        for h in hosts {
            match self.dns.addresses(&h, self.s.ipv4, self.s.ipv6) {
                Ok(ips) => {
                    for ip in ips {
                        if self.s.own_addresses.contains(&SocketAddr::new(ip, port)) {
                            ourselves = true;
                            continue;
                        }
                        out.push(Target {
                            host: h.clone(),
                            addr: SocketAddr::new(ip, port),
                        });
                    }
                }
                Err(e) => {
                    let f = dns_failure(&h, "A", &e);
                    // A temporary failure wins over a final one.
                    if failure.as_ref().is_none_or(|old| old.permanent()) {
                        failure = Some(f);
                    }
                }
            }
        }
        if out.is_empty() {
            if ourselves {
                return Err(Failure {
                    dsn: "5.4.6".into(),
                    text: format!("mail for {} loops back to myself", hop.host),
                    relay: "none".into(),
                    remote: None,
                });
            }
            return Err(failure.unwrap_or_else(|| {
                Failure::temp("4.4.4", format!("no address for {}", hop.host))
            }));
        }
        Ok(out)
    }

    /// One connection to `t`: greeting, EHLO, STARTTLS, the transaction.
    fn session(&self, t: &Target, job: &Job<'_>, level: Level) -> Result<Session, Failure> {
        let s = &self.s;
        let bind = if t.addr.is_ipv4() { s.bind4 } else { s.bind6 };
        let mut c = Client::connect(&t.host, t.addr, bind, s.connect_timeout).map_err(|e| {
            Failure::temp(
                "4.4.1",
                format!(
                    "connect to {}[{}]:{}: {}",
                    t.host,
                    t.addr.ip(),
                    t.addr.port(),
                    connect_reason(&e)
                ),
            )
        })?;
        let greeting = match c.reply(s.helo_timeout) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Session::Next(Failure::step(
                    &c,
                    &e,
                    "receiving the initial server greeting",
                )));
            }
        };
        if !greeting.is_positive() {
            let mut f = Failure::said(&c, &greeting, "");
            f.text = format!("host {} refused to talk to me: {}", c.peer, greeting.text());
            if greeting.is_permanent() && !s.skip_5xx_greeting {
                return Ok(Session::Fatal(f));
            }
            if f.permanent() {
                f.dsn = format!("4{}", &f.dsn[1..]);
            }
            c.quit(s.quit_timeout);
            return Ok(Session::Next(f));
        }
        let mut c = match self.hello(c) {
            Ok(c) => c,
            Err(session) => return Ok(session),
        };
        if level != Level::None {
            if c.ext.starttls {
                match c.command("STARTTLS", s.starttls_timeout) {
                    Ok(r) if r.code == 220 => {
                        let config = match level {
                            Level::Verify | Level::Secure => match &self.tls.verified {
                                Ok(v) => v.clone(),
                                Err(why) => {
                                    return Ok(Session::Next(Failure::temp("4.7.5", why.clone())));
                                }
                            },
                            _ => self.tls.any.clone(),
                        };
                        let name = if level == Level::Secure {
                            job.nexthop.host.clone()
                        } else {
                            c.host.clone()
                        };
                        c = match c.start_tls(config, &name, s.starttls_timeout) {
                            Ok(c) => {
                                // Postfix's words: Verified when the
                                // certificate was checked, else Anonymous.
                                let trust = if matches!(level, Level::Verify | Level::Secure) {
                                    "Verified"
                                } else {
                                    "Anonymous"
                                };
                                (job.log)(&format!(
                                    "{trust} TLS connection established to {}: {}",
                                    c.relay,
                                    c.tls.as_deref().unwrap_or("TLS")
                                ));
                                c
                            }
                            Err(why) => {
                                let text = if matches!(level, Level::Verify | Level::Secure)
                                    && why.contains("certificate")
                                {
                                    format!(
                                        "Server certificate not verified: {}[{}]: {why}",
                                        t.host,
                                        t.addr.ip()
                                    )
                                } else {
                                    format!(
                                        "Cannot start TLS: handshake failure with {}[{}]: {why}",
                                        t.host,
                                        t.addr.ip()
                                    )
                                };
                                let f = Failure {
                                    dsn: "4.7.5".into(),
                                    text,
                                    relay: format!("{}[{}]:{}", t.host, t.addr.ip(), t.addr.port()),
                                    remote: None,
                                };
                                if level == Level::May {
                                    // As Postfix: the same server again, in plaintext.
                                    return self.plaintext_session(t, job, f);
                                }
                                return Ok(Session::Next(f));
                            }
                        };
                        c = match self.hello(c) {
                            Ok(c) => c,
                            Err(session) => return Ok(session),
                        };
                    }
                    Ok(r) if level.required() => {
                        c.quit(s.quit_timeout);
                        return Ok(Session::Next(Failure::said_tls(&t.host, t, &r)));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Ok(Session::Next(Failure::step(&c, &e, "sending STARTTLS")));
                    }
                }
            } else if level.required() {
                let f = Failure {
                    dsn: "4.7.4".into(),
                    text: format!("TLS is required, but was not offered by host {}", c.peer),
                    relay: c.relay.clone(),
                    remote: None,
                };
                c.quit(s.quit_timeout);
                return Ok(Session::Next(f));
            }
        }
        Ok(self.transaction(c, job))
    }

    /// The same server once more without TLS (level may, after a failed
    /// handshake).
    fn plaintext_session(
        &self,
        t: &Target,
        job: &Job<'_>,
        why: Failure,
    ) -> Result<Session, Failure> {
        let s = &self.s;
        let bind = if t.addr.is_ipv4() { s.bind4 } else { s.bind6 };
        let Ok(mut c) = Client::connect(&t.host, t.addr, bind, s.connect_timeout) else {
            return Ok(Session::Next(why));
        };
        match c.reply(s.helo_timeout) {
            Ok(r) if r.is_positive() => {}
            _ => return Ok(Session::Next(why)),
        }
        match self.hello(c) {
            Ok(c) => Ok(self.transaction(c, job)),
            Err(session) => Ok(session),
        }
    }

    /// EHLO, or HELO when EHLO is refused.
    fn hello(&self, mut c: Client) -> Result<Client, Session> {
        let s = &self.s;
        let tls = c.tls.clone();
        match c.command(&format!("EHLO {}", s.helo_name), s.helo_timeout) {
            Ok(r) if r.code == 250 => {
                c.ext = Extensions::from_ehlo(&r);
                c.tls = tls;
                return Ok(c);
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Session::Next(Failure::step(
                    &c,
                    &e,
                    "performing the EHLO handshake",
                )));
            }
        }
        match c.command(&format!("HELO {}", s.helo_name), s.helo_timeout) {
            Ok(r) if r.code == 250 => {
                c.ext = Extensions::default();
                Ok(c)
            }
            Ok(r) => {
                let f = Failure::said(&c, &r, "HELO");
                c.quit(s.quit_timeout);
                Err(if f.permanent() {
                    Session::Fatal(f)
                } else {
                    Session::Next(f)
                })
            }
            Err(e) => Err(Session::Next(Failure::step(
                &c,
                &e,
                "performing the HELO handshake",
            ))),
        }
    }

    /// MAIL, RCPT, DATA (or BDAT) on a greeted connection.
    fn transaction(&self, mut c: Client, job: &Job<'_>) -> Session {
        let s = &self.s;
        if job.transaction_start.get().is_none() {
            job.transaction_start.set(Some(Instant::now()));
        }
        let env = job.env;
        let mut content = std::borrow::Cow::Borrowed(job.msg.content);
        let eight = is_8bit(&content);
        if let Some(limit) = c.ext.size.filter(|l| *l > 0)
            && content.len() as u64 > limit
        {
            let f = Failure {
                dsn: "5.3.4".into(),
                text: format!(
                    "message size {} exceeds size limit {limit} of server {}",
                    content.len(),
                    c.peer
                ),
                relay: c.relay.clone(),
                remote: None,
            };
            c.quit(s.quit_timeout);
            return Session::Fatal(f);
        }
        let utf8 = env.attr("smtputf8") == Some("yes");
        if utf8 && !c.ext.smtputf8 {
            let f = Failure {
                dsn: "5.6.7".into(),
                text: format!(
                    "SMTPUTF8 is required, but was not offered by host {}",
                    c.peer
                ),
                relay: c.relay.clone(),
                remote: None,
            };
            c.quit(s.quit_timeout);
            return Session::Fatal(f);
        }
        if eight && !c.ext.eightbitmime && !utf8 {
            // RFC 6152 §3: a server without 8BITMIME gets 7-bit MIME.
            content = std::borrow::Cow::Owned(mime::downgrade(&content));
        }
        let mut mail = format!("MAIL FROM:<{}>", env.sender);
        if c.ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", content.len()));
        }
        if c.ext.eightbitmime && (is_8bit(&content) || env.attr("body") == Some("8BITMIME")) {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        if c.ext.dsn {
            if let Some(ret) = env.attr("ret") {
                mail.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = env.attr("envid") {
                // Kept as received: already xtext.
                mail.push_str(&format!(" ENVID={envid}"));
            }
        }
        let rcpt_lines: Vec<String> = job
            .recipients
            .iter()
            .map(|r| {
                let mut l = format!("RCPT TO:<{}>", r.address);
                if c.ext.dsn {
                    if let Some(n) = &r.notify {
                        l.push_str(&format!(" NOTIFY={n}"));
                    }
                    if let Some(o) = &r.orcpt {
                        l.push_str(&format!(" ORCPT={o}"));
                    }
                }
                l
            })
            .collect();
        // With PIPELINING, MAIL, every RCPT and DATA (or BDAT with the
        // message) go in one write (RFC 2920 §3.1: DATA ends the group;
        // RFC 3030 §4.2: BDAT may be pipelined, a refused chunk is
        // discarded by the server).
        let mail_reply;
        let mut rcpt_replies = Vec::with_capacity(rcpt_lines.len());
        let mut pipelined_data = false;
        if c.ext.pipelining {
            let mut batch = format!("{mail}\r\n").into_bytes();
            for l in &rcpt_lines {
                batch.extend_from_slice(l.as_bytes());
                batch.extend_from_slice(b"\r\n");
            }
            if c.ext.chunking {
                batch.extend_from_slice(format!("BDAT {} LAST\r\n", content.len()).as_bytes());
                batch.extend_from_slice(&content);
            } else {
                batch.extend_from_slice(b"DATA\r\n");
            }
            pipelined_data = true;
            if let Err(e) = c.send(&batch, s.mail_timeout) {
                return Session::Next(Failure::step(&c, &e, "sending MAIL FROM"));
            }
            mail_reply = match c.reply(s.mail_timeout) {
                Ok(r) => r,
                Err(e) => return Session::Next(Failure::step(&c, &e, "sending MAIL FROM")),
            };
            for _ in &rcpt_lines {
                match c.reply(s.rcpt_timeout) {
                    Ok(r) => rcpt_replies.push(r),
                    Err(e) => return Session::Next(Failure::step(&c, &e, "sending RCPT TO")),
                }
            }
        } else {
            mail_reply = match c.command(&mail, s.mail_timeout) {
                Ok(r) => r,
                Err(e) => return Session::Next(Failure::step(&c, &e, "sending MAIL FROM")),
            };
            if mail_reply.is_positive() {
                for l in &rcpt_lines {
                    match c.command(l, s.rcpt_timeout) {
                        Ok(r) => rcpt_replies.push(r),
                        Err(e) => return Session::Next(Failure::step(&c, &e, "sending RCPT TO")),
                    }
                }
            }
        }
        // The reply to the pipelined DATA or BDAT.
        let data_reply = if pipelined_data {
            match c.reply(if c.ext.chunking {
                s.data_done_timeout
            } else {
                s.data_init_timeout
            }) {
                Ok(r) => Some(r),
                Err(e) => return Session::Next(Failure::step(&c, &e, "sending DATA command")),
            }
        } else {
            None
        };
        if !mail_reply.is_positive() {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                // A server that took DATA anyway gets an empty message.
                let _ = c.send(b".\r\n", s.data_xfer_timeout);
                let _ = c.reply(s.data_done_timeout);
            }
            let f = Failure::said(&c, &mail_reply, "MAIL FROM");
            let _ = c.command("RSET", s.rset_timeout);
            c.quit(s.quit_timeout);
            return if f.permanent() {
                Session::Fatal(f)
            } else {
                Session::Next(f)
            };
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; job.recipients.len()];
        let mut accepted = Vec::new();
        for (i, r) in rcpt_replies.iter().enumerate() {
            if r.is_positive() {
                accepted.push(i);
            } else {
                outcomes[i] = Some(
                    Failure::said(&c, r, "RCPT TO")
                        .outcome(&job.recipients[i].address, job.transport),
                );
            }
        }
        let finish = |outcomes: Vec<Option<Outcome>>| -> Vec<Outcome> {
            outcomes
                .into_iter()
                .map(|o| o.expect("every recipient has an outcome"))
                .collect()
        };
        if accepted.is_empty() {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                let _ = c.send(b".\r\n", s.data_xfer_timeout);
                let _ = c.reply(s.data_done_timeout);
            }
            let reusable = c
                .command("RSET", s.rset_timeout)
                .is_ok_and(|r| r.code == 250);
            return Session::Done(finish(outcomes), reusable.then(|| Box::new(c)));
        }
        let relay_for_log = |c: &Client| {
            if c.uses > 0 {
                format!("{}, conn_use={}", c.relay, c.uses + 1)
            } else {
                c.relay.clone()
            }
        };
        let final_reply = if let Some(r) = data_reply.clone().filter(|_| c.ext.chunking) {
            // BDAT went with the recipients: its reply is the verdict.
            Ok(r)
        } else if let Some(r) = data_reply {
            // DATA went with the recipients.
            if r.code != 354 {
                let f = Failure::said(&c, &r, "DATA");
                let reusable = c
                    .command("RSET", s.rset_timeout)
                    .is_ok_and(|r| r.code == 250);
                return Session::Done(
                    self.fill(outcomes, &accepted, job, &f),
                    reusable.then(|| Box::new(c)),
                );
            }
            if let Err(e) = c.send(&client::dot_stuffed(&content), s.data_xfer_timeout) {
                return Session::Done(
                    self.fill(
                        outcomes,
                        &accepted,
                        job,
                        &Failure::step(&c, &e, "sending message body"),
                    ),
                    None,
                );
            }
            c.reply(s.data_done_timeout)
        } else if c.ext.chunking {
            let head = format!("BDAT {} LAST\r\n", content.len());
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&content);
            if let Err(e) = c.send(&bytes, s.data_xfer_timeout) {
                return Session::Done(
                    self.fill(
                        outcomes,
                        &accepted,
                        job,
                        &Failure::step(&c, &e, "sending message body"),
                    ),
                    None,
                );
            }
            c.reply(s.data_done_timeout)
        } else {
            match c.command("DATA", s.data_init_timeout) {
                Ok(r) if r.code == 354 => {}
                Ok(r) => {
                    let f = Failure::said(&c, &r, "DATA");
                    let reusable = c
                        .command("RSET", s.rset_timeout)
                        .is_ok_and(|r| r.code == 250);
                    return Session::Done(
                        self.fill(outcomes, &accepted, job, &f),
                        reusable.then(|| Box::new(c)),
                    );
                }
                Err(e) => {
                    return Session::Done(
                        self.fill(
                            outcomes,
                            &accepted,
                            job,
                            &Failure::step(&c, &e, "sending DATA command"),
                        ),
                        None,
                    );
                }
            }
            if let Err(e) = c.send(&client::dot_stuffed(&content), s.data_xfer_timeout) {
                return Session::Done(
                    self.fill(
                        outcomes,
                        &accepted,
                        job,
                        &Failure::step(&c, &e, "sending message body"),
                    ),
                    None,
                );
            }
            c.reply(s.data_done_timeout)
        };
        let r = match final_reply {
            Ok(r) => r,
            Err(e) => {
                let f = Failure::step(
                    &c,
                    &e,
                    "sending end of data -- message may be sent more than once",
                );
                return Session::Done(self.fill(outcomes, &accepted, job, &f), None);
            }
        };
        if r.is_positive() {
            let relay = relay_for_log(&c);
            for &i in &accepted {
                outcomes[i] = Some(Outcome {
                    to: job.recipients[i].address.clone(),
                    status: Status::Sent,
                    dsn: r.dsn(),
                    text: r.text(),
                    relay: relay.clone(),
                    program: Some(job.transport.to_string()),
                    remote: None,
                });
            }
            c.uses += 1;
            Session::Done(finish(outcomes), Some(Box::new(c)))
        } else {
            let mut f = Failure::said(&c, &r, "end of DATA");
            f.relay = relay_for_log(&c);
            Session::Done(self.fill(outcomes, &accepted, job, &f), Some(Box::new(c)))
        }
    }

    /// Gives the accepted recipients the same failure.
    fn fill(
        &self,
        mut outcomes: Vec<Option<Outcome>>,
        accepted: &[usize],
        job: &Job<'_>,
        f: &Failure,
    ) -> Vec<Outcome> {
        for &i in accepted {
            outcomes[i] = Some(f.outcome(&job.recipients[i].address, job.transport));
        }
        outcomes
            .into_iter()
            .enumerate()
            .map(|(i, o)| o.unwrap_or_else(|| f.outcome(&job.recipients[i].address, job.transport)))
            .collect()
    }
}

impl Failure {
    fn said_tls(host: &str, t: &Target, r: &Reply) -> Failure {
        Failure {
            dsn: "4.7.4".into(),
            text: format!(
                "TLS is required, but host {host}[{}] refused to start TLS: {}",
                t.addr.ip(),
                r.text()
            ),
            relay: format!("{host}[{}]:{}", t.addr.ip(), t.addr.port()),
            remote: Some((host.to_string(), r.text())),
        }
    }
}

/// Postfix's words for a failed connect.
fn connect_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            "Connection timed out".into()
        }
        _ => ironpost_conf::io_reason(e),
    }
}

/// MX records in preference order, equal preferences in random order
/// (RFC 5321 §5.1).
fn shuffle_ties(mut mxs: Vec<crate::dns::Mx>) -> Vec<crate::dns::Mx> {
    mxs.sort_by_key(|m| m.preference);
    let mut i = 0;
    while i < mxs.len() {
        let mut j = i + 1;
        while j < mxs.len() && mxs[j].preference == mxs[i].preference {
            j += 1;
        }
        // Fisher-Yates over mxs[i..j].
        for k in (i + 1..j).rev() {
            let mut b = [0u8; 4];
            let _ = getrandom::fill(&mut b);
            let r = i + (u32::from_le_bytes(b) as usize) % (k - i + 1);
            mxs.swap(k, r);
        }
        i = j;
    }
    mxs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_preferences_are_shuffled_within_their_rank() {
        let mx = |p: u16, e: &str| crate::dns::Mx {
            preference: p,
            exchange: e.into(),
        };
        let mut seen_first = std::collections::HashSet::new();
        for _ in 0..200 {
            let v = shuffle_ties(vec![mx(20, "c"), mx(10, "a"), mx(10, "b"), mx(30, "d")]);
            let prefs: Vec<u16> = v.iter().map(|m| m.preference).collect();
            assert_eq!(prefs, vec![10, 10, 20, 30]);
            assert_eq!((v[2].exchange.as_str(), v[3].exchange.as_str()), ("c", "d"));
            seen_first.insert(v[0].exchange.clone());
        }
        assert_eq!(seen_first.len(), 2, "both equal MX come first sometimes");
    }
}
