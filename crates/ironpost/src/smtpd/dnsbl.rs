//! DNS block and allow lists (postconf(5): reject_rbl_client,
//! reject_rhsbl_*, permit_dnswl_client): the list's domain with its
//! optional answer filter, the query names, the lookup, and the reply
//! templates (default_rbl_reply, rbl_reply_maps).
//!
//! A list is written `domain` or `domain=d.d.d.d`, where each `d` is a
//! number or a pattern in `[]` of `;`-separated numbers and `n..m` ranges
//! (`zen.example=127.0.0.[2..11]`, `list.example=127.0.0.[2;4]`). Without a
//! filter any A record lists the name.
//!
//! An address is looked up reversed below the list's domain (192.0.2.1
//! under zen.example is `1.2.0.192.zen.example`; an IPv6 address by its 32
//! nibbles, as RFC 5782 §2.4 says); a name (rhsbl) is looked up as it is,
//! below the domain. A listed name's TXT record, when there is one, is the
//! reason (`$rbl_reason`) in the reply.

use std::net::{IpAddr, Ipv4Addr};

use ironpost_conf::expand;

use crate::dns::{Dns, DnsError};

/// One list: its domain and the answers that count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsList {
    /// Lower case, no trailing dot.
    pub domain: String,
    pub filter: Option<Filter>,
}

/// `d.d.d.d` with patterns: for each octet, the ranges it may be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    octets: [Vec<(u8, u8)>; 4],
}

impl Filter {
    /// Parses `127.0.0.2`, `127.0.0.[2..11]`, `127.0.[0..1].[2;4;10..12]`.
    pub fn parse(text: &str) -> Option<Filter> {
        let mut octets: [Vec<(u8, u8)>; 4] = Default::default();
        let mut parts = Vec::new();
        // Dots inside [] belong to ranges: split outside brackets only.
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in text.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                '.' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            if !(0..=1).contains(&depth) {
                return None;
            }
        }
        parts.push(&text[start..]);
        if parts.len() != 4 || depth != 0 {
            return None;
        }
        for (slot, part) in octets.iter_mut().zip(parts) {
            *slot = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                Some(inner) => inner.split(';').map(range).collect::<Option<Vec<_>>>()?,
                None => vec![number(part).map(|n| (n, n))?],
            };
        }
        Some(Filter { octets })
    }

    /// Whether an answer passes the filter.
    pub fn matches(&self, answer: Ipv4Addr) -> bool {
        answer
            .octets()
            .iter()
            .zip(&self.octets)
            .all(|(o, ranges)| ranges.iter().any(|(lo, hi)| lo <= o && o <= hi))
    }
}

fn number(text: &str) -> Option<u8> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn range(text: &str) -> Option<(u8, u8)> {
    match text.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (number(lo)?, number(hi)?);
            (lo <= hi).then_some((lo, hi))
        }
        None => number(text).map(|n| (n, n)),
    }
}

impl DnsList {
    /// Parses `domain` or `domain=filter`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<DnsList, String> {
        let (domain, filter) = match text.split_once('=') {
            Some((d, f)) => (
                d,
                Some(Filter::parse(f).ok_or_else(|| {
                    format!(
                        "an answer filter like 127.0.0.2 or 127.0.0.[2..11] after \"=\", not \"{f}\""
                    )
                })?),
            ),
            None => (text, None),
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty()
            || domain.starts_with('.')
            || domain.contains("..")
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!("a DNS list domain, not \"{text}\""));
        }
        Ok(DnsList { domain, filter })
    }

    /// The query for an address: its reversed form below the domain.
    pub fn address_query(&self, ip: IpAddr) -> String {
        format!("{}.{}", reversed(ip), self.domain)
    }

    /// The query for a name (rhsbl): the name below the domain.
    pub fn name_query(&self, name: &str) -> String {
        format!(
            "{}.{}",
            name.trim_end_matches('.').to_ascii_lowercase(),
            self.domain
        )
    }
}

/// An address in the reversed form of DNS lists (RFC 5782 §2.1, §2.4).
pub fn reversed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut nibbles = Vec::with_capacity(32);
            for byte in v6.octets().iter().rev() {
                nibbles.push(format!("{:x}", byte & 0x0f));
                nibbles.push(format!("{:x}", byte >> 4));
            }
            nibbles.join(".")
        }
    }
}

/// What a list said about a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Listed; the TXT record's text, or empty.
    Listed(String),
    NotListed,
    /// The DNS failed for now; the text says how.
    Failed(String),
}

/// Asks `list` about `query` (a name made by [`DnsList::address_query`] or
/// [`DnsList::name_query`]).
pub fn lookup(dns: &Dns, list: &DnsList, query: &str) -> Listing {
    match dns.a(query) {
        Ok(answers) => {
            let counts = |a: &Ipv4Addr| list.filter.as_ref().is_none_or(|f| f.matches(*a));
            if !answers.iter().any(counts) {
                return Listing::NotListed;
            }
            // Several TXT records: the first (lists publish one).
            let reason = dns
                .txt(query)
                .ok()
                .and_then(|t| t.into_iter().next())
                .unwrap_or_default();
            Listing::Listed(reason)
        }
        Err(DnsError::Failed(why)) => Listing::Failed(why),
        Err(_) => Listing::NotListed,
    }
}

/// The attributes of a reply template (default_rbl_reply lists them).
#[derive(Debug, Default)]
pub struct TemplateFacts<'a> {
    pub client_address: String,
    pub client_name: &'a str,
    pub reverse_client_name: &'a str,
    pub helo_name: &'a str,
    pub rbl_class: &'a str,
    pub rbl_code: u16,
    pub rbl_domain: &'a str,
    pub rbl_reason: &'a str,
    pub rbl_what: &'a str,
    /// The addresses as given; empty for `<>` or none.
    pub sender: &'a str,
    pub recipient: &'a str,
}

/// `<>` for the null address; the local part; the domain.
fn address_parts(address: &str) -> (String, String, String) {
    if address.is_empty() {
        return ("<>".into(), "<>".into(), String::new());
    }
    match address.rsplit_once('@') {
        Some((local, domain)) => (address.into(), local.into(), domain.into()),
        None => (address.into(), address.into(), String::new()),
    }
}

/// Expands a reply template: exactly one level of `$name` (and
/// `${name?text}`, `${name:text}`, ...) over the attributes, never main.cf
/// parameters. An unknown name expands to nothing.
pub fn expand_template(template: &str, f: &TemplateFacts<'_>) -> String {
    let (sender, sender_name, sender_domain) = address_parts(f.sender);
    let (recipient, recipient_name, recipient_domain) = address_parts(f.recipient);
    let client = format!("{}[{}]", f.client_name, f.client_address);
    let code = f.rbl_code.to_string();
    let attrs: [(&str, &str); 16] = [
        ("client", &client),
        ("client_address", &f.client_address),
        ("client_name", f.client_name),
        ("reverse_client_name", f.reverse_client_name),
        ("helo_name", f.helo_name),
        ("rbl_class", f.rbl_class),
        ("rbl_code", &code),
        ("rbl_domain", f.rbl_domain),
        ("rbl_reason", f.rbl_reason),
        ("rbl_what", f.rbl_what),
        ("recipient", &recipient),
        ("recipient_domain", &recipient_domain),
        ("recipient_name", &recipient_name),
        ("sender", &sender),
        ("sender_domain", &sender_domain),
        ("sender_name", &sender_name),
    ];
    // Each value is handed over with its `$` doubled, so that the expander
    // takes it literally: one level only, a `$` in a TXT record stays.
    let escaped: Vec<(&str, String)> = attrs
        .iter()
        .map(|(n, v)| (*n, v.replace('$', "$$")))
        .collect();
    let lookup = |name: &str| {
        escaped
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    match expand::expand(template, lookup) {
        Ok(e) => e.value,
        Err(e) => {
            tracing::warn!("bad RBL reply template {template:?}: {e}");
            template.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = Filter::parse("127.0.0.2").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 3)));
        let f = Filter::parse("127.0.0.[2..11]").unwrap();
        for last in [2, 5, 11] {
            assert!(f.matches(Ipv4Addr::new(127, 0, 0, last)), "{last}");
        }
        for last in [1, 12, 255] {
            assert!(!f.matches(Ipv4Addr::new(127, 0, 0, last)), "{last}");
        }
        let f = Filter::parse("127.[0..1].0.[2;4;10..12]").unwrap();
        assert!(f.matches(Ipv4Addr::new(127, 1, 0, 4)));
        assert!(f.matches(Ipv4Addr::new(127, 0, 0, 11)));
        assert!(!f.matches(Ipv4Addr::new(127, 0, 0, 3)));
        assert!(!f.matches(Ipv4Addr::new(127, 2, 0, 2)));
        for bad in [
            "",
            "127.0.0",
            "127.0.0.2.1",
            "127.0.0.256",
            "127.0.0.x",
            "127.0.0.[2..]",
            "127.0.0.[5..2]",
            "127.0.0.[2",
            "127.0.0.[[2]]",
            "127.0.0.[]",
        ] {
            assert!(Filter::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn lists_and_queries() {
        let l = DnsList::parse("Zen.Example.=127.0.0.[2;4]").unwrap();
        assert_eq!(l.domain, "zen.example");
        assert!(
            l.filter
                .as_ref()
                .unwrap()
                .matches(Ipv4Addr::new(127, 0, 0, 4))
        );
        assert_eq!(
            l.address_query(IpAddr::from([192, 0, 2, 1])),
            "1.2.0.192.zen.example"
        );
        assert_eq!(
            l.address_query("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example"
        );
        assert_eq!(l.name_query("Bad.Example."), "bad.example.zen.example");
        assert_eq!(DnsList::parse("rhsbl.example").unwrap().filter, None);
        for bad in ["", "=127.0.0.2", "a..b", "zen.example=1.2.3", "bad name"] {
            assert!(DnsList::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn templates() {
        let f = TemplateFacts {
            client_address: "192.0.2.1".into(),
            client_name: "unknown",
            reverse_client_name: "unknown",
            helo_name: "h.example",
            rbl_class: "Client host",
            rbl_code: 554,
            rbl_domain: "zen.example",
            rbl_reason: "see http://zen.example/?$ip",
            rbl_what: "192.0.2.1",
            sender: "",
            recipient: "r@example.test",
        };
        let default = "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}";
        assert_eq!(
            expand_template(default, &f),
            "554 Service unavailable; Client host [192.0.2.1] blocked using zen.example; see http://zen.example/?$ip"
        );
        let f = TemplateFacts {
            rbl_reason: "",
            ..f
        };
        assert_eq!(
            expand_template(default, &f),
            "554 Service unavailable; Client host [192.0.2.1] blocked using zen.example"
        );
        assert_eq!(
            expand_template(
                "$rbl_code 5.7.1 $client from $sender_name/$sender_domain to $recipient_name at $recipient_domain; $myhostname",
                &f
            ),
            "554 5.7.1 unknown[192.0.2.1] from <>/ to r at example.test; "
        );
    }
}
