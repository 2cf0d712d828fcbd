//! The resolver (`ironpost::dns`) against testkit's DNS server: MX order
//! and null MX, addresses, the three kinds of "nothing" (NXDOMAIN, NODATA,
//! temporary failure), PTR, TXT, CNAME chains, zone changes seen at once,
//! calls from tokio workers, and the two parameters read from main.cf.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ironpost::dns::{Dns, DnsError, Mx};
use ironpost_conf::{Config, HostFacts};
use ironpost_testkit::dns::DnsServer;

use crate::common::ConfigDir;

const ZONE: &str = "
# mail for example.com goes to two hosts
example.com        MX    20 mx2.example.com
Example.COM        MX    10 MX1.Example.com.
example.com        MX    10 mx1b.example.com
example.com        TXT   \"v=spf1 -all\"
mx1.example.com    A     127.0.0.2
mx1.example.com    AAAA  ::1
mx1b.example.com   A     127.0.0.3
mx2.example.com    AAAA  2001:db8::2
mx2.example.com    A     192.0.2.2
nomail.example     MX    0 .
noaddr.example     MX    10 mx1.example.com
www.example.com    CNAME mx1.example.com
chain.example.com  CNAME www.example.com
dangling.example   CNAME nowhere.example
text.example       TXT   unquoted words   with spaces
text.example       TXT   \"two \" \"strings\"
1.2.0.192.in-addr.arpa PTR host1.Example.net
192.0.2.1          PTR   alias1.example.net
2001:db8::25       PTR   mail6.example.net
127.0.0.2          PTR   mx1.example.com
2.0.0.127.zen.dnsbl.example A 127.0.0.2
2.0.0.127.zen.dnsbl.example TXT \"listed\"
broken.example     SERVFAIL
silent.example     TIMEOUT
";

fn dns(server: &DnsServer) -> Dns {
    Dns::with_servers(vec![server.addr], Duration::from_secs(2))
}

fn mx(preference: u16, exchange: &str) -> Mx {
    Mx {
        preference,
        exchange: exchange.to_string(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn mx_records_sorted_by_preference_ties_in_server_order() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    assert_eq!(
        dns.mx("example.com").unwrap(),
        [
            mx(10, "mx1.example.com"),
            mx(10, "mx1b.example.com"),
            mx(20, "mx2.example.com")
        ]
    );
    // Case and a trailing dot do not matter.
    assert_eq!(dns.mx("EXAMPLE.com.").unwrap().len(), 3);
}

#[test]
fn null_mx_has_an_empty_exchange() {
    let server = DnsServer::start(ZONE);
    let mxs = dns(&server).mx("nomail.example").unwrap();
    assert_eq!(mxs, [mx(0, "")]);
    assert!(mxs[0].is_null());
}

#[test]
fn addresses_a_and_aaaa() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    assert_eq!(
        dns.addresses("mx1.example.com", true, true).unwrap(),
        [ip("127.0.0.2"), ip("::1")]
    );
    assert_eq!(
        dns.addresses("mx2.example.com", true, true).unwrap(),
        [ip("192.0.2.2"), ip("2001:db8::2")]
    );
    assert_eq!(
        dns.addresses("mx1.example.com", true, false).unwrap(),
        [ip("127.0.0.2")]
    );
    assert_eq!(
        dns.addresses("mx1.example.com", false, true).unwrap(),
        [ip("::1")]
    );
    // Only one of the two types: the other is not an error.
    assert_eq!(
        dns.addresses("mx1b.example.com", true, true).unwrap(),
        [ip("127.0.0.3")]
    );
    assert_eq!(
        dns.addresses("mx1b.example.com", false, true),
        Err(DnsError::NoData)
    );
    assert_eq!(
        dns.a("mx1.example.com").unwrap(),
        [Ipv4Addr::new(127, 0, 0, 2)]
    );
    assert_eq!(dns.aaaa("mx1.example.com").unwrap(), [Ipv6Addr::LOCALHOST]);
}

#[test]
fn nodata_and_nxdomain_are_told_apart() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    // The name exists, with other types only.
    assert_eq!(
        dns.addresses("noaddr.example", true, true),
        Err(DnsError::NoData)
    );
    assert_eq!(dns.mx("mx1.example.com"), Err(DnsError::NoData));
    assert_eq!(dns.txt("mx1.example.com"), Err(DnsError::NoData));
    // A name with only names below it exists too.
    assert_eq!(dns.mx("in-addr.arpa"), Err(DnsError::NoData));
    assert_eq!(dns.a("zen.dnsbl.example"), Err(DnsError::NoData));
    // A name that does not exist.
    assert_eq!(dns.mx("nosuch.example.com"), Err(DnsError::NotFound));
    assert_eq!(
        dns.addresses("nosuch.example.com", true, true),
        Err(DnsError::NotFound)
    );
    assert_eq!(dns.txt("nosuch.example"), Err(DnsError::NotFound));
    assert_eq!(dns.ptr(ip("192.0.2.99")), Err(DnsError::NotFound));
    // A DNSBL that does not list an address.
    assert_eq!(
        dns.a("3.0.0.127.zen.dnsbl.example"),
        Err(DnsError::NotFound)
    );
    assert_eq!(
        dns.a("2.0.0.127.zen.dnsbl.example").unwrap(),
        [Ipv4Addr::new(127, 0, 0, 2)]
    );
    assert_eq!(dns.txt("2.0.0.127.zen.dnsbl.example").unwrap(), ["listed"]);
    // A name that cannot be one does not exist either.
    assert_eq!(dns.mx("a..b"), Err(DnsError::NotFound));
}

#[test]
fn servfail_is_a_temporary_failure() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    let e = dns.mx("broken.example").unwrap_err();
    assert_eq!(
        e,
        DnsError::Failed(
            "Host or domain name not found. Name service error for name=broken.example type=MX: Host not found, try again"
                .into()
        )
    );
    assert!(!e.is_permanent());
    assert!(matches!(
        dns.addresses("broken.example", true, true),
        Err(DnsError::Failed(_))
    ));
    assert!(matches!(
        dns.txt("broken.example"),
        Err(DnsError::Failed(_))
    ));
}

#[test]
fn no_answer_is_a_temporary_failure() {
    let server = DnsServer::start(ZONE);
    let dns = Dns::with_servers(vec![server.addr], Duration::from_millis(200));
    let e = dns.mx("silent.example").unwrap_err();
    assert!(e.to_string().contains("name=silent.example type=MX"), "{e}");
    assert!(!e.is_permanent());
    assert!(matches!(
        dns.addresses("silent.example", true, true),
        Err(DnsError::Failed(_))
    ));
    // The server still answers other names.
    assert_eq!(dns.mx("nomail.example").unwrap(), [mx(0, "")]);
}

#[test]
fn no_server_listening_is_a_temporary_failure() {
    let server = DnsServer::start(ZONE);
    let addr = server.addr;
    drop(server);
    let dns = Dns::with_servers(vec![addr], Duration::from_millis(200));
    assert!(matches!(dns.mx("example.com"), Err(DnsError::Failed(_))));
}

#[test]
fn ptr_v4_and_v6() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    // Two records: the in-addr.arpa line and the by-address shorthand.
    let mut names = dns.ptr(ip("192.0.2.1")).unwrap();
    names.sort();
    assert_eq!(names, ["alias1.example.net", "host1.example.net"]);
    assert_eq!(dns.ptr(ip("2001:db8::25")).unwrap(), ["mail6.example.net"]);
    // Loopback addresses are asked of the server too (hickory's resolver
    // would answer "localhost" itself).
    assert_eq!(dns.ptr(ip("127.0.0.2")).unwrap(), ["mx1.example.com"]);
    assert_eq!(dns.ptr(ip("2001:db8::26")), Err(DnsError::NotFound));
}

#[test]
fn txt_records_strings_concatenated() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    assert_eq!(dns.txt("example.com").unwrap(), ["v=spf1 -all"]);
    let mut texts = dns.txt("text.example").unwrap();
    texts.sort();
    assert_eq!(texts, ["two strings", "unquoted words   with spaces"]);
    // Longer than one character-string (255 bytes): split by the server,
    // joined again by the resolver.
    let key = "p=".to_string() + &"A".repeat(600);
    server.set_zone(&format!("sel._domainkey.example TXT \"v=DKIM1; {key}\"\n"));
    assert_eq!(
        dns.txt("sel._domainkey.example").unwrap(),
        [format!("v=DKIM1; {key}")]
    );
}

#[test]
fn cname_chains_are_followed() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    assert_eq!(
        dns.addresses("www.example.com", true, true).unwrap(),
        [ip("127.0.0.2"), ip("::1")]
    );
    assert_eq!(
        dns.a("chain.example.com").unwrap(),
        [Ipv4Addr::new(127, 0, 0, 2)]
    );
    // The target exists without records of the type; the target does not
    // exist.
    assert_eq!(dns.mx("www.example.com"), Err(DnsError::NoData));
    assert_eq!(dns.a("dangling.example"), Err(DnsError::NotFound));
}

#[test]
fn zone_changes_are_seen_by_the_next_lookup() {
    let server = DnsServer::start("host.example A 192.0.2.1\n");
    let dns = dns(&server);
    assert_eq!(
        dns.a("host.example").unwrap(),
        [Ipv4Addr::new(192, 0, 2, 1)]
    );
    assert_eq!(dns.mx("new.example"), Err(DnsError::NotFound));
    server.set_zone("host.example A 192.0.2.9\nnew.example MX 5 host.example\n");
    assert_eq!(
        dns.a("host.example").unwrap(),
        [Ipv4Addr::new(192, 0, 2, 9)]
    );
    assert_eq!(dns.mx("new.example").unwrap(), [mx(5, "host.example")]);
    server.set_zone("new.example A 192.0.2.5\n");
    assert_eq!(dns.a("host.example"), Err(DnsError::NotFound));
    assert_eq!(dns.mx("new.example"), Err(DnsError::NoData));
    assert_eq!(
        dns.addresses("new.example", true, true).unwrap(),
        [ip("192.0.2.5")]
    );
}

#[test]
fn blocking_calls_from_tokio_workers() {
    let server = DnsServer::start(ZONE);
    let dns = dns(&server);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let dns = dns.clone();
                tokio::spawn(async move { (dns.mx("example.com"), dns.ptr(ip("192.0.2.1"))) })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    });
    for (mxs, ptr) in results {
        assert_eq!(mxs.unwrap().len(), 3);
        assert_eq!(ptr.unwrap().len(), 2);
    }
}

#[test]
fn from_config_reads_dns_nameservers_and_dns_timeout() {
    let server = DnsServer::start(ZONE);
    let cd = ConfigDir::new(&format!(
        "dns_nameservers = {}\ndns_timeout = 1s\n",
        server.addr
    ));
    let cfg = Config::load(Some(cd.path()), &HostFacts::default()).unwrap();
    let dns = Dns::from_config(&cfg).unwrap();
    assert_eq!(dns.servers(), [server.addr]);
    assert_eq!(dns.mx("nomail.example").unwrap(), [mx(0, "")]);

    // A v6 server with a port, in brackets, and a bad entry.
    let cd = ConfigDir::new("dns_nameservers = [::1]:5353\n");
    let cfg = Config::load(Some(cd.path()), &HostFacts::default()).unwrap();
    assert_eq!(
        Dns::from_config(&cfg).unwrap().servers(),
        ["[::1]:5353".parse().unwrap()]
    );
    let cd = ConfigDir::new("dns_nameservers = 127.0.0.1 localhost\n");
    let cfg = Config::load(Some(cd.path()), &HostFacts::default()).unwrap();
    let e = Dns::from_config(&cfg).unwrap_err().to_string();
    assert!(
        e.ends_with("main.cf, line 1: bad value for dns_nameservers: \"localhost\": expected a list of addresses, like 192.0.2.1, 192.0.2.1:5353 or [2001:db8::1]:53"),
        "{e}"
    );
}
