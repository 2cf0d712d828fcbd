//! Postfix's match lists (match_list(3)): the values of mydestination,
//! relay_domains, virtual_mailbox_domains (domains) and mynetworks
//! (networks).
//!
//! A domain list holds names, `.parent` patterns for subdomains, `/file`
//! names (more patterns, one per line) and `type:table` lookups (the domain
//! is the key; any value matches). `!pattern` negates: the first pattern
//! that matches decides. Where the feature is in
//! parent_domain_matches_subdomains, `example.com` also matches its
//! subdomains. Names compare without regard to case and to a trailing dot.
//!
//! A network list holds addresses and networks (`10.0.0.0/8`,
//! `[2001:db8::]/32`), `/file` names and `type:table` lookups (cidr tables
//! match networks; other tables are searched with the address).

use std::net::IpAddr;

use ironpost_conf::value::{Cidr, split_list};

use super::{LookupError, Map, MapContext, MapList};

#[derive(Debug)]
enum DomainPattern {
    Name(String),
    /// `.example.com`: subdomains only.
    Parent(String),
    Table(Map),
}

/// A list of domain patterns.
#[derive(Debug, Default)]
pub struct DomainList {
    patterns: Vec<(bool, DomainPattern)>,
    parent_matches: bool,
}

fn normalize(domain: &str) -> String {
    domain.trim_end_matches('.').to_lowercase()
}

impl DomainList {
    /// Builds a list from a parameter's (expanded) value. `parent_matches`
    /// says whether `example.com` also matches its subdomains. Files that
    /// cannot be read and tables that cannot be opened are reported in the
    /// error; a daemon refuses to start with them.
    pub fn new(value: &str, parent_matches: bool, ctx: &MapContext) -> Result<DomainList, String> {
        let mut list = DomainList {
            patterns: Vec::new(),
            parent_matches,
        };
        list.add_items(&split_list(value), ctx, 0)?;
        Ok(list)
    }

    fn add_items(
        &mut self,
        items: &[String],
        ctx: &MapContext,
        depth: usize,
    ) -> Result<(), String> {
        for item in items {
            let (negated, pattern) = match item.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, item.as_str()),
            };
            if pattern.starts_with('/') {
                if depth > 10 {
                    return Err(format!("{pattern}: files include each other too deeply"));
                }
                let text = std::fs::read_to_string(pattern)
                    .map_err(|e| format!("open {pattern}: {}", ironpost_conf::io_reason(&e)))?;
                let inner: Vec<String> = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .flat_map(split_list)
                    .map(|p| if negated { format!("!{p}") } else { p })
                    .collect();
                self.add_items(&inner, ctx, depth + 1)?;
                continue;
            }
            let p = if ironpost_conf::value::is_table_spec(pattern) {
                DomainPattern::Table(Map::open(pattern, ctx).map_err(|e| e.to_string())?)
            } else if let Some(parent) = pattern.strip_prefix('.') {
                DomainPattern::Parent(normalize(parent))
            } else {
                DomainPattern::Name(normalize(pattern))
            };
            self.patterns.push((negated, p));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `domain` is in the list.
    pub fn matches(&self, domain: &str) -> Result<bool, LookupError> {
        let d = normalize(domain);
        for (negated, p) in &self.patterns {
            let hit = match p {
                DomainPattern::Name(n) => {
                    *n == d || (self.parent_matches && d.ends_with(&format!(".{n}")))
                }
                DomainPattern::Parent(n) => d.ends_with(&format!(".{n}")),
                DomainPattern::Table(map) => {
                    let mut hit = map.lookup(&d)?.is_some();
                    if !hit && self.parent_matches {
                        let mut rest = d.as_str();
                        while let Some((_, parent)) = rest.split_once('.') {
                            if map.lookup(parent)?.is_some()
                                || map.lookup(&format!(".{parent}"))?.is_some()
                            {
                                hit = true;
                                break;
                            }
                            rest = parent;
                        }
                    }
                    hit
                }
            };
            if hit {
                return Ok(!negated);
            }
        }
        Ok(false)
    }
}

#[derive(Debug)]
enum NetPattern {
    Net(Cidr),
    Table(MapList),
}

/// A list of networks (mynetworks syntax).
#[derive(Debug, Default)]
pub struct NetworkList {
    patterns: Vec<(bool, NetPattern)>,
}

impl NetworkList {
    pub fn new(value: &str, ctx: &MapContext) -> Result<NetworkList, String> {
        let mut list = NetworkList::default();
        list.add_items(&split_list(value), ctx, 0)?;
        Ok(list)
    }

    fn add_items(
        &mut self,
        items: &[String],
        ctx: &MapContext,
        depth: usize,
    ) -> Result<(), String> {
        for item in items {
            let (negated, pattern) = match item.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, item.as_str()),
            };
            if pattern.starts_with('/') {
                if depth > 10 {
                    return Err(format!("{pattern}: files include each other too deeply"));
                }
                let text = std::fs::read_to_string(pattern)
                    .map_err(|e| format!("open {pattern}: {}", ironpost_conf::io_reason(&e)))?;
                let inner: Vec<String> = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .flat_map(split_list)
                    .map(|p| if negated { format!("!{p}") } else { p })
                    .collect();
                self.add_items(&inner, ctx, depth + 1)?;
                continue;
            }
            let p = if ironpost_conf::value::is_table_spec(pattern) {
                NetPattern::Table(MapList {
                    maps: vec![Map::open(pattern, ctx).map_err(|e| e.to_string())?],
                })
            } else {
                NetPattern::Net(Cidr::parse(pattern)?)
            };
            self.patterns.push((negated, p));
        }
        Ok(())
    }

    /// Whether `ip` is in the list.
    pub fn matches(&self, ip: IpAddr) -> Result<bool, LookupError> {
        for (negated, p) in &self.patterns {
            let hit = match p {
                NetPattern::Net(n) => n.contains(ip),
                NetPattern::Table(t) => t.find_ip(ip)?.is_some(),
            };
            if hit {
                return Ok(!negated);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        let ctx = MapContext::default();
        let l = DomainList::new(
            "mail.example.com, localhost.example.com localhost, !bad.example.org, .example.org, inline:{ table.test=x }",
            false,
            &ctx,
        )
        .unwrap();
        for (d, want) in [
            ("mail.example.com", true),
            ("MAIL.Example.COM.", true),
            ("sub.mail.example.com", false),
            ("localhost", true),
            ("example.org", false),
            ("a.example.org", true),
            ("bad.example.org", false),
            ("table.test", true),
            ("sub.table.test", false),
            ("other.test", false),
        ] {
            assert_eq!(l.matches(d).unwrap(), want, "{d}");
        }
        let parents = DomainList::new("example.com, inline:{ table.test=x }", true, &ctx).unwrap();
        assert!(parents.matches("a.b.example.com").unwrap());
        assert!(parents.matches("sub.table.test").unwrap());
        assert!(!parents.matches("notexample.com").unwrap());
    }

    #[test]
    fn domain_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("domains");
        std::fs::write(&f, "# relayed\none.test two.test\nthree.test\n").unwrap();
        let l =
            DomainList::new(&format!("{}", f.display()), false, &MapContext::default()).unwrap();
        assert!(l.matches("three.test").unwrap());
        assert!(!l.matches("four.test").unwrap());
        assert!(DomainList::new("/nonexistent/file", false, &MapContext::default()).is_err());
    }

    #[test]
    fn networks() {
        let ctx = MapContext::default();
        let l = NetworkList::new(
            "!192.168.58.13, 192.168.58.0/24, 127.0.0.0/8 [::1]/128",
            &ctx,
        )
        .unwrap();
        for (ip, want) in [
            ("192.168.58.7", true),
            ("192.168.58.13", false),
            ("127.0.0.1", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.1", false),
        ] {
            assert_eq!(l.matches(ip.parse().unwrap()).unwrap(), want, "{ip}");
        }
        assert!(NetworkList::new("192.168.1.5/24", &ctx).is_err());
    }
}
