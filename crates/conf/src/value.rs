//! Typed parameter values: booleans, integers, sizes, times with units, lists
//! and network lists. Each parser returns the value or the expected form as a
//! phrase ("yes or no"), which callers turn into an error naming the file,
//! the line and the parameter.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// `yes` or `no`, in any case, as Postfix's get_mail_conf_bool does.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        v if v.eq_ignore_ascii_case("yes") => Ok(true),
        v if v.eq_ignore_ascii_case("no") => Ok(false),
        _ => Err("yes or no".to_string()),
    }
}

/// A decimal integer within `min..=max`.
pub fn parse_int(s: &str, min: i64, max: i64) -> Result<i64, String> {
    let expected = || {
        if max == i64::MAX {
            format!("an integer >= {min}")
        } else {
            format!("an integer from {min} to {max}")
        }
    };
    let v: i64 = s.trim().parse().map_err(|_| expected())?;
    if v < min || v > max {
        return Err(expected());
    }
    Ok(v)
}

/// A size in bytes: digits, optionally followed by `k`, `m` or `g` (powers of
/// 1024, as Dovecot writes sizes) and an optional `b`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const EXPECTED: &str = "a size in bytes, like 10240000 or 10M";
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(EXPECTED.to_string());
    }
    let n: u64 = t[..digits].parse().map_err(|_| EXPECTED.to_string())?;
    let mult: u64 = match t[digits..].trim_start().to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return Err(EXPECTED.to_string()),
    };
    n.checked_mul(mult).ok_or_else(|| EXPECTED.to_string())
}

/// A time: digits with an optional unit `s`, `m`, `h`, `d` or `w`; a bare
/// number is in `default_unit`, as Postfix's time parameters are.
pub fn parse_time(s: &str, default_unit: char) -> Result<Duration, String> {
    let expected =
        || format!("a time like 300s, 5m, 2h, 5d or 1w (a bare number means {default_unit})");
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(expected());
    }
    let n: u64 = t[..digits].parse().map_err(|_| expected())?;
    let unit = match &t[digits..] {
        "" => default_unit,
        u if u.len() == 1 => u.chars().next().unwrap_or(default_unit),
        _ => return Err(expected()),
    };
    let secs: u64 = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return Err(expected()),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(expected)
}

/// Splits a list on white space and commas, keeping `{ ... }` groups whole
/// (so `inline:{ a=b, c=d }` stays one element), as Postfix's mystrtokq does.
pub fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut level = 0usize;
    for c in s.chars() {
        match c {
            '{' => {
                level += 1;
                cur.push(c);
            }
            '}' if level > 0 => {
                level -= 1;
                cur.push(c);
            }
            c if level == 0 && (c == ',' || c.is_whitespace()) => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Removes one pair of braces around `s` and the white space just inside
/// them: `{ a b }` becomes `a b`. Other text is returned trimmed.
pub fn strip_braces(s: &str) -> &str {
    let t = s.trim();
    match t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.trim(),
        None => t,
    }
}

/// An IP network: an address and a prefix length, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, `x::y`, `x::y/n`, `[x::y]`, `[x::y]/n`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let expected = || {
            format!(
                "\"{s}\" is not a network address: expected address/prefix, like 192.168.1.0/24 or [2001:db8::]/32"
            )
        };
        let (addr_part, prefix_part) = match s.rsplit_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let bare = addr_part
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr_part);
        let addr: IpAddr = bare.parse().map_err(|_| expected())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_part {
            None => max,
            Some(p) => {
                let n: u8 = p.parse().map_err(|_| expected())?;
                if n > max {
                    return Err(expected());
                }
                n
            }
        };
        let net = Cidr { addr, prefix };
        let masked = net.network();
        if masked != addr {
            return Err(format!(
                "non-null host address bits in \"{s}\", perhaps you should use \"{}\" instead",
                Cidr {
                    addr: masked,
                    prefix
                }
            ));
        }
        Ok(net)
    }

    /// The address with the host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                IpAddr::V4(Ipv4Addr::from(bits & mask))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }

    /// Whether `ip` is inside this network. IPv4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                Cidr {
                    addr: ip,
                    prefix: self.prefix,
                }
                .network()
                    == self.addr
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    /// Postfix's notation: `127.0.0.0/8`, `[::1]/128`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}/{}", self.prefix),
            IpAddr::V6(a) => write!(f, "[{a}]/{}", self.prefix),
        }
    }
}

/// One element of a network list such as mynetworks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkItem {
    /// A network; `negated` for `!net`.
    Net { net: Cidr, negated: bool },
    /// `/path/name`: a file with more networks.
    File(String),
    /// `type:table`: a lookup table with network patterns.
    Table(String),
}

/// Parses a network list (mynetworks syntax).
pub fn parse_networks(s: &str) -> Result<Vec<NetworkItem>, String> {
    split_list(s)
        .into_iter()
        .map(|item| {
            if item.starts_with('/') {
                return Ok(NetworkItem::File(item));
            }
            let (negated, rest) = match item.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, item.as_str()),
            };
            if is_table_spec(rest) {
                return Ok(NetworkItem::Table(rest.to_string()));
            }
            Cidr::parse(rest).map(|net| NetworkItem::Net { net, negated })
        })
        .collect()
}

/// Whether `s` looks like `type:name` (a lookup table) rather than an address.
/// IPv6 addresses contain colons too: a table type is a word of letters.
pub fn is_table_spec(s: &str) -> bool {
    match s.split_once(':') {
        Some((ty, _)) => !ty.is_empty() && ty.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'),
        None => false,
    }
}

/// Parses a list of lookup tables (`type:name, type:name`).
pub fn parse_maps(s: &str) -> Result<Vec<String>, String> {
    split_list(s)
        .into_iter()
        .map(|item| {
            if is_table_spec(&item) {
                Ok(item)
            } else {
                Err(format!(
                    "a list of lookup tables written type:name, like hash:/etc/ironpost/aliases (\"{item}\" has no type)"
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("yes"), Ok(true));
        assert_eq!(parse_bool("NO"), Ok(false));
        assert!(parse_bool("true").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn times_take_the_default_unit() {
        assert_eq!(parse_time("300s", 's'), Ok(Duration::from_secs(300)));
        assert_eq!(parse_time("5d", 's'), Ok(Duration::from_secs(5 * 86400)));
        assert_eq!(parse_time("5", 'd'), Ok(Duration::from_secs(5 * 86400)));
        assert_eq!(parse_time("2h", 'd'), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_time("1w", 's'), Ok(Duration::from_secs(604800)));
        assert_eq!(parse_time("0", 's'), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "5x",
            "5 d",
            "-1s",
            "1.5h",
            "5dd",
            "99999999999999999999s",
        ] {
            assert!(parse_time(bad, 's').is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10240000"), Ok(10240000));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "abc", "-1", "10X", "1.5M", "10bb"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_have_bounds() {
        assert_eq!(parse_int("550", 400, 599), Ok(550));
        assert!(parse_int("600", 400, 599).is_err());
        assert!(parse_int("x", 0, i64::MAX).is_err());
    }

    #[test]
    fn lists_split_on_space_and_comma_but_not_in_braces() {
        assert_eq!(
            split_list("$myhostname, localhost.$mydomain,localhost\t$mydomain"),
            vec![
                "$myhostname",
                "localhost.$mydomain",
                "localhost",
                "$mydomain"
            ]
        );
        assert_eq!(
            split_list("inline:{ a=b, {c = d e} }, hash:/etc/x"),
            vec!["inline:{ a=b, {c = d e} }", "hash:/etc/x"]
        );
        assert!(split_list(" , ,").is_empty());
    }

    #[test]
    fn cidr_parse_and_match() {
        let n = Cidr::parse("192.168.58.0/24").unwrap();
        assert!(n.contains("192.168.58.7".parse().unwrap()));
        assert!(!n.contains("192.168.59.7".parse().unwrap()));
        assert!(n.contains("::ffff:192.168.58.7".parse().unwrap()));
        let v6 = Cidr::parse("[2001:db8::]/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert_eq!(v6.to_string(), "[2001:db8::]/32");
        assert_eq!(Cidr::parse("::1").unwrap().to_string(), "[::1]/128");
        assert_eq!(Cidr::parse("10.0.0.1").unwrap().prefix, 32);
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let err = Cidr::parse("192.168.1.5/24").unwrap_err();
        assert!(
            err.contains("perhaps you should use \"192.168.1.0/24\""),
            "{err}"
        );
        for bad in ["300.1.1.1", "1.2.3.0/33", "host.example", "1.2.3.4/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_lists() {
        let items = parse_networks("192.168.58.0/24, 127.0.0.0/8 [::1]/128 !10.0.0.0/8 /etc/ironpost/nets cidr:/etc/ironpost/nets.cidr").unwrap();
        assert_eq!(items.len(), 6);
        assert!(matches!(items[3], NetworkItem::Net { negated: true, .. }));
        assert_eq!(items[4], NetworkItem::File("/etc/ironpost/nets".into()));
        assert_eq!(
            items[5],
            NetworkItem::Table("cidr:/etc/ironpost/nets.cidr".into())
        );
        assert!(parse_networks("192.168.58.0/24 # trailing").is_err());
    }

    #[test]
    fn map_lists() {
        assert_eq!(
            parse_maps("hash:/etc/aliases, inline:{ a=b, c=d }").unwrap(),
            vec!["hash:/etc/aliases", "inline:{ a=b, c=d }"]
        );
        assert!(parse_maps("/etc/aliases").is_err());
    }
}
