//! `cidr:` tables (cidr_table(5)): network patterns tried in order, the
//! first match wins.
//!
//! ```text
//! 192.168.1.0/24      OK
//! !10.0.0.0/8         REJECT not from ten
//! [2001:db8::]/32     OK
//! if 172.16.0.0/12
//! 172.16.5.0/24       DUNNO
//! endif
//! ```
//!
//! As in Postfix: a pattern is `address` or `address/prefix`, optionally in
//! `[]`; host bits must be zero; `!pattern` matches what the pattern does
//! not; `if`/`if !` ... `endif` nest. Keys are compared as binary addresses
//! of the same family (an IPv4 rule never matches an IPv6 key, mapped or
//! not; a key in brackets or with leading zeros is not an address). A bad
//! rule is skipped with Postfix's warning (`bad address pattern`, `bad mask
//! length`, `non-null host address bits ...`, `no lookup result`), an
//! unmatched `endif` is skipped, an `if` without `endif` is warned about
//! and its rules still count.

use std::net::IpAddr;

use ironpost_conf::lines::logical_lines;
use ironpost_conf::value::Cidr;

use super::TableError;

#[derive(Debug)]
enum Rule {
    Match {
        net: Cidr,
        negated: bool,
        result: String,
    },
    /// `if`: when the key does (or, negated, does not) match, the rules up
    /// to the matching `endif` apply; otherwise they are skipped.
    If {
        net: Cidr,
        negated: bool,
        end: usize,
    },
}

/// A parsed cidr table.
#[derive(Debug)]
pub struct CidrTable {
    rules: Vec<Rule>,
}

/// Whether a rule applies to `ip`: `None` when the families differ (then
/// the rule is passed over, negated or not, as Postfix does).
fn matches(net: &Cidr, ip: IpAddr, negated: bool) -> Option<bool> {
    match (net.addr, ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => Some(
            (Cidr {
                addr: ip,
                prefix: net.prefix,
            }
            .network()
                == net.addr)
                != negated,
        ),
        _ => None,
    }
}

/// Parses a pattern, with Postfix's wording for what is wrong.
fn parse_pattern(p: &str) -> Result<Cidr, String> {
    let (addr_part, prefix) = match p.rsplit_once('/') {
        Some((a, n)) => (a, Some(n)),
        None => (p, None),
    };
    let bare = addr_part
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr_part);
    let addr: IpAddr = bare
        .parse()
        .map_err(|_| format!("bad address pattern: \"{p}\""))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(n) => match n.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("bad mask length in \"{p}\"")),
        },
    };
    let net = Cidr { addr, prefix };
    if net.network() != addr {
        return Err(format!(
            "non-null host address bits in \"{p}\", perhaps you should use \"{}/{prefix}\" instead",
            net.network()
        ));
    }
    Ok(net)
}

impl CidrTable {
    /// Parses a table; `file` names it in warnings. Bad rules are skipped
    /// with a warning, as Postfix does, so this never fails.
    pub fn parse(file: &str, text: &str) -> Result<CidrTable, TableError> {
        let warn = |line: usize, msg: String| tracing::warn!("cidr map {file}, line {line}: {msg}");
        let (lines, orphans) = logical_lines(text);
        for o in orphans {
            warn(o.line, o.text);
        }
        let mut rules: Vec<Rule> = Vec::new();
        // Open `if`s: index into rules and line number.
        let mut open: Vec<(usize, usize)> = Vec::new();
        for line in lines {
            let text = line.text.trim();
            let (first, rest) = match text.find(char::is_whitespace) {
                Some(i) => (&text[..i], text[i..].trim()),
                None => (text, ""),
            };
            if first.eq_ignore_ascii_case("endif") {
                match open.pop() {
                    Some((at, _)) => {
                        let end = rules.len();
                        if let Rule::If { end: e, .. } = &mut rules[at] {
                            *e = end;
                        }
                    }
                    None => warn(line.first, "ENDIF without IF: skipping this rule".into()),
                }
                continue;
            }
            let (is_if, pattern, result) = if first.eq_ignore_ascii_case("if") {
                let (p, r) = match rest.find(char::is_whitespace) {
                    Some(i) => (&rest[..i], rest[i..].trim()),
                    None => (rest, ""),
                };
                (true, p, r)
            } else {
                (false, first, rest)
            };
            let (negated, pattern) = match pattern.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, pattern),
            };
            let net = match parse_pattern(pattern) {
                Ok(n) => n,
                Err(msg) => {
                    warn(line.first, format!("{msg}: skipping this rule"));
                    continue;
                }
            };
            if is_if {
                if !result.is_empty() {
                    warn(
                        line.first,
                        format!("garbage after pattern \"{pattern}\": ignored"),
                    );
                }
                open.push((rules.len(), line.first));
                rules.push(Rule::If {
                    net,
                    negated,
                    end: usize::MAX,
                });
            } else if result.is_empty() {
                warn(line.first, "no lookup result: skipping this rule".into());
            } else {
                rules.push(Rule::Match {
                    net,
                    negated,
                    result: result.to_string(),
                });
            }
        }
        for (at, line) in open {
            warn(line, "IF has no matching ENDIF".into());
            if let Rule::If { end, .. } = &mut rules[at] {
                *end = usize::MAX;
            }
        }
        let len = rules.len();
        for r in &mut rules {
            if let Rule::If { end, .. } = r {
                *end = (*end).min(len);
            }
        }
        Ok(CidrTable { rules })
    }

    /// The result of the first rule that matches the address `key`.
    pub fn lookup(&self, key: &str) -> Option<String> {
        let ip: IpAddr = key.parse().ok()?;
        let mut i = 0;
        while i < self.rules.len() {
            match &self.rules[i] {
                Rule::Match {
                    net,
                    negated,
                    result,
                } => {
                    if matches(net, ip, *negated) == Some(true) {
                        return Some(result.clone());
                    }
                    i += 1;
                }
                Rule::If { net, negated, end } => {
                    if matches(net, ip, *negated) == Some(true) {
                        i += 1;
                    } else {
                        i = (*end).max(i + 1);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> CidrTable {
        CidrTable::parse("t.cidr", text).unwrap()
    }

    #[test]
    fn as_postfix_answers() {
        // Results checked with Postfix 3.7's `postmap -q KEY cidr:t.cidr`.
        let t = table(
            "# c\n192.168.1.0/24 LAN\n!10.0.0.0/8 NOT_TEN\n10.1.0.0/16 TEN_ONE\n[2001:db8::]/32 DOC6\n2001:0db8:0000::1 EXACT6\nif 172.16.0.0/12\n172.16.5.0/24 INNER\nendif\n1.2.3.4/24 BADBITS\nfoo BADPAT\n3.3.3.3\n",
        );
        for (key, want) in [
            ("192.168.1.9", Some("LAN")),
            ("10.2.3.4", None),
            ("10.1.2.3", Some("TEN_ONE")),
            ("8.8.8.8", Some("NOT_TEN")),
            ("2001:db8::5", Some("DOC6")),
            ("172.16.5.5", Some("NOT_TEN")),
            ("[192.168.1.9]", None),
            ("192.168.1", None),
            ("notanip", None),
            ("::ffff:192.168.1.9", None),
        ] {
            assert_eq!(t.lookup(key).as_deref(), want, "{key}");
        }
    }

    #[test]
    fn blocks_and_odd_lines() {
        let t = table("if 10.0.0.0/8\n10.1.0.0/16 A\n");
        assert_eq!(t.lookup("10.1.1.1").as_deref(), Some("A"));
        let t = table("endif\n10.0.0.0/8 B\n");
        assert_eq!(t.lookup("10.1.1.1").as_deref(), Some("B"));
        let t = table("if !10.0.0.0/8\n0.0.0.0/0 NOT10\nendif\n10.0.0.0/8 TEN  with   spaces  \n");
        assert_eq!(t.lookup("10.1.1.1").as_deref(), Some("TEN  with   spaces"));
        assert_eq!(t.lookup("11.1.1.1").as_deref(), Some("NOT10"));
        assert_eq!(t.lookup("::1"), None);
        let t = table("10.0.0.0/8\tX\n  continued\n0.0.0.0/0 Y\n");
        assert_eq!(t.lookup("10.1.1.1").as_deref(), Some("X  continued"));
        assert_eq!(t.lookup("010.1.1.1"), None);
        let t = table("::/0 V6\n10.0.0.0/33 BAD\n");
        assert_eq!(t.lookup("::1").as_deref(), Some("V6"));
        assert_eq!(t.lookup("10.0.0.1"), None);
        let t = table(
            "if 10.0.0.0/8\nif 10.1.0.0/16\n10.1.2.0/24 DEEP\nendif\n10.0.0.0/8 OUTER\nendif\n0.0.0.0/0 ALL\n",
        );
        assert_eq!(t.lookup("10.1.2.3").as_deref(), Some("DEEP"));
        assert_eq!(t.lookup("10.2.2.3").as_deref(), Some("OUTER"));
        assert_eq!(t.lookup("11.0.0.1").as_deref(), Some("ALL"));
    }
}
