//! Which delivery agent takes a recipient, and where to: what Postfix's
//! trivial-rewrite decides with transport_maps, relayhost and the
//! `*_transport` parameters.
//!
//! By address class ([`crate::resolve::AddressClass`]):
//!
//! | class          | default                                     |
//! |----------------|---------------------------------------------|
//! | local          | local_transport (`local:$myhostname`)       |
//! | virtual        | virtual_transport (`virtual`)               |
//! | relay          | relay_transport (`relay`), to relayhost or the domain |
//! | other          | default_transport (`smtp`), to sender_dependent_relayhost_maps, relayhost or the domain |
//!
//! transport_maps comes first when it has an entry: the full address,
//! then the domain, then `.parent` domains, then `*` (transport(5)). A
//! result is `transport:nexthop`; an empty part keeps the default.
//! Transports: `smtp` and `relay` (SMTP client), `local`, `virtual`,
//! `error:text` (bounce), `retry:text` (defer), `discard:text` (drop).
//!
//! Next hops as Postfix writes them: `host` and `host:port` are looked up
//! as MX records, `[host]` and `[host]:port` are connected to directly.

use ironpost_conf::{ConfError, Config, params};

use crate::maps::{LookupError, MapContext, MapList};
use crate::resolve::{AddressClass, Resolved};

/// Where the SMTP client connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nexthop {
    /// A domain (MX lookup) or a host name or address.
    pub host: String,
    pub port: Option<u16>,
    /// Look up MX records (`host`), or not (`[host]`).
    pub mx: bool,
}

impl Nexthop {
    /// Parses `host`, `host:port`, `[host]`, `[host]:port`, `[ipv6]:port`.
    pub fn parse(text: &str) -> Option<Nexthop> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        if let Some(rest) = t.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            if host.is_empty() {
                return None;
            }
            let host = host
                .strip_prefix("ipv6:")
                .or(host.strip_prefix("IPv6:"))
                .unwrap_or(host);
            return Some(Nexthop {
                host: host.to_lowercase(),
                port,
                mx: false,
            });
        }
        let (host, port) = match t.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse().ok()?)),
            _ => (t, None),
        };
        Some(Nexthop {
            host: host.trim_end_matches('.').to_lowercase(),
            port,
            mx: true,
        })
    }
}

impl std::fmt::Display for Nexthop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.mx, self.port) {
            (true, None) => write!(f, "{}", self.host),
            (true, Some(p)) => write!(f, "{}:{p}", self.host),
            (false, None) => write!(f, "[{}]", self.host),
            (false, Some(p)) => write!(f, "[{}]:{p}", self.host),
        }
    }
}

/// The agent a recipient goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Local,
    Virtual,
    /// The SMTP client; `name` is the transport's name (`smtp`, `relay`),
    /// used as the program name in the log.
    Smtp {
        name: String,
        nexthop: Nexthop,
    },
    /// Bounce with this text.
    Error(String),
    /// Defer with this text.
    Retry(String),
    /// Drop, reporting success, with this text.
    Discard(String),
}

/// The routing rules of one configuration.
#[derive(Debug)]
pub struct Router {
    transport_maps: MapList,
    sender_relayhost: MapList,
    relayhost: Option<String>,
    local_transport: String,
    virtual_transport: String,
    relay_transport: String,
    default_transport: String,
    delimiters: String,
}

impl Router {
    pub fn from_config(cfg: &Config, ctx: &MapContext) -> Result<Router, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        Ok(Router {
            transport_maps: MapList::open_all(&cfg.get_maps(params::TRANSPORT_MAPS)?, ctx),
            sender_relayhost: MapList::open_all(
                &cfg.get_maps(params::SENDER_DEPENDENT_RELAYHOST_MAPS)?,
                ctx,
            ),
            relayhost: Some(s(params::RELAYHOST)?).filter(|r| !r.is_empty()),
            local_transport: s(params::LOCAL_TRANSPORT)?,
            virtual_transport: s(params::VIRTUAL_TRANSPORT)?,
            relay_transport: s(params::RELAY_TRANSPORT)?,
            default_transport: s(params::DEFAULT_TRANSPORT)?,
            delimiters: s(params::RECIPIENT_DELIMITER)?,
        })
    }

    /// The transport for a resolved recipient of a message from `sender`.
    pub fn route(&self, r: &Resolved, sender: &str) -> Result<Transport, LookupError> {
        let (default, default_hop) = match r.class {
            AddressClass::Local => (self.local_transport.as_str(), None),
            AddressClass::VirtualMailbox | AddressClass::VirtualAlias => {
                (self.virtual_transport.as_str(), None)
            }
            AddressClass::Relay => (
                self.relay_transport.as_str(),
                Some(self.relayhost.clone().unwrap_or_else(|| r.domain.clone())),
            ),
            AddressClass::Default => {
                let by_sender = if sender.is_empty() || self.sender_relayhost.is_empty() {
                    None
                } else {
                    self.sender_relayhost
                        .find_address(sender, &self.delimiters, false)?
                        .map(|f| f.value)
                };
                (
                    self.default_transport.as_str(),
                    Some(
                        by_sender
                            .or_else(|| self.relayhost.clone())
                            .unwrap_or_else(|| r.domain.clone()),
                    ),
                )
            }
        };
        // The next hop: the transport's own (`local:$myhostname`), else the
        // class's; an entry's replaces both. Texts of error:, retry: and
        // discard: come only from what was written for them.
        let (name, own) = split_transport(default);
        let mut name = name.to_string();
        let mut text = own.filter(|h| !h.is_empty()).map(str::to_string);
        let mut hop_given = text.clone().or(default_hop);
        if let Some(entry) = self.transport_entry(r)? {
            let (n, h) = split_transport(&entry);
            if !n.is_empty() {
                name = n.to_string();
                text = None;
            }
            if let Some(h) = h.filter(|h| !h.is_empty()) {
                hop_given = Some(h.to_string());
                text = Some(h.to_string());
            }
        }
        let text = text.unwrap_or_default();
        Ok(match name.as_str() {
            "local" => Transport::Local,
            "virtual" => Transport::Virtual,
            "error" => Transport::Error(if text.is_empty() {
                "mail for this destination is refused".into()
            } else {
                text
            }),
            "retry" => Transport::Retry(if text.is_empty() {
                "delivery is suspended".into()
            } else {
                text
            }),
            "discard" => Transport::Discard(if text.is_empty() {
                "discarded".into()
            } else {
                text
            }),
            "smtp" | "relay" => {
                let hop_text = hop_given.unwrap_or_else(|| r.domain.clone());
                match Nexthop::parse(&hop_text) {
                    Some(nexthop) => Transport::Smtp {
                        name: name.clone(),
                        nexthop,
                    },
                    None => Transport::Retry(format!("bad next hop \"{hop_text}\"")),
                }
            }
            other => Transport::Retry(format!(
                "transport \"{other}\" is not available in ironpost"
            )),
        })
    }

    /// transport_maps: the address, the domain, its parents, `*`.
    fn transport_entry(&self, r: &Resolved) -> Result<Option<String>, LookupError> {
        if self.transport_maps.is_empty() {
            return Ok(None);
        }
        let address = format!("{}@{}", r.local, r.domain);
        if let Some(v) = self.transport_maps.find(&address)? {
            return Ok(Some(v));
        }
        if let Some(v) = self.transport_maps.find(&r.domain)? {
            return Ok(Some(v));
        }
        let mut d = r.domain.as_str();
        while let Some((_, parent)) = d.split_once('.') {
            if let Some(v) = self.transport_maps.find(&format!(".{parent}"))? {
                return Ok(Some(v));
            }
            d = parent;
        }
        self.transport_maps.find("*")
    }
}

/// `transport:nexthop` → (transport, nexthop); no colon: all transport.
fn split_transport(s: &str) -> (&str, Option<&str>) {
    match s.trim().split_once(':') {
        Some((t, h)) => (t.trim(), Some(h.trim())),
        None => (s.trim(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::Resolver;
    use ironpost_conf::HostFacts;
    use ironpost_conf::maincf::MainCf;
    use std::path::{Path, PathBuf};

    fn router(extra: &str) -> (Resolver, Router) {
        let text = format!(
            "myhostname = mail.example.test\nmydomain = example.test\n\
             mydestination = $myhostname, localhost\nvirtual_mailbox_domains = virt.test\n\
             relay_domains = relay.test\n{extra}\n"
        );
        let cfg = Config::from_main(
            MainCf::parse(Path::new("main.cf"), &text).unwrap(),
            PathBuf::from("/etc/ironpost"),
            false,
            &HostFacts::default(),
        );
        let ctx = MapContext::default();
        (
            Resolver::from_config(&cfg, &ctx, &[]).unwrap(),
            Router::from_config(&cfg, &ctx).unwrap(),
        )
    }

    fn route(extra: &str, rcpt: &str, sender: &str) -> Transport {
        let (res, r) = router(extra);
        r.route(&res.resolve(rcpt).unwrap().unwrap(), sender)
            .unwrap()
    }

    fn smtp(name: &str, hop: &str) -> Transport {
        Transport::Smtp {
            name: name.into(),
            nexthop: Nexthop::parse(hop).unwrap(),
        }
    }

    #[test]
    fn next_hops() {
        let n = Nexthop::parse("[mail.isp.example]:587").unwrap();
        assert_eq!(
            (n.host.as_str(), n.port, n.mx),
            ("mail.isp.example", Some(587), false)
        );
        let n = Nexthop::parse("example.com:2525").unwrap();
        assert_eq!(
            (n.host.as_str(), n.port, n.mx),
            ("example.com", Some(2525), true)
        );
        let n = Nexthop::parse("[2001:db8::1]:25").unwrap();
        assert_eq!(
            (n.host.as_str(), n.port, n.mx),
            ("2001:db8::1", Some(25), false)
        );
        assert_eq!(n.to_string(), "[2001:db8::1]:25");
        assert_eq!(Nexthop::parse("[x]junk"), None);
        assert_eq!(Nexthop::parse(""), None);
    }

    #[test]
    fn defaults_by_class() {
        assert_eq!(
            route("", "jerry@mail.example.test", "a@b"),
            Transport::Local
        );
        assert_eq!(route("", "jerry@virt.test", "a@b"), Transport::Virtual);
        assert_eq!(
            route("", "x@relay.test", "a@b"),
            smtp("relay", "relay.test")
        );
        assert_eq!(
            route("", "x@far.example", "a@b"),
            smtp("smtp", "far.example")
        );
        assert_eq!(
            route("relayhost = [smtp.isp.example]:587", "x@far.example", "a@b"),
            smtp("smtp", "[smtp.isp.example]:587")
        );
        assert_eq!(
            route(
                "relayhost = [smtp.isp.example]\nsender_dependent_relayhost_maps = inline:{ @example.test=[other.example] }",
                "x@far.example",
                "jerry@example.test"
            ),
            smtp("smtp", "[other.example]")
        );
    }

    #[test]
    fn transport_maps_as_transport_5() {
        let maps = "transport_maps = inline:{ {boss@far.example=error:5.7.1 no mail for the boss}, \
                    far.example=smtp:[10.0.0.1]:2525, .sub.example=relay:, \
                    null.example=discard:, local.example=local:, {*=retry:all held} }";
        assert_eq!(
            route(maps, "boss@far.example", "a@b"),
            Transport::Error("5.7.1 no mail for the boss".into())
        );
        assert_eq!(
            route(maps, "x@far.example", "a@b"),
            smtp("smtp", "[10.0.0.1]:2525")
        );
        assert_eq!(
            route(maps, "x@a.sub.example", "a@b"),
            smtp("relay", "a.sub.example")
        );
        assert_eq!(
            route(maps, "x@null.example", "a@b"),
            Transport::Discard("discarded".into())
        );
        assert_eq!(route(maps, "x@local.example", "a@b"), Transport::Local);
        assert_eq!(
            route(maps, "x@else.example", "a@b"),
            Transport::Retry("all held".into())
        );
        // The parent entry does not match the parent itself.
        assert_eq!(
            route(maps, "x@sub.example", "a@b"),
            Transport::Retry("all held".into())
        );
    }
}
