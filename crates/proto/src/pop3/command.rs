//! POP3 commands (RFC 1939 §§4-7, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
//! AUTH, RFC 6856 UTF8 and LANG) as Dovecot 2.3 reads them.
//!
//! A command line (without its line end) is parsed into a [`Command`], or
//! into a [`CommandError`] whose text is the one Dovecot answers with.
//! Dovecot's rules, followed here:
//!
//! - The keyword is case-insensitive and ends at the first space.
//! - Arguments start after one or more spaces. Message numbers are decimal,
//!   `1..=u32::MAX`; the faults are told apart as Dovecot's `get_msgnum`
//!   does (`src/pop3/pop3-commands.c`): `Invalid message number: X` when
//!   no digit comes first, `Message number too large: X`, `Noise after
//!   message number: X` (X is the rest after the digits), and `There's no
//!   message 0.`. TOP's line count is checked the same way (`Invalid
//!   size`, `Size too large`, `Noise after size`); TOP needs a space after
//!   the message number, so `TOP 1` is `Noise after message number: `.
//! - Commands without arguments (CAPA, STAT, NOOP, RSET, QUIT, STLS, UTF8)
//!   ignore any, as Dovecot does.
//! - PASS takes the rest of the line after the one space that follows the
//!   keyword, verbatim: spaces inside, before or after a password are part
//!   of it (RFC 1939 §7 allows a server to do so).
//! - AUTH without a mechanism is the old-style mechanism listing Outlook
//!   uses (Dovecot answers `+OK`, one mechanism per line, `.`).
//!
//! Where this module is more lenient than Dovecot: spaces before the
//! keyword, and spaces after the last number of RETR, DELE, LIST, UIDL and
//! TOP, are accepted (Dovecot answers `Noise after message number:  `);
//! USER, APOP and AUTH arguments are split on runs of spaces and trimmed.
//!
//! What depends on the session (the state, whether a message exists or is
//! deleted, what is offered) is not checked here. Dovecot answers a
//! command the state does not allow as it answers an unknown one: before
//! login `-ERR Unknown command.`, after login `-ERR Unknown command: VERB`.

use std::fmt;

use super::response;

/// One command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 §7), trimmed, never empty.
    User(String),
    /// `PASS string`: the rest of the line, verbatim (may be empty).
    Pass(String),
    /// `APOP name digest` (RFC 1939 §7): `digest` is 32 hex digits.
    Apop {
        name: String,
        digest: String,
    },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4). The mechanism
    /// is as the client wrote it; the initial response is still base64
    /// (`=` is an empty one). `mechanism: None` asks for the list of
    /// mechanisms (Outlook's old-style discovery).
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    /// RFC 2449 §5.
    Capa,
    /// RFC 2595 §4.
    Stls,
    Stat,
    /// `LIST [msg]`.
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    /// `TOP msg n`. A line count over `u32::MAX` is `u32::MAX` (all of
    /// the body, as Dovecot, which reads it as a 64-bit number).
    Top {
        msg: u32,
        lines: u32,
    },
    /// `UIDL [msg]`.
    Uidl(Option<u32>),
    Quit,
    /// RFC 6856 §2.
    Utf8,
    /// `LANG [language-range]` (RFC 6856 §3), trimmed; `None` asks for
    /// the list.
    Lang(Option<String>),
}

impl Command {
    /// The keyword in lower case, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "user",
            Command::Pass(_) => "pass",
            Command::Apop { .. } => "apop",
            Command::Auth { .. } => "auth",
            Command::Capa => "capa",
            Command::Stls => "stls",
            Command::Stat => "stat",
            Command::List(_) => "list",
            Command::Retr(_) => "retr",
            Command::Dele(_) => "dele",
            Command::Noop => "noop",
            Command::Rset => "rset",
            Command::Top { .. } => "top",
            Command::Uidl(_) => "uidl",
            Command::Quit => "quit",
            Command::Utf8 => "utf8",
            Command::Lang(_) => "lang",
        }
    }
}

/// Passwords and initial responses (which carry passwords) stay out of
/// debug output and logs.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::User(n) => f.debug_tuple("User").field(n).finish(),
            Command::Pass(_) => f.write_str("Pass(<hidden>)"),
            Command::Apop { name, .. } => f
                .debug_struct("Apop")
                .field("name", name)
                .field("digest", &"<hidden>")
                .finish(),
            Command::Auth { mechanism, initial } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field("initial", &initial.as_ref().map(|_| "<hidden>"))
                .finish(),
            Command::Capa => f.write_str("Capa"),
            Command::Stls => f.write_str("Stls"),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            Command::Quit => f.write_str("Quit"),
            Command::Utf8 => f.write_str("Utf8"),
            Command::Lang(l) => f.debug_tuple("Lang").field(l).finish(),
        }
    }
}

/// What is wrong with a command line. `Display` gives Dovecot's text for
/// the `-ERR` reply, [`CommandError::code`] its response code, and
/// [`CommandError::response`] the whole reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// A keyword we do not know, upper-cased as Dovecot echoes it:
    /// `Unknown command: FOO` (after login; before login Dovecot says
    /// [`response::text::UNKNOWN_COMMAND_LOGIN`], `Unknown command.`).
    Unknown(String),
    /// `Invalid message number: X`: X does not start with a digit (the
    /// argument as given; empty when there is none).
    InvalidNumber(String),
    /// `Message number too large: X` (over `u32::MAX`).
    NumberTooLarge(String),
    /// `Noise after message number: X`, X being what follows the digits.
    NoiseAfterNumber(String),
    /// `There's no message N.`: here only for 0 (the session says it for
    /// numbers past the last message).
    NoSuchMessage(u32),
    /// TOP's line count: `Invalid size: X`.
    InvalidSize(String),
    /// `Size too large: X` (over `u64::MAX`).
    SizeTooLarge(String),
    /// `Noise after size: X`.
    NoiseAfterSize(String),
    /// USER without a name: `No username given.` (Dovecot's text for PASS
    /// before USER; Dovecot itself accepts an empty USER and fails the
    /// login later).
    NoUsername,
    /// APOP without a name and a 32-character digest: `Invalid
    /// parameters.`
    ApopParameters,
    /// APOP digest that is not hex: `Invalid characters in MD5 response.`
    ApopDigest,
    /// USER, PASS or the APOP name not in UTF-8. No stored name or
    /// password can match, so it is answered as a failed login, which is
    /// where Dovecot ends up: `-ERR [AUTH] Authentication failed.`
    NotUtf8 { verb: &'static str },
}

impl CommandError {
    /// The RFC 2449 §8 response code to send with the text, if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            CommandError::NotUtf8 { .. } => Some(response::code::AUTH),
            _ => None,
        }
    }

    /// The `-ERR` reply line (after login, for [`CommandError::Unknown`]).
    pub fn response(&self) -> Vec<u8> {
        response::err(self.code(), &self.to_string())
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(verb) => write!(f, "Unknown command: {verb}"),
            CommandError::InvalidNumber(a) => write!(f, "Invalid message number: {a}"),
            CommandError::NumberTooLarge(a) => write!(f, "Message number too large: {a}"),
            CommandError::NoiseAfterNumber(a) => write!(f, "Noise after message number: {a}"),
            CommandError::NoSuchMessage(n) => write!(f, "There's no message {n}."),
            CommandError::InvalidSize(a) => write!(f, "Invalid size: {a}"),
            CommandError::SizeTooLarge(a) => write!(f, "Size too large: {a}"),
            CommandError::NoiseAfterSize(a) => write!(f, "Noise after size: {a}"),
            CommandError::NoUsername => f.write_str(response::text::NO_USERNAME),
            CommandError::ApopParameters => f.write_str("Invalid parameters."),
            CommandError::ApopDigest => f.write_str("Invalid characters in MD5 response."),
            CommandError::NotUtf8 { .. } => f.write_str(response::text::AUTH_FAILED),
        }
    }
}

impl std::error::Error for CommandError {}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let s = skip_spaces(s);
    let n = s.iter().rev().take_while(|&&b| b == b' ').count();
    &s[..s.len() - n]
}

fn utf8(bytes: &[u8], verb: &'static str) -> Result<String, CommandError> {
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| CommandError::NotUtf8 { verb })
}

/// A leading run of decimal digits as a number: `(digits, value)`, the
/// value `None` past `u64::MAX`.
fn digits(s: &[u8]) -> (usize, Option<u64>) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = s[..n].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    (n, value)
}

/// Dovecot's `get_msgnum`: a message number at the start of `args` (which
/// starts after the spaces), then, for TOP (`then_space`), a space; the
/// rest after the spaces that follow. Without `then_space` only spaces may
/// follow (Dovecot allows nothing).
fn message_number(args: &[u8], then_space: bool) -> Result<(u32, &[u8]), CommandError> {
    let (n, value) = digits(args);
    if n == 0 {
        return Err(CommandError::InvalidNumber(lossy(args)));
    }
    let num = match value.and_then(|v| u32::try_from(v).ok()) {
        Some(v) => v,
        None => return Err(CommandError::NumberTooLarge(lossy(args))),
    };
    let rest = &args[n..];
    let noise = if then_space {
        rest.first() != Some(&b' ')
    } else {
        !skip_spaces(rest).is_empty()
    };
    if noise {
        return Err(CommandError::NoiseAfterNumber(lossy(rest)));
    }
    if num == 0 {
        return Err(CommandError::NoSuchMessage(0));
    }
    Ok((num, skip_spaces(rest)))
}

/// Dovecot's `get_size` for TOP's line count (a 64-bit number there).
fn line_count(args: &[u8]) -> Result<u32, CommandError> {
    let (n, value) = digits(args);
    if n == 0 {
        return Err(CommandError::InvalidSize(lossy(args)));
    }
    let Some(value) = value else {
        return Err(CommandError::SizeTooLarge(lossy(args)));
    };
    let rest = &args[n..];
    if !skip_spaces(rest).is_empty() {
        return Err(CommandError::NoiseAfterSize(lossy(rest)));
    }
    Ok(u32::try_from(value).unwrap_or(u32::MAX))
}

/// `LIST` and `UIDL`: no argument, or one message number.
fn optional_number(args: &[u8]) -> Result<Option<u32>, CommandError> {
    if args.is_empty() {
        return Ok(None);
    }
    message_number(args, false).map(|(n, _)| Some(n))
}

/// Parses one command line, without its line end.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = skip_spaces(line);
    let (verb, raw) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    };
    // Arguments of every command but PASS start after any further spaces.
    let args = skip_spaces(raw);
    let upper = verb.to_ascii_uppercase();
    Ok(match upper.as_slice() {
        b"USER" => {
            let name = trim_spaces(args);
            if name.is_empty() {
                return Err(CommandError::NoUsername);
            }
            Command::User(utf8(name, "user")?)
        }
        b"PASS" => Command::Pass(utf8(raw, "pass")?),
        b"APOP" => parse_apop(args)?,
        b"AUTH" => {
            let args = trim_spaces(args);
            if args.is_empty() {
                Command::Auth {
                    mechanism: None,
                    initial: None,
                }
            } else {
                let (mech, rest) = match args.iter().position(|&b| b == b' ') {
                    Some(i) => (&args[..i], skip_spaces(&args[i..])),
                    None => (args, &b""[..]),
                };
                // Not UTF-8 matches no mechanism and decodes as no base64:
                // the session's checks answer it as Dovecot does.
                Command::Auth {
                    mechanism: Some(lossy(mech)),
                    initial: (!rest.is_empty()).then(|| lossy(rest)),
                }
            }
        }
        b"CAPA" => Command::Capa,
        b"STLS" => Command::Stls,
        b"STAT" => Command::Stat,
        b"LIST" => Command::List(optional_number(args)?),
        b"RETR" => Command::Retr(message_number(args, false)?.0),
        b"DELE" => Command::Dele(message_number(args, false)?.0),
        b"NOOP" => Command::Noop,
        b"RSET" => Command::Rset,
        b"TOP" => {
            let (msg, rest) = message_number(args, true)?;
            Command::Top {
                msg,
                lines: line_count(rest)?,
            }
        }
        b"UIDL" => Command::Uidl(optional_number(args)?),
        b"QUIT" => Command::Quit,
        b"UTF8" => Command::Utf8,
        b"LANG" => {
            let lang = trim_spaces(args);
            Command::Lang((!lang.is_empty()).then(|| lossy(lang)))
        }
        _ => return Err(CommandError::Unknown(lossy(&upper))),
    })
}

/// `APOP name digest`, checked as Dovecot checks it: a name, then exactly
/// 32 characters (`Invalid parameters.`), all hex (`Invalid characters in
/// MD5 response.`).
fn parse_apop(args: &[u8]) -> Result<Command, CommandError> {
    let args = trim_spaces(args);
    let Some(i) = args.iter().position(|&b| b == b' ') else {
        return Err(CommandError::ApopParameters);
    };
    let (name, digest) = (&args[..i], skip_spaces(&args[i..]));
    if digest.len() != 32 {
        return Err(CommandError::ApopParameters);
    }
    if !digest.iter().all(u8::is_ascii_hexdigit) {
        return Err(CommandError::ApopDigest);
    }
    Ok(Command::Apop {
        name: utf8(name, "apop")?,
        digest: lossy(digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(line: &str) -> Result<Command, CommandError> {
        parse(line.as_bytes())
    }

    /// The reply a line gets when it does not parse, as the wire shows it.
    fn reply(line: &[u8]) -> String {
        match parse(line) {
            Ok(c) => format!("ok {c:?}"),
            Err(e) => String::from_utf8(e.response()).unwrap(),
        }
    }

    #[test]
    fn commands_without_arguments() {
        for (line, want) in [
            ("CAPA", Command::Capa),
            ("STLS", Command::Stls),
            ("STAT", Command::Stat),
            ("NOOP", Command::Noop),
            ("RSET", Command::Rset),
            ("QUIT", Command::Quit),
            ("UTF8", Command::Utf8),
            ("capa", Command::Capa),
            ("sTaT", Command::Stat),
            ("  quit", Command::Quit),
            // Arguments are ignored, as Dovecot ignores them.
            ("QUIT now", Command::Quit),
            ("NOOP 1 2 3", Command::Noop),
            ("STLS x", Command::Stls),
        ] {
            assert_eq!(p(line), Ok(want.clone()), "{line}");
            assert_eq!(
                want.name(),
                line.trim().split(' ').next().unwrap().to_lowercase()
            );
        }
    }

    #[test]
    fn message_numbers() {
        assert_eq!(p("RETR 1"), Ok(Command::Retr(1)));
        assert_eq!(p("retr   17"), Ok(Command::Retr(17)));
        assert_eq!(p("RETR 007"), Ok(Command::Retr(7)));
        assert_eq!(p("DELE 4294967295"), Ok(Command::Dele(u32::MAX)));
        assert_eq!(p("dele 2  "), Ok(Command::Dele(2)));
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("LIST "), Ok(Command::List(None)));
        assert_eq!(p("list 3"), Ok(Command::List(Some(3))));
        assert_eq!(p("UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(p("Uidl 12"), Ok(Command::Uidl(Some(12))));
        assert_eq!(p("TOP 1 0"), Ok(Command::Top { msg: 1, lines: 0 }));
        assert_eq!(p("top 2    10 "), Ok(Command::Top { msg: 2, lines: 10 }));
        assert_eq!(
            p("TOP 1 18446744073709551615"),
            Ok(Command::Top {
                msg: 1,
                lines: u32::MAX
            })
        );
    }

    #[test]
    fn dovecot_error_texts() {
        for (line, want) in [
            ("RETR", "-ERR Invalid message number: \r\n"),
            ("RETR x", "-ERR Invalid message number: x\r\n"),
            ("RETR -1", "-ERR Invalid message number: -1\r\n"),
            ("DELE +1", "-ERR Invalid message number: +1\r\n"),
            ("LIST a b", "-ERR Invalid message number: a b\r\n"),
            ("UIDL \u{e9}", "-ERR Invalid message number: \u{e9}\r\n"),
            ("RETR 1x", "-ERR Noise after message number: x\r\n"),
            ("RETR 1 2", "-ERR Noise after message number:  2\r\n"),
            ("LIST 3.", "-ERR Noise after message number: .\r\n"),
            (
                "RETR 4294967296",
                "-ERR Message number too large: 4294967296\r\n",
            ),
            (
                "UIDL 99999999999999999999999",
                "-ERR Message number too large: 99999999999999999999999\r\n",
            ),
            ("RETR 0", "-ERR There's no message 0.\r\n"),
            ("DELE 000", "-ERR There's no message 0.\r\n"),
            ("LIST 0", "-ERR There's no message 0.\r\n"),
            // Noise is checked before the number.
            ("RETR 0x", "-ERR Noise after message number: x\r\n"),
            ("TOP", "-ERR Invalid message number: \r\n"),
            ("TOP 1", "-ERR Noise after message number: \r\n"),
            ("TOP 1x 2", "-ERR Noise after message number: x 2\r\n"),
            ("TOP 0 1", "-ERR There's no message 0.\r\n"),
            ("TOP 1 ", "-ERR Invalid size: \r\n"),
            ("TOP 1 x", "-ERR Invalid size: x\r\n"),
            ("TOP 1 -5", "-ERR Invalid size: -5\r\n"),
            ("TOP 1 5x", "-ERR Noise after size: x\r\n"),
            ("TOP 1 5 6", "-ERR Noise after size:  6\r\n"),
            (
                "TOP 1 18446744073709551616",
                "-ERR Size too large: 18446744073709551616\r\n",
            ),
            ("FOO", "-ERR Unknown command: FOO\r\n"),
            ("xyzzy 1 2", "-ERR Unknown command: XYZZY\r\n"),
            ("", "-ERR Unknown command: \r\n"),
            ("LAST", "-ERR Unknown command: LAST\r\n"),
            ("RETR\t1", "-ERR Unknown command: RETR\t1\r\n"),
            ("USER", "-ERR No username given.\r\n"),
            ("USER    ", "-ERR No username given.\r\n"),
            ("APOP", "-ERR Invalid parameters.\r\n"),
            ("APOP mrose", "-ERR Invalid parameters.\r\n"),
            (
                "APOP mrose c4c9334bac560ecc",
                "-ERR Invalid parameters.\r\n",
            ),
            (
                "APOP mrose c4c9334bac560ecc979e58001b3e22fb 1",
                "-ERR Invalid parameters.\r\n",
            ),
            (
                "APOP mrose c4c9334bac560ecc979e58001b3e22fZ",
                "-ERR Invalid characters in MD5 response.\r\n",
            ),
        ] {
            assert_eq!(reply(line.as_bytes()), want, "{line:?}");
        }
        // Reply lines never carry a bare CR or LF from the input.
        assert_eq!(reply(b"FOO\rBAR"), "-ERR Unknown command: FOO BAR\r\n");
        // Bytes that are not UTF-8 are echoed lossily.
        assert_eq!(
            reply(b"RETR \xff"),
            "-ERR Invalid message number: \u{fffd}\r\n"
        );
    }

    #[test]
    fn user_and_pass() {
        assert_eq!(p("USER jerry"), Ok(Command::User("jerry".into())));
        assert_eq!(
            p("user  jerry@example.test  "),
            Ok(Command::User("jerry@example.test".into()))
        );
        assert_eq!(
            p("USER j\u{fc}rgen"),
            Ok(Command::User("j\u{fc}rgen".into()))
        );
        // PASS: the rest of the line after one space, verbatim.
        for (line, want) in [
            ("PASS secret", "secret"),
            ("pass two words", "two words"),
            ("PASS  leading", " leading"),
            ("PASS trailing ", "trailing "),
            ("PASS a  b\tc", "a  b\tc"),
            ("PASS", ""),
            ("PASS ", ""),
            ("PASS p\u{e4}ss", "p\u{e4}ss"),
        ] {
            assert_eq!(p(line), Ok(Command::Pass(want.into())), "{line:?}");
        }
        // Not UTF-8: answered as a failed login.
        for line in [
            &b"USER \xff"[..],
            b"PASS \xc3\x28",
            b"APOP \xff 0123456789abcdef0123456789ABCDEF",
        ] {
            let e = parse(line).unwrap_err();
            assert!(matches!(e, CommandError::NotUtf8 { .. }), "{e:?}");
            assert_eq!(e.response(), b"-ERR [AUTH] Authentication failed.\r\n");
        }
        // Debug output hides the password.
        let shown = format!("{:?}", p("PASS hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn apop() {
        // RFC 1939 §7's example.
        assert_eq!(
            p("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Ok(Command::Apop {
                name: "mrose".into(),
                digest: "c4c9334bac560ecc979e58001b3e22fb".into()
            })
        );
        assert_eq!(
            p("apop  mrose   C4C9334BAC560ECC979E58001B3E22FB "),
            Ok(Command::Apop {
                name: "mrose".into(),
                digest: "C4C9334BAC560ECC979E58001B3E22FB".into()
            })
        );
        let shown = format!(
            "{:?}",
            p("APOP m c4c9334bac560ecc979e58001b3e22fb").unwrap()
        );
        assert!(!shown.contains("c4c9"), "{shown}");
    }

    #[test]
    fn auth() {
        let auth = |m: Option<&str>, i: Option<&str>| Command::Auth {
            mechanism: m.map(String::from),
            initial: i.map(String::from),
        };
        assert_eq!(p("AUTH"), Ok(auth(None, None)));
        assert_eq!(p("auth   "), Ok(auth(None, None)));
        assert_eq!(p("AUTH PLAIN"), Ok(auth(Some("PLAIN"), None)));
        assert_eq!(p("auth plain"), Ok(auth(Some("plain"), None)));
        assert_eq!(
            p("AUTH PLAIN AGplcnJ5AHNlY3JldA=="),
            Ok(auth(Some("PLAIN"), Some("AGplcnJ5AHNlY3JldA==")))
        );
        assert_eq!(
            p("AUTH  SCRAM-SHA-256   biwsbj11c2Vy  "),
            Ok(auth(Some("SCRAM-SHA-256"), Some("biwsbj11c2Vy")))
        );
        // RFC 5034 §4: `=` is an empty initial response (kept for the
        // SASL layer to decode).
        assert_eq!(p("AUTH PLAIN ="), Ok(auth(Some("PLAIN"), Some("="))));
        // Anything after the response is left to base64 decoding to refuse.
        assert_eq!(p("AUTH PLAIN a b"), Ok(auth(Some("PLAIN"), Some("a b"))));
        let shown = format!("{:?}", p("AUTH PLAIN AGplcnJ5AHNlY3JldA==").unwrap());
        assert!(!shown.contains("AGpl"), "{shown}");
    }

    #[test]
    fn lang() {
        assert_eq!(p("LANG"), Ok(Command::Lang(None)));
        assert_eq!(p("lang  en "), Ok(Command::Lang(Some("en".into()))));
        assert_eq!(p("LANG *"), Ok(Command::Lang(Some("*".into()))));
    }

    proptest! {
        /// Nothing a client sends makes the parser panic, and every error
        /// is one reply line.
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Err(e) = parse(&line) {
                let r = e.response();
                prop_assert!(r.starts_with(b"-ERR"));
                prop_assert!(r.ends_with(b"\r\n"));
                prop_assert!(!r[..r.len() - 2].contains(&b'\n'));
                prop_assert!(!r[..r.len() - 2].contains(&b'\r'));
            }
        }

        /// Every number in range parses back, with any spaces between.
        #[test]
        fn numbers_round_trip(n in 1u32.., l in any::<u32>(), s1 in 1usize..4, s2 in 1usize..4) {
            let sp = |k| " ".repeat(k);
            prop_assert_eq!(p(&format!("RETR{}{n}", sp(s1))), Ok(Command::Retr(n)));
            prop_assert_eq!(p(&format!("LIST{}{n}{}", sp(s1), sp(s2 - 1))), Ok(Command::List(Some(n))));
            prop_assert_eq!(
                p(&format!("TOP{}{n}{}{l}", sp(s1), sp(s2))),
                Ok(Command::Top { msg: n, lines: l })
            );
        }
    }
}
