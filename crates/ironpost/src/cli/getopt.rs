//! getopt(3) for the Postfix-compatible commands, so that `postconf -nx`,
//! `postmap -q key table` and `postconf -c /dir -e a=b` parse exactly as
//! they do with Postfix. Options may follow operands (GNU getopt permutes),
//! `--` ends the options.

/// Parsed command line: options in order (with their arguments) and operands.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub opts: Vec<(char, Option<String>)>,
    pub operands: Vec<String>,
}

impl Parsed {
    pub fn has(&self, c: char) -> bool {
        self.opts.iter().any(|(o, _)| *o == c)
    }

    /// The argument of the last `-c`-style option.
    pub fn value(&self, c: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(o, _)| *o == c)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every argument given to a repeatable option.
    pub fn values(&self, c: char) -> Vec<&str> {
        self.opts
            .iter()
            .filter(|(o, _)| *o == c)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

/// Parses `args` against `spec` (getopt's syntax: letters, `:` after a letter
/// that takes an argument). Errors are getopt's messages.
pub fn getopt(args: &[String], spec: &str) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let takes_arg = |c: char| -> Option<bool> {
        let mut it = spec.chars().peekable();
        while let Some(s) = it.next() {
            let arg = it.peek() == Some(&':');
            if arg {
                it.next();
            }
            if s == c {
                return Some(arg);
            }
        }
        None
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            parsed.operands.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            parsed.operands.push(a.clone());
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            match takes_arg(c) {
                None => return Err(format!("invalid option -- '{c}'")),
                Some(false) => parsed.opts.push((c, None)),
                Some(true) => {
                    let value = if j < chars.len() {
                        let rest: String = chars[j..].iter().collect();
                        j = chars.len();
                        rest
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(format!("option requires an argument -- '{c}'"));
                    };
                    parsed.opts.push((c, Some(value)));
                }
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn clusters_arguments_and_permutation() {
        let p = getopt(
            &args(&["-nx", "-c", "/etc/x", "myhostname", "-h", "--", "-d"]),
            "c:dhnx#",
        )
        .unwrap();
        assert_eq!(
            p.opts,
            vec![
                ('n', None),
                ('x', None),
                ('c', Some("/etc/x".into())),
                ('h', None)
            ]
        );
        assert_eq!(p.operands, vec!["myhostname", "-d"]);
        let p = getopt(&args(&["-c/etc/y", "-#", "a"]), "c:#").unwrap();
        assert_eq!(p.value('c'), Some("/etc/y"));
        assert!(p.has('#'));
        let p = getopt(&args(&["-q", "-", "hash:/x"]), "q:").unwrap();
        assert_eq!(p.value('q'), Some("-"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            getopt(&args(&["-z"]), "c:").unwrap_err(),
            "invalid option -- 'z'"
        );
        assert_eq!(
            getopt(&args(&["-c"]), "c:").unwrap_err(),
            "option requires an argument -- 'c'"
        );
    }
}
