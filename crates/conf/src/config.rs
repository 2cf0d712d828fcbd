//! [`Config`]: main.cf over the parameter table's defaults, with expansion,
//! typed getters, checks and Postfix's warnings.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ConfError, ErrorKind, Location};
use crate::expand::{self, ExpandError, Expansion};
use crate::maincf::MainCf;
use crate::params::{self, DEFAULT_CONFIG_DIRECTORY, DefaultValue, Kind, PARAMS, Param};
use crate::value::{self, Cidr, NetworkItem};

/// Facts about the machine that some defaults are computed from. The caller
/// gathers them (this crate does no I/O besides reading main.cf), so tests
/// can give any machine they like.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// The machine's host name as uname(2) gives it.
    pub hostname: String,
    /// Each local interface address with its prefix length.
    pub interfaces: Vec<(IpAddr, u8)>,
}

/// The effective configuration: overrides, then main.cf, then defaults.
#[derive(Debug, Clone)]
pub struct Config {
    main: MainCf,
    config_dir: PathBuf,
    /// Whether the directory was chosen on the command line or by the
    /// environment, which makes config_directory count as set (as Postfix's
    /// `postconf -c DIR -n` shows it).
    config_dir_explicit: bool,
    /// The raw default of every parameter in the table, computed ones included.
    defaults: HashMap<&'static str, String>,
    /// `-o name=value` overrides (master.cf, command line), last wins.
    overrides: Vec<(String, String, Option<Location>)>,
}

impl Config {
    /// Reads `main.cf` in `config_dir` (or the default directory).
    pub fn load(config_dir: Option<&Path>, host: &HostFacts) -> Result<Config, ConfError> {
        let (dir, explicit) = dir_of(config_dir);
        let main = MainCf::read(&dir.join("main.cf"))?;
        Ok(Config::from_main(main, dir, explicit, host))
    }

    /// A configuration from main.cf text already parsed.
    pub fn from_main(
        main: MainCf,
        config_dir: PathBuf,
        explicit: bool,
        host: &HostFacts,
    ) -> Config {
        let mut cfg = Config {
            main,
            config_dir,
            config_dir_explicit: explicit,
            defaults: HashMap::new(),
            overrides: Vec::new(),
        };
        cfg.compute_defaults(host);
        cfg
    }

    /// The built-in defaults alone, as `postconf -d` shows them.
    pub fn defaults_only(config_dir: Option<&Path>, host: &HostFacts) -> Config {
        let (dir, explicit) = dir_of(config_dir);
        let main = MainCf {
            path: dir.join("main.cf"),
            ..MainCf::default()
        };
        let mut cfg = Config::from_main(main, dir, explicit, host);
        cfg.config_dir_explicit = false;
        cfg
    }

    /// Adds an override, as `-o name=value` in master.cf does.
    pub fn set_override(&mut self, name: &str, value: &str, location: Option<Location>) {
        self.overrides
            .push((name.to_string(), value.to_string(), location));
    }

    pub fn main_cf(&self) -> &MainCf {
        &self.main
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    fn compute_defaults(&mut self, host: &HostFacts) {
        for p in PARAMS {
            if let DefaultValue::Text(t) = p.default {
                self.defaults.insert(p.name, t.to_string());
            }
        }
        self.defaults.insert(
            params::CONFIG_DIRECTORY.name,
            self.config_dir.display().to_string(),
        );
        self.defaults.insert(
            params::MAIL_VERSION.name,
            env!("CARGO_PKG_VERSION").to_string(),
        );

        // myhostname: the host name, completed with $mydomain (when main.cf
        // sets it, even to nothing) or "localdomain" when it has no dot.
        let node = if host.hostname.is_empty() {
            "localhost"
        } else {
            host.hostname.as_str()
        };
        let myhostname = if node.contains('.') {
            node.to_string()
        } else {
            let domain = self
                .main
                .get(params::MYDOMAIN.name)
                .and_then(|e| {
                    expand::expand_as(&e.value, Some(params::MYDOMAIN.name), |n| {
                        if n == params::MYHOSTNAME.name {
                            self.main.get(n).map(|e| e.value.as_str())
                        } else {
                            self.raw_without_computed(n)
                        }
                    })
                    .ok()
                })
                .map(|e| e.value)
                .unwrap_or_else(|| "localdomain".to_string());
            format!("{node}.{domain}")
        };
        self.defaults.insert(params::MYHOSTNAME.name, myhostname);

        // mydomain: the effective myhostname without its first label.
        let effective_host = self
            .expand(params::MYHOSTNAME.name)
            .map(|e| e.value)
            .unwrap_or_default();
        let mydomain = match effective_host.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => rest.to_string(),
            _ => "localdomain".to_string(),
        };
        self.defaults.insert(params::MYDOMAIN.name, mydomain);

        let style = self
            .expand(params::MYNETWORKS_STYLE.name)
            .map(|e| e.value)
            .unwrap_or_default();
        let protocols = self
            .expand(params::INET_PROTOCOLS.name)
            .map(|e| e.value)
            .unwrap_or_default();
        self.defaults.insert(
            params::MYNETWORKS.name,
            mynetworks_for(host, style.trim(), &protocols),
        );
    }

    /// A raw value, ignoring computed defaults (used while computing them).
    fn raw_without_computed(&self, name: &str) -> Option<&str> {
        if let Some(e) = self.main.get(name) {
            return Some(&e.value);
        }
        match params::find(name)?.default {
            DefaultValue::Text(t) => Some(t),
            DefaultValue::Computed(_) => None,
        }
    }

    /// The raw (unexpanded) effective value of `name`: an override, else the
    /// last definition in main.cf, else the default. `None` when undefined.
    pub fn raw(&self, name: &str) -> Option<&str> {
        if let Some((_, v, _)) = self.overrides.iter().rev().find(|(n, _, _)| n == name) {
            return Some(v);
        }
        if let Some(e) = self.main.get(name) {
            return Some(&e.value);
        }
        self.defaults.get(name).map(String::as_str)
    }

    /// The raw default of a parameter in the table.
    pub fn default_raw(&self, name: &str) -> Option<&str> {
        self.defaults.get(name).map(String::as_str)
    }

    /// Whether `name` is set explicitly (main.cf, an override, or `-c`).
    pub fn is_set(&self, name: &str) -> bool {
        self.main.get(name).is_some()
            || self.overrides.iter().any(|(n, _, _)| n == name)
            || (name == params::CONFIG_DIRECTORY.name && self.config_dir_explicit)
    }

    /// Where `name` is set, for messages.
    pub fn location_of(&self, name: &str) -> Option<Location> {
        if let Some((_, _, loc)) = self.overrides.iter().rev().find(|(n, _, _)| n == name) {
            return loc.clone();
        }
        self.main
            .get(name)
            .map(|e| self.main.location(Some(e.line)))
    }

    /// The value of `name`, fully expanded.
    pub fn expand(&self, name: &str) -> Result<Expansion, ConfError> {
        let Some(raw) = self.raw(name) else {
            return Ok(Expansion::default());
        };
        expand::expand_as(raw, Some(name), |n| self.raw(n)).map_err(|e| self.expand_error(name, e))
    }

    /// Expands any text against this configuration.
    pub fn expand_text(&self, text: &str) -> Result<Expansion, ExpandError> {
        expand::expand(text, |n| self.raw(n))
    }

    fn expand_error(&self, name: &str, e: ExpandError) -> ConfError {
        let kind = match e {
            ExpandError::Recursion(chain) => ErrorKind::Recursion(chain),
            other => ErrorKind::MacroSyntax(other.to_string()),
        };
        let mut err = ConfError::new(kind).for_param(name);
        err.location = self
            .location_of(name)
            .or_else(|| Some(self.main.location(None)));
        err
    }

    fn bad_value(&self, p: &Param, value: &str, expected: String) -> ConfError {
        let mut err = ConfError::new(ErrorKind::BadValue {
            value: value.to_string(),
            expected,
        })
        .for_param(p.name);
        err.location = self.location_of(p.name);
        err
    }

    /// The expanded value of a text parameter.
    pub fn get_str(&self, p: &Param) -> Result<String, ConfError> {
        Ok(self.expand(p.name)?.value)
    }

    pub fn get_bool(&self, p: &Param) -> Result<bool, ConfError> {
        debug_assert_eq!(p.kind, Kind::Bool, "{}", p.name);
        let v = self.get_str(p)?;
        value::parse_bool(&v).map_err(|exp| self.bad_value(p, &v, exp))
    }

    pub fn get_int(&self, p: &Param) -> Result<i64, ConfError> {
        let Kind::Int { min, max } = p.kind else {
            unreachable!("{} is not an integer parameter", p.name)
        };
        let v = self.get_str(p)?;
        value::parse_int(&v, min, max).map_err(|exp| self.bad_value(p, &v, exp))
    }

    pub fn get_size(&self, p: &Param) -> Result<u64, ConfError> {
        debug_assert_eq!(p.kind, Kind::Size, "{}", p.name);
        let v = self.get_str(p)?;
        value::parse_size(&v).map_err(|exp| self.bad_value(p, &v, exp))
    }

    pub fn get_time(&self, p: &Param) -> Result<Duration, ConfError> {
        let Kind::Time { unit } = p.kind else {
            unreachable!("{} is not a time parameter", p.name)
        };
        let v = self.get_str(p)?;
        value::parse_time(&v, unit).map_err(|exp| self.bad_value(p, &v, exp))
    }

    /// A list parameter, expanded and split; `Words` lists are checked.
    pub fn get_list(&self, p: &Param) -> Result<Vec<String>, ConfError> {
        let v = self.get_str(p)?;
        let items = value::split_list(&v);
        if let Kind::Words(words) = p.kind
            && (items.is_empty() || items.iter().any(|i| !words.contains(&i.as_str())))
        {
            return Err(self.bad_value(p, &v, one_of(words, "a list of")));
        }
        Ok(items)
    }

    /// One word out of a fixed set.
    pub fn get_enum(&self, p: &Param) -> Result<String, ConfError> {
        let Kind::Enum(words) = p.kind else {
            unreachable!("{} is not an enumerated parameter", p.name)
        };
        let v = self.get_str(p)?;
        let t = v.trim();
        if words.contains(&t) {
            Ok(t.to_string())
        } else {
            Err(self.bad_value(p, &v, one_of(words, "one of")))
        }
    }

    pub fn get_networks(&self, p: &Param) -> Result<Vec<NetworkItem>, ConfError> {
        debug_assert_eq!(p.kind, Kind::Networks, "{}", p.name);
        let v = self.get_str(p)?;
        value::parse_networks(&v).map_err(|exp| self.bad_value(p, &v, exp))
    }

    /// A list of lookup tables (`type:name`).
    pub fn get_maps(&self, p: &Param) -> Result<Vec<String>, ConfError> {
        debug_assert_eq!(p.kind, Kind::Maps, "{}", p.name);
        let v = self.get_str(p)?;
        value::parse_maps(&v).map_err(|exp| self.bad_value(p, &v, exp))
    }

    /// Checks every parameter: expansion and type. Returns every error found.
    pub fn check(&self) -> Vec<ConfError> {
        let mut errors = Vec::new();
        for p in PARAMS {
            let result = match p.kind {
                Kind::Str | Kind::Path => self.get_str(p).map(drop),
                Kind::Bool => self.get_bool(p).map(drop),
                Kind::Int { .. } => self.get_int(p).map(drop),
                Kind::Size => self.get_size(p).map(drop),
                Kind::Time { .. } => self.get_time(p).map(drop),
                Kind::List | Kind::Words(_) => self.get_list(p).map(drop),
                Kind::Enum(_) => self.get_enum(p).map(drop),
                Kind::Maps => self.get_maps(p).map(drop),
                Kind::Networks => self.get_networks(p).map(drop),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        for name in self.user_defined_used() {
            if let Err(e) = self.expand(&name) {
                errors.push(e);
            }
        }
        errors
    }

    /// Expands every parameter of the table that main.cf sets, in file
    /// order, and returns the first failure (a `$` syntax error or a loop).
    /// Postfix's postconf refuses to show such a configuration.
    pub fn check_expansions(&self) -> Result<(), ConfError> {
        for e in self.effective_entries() {
            if params::find(&e.name).is_some() {
                self.expand(&e.name)?;
            }
        }
        Ok(())
    }

    /// Names `postconf` lists: every parameter in the table and every
    /// parameter of main.cf that some used value refers to, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = PARAMS.iter().map(|p| p.name.to_string()).collect();
        names.extend(self.user_defined_used());
        names.into_iter().collect()
    }

    /// Names set explicitly (for `postconf -n`), sorted, unused ones left out.
    pub fn set_names(&self) -> Vec<String> {
        let used = self.user_defined_used();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for e in &self.main.entries {
            if params::find(&e.name).is_some() || used.contains(&e.name) {
                names.insert(e.name.clone());
            }
        }
        for (n, _, _) in &self.overrides {
            names.insert(n.clone());
        }
        if self.config_dir_explicit {
            names.insert(params::CONFIG_DIRECTORY.name.to_string());
        }
        names.into_iter().collect()
    }

    /// Parameters of one's own (not in the table) that are in use: defined
    /// in main.cf and referred to by some value, as Postfix counts them
    /// (a reference from any main.cf value, even an unused one, counts).
    fn user_defined_used(&self) -> HashSet<String> {
        let mut used = HashSet::new();
        let texts = PARAMS
            .iter()
            .filter_map(|p| self.raw(p.name))
            .chain(self.overrides.iter().map(|(_, v, _)| v.as_str()))
            .chain(self.effective_entries().map(|e| e.value.as_str()));
        for text in texts {
            for name in expand::referenced_names(text) {
                if params::find(&name).is_none() && self.main.get(&name).is_some() {
                    used.insert(name);
                }
            }
        }
        used
    }

    /// The definitions in effect (the last of each name), in file order.
    pub fn effective_entries(&self) -> impl Iterator<Item = &crate::maincf::Entry> {
        self.main
            .entries
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                !self.main.entries[i + 1..]
                    .iter()
                    .any(|later| later.name == e.name)
            })
            .map(|(_, e)| e)
    }

    /// Postfix's warnings: unused parameters, undefined references, and what
    /// the reader noticed. Each is one line with the file name.
    pub fn warnings(&self) -> Vec<String> {
        let path = self.main.path.display();
        let mut out = self.main.warnings.clone();
        for (i, e) in self.main.entries.iter().enumerate() {
            // Postfix says nothing when the value is the same.
            let earlier = self.main.entries[..i]
                .iter()
                .rev()
                .find(|x| x.name == e.name);
            if let Some(earlier) = earlier.filter(|x| x.value != e.value) {
                out.push(format!(
                    "{path}, line {}: overriding earlier entry: {}={}",
                    e.line, e.name, earlier.value
                ));
            }
        }
        let used = self.user_defined_used();
        let mut undefined: Vec<String> = Vec::new();
        for e in self.effective_entries() {
            let known = params::find(&e.name).is_some();
            if !known && !used.contains(&e.name) {
                out.push(format!("{path}: unused parameter: {}={}", e.name, e.value));
            }
            if params::TEMPLATES.contains(&e.name.as_str()) {
                continue;
            }
            for name in expand::referenced_names(&e.value) {
                if self.raw(&name).is_none() && !undefined.contains(&name) {
                    undefined.push(name);
                }
            }
        }
        for name in undefined {
            out.push(format!("{path}: undefined parameter: {name}"));
        }
        out
    }
}

fn dir_of(config_dir: Option<&Path>) -> (PathBuf, bool) {
    match config_dir {
        Some(d) => (d.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_DIRECTORY), false),
    }
}

fn one_of(words: &[&str], lead: &str) -> String {
    format!("{lead} {}", words.join(", "))
}

/// mynetworks as Postfix computes it from mynetworks_style: `host` lists each
/// interface address alone, `subnet` each interface's network, `class` the
/// class A/B/C network of each IPv4 address. IPv4 first, then IPv6, limited
/// to the protocols in inet_protocols.
pub fn mynetworks_for(host: &HostFacts, style: &str, inet_protocols: &str) -> String {
    let protos = value::split_list(inet_protocols);
    let all = protos.is_empty() || protos.iter().any(|p| p == "all");
    let v4 = all || protos.iter().any(|p| p == "ipv4");
    let v6 = all || protos.iter().any(|p| p == "ipv6");
    let mut interfaces = host.interfaces.clone();
    if interfaces.is_empty() {
        interfaces = vec![
            (IpAddr::from([127, 0, 0, 1]), 8),
            (IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]), 128),
        ];
    }
    let mut nets: Vec<Cidr> = Vec::new();
    for want_v4 in [true, false] {
        for &(addr, prefix) in &interfaces {
            if addr.is_ipv4() != want_v4 || (want_v4 && !v4) || (!want_v4 && !v6) {
                continue;
            }
            let prefix = match (style, addr) {
                ("subnet", _) => prefix,
                ("class", IpAddr::V4(a)) => match a.octets()[0] {
                    0..=127 => 8,
                    128..=191 => 16,
                    192..=223 => 24,
                    _ => 32,
                },
                ("class", IpAddr::V6(_)) => prefix,
                (_, IpAddr::V4(_)) => 32,
                (_, IpAddr::V6(_)) => 128,
            };
            let net = Cidr { addr, prefix };
            let net = Cidr {
                addr: net.network(),
                prefix,
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
    }
    let parts: Vec<String> = nets.iter().map(Cidr::to_string).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts {
            hostname: "vm".into(),
            interfaces: vec![
                ("127.0.0.1".parse().unwrap(), 8),
                ("::1".parse().unwrap(), 128),
                ("192.0.2.2".parse().unwrap(), 24),
                ("fd00::2".parse().unwrap(), 64),
            ],
        }
    }

    fn cfg(text: &str) -> Config {
        let main = MainCf::parse(Path::new("/etc/ironpost/main.cf"), text).unwrap();
        Config::from_main(main, PathBuf::from("/etc/ironpost"), false, &host())
    }

    fn x(c: &Config, name: &str) -> String {
        c.expand(name).unwrap().value
    }

    #[test]
    fn issue_example() {
        let c = cfg(
            "myhostname = mail.xian.com\nmydomain = xian.com\nmyorigin = $myhostname\nmydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\ninet_interfaces = all\nmynetworks = 192.168.58.0/24, 127.0.0.0/8\n",
        );
        assert_eq!(x(&c, "myorigin"), "mail.xian.com");
        assert_eq!(
            c.get_list(params::MYDESTINATION).unwrap(),
            vec![
                "mail.xian.com",
                "localhost.xian.com",
                "localhost",
                "xian.com"
            ]
        );
        assert_eq!(c.get_networks(params::MYNETWORKS).unwrap().len(), 2);
        assert!(c.check().is_empty(), "{:?}", c.check());
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn computed_defaults() {
        let c = cfg("");
        assert_eq!(x(&c, "myhostname"), "vm.localdomain");
        assert_eq!(x(&c, "mydomain"), "localdomain");
        assert_eq!(x(&c, "myorigin"), "vm.localdomain");
        assert_eq!(
            x(&c, "mydestination"),
            "vm.localdomain, localhost.localdomain, localhost"
        );
        assert_eq!(x(&c, "smtpd_banner"), "vm.localdomain ESMTP ironpost");
        assert_eq!(
            x(&c, "mynetworks"),
            "127.0.0.1/32 192.0.2.2/32 [::1]/128 [fd00::2]/128"
        );
        // mydomain in main.cf completes a host name without a dot.
        let c = cfg("mydomain = example.org\n");
        assert_eq!(x(&c, "myhostname"), "vm.example.org");
        // mydomain follows myhostname.
        let c = cfg("myhostname = mail.example.com\n");
        assert_eq!(x(&c, "mydomain"), "example.com");
        let c = cfg("myhostname = single\n");
        assert_eq!(x(&c, "mydomain"), "localdomain");
    }

    #[test]
    fn mynetworks_styles() {
        let c = cfg("mynetworks_style = subnet\n");
        assert_eq!(
            x(&c, "mynetworks"),
            "127.0.0.0/8 192.0.2.0/24 [::1]/128 [fd00::]/64"
        );
        let c = cfg("mynetworks_style = class\ninet_protocols = ipv4\n");
        assert_eq!(x(&c, "mynetworks"), "127.0.0.0/8 192.0.2.0/24");
        let c = cfg("inet_protocols = ipv6\n");
        assert_eq!(x(&c, "mynetworks"), "[::1]/128 [fd00::2]/128");
    }

    #[test]
    fn bad_values_name_file_line_parameter_and_form() {
        let c = cfg("myhostname = a.b\nmessage_size_limit = abc\n");
        let errs = c.check();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "/etc/ironpost/main.cf, line 2: bad value for message_size_limit: \"abc\": expected a size in bytes, like 10240000 or 10M"
        );
        let c = cfg(
            "disable_vrfy_command = maybe\nsmtpd_timeout = 5x\nmynetworks_style = everything\ninet_protocols = ipv5\nunknown_local_recipient_reject_code = 250\nmynetworks = 10.0.0.1/8\nalias_maps = /etc/aliases\n",
        );
        let errs: Vec<String> = c.check().iter().map(|e| e.to_string()).collect();
        for want in [
            "line 1: bad value for disable_vrfy_command: \"maybe\": expected yes or no",
            "line 2: bad value for smtpd_timeout: \"5x\": expected a time like 300s",
            "line 3: bad value for mynetworks_style: \"everything\": expected one of host, subnet, class",
            "line 4: bad value for inet_protocols: \"ipv5\": expected a list of all, ipv4, ipv6",
            "line 5: bad value for unknown_local_recipient_reject_code: \"250\": expected an integer from 400 to 599",
            "line 6: bad value for mynetworks: \"10.0.0.1/8\": expected non-null host address bits",
            "line 7: bad value for alias_maps: \"/etc/aliases\": expected a list of lookup tables",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "missing {want:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn loops_name_the_parameter() {
        let c = cfg("myhostname = $mydomain\nmydomain = $(myhostname).x\n");
        let err = c.expand("myhostname").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/ironpost/main.cf, line 1: parameter myhostname: recursive expansion: $myhostname -> $mydomain -> $myhostname"
        );
        let c = cfg("alias_maps = $alias_maps, hash:/x\n");
        let err = c.get_maps(params::ALIAS_MAPS).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "line 1: parameter alias_maps: recursive expansion: $alias_maps -> $alias_maps"
            ),
            "{err}"
        );
        assert!(!c.check().is_empty());
    }

    #[test]
    fn unused_and_undefined_warnings() {
        let c =
            cfg("my_custom = a\nmydestination = $my_custom, $nothere\nfoo = bar\nother = $also\n");
        assert_eq!(
            c.warnings(),
            vec![
                "/etc/ironpost/main.cf: unused parameter: foo=bar".to_string(),
                "/etc/ironpost/main.cf: unused parameter: other=$also".to_string(),
                "/etc/ironpost/main.cf: undefined parameter: nothere".to_string(),
                "/etc/ironpost/main.cf: undefined parameter: also".to_string(),
            ]
        );
        assert!(c.names().contains(&"my_custom".to_string()));
        assert_eq!(c.set_names(), vec!["my_custom", "mydestination"]);
    }

    #[test]
    fn duplicates_are_reported() {
        let c = cfg("myhostname = a\nmydomain = d\nmyhostname = b\n    c\n");
        assert_eq!(
            c.warnings(),
            vec!["/etc/ironpost/main.cf, line 3: overriding earlier entry: myhostname=a"]
        );
        assert_eq!(x(&c, "myhostname"), "b    c");
    }

    #[test]
    fn overrides_win() {
        let mut c = cfg("smtpd_banner = one\n");
        c.set_override("smtpd_banner", "two $mail_name", None);
        assert_eq!(x(&c, "smtpd_banner"), "two ironpost");
        assert!(c.is_set("smtpd_banner"));
    }

    #[test]
    fn typed_getters() {
        let c = cfg(
            "maximal_queue_lifetime = 2\nsmtpd_timeout = 1m\nmessage_size_limit = 0\ndisable_vrfy_command = YES\n",
        );
        assert_eq!(
            c.get_time(params::MAXIMAL_QUEUE_LIFETIME).unwrap(),
            Duration::from_secs(2 * 86400)
        );
        assert_eq!(
            c.get_time(params::SMTPD_TIMEOUT).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(c.get_size(params::MESSAGE_SIZE_LIMIT).unwrap(), 0);
        assert!(c.get_bool(params::DISABLE_VRFY_COMMAND).unwrap());
        assert_eq!(c.get_int(params::SMTPD_RECIPIENT_LIMIT).unwrap(), 1000);
        assert_eq!(c.get_enum(params::MYNETWORKS_STYLE).unwrap(), "host");
        assert_eq!(c.get_list(params::INET_PROTOCOLS).unwrap(), vec!["all"]);
    }
}
