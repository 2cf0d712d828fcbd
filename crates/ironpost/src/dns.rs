//! DNS lookups for the mail system: MX for delivery (RFC 5321 §5.1), A and
//! AAAA for the hosts found there, PTR for client names, TXT (SPF, DMARC)
//! and A for DNSBL queries.
//!
//! [`Dns`] is a blocking interface over hickory's async resolver: callers
//! are synchronous code (delivery agents on blocking threads, restrictions
//! run inline by SMTP sessions on tokio workers), so every lookup runs on
//! the background runtime of [`crate::bridge`] and waits for its answer
//! there.
//!
//! Answers fall into three kinds, which callers treat differently: a name
//! that does not exist ([`DnsError::NotFound`], NXDOMAIN) and a name without
//! records of the type asked for ([`DnsError::NoData`]) are final, and mail
//! bounces on them; anything else ([`DnsError::Failed`]: SERVFAIL, REFUSED,
//! no answer within the timeout, no server reachable) is a temporary
//! failure, and mail is retried.
//!
//! The servers are `dns_nameservers` (or those of /etc/resolv.conf when it
//! is empty), asked with a timeout of `dns_timeout` for each of two tries.
//! Names are always absolute: no search domains, no ndots, no /etc/hosts.
//! hickory's cache keeps an answer no longer than its TTL (TTL 0: not at
//! all), and has no minimum TTL, so a changed zone is seen at once when
//! its records have TTL 0.
//!
//! One exception to "everything comes from the server": hickory answers
//! forward lookups of the special-use names of RFC 6761 itself
//! (`localhost.` and the names below it are 127.0.0.1 and ::1, `.invalid`
//! does not exist). PTR lookups do not go through that layer (nor through
//! the cache): they ask the servers for every address, loopback ones
//! included, so test zones can name 127.0.0.2, 127.0.0.3, ...

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer, RetryDnsHandle};
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig, TokioResolver};
use ironpost_conf::{ConfError, Config, ErrorKind, params};

/// The tries of each query: hickory's `attempts` counts the retries after
/// the first one.
const RETRIES: usize = 1;

/// Where the system's name servers are listed when `dns_nameservers` is
/// empty.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A resolver; cheap to clone (the clones share their connections and
/// cache).
#[derive(Clone)]
pub struct Dns {
    inner: Arc<Inner>,
}

struct Inner {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    /// MX, A, AAAA, TXT: hickory's resolver (cache, CNAME chains).
    resolver: TokioResolver,
    /// PTR: the servers asked directly (see the module doc).
    direct: RetryDnsHandle<NameServerPool<TokioRuntimeProvider>>,
}

/// One mail exchanger of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// The host name, lower-case, without the trailing dot; empty for a
    /// null MX (RFC 7505: the domain accepts no mail).
    pub exchange: String,
}

impl Mx {
    /// Whether this is the null MX of RFC 7505 (exchange `.`).
    pub fn is_null(&self) -> bool {
        self.exchange.is_empty()
    }
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN); final. Also returned for a name
    /// that is not a valid domain name, which cannot exist.
    NotFound,
    /// The name exists but has no record of the type asked for; final.
    NoData,
    /// A temporary failure (SERVFAIL, REFUSED, no answer in time, no
    /// server reachable); the text names the name and the type, in
    /// Postfix's words.
    Failed(String),
}

impl DnsError {
    /// Whether the answer is final (the name or the records do not
    /// exist), as opposed to a failure that may go away.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, DnsError::Failed(_))
    }
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The texts of Postfix's dns_strerror().
        match self {
            DnsError::NotFound => f.write_str("Host not found"),
            DnsError::NoData => f.write_str("No address associated with hostname"),
            DnsError::Failed(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for DnsError {}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("servers", &self.inner.servers)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl Dns {
    /// A resolver set up by `dns_nameservers` (`ip`, `ip:port`, `[v6]:port`;
    /// empty: the servers of /etc/resolv.conf, which is read only then) and
    /// `dns_timeout` (for each of two tries).
    pub fn from_config(cfg: &Config) -> Result<Dns, ConfError> {
        let p = &params::DNS_TIMEOUT;
        let timeout = cfg.get_time(p)?;
        if timeout.is_zero() {
            return Err(bad_value(cfg, p.name, "0", "a time longer than 0s"));
        }
        let p = &params::DNS_NAMESERVERS;
        let items = cfg.get_list(p)?;
        let servers = if items.is_empty() {
            resolv_conf_servers(&std::fs::read_to_string(RESOLV_CONF).unwrap_or_default())
        } else {
            items
                .iter()
                .map(|item| {
                    parse_server(item).ok_or_else(|| {
                        bad_value(
                            cfg,
                            p.name,
                            item,
                            "a list of addresses, like 192.0.2.1, 192.0.2.1:5353 or [2001:db8::1]:53",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        Dns::build(servers, timeout).map_err(|e| {
            ConfError::new(ErrorKind::Io(format!(
                "cannot set up the DNS resolver: {e}"
            )))
        })
    }

    /// A resolver that asks `servers` (in tests: testkit's DNS server), with
    /// `timeout` for each of two tries.
    pub fn with_servers(servers: Vec<SocketAddr>, timeout: Duration) -> Dns {
        // Without TLS or DNSSEC features hickory's builders cannot fail.
        Dns::build(servers, timeout).expect("a plain UDP/TCP resolver")
    }

    fn build(servers: Vec<SocketAddr>, timeout: Duration) -> Result<Dns, NetError> {
        let name_servers: Vec<NameServerConfig> = servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();

        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = RETRIES;
        // Names are absolute; never /etc/hosts (Postfix's smtp asks the DNS).
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        // The cache keeps an answer for its TTL at most, and a TTL 0
        // answer not at all: no floor for positive or negative answers
        // (those are hickory's defaults too; said here so that they stay).
        opts.positive_min_ttl = Some(Duration::ZERO);
        opts.negative_min_ttl = Some(Duration::ZERO);

        // No domain, no search list.
        let config = ResolverConfig::from_parts(None, Vec::new(), name_servers.clone());
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts.clone())
            .build()?;
        let cx = Arc::new(PoolContext::new(opts, TlsConfig::new()?));
        let pool = NameServerPool::from_config(name_servers, cx, TokioRuntimeProvider::default());
        let direct = RetryDnsHandle::new(pool, RETRIES);
        Ok(Dns {
            inner: Arc::new(Inner {
                servers,
                timeout,
                resolver,
                direct,
            }),
        })
    }

    /// The servers asked.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.inner.servers
    }

    /// The MX records of `domain`, sorted by preference (ties in the order
    /// the server gave). A null MX is one record with an empty exchange.
    pub fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        let mut mxs = self.records(domain, RecordType::MX, |data| match data {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                exchange: host_name(&mx.exchange),
            }),
            _ => None,
        })?;
        mxs.sort_by_key(|mx| mx.preference);
        Ok(mxs)
    }

    /// The addresses of `host`: its A records when `ipv4`, its AAAA records
    /// when `ipv6` (both asked at once), IPv4 ones first. `NotFound` only
    /// when the name does not exist; `NoData` when no type asked for has
    /// records (or none is asked for); `Failed` when a query failed and
    /// the other found nothing.
    pub fn addresses(&self, host: &str, ipv4: bool, ipv6: bool) -> Result<Vec<IpAddr>, DnsError> {
        if !ipv4 && !ipv6 {
            return Err(DnsError::NoData);
        }
        let Some(name) = absolute(host) else {
            return Err(DnsError::NotFound);
        };
        let resolver = self.inner.resolver.clone();
        let both = async move {
            let (v4, v6) = tokio::join!(
                async {
                    match ipv4 {
                        true => Some(resolver.lookup(name.clone(), RecordType::A).await),
                        false => None,
                    }
                },
                async {
                    match ipv6 {
                        true => Some(resolver.lookup(name.clone(), RecordType::AAAA).await),
                        false => None,
                    }
                },
            );
            (
                v4.map(|r| r.map(|l| l.answers().to_vec())),
                v6.map(|r| r.map(|l| l.answers().to_vec())),
            )
        };
        let what = match (ipv4, ipv6) {
            (true, true) => "A/AAAA",
            (true, false) => "A",
            _ => "AAAA",
        };
        let (v4, v6) = self.run(host, what, both)?;
        let mut addrs = Vec::new();
        let mut outcomes = Vec::new();
        for (answer, rtype) in [(v4, RecordType::A), (v6, RecordType::AAAA)] {
            let Some(answer) = answer else { continue };
            let found = answer
                .map_err(|e| classify(&e, host, rtype.into()))
                .and_then(|records| {
                    let found: Vec<IpAddr> = records
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                            _ => None,
                        })
                        .collect();
                    if found.is_empty() {
                        Err(DnsError::NoData)
                    } else {
                        Ok(found)
                    }
                });
            match found {
                Ok(found) => addrs.extend(found),
                Err(e) => outcomes.push(e),
            }
        }
        if !addrs.is_empty() {
            return Ok(addrs);
        }
        if let Some(failed) = outcomes.iter().find(|e| !e.is_permanent()) {
            return Err(failed.clone());
        }
        if outcomes.iter().all(|e| *e == DnsError::NotFound) {
            return Err(DnsError::NotFound);
        }
        Err(DnsError::NoData)
    }

    /// The names of `ip` (its PTR records), lower-case, without the
    /// trailing dot.
    pub fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = Name::from(ip);
        let shown = host_name(&name);
        let direct = self.inner.direct.clone();
        let query = Query::query(name, RecordType::PTR);
        let answer = self.run(&shown, "PTR", async move {
            direct
                .lookup(query, DnsRequestOptions::default())
                .first_answer()
                .await
                .map(|response| response.answers.clone())
        })?;
        let records = answer.map_err(|e| classify(&e, &shown, "PTR"))?;
        let names: Vec<String> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(ptr) => Some(host_name(&ptr.0)),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(DnsError::NoData);
        }
        Ok(names)
    }

    /// The TXT records of `name`, each one's strings concatenated (as SPF
    /// and DKIM read them); bytes that are not UTF-8 become U+FFFD.
    pub fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.records(name, RecordType::TXT, |data| match data {
            RData::TXT(txt) => {
                let bytes: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        })
    }

    /// The A records of `name`, for DNSBL queries (`2.0.0.127.zen.example`
    /// answering 127.0.0.x); `NotFound` means "not listed".
    pub fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.records(name, RecordType::A, |data| match data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
    }

    /// The AAAA records of `name`.
    pub fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        self.records(name, RecordType::AAAA, |data| match data {
            RData::AAAA(aaaa) => Some(aaaa.0),
            _ => None,
        })
    }

    /// One lookup through the resolver, the answer's records of `rtype`
    /// (CNAMEs followed) picked by `pick`.
    fn records<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Vec<T>, DnsError> {
        let Some(fqdn) = absolute(name) else {
            return Err(DnsError::NotFound);
        };
        let resolver = self.inner.resolver.clone();
        let answer = self.run(name, rtype.into(), async move {
            resolver
                .lookup(fqdn, rtype)
                .await
                .map(|lookup| lookup.answers().to_vec())
        })?;
        let records = answer.map_err(|e| classify(&e, name, rtype.into()))?;
        let found: Vec<T> = records
            .iter()
            .filter(|r| r.record_type() == rtype)
            .filter_map(|r| pick(&r.data))
            .collect();
        if found.is_empty() {
            return Err(DnsError::NoData);
        }
        Ok(found)
    }

    /// Runs `fut` on the background runtime and waits for it; a lookup
    /// that outlives its tries (and the CNAME hops after them) fails.
    fn run<T, F>(&self, name: &str, rtype: &str, fut: F) -> Result<T, DnsError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        // hickory ends each try at `timeout`; this limit only guards
        // against a lookup that never ends.
        let limit = self.inner.timeout * 4 + Duration::from_secs(1);
        let bounded = async move { tokio::time::timeout(limit, fut).await };
        match crate::bridge::block(bounded, limit + Duration::from_secs(1)) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => {
                tracing::debug!("dns: {name} {rtype}: no answer within {limit:?}");
                Err(failed(name, rtype))
            }
            Err(e) => {
                tracing::debug!("dns: {name} {rtype}: {e}");
                Err(failed(name, rtype))
            }
        }
    }
}

/// A temporary failure in Postfix's words.
fn failed(name: &str, rtype: &str) -> DnsError {
    let name = name.strip_suffix('.').unwrap_or(name);
    DnsError::Failed(format!(
        "Host or domain name not found. Name service error for name={name} type={rtype}: Host not found, try again"
    ))
}

/// What a hickory error means for the mail system.
fn classify(e: &NetError, name: &str, rtype: &str) -> DnsError {
    if let NetError::Dns(HickoryDnsError::NoRecordsFound(no)) = e {
        match no.response_code {
            ResponseCode::NXDomain => return DnsError::NotFound,
            ResponseCode::NoError => return DnsError::NoData,
            _ => {}
        }
    }
    tracing::debug!("dns: {name} {rtype}: {e}");
    failed(name, rtype)
}

/// `name` as an absolute DNS name (IDNA for non-ASCII labels, underscores
/// allowed, as in `_dmarc.`); `None` when it cannot be one.
fn absolute(name: &str) -> Option<Name> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.starts_with('.') || name.contains("..") {
        return None;
    }
    let mut n = Name::from_str_relaxed(name).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// A name as mail code writes it: ASCII (A-labels), lower-case, without
/// the trailing dot; the root is empty.
fn host_name(name: &Name) -> String {
    let text = name.to_lowercase().to_ascii();
    text.strip_suffix('.').unwrap_or(&text).to_string()
}

/// One entry of `dns_nameservers`: `192.0.2.1`, `192.0.2.1:5353`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:5353`.
fn parse_server(item: &str) -> Option<SocketAddr> {
    let addr = if let Ok(ip) = item.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else if let Ok(addr) = item.parse::<SocketAddr>() {
        addr
    } else {
        let inner = item.strip_prefix('[')?.strip_suffix(']')?;
        SocketAddr::new(IpAddr::V6(inner.parse().ok()?), 53)
    };
    (addr.port() != 0).then_some(addr)
}

/// The `nameserver` lines of a resolv.conf(5) text, on port 53; with none,
/// the local host, as the C library does.
fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            // A zone index (fe80::1%eth0) cannot be passed on: dropped.
            let addr = words.next()?.split('%').next()?;
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect();
    if servers.is_empty() {
        return vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)];
    }
    servers
}

fn bad_value(cfg: &Config, param: &str, value: &str, expected: &str) -> ConfError {
    let mut e = ConfError::new(ErrorKind::BadValue {
        value: value.to_string(),
        expected: expected.to_string(),
    })
    .for_param(param);
    e.location = cfg.location_of(param);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironpost_conf::HostFacts;
    use ironpost_conf::maincf::MainCf;
    use std::path::{Path, PathBuf};

    fn cfg(text: &str) -> Config {
        Config::from_main(
            MainCf::parse(Path::new("main.cf"), text).unwrap(),
            PathBuf::from("/etc/ironpost"),
            false,
            &HostFacts::default(),
        )
    }

    #[test]
    fn server_entries() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(parse_server("192.0.2.1"), Some(sa("192.0.2.1:53")));
        assert_eq!(parse_server("192.0.2.1:5353"), Some(sa("192.0.2.1:5353")));
        assert_eq!(parse_server("2001:db8::1"), Some(sa("[2001:db8::1]:53")));
        assert_eq!(parse_server("[2001:db8::1]"), Some(sa("[2001:db8::1]:53")));
        assert_eq!(
            parse_server("[2001:db8::1]:5353"),
            Some(sa("[2001:db8::1]:5353"))
        );
        for bad in [
            "",
            "ns1.example.com",
            "192.0.2.1:0",
            "192.0.2.1:x",
            "[192.0.2.1]",
            "::1]",
        ] {
            assert_eq!(parse_server(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch example.com\noptions ndots:2\nnameserver 192.0.2.53\n\
                    nameserver  2001:db8::53\nnameserver fe80::1%eth0\nnameserver bogus\n";
        let got: Vec<String> = resolv_conf_servers(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, ["192.0.2.53:53", "[2001:db8::53]:53", "[fe80::1]:53"]);
        assert_eq!(
            resolv_conf_servers("search example.com\n"),
            [SocketAddr::from(([127, 0, 0, 1], 53))]
        );
    }

    #[test]
    fn names() {
        assert_eq!(absolute("Example.COM").unwrap().to_ascii(), "example.com.");
        assert!(absolute("example.com.").unwrap().is_fqdn());
        assert_eq!(
            absolute("_dmarc.example.com").unwrap().to_ascii(),
            "_dmarc.example.com."
        );
        assert_eq!(
            absolute("bücher.example").unwrap().to_ascii(),
            "xn--bcher-kva.example."
        );
        for bad in ["", ".", "a..b", ".a", &"x".repeat(64)] {
            assert!(absolute(bad).is_none(), "{bad:?}");
        }
        assert_eq!(host_name(&Name::root()), "");
        assert_eq!(
            host_name(&Name::from_ascii("MX1.Example.com.").unwrap()),
            "mx1.example.com"
        );
        assert_eq!(
            host_name(&Name::from(IpAddr::from([192, 0, 2, 1]))),
            "1.2.0.192.in-addr.arpa"
        );
    }

    #[test]
    fn from_config_reads_both_parameters() {
        let dns = Dns::from_config(&cfg(
            "dns_nameservers = 192.0.2.1, [2001:db8::1]:5353\ndns_timeout = 3s\n",
        ))
        .unwrap();
        assert_eq!(
            dns.servers(),
            [
                SocketAddr::from(([192, 0, 2, 1], 53)),
                "[2001:db8::1]:5353".parse().unwrap()
            ]
        );
        assert_eq!(dns.inner.timeout, Duration::from_secs(3));
        let e = Dns::from_config(&cfg("dns_nameservers = ns1.example.com\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "main.cf, line 1: bad value for dns_nameservers: \"ns1.example.com\": expected a list of addresses, like 192.0.2.1, 192.0.2.1:5353 or [2001:db8::1]:53"
        );
        let e =
            Dns::from_config(&cfg("dns_nameservers = 192.0.2.1\ndns_timeout = 0\n")).unwrap_err();
        assert!(e.to_string().contains("bad value for dns_timeout"), "{e}");
    }

    #[test]
    fn errors_read_like_postfix() {
        assert_eq!(
            failed("example.com.", "MX").to_string(),
            "Host or domain name not found. Name service error for name=example.com type=MX: Host not found, try again"
        );
        assert!(DnsError::NotFound.is_permanent());
        assert!(DnsError::NoData.is_permanent());
        assert!(!failed("a", "A").is_permanent());
    }

    #[test]
    fn no_server_is_a_temporary_failure() {
        let dns = Dns::with_servers(Vec::new(), Duration::from_millis(100));
        assert!(matches!(dns.mx("example.com"), Err(DnsError::Failed(_))));
        assert_eq!(dns.mx(""), Err(DnsError::NotFound));
        assert_eq!(
            dns.addresses("example.com", false, false),
            Err(DnsError::NoData)
        );
    }
}
