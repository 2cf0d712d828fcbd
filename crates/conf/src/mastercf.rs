//! master.cf, in Postfix's format (master(5)): one service per logical
//! line, eight fields and the command's arguments:
//!
//! ```text
//! # service      type  private unpriv  chroot  wakeup  maxproc command + args
//! smtp           inet  n       -       n       -       -       smtpd
//! submission     inet  n       -       n       -       -       smtpd
//!   -o smtpd_tls_security_level=encrypt
//!   -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }
//! 127.0.0.1:2525 inet  n       -       n       -       -       smtpd
//! ```
//!
//! For `inet` services the name is `[host:]port`; a port may be a service
//! name (`smtp`, `submission`, `imaps`, ...). `-o name=value` and the long
//! form `-o { name = value }` override main.cf for that service. When two
//! lines define the same name and type, the last one counts.

use std::path::Path;

use crate::error::{ConfError, ErrorKind, Location};
use crate::lines::logical_lines;

/// The kind of socket a service listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    Inet,
    Unix,
    UnixDgram,
    Fifo,
    Pass,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The name field as written (`smtp`, `127.0.0.1:2525`, `pickup`).
    pub name: String,
    pub kind: ServiceType,
    /// The maxproc field: `None` for `-` (the default).
    pub max_processes: Option<u32>,
    /// The command (`smtpd`, `pickup`, ...).
    pub command: String,
    /// `-o` overrides in order, with the line each came from.
    pub overrides: Vec<(String, String, usize)>,
    /// Other arguments, as given.
    pub args: Vec<String>,
    /// First line of the definition.
    pub line: usize,
}

/// Where an `inet` service listens: an optional host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetEndpoint {
    /// `None` means the addresses of inet_interfaces.
    pub host: Option<String>,
    pub port: u16,
}

impl Service {
    /// For an inet service, the host and port of its name.
    pub fn endpoint(&self) -> Result<InetEndpoint, String> {
        parse_endpoint(&self.name)
    }
}

/// The well-known ports, as /etc/services names them.
pub fn port_by_name(name: &str) -> Option<u16> {
    Some(match name {
        "smtp" => 25,
        "submission" => 587,
        "smtps" | "submissions" | "urd" => 465,
        "pop3" => 110,
        "pop3s" => 995,
        "imap" | "imap2" => 143,
        "imaps" => 993,
        "lmtp" => 24,
        _ => return name.parse().ok().filter(|p| *p != 0),
    })
}

fn parse_endpoint(name: &str) -> Result<InetEndpoint, String> {
    let (host, port) = match name.rsplit_once(':') {
        Some((h, p)) => {
            let h = h
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(h);
            (Some(h.to_string()), p)
        }
        None => (None, name),
    };
    let port = port_by_name(port).ok_or_else(|| {
        format!(
            "unknown service port \"{port}\": use a number or a name such as smtp, submission, imap"
        )
    })?;
    Ok(InetEndpoint {
        host: host.filter(|h| !h.is_empty()),
        port,
    })
}

/// A parsed master.cf.
#[derive(Debug, Clone, Default)]
pub struct MasterCf {
    pub services: Vec<Service>,
}

impl MasterCf {
    pub fn read(path: &Path) -> Result<MasterCf, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfError::new(ErrorKind::Io(format!(
                "open {}: {}",
                path.display(),
                crate::io_reason(&e)
            )))
        })?;
        MasterCf::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<MasterCf, ConfError> {
        let (lines, _) = logical_lines(text);
        let mut services: Vec<Service> = Vec::new();
        for line in lines {
            let err = |msg: String| {
                ConfError::new(ErrorKind::Syntax(msg)).at(Location {
                    file: path.to_path_buf(),
                    line: Some(line.first),
                })
            };
            let fields = split_args(&line.text).map_err(err)?;
            if fields.len() < 8 {
                return Err(err(format!(
                    "field count: expected at least 8 fields (service type private unpriv chroot wakeup maxproc command), found {}: \"{}\"",
                    fields.len(),
                    line.text
                )));
            }
            let kind = match fields[1].as_str() {
                "inet" => ServiceType::Inet,
                "unix" => ServiceType::Unix,
                "unix-dgram" => ServiceType::UnixDgram,
                "fifo" => ServiceType::Fifo,
                "pass" => ServiceType::Pass,
                other => return Err(err(format!("unknown service type \"{other}\""))),
            };
            for (i, what) in [(2, "private"), (3, "unprivileged"), (4, "chroot")] {
                if !matches!(fields[i].as_str(), "y" | "n" | "-") {
                    return Err(err(format!(
                        "bad {what} field \"{}\": expected y, n or -",
                        fields[i]
                    )));
                }
            }
            let wakeup = fields[5].trim_end_matches('?');
            if wakeup != "-" && wakeup.parse::<u32>().is_err() {
                return Err(err(format!(
                    "bad wakeup field \"{}\": expected seconds or -",
                    fields[5]
                )));
            }
            let max_processes = match fields[6].as_str() {
                "-" => None,
                n => Some(n.parse::<u32>().map_err(|_| {
                    err(format!("bad maxproc field \"{n}\": expected a number or -"))
                })?),
            };
            let mut overrides = Vec::new();
            let mut args = Vec::new();
            let mut rest = fields[8..].iter();
            while let Some(a) = rest.next() {
                let setting = if a == "-o" {
                    rest.next().cloned()
                } else {
                    a.strip_prefix("-o")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                match setting {
                    Some(s) => {
                        let inner = crate::value::strip_braces(&s);
                        let (n, v) = crate::maincf::split_nameval(inner)
                            .map_err(|k| err(ConfError::new(k).to_string()))?;
                        overrides.push((n.to_string(), v.to_string(), line.first));
                    }
                    None if a == "-o" => return Err(err("-o needs name=value".to_string())),
                    None => args.push(a.clone()),
                }
            }
            if kind == ServiceType::Inet {
                parse_endpoint(&fields[0]).map_err(err)?;
            }
            let service = Service {
                name: fields[0].clone(),
                kind,
                max_processes,
                command: fields[7].clone(),
                overrides,
                args,
                line: line.first,
            };
            services.retain(|s| !(s.name == service.name && s.kind == service.kind));
            services.push(service);
        }
        Ok(MasterCf { services })
    }
}

/// Splits on white space, keeping `{ ... }` groups as one argument.
fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut level = 0usize;
    for c in text.chars() {
        match c {
            '{' => {
                level += 1;
                cur.push(c);
            }
            '}' => {
                if level == 0 {
                    return Err(format!("unbalanced '}}' in \"{text}\""));
                }
                level -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && level == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if level != 0 {
        return Err(format!("missing '}}' in \"{text}\""));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }
127.0.0.1:2525 inet n - n - 10 smtpd -v
[::1]:smtps inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       y       60      1       pickup
qmgr      unix  n       -       n       300     1       qmgr
";

    #[test]
    fn stock_file() {
        let m = MasterCf::parse(Path::new("master.cf"), STOCK).unwrap();
        assert_eq!(m.services.len(), 6);
        let sub = &m.services[1];
        assert_eq!(sub.name, "submission");
        assert_eq!(
            sub.overrides,
            vec![
                ("syslog_name".into(), "postfix/submission".into(), 3),
                ("smtpd_tls_security_level".into(), "encrypt".into(), 3),
                (
                    "smtpd_recipient_restrictions".into(),
                    "permit_sasl_authenticated, reject".into(),
                    3
                ),
            ]
        );
        assert_eq!(
            sub.endpoint().unwrap(),
            InetEndpoint {
                host: None,
                port: 587
            }
        );
        let local = &m.services[2];
        assert_eq!(
            local.endpoint().unwrap(),
            InetEndpoint {
                host: Some("127.0.0.1".into()),
                port: 2525
            }
        );
        assert_eq!(local.max_processes, Some(10));
        assert_eq!(local.args, vec!["-v"]);
        assert_eq!(
            m.services[3].endpoint().unwrap(),
            InetEndpoint {
                host: Some("::1".into()),
                port: 465
            }
        );
        assert_eq!(m.services[4].command, "pickup");
    }

    #[test]
    fn last_definition_wins() {
        let m = MasterCf::parse(
            Path::new("master.cf"),
            "smtp inet n - n - - smtpd\nsmtp inet n - n - 5 smtpd\n",
        )
        .unwrap();
        assert_eq!(m.services.len(), 1);
        assert_eq!(m.services[0].max_processes, Some(5));
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, want) in [
            ("smtp inet n - n - smtpd\n", "line 1: field count"),
            ("smtp tcp n - n - - smtpd\n", "unknown service type \"tcp\""),
            (
                "\n\nnosuchport inet n - n - - smtpd\n",
                "line 3: unknown service port \"nosuchport\"",
            ),
            ("smtp inet n - n - x smtpd\n", "bad maxproc field"),
            ("smtp inet n - n - - smtpd -o\n", "-o needs name=value"),
            (
                "smtp inet n - n - - smtpd -o foo\n",
                "missing '=' after attribute name",
            ),
            ("smtp inet n - n - - smtpd -o { a = b\n", "missing '}'"),
        ] {
            let e = MasterCf::parse(Path::new("/etc/ironpost/master.cf"), text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("/etc/ironpost/master.cf, line"), "{e}");
            assert!(e.contains(want), "{want} not in {e}");
        }
    }
}
