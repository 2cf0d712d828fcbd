//! The daemon (`ironpost serve`): what Postfix's master and its resident
//! services do, in one process. It reads main.cf and master.cf, listens on
//! every `inet ... smtpd` service, runs the queue manager and pickup, and
//! answers the control socket (wake, flush, reload, status, stop).
//!
//! - SIGHUP or `ironpost reload` re-reads main.cf and master.cf's `-o`
//!   overrides: new sessions and deliveries use the new settings (the set
//!   of listening addresses changes only with a restart).
//! - SIGTERM, SIGINT or `ironpost stop` stop accepting and end the process;
//!   messages being received are not acknowledged and the client retries,
//!   messages in the queue are delivered after the next start.
//! - One instance per queue directory: `pid/master.pid` is locked.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ironpost_conf::mastercf::{MasterCf, ServiceType};
use ironpost_conf::{ConfError, Config, params};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::local::Agents;
use crate::maillog::MailLog;
use crate::maps::MapContext;
use crate::qmgr::{self, Qmgr};
use crate::queue::Queue;
use crate::resolve::Resolver;
use crate::smtpd::session::{self, Shared, Smtpd};

/// A fatal start-up error, worded for the administrator.
#[derive(Debug)]
pub struct StartError(pub String);

impl From<ConfError> for StartError {
    fn from(e: ConfError) -> Self {
        StartError(e.to_string())
    }
}

/// One listening SMTP service.
struct Listener {
    /// The master.cf service name (`smtp`, `127.0.0.1:2525`).
    name: String,
    /// The command: smtpd, pop3d or imapd.
    command: Command,
    line: usize,
    addrs: Vec<SocketAddr>,
    max_sessions: usize,
    overrides: Vec<(String, String, usize)>,
}

/// The programs master.cf may name for an inet service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Smtpd,
    Pop3d,
    Imapd,
}

/// A listener's service, built from the configuration.
#[derive(Clone)]
enum Service {
    Smtpd(Arc<Smtpd>),
    Pop3d(Arc<crate::pop3d::Pop3d>),
    Imapd(Arc<crate::imapd::Imapd>),
}

/// Everything built from the configuration, replaced as a whole on reload.
struct Built {
    runtime: Arc<qmgr::Runtime>,
    /// Per listener (same order as the listeners).
    services: Vec<Service>,
    /// For pickup.
    virtual_aliases: Arc<crate::virtual_alias::VirtualAliases>,
}

fn master_cf_path(cfg: &Config) -> PathBuf {
    cfg.config_dir().join("master.cf")
}

/// The services of master.cf; a missing file means Postfix's default
/// (`smtp inet n - y - - smtpd`).
fn read_master_cf(cfg: &Config) -> Result<MasterCf, StartError> {
    let path = master_cf_path(cfg);
    if !path.exists() {
        return MasterCf::parse(&path, "smtp inet n - n - - smtpd\n").map_err(Into::into);
    }
    MasterCf::read(&path).map_err(Into::into)
}

/// The addresses an inet service without a host part listens on.
fn interface_addresses(cfg: &Config, port: u16) -> Result<Vec<SocketAddr>, StartError> {
    let interfaces = cfg.get_list(params::INET_INTERFACES)?;
    let protocols = cfg.get_list(params::INET_PROTOCOLS)?;
    let v4 = protocols.iter().any(|p| p == "all" || p == "ipv4");
    let v6 = protocols.iter().any(|p| p == "all" || p == "ipv6");
    let mut out = Vec::new();
    for i in &interfaces {
        match i.as_str() {
            "all" => {
                if v6 {
                    // A dual-stack socket on Linux takes IPv4 too.
                    out.push(SocketAddr::new(IpAddr::from([0u16; 8]), port));
                } else if v4 {
                    out.push(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port));
                }
            }
            "localhost" | "loopback-only" => {
                if v4 {
                    out.push(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port));
                }
                if v6 {
                    out.push(SocketAddr::new(
                        IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
                        port,
                    ));
                }
            }
            other => {
                let ip: IpAddr = other
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse()
                    .map_err(|_| {
                        StartError(format!(
                            "inet_interfaces: \"{other}\" is not an IP address (host names are not resolved; write the address)"
                        ))
                    })?;
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
    Ok(out)
}

fn listeners(cfg: &Config, master: &MasterCf) -> Result<Vec<Listener>, StartError> {
    let default_limit = cfg.get_int(params::DEFAULT_PROCESS_LIMIT)? as usize;
    let mut out = Vec::new();
    for s in &master.services {
        if s.kind != ServiceType::Inet {
            continue;
        }
        let command = match s.command.as_str() {
            "smtpd" => Command::Smtpd,
            "pop3d" => Command::Pop3d,
            "imapd" => Command::Imapd,
            _ => Command::Smtpd,
        };
        if !["smtpd", "pop3d", "imapd"].contains(&s.command.as_str()) {
            tracing::warn!(
                "{}, line {}: service {} runs \"{}\", which is not available in this version; ignored",
                master_cf_path(cfg).display(),
                s.line,
                s.name,
                s.command
            );
            continue;
        }
        let ep = s.endpoint().map_err(|e| {
            StartError(format!(
                "{}, line {}: {e}",
                master_cf_path(cfg).display(),
                s.line
            ))
        })?;
        let addrs = match &ep.host {
            Some(h) => {
                let ip: IpAddr = h.parse().map_err(|_| {
                    StartError(format!(
                        "{}, line {}: \"{h}\" is not an IP address",
                        master_cf_path(cfg).display(),
                        s.line
                    ))
                })?;
                vec![SocketAddr::new(ip, ep.port)]
            }
            None => interface_addresses(cfg, ep.port)?,
        };
        out.push(Listener {
            name: s.name.clone(),
            command,
            line: s.line,
            addrs,
            max_sessions: s.max_processes.map_or(default_limit, |n| n as usize).max(1),
            overrides: s.overrides.clone(),
        });
    }
    Ok(out)
}

fn build(cfg: &Config, listeners: &[Listener]) -> Result<Built, StartError> {
    let ctx = MapContext::from_config(cfg)?;
    let host = crate::host::facts();
    let host_ips: Vec<IpAddr> = host.interfaces.iter().map(|(ip, _)| *ip).collect();
    let resolver = Arc::new(Resolver::from_config(cfg, &ctx, &host_ips)?);
    let dns = crate::dns::Dns::from_config(cfg)?;
    let agents = Agents::from_config(cfg, &ctx, resolver.clone())?;
    let virtual_aliases = Arc::new(crate::virtual_alias::VirtualAliases::from_config(
        cfg,
        &ctx,
        resolver.clone(),
    )?);
    // Where we listen: a mail exchanger there would be ourselves.
    let mut own = Vec::new();
    for l in listeners {
        for a in &l.addrs {
            if a.ip().is_unspecified() {
                own.extend(host_ips.iter().map(|ip| SocketAddr::new(*ip, a.port())));
                own.push(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), a.port()));
            } else {
                own.push(*a);
            }
        }
    }
    let runtime = Arc::new(qmgr::Runtime {
        settings: qmgr::Settings::from_config(cfg)?,
        resolver: resolver.clone(),
        router: crate::transport::Router::from_config(cfg, &ctx)?,
        smtp: Arc::new(crate::smtp::SmtpAgent::from_config(cfg, &ctx, own)?),
        agents,
        virtual_aliases: virtual_aliases.clone(),
    });
    let mut services = Vec::new();
    for l in listeners {
        let mut c = cfg.clone();
        for (name, value, line) in &l.overrides {
            c.set_override(
                name,
                value,
                Some(ironpost_conf::Location {
                    file: master_cf_path(cfg),
                    line: Some(*line),
                }),
            );
        }
        if l.command == Command::Pop3d {
            services.push(Service::Pop3d(Arc::new(crate::pop3d::Pop3d::from_config(
                &c, &ctx,
            )?)));
            continue;
        }
        if l.command == Command::Imapd {
            services.push(Service::Imapd(Arc::new(crate::imapd::Imapd::from_config(
                &c, &ctx,
            )?)));
            continue;
        }
        let (r, d) = if l.overrides.is_empty() {
            (resolver.clone(), dns.clone())
        } else {
            (
                Arc::new(Resolver::from_config(&c, &ctx, &host_ips)?),
                crate::dns::Dns::from_config(&c)?,
            )
        };
        services.push(Service::Smtpd(Arc::new(Smtpd::from_config(
            &c,
            &ctx,
            r,
            host_ips.clone(),
            d,
        )?)));
    }
    Ok(Built {
        runtime,
        services,
        virtual_aliases,
    })
}

/// The PID file, locked while the daemon runs.
struct PidLock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

fn lock_pid_file(queue_dir: &Path, cfg: &Config) -> Result<PidLock, StartError> {
    let dir = queue_dir.join(cfg.get_str(params::PROCESS_ID_DIRECTORY)?.trim());
    std::fs::create_dir_all(&dir).map_err(|e| {
        StartError(format!(
            "create {}: {}",
            dir.display(),
            ironpost_conf::io_reason(&e)
        ))
    })?;
    let path = dir.join("master.pid");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            StartError(format!(
                "open {}: {}",
                path.display(),
                ironpost_conf::io_reason(&e)
            ))
        })?;
    let mut file = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    {
        Ok(f) => f,
        Err(_) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(StartError(format!(
                "the mail system is already running (PID {}) for {}",
                pid.trim(),
                queue_dir.display()
            )));
        }
    };
    let _ = file.set_len(0);
    let _ = writeln!(&mut *file, "{:>10}", std::process::id());
    Ok(PidLock { _file: file })
}

/// The daemon's shared state.
struct Daemon {
    config_dir: Option<PathBuf>,
    listeners: Vec<Listener>,
    current: Mutex<Vec<Service>>,
    shared: Arc<Shared>,
    qmgr: Arc<Qmgr>,
    stop: Notify,
    log: Arc<MailLog>,
    syslog_name: String,
    pickup: Mutex<Option<Arc<crate::pickup::Pickup>>>,
}

impl Daemon {
    fn master_log(&self, text: &str) {
        self.log.log(&format!("{}/master", self.syslog_name), text);
    }

    /// Re-reads the configuration; on error the old one stays.
    fn reload(&self) -> Result<(), String> {
        let cfg = Config::load(self.config_dir.as_deref(), &crate::host::facts())
            .map_err(|e| e.to_string())?;
        let master = read_master_cf(&cfg).map_err(|e| e.0)?;
        let fresh = listeners(&cfg, &master).map_err(|e| e.0)?;
        // Overrides may change; the listening addresses stay.
        let mut ls: Vec<Listener> = Vec::new();
        for old in &self.listeners {
            let over = fresh
                .iter()
                .find(|f| f.name == old.name)
                .map(|f| f.overrides.clone())
                .unwrap_or_else(|| old.overrides.clone());
            ls.push(Listener {
                name: old.name.clone(),
                command: old.command,
                line: old.line,
                addrs: old.addrs.clone(),
                max_sessions: old.max_sessions,
                overrides: over,
            });
        }
        let built = build(&cfg, &ls).map_err(|e| e.0)?;
        crate::auth::directory::set_cache_ttl(
            cfg.get_time(params::DIRECTORY_CACHE_TTL)
                .map_err(|e| e.to_string())?,
        );
        crate::auth::directory::changed();
        let pickup = crate::pickup::Pickup::from_config(&cfg)
            .map_err(|e| e.to_string())?
            .with_virtual_aliases(built.virtual_aliases.clone());
        *self.pickup.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(pickup));
        self.qmgr.set_runtime(built.runtime);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = built.services;
        self.master_log(&format!(
            "reload -- version {}, configuration {}",
            env!("CARGO_PKG_VERSION"),
            cfg.config_dir().display()
        ));
        Ok(())
    }

    fn service(&self, i: usize) -> Service {
        self.current.lock().unwrap_or_else(|p| p.into_inner())[i].clone()
    }

    fn run_pickup(&self) {
        let p = self
            .pickup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(p) = p {
            match p.run_once(&self.shared.queue, &self.log) {
                Ok(n) if n > 0 => self.qmgr.wake(),
                Ok(_) => {}
                Err(e) => tracing::warn!("pickup: {e}"),
            }
        }
    }

    fn control(self: &Arc<Self>, command: &str) -> String {
        match command.trim() {
            "wake" => {
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.run_pickup());
                self.qmgr.wake();
                "ok".into()
            }
            "flush" => {
                self.qmgr.flush();
                "ok".into()
            }
            "directory-changed" => {
                crate::auth::directory::changed();
                "ok".into()
            }
            c if c.starts_with("flush-site ") => {
                self.qmgr.flush_site(c["flush-site ".len()..].trim());
                "ok".into()
            }
            c if c.starts_with("flush-id ") => {
                self.qmgr.flush_id(c["flush-id ".len()..].trim());
                "ok".into()
            }
            "reload" => match self.reload() {
                Ok(()) => "ok".into(),
                Err(e) => format!("error {e}"),
            },
            "status" => format!("ok {}", std::process::id()),
            "stop" => {
                self.stop.notify_one();
                "ok".into()
            }
            other => format!("error unknown command \"{other}\""),
        }
    }
}

/// The queue of queue_directory, created if missing.
fn open_queue(cfg: &Config) -> Result<(PathBuf, Queue), StartError> {
    let queue_dir = PathBuf::from(cfg.get_str(params::QUEUE_DIRECTORY)?.trim());
    let queue = Queue::open(&queue_dir).map_err(|e| {
        StartError(format!(
            "queue_directory {}: {}",
            queue_dir.display(),
            ironpost_conf::io_reason(&e)
        ))
    })?;
    Ok((queue_dir, queue))
}

/// Runs the daemon in the foreground until it is stopped.
pub fn serve(config_dir: Option<&Path>) -> Result<(), StartError> {
    let cfg = Config::load(config_dir, &crate::host::facts())?;
    for w in cfg.warnings() {
        crate::cli::warn(&w);
    }
    if let Some(e) = cfg.check().into_iter().next() {
        return Err(e.into());
    }
    let (queue_dir, queue) = open_queue(&cfg)?;
    let _pid = lock_pid_file(&queue_dir, &cfg)?;
    let syslog_name = cfg.get_str(params::SYSLOG_NAME)?.trim().to_string();
    let myhostname = cfg.get_str(params::MYHOSTNAME)?.trim().to_string();
    let maillog_file = cfg.get_str(params::MAILLOG_FILE)?;
    let log = Arc::new(MailLog::open(&maillog_file, &myhostname).map_err(|e| {
        StartError(format!(
            "maillog_file {}: {}",
            maillog_file.trim(),
            ironpost_conf::io_reason(&e)
        ))
    })?);
    let master = read_master_cf(&cfg)?;
    let ls = listeners(&cfg, &master)?;
    let built = build(&cfg, &ls)?;
    let pickup = crate::pickup::Pickup::from_config(&cfg)?
        .with_virtual_aliases(built.virtual_aliases.clone());
    // The user directory: created or migrated now, so that the first
    // lookup does not pay for it. A database that is down is not fatal:
    // lookups fail temporarily (mail is deferred) until it is back.
    crate::auth::directory::set_cache_ttl(cfg.get_time(params::DIRECTORY_CACHE_TTL)?);
    let directory_url = cfg.get_str(params::DIRECTORY_URL)?.trim().to_string();
    if !directory_url.is_empty()
        && let Err(e) = crate::auth::directory::Directory::open(&directory_url)
    {
        log.log(
            &format!("{syslog_name}/master"),
            &format!("warning: user directory: {e}"),
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        // Bind everything first: a port in use is a start-up error.
        let mut bound = Vec::new();
        for (i, l) in ls.iter().enumerate() {
            for addr in &l.addrs {
                match TcpListener::bind(addr).await {
                    Ok(t) => bound.push((i, t)),
                    Err(e) if addr.is_ipv6() && no_ipv6(&e) => {
                        // No IPv6 on this machine: IPv4 only.
                        if addr.ip().is_unspecified() {
                            let v4 = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), addr.port());
                            let t = TcpListener::bind(v4)
                                .await
                                .map_err(|e| bind_error(&l.name, &v4, &e))?;
                            bound.push((i, t));
                        }
                    }
                    Err(e) => return Err(bind_error(&l.name, addr, &e)),
                }
            }
        }
        let qmgr = Qmgr::new(queue.clone(), log.clone(), built.runtime.clone());
        if let Err(e) = qmgr.recover() {
            return Err(StartError(format!("queue recovery: {e}")));
        }
        let shared = Arc::new(Shared::with_qmgr(queue.clone(), log.clone(), qmgr.clone()));
        let daemon = Arc::new(Daemon {
            config_dir: config_dir.map(Path::to_path_buf),
            listeners: ls,
            current: Mutex::new(built.services),
            shared,
            qmgr: qmgr.clone(),
            stop: Notify::new(),
            log: log.clone(),
            syslog_name: syslog_name.clone(),
            pickup: Mutex::new(Some(Arc::new(pickup))),
        });
        daemon.master_log(&format!(
            "daemon started -- version {}, configuration {}",
            env!("CARGO_PKG_VERSION"),
            cfg.config_dir().display()
        ));
        tokio::spawn(qmgr.clone().run());
        // Pickup: at start, when poked, and every few seconds.
        {
            let d = daemon.clone();
            tokio::spawn(async move {
                loop {
                    let d2 = d.clone();
                    let _ = tokio::task::spawn_blocking(move || d2.run_pickup()).await;
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            });
        }
        // The control socket.
        {
            let d = daemon.clone();
            let handler: Arc<dyn Fn(&str) -> String + Send + Sync> =
                Arc::new(move |c: &str| d.control(c));
            let path = crate::ctl::socket_path(&queue_dir);
            tokio::spawn(async move {
                if let Err(e) = crate::ctl::serve(path.clone(), handler).await {
                    tracing::warn!("control socket {}: {e}", path.display());
                }
            });
        }
        // The listeners.
        let counts: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let mut limits: HashMap<usize, Arc<Semaphore>> = HashMap::new();
        for (i, listener) in bound {
            let sem = limits
                .entry(i)
                .or_insert_with(|| Arc::new(Semaphore::new(daemon.listeners[i].max_sessions)))
                .clone();
            let d = daemon.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(permit) = sem.clone().acquire_owned().await else {
                        return;
                    };
                    let (stream, peer) = match listener.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("accept: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let smtpd = match d.service(i) {
                        Service::Smtpd(s) => s,
                        retrieval => {
                            // POP3 and IMAP: a session of its own task,
                            // holding the listener's permit.
                            let log = d.log.clone();
                            let client = canonical_ip(peer.ip());
                            let local = stream
                                .local_addr()
                                .map(|a| canonical_ip(a.ip()))
                                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
                            tokio::spawn(async move {
                                match retrieval {
                                    Service::Pop3d(p) => {
                                        crate::pop3d::session::run(stream, client, local, p, log)
                                            .await
                                    }
                                    Service::Imapd(p) => {
                                        crate::imapd::session::run(stream, client, local, p, log)
                                            .await
                                    }
                                    Service::Smtpd(_) => {}
                                }
                                drop(permit);
                            });
                            continue;
                        }
                    };
                    let shared = d.shared.clone();
                    let counts = counts.clone();
                    let d2 = d.clone();
                    tokio::spawn(async move {
                        let ip = canonical_ip(peer.ip());
                        let limit = smtpd.settings.connection_count_limit;
                        let exempt = smtpd.policy.mynetworks.matches(ip).unwrap_or(false);
                        let n = {
                            let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                            let n = c.entry(ip).or_insert(0);
                            *n += 1;
                            *n
                        };
                        if limit > 0 && n > limit && !exempt {
                            d2.shared.log.log(
                                &format!("{}/smtpd", d2.syslog_name),
                                &format!(
                                    "warning: Connection concurrency limit exceeded: {n} from {}[{ip}] for service {}",
                                    session::client_name(ip),
                                    d2.listeners[i].name
                                ),
                            );
                            let mut stream = stream;
                            let r = ironpost_proto::smtp::reply::too_many_connections(
                                &smtpd.settings.myhostname,
                            );
                            use tokio::io::AsyncWriteExt;
                            let _ = stream.write_all(&r.encode()).await;
                        } else {
                            session::run(stream, ip, smtpd, shared).await;
                        }
                        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(n) = c.get_mut(&ip) {
                            *n -= 1;
                            if *n == 0 {
                                c.remove(&ip);
                            }
                        }
                        drop(permit);
                    });
                }
            });
        }
        // Signals.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| StartError(e.to_string()))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| StartError(e.to_string()))?;
        let mut hup = signal(SignalKind::hangup()).map_err(|e| StartError(e.to_string()))?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = daemon.stop.notified() => break,
                _ = hup.recv() => {
                    if let Err(e) = daemon.reload() {
                        daemon.master_log(&format!("warning: reload failed, keeping the old configuration: {e}"));
                    }
                }
            }
        }
        daemon.master_log("terminating on signal 15");
        daemon.log.flush();
        let _ = std::fs::remove_file(crate::ctl::socket_path(&queue_dir));
        Ok(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// `::ffff:127.0.0.1` from a dual-stack socket is `127.0.0.1`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn no_ipv6(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::AddrNotAvailable
        || e.raw_os_error() == Some(nix::libc::EAFNOSUPPORT)
}

fn bind_error(service: &str, addr: &SocketAddr, e: &std::io::Error) -> StartError {
    StartError(format!(
        "service {service}: bind {} port {}: {}",
        addr.ip(),
        addr.port(),
        ironpost_conf::io_reason(e)
    ))
}

/// `sendmail -bs`: one SMTP session on standard input and output, as
/// Postfix's smtpd in stand-alone mode (the client is localhost). Queued
/// mail is handed to the running daemon, if any, through the control
/// socket.
pub fn serve_stdio(config_dir: Option<&Path>) -> Result<(), StartError> {
    let cfg = Config::load(config_dir, &crate::host::facts())?;
    let (queue_dir, queue) = open_queue(&cfg)?;
    let myhostname = cfg.get_str(params::MYHOSTNAME)?.trim().to_string();
    let maillog_file = cfg.get_str(params::MAILLOG_FILE)?;
    let log = Arc::new(
        MailLog::open(&maillog_file, &myhostname)
            .unwrap_or_else(|_| MailLog::open("", &myhostname).expect("stderr log")),
    );
    let ctx = MapContext::from_config(&cfg)?;
    let host = crate::host::facts();
    let host_ips: Vec<IpAddr> = host.interfaces.iter().map(|(ip, _)| *ip).collect();
    let resolver = Arc::new(Resolver::from_config(&cfg, &ctx, &host_ips)?);
    let dns = crate::dns::Dns::from_config(&cfg)?;
    let smtpd = Arc::new(Smtpd::from_config(&cfg, &ctx, resolver, host_ips, dns)?);
    let qd = queue_dir.clone();
    let shared = Arc::new(Shared {
        queue,
        log,
        notify: Arc::new(move |n| {
            let word = match n {
                session::Notice::Queued(_) => "wake".to_string(),
                session::Notice::Flush(site) => format!("flush-site {site}"),
            };
            let _ = crate::ctl::request(&qd, &word);
        }),
        qmgr: None,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let io = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        session::run_local(io, smtpd, shared).await;
    });
    Ok(())
}
