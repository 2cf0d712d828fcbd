//! The client's host name, as Postfix's smtpd finds it at connect time
//! (smtpd_peername_lookup = yes): a PTR lookup of the client address gives
//! the *reverse* name; that name is the client's name only when a forward
//! lookup of it (A for an IPv4 client, AAAA for IPv6) gives the client
//! address back ("forward-confirmed"). Otherwise the name is `unknown`.
//!
//! Each of the two names carries how its lookup ended ([`NameStatus`]), so
//! that reject_unknown_client_hostname and
//! reject_unknown_reverse_client_hostname can tell "no such name" (the
//! configured reply code) from "the DNS failed for now" (always 450).
//!
//! 127.0.0.1 and ::1 are `localhost` without a lookup: what /etc/hosts
//! says on every machine (ironpost never reads it), and no DNS server
//! needs to be asked for the busiest client of all. Every other address,
//! the rest of 127.0.0.0/8 included (tests with several hosts on
//! 127.0.0.x name them in the DNS), is looked up.
//!
//! [`lookup`] blocks (it waits for the DNS, at most twice 2 x dns_timeout:
//! the PTR query, then the forward queries, A and AAAA together); sessions
//! run it on a blocking thread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::{Dns, DnsError};

/// The name Postfix gives a client whose name is not known or not
/// confirmed.
pub const UNKNOWN: &str = "unknown";

/// How a name lookup ended (Postfix's SMTPD_PEER_CODE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameStatus {
    /// Found (and, for the client name, confirmed).
    #[default]
    Ok,
    /// The DNS failed for now (SERVFAIL, no answer in time).
    Temporary,
    /// There is no name (NXDOMAIN, no PTR record), or lookups are off.
    Permanent,
    /// The reverse name does not resolve back to the client address.
    Forged,
}

impl NameStatus {
    /// Whether the failure is final (not worth another try).
    pub fn is_permanent(self) -> bool {
        matches!(self, NameStatus::Permanent | NameStatus::Forged)
    }
}

/// The client's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNames {
    /// The verified name, or `unknown`: the `host` of `host[addr]` in log
    /// lines and in the Received header.
    pub name: String,
    /// The name the PTR record gave, unverified, or `unknown`.
    pub reverse_name: String,
    pub name_status: NameStatus,
    pub reverse_status: NameStatus,
}

impl ClientNames {
    /// `localhost` for both names, as found.
    pub fn localhost() -> ClientNames {
        ClientNames {
            name: "localhost".into(),
            reverse_name: "localhost".into(),
            name_status: NameStatus::Ok,
            reverse_status: NameStatus::Ok,
        }
    }

    /// `unknown` for both names.
    pub fn unknown(status: NameStatus) -> ClientNames {
        ClientNames {
            name: UNKNOWN.into(),
            reverse_name: UNKNOWN.into(),
            name_status: status,
            reverse_status: status,
        }
    }
}

/// Whether `ip` is an address that the hosts file calls `localhost`.
fn is_localhost(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// Looks up the names of `ip` (see the module doc); also returns the
/// warnings to log, in Postfix's words.
pub fn lookup(dns: &Dns, ip: IpAddr) -> (ClientNames, Vec<String>) {
    let mut warnings = Vec::new();
    if is_localhost(ip) {
        return (ClientNames::localhost(), warnings);
    }
    let (reverse, failed) = match dns.ptr(ip) {
        Ok(names) => (names.into_iter().next().filter(|n| !n.is_empty()), false),
        Err(e) => (None, !e.is_permanent()),
    };
    let Some(reverse) = reverse else {
        let status = if failed {
            NameStatus::Temporary
        } else {
            NameStatus::Permanent
        };
        return (ClientNames::unknown(status), warnings);
    };
    if !is_valid_ptr_name(&reverse) {
        warnings.push(
            if reverse.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                format!("warning: numeric hostname: {reverse}")
            } else {
                format!("warning: {ip}: malformed hostname in PTR record: {reverse}")
            },
        );
        return (ClientNames::unknown(NameStatus::Permanent), warnings);
    }
    let forward = dns.addresses(&reverse, ip.is_ipv4(), ip.is_ipv6());
    let name_status = match &forward {
        Ok(addrs) if addrs.contains(&ip) => NameStatus::Ok,
        Ok(_) => {
            warnings.push(format!(
                "warning: hostname {reverse} does not resolve to address {ip}"
            ));
            NameStatus::Forged
        }
        Err(e) => {
            // The words of getaddrinfo(3), which Postfix quotes here.
            let why = match e {
                DnsError::Failed(_) => "Temporary failure in name resolution",
                _ => "Name or service not known",
            };
            warnings.push(format!(
                "warning: hostname {reverse} does not resolve to address {ip}: {why}"
            ));
            if e.is_permanent() {
                NameStatus::Forged
            } else {
                NameStatus::Temporary
            }
        }
    };
    let names = ClientNames {
        name: if name_status == NameStatus::Ok {
            reverse.clone()
        } else {
            UNKNOWN.into()
        },
        reverse_name: reverse,
        name_status,
        reverse_status: NameStatus::Ok,
    };
    (names, warnings)
}

/// A host name fit to stand for a client: letters, digits, `-`, `_` and
/// dots, labels of 1 to 63 characters, not all digits and dots (a PTR
/// record that holds an address is no name), and not `unknown` itself.
fn is_valid_ptr_name(name: &str) -> bool {
    name.len() <= 255
        && name != UNKNOWN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironpost_testkit::dns::DnsServer;
    use std::time::Duration;

    #[test]
    fn ptr_names_that_cannot_name_a_client() {
        for good in ["mail.example.com", "a", "host-1.example", "_x.example"] {
            assert!(is_valid_ptr_name(good), "{good}");
        }
        for bad in [
            "",
            "192.0.2.1",
            "a..b",
            "-a.example",
            "a-.example",
            "a b.example",
            "unknown",
            &format!("{}.example", "x".repeat(64)),
        ] {
            assert!(!is_valid_ptr_name(bad), "{bad:?}");
        }
    }

    fn server_lookup(server: &DnsServer, ip: &str) -> (ClientNames, Vec<String>) {
        let dns = Dns::with_servers(vec![server.addr], Duration::from_secs(2));
        lookup(&dns, ip.parse().unwrap())
    }

    fn names(name: &str, reverse: &str, status: NameStatus, rstatus: NameStatus) -> ClientNames {
        ClientNames {
            name: name.into(),
            reverse_name: reverse.into(),
            name_status: status,
            reverse_status: rstatus,
        }
    }

    #[test]
    fn confirmed_forged_missing_and_failing_names() {
        use NameStatus::*;
        let server = DnsServer::start(
            "192.0.2.1 PTR Mail.Example.com\n\
             mail.example.com A 192.0.2.1\n\
             192.0.2.2 PTR forged.example\n\
             forged.example A 192.0.2.99\n\
             192.0.2.3 PTR nxdomain.example\n\
             192.0.2.4 PTR broken.example\n\
             broken.example SERVFAIL\n\
             5.2.0.192.in-addr.arpa SERVFAIL\n\
             192.0.2.6 PTR 192.0.2.6\n\
             2001:db8::1 PTR mail6.example.com\n\
             mail6.example.com AAAA 2001:db8::1\n\
             mail6.example.com A 192.0.2.1\n",
        );
        let unknown = |r: &str, s| names("unknown", r, s, Ok);
        for (ip, want, warning) in [
            (
                "192.0.2.1",
                names("mail.example.com", "mail.example.com", Ok, Ok),
                None,
            ),
            (
                "2001:db8::1",
                names("mail6.example.com", "mail6.example.com", Ok, Ok),
                None,
            ),
            (
                "192.0.2.2",
                unknown("forged.example", Forged),
                Some("warning: hostname forged.example does not resolve to address 192.0.2.2"),
            ),
            (
                "192.0.2.3",
                unknown("nxdomain.example", Forged),
                Some(
                    "warning: hostname nxdomain.example does not resolve to address 192.0.2.3: Name or service not known",
                ),
            ),
            (
                "192.0.2.4",
                unknown("broken.example", Temporary),
                Some(
                    "warning: hostname broken.example does not resolve to address 192.0.2.4: Temporary failure in name resolution",
                ),
            ),
            ("192.0.2.5", ClientNames::unknown(Temporary), None),
            (
                "192.0.2.6",
                ClientNames::unknown(Permanent),
                Some("warning: numeric hostname: 192.0.2.6"),
            ),
            ("192.0.2.7", ClientNames::unknown(Permanent), None),
        ] {
            let (got, warnings) = server_lookup(&server, ip);
            assert_eq!(got, want, "{ip}");
            assert_eq!(warnings, warning.into_iter().collect::<Vec<_>>(), "{ip}");
        }
    }

    #[test]
    fn localhost_is_not_looked_up_other_loopback_addresses_are() {
        use NameStatus::*;
        let server = DnsServer::start(
            "127.0.0.1 PTR elsewhere.example
             127.0.0.2 PTR mx.a.test
             mx.a.test A 127.0.0.2
             127.0.0.4 PTR forged.example
             5.0.0.127.in-addr.arpa SERVFAIL
",
        );
        // What the DNS says of 127.0.0.1 does not matter.
        for ip in ["127.0.0.1", "::1"] {
            assert_eq!(
                server_lookup(&server, ip).0,
                ClientNames::localhost(),
                "{ip}"
            );
        }
        assert_eq!(
            server_lookup(&server, "127.0.0.2").0,
            names("mx.a.test", "mx.a.test", Ok, Ok)
        );
        assert_eq!(
            server_lookup(&server, "127.0.0.3").0,
            ClientNames::unknown(Permanent)
        );
        assert_eq!(
            server_lookup(&server, "127.0.0.4").0,
            names("unknown", "forged.example", Forged, Ok)
        );
        assert_eq!(
            server_lookup(&server, "127.0.0.5").0,
            ClientNames::unknown(Temporary)
        );
    }

    #[test]
    fn without_a_server_localhost_stays_localhost_and_others_are_unknown_for_now() {
        // No server: every query fails at once, temporarily.
        let dns = Dns::with_servers(Vec::new(), Duration::from_millis(100));
        let (names, warnings) = lookup(&dns, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(names, ClientNames::localhost());
        assert!(warnings.is_empty());
        let (names, _) = lookup(&dns, "::1".parse().unwrap());
        assert_eq!(names, ClientNames::localhost());
        let (names, _) = lookup(&dns, "127.0.0.2".parse().unwrap());
        assert_eq!(names, ClientNames::unknown(NameStatus::Temporary));
        let (names, _) = lookup(&dns, IpAddr::from([192, 0, 2, 1]));
        assert_eq!(names, ClientNames::unknown(NameStatus::Temporary));
        assert!(!NameStatus::Temporary.is_permanent());
        assert!(NameStatus::Forged.is_permanent());
    }
}
