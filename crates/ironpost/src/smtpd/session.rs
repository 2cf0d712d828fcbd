//! One SMTP session (RFC 5321) with one client, as Postfix's smtpd holds
//! it: the greeting, the commands in any order with Postfix's replies, the
//! transaction (MAIL, RCPT, DATA or BDAT), and the hand-over of the message
//! to cleanup and the queue. The 250 after the message is sent only once
//! the queue file is on disk and fsync'd.
//!
//! Replies are buffered and written when the client has nothing more
//! pipelined, so a client may send a whole transaction in one write
//! (RFC 2920).
//!
//! Before the greeting the client's host name is looked up
//! (smtpd_peername_lookup, [`super::peer`]). That lookup blocks on the DNS
//! (a PTR query, then the forward queries: each at most twice
//! dns_timeout), so it runs on a blocking thread (`spawn_blocking`) and
//! holds no tokio worker meanwhile, whatever the runtime; other sessions
//! go on. The restrictions' lookups later run inline through
//! [`crate::dns::Dns`], which steps aside with `block_in_place`.
//! `sendmail -bs` ([`run_local`]) looks nothing up: its client is
//! `localhost[127.0.0.1]`, as in Postfix's stand-alone mode.

use std::borrow::Cow;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironpost_conf::{ConfError, Config, params};
use ironpost_proto::smtp::command::{self, Command, MailParams, Ret};
use ironpost_proto::smtp::data::{self, BareLf, DataDecoder, Progress};
use ironpost_proto::smtp::line::LineBuffer;
use ironpost_proto::smtp::reply::{self, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use ironpost_proto::sasl::{self, Mechanism, SaslError};

use super::check::{Actions, Facts, Policy, Verdict};
use super::peer::{self, ClientNames, NameStatus};
use crate::auth::system::{Check, SystemAuth};
use crate::auth::throttle::{Limits, Throttle};
use crate::cleanup::{self, Origin, ReceivedFrom};
use crate::dns::Dns;
use crate::local::Status;
use crate::maillog::MailLog;
use crate::maps::MapContext;
use crate::maps::lists::DomainList;
use crate::maps::lists::NetworkList;
use crate::qmgr::Qmgr;
use crate::queue::{Envelope, Queue, QueueId, QueueName, Recipient};
use crate::resolve::Resolver;
use crate::tls::Conn;
use crate::virtual_alias::VirtualAliases;

/// The settings of an SMTP service (main.cf with the service's `-o`
/// overrides from master.cf).
#[derive(Debug)]
pub struct Settings {
    pub myhostname: String,
    pub banner: String,
    pub mail_name: String,
    pub syslog_name: String,
    pub message_size_limit: u64,
    pub line_length_limit: usize,
    pub recipient_limit: usize,
    pub timeout: Duration,
    pub data_timeout: Duration,
    pub hard_error_limit: u32,
    pub soft_error_limit: u32,
    pub error_sleep: Duration,
    pub helo_required: bool,
    pub bare_lf: BareLf,
    pub disable_vrfy: bool,
    /// EHLO keywords not announced, lower case.
    pub discard_ehlo: Vec<String>,
    pub header_size_limit: usize,
    pub hopcount_limit: usize,
    pub connection_count_limit: usize,
    pub fast_flush_domains: DomainList,
    /// smtpd_peername_lookup.
    pub peername_lookup: bool,
    /// smtpd_virtual_delivery: messages for virtual mailboxes only are
    /// delivered before the 250 instead of queued.
    pub virtual_delivery: bool,
}

/// SMTP AUTH (RFC 4954) settings, when smtpd_sasl_auth_enable = yes.
#[derive(Debug)]
pub struct Sasl {
    /// Offered mechanisms, in order.
    pub mechanisms: Vec<Mechanism>,
    /// smtpd_sasl_security_options / smtpd_sasl_tls_security_options
    /// contain noplaintext: PLAIN and LOGIN left out without / with TLS.
    pub noplaintext: bool,
    pub tls_noplaintext: bool,
    /// broken_sasl_auth_clients.
    pub broken_clients: bool,
    /// smtpd_tls_auth_only.
    pub tls_only: bool,
    /// disable_plaintext_auth.
    pub disable_plaintext: bool,
    /// login_trusted_networks.
    pub trusted: NetworkList,
    /// smtpd_sasl_local_domain.
    pub local_domain: String,
    pub accounts: Arc<SystemAuth>,
    /// Brute-force protection.
    pub limits: Limits,
}

/// smtpd_tls_security_level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsLevel {
    None,
    May,
    Encrypt,
}

/// An SMTP service: settings and restrictions.
pub struct Smtpd {
    pub settings: Settings,
    pub policy: Policy,
    pub resolver: Arc<Resolver>,
    pub sasl: Option<Sasl>,
    pub tls_level: TlsLevel,
    /// The certificate, when TLS is on (level may/encrypt or wrapper mode).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// smtpd_tls_wrappermode: TLS before the greeting.
    pub wrapper: bool,
    /// virtual_alias_maps, applied to the recipients before queueing.
    pub virtual_aliases: VirtualAliases,
}

impl std::fmt::Debug for Smtpd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtpd")
            .field("settings", &self.settings)
            .field("tls_level", &self.tls_level)
            .field("wrapper", &self.wrapper)
            .finish_non_exhaustive()
    }
}

impl Smtpd {
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        resolver: Arc<Resolver>,
        own_addresses: Vec<IpAddr>,
        dns: Dns,
    ) -> Result<Smtpd, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        let fast_flush_value = cfg.get_str(params::FAST_FLUSH_DOMAINS)?;
        let fast_flush_domains = DomainList::new(&fast_flush_value, false, ctx).map_err(|m| {
            ConfError::new(ironpost_conf::ErrorKind::BadValue {
                value: fast_flush_value.clone(),
                expected: m,
            })
            .for_param(params::FAST_FLUSH_DOMAINS.name)
        })?;
        let settings = Settings {
            myhostname: s(params::MYHOSTNAME)?,
            banner: s(params::SMTPD_BANNER)?,
            mail_name: s(params::MAIL_NAME)?,
            syslog_name: s(params::SYSLOG_NAME)?,
            message_size_limit: match cfg.get_size(params::MESSAGE_SIZE_LIMIT)? {
                0 => u64::MAX,
                n => n,
            },
            line_length_limit: cfg.get_int(params::LINE_LENGTH_LIMIT)? as usize,
            recipient_limit: cfg.get_int(params::SMTPD_RECIPIENT_LIMIT)? as usize,
            timeout: cfg.get_time(params::SMTPD_TIMEOUT)?,
            data_timeout: cfg.get_time(params::SMTPD_DATA_TIMEOUT)?,
            hard_error_limit: cfg.get_int(params::SMTPD_HARD_ERROR_LIMIT)? as u32,
            soft_error_limit: cfg.get_int(params::SMTPD_SOFT_ERROR_LIMIT)? as u32,
            error_sleep: cfg.get_time(params::SMTPD_ERROR_SLEEP_TIME)?,
            helo_required: cfg.get_bool(params::SMTPD_HELO_REQUIRED)?,
            bare_lf: match cfg.get_enum(params::SMTPD_FORBID_BARE_NEWLINE)?.as_str() {
                "reject" => BareLf::Reject,
                _ => BareLf::Normalize,
            },
            disable_vrfy: cfg.get_bool(params::DISABLE_VRFY_COMMAND)?,
            discard_ehlo: cfg
                .get_list(params::SMTPD_DISCARD_EHLO_KEYWORDS)?
                .into_iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            header_size_limit: cfg.get_size(params::HEADER_SIZE_LIMIT)? as usize,
            hopcount_limit: cfg.get_int(params::HOPCOUNT_LIMIT)? as usize,
            connection_count_limit: cfg.get_int(params::SMTPD_CLIENT_CONNECTION_COUNT_LIMIT)?
                as usize,
            fast_flush_domains,
            peername_lookup: cfg.get_bool(params::SMTPD_PEERNAME_LOOKUP)?,
            virtual_delivery: cfg.get_bool(params::SMTPD_VIRTUAL_DELIVERY)?,
        };
        let policy = Policy::from_config(cfg, ctx, resolver.clone(), own_addresses, dns)?;
        let sasl = if cfg.get_bool(params::SMTPD_SASL_AUTH_ENABLE)? {
            let trusted_value = cfg.get_str(params::LOGIN_TRUSTED_NETWORKS)?;
            let trusted = NetworkList::new(&trusted_value, ctx).map_err(|m| {
                ConfError::new(ironpost_conf::ErrorKind::BadValue {
                    value: trusted_value.clone(),
                    expected: m,
                })
                .for_param(params::LOGIN_TRUSTED_NETWORKS.name)
            })?;
            // SCRAM works for users whose password is stored in SCRAM form
            // ({SCRAM-SHA-256} in auth_passwd_file); others fail it.
            let mechanisms = cfg
                .get_list(params::AUTH_MECHANISMS)?
                .iter()
                .filter_map(|m| Mechanism::parse(m))
                .collect();
            let noplain = |p| -> Result<bool, ConfError> {
                Ok(cfg.get_list(p)?.iter().any(|o| o == "noplaintext"))
            };
            Some(Sasl {
                mechanisms,
                noplaintext: noplain(params::SMTPD_SASL_SECURITY_OPTIONS)?,
                tls_noplaintext: noplain(params::SMTPD_SASL_TLS_SECURITY_OPTIONS)?,
                broken_clients: cfg.get_bool(params::BROKEN_SASL_AUTH_CLIENTS)?,
                tls_only: cfg.get_bool(params::SMTPD_TLS_AUTH_ONLY)?,
                disable_plaintext: cfg.get_bool(params::DISABLE_PLAINTEXT_AUTH)?,
                trusted,
                local_domain: cfg
                    .get_str(params::SMTPD_SASL_LOCAL_DOMAIN)?
                    .trim()
                    .to_string(),
                accounts: Arc::new(SystemAuth::from_config(cfg)?),
                limits: Limits::from_config(cfg)?,
            })
        } else {
            None
        };
        let tls_level = match cfg.get_enum(params::SMTPD_TLS_SECURITY_LEVEL)?.as_str() {
            "may" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            _ => TlsLevel::None,
        };
        let wrapper = cfg.get_bool(params::SMTPD_TLS_WRAPPERMODE)?;
        let tls = if tls_level != TlsLevel::None || wrapper {
            let cert = cfg.get_str(params::SMTPD_TLS_CERT_FILE)?.trim().to_string();
            let key = cfg.get_str(params::SMTPD_TLS_KEY_FILE)?.trim().to_string();
            let bad = |msg: String| {
                ConfError::new(ironpost_conf::ErrorKind::BadValue {
                    value: cert.clone(),
                    expected: msg,
                })
                .for_param(params::SMTPD_TLS_CERT_FILE.name)
            };
            if cert.is_empty() {
                return Err(bad(
                    "a certificate file (TLS is on: smtpd_tls_security_level or smtpd_tls_wrappermode)"
                        .into(),
                ));
            }
            Some(
                crate::tls::server_config(std::path::Path::new(&cert), std::path::Path::new(&key))
                    .map_err(|m| bad(format!("a readable PEM certificate and key ({m})")))?,
            )
        } else {
            None
        };
        let virtual_aliases = VirtualAliases::from_config(cfg, ctx, resolver.clone())?;
        Ok(Smtpd {
            settings,
            policy,
            resolver,
            sasl,
            tls_level,
            tls,
            wrapper,
            virtual_aliases,
        })
    }

    fn offers(&self, keyword: &str) -> bool {
        !self.settings.discard_ehlo.iter().any(|k| k == keyword)
    }

    /// The mechanisms offered on a connection with or without TLS.
    pub fn mechanisms(&self, secure: bool) -> Vec<Mechanism> {
        let Some(sasl) = &self.sasl else {
            return Vec::new();
        };
        let noplain = if secure {
            sasl.tls_noplaintext
        } else {
            sasl.noplaintext
        };
        sasl.mechanisms
            .iter()
            .copied()
            .filter(|m| !(noplain && m.is_plaintext()))
            .filter(|m| secure || !m.is_plus())
            .collect()
    }

    /// The EHLO reply; `starttls` when it is offered, `auth` with the
    /// mechanisms offered (empty: no AUTH).
    pub fn ehlo_reply(&self, starttls: bool, auth: &[Mechanism]) -> Reply {
        let s = &self.settings;
        let mut lines = vec![s.myhostname.clone()];
        let mut add = |kw: &str, line: String| {
            if self.offers(kw) {
                lines.push(line);
            }
        };
        add("pipelining", "PIPELINING".into());
        add(
            "size",
            if s.message_size_limit == u64::MAX {
                "SIZE".into()
            } else {
                format!("SIZE {}", s.message_size_limit)
            },
        );
        if !s.disable_vrfy {
            add("vrfy", "VRFY".into());
        }
        add("etrn", "ETRN".into());
        if starttls {
            add("starttls", "STARTTLS".into());
        }
        if let (false, Some(sasl)) = (auth.is_empty(), &self.sasl) {
            let names: Vec<&str> = auth.iter().map(|m| m.name()).collect();
            add("auth", format!("AUTH {}", names.join(" ")));
            if sasl.broken_clients {
                add("auth", format!("AUTH={}", names.join(" ")));
            }
        }
        add("enhancedstatuscodes", "ENHANCEDSTATUSCODES".into());
        add("8bitmime", "8BITMIME".into());
        add("dsn", "DSN".into());
        add("smtputf8", "SMTPUTF8".into());
        add("chunking", "CHUNKING".into());
        Reply::multiline(250, lines)
    }
}

/// What a session tells the queue manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A message was queued in `incoming/`.
    Queued(crate::queue::QueueId),
    /// ETRN: deferred mail for this site is due now.
    Flush(String),
}

/// What every session shares: the queue, the log, and the way to reach
/// the queue manager.
pub struct Shared {
    pub queue: Queue,
    pub log: Arc<MailLog>,
    pub notify: Arc<dyn Fn(Notice) + Send + Sync>,
    /// The queue manager, when it runs in this process: it delivers what
    /// can be delivered before the 250 (smtpd_virtual_delivery).
    pub qmgr: Option<Arc<Qmgr>>,
}

impl Shared {
    /// Sessions inside the daemon: the queue manager is at hand.
    pub fn with_qmgr(queue: Queue, log: Arc<MailLog>, qmgr: Arc<Qmgr>) -> Shared {
        let q = qmgr.clone();
        Shared {
            queue,
            log,
            notify: Arc::new(move |n| match n {
                Notice::Queued(id) => q.submit(id),
                Notice::Flush(site) => q.flush_site(&site),
            }),
            qmgr: Some(qmgr),
        }
    }
}

/// A message taken: under its queue ID, in the queue or delivered already.
struct Accepted {
    id: QueueId,
    message_id: Option<String>,
    /// What must be committed before the 250.
    paths: Vec<std::path::PathBuf>,
    /// When delivered at once: the envelope, the content's size and each
    /// recipient's outcome (for the log).
    at_once: Option<(Envelope, usize, Vec<crate::qmgr::AtOnce>)>,
    /// The queue a file was written to, if any (`incoming/`: for the
    /// queue manager).
    file: Option<QueueName>,
}

/// Writes the queue file of a new message under a fresh ID (`content`
/// makes the message for the ID it is given), not committed.
fn queue_anew(
    queue: &Queue,
    into: QueueName,
    env: &Envelope,
    content: impl Fn(&QueueId) -> Vec<u8>,
) -> io::Result<Accepted> {
    let mut message_id = None;
    let id = queue.enqueue_uncommitted(into, env, |id| {
        let out = content(id);
        message_id = cleanup::message_id(&out);
        Cow::Owned(out)
    })?;
    Ok(Accepted {
        id,
        message_id,
        paths: vec![queue.dir(into)],
        at_once: None,
        file: Some(into),
    })
}

/// The envelope being built.
#[derive(Debug)]
struct Transaction {
    /// The sender as the client gave it (empty for `<>`).
    sender_given: String,
    params: MailParams,
    recipients: Vec<Recipient>,
    /// BDAT chunks so far.
    chunks: Option<Vec<u8>>,
    /// A BDAT chunk failed: the rest of the message is read and dropped.
    chunks_failed: bool,
    /// An access table said HOLD: the message goes to the hold queue.
    hold: bool,
    /// An access table said DISCARD: the message is taken and dropped.
    discard: bool,
}

/// How a session ended.
enum End {
    /// The client went away.
    Lost,
    /// No input within smtpd_timeout.
    Timeout,
    Io,
}

/// Counters of commands for the `disconnect` log line.
#[derive(Default)]
struct Counters {
    items: Vec<(&'static str, u32, u32)>,
}

const COUNTER_ORDER: &[&str] = &[
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy",
    "etrn", "help", "quit", "unknown",
];

impl Counters {
    fn add(&mut self, name: &'static str, ok: bool) {
        match self.items.iter_mut().find(|(n, _, _)| *n == name) {
            Some(slot) => {
                slot.1 += u32::from(ok);
                slot.2 += 1;
            }
            None => self.items.push((name, u32::from(ok), 1)),
        }
    }

    fn format(&self) -> String {
        let mut out = String::new();
        let (mut ok, mut total) = (0, 0);
        for name in COUNTER_ORDER {
            if let Some((_, o, t)) = self.items.iter().find(|(n, _, _)| n == name) {
                ok += o;
                total += t;
                if o == t {
                    out.push_str(&format!(" {name}={o}"));
                } else {
                    out.push_str(&format!(" {name}={o}/{t}"));
                }
            }
        }
        if ok == total {
            out.push_str(&format!(" commands={ok}"));
        } else {
            out.push_str(&format!(" commands={ok}/{total}"));
        }
        out
    }
}

/// A client's name before (or without) a lookup: `localhost` for the
/// loopback addresses, else `unknown`. Sessions look the name up
/// ([`super::peer`]); this is for messages about connections that get no
/// session.
pub fn client_name(addr: IpAddr) -> String {
    if addr.is_loopback() {
        "localhost".to_string()
    } else {
        "unknown".to_string()
    }
}

struct Session<'a, S> {
    io: Conn<S>,
    input: LineBuffer,
    out: Vec<u8>,
    smtpd: &'a Smtpd,
    shared: &'a Shared,
    client_addr: IpAddr,
    /// `names.name`, the `host` of `host[addr]`.
    client_name: String,
    names: ClientNames,
    helo: Option<String>,
    esmtp: bool,
    tx: Option<Transaction>,
    errors: u32,
    counters: Counters,
    improper_pipelining: bool,
    /// The last command, for `lost connection after X` (upper case).
    last: &'static str,
    /// The session's number in the mail log.
    number: u32,
    /// After AUTH: the login name and the mechanism.
    sasl_user: Option<String>,
    sasl_method: Option<&'static str>,
    /// The connection is encrypted (TLS).
    secure: bool,
}

/// Runs a session with a client at `client_addr` to its end, its names
/// looked up first (smtpd_peername_lookup).
pub async fn run<S>(io: S, client_addr: IpAddr, smtpd: Arc<Smtpd>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (names, warnings) = if smtpd.settings.peername_lookup {
        let dns = smtpd.policy.dns.clone();
        tokio::task::spawn_blocking(move || peer::lookup(&dns, client_addr))
            .await
            .unwrap_or_else(|_| (ClientNames::unknown(NameStatus::Temporary), Vec::new()))
    } else {
        (ClientNames::unknown(NameStatus::Permanent), Vec::new())
    };
    run_named(io, client_addr, names, &warnings, smtpd, shared).await
}

/// A session with the local user (`sendmail -bs`): `localhost[127.0.0.1]`
/// without a lookup, as Postfix's stand-alone smtpd.
pub async fn run_local<S>(io: S, smtpd: Arc<Smtpd>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let addr = IpAddr::from([127, 0, 0, 1]);
    run_named(io, addr, ClientNames::localhost(), &[], smtpd, shared).await
}

async fn run_named<S>(
    io: S,
    client_addr: IpAddr,
    names: ClientNames,
    warnings: &[String],
    smtpd: Arc<Smtpd>,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut s = Session {
        io: Conn::Plain(io),
        input: LineBuffer::new(),
        out: Vec::with_capacity(1024),
        smtpd: &smtpd,
        shared: &shared,
        client_addr,
        client_name: names.name.clone(),
        names,
        helo: None,
        esmtp: false,
        tx: None,
        errors: 0,
        counters: Counters::default(),
        improper_pipelining: false,
        last: "CONNECT",
        number: crate::maillog::session_number(),
        sasl_user: None,
        sasl_method: None,
        secure: false,
    };
    for w in warnings {
        s.log(w);
    }
    s.log(&format!("connect from {}", s.client()));
    let end = if let (true, Some(config)) = (s.smtpd.wrapper, s.smtpd.tls.clone()) {
        match s.handshake(config).await {
            Ok(()) => s.serve().await,
            Err(()) => Ok(()),
        }
    } else {
        s.serve().await
    };
    match end {
        Err(End::Lost | End::Io) => s.log(&format!(
            "lost connection after {} from {}",
            s.last,
            s.client()
        )),
        Err(End::Timeout) => {
            let r = reply::timeout(&s.settings().myhostname.clone());
            s.out.extend_from_slice(&r.encode());
            let _ = s.flush().await;
            s.log(&format!("timeout after {} from {}", s.last, s.client()));
        }
        Ok(()) => {}
    }
    // Logged before the last reply goes out, so that the next session of
    // a client that waits for 221 is logged after this one (log readers
    // such as pflogsumm pair connect and disconnect lines).
    s.log(&format!(
        "disconnect from {}{}",
        s.client(),
        s.counters.format()
    ));
    let _ = s.flush().await;
}

impl<S: AsyncRead + AsyncWrite + Unpin> crate::auth::sasl::Challenger for Session<'_, S> {
    type Stop = End;

    async fn challenge(&mut self, data: &[u8]) -> Result<Result<Vec<u8>, SaslError>, End> {
        Session::challenge(self, data).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    fn client(&self) -> String {
        format!("{}[{}]", self.client_name, self.client_addr)
    }

    fn log(&self, text: &str) {
        self.shared.log.log_as(
            &format!("{}/smtpd", self.smtpd.settings.syslog_name),
            self.number,
            text,
        );
    }

    /// What the restrictions know about this session and command.
    fn facts<'s>(&'s self, sender: Option<&'s str>, recipient: Option<&'s str>) -> Facts<'s> {
        Facts {
            client_addr: Some(self.client_addr),
            client_name: &self.client_name,
            reverse_client_name: &self.names.reverse_name,
            client_name_status: self.names.name_status,
            reverse_name_status: self.names.reverse_status,
            helo: self.helo.as_deref(),
            sender,
            recipient,
            sasl_username: self.sasl_user.as_deref(),
            improper_pipelining: self.improper_pipelining,
        }
    }

    /// Postfix's `NOQUEUE: reject:` line.
    fn log_reject(&self, command: &str, reply: &Reply, from: Option<&str>, to: Option<&str>) {
        self.log_whatsup("reject", command, &reply.text(), from, to);
    }

    /// What access tables asked for beside the verdict: Postfix's
    /// `NOQUEUE: warn:` line for each WARN, and a warning for PREPEND, not
    /// carried out yet, so that it is not ignored silently.
    fn log_actions(&self, command: &str, a: &Actions, from: Option<&str>, to: Option<&str>) {
        for line in &a.log {
            self.log(line);
        }
        for w in &a.warnings {
            self.log_whatsup("warn", command, w, from, to);
        }
        if !a.prepend.is_empty() {
            self.log(&format!(
                "warning: {command} from {}: access table action PREPEND is not supported; ignored",
                self.client()
            ));
        }
    }

    /// HOLD and DISCARD of an accepted command, for the transaction, with
    /// Postfix's `NOQUEUE: hold:` and `NOQUEUE: discard:` lines.
    fn take_actions(&mut self, command: &str, a: &Actions, to: Option<&str>) {
        let Some(tx) = &mut self.tx else {
            return;
        };
        tx.hold |= a.hold.is_some();
        tx.discard |= a.discard.is_some();
        let from = tx.sender_given.clone();
        for (what, text) in [("hold", &a.hold), ("discard", &a.discard)] {
            if let Some(text) = text {
                self.log_whatsup(what, command, text, Some(&from), to);
            }
        }
    }

    /// `NOQUEUE: WHAT: COMMAND from CLIENT: TEXT; from=<..> to=<..>
    /// proto=.. helo=<..>`, as Postfix's smtpd logs rejects and warnings.
    fn log_whatsup(
        &self,
        what: &str,
        command: &str,
        text: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) {
        let mut line = format!("NOQUEUE: {what}: {command} from {}: {text};", self.client());
        if let Some(f) = from {
            line.push_str(&format!(" from=<{f}>"));
        }
        if let Some(t) = to {
            line.push_str(&format!(" to=<{t}>"));
        }
        line.push_str(&format!(
            " proto={} helo=<{}>",
            self.proto(),
            self.helo.as_deref().unwrap_or("")
        ));
        self.log(&line);
    }

    fn settings(&self) -> &Settings {
        &self.smtpd.settings
    }

    /// Sends what is buffered.
    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let t = self.settings().timeout;
        let out = std::mem::take(&mut self.out);
        match tokio::time::timeout(t, self.io.write_all(&out)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(End::Lost),
            Err(_) => return Err(End::Timeout),
        }
        match tokio::time::timeout(t, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Lost),
            Err(_) => Err(End::Timeout),
        }
    }

    /// Flushes the replies, then reads more input. `Err(Lost)` at EOF.
    async fn fill(&mut self, deadline: Option<Instant>) -> Result<(), End> {
        self.flush().await?;
        let mut t = self.settings().timeout;
        if let Some(d) = deadline {
            t = t.min(d.saturating_duration_since(Instant::now()));
        }
        const CHUNK: usize = 16 * 1024;
        // Appends to the buffer's spare capacity: no zeroing per read.
        let target = self.input.read_target(CHUNK);
        let r = tokio::time::timeout(t, self.io.read_buf(target)).await;
        match r {
            Ok(Ok(0)) => Err(End::Lost),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(End::Io),
            Err(_) => Err(End::Timeout),
        }
    }

    /// Queues a reply; counts errors and pauses after too many.
    async fn reply(&mut self, r: Reply) {
        if r.code >= 400 {
            self.errors += 1;
            if self.errors > self.settings().soft_error_limit {
                // Slow down a client that keeps making errors.
                let _ = self.flush().await;
                tokio::time::sleep(self.settings().error_sleep).await;
            }
        }
        self.out.extend_from_slice(&r.encode());
    }

    async fn serve(&mut self) -> Result<(), End> {
        // Too many connections from this client?
        let greeting = reply::greeting(&self.settings().banner.clone());
        self.out.extend_from_slice(&greeting.encode());
        loop {
            let line = loop {
                match self.input.next_line(self.settings().line_length_limit) {
                    Some(l) => break l,
                    None => self.fill(None).await?,
                }
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            let closed = self.command(&line).await?;
            if closed {
                // The final reply is sent after the disconnect line is
                // logged (see `run`).
                return Ok(());
            }
            if self.errors >= self.settings().hard_error_limit {
                self.log(&format!(
                    "too many errors after {} from {}",
                    self.last,
                    self.client()
                ));
                let r = reply::too_many_errors(&self.settings().myhostname);
                self.out.extend_from_slice(&r.encode());
                return Ok(());
            }
        }
    }

    /// Handles one command line; `Ok(true)` when the session is over.
    async fn command(&mut self, line: &str) -> Result<bool, End> {
        let verb = command::verb_of(line);
        // State before syntax for the transaction commands, as Postfix.
        let early = match verb.as_str() {
            "MAIL" => {
                if self.settings().helo_required && self.helo.is_none() {
                    Some((
                        "mail",
                        Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"),
                    ))
                } else if self.tx.is_some() {
                    Some(("mail", reply::nested_mail()))
                } else {
                    None
                }
            }
            "RCPT" if self.tx.is_none() => Some(("rcpt", reply::need_mail())),
            "DATA" => match &self.tx {
                None => Some(("data", reply::need_rcpt())),
                Some(t) if t.recipients.is_empty() => Some(("data", reply::need_rcpt())),
                _ => None,
            },
            _ => None,
        };
        if let Some((name, r)) = early {
            self.last = upper(name);
            self.counters.add(name, false);
            self.reply(r).await;
            return Ok(false);
        }
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.last = upper(e.verb);
                self.counters.add(e.verb, false);
                let close = e.reply.close;
                self.reply(e.reply).await;
                return Ok(close);
            }
        };
        let name = cmd.name();
        self.last = upper(name);
        let r = match cmd {
            Command::Helo(name) => self.helo(name, false),
            Command::Ehlo(name) => self.helo(name, true),
            Command::Mail(addr, params) => self.mail(addr.into_string(), params),
            Command::Rcpt(addr, params) => self.rcpt(addr.into_string(), params),
            Command::Data => return self.data().await,
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Rset => {
                self.tx = None;
                reply::ok()
            }
            Command::Noop => reply::ok(),
            Command::Quit => {
                self.counters.add("quit", true);
                self.out.extend_from_slice(&reply::bye().encode());
                return Ok(true);
            }
            Command::Vrfy(arg) => self.vrfy(&arg),
            Command::Etrn(arg) => self.etrn(&arg),
            Command::Help => Reply::new(
                214,
                "2.0.0",
                "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY ETRN HELP",
            ),
            Command::StartTls => match self.starttls().await? {
                Some(r) => r,
                None => {
                    self.counters.add("starttls", true);
                    return Ok(false);
                }
            },
            Command::Auth(args) => {
                let r = self.auth(&args).await?;
                self.counters.add("auth", r.is_positive());
                let close = r.close;
                self.reply(r).await;
                return Ok(close);
            }
            Command::Expn(_) | Command::Unknown(_) => reply::not_recognized(),
        };
        let counted = match name {
            "expn" => "unknown",
            n => n,
        };
        self.counters.add(counted, r.code < 400);
        let close = r.close;
        self.reply(r).await;
        Ok(close)
    }

    fn helo(&mut self, name: String, esmtp: bool) -> Reply {
        // A new greeting ends any transaction (RFC 5321 §4.1.4).
        self.tx = None;
        if !self.input.pending().is_empty() {
            self.improper_pipelining = true;
        }
        // The first word is the name (Postfix keeps the whole argument).
        self.helo = Some(name);
        self.esmtp = esmtp;
        if esmtp {
            let mechanisms = if self.auth_offered() {
                self.smtpd.mechanisms(self.secure)
            } else {
                Vec::new()
            };
            self.smtpd.ehlo_reply(self.starttls_offered(), &mechanisms)
        } else {
            Reply::plain(250, self.settings().myhostname.clone())
        }
    }

    /// Whether STARTTLS is offered: TLS configured and not yet on.
    fn starttls_offered(&self) -> bool {
        self.smtpd.tls.is_some() && self.smtpd.tls_level != TlsLevel::None && !self.secure
    }

    /// The TLS handshake; logs as Postfix does.
    async fn handshake(&mut self, config: Arc<rustls::ServerConfig>) -> Result<(), ()> {
        let t = self.settings().timeout;
        match tokio::time::timeout(t, self.io.start_tls(config)).await {
            Ok(Ok(())) => {
                self.secure = true;
                self.log(&format!(
                    "Anonymous TLS connection established from {}: {}",
                    self.client(),
                    self.io.describe().unwrap_or_default()
                ));
                Ok(())
            }
            Ok(Err(e)) => {
                self.log(&format!("SSL_accept error from {}: {e}", self.client()));
                Err(())
            }
            Err(_) => {
                self.log(&format!(
                    "SSL_accept error from {}: timed out",
                    self.client()
                ));
                Err(())
            }
        }
    }

    /// STARTTLS (RFC 3207). Whatever the client sent after the command,
    /// before the handshake, is thrown away, never executed.
    async fn starttls(&mut self) -> Result<Option<Reply>, End> {
        let Some(config) = self.smtpd.tls.clone() else {
            return Ok(Some(reply::not_implemented()));
        };
        if self.smtpd.tls_level == TlsLevel::None {
            return Ok(Some(reply::not_implemented()));
        }
        if self.secure {
            return Ok(Some(Reply::new(554, "5.5.1", "Error: TLS already active")));
        }
        self.out
            .extend_from_slice(&Reply::new(220, "2.0.0", "Ready to start TLS").encode());
        self.flush().await?;
        let n = self.input.pending().len();
        self.input.consume(n);
        if self.handshake(config).await.is_err() {
            return Err(End::Lost);
        }
        // RFC 3207 §4.2: forget what was said before.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.sasl_user = None;
        self.sasl_method = None;
        Ok(None)
    }

    /// Whether AUTH is offered on this connection: enabled, and either
    /// encrypted or (unless smtpd_tls_auth_only) where plaintext passwords
    /// are allowed: disable_plaintext_auth = no, localhost, or
    /// login_trusted_networks.
    fn auth_offered(&self) -> bool {
        let Some(s) = &self.smtpd.sasl else {
            return false;
        };
        if self.secure {
            return true;
        }
        if s.tls_only || self.smtpd.tls_level == TlsLevel::Encrypt {
            return false;
        }
        !s.disable_plaintext
            || self.client_addr.is_loopback()
            || s.trusted.matches(self.client_addr).unwrap_or(false)
    }

    /// Reads one AUTH response line.
    async fn auth_line(&mut self) -> Result<String, End> {
        loop {
            if let Some(l) = self.input.next_line(self.settings().line_length_limit) {
                return Ok(String::from_utf8_lossy(&l).into_owned());
            }
            self.fill(None).await?;
        }
    }

    /// Sends a 334 challenge and reads the decoded answer.
    async fn challenge(&mut self, data: &[u8]) -> Result<Result<Vec<u8>, SaslError>, End> {
        let text = if data.is_empty() {
            String::new()
        } else {
            sasl::encode_challenge(data)
        };
        self.out
            .extend_from_slice(format!("334 {text}\r\n").as_bytes());
        let line = self.auth_line().await?;
        Ok(sasl::decode_response(&line))
    }

    /// AUTH (RFC 4954).
    async fn auth(&mut self, args: &str) -> Result<Reply, End> {
        let Some(sasl) = &self.smtpd.sasl else {
            return Ok(reply::auth_not_enabled());
        };
        if !self.auth_offered() {
            return Ok(Reply::new(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ));
        }
        if self.helo.is_none() {
            return Ok(Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"));
        }
        if self.tx.is_some() {
            return Ok(Reply::new(
                503,
                "5.5.1",
                "Error: MAIL transaction in progress",
            ));
        }
        if self.sasl_user.is_some() {
            return Ok(Reply::new(503, "5.5.1", "Error: already authenticated"));
        }
        let limits = sasl.limits;
        if Throttle::global().locked(self.client_addr, &limits, Instant::now()) {
            self.log(&format!(
                "warning: {}: SASL login refused: too many failed authentications",
                self.client()
            ));
            return Ok(Reply::new(
                454,
                "4.7.0",
                "Temporary authentication failure: too many failed logins, try again later",
            ));
        }
        let mut words = args.split_whitespace();
        let Some(name) = words.next() else {
            return Ok(Reply::new(501, "5.5.4", "Syntax: AUTH mechanism"));
        };
        let initial = words.next().map(str::to_string);
        let mech = match Mechanism::parse(name) {
            Some(m) if self.smtpd.mechanisms(self.secure).contains(&m) => m,
            _ => {
                return Ok(Reply::new(
                    535,
                    "5.7.8",
                    "Error: authentication failed: Invalid authentication mechanism",
                ));
            }
        };
        let initial = match initial.map(|i| sasl::decode_response(&i)).transpose() {
            Ok(i) => i,
            Err(e) => return Ok(sasl_error_reply(e)),
        };
        let accounts = sasl.accounts.clone();
        let local_domain = sasl.local_domain.clone();
        let complete = move |name: &str| {
            if !name.contains('@') && !local_domain.is_empty() {
                format!("{name}@{local_domain}")
            } else {
                name.to_string()
            }
        };
        let plus = match mech {
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Mechanism::ScramSha1Plus,
            _ => Mechanism::ScramSha256Plus,
        };
        let cx = crate::auth::sasl::Context {
            accounts: &accounts,
            channel_binding: self.io.channel_binding(),
            plus_offered: self.smtpd.mechanisms(self.secure).contains(&plus),
            complete: &complete,
        };
        let (login, check) = match crate::auth::sasl::authenticate(self, &cx, mech, initial).await?
        {
            crate::auth::sasl::Outcome::Checked { login, check } => (login, check),
            crate::auth::sasl::Outcome::AuthzRefused => {
                return Ok(self.auth_failed(mech, "authorization failure"));
            }
            crate::auth::sasl::Outcome::Error(e) => return Ok(sasl_error_reply(e)),
        };
        Ok(match check {
            Check::Accepted => {
                Throttle::global().succeeded(self.client_addr);
                self.sasl_user = Some(login);
                self.sasl_method = Some(mech.name());
                Reply::new(235, "2.7.0", "Authentication successful")
            }
            Check::Refused => {
                // Slow down guessing; then count it.
                let _ = self.flush().await;
                tokio::time::sleep(limits.delay).await;
                if Throttle::global().failed(self.client_addr, &limits, Instant::now()) {
                    self.log(&format!(
                        "warning: {}: too many failed authentications; logins refused for {}s",
                        self.client(),
                        limits.lockout.as_secs()
                    ));
                }
                self.auth_failed(mech, "authentication failure")
            }
            Check::Unavailable(why) => {
                self.log(&format!("warning: SASL authentication problem: {why}"));
                Reply::new(454, "4.7.0", "Temporary authentication failure")
            }
        })
    }

    fn auth_failed(&self, mech: Mechanism, why: &str) -> Reply {
        self.log(&format!(
            "warning: {}: SASL {} authentication failed: {why}",
            self.client(),
            mech.name()
        ));
        Reply::new(535, "5.7.8", format!("Error: authentication failed: {why}"))
    }

    fn mail(&mut self, sender: String, params: MailParams) -> Reply {
        if self.smtpd.tls_level == TlsLevel::Encrypt && !self.secure {
            return Reply::new(530, "5.7.0", "Must issue a STARTTLS command first");
        }
        let s = self.settings();
        if let Some(size) = params.size
            && size > s.message_size_limit
        {
            return reply::size_exceeds_limit();
        }
        if params.smtputf8 && !self.smtpd.offers("smtputf8") {
            return reply::unsupported_option("SMTPUTF8");
        }
        if (params.ret.is_some() || params.envid.is_some()) && !self.smtpd.offers("dsn") {
            return reply::unsupported_option(if params.ret.is_some() { "RET" } else { "ENVID" });
        }
        if params.body == Some(command::Body::BinaryMime) {
            return reply::unsupported_option("BODY=BINARYMIME");
        }
        self.tx = Some(Transaction {
            sender_given: sender,
            params,
            recipients: Vec::new(),
            chunks: None,
            chunks_failed: false,
            hold: false,
            discard: false,
        });
        reply::sender_ok()
    }

    fn proto(&self) -> &'static str {
        match (self.esmtp, self.secure, self.sasl_user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, false, true) => "ESMTPA",
            (true, true, false) => "ESMTPS",
            (true, true, true) => "ESMTPSA",
        }
    }

    fn rcpt(&mut self, rcpt: String, params: command::RcptParams) -> Reply {
        let Some(tx) = &self.tx else {
            return reply::need_mail();
        };
        if (params.notify.is_some() || params.orcpt.is_some()) && !self.smtpd.offers("dsn") {
            return reply::unsupported_option(if params.notify.is_some() {
                "NOTIFY"
            } else {
                "ORCPT"
            });
        }
        if tx.recipients.len() >= self.settings().recipient_limit {
            return reply::too_many_recipients();
        }
        let facts = self.facts(Some(&tx.sender_given), Some(&rcpt));
        let mut actions = Actions::default();
        let verdict = self.smtpd.policy.check_rcpt(&facts, &mut actions);
        self.log_actions("RCPT", &actions, Some(&tx.sender_given), Some(&rcpt));
        match verdict {
            Verdict::Reject(r) => {
                let reply = Reply::new(r.code, &r.status, r.text.clone());
                self.log_reject("RCPT", &reply, Some(&tx.sender_given), Some(&rcpt));
                return reply;
            }
            Verdict::Dunno | Verdict::Permit => {}
        }
        let address = self.smtpd.resolver.canonical(&rcpt);
        let mut r = Recipient::new(&address);
        r.original = rcpt;
        r.orcpt = params.orcpt;
        r.notify = params.notify;
        let to = r.original.clone();
        if let Some(tx) = &mut self.tx {
            tx.recipients.push(r);
        }
        self.take_actions("RCPT", &actions, Some(&to));
        reply::recipient_ok()
    }

    fn vrfy(&mut self, arg: &str) -> Reply {
        if self.settings().disable_vrfy {
            return reply::vrfy_disabled();
        }
        let arg = arg
            .strip_suffix(" SMTPUTF8")
            .or_else(|| arg.strip_suffix(" smtputf8"))
            .unwrap_or(arg)
            .trim();
        let addr = match ironpost_proto::smtp::address::parse_path(arg) {
            Ok(a) if !a.is_null() => a.into_string(),
            _ => return Reply::new(501, "5.1.3", "Bad recipient address syntax"),
        };
        let facts = self.facts(None, Some(&addr));
        if let Some(r) = self.smtpd.policy.check_vrfy(&facts) {
            let reply = Reply::new(r.code, &r.status, r.text.clone());
            self.log_reject("VRFY", &reply, None, Some(&addr));
            return reply;
        }
        Reply::new(252, "2.0.0", arg.to_string())
    }

    fn etrn(&mut self, arg: &str) -> Reply {
        if self.tx.is_some() {
            return Reply::new(503, "5.5.1", "Error: MAIL transaction in progress");
        }
        let domain = arg.trim_start_matches(['@', '#']).to_ascii_lowercase();
        match self.smtpd.settings.fast_flush_domains.matches(&domain) {
            Ok(true) => {
                (self.shared.notify)(Notice::Flush(domain.clone()));
                Reply::new(250, "2.0.0", "Queuing started")
            }
            _ => Reply::plain(459, format!("<{arg}>: service unavailable")),
        }
    }

    /// DATA: 354, the message, then the verdict.
    async fn data(&mut self) -> Result<bool, End> {
        let Some(tx) = &self.tx else {
            return Ok(false);
        };
        let facts = self.facts(Some(&tx.sender_given), None);
        let mut actions = Actions::default();
        let verdict = self.smtpd.policy.check_data(&facts, &mut actions);
        self.log_actions("DATA", &actions, Some(&tx.sender_given), None);
        if let Verdict::Reject(r) = verdict {
            let reply = Reply::new(r.code, &r.status, r.text.clone());
            self.log_reject("DATA", &reply, Some(&tx.sender_given), None);
            self.counters.add("data", false);
            self.reply(reply).await;
            return Ok(false);
        }
        self.take_actions("DATA", &actions, None);
        let Some(tx) = &self.tx else {
            return Ok(false);
        };
        if tx.chunks.is_some() {
            // DATA after BDAT in the same transaction (RFC 3030 §3).
            self.counters.add("data", false);
            self.reply(Reply::new(503, "5.5.1", "Error: DATA after BDAT"))
                .await;
            return Ok(false);
        }
        if self.input.has_pending() {
            self.improper_pipelining = true;
        }
        self.out.extend_from_slice(&reply::start_data().encode());
        let limit = self.settings().message_size_limit;
        let mut decoder = DataDecoder::new(limit);
        let deadline = Instant::now() + self.settings().data_timeout;
        loop {
            let pending = self.input.pending();
            if !pending.is_empty() {
                match decoder.feed(pending) {
                    Progress::Done(n) => {
                        self.input.consume(n);
                        break;
                    }
                    Progress::NeedMore => {
                        let n = pending.len();
                        self.input.consume(n);
                    }
                }
            }
            self.fill(Some(deadline)).await?;
        }
        let r = if decoder.too_big() {
            reply::message_too_big()
        } else if decoder.saw_bare_lf() && self.settings().bare_lf == BareLf::Reject {
            reply::bare_lf()
        } else {
            let message = decoder.into_message();
            self.finish(message).await
        };
        self.counters.add("data", r.is_positive());
        self.tx = None;
        let close = r.close;
        self.reply(r).await;
        Ok(close)
    }

    /// BDAT (RFC 3030): a chunk of exactly `size` bytes.
    async fn bdat(&mut self, size: u64, last: bool) -> Result<bool, End> {
        if !self.smtpd.offers("chunking") {
            // Read nothing: without CHUNKING the bytes are commands.
            self.counters.add("unknown", false);
            self.reply(reply::not_recognized()).await;
            return Ok(false);
        }
        let limit = self.settings().message_size_limit;
        // Collect (or skip) the chunk first: it must be read whatever the
        // verdict.
        let error = match &self.tx {
            None => Some(reply::need_mail()),
            Some(t) if t.recipients.is_empty() => Some(reply::need_rcpt()),
            Some(t) if t.chunks_failed => {
                Some(Reply::new(503, "5.5.1", "Error: message content rejected"))
            }
            Some(t) => {
                let have = t.chunks.as_ref().map_or(0, |c| c.len() as u64);
                (have.saturating_add(size) > limit).then(reply::message_too_big)
            }
        };
        let deadline = Instant::now() + self.settings().data_timeout;
        let mut remaining = size;
        let keep = error.is_none();
        let mut chunk = Vec::new();
        while remaining > 0 {
            if !self.input.has_pending() {
                self.fill(Some(deadline)).await?;
            }
            let pending = self.input.pending();
            let n = (pending.len() as u64).min(remaining) as usize;
            if keep {
                chunk.extend_from_slice(&pending[..n]);
            }
            self.input.consume(n);
            remaining -= n as u64;
        }
        if let Some(e) = error {
            if let Some(t) = &mut self.tx {
                t.chunks_failed = true;
                if last {
                    self.tx = None;
                }
            }
            self.counters.add("bdat", false);
            self.reply(e).await;
            return Ok(false);
        }
        let Some(tx) = &mut self.tx else {
            return Ok(false);
        };
        tx.chunks
            .get_or_insert_with(Vec::new)
            .extend_from_slice(&chunk);
        if !last {
            self.counters.add("bdat", true);
            self.reply(Reply::new(250, "2.0.0", format!("Ok: {size} bytes")))
                .await;
            return Ok(false);
        }
        let content = tx.chunks.take().unwrap_or_default();
        let (message, bare) = data::normalize_newlines(&content);
        let r = if bare && self.settings().bare_lf == BareLf::Reject {
            reply::bare_lf()
        } else {
            self.finish(message).await
        };
        self.counters.add("bdat", r.is_positive());
        self.tx = None;
        self.reply(r).await;
        Ok(false)
    }

    /// Cleanup and the queue: the message is on disk and fsync'd before
    /// the 250 is returned.
    async fn finish(&mut self, message: Vec<u8>) -> Reply {
        let Some(tx) = self.tx.take() else {
            return reply::need_mail();
        };
        let s = self.settings();
        if cleanup::hop_count(&message) > s.hopcount_limit {
            let reply = Reply::new(554, "5.4.0", "Error: too many hops");
            self.log_reject("DATA", &reply, Some(&tx.sender_given), None);
            return reply;
        }
        if tx.discard {
            // Taken and dropped, as Postfix's DISCARD: nothing is written.
            return reply::queued(QueueId::generate().as_str());
        }
        let hold = tx.hold;
        let sender = self.smtpd.resolver.canonical(&tx.sender_given);
        let mut env = Envelope::new(&sender, tx.recipients);
        env.set_attr("client_name", &self.client_name);
        env.set_attr("client_addr", &self.client_addr.to_string());
        if let Some(h) = &self.helo {
            env.set_attr("helo", h);
        }
        env.set_attr("protocol", self.proto());
        if let Some(envid) = &tx.params.envid {
            env.set_attr("envid", envid);
        }
        if let Some(ret) = tx.params.ret {
            env.set_attr("ret", if ret == Ret::Hdrs { "HDRS" } else { "FULL" });
        }
        if let Some(body) = tx.params.body {
            env.set_attr(
                "body",
                match body {
                    command::Body::SevenBit => "7BIT",
                    command::Body::EightBitMime => "8BITMIME",
                    command::Body::BinaryMime => "BINARYMIME",
                },
            );
        }
        if tx.params.smtputf8 {
            env.set_attr("smtputf8", "yes");
        }
        let given: Vec<String> = env.recipients.iter().map(|r| r.original.clone()).collect();
        // cleanup(8): virtual aliases are replaced before the message is
        // queued; a table that cannot answer defers the whole message.
        match self
            .smtpd
            .virtual_aliases
            .expand(std::mem::take(&mut env.recipients))
        {
            Ok(r) => env.recipients = r,
            Err(e) => {
                self.log(&format!("warning: {e}"));
                return Reply::new(451, "4.3.0", "Error: queue file write error");
            }
        }
        let local_client = self.client_addr.is_loopback()
            || self.smtpd.policy.own_addresses.contains(&self.client_addr);
        let myhostname = s.myhostname.clone();
        let mail_name = s.mail_name.clone();
        let header_size_limit = s.header_size_limit;
        let client_name = self.client_name.clone();
        let client_addr = self.client_addr.to_string();
        let helo = self.helo.clone();
        let protocol = self.proto();
        let sasl_user = self.sasl_user.clone();
        let tls_desc = self.io.describe();
        let queue = self.shared.queue.clone();
        let at_once = self
            .shared
            .qmgr
            .clone()
            .filter(|_| s.virtual_delivery && !hold);
        let into = if hold {
            QueueName::Hold
        } else {
            QueueName::Incoming
        };
        let result = tokio::task::spawn_blocking(move || {
            let now = chrono::Local::now().fixed_offset();
            let process = |id: &QueueId| {
                let origin = Origin {
                    queue_id: id.as_str(),
                    myhostname: &myhostname,
                    mail_name: &mail_name,
                    sender: &env.sender,
                    recipients: &given,
                    received: ReceivedFrom::Smtp {
                        helo: helo.as_deref(),
                        client_name: &client_name,
                        client_addr: &client_addr,
                        protocol,
                        tls: tls_desc.as_deref(),
                        auth: sasl_user.as_deref(),
                    },
                    add_missing_headers: local_client,
                    header_size_limit,
                    now,
                };
                cleanup::process(&message, &origin)
            };
            // Mail for virtual mailboxes only: delivered now, before the
            // 250; a queue file only for what that left undone.
            if let Some(qmgr) = at_once {
                let id = QueueId::generate();
                let content = process(&id);
                let message_id = cleanup::message_id(&content);
                let (done, mut paths) =
                    crate::durable::deferring(|| qmgr.deliver_at_once(&id, &env, &content));
                // The queue file of this ID, for what was not delivered;
                // false when the name is taken (never in practice).
                let queue_here = |env: &Envelope| {
                    queue.write_new(QueueName::Incoming, &id, env, |_| Cow::Borrowed(&content))
                };
                let Some(done) = done else {
                    // Nothing delivered: queued under this ID, or, in the
                    // unlikely case that it is taken, under another below.
                    if queue_here(&env)? {
                        return Ok(Accepted {
                            paths: vec![queue.dir(QueueName::Incoming)],
                            id,
                            message_id,
                            at_once: None,
                            file: Some(QueueName::Incoming),
                        });
                    }
                    return queue_anew(&queue, into, &env, process);
                };
                let rest = done.iter().any(|d| d.outcome.status != Status::Sent);
                if rest {
                    let mut env = env.clone();
                    for (r, d) in env.recipients.iter_mut().zip(&done) {
                        r.done = d.outcome.status == Status::Sent;
                    }
                    // The delivered copies name this ID: a name already
                    // taken is a write error, never another message's file
                    // overwritten.
                    if !queue_here(&env)? {
                        return Err(io::Error::other(format!("queue ID {id} is taken")));
                    }
                    paths.push(queue.dir(QueueName::Incoming));
                }
                return Ok(Accepted {
                    id,
                    message_id,
                    paths,
                    at_once: Some((env, content.len(), done)),
                    file: rest.then_some(QueueName::Incoming),
                });
            }
            queue_anew(&queue, into, &env, process)
        })
        .await;
        // On stable storage before the 250 (waiting without a thread).
        let result = match result {
            Ok(Ok(a)) => match crate::durable::commit_all_async(&a.paths).await {
                Ok(()) => Ok(a),
                Err(e) => {
                    // Not acknowledged: the client sends it again.
                    if let Some(q) = a.file {
                        let _ = self.shared.queue.remove(q, &a.id);
                    }
                    Err(Some(e))
                }
            },
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(None),
        };
        match result {
            Ok(a) => {
                let id = a.id;
                let sasl = match (&self.sasl_method, &self.sasl_user) {
                    (Some(m), Some(u)) => format!(", sasl_method={m}, sasl_username={u}"),
                    _ => String::new(),
                };
                self.log(&format!("{id}: client={}{sasl}", self.client()));
                self.shared.log.log(
                    &format!("{}/cleanup", self.smtpd.settings.syslog_name),
                    &format!("{id}: message-id={}", a.message_id.unwrap_or_default()),
                );
                if let (Some((env, size, done)), Some(qmgr)) = (&a.at_once, &self.shared.qmgr) {
                    qmgr.log_delivered_at_once(&id, env, *size, done);
                }
                if a.file == Some(QueueName::Incoming) {
                    (self.shared.notify)(Notice::Queued(id.clone()));
                }
                reply::queued(id.as_str())
            }
            Err(Some(e)) => {
                tracing::error!("cannot write the queue file: {e}");
                self.log(&format!(
                    "warning: queue file write error: {}",
                    ironpost_conf::io_reason(&e)
                ));
                reply::local_error()
            }
            Err(None) => reply::local_error(),
        }
    }
}

/// The reply to a failed exchange (RFC 4954 §4).
fn sasl_error_reply(e: SaslError) -> Reply {
    match e {
        SaslError::Cancelled => Reply::new(501, "5.7.0", "Authentication aborted"),
        SaslError::BadBase64 => Reply::new(501, "5.5.2", "Error: invalid base64 data"),
        SaslError::Malformed(why) => {
            Reply::new(535, "5.7.8", format!("Error: authentication failed: {why}"))
        }
        SaslError::Failed => Reply::new(535, "5.7.8", "Error: authentication failed"),
    }
}

fn upper(name: &'static str) -> &'static str {
    match name {
        "helo" => "HELO",
        "ehlo" => "EHLO",
        "mail" => "MAIL",
        "rcpt" => "RCPT",
        "data" => "DATA",
        "bdat" => "BDAT",
        "rset" => "RSET",
        "noop" => "NOOP",
        "quit" => "QUIT",
        "vrfy" => "VRFY",
        "expn" => "EXPN",
        "help" => "HELP",
        "etrn" => "ETRN",
        "starttls" => "STARTTLS",
        "auth" => "AUTH",
        _ => "UNKNOWN",
    }
}
