//! `sendmail`: Postfix's sendmail(1), the way programs on this machine post
//! mail. The message is read from standard input and written, durably, to
//! the `maildrop/` queue; a running daemon is told (`wake` over the control
//! socket) and its pickup takes it from there. With the daemon stopped the
//! mail waits in `maildrop/`, as with Postfix.
//!
//! Flags, as Postfix's sendmail takes them:
//! - `-t`: recipients also from the To, Cc and Bcc headers (only from the
//!   Resent- ones when the message has Resent- recipient headers), added to
//!   those of the command line. Bcc and Resent-Bcc headers are removed from
//!   posted mail in any case, as Postfix's cleanup removes them.
//! - `-f SENDER` / `-r SENDER` (`<>` is the null sender), `-F NAME` (the
//!   full name for a From header the message lacks; else `$NAME`, else the
//!   passwd entry's).
//! - `-i`, `-oi`: a line with a single dot does not end the message (it does
//!   without them).
//! - `-N dsn`, `-R ret`, `-V envid`, `-B type`: DSN and body type.
//! - `-bm` (default), `-bp` (= mailq), `-bi` and `-I` (= newaliases), `-q`
//!   (= postqueue -f); `-bs` runs one SMTP session on standard input and output; `-bd`, `-bl`, `-bv` are
//!   not supported; `-bh`, `-bH`, `-o x`, `-O`, `-L`, `-h`, `-m`, `-n`, `-U`,
//!   `-G`, `-X`, `-A`, `-v`, `-qINTERVAL` are accepted and ignored.
//! - `-C DIR` / `-c DIR`: the configuration directory.
//!
//! LF or CRLF line ends both become CRLF in the queue file; a bare CR stays.
//! Bare names (no `@`) are qualified with `@$myorigin` (append_at_myorigin).
//! Failures exit with EX_TEMPFAIL (75), as Postfix's sendmail does, the
//! message prefixed with the poster: `sendmail: fatal: jerry(1000): ...`.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use ironpost_conf::{Config, params};

use crate::cleanup;
use crate::cli::getopt::{Parsed, getopt};
use crate::cli::{CmdResult, Fatal, load_config, program, warn};
use crate::ctl;
use crate::pickup::{ATTR_FULLNAME, ATTR_UID};
use crate::queue::{Envelope, Queue, QueueName, Recipient};

/// sysexits(3): the exit status of Postfix's sendmail for every failure.
pub const EX_TEMPFAIL: u8 = 75;

/// Postfix's sendmail(1) getopt string, with `c:` for the configuration
/// directory as every ironpost command takes it. `-q` is taken apart
/// before (it has an optional argument).
const SPEC: &str = "A:B:C:F:GIL:N:O:R:UV:X:b:c:e:f:h:imno:p:q:r:tvx";

/// Prints `sendmail: fatal: MESSAGE` and exits with EX_TEMPFAIL.
fn fail(msg: &str) -> CmdResult {
    let _ = writeln!(io::stderr(), "{}: fatal: {msg}", program());
    Ok(ExitCode::from(EX_TEMPFAIL))
}

/// Who is posting: the login name, user ID and full name.
struct Poster {
    login: String,
    uid: u32,
    gecos_name: Option<String>,
}

impl Poster {
    fn current() -> Result<Poster, String> {
        let uid = nix::unistd::getuid();
        match nix::unistd::User::from_uid(uid) {
            Ok(Some(u)) => Ok(Poster {
                gecos_name: gecos_full_name(&u.gecos.to_string_lossy(), &u.name),
                login: u.name,
                uid: uid.as_raw(),
            }),
            _ => Err(format!("no login name found for user ID {uid}")),
        }
    }

    /// `jerry(1000)`, as Postfix names the poster in its messages.
    fn tag(&self) -> String {
        format!("{}({})", self.login, self.uid)
    }
}

/// The full name in a GECOS field: up to the first comma, `&` standing for
/// the login name with its first letter capitalized.
fn gecos_full_name(gecos: &str, login: &str) -> Option<String> {
    let name = gecos.split(',').next().unwrap_or("").trim();
    if name.is_empty() {
        return None;
    }
    let mut cap = login.to_string();
    if let Some(first) = cap.get(..1) {
        cap = format!("{}{}", first.to_uppercase(), &cap[1..]);
    }
    Some(name.replace('&', &cap))
}

/// `sendmail [options] [recipient ...]`.
pub fn run_sendmail(args: &[String]) -> CmdResult {
    // -q has an optional argument: a bare -q (flush) becomes -q- so that
    // getopt does not take the next word as its argument.
    let mut fixed: Vec<String> = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let prev_wants_arg = i > 0 && {
            let p = &args[i - 1];
            p.len() == 2 && p.starts_with('-') && SPEC.contains(&format!("{}:", &p[1..]))
        };
        if a == "--" {
            fixed.extend(args[i..].iter().cloned());
            break;
        }
        fixed.push(if a == "-q" && !prev_wants_arg {
            "-q-".to_string()
        } else {
            a.clone()
        });
    }
    let p = match getopt(&fixed, SPEC) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(io::stderr(), "{}: {e}", program());
            return fail(&format!("usage: {} [options]", program()));
        }
    };
    let config_flag = p.value('c').or(p.value('C')).map(str::to_string);
    let config_args: Vec<String> = config_flag
        .iter()
        .flat_map(|d| ["-c".to_string(), d.clone()])
        .collect();

    // Modes other than posting.
    if let Some(q) = p.value('q') {
        return match q {
            "-" => crate::cli::queuetools::run_postqueue(
                &[config_args.clone(), vec!["-f".to_string()]].concat(),
            ),
            // -qINTERVAL: the daemon's queue_run_delay decides.
            _ if q.starts_with(|c: char| c.is_ascii_digit()) => Ok(ExitCode::SUCCESS),
            _ => fail(&format!("-q{q}: not supported in this version")),
        };
    }
    if p.has('I') {
        return crate::cli::postmap::run_newaliases(&config_args);
    }
    match p.value('b').unwrap_or("m") {
        "m" | "h" | "H" => {}
        "p" => return crate::cli::queuetools::run_mailq(&config_args),
        "i" => return crate::cli::postmap::run_newaliases(&config_args),
        "s" => {
            let dir = crate::cli::config_dir(config_flag.as_deref());
            return match crate::server::serve_stdio(dir.as_deref()) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => fail(&e.0),
            };
        }
        "d" | "l" => {
            return fail("-bd: not supported: start the mail system with \"ironpost serve\"");
        }
        "v" => return fail("-bv: not supported in this version"),
        other => return fail(&format!("unsupported: -b{other}")),
    }

    let cfg = load_config(config_flag.as_deref())?;
    let poster = match Poster::current() {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let settings = Settings::from_config(&cfg)?;
    let mut input = io::stdin().lock();
    post(&p, &settings, &poster, &mut input)
}

/// What posting needs from main.cf.
struct Settings {
    queue_directory: String,
    myorigin: String,
    append_at_myorigin: bool,
    message_size_limit: u64,
}

impl Settings {
    fn from_config(cfg: &Config) -> Result<Settings, Fatal> {
        Ok(Settings {
            queue_directory: cfg.get_str(params::QUEUE_DIRECTORY)?.trim().to_string(),
            myorigin: cfg.get_str(params::MYORIGIN)?.trim().to_lowercase(),
            append_at_myorigin: cfg.get_bool(params::APPEND_AT_MYORIGIN)?,
            message_size_limit: cfg.get_size(params::MESSAGE_SIZE_LIMIT)?,
        })
    }

    /// A bare name gets `@$myorigin`.
    fn qualify(&self, addr: &str) -> String {
        if addr.is_empty()
            || addr.contains('@')
            || !self.append_at_myorigin
            || self.myorigin.is_empty()
        {
            addr.to_string()
        } else {
            format!("{addr}@{}", self.myorigin)
        }
    }
}

fn post(p: &Parsed, s: &Settings, poster: &Poster, input: &mut dyn Read) -> CmdResult {
    let ignore_dots = p.has('i') || p.values('o').contains(&"i");
    let limit = (s.message_size_limit > 0).then_some(s.message_size_limit);
    let message = match read_message(input, ignore_dots, limit) {
        Ok(m) => m,
        Err(ReadError::TooBig) => return fail(&format!("{}: message file too big", poster.tag())),
        Err(ReadError::Io(e)) => {
            return fail(&format!("{}: error reading input: {e}", poster.tag()));
        }
    };

    let sender = match p.value('f').or(p.value('r')) {
        Some(f) => {
            let f = f.trim();
            let f = f
                .strip_prefix('<')
                .and_then(|f| f.strip_suffix('>'))
                .unwrap_or(f);
            s.qualify(f)
        }
        None => s.qualify(&poster.login),
    };

    let notify = match p.value('N').map(parse_notify) {
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            warn(&e);
            warn("bad -N option value -- ignored");
            None
        }
        None => None,
    };

    let mut wanted: Vec<String> = p.operands.clone();
    if p.has('t') {
        wanted.extend(extract_recipients(&message));
    }
    let mut recipients: Vec<Recipient> = Vec::new();
    for given in wanted {
        let given = given.trim();
        if given.is_empty() {
            continue;
        }
        let address = s.qualify(given);
        if recipients.iter().any(|r| r.address == address) {
            continue;
        }
        recipients.push(Recipient {
            original: given.to_string(),
            notify: notify.clone(),
            ..Recipient::new(&address)
        });
    }
    if recipients.is_empty() {
        let why = if p.has('t') {
            "No recipient addresses found in message header"
        } else {
            "Recipient addresses must be specified on the command line or via the -t option"
        };
        return fail(&format!("{}: {why}", poster.tag()));
    }

    let content = remove_bcc(&message);
    let mut env = Envelope::new(&sender, recipients);
    env.set_attr(ATTR_UID, &poster.uid.to_string());
    let full_name = p
        .value('F')
        .map(str::to_string)
        .or_else(|| std::env::var("NAME").ok().filter(|n| !n.trim().is_empty()))
        .or_else(|| poster.gecos_name.clone());
    if let Some(name) = full_name {
        env.set_attr(ATTR_FULLNAME, &name);
    }
    if let Some(envid) = p.value('V') {
        env.set_attr("envid", envid);
    }
    if let Some(ret) = p.value('R') {
        match ret.to_ascii_lowercase().as_str() {
            "full" => env.set_attr("ret", "FULL"),
            "hdrs" => env.set_attr("ret", "HDRS"),
            _ => warn("bad -R option value -- ignored"),
        }
    }
    if let Some(body) = p.value('B') {
        match body.to_ascii_uppercase().as_str() {
            b @ ("7BIT" | "8BITMIME") => env.set_attr("body", b),
            _ => warn("bad -B option value -- ignored"),
        }
    }

    let qdir = Path::new(&s.queue_directory);
    let queued =
        Queue::open(qdir).and_then(|q| q.enqueue_into(QueueName::Maildrop, &env, &content));
    if let Err(e) = queued {
        return fail(&format!(
            "{}: cannot write to {}: {e}",
            poster.tag(),
            qdir.join(QueueName::Maildrop.dir()).display()
        ));
    }
    // No daemon running is fine: the mail waits in maildrop/.
    let _ = ctl::request(qdir, "wake");
    Ok(ExitCode::SUCCESS)
}

/// `-N`: `never`, or a list of `success`, `failure`, `delay`, as RFC 3461's
/// NOTIFY (`SUCCESS,FAILURE`).
fn parse_notify(value: &str) -> Result<String, String> {
    let mut words: Vec<String> = Vec::new();
    for w in value.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        let up = w.to_ascii_uppercase();
        if !["NEVER", "SUCCESS", "FAILURE", "DELAY"].contains(&up.as_str()) {
            return Err(format!(
                "unknown DSN NOTIFY command value \"{w}\" in \"{value}\""
            ));
        }
        if !words.contains(&up) {
            words.push(up);
        }
    }
    if words.is_empty() || (words.len() > 1 && words.iter().any(|w| w == "NEVER")) {
        return Err(format!("bad DSN NOTIFY value \"{value}\""));
    }
    Ok(words.join(","))
}

#[derive(Debug)]
enum ReadError {
    TooBig,
    Io(io::Error),
}

/// Reads the message: every line end becomes CRLF (a bare CR is kept), a
/// missing final line end is added, and without `ignore_dots` a line with
/// only `.` ends the input. Fails when the result exceeds `limit`.
fn read_message(
    input: &mut dyn Read,
    ignore_dots: bool,
    limit: Option<u64>,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let too_big =
        |out: &Vec<u8>, line: &Vec<u8>| limit.is_some_and(|l| (out.len() + line.len()) as u64 > l);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        for &b in &buf[..n] {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !ignore_dots && line == b"." {
                return Ok(out);
            }
            out.extend_from_slice(&line);
            out.extend_from_slice(b"\r\n");
            line.clear();
            if too_big(&out, &line) {
                return Err(ReadError::TooBig);
            }
        }
        if too_big(&out, &line) {
            return Err(ReadError::TooBig);
        }
    }
    if !line.is_empty() && (ignore_dots || line != b".") {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
        if too_big(&out, &Vec::new()) {
            return Err(ReadError::TooBig);
        }
    }
    Ok(out)
}

/// The value of a header field, unfolded (line ends removed).
fn field_value(header: &[u8]) -> String {
    let colon = header.iter().position(|&c| c == b':').unwrap_or(0);
    let raw = String::from_utf8_lossy(&header[colon + 1..]);
    raw.replace("\r\n", "").replace('\n', "").trim().to_string()
}

/// `-t`: the addresses in To, Cc and Bcc; or in Resent-To, Resent-Cc and
/// Resent-Bcc only, when the message has any of those.
pub fn extract_recipients(message: &[u8]) -> Vec<String> {
    let parts = cleanup::split(message);
    let resent = parts.headers.iter().any(|h| {
        matches!(
            cleanup::field_name(h).as_str(),
            "resent-to" | "resent-cc" | "resent-bcc"
        )
    });
    let names: &[&str] = if resent {
        &["resent-to", "resent-cc", "resent-bcc"]
    } else {
        &["to", "cc", "bcc"]
    };
    parts
        .headers
        .iter()
        .filter(|h| names.contains(&cleanup::field_name(h).as_str()))
        .flat_map(|h| parse_address_list(&field_value(h)))
        .collect()
}

/// Removes Bcc and Resent-Bcc header fields.
pub fn remove_bcc(message: &[u8]) -> Vec<u8> {
    let parts = cleanup::split(message);
    let mut out = Vec::with_capacity(message.len());
    for h in &parts.headers {
        if !matches!(cleanup::field_name(h).as_str(), "bcc" | "resent-bcc") {
            out.extend_from_slice(h);
        }
    }
    if parts.separator {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(parts.body);
    out
}

/// The addr-specs of an RFC 5322 address-list: display names, comments,
/// angle brackets, source routes and groups (`undisclosed-recipients:;`)
/// taken away.
pub fn parse_address_list(value: &str) -> Vec<String> {
    // Pass 1: comments out (they nest; quoted strings and \-escapes protect).
    let mut text = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                text.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    text.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                text.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    text.push(' ');
                }
            }
            _ if depth > 0 => {}
            _ => text.push(c),
        }
    }
    // Pass 2: split at top-level `,` and `;`; a top-level `:` ends a group's
    // display name.
    let mut items: Vec<String> = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '<' if !quoted => {
                angle = true;
                cur.push(c);
            }
            '>' if !quoted => {
                angle = false;
                cur.push(c);
            }
            ':' if !quoted && !angle => cur.clear(),
            ',' | ';' if !quoted && !angle => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items.iter().filter_map(|item| addr_spec(item)).collect()
}

/// The address in one mailbox: what is between `<` and `>` (without a
/// source route), else the whole text; white space outside quotes removed.
fn addr_spec(item: &str) -> Option<String> {
    let mut inner: Option<String> = None;
    let mut quoted = false;
    let mut escaped = false;
    let mut start = None;
    for (i, c) in item.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => start = Some(i + 1),
            '>' if !quoted => {
                if let Some(s) = start.take() {
                    inner = Some(item[s..i].to_string());
                }
            }
            _ => {}
        }
    }
    let mut spec = inner.unwrap_or_else(|| item.to_string());
    if spec.trim_start().starts_with('@')
        && let Some(colon) = spec.find(':')
    {
        spec = spec[colon + 1..].to_string();
    }
    let mut out = String::with_capacity(spec.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in spec.chars() {
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            c if c.is_whitespace() && !quoted => {}
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], ignore_dots: bool) -> Vec<u8> {
        read_message(&mut &input[..], ignore_dots, None).unwrap()
    }

    #[test]
    fn line_ends_and_dots() {
        assert_eq!(read(b"a\nb\r\nc", true), b"a\r\nb\r\nc\r\n");
        assert_eq!(read(b"bare\rcr\n", true), b"bare\rcr\r\n");
        // Without -i a lone dot ends the message; ".." is kept as it is.
        assert_eq!(read(b"a\n..\n.\nafter\n", false), b"a\r\n..\r\n");
        assert_eq!(read(b"a\r\n.\r\nafter\r\n", false), b"a\r\n");
        assert_eq!(read(b"a\n.", false), b"a\r\n");
        // With -i it is an ordinary line.
        assert_eq!(read(b"a\n.\nafter\n", true), b"a\r\n.\r\nafter\r\n");
        assert_eq!(read(b"", true), b"");
        // Fed in pieces, the same.
        let input = b"x\r\n.y\r\n.\r\nz\r\n";
        for n in 1..input.len() {
            struct Chunks<'a>(&'a [u8], usize);
            impl Read for Chunks<'_> {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    let k = self.1.min(self.0.len()).min(buf.len());
                    buf[..k].copy_from_slice(&self.0[..k]);
                    self.0 = &self.0[k..];
                    Ok(k)
                }
            }
            let got = read_message(&mut Chunks(input, n), false, None).unwrap();
            assert_eq!(got, b"x\r\n.y\r\n", "chunks of {n}");
        }
    }

    #[test]
    fn size_limit() {
        let big = vec![b'a'; 300];
        assert!(matches!(
            read_message(&mut &big[..], true, Some(200)),
            Err(ReadError::TooBig)
        ));
        assert_eq!(
            read_message(&mut &b"abc\n"[..], true, Some(5)).unwrap(),
            b"abc\r\n"
        );
        assert!(read_message(&mut &b"abcd\n"[..], true, Some(5)).is_err());
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            parse_address_list(
                "\"Doe, J\" <j@x.test>, (comment) k@x.test, l@x.test (Ell (nested))"
            ),
            vec!["j@x.test", "k@x.test", "l@x.test"]
        );
        assert_eq!(
            parse_address_list("undisclosed-recipients:;"),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_address_list("Team: a@x.test, B <b@x.test>; c@x.test"),
            vec!["a@x.test", "b@x.test", "c@x.test"]
        );
        assert_eq!(
            parse_address_list("<@relay.test,@r2.test:u@x.test>, bare"),
            vec!["u@x.test", "bare"]
        );
        assert_eq!(
            parse_address_list("\"odd name\"@x.test, <>"),
            vec!["\"odd name\"@x.test"]
        );
        assert_eq!(parse_address_list("\"a:b;c\" <q@x.test>"), vec!["q@x.test"]);
    }

    #[test]
    fn t_extracts_from_folded_headers_and_removes_bcc() {
        let msg = b"To: a@x.test,\r\n  \"Group\": b@x.test, c@x.test;\r\nCc: undisclosed-recipients:;\r\nBcc: hidden@x.test\r\nSubject: s\r\n\r\nTo: not@x.test\r\n";
        assert_eq!(
            extract_recipients(msg),
            vec!["a@x.test", "b@x.test", "c@x.test", "hidden@x.test"]
        );
        assert_eq!(
            remove_bcc(msg),
            b"To: a@x.test,\r\n  \"Group\": b@x.test, c@x.test;\r\nCc: undisclosed-recipients:;\r\nSubject: s\r\n\r\nTo: not@x.test\r\n"
        );
        let folded_bcc = b"BCC: x@x.test,\r\n\ty@x.test\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(remove_bcc(folded_bcc), b"Subject: s\r\n\r\nbody\r\n");
        assert_eq!(extract_recipients(folded_bcc), vec!["x@x.test", "y@x.test"]);
    }

    #[test]
    fn resent_headers_win() {
        let msg = b"To: a@x.test\r\nResent-To: r@x.test\r\nResent-Bcc: rb@x.test\r\nBcc: h@x.test\r\n\r\nbody\r\n";
        assert_eq!(extract_recipients(msg), vec!["r@x.test", "rb@x.test"]);
        assert_eq!(
            remove_bcc(msg),
            b"To: a@x.test\r\nResent-To: r@x.test\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn notify_and_gecos() {
        assert_eq!(parse_notify("delay, failure").unwrap(), "DELAY,FAILURE");
        assert_eq!(parse_notify("never").unwrap(), "NEVER");
        assert!(parse_notify("never,success").is_err());
        assert!(parse_notify("bogus").is_err());
        assert_eq!(
            gecos_full_name("& Mouse,Room 1,555", "jerry").as_deref(),
            Some("Jerry Mouse")
        );
        assert_eq!(gecos_full_name(",,,", "x"), None);
    }

    #[test]
    fn qualify() {
        let s = Settings {
            queue_directory: String::new(),
            myorigin: "example.test".into(),
            append_at_myorigin: true,
            message_size_limit: 0,
        };
        assert_eq!(s.qualify("jerry"), "jerry@example.test");
        assert_eq!(s.qualify("tom@other.test"), "tom@other.test");
        assert_eq!(s.qualify(""), "");
        let s = Settings {
            append_at_myorigin: false,
            ..s
        };
        assert_eq!(s.qualify("jerry"), "jerry");
    }
}
