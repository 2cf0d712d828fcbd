//! SMTP commands (RFC 5321 §4.1) as Postfix's smtpd reads them.
//!
//! A command line is parsed into a [`Command`], or into the [`Reply`] that
//! tells the client what was wrong, worded as Postfix words it. Postfix is
//! lenient where RFC 5321 is strict and clients depend on it: `MAIL FROM:
//! root` (a space after the colon, no angle brackets), `rcpt to:jerry`,
//! upper or lower case verbs, and lines ended by a bare LF are all accepted.
//!
//! What depends on the session (state, limits, what is enabled) is checked
//! by the session, not here: this module only knows syntax.

use super::address::{self, Address};
use super::reply::{self, Reply};
use super::xtext;

/// RFC 3461 RET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// RFC 6152 / RFC 3030 BODY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// The parameters of MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870 SIZE.
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub ret: Option<Ret>,
    /// RFC 3461 ENVID, still xtext-encoded as received.
    pub envid: Option<String>,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 4954 AUTH=, as given (xtext or `<>`).
    pub auth: Option<String>,
}

/// The parameters of RCPT TO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// RFC 3461 NOTIFY, upper-cased: `NEVER` or a comma list of
    /// `SUCCESS`, `FAILURE`, `DELAY`.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT as received: `rfc822;xtext`.
    pub orcpt: Option<String>,
}

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail(Address, MailParams),
    Rcpt(Address, RcptParams),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Expn(String),
    Help,
    Etrn(String),
    StartTls,
    Auth(String),
    /// A verb we do not know (or do not offer): `500 5.5.2`.
    Unknown(String),
}

impl Command {
    /// The verb as Postfix names it in its `disconnect` log line counters
    /// (`helo`, `ehlo`, `mail`, ..., `unknown`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Helo(_) => "helo",
            Command::Ehlo(_) => "ehlo",
            Command::Mail(..) => "mail",
            Command::Rcpt(..) => "rcpt",
            Command::Data => "data",
            Command::Bdat { .. } => "bdat",
            Command::Rset => "rset",
            Command::Noop => "noop",
            Command::Quit => "quit",
            Command::Vrfy(_) => "vrfy",
            Command::Expn(_) => "expn",
            Command::Help => "help",
            Command::Etrn(_) => "etrn",
            Command::StartTls => "starttls",
            Command::Auth(_) => "auth",
            Command::Unknown(_) => "unknown",
        }
    }
}

/// A parse failure: the verb it was for (for the counters) and the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub verb: &'static str,
    pub reply: Reply,
}

fn err(verb: &'static str, reply: Reply) -> ParseError {
    ParseError { verb, reply }
}

/// Splits the verb from its arguments.
fn split_verb(line: &str) -> (&str, &str) {
    let line = line.trim_start_matches([' ', '\t']);
    match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_matches([' ', '\t'])),
        None => (line, ""),
    }
}

/// Parses one command line (without its line end).
///
/// Postfix checks the session state before the syntax of MAIL, RCPT, DATA
/// and BDAT (`503 nested MAIL command` wins over a syntax error): the
/// session looks at [`verb_of`] first and parses after its state checks.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let (verb, args) = split_verb(line);
    let upper = verb.to_ascii_uppercase();
    match upper.as_str() {
        "HELO" | "EHLO" => {
            // One argument; Postfix takes the first word and ignores no more.
            let is_helo = upper == "HELO";
            if args.is_empty() {
                return Err(if is_helo {
                    err("helo", reply::syntax_helo())
                } else {
                    err("ehlo", reply::syntax_ehlo())
                });
            }
            let name = args.to_string();
            Ok(if is_helo {
                Command::Helo(name)
            } else {
                Command::Ehlo(name)
            })
        }
        "MAIL" => parse_mail(args).map(|(a, p)| Command::Mail(a, p)),
        "RCPT" => parse_rcpt(args).map(|(a, p)| Command::Rcpt(a, p)),
        "DATA" => {
            if args.is_empty() {
                Ok(Command::Data)
            } else {
                Err(err("data", reply::syntax_data()))
            }
        }
        "BDAT" => parse_bdat(args),
        "RSET" => {
            if args.is_empty() {
                Ok(Command::Rset)
            } else {
                Err(err("rset", reply::syntax_rset()))
            }
        }
        // Postfix ignores arguments to NOOP and QUIT.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => Ok(Command::Quit),
        "VRFY" => {
            if args.is_empty() {
                Err(err("vrfy", reply::syntax_vrfy()))
            } else {
                Ok(Command::Vrfy(args.to_string()))
            }
        }
        "EXPN" => Ok(Command::Expn(args.to_string())),
        "HELP" => Ok(Command::Help),
        "ETRN" => {
            if args.is_empty() {
                Err(err("etrn", reply::syntax_etrn()))
            } else {
                Ok(Command::Etrn(args.to_string()))
            }
        }
        "STARTTLS" => {
            if args.is_empty() {
                Ok(Command::StartTls)
            } else {
                Err(err("starttls", reply::syntax_starttls()))
            }
        }
        "AUTH" => Ok(Command::Auth(args.to_string())),
        _ => Ok(Command::Unknown(verb.to_string())),
    }
}

/// Whether the line is a MAIL or RCPT command (so the session can check
/// its state before the syntax, as Postfix does).
pub fn verb_of(line: &str) -> String {
    split_verb(line).0.to_ascii_uppercase()
}

/// The part after `FROM:` / `TO:`, or `None` when the keyword is missing.
fn after_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    Some(args[keyword.len()..].trim_start_matches([' ', '\t']))
}

/// Splits the address token from the parameters: `<...>` up to the
/// matching `>` (quotes and backslashes respected), else up to white space.
fn split_address_token(s: &str) -> (&str, &str) {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    let bracketed = bytes.first() == Some(&b'<');
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if bracketed && b == b'>' {
                i += 1;
                break;
            }
            if !bracketed && (b == b' ' || b == b'\t') {
                break;
            }
        }
        i += 1;
    }
    let i = i.min(bytes.len());
    (&s[..i], s[i..].trim_start_matches([' ', '\t']))
}

/// Splits ESMTP parameters `KEY[=VALUE]` on white space.
fn params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w, None),
        })
}

fn joined(key: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    }
}

/// Parses the arguments of MAIL: `FROM:<address> [parameters]`.
pub fn parse_mail(args: &str) -> Result<(Address, MailParams), ParseError> {
    let verb = "mail";
    let Some(rest) = after_keyword(args, "FROM:") else {
        return Err(err(verb, reply::syntax_mail()));
    };
    if rest.is_empty() {
        return Err(err(verb, reply::syntax_mail()));
    }
    let (token, rest) = split_address_token(rest);
    let addr = address::parse_path(token).map_err(|_| err(verb, reply::bad_sender_syntax()))?;
    let mut p = MailParams::default();
    for (key, value) in params(rest) {
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(verb, reply::bad_size_syntax()));
                }
                // A number too large for u64 is over any limit.
                p.size = Some(v.parse().unwrap_or(u64::MAX));
            }
            ("BODY", Some(v)) => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(err(verb, reply::unsupported_option(&joined(key, value)))),
                });
            }
            ("RET", Some(v)) => {
                if p.ret.is_some() {
                    return Err(err(verb, reply::bad_ret()));
                }
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(err(verb, reply::bad_ret())),
                });
            }
            ("ENVID", Some(v)) => {
                if p.envid.is_some() || v.is_empty() || v.len() > 100 || !xtext::is_valid(v) {
                    return Err(err(verb, reply::bad_envid()));
                }
                p.envid = Some(v.to_string());
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("AUTH", Some(v)) => {
                if v != "<>" && !xtext::is_valid(v) {
                    return Err(err(
                        verb,
                        reply::Reply::new(501, "5.5.4", "Bad AUTH parameter syntax"),
                    ));
                }
                p.auth = Some(v.to_string());
            }
            _ => return Err(err(verb, reply::unsupported_option(&joined(key, value)))),
        }
    }
    Ok((addr, p))
}

/// Parses the arguments of RCPT: `TO:<address> [parameters]`.
pub fn parse_rcpt(args: &str) -> Result<(Address, RcptParams), ParseError> {
    let verb = "rcpt";
    let Some(rest) = after_keyword(args, "TO:") else {
        return Err(err(verb, reply::syntax_rcpt()));
    };
    if rest.is_empty() {
        return Err(err(verb, reply::syntax_rcpt()));
    }
    let (token, rest) = split_address_token(rest);
    let addr = address::parse_path(token).map_err(|_| err(verb, reply::bad_recipient_syntax()))?;
    if addr.is_null() {
        return Err(err(verb, reply::bad_recipient_syntax()));
    }
    let mut p = RcptParams::default();
    for (key, value) in params(rest) {
        match (key.to_ascii_uppercase().as_str(), value) {
            ("NOTIFY", Some(v)) => {
                let v = v.to_ascii_uppercase();
                let words: Vec<&str> = v.split(',').collect();
                let ok = if words == ["NEVER"] {
                    true
                } else {
                    !words.is_empty()
                        && words
                            .iter()
                            .all(|w| matches!(*w, "SUCCESS" | "FAILURE" | "DELAY"))
                };
                if !ok || p.notify.is_some() {
                    return Err(err(verb, reply::bad_notify()));
                }
                p.notify = Some(v);
            }
            ("ORCPT", Some(v)) => {
                let valid = match v.split_once(';') {
                    Some((kind, addr)) => {
                        !kind.is_empty()
                            && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && !addr.is_empty()
                            && xtext::is_valid(addr)
                    }
                    None => false,
                };
                if !valid || p.orcpt.is_some() || v.len() > 500 {
                    return Err(err(verb, reply::bad_orcpt()));
                }
                p.orcpt = Some(v.to_string());
            }
            _ => return Err(err(verb, reply::unsupported_option(&joined(key, value)))),
        }
    }
    Ok((addr, p))
}

fn parse_bdat(args: &str) -> Result<Command, ParseError> {
    let mut words = args.split([' ', '\t']).filter(|w| !w.is_empty());
    let bad = || err("bdat", reply::syntax_bdat());
    let size = words.next().ok_or_else(bad)?;
    if size.is_empty() || size.len() > 19 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let size: u64 = size.parse().map_err(|_| bad())?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(bad()),
    };
    if words.next().is_some() {
        return Err(bad());
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(line: &str) -> String {
        match parse(line) {
            Ok(c) => format!("ok {c:?}"),
            Err(e) => e.reply.text(),
        }
    }

    #[test]
    fn lenient_addresses_as_postfix() {
        for (line, want) in [
            ("mail from: root", "root"),
            ("MAIL FROM:<root>", "root"),
            ("mail from:root", "root"),
            ("Mail From:   <jerry@example.test>", "jerry@example.test"),
            (
                "mail from:<@a.example,@b.example:u@c.example>",
                "u@c.example",
            ),
            ("mail from:<\"a b\"@example.test>", "\"a b\"@example.test"),
            ("mail from:<u@[192.0.2.1]>", "u@[192.0.2.1]"),
            ("mail from:<>", ""),
            ("mail from: <>", ""),
        ] {
            match parse(line) {
                Ok(Command::Mail(a, _)) => assert_eq!(a.as_str(), want, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        match parse("rcpt to:jerry") {
            Ok(Command::Rcpt(a, _)) => assert_eq!(a.as_str(), "jerry"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn postfix_error_replies() {
        for (line, want) in [
            ("mail", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("mail to:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("mail from:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("mail from:<a@b", "501 5.1.7 Bad sender address syntax"),
            ("mail from:<a b@c>", "501 5.1.7 Bad sender address syntax"),
            (
                "mail from:<a@b> SIZE=abc",
                "501 5.5.4 Bad message size syntax",
            ),
            (
                "mail from:<a@b> BODY=9BIT",
                "555 5.5.4 Unsupported option: BODY=9BIT",
            ),
            (
                "mail from:<a@b> FOO=bar",
                "555 5.5.4 Unsupported option: FOO=bar",
            ),
            (
                "mail from:<a@b> RET=ALL",
                "501 5.5.4 Bad RET parameter syntax",
            ),
            (
                "mail from:<a@b> ENVID=a+b",
                "501 5.5.4 Bad ENVID parameter syntax",
            ),
            ("rcpt to:", "501 5.5.4 Syntax: RCPT TO:<address>"),
            ("rcpt from:<a@b>", "501 5.5.4 Syntax: RCPT TO:<address>"),
            (
                "rcpt to:<a@b> NOTIFY=BAD",
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                "rcpt to:<a@b> NOTIFY=NEVER,SUCCESS",
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                "rcpt to:<a@b> ORCPT=rfc822;a+b",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            (
                "rcpt to:<a@b> ORCPT=nosemicolon",
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            ("rcpt to:<>", "501 5.1.3 Bad recipient address syntax"),
            ("helo", "501 Syntax: HELO hostname"),
            ("ehlo", "501 Syntax: EHLO hostname"),
            ("rset x", "501 5.5.4 Syntax: RSET"),
            ("vrfy", "501 5.5.4 Syntax: VRFY address [SMTPUTF8]"),
            ("etrn", "500 Syntax: ETRN domain"),
            ("bdat x", "521 5.5.4 Syntax: BDAT count [LAST]"),
            ("bdat 10 NOTLAST", "521 5.5.4 Syntax: BDAT count [LAST]"),
            ("data x", "501 5.5.4 Syntax: DATA"),
        ] {
            assert_eq!(reply_of(line), want, "{line}");
        }
    }

    #[test]
    fn parameters() {
        let Ok(Command::Mail(a, p)) = parse(
            "MAIL FROM:<a@example.test> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B314 SMTPUTF8",
        ) else {
            panic!()
        };
        assert_eq!(a.as_str(), "a@example.test");
        assert_eq!(p.size, Some(1000));
        assert_eq!(p.body, Some(Body::EightBitMime));
        assert_eq!(p.ret, Some(Ret::Hdrs));
        assert_eq!(p.envid.as_deref(), Some("QQ+2B314"));
        assert!(p.smtputf8);
        let Ok(Command::Rcpt(_, p)) =
            parse("RCPT TO:<b@example.test> NOTIFY=success,delay ORCPT=rfc822;b+40example.test")
        else {
            panic!()
        };
        assert_eq!(p.notify.as_deref(), Some("SUCCESS,DELAY"));
        assert_eq!(p.orcpt.as_deref(), Some("rfc822;b+40example.test"));
        // Postfix accepts a repeated SIZE.
        assert!(parse("mail from:<a@b> SIZE=1 SIZE=2").is_ok());
        assert_eq!(
            parse("bdat 0 last"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert_eq!(parse("QUIT now"), Ok(Command::Quit));
        assert_eq!(parse("xyzzy"), Ok(Command::Unknown("xyzzy".into())));
    }
}
