//! smtpd and the DNS: client names (PTR, forward-confirmed) in the log
//! and the Received header, and the DNS-based restrictions
//! (reject_unknown_*, reject_rbl_client, reject_rhsbl_*,
//! permit_dnswl_client) with Postfix's replies, against testkit's DNS
//! server. The instance listens on 127.0.0.10; clients connect from
//! 127.0.0.2, 127.0.0.3, ... each a host of its own in the zone. The
//! replies are those of Postfix 3.7 for the same zone and restrictions.

use std::net::IpAddr;

use ironpost_testkit::dns::DnsServer;
use ironpost_testkit::instance::{Instance, Smtp, free_port};

use crate::common::*;

const ZONE: &str = "
# 127.0.0.7: a name that confirms. (127.0.0.1 is always localhost and
# never looked up.)
127.0.0.7               PTR   client.example
client.example          A     127.0.0.7
# 127.0.0.2: listed at zen.example, with a reason; its name confirms.
127.0.0.2               PTR   listed.example
listed.example          A     127.0.0.2
2.0.0.127.zen.example   A     127.0.0.2
2.0.0.127.zen.example   TXT   \"Listed: see https://zen.example/?127.0.0.2\"
# 127.0.0.3: no PTR record.
# 127.0.0.4: a PTR record that does not confirm.
127.0.0.4               PTR   forged.example
forged.example          A     192.0.2.99
# 127.0.0.5: its PTR lookup fails (SERVFAIL).
5.0.0.127.in-addr.arpa  SERVFAIL
# 127.0.0.6: on the allow list and on the block list.
6.0.0.127.dnswl.example A     127.0.10.0
6.0.0.127.zen.example   A     127.0.0.4
# A domain on the rhsbl list.
bad.example.rhsbl.example A   127.0.0.2
# Mail domains: with MX, with only an address, a null MX, a broken one.
mx.example              MX    10 mail.mx.example
mail.mx.example         A     192.0.2.8
aonly.example           A     192.0.2.7
nullmx.example          MX    0 .
broken.example          SERVFAIL
";

const DOMAIN: &str = "dns.test";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// An instance on 127.0.0.10 asking `dns`, with `extra` in main.cf.
fn instance(dns: &DnsServer, extra: &str) -> Instance {
    let port = loop {
        let p = free_port();
        if std::net::TcpListener::bind((ip(10), p)).is_ok() {
            break p;
        }
    };
    let mut inst = Instance::on_host(
        ironpost(),
        ip(10),
        port,
        DOMAIN,
        &format!(
            "dns_nameservers = {}\nmynetworks = 127.0.0.0/8\n{extra}",
            dns.addr
        ),
    );
    inst.start();
    inst
}

/// A session from 127.0.0.`from`, after EHLO `helo`.
fn session(inst: &Instance, from: u8, helo: &str) -> Smtp {
    let mut s = inst.connect_from(ip(from));
    assert!(s.cmd(&format!("EHLO {helo}")).starts_with("250"));
    s
}

/// The reply to RCPT TO:<rcpt> after MAIL FROM:<sender> (then RSET).
fn rcpt(s: &mut Smtp, sender: &str, rcpt: &str) -> String {
    assert_eq!(s.cmd(&format!("MAIL FROM:<{sender}>")), "250 2.1.0 Ok");
    let r = s.cmd(&format!("RCPT TO:<{rcpt}>"));
    assert_eq!(s.cmd("RSET"), "250 2.0.0 Ok");
    r
}

fn jerry() -> String {
    format!("jerry@{DOMAIN}")
}

#[test]
fn confirmed_names_in_the_log_and_the_received_header() {
    let dns = DnsServer::start(ZONE);
    let inst = instance(&dns, "");
    let mut s = session(&inst, 7, "helo.example");
    assert_eq!(s.cmd("MAIL FROM:<a@mx.example>"), "250 2.1.0 Ok");
    assert_eq!(s.cmd(&format!("RCPT TO:<{}>", jerry())), "250 2.1.5 Ok");
    assert!(s.cmd("DATA").starts_with("354"));
    s.send_raw(b"Subject: named\r\n\r\nhello\r\n.\r\n");
    let r = s.read_reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let id = r.trim_end().rsplit(' ').next().unwrap().to_string();
    s.cmd("QUIT");
    let m = String::from_utf8(inst.wait_messages("jerry", 1).remove(0)).unwrap();
    assert!(
        m.contains("Received: from helo.example (client.example [127.0.0.7])\n"),
        "{m}"
    );
    let log = inst.wait_log(&format!("{id}: client=client.example[127.0.0.7]"));
    assert!(
        log.contains("connect from client.example[127.0.0.7]"),
        "{log}"
    );

    // No PTR record, a PTR record that does not confirm, a failing
    // lookup: unknown (loopback addresses other than 127.0.0.1 are looked
    // up as any).
    for (from, warning) in [
        (3, None),
        (
            4,
            Some("warning: hostname forged.example does not resolve to address 127.0.0.4"),
        ),
        (5, None),
    ] {
        let mut s = session(&inst, from, "helo.example");
        s.cmd("QUIT");
        let log = inst.wait_log(&format!("disconnect from unknown[127.0.0.{from}]"));
        assert!(
            log.contains(&format!("connect from unknown[127.0.0.{from}]")),
            "{log}"
        );
        if let Some(w) = warning {
            assert!(log.contains(w), "{log}");
        }
    }
}

#[test]
fn unknown_client_names() {
    let dns = DnsServer::start(ZONE);
    let inst = instance(
        &dns,
        "smtpd_client_restrictions = reject_unknown_reverse_client_hostname, reject_unknown_client_hostname\n\
         unknown_client_reject_code = 550\n",
    );
    let to = jerry();
    for (from, want) in [
        (1, "250 2.1.5 Ok"),
        (2, "250 2.1.5 Ok"),
        (
            3,
            "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.3]",
        ),
        // The reverse name exists, it does not confirm.
        (
            4,
            "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.4]",
        ),
        // The DNS failed: 450 whatever unknown_client_reject_code says.
        (
            5,
            "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.5]",
        ),
    ] {
        let mut s = session(&inst, from, "helo.example");
        assert_eq!(
            rcpt(&mut s, "a@mx.example", &to),
            want,
            "from 127.0.0.{from}"
        );
        s.cmd("QUIT");
    }
    let log = inst.wait_log("disconnect from unknown[127.0.0.5]");
    for line in [
        format!(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.3]: 550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.3]; from=<a@mx.example> to=<{to}> proto=ESMTP helo=<helo.example>"
        ),
        format!(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.4]: 550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.4]; from=<a@mx.example> to=<{to}> proto=ESMTP helo=<helo.example>"
        ),
        format!(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.5]: 450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.5]; from=<a@mx.example> to=<{to}> proto=ESMTP helo=<helo.example>"
        ),
    ] {
        assert!(log.contains(&line), "{line}\n{log}");
    }
}

#[test]
fn unknown_domains_and_helo_names() {
    let dns = DnsServer::start(ZONE);
    let inst = instance(
        &dns,
        "smtpd_helo_restrictions = reject_unknown_helo_hostname\n\
         smtpd_sender_restrictions = reject_unknown_sender_domain\n\
         smtpd_recipient_restrictions = reject_unknown_recipient_domain\n",
    );
    let to = jerry();
    let mut s = session(&inst, 7, "mx.example");
    for (sender, want) in [
        (
            "x@nowhere.example",
            "450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found",
        ),
        (
            "x@nullmx.example",
            "550 5.7.27 <x@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)",
        ),
        // A temporary failure: defer_if_permit, and nothing rejects.
        (
            "x@broken.example",
            "450 4.1.8 <x@broken.example>: Sender address rejected: Domain not found",
        ),
        ("x@mx.example", "250 2.1.5 Ok"),
        ("x@aonly.example", "250 2.1.5 Ok"),
        ("", "250 2.1.5 Ok"),
        // Our own domain is never unknown.
        ("someone@dns.test", "250 2.1.5 Ok"),
    ] {
        assert_eq!(rcpt(&mut s, sender, &to), want, "{sender}");
    }
    for (recipient, want) in [
        (
            "x@nowhere.example",
            "450 4.1.2 <x@nowhere.example>: Recipient address rejected: Domain not found",
        ),
        (
            "x@nullmx.example",
            "556 5.1.10 <x@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX)",
        ),
        (
            "x@broken.example",
            "450 4.1.2 <x@broken.example>: Recipient address rejected: Domain not found",
        ),
        ("x@mx.example", "250 2.1.5 Ok"),
        ("x@aonly.example", "250 2.1.5 Ok"),
    ] {
        assert_eq!(rcpt(&mut s, "a@mx.example", recipient), want, "{recipient}");
    }
    s.cmd("QUIT");
    let mut s = session(&inst, 7, "nohost.example");
    assert_eq!(
        rcpt(&mut s, "a@mx.example", &to),
        "450 4.7.1 <nohost.example>: Helo command rejected: Host not found"
    );
    s.cmd("QUIT");
    let log = inst.wait_log("helo=<nohost.example>");
    for line in [
        format!(
            "NOQUEUE: reject: RCPT from client.example[127.0.0.7]: 450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found; from=<x@nowhere.example> to=<{to}> proto=ESMTP helo=<mx.example>"
        ),
        "NOQUEUE: reject: RCPT from client.example[127.0.0.7]: 556 5.1.10 <x@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX); from=<a@mx.example> to=<x@nullmx.example> proto=ESMTP helo=<mx.example>".to_string(),
        format!(
            "NOQUEUE: reject: RCPT from client.example[127.0.0.7]: 450 4.7.1 <nohost.example>: Helo command rejected: Host not found; from=<a@mx.example> to=<{to}> proto=ESMTP helo=<nohost.example>"
        ),
    ] {
        assert!(log.contains(&line), "{line}\n{log}");
    }
}

#[test]
fn block_lists_and_an_allow_list_before_them() {
    let dns = DnsServer::start(ZONE);
    let inst = instance(
        &dns,
        "smtpd_client_restrictions = permit_dnswl_client dnswl.example, \
         reject_rbl_client zen.example, reject_rhsbl_sender rhsbl.example\n",
    );
    let to = jerry();
    for (from, sender, want) in [
        (
            2,
            "a@mx.example",
            "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.example; Listed: see https://zen.example/?127.0.0.2",
        ),
        (
            7,
            "x@bad.example",
            "554 5.7.1 Service unavailable; Sender address [x@bad.example] blocked using rhsbl.example",
        ),
        (7, "a@mx.example", "250 2.1.5 Ok"),
        // On the allow list: permitted before the block lists are asked.
        (6, "x@bad.example", "250 2.1.5 Ok"),
    ] {
        let mut s = session(&inst, from, "helo.example");
        assert_eq!(
            rcpt(&mut s, sender, &to),
            want,
            "from 127.0.0.{from}, {sender}"
        );
        s.cmd("QUIT");
    }
    let log = inst.wait_log("disconnect from unknown[127.0.0.6]");
    for line in [
        format!(
            "NOQUEUE: reject: RCPT from listed.example[127.0.0.2]: 554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.example; Listed: see https://zen.example/?127.0.0.2; from=<a@mx.example> to=<{to}> proto=ESMTP helo=<helo.example>"
        ),
        format!(
            "NOQUEUE: reject: RCPT from client.example[127.0.0.7]: 554 5.7.1 Service unavailable; Sender address [x@bad.example] blocked using rhsbl.example; from=<x@bad.example> to=<{to}> proto=ESMTP helo=<helo.example>"
        ),
    ] {
        assert!(log.contains(&line), "{line}\n{log}");
    }
    assert!(!log.contains("RCPT from unknown[127.0.0.6]"), "{log}");
}

#[test]
fn without_name_lookups_every_client_is_unknown() {
    let dns = DnsServer::start(ZONE);
    let inst = instance(
        &dns,
        "smtpd_peername_lookup = no\n\
         smtpd_client_restrictions = reject_unknown_client_hostname\n\
         unknown_client_reject_code = 550\n",
    );
    let mut s = session(&inst, 7, "helo.example");
    assert_eq!(
        rcpt(&mut s, "a@mx.example", &jerry()),
        "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.7]"
    );
    s.cmd("QUIT");
    let log = inst.wait_log("disconnect from unknown[127.0.0.7]");
    assert!(log.contains("connect from unknown[127.0.0.7]"), "{log}");
}
