//! Address rewriting and resolution: what Postfix's trivial-rewrite does.
//!
//! Rewriting ([`Resolver::canonical`]): an address without a domain gets
//! `@$myorigin` (append_at_myorigin); a trailing dot on the domain goes.
//!
//! Resolution ([`Resolver::resolve`]) decides the address class
//! (ADDRESS_CLASS_README) from the domain:
//!
//! | class            | domain in                                         | delivered by |
//! |------------------|---------------------------------------------------|--------------|
//! | local            | mydestination, or `[ip]` of inet_interfaces       | local        |
//! | virtual alias    | virtual_alias_domains                             | (aliases only) |
//! | virtual mailbox  | virtual_mailbox_domains                           | virtual      |
//! | relay            | relay_domains                                     | smtp         |
//! | default          | anything else                                     | smtp         |
//!
//! Sender-specified routing is looked for inside quotes (Postfix's
//! resolve_dequoted_address = yes): in a local domain, `user@elsewhere`,
//! `user%elsewhere` (allow_percent_hack) and `elsewhere!user`
//! (swap_bangpath) in the local part are resolved again as addresses of
//! their own, and the result is marked *routed*. A routed address is never
//! an authorized destination, so none of these tricks opens a relay.

use std::net::IpAddr;

use ironpost_conf::{ConfError, Config, params};

use crate::maps::lists::DomainList;
use crate::maps::{LookupError, MapContext};

/// Postfix's address classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Local,
    VirtualAlias,
    VirtualMailbox,
    Relay,
    Default,
}

/// A resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The address after rewriting and routing removal: `user@domain`.
    pub address: String,
    /// The local part, without quotes.
    pub local: String,
    /// The domain, lower case, no trailing dot.
    pub domain: String,
    pub class: AddressClass,
    /// The local part held sender-specified routing.
    pub routed: bool,
}

impl Resolved {
    /// Whether this server may accept mail for the address from anyone:
    /// a final destination or a relay domain, without routing tricks.
    pub fn is_authorized_destination(&self) -> bool {
        !self.routed && self.class != AddressClass::Default
    }
}

/// Which addresses an `[ip]` literal may name for us.
#[derive(Debug, Clone)]
enum OwnAddresses {
    /// inet_interfaces = all: every interface address.
    All(Vec<IpAddr>),
    Listed(Vec<IpAddr>),
}

/// The rewriting and resolution rules of one configuration.
#[derive(Debug)]
pub struct Resolver {
    myorigin: String,
    append_at_myorigin: bool,
    allow_percent_hack: bool,
    swap_bangpath: bool,
    mydestination: DomainList,
    own: OwnAddresses,
    virtual_alias_domains: DomainList,
    virtual_mailbox_domains: DomainList,
    relay_domains: DomainList,
}

/// Splits `local@domain` at the last `@` outside quotes.
pub fn split_address(address: &str) -> (&str, Option<&str>) {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut at = None;
    for (i, c) in address.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            '@' if !in_quotes => at = Some(i),
            _ => {}
        }
    }
    match at {
        Some(i) => (&address[..i], Some(&address[i + 1..])),
        None => (address, None),
    }
}

/// Removes RFC 5321 quoting from a local part: `"a b"` → `a b`,
/// `"a\"b"` → `a"b`.
pub fn unquote_local(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let mut escaped = false;
    for c in local.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c != '"' {
            out.push(c);
        }
    }
    out
}

impl Resolver {
    /// Builds the resolver from the configuration. Tables that cannot be
    /// opened are errors (the server does not start with them).
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        host_addresses: &[IpAddr],
    ) -> Result<Resolver, ConfError> {
        let parent_features = cfg.get_list(params::PARENT_DOMAIN_MATCHES_SUBDOMAINS)?;
        let parent = |feature: &str| parent_features.iter().any(|f| f == feature);
        let list =
            |p: &'static ironpost_conf::Param, feature: &str| -> Result<DomainList, ConfError> {
                let value = cfg.get_str(p)?;
                DomainList::new(&value, parent(feature), ctx).map_err(|msg| {
                    ConfError::new(ironpost_conf::ErrorKind::BadValue {
                        value,
                        expected: msg,
                    })
                    .for_param(p.name)
                })
            };
        let interfaces = cfg.get_list(params::INET_INTERFACES)?;
        let own = if interfaces.iter().any(|i| i == "all") {
            OwnAddresses::All(host_addresses.to_vec())
        } else {
            let mut ips = Vec::new();
            for i in &interfaces {
                match i.as_str() {
                    "localhost" | "loopback-only" => {
                        ips.push(IpAddr::from([127, 0, 0, 1]));
                        ips.push(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]));
                    }
                    other => {
                        if let Ok(ip) = other.trim_matches(|c| c == '[' || c == ']').parse() {
                            ips.push(ip);
                        }
                    }
                }
            }
            OwnAddresses::Listed(ips)
        };
        Ok(Resolver {
            myorigin: cfg.get_str(params::MYORIGIN)?.trim().to_lowercase(),
            append_at_myorigin: cfg.get_bool(params::APPEND_AT_MYORIGIN)?,
            allow_percent_hack: cfg.get_bool(params::ALLOW_PERCENT_HACK)?,
            swap_bangpath: cfg.get_bool(params::SWAP_BANGPATH)?,
            mydestination: list(params::MYDESTINATION, "mydestination")?,
            own,
            virtual_alias_domains: list(params::VIRTUAL_ALIAS_DOMAINS, "virtual_alias_domains")?,
            virtual_mailbox_domains: list(
                params::VIRTUAL_MAILBOX_DOMAINS,
                "virtual_mailbox_domains",
            )?,
            relay_domains: list(params::RELAY_DOMAINS, "relay_domains")?,
        })
    }

    /// The canonical form of an address: `@$myorigin` added when there is
    /// no domain (and append_at_myorigin is on), trailing dots removed. The
    /// null address stays empty.
    pub fn canonical(&self, address: &str) -> String {
        if address.is_empty() {
            return String::new();
        }
        let (local, domain) = split_address(address);
        match domain {
            Some(d) => format!("{local}@{}", d.trim_end_matches('.')),
            None if self.append_at_myorigin && !self.myorigin.is_empty() => {
                format!("{local}@{}", self.myorigin)
            }
            None => local.to_string(),
        }
    }

    /// Whether a domain (or `[ip]` literal) is one of ours: mydestination or
    /// an address this server listens on.
    pub fn is_local_domain(&self, domain: &str) -> Result<bool, LookupError> {
        if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let lit = lit.strip_prefix("IPv6:").unwrap_or(lit);
            let Ok(ip) = lit.parse::<IpAddr>() else {
                return Ok(false);
            };
            return Ok(match &self.own {
                OwnAddresses::All(list) | OwnAddresses::Listed(list) => {
                    list.contains(&ip)
                        || (ip.is_loopback() && matches!(self.own, OwnAddresses::All(_)))
                }
            });
        }
        self.mydestination.matches(domain)
    }

    /// The class of a domain.
    pub fn domain_class(&self, domain: &str) -> Result<AddressClass, LookupError> {
        Ok(if self.is_local_domain(domain)? {
            AddressClass::Local
        } else if self.virtual_alias_domains.matches(domain)? {
            AddressClass::VirtualAlias
        } else if self.virtual_mailbox_domains.matches(domain)? {
            AddressClass::VirtualMailbox
        } else if self.relay_domains.matches(domain)? {
            AddressClass::Relay
        } else {
            AddressClass::Default
        })
    }

    /// Resolves an address (see the module doc). `None` for addresses that
    /// cannot be resolved: an empty domain (`user@`).
    pub fn resolve(&self, address: &str) -> Result<Option<Resolved>, LookupError> {
        let mut current = self.canonical(address);
        let mut routed = false;
        // Each round removes at least one routing operator; the bound only
        // guards against surprises.
        for _ in 0..32 {
            let (local_q, domain) = split_address(&current);
            let local = unquote_local(local_q);
            let Some(domain) = domain.map(|d| d.trim_end_matches('.').to_lowercase()) else {
                return Ok(None);
            };
            if domain.is_empty() {
                return Ok(None);
            }
            let class = self.domain_class(&domain)?;
            if class == AddressClass::Local {
                // Sender-specified routing inside a local address.
                let next = if let Some((user, dest)) = local.rsplit_once('@') {
                    Some(format!("{user}@{dest}"))
                } else if self.allow_percent_hack && local.contains('%') {
                    local.rsplit_once('%').map(|(u, d)| format!("{u}@{d}"))
                } else if self.swap_bangpath && local.contains('!') {
                    local.split_once('!').map(|(h, u)| format!("{u}@{h}"))
                } else {
                    None
                };
                if let Some(next) = next {
                    routed = true;
                    current = next;
                    continue;
                }
            }
            let needs_quotes =
                local.contains(|c: char| c.is_whitespace() || "\"(),:;<>@[\\]".contains(c));
            let local_written = if needs_quotes {
                format!("\"{}\"", local.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                local.clone()
            };
            return Ok(Some(Resolved {
                address: format!("{local_written}@{domain}"),
                local,
                domain,
                class,
                routed,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironpost_conf::{HostFacts, MainCf};
    use std::path::{Path, PathBuf};

    fn resolver(main_cf: &str) -> Resolver {
        let main = MainCf::parse(Path::new("main.cf"), main_cf).unwrap();
        let cfg = Config::from_main(
            main,
            PathBuf::from("/etc/ironpost"),
            false,
            &HostFacts {
                hostname: "mail.example.test".into(),
                interfaces: vec![],
            },
        );
        Resolver::from_config(
            &cfg,
            &MapContext::default(),
            &["192.0.2.2".parse().unwrap()],
        )
        .unwrap()
    }

    const CF: &str = "myhostname = mail.example.test\nmydomain = example.test\nmyorigin = $mydomain\nmydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\nvirtual_mailbox_domains = virt.test\nvirtual_alias_domains = alias.test\nrelay_domains = relay.test\ninet_interfaces = all\n";

    fn res(r: &Resolver, a: &str) -> Option<(String, AddressClass, bool)> {
        r.resolve(a)
            .unwrap()
            .map(|x| (x.address, x.class, x.routed))
    }

    #[test]
    fn classes() {
        let r = resolver(CF);
        use AddressClass::*;
        for (addr, want, class) in [
            ("jerry", "jerry@example.test", Local),
            ("jerry@EXAMPLE.test.", "jerry@example.test", Local),
            ("jerry@mail.example.test", "jerry@mail.example.test", Local),
            ("a@virt.test", "a@virt.test", VirtualMailbox),
            ("a@alias.test", "a@alias.test", VirtualAlias),
            ("a@relay.test", "a@relay.test", Relay),
            ("a@sub.relay.test", "a@sub.relay.test", Relay),
            ("a@elsewhere.test", "a@elsewhere.test", Default),
            ("root@[192.0.2.2]", "root@[192.0.2.2]", Local),
            ("root@[127.0.0.1]", "root@[127.0.0.1]", Local),
            ("root@[198.51.100.1]", "root@[198.51.100.1]", Default),
            (
                "\"john smith\"@example.test",
                "\"john smith\"@example.test",
                Local,
            ),
        ] {
            let got = res(&r, addr).unwrap();
            assert_eq!((got.0.as_str(), got.1), (want, class), "{addr}");
        }
        assert_eq!(res(&r, "user@"), None);
    }

    #[test]
    fn routing_tricks_are_not_authorized_destinations() {
        let r = resolver(CF);
        for addr in [
            "victim%elsewhere.test@example.test",
            "elsewhere.test!victim@example.test",
            "\"victim@elsewhere.test\"@example.test",
            "victim@elsewhere.test@example.test",
            "\"victim%elsewhere.test\"@mail.example.test.",
            "victim%virt.test@example.test",
        ] {
            let x = r.resolve(addr).unwrap().unwrap();
            assert!(x.routed, "{addr}");
            assert!(!x.is_authorized_destination(), "{addr} -> {x:?}");
        }
        let x = r
            .resolve("victim%elsewhere.test@example.test")
            .unwrap()
            .unwrap();
        assert_eq!(x.address, "victim@elsewhere.test");
        // A percent sign in a remote address is not ours to interpret.
        let x = r.resolve("a%b@elsewhere.test").unwrap().unwrap();
        assert!(!x.routed);
    }

    #[test]
    fn hacks_can_be_turned_off() {
        let r = resolver(&format!(
            "{CF}allow_percent_hack = no\nswap_bangpath = no\n"
        ));
        let x = r.resolve("a%b@example.test").unwrap().unwrap();
        assert_eq!(
            (x.local.as_str(), x.class, x.routed),
            ("a%b", AddressClass::Local, false)
        );
        let x = r.resolve("b!a@example.test").unwrap().unwrap();
        assert!(!x.routed);
    }

    #[test]
    fn no_myorigin_append() {
        let r = resolver(&format!("{CF}append_at_myorigin = no\n"));
        assert_eq!(r.canonical("jerry"), "jerry");
        assert_eq!(r.canonical(""), "");
    }
}
