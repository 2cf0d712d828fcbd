//! POP3 responses (RFC 1939 §3): status lines, AUTH continuations, and
//! multi-line responses with their dot-stuffing, including a stored
//! message as RETR and TOP send it. Also the texts Dovecot 2.3 answers
//! with, by name ([`text`]), and the response codes ([`code`]).
//!
//! A stored message may have LF or CRLF line ends, mixed, and may lack a
//! final line end. On the wire ([`dot_stuff`], [`top`]) every line ends
//! with CRLF (one CR before an LF belongs to the line end; any other CR is
//! content and sent as it is), a line starting with `.` gets one more,
//! a last line without a line end gets CRLF, and `.` CRLF ends the
//! response. [`wire_size`] is that form's size without the stuffing dots
//! and the final `.` CRLF: what STAT, LIST and RETR's `+OK N octets`
//! report (RFC 1939 §11: the size as transmitted with CRLF line ends).
//! Dovecot reports its "virtual size", the same number except for a
//! message without a final line end, whose added CRLF it does not count.
//!
//! Dovecot does not stuff a dot at the very start of a message (its loop
//! looks at the byte before, and there is none); we do, as RFC 1939 §3
//! asks.

/// `.` CRLF: the end of a multi-line response.
pub const TERMINATOR: &[u8] = b".\r\n";

/// Response codes (RFC 2449 §8), for [`err`].
pub mod code {
    /// RFC 3206 §5: the credentials were wrong (or the login refused for
    /// a reason tied to them).
    pub const AUTH: &str = "AUTH";
    /// RFC 3206 §4: a temporary system problem; try again later.
    pub const SYS_TEMP: &str = "SYS/TEMP";
    /// RFC 3206 §4: a permanent system problem.
    pub const SYS_PERM: &str = "SYS/PERM";
    /// RFC 2449 §8.1.2: the maildrop is in use by another session.
    pub const IN_USE: &str = "IN-USE";
    /// RFC 2449 §8.1.1: logged in too soon after the last login.
    pub const LOGIN_DELAY: &str = "LOGIN-DELAY";
    /// RFC 6856 §2: the message needs UTF8 mode, which is not enabled.
    pub const UTF8: &str = "UTF8";
}

/// The texts Dovecot 2.3 sends, with the code it sends them with (in
/// brackets) and the file of Dovecot's source they are in. `login` is
/// the pop3-login process (before login: `src/pop3-login/client.c`,
/// `client-authenticate.c`, `src/login-common/*.c`), `pop3` the mail
/// process after login (`src/pop3/pop3-commands.c`, `pop3-client.c`).
/// Texts with a number in them are functions.
pub mod text {
    /// login, `+OK` after the greeting's text: Dovecot's default
    /// `login_greeting`.
    pub const GREETING: &str = "Dovecot ready.";
    /// pop3, `+OK` once the mailbox is open after PASS, APOP or AUTH.
    pub const LOGGED_IN: &str = "Logged in.";
    /// login, `-ERR`: PASS before USER (the reply to USER itself is a
    /// bare `+OK`).
    pub const NO_USERNAME: &str = "No username given.";
    /// login, `-ERR [AUTH]`: wrong user or password (`AUTH_FAILED_MSG`).
    pub const AUTH_FAILED: &str = "Authentication failed.";
    /// login, `-ERR [SYS/TEMP]`: the password database could not be asked
    /// (`AUTH_TEMP_FAILED_MSG`).
    pub const AUTH_TEMP_FAILED: &str = "Temporary authentication failure.";
    /// login, `-ERR [AUTH]`: USER or PASS without TLS when plaintext
    /// logins need it (disable_plaintext_auth, `AUTH_PLAINTEXT_DISABLED_MSG`).
    pub const PLAINTEXT_DISALLOWED: &str =
        "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
    /// login, `-ERR [AUTH]`: AUTH with a plaintext mechanism (PLAIN,
    /// LOGIN) without TLS when plaintext logins need it.
    pub const PLAINTEXT_MECHANISM_DISABLED: &str = "Plaintext authentication disabled.";
    /// login, `-ERR [AUTH]`: any login before TLS when `ssl = required`.
    pub const SSL_REQUIRED: &str = "Authentication not allowed until SSL/TLS is enabled.";
    /// login, `-ERR [AUTH]`: AUTH with a mechanism not offered.
    pub const UNSUPPORTED_MECHANISM: &str = "Unsupported authentication mechanism.";
    /// login, `-ERR`: the client sent `*` to an AUTH challenge.
    pub const AUTH_ABORTED: &str = "Authentication aborted by client.";
    /// auth, `-ERR [AUTH]`: the initial response of AUTH is not base64
    /// (no final period in Dovecot's text).
    pub const INVALID_BASE64_INITIAL: &str = "Invalid base64 data in initial response";
    /// auth, `-ERR [AUTH]`: a response to a challenge is not base64.
    pub const INVALID_BASE64_CONTINUED: &str = "Invalid base64 data in continued response";
    /// login, `-ERR`: APOP when no APOP challenge was offered.
    pub const APOP_NOT_ENABLED: &str = "APOP not enabled.";
    /// login, `+OK`: STLS accepted; the handshake starts after this line.
    pub const BEGIN_TLS: &str = "Begin TLS negotiation now.";
    /// login, `-ERR`: STLS on a TLS connection.
    pub const TLS_ALREADY_ACTIVE: &str = "TLS is already active.";
    /// login, `-ERR`: STLS without TLS configured.
    pub const TLS_NOT_ENABLED: &str = "TLS support isn't enabled.";
    /// login, `-ERR [SYS/TEMP]`, then disconnect: the handshake could not
    /// start.
    pub const TLS_INIT_FAILED: &str = "TLS initialization failed.";
    /// login, `+OK`: QUIT before login (no final period).
    pub const LOGOUT_LOGIN: &str = "Logging out";
    /// login, `-ERR`: a command unknown (or not allowed) before login.
    pub const UNKNOWN_COMMAND_LOGIN: &str = "Unknown command.";
    /// login, `-ERR`, then disconnect: the third bad command in a row
    /// (`CLIENT_MAX_BAD_COMMANDS` is 3 in pop3-login).
    pub const TOO_MANY_BAD_COMMANDS_LOGIN: &str = "Too many invalid bad commands.";
    /// Bad commands in a row that end a session before login.
    pub const MAX_BAD_COMMANDS_LOGIN: u32 = 3;
    /// login, `-ERR`, then disconnect: a line over the input buffer.
    pub const INPUT_BUFFER_FULL: &str = "Input buffer full, aborting";
    /// login and pop3, `-ERR`, then disconnect: the idle timeout.
    pub const INACTIVITY: &str = "Disconnected for inactivity.";
    /// login, `-ERR`, then disconnect: the idle timeout during AUTH.
    pub const INACTIVITY_DURING_AUTH: &str = "Disconnected for inactivity during authentication.";
    /// pop3, `+OK`: DELE.
    pub const MARKED_DELETED: &str = "Marked to be deleted.";
    /// pop3, `-ERR`: a command naming a message marked deleted.
    pub const MESSAGE_DELETED: &str = "Message is deleted.";
    /// pop3, `+OK`: QUIT with nothing deleted.
    pub const LOGOUT: &str = "Logging out.";
    /// pop3, `+OK`: QUIT after DELE.
    pub const LOGOUT_DELETED: &str = "Logging out, messages deleted.";
    /// pop3, `-ERR`, then disconnect: the 21st bad command in a row
    /// (`CLIENT_MAX_BAD_COMMANDS` is 20 in pop3).
    pub const TOO_MANY_BAD_COMMANDS: &str = "Too many bad commands.";
    /// Bad commands in a row tolerated after login (the next one ends the
    /// session).
    pub const MAX_BAD_COMMANDS: u32 = 20;
    /// pop3, `-ERR`, then disconnect: a line over the input buffer.
    pub const INPUT_LINE_TOO_LONG: &str = "Input line too long.";
    /// pop3, `-ERR [IN-USE]`: pop3_lock_session and another session holds
    /// the lock.
    pub const MAILBOX_LOCKED: &str = "Mailbox is locked by another POP3 session.";
    /// pop3, `-ERR [SYS/TEMP]`: the mailbox could not be read at login.
    pub const SYNC_FAILED: &str = "Couldn't sync mailbox.";
    /// pop3, `-ERR [SYS/TEMP]`: the daemon is stopping.
    pub const SHUTTING_DOWN: &str = "Server shutting down.";

    /// pop3, `-ERR`: a message number past the last message (or 0).
    pub fn no_such_message(n: u32) -> String {
        format!("There's no message {n}.")
    }

    /// pop3, `-ERR`: RETR, TOP or UIDL of a message that vanished.
    pub fn message_expunged(n: u32) -> String {
        format!("Message {n} expunged.")
    }

    /// pop3, `-ERR`: a command unknown (or not allowed) after login.
    pub fn unknown_command(verb: &str) -> String {
        format!("Unknown command: {}", verb.to_ascii_uppercase())
    }

    /// pop3, `+OK`: STAT (`+OK count octets`).
    pub fn stat(count: u32, size: u64) -> String {
        format!("{count} {size}")
    }

    /// pop3, `+OK`: the first line of LIST without an argument.
    pub fn list_header(count: u32) -> String {
        format!("{count} messages:")
    }

    /// pop3: one line of LIST (also `+OK` + this for `LIST n`), and the
    /// same shape for UIDL (`n uidl`).
    pub fn scan_listing(n: u32, size: u64) -> String {
        format!("{n} {size}")
    }

    /// pop3, `+OK`: the first line of RETR (TOP's is a bare `+OK`).
    pub fn retr_header(size: u64) -> String {
        format!("{size} octets")
    }

    /// login, `-ERR [SYS/TEMP]`: mail_max_userip_connections reached.
    pub fn too_many_userip_connections(limit: u32) -> String {
        format!(
            "Maximum number of connections from user+IP exceeded \
             (mail_max_userip_connections={limit})"
        )
    }
}

/// Appends text for a status line: CR, LF and NUL (which would break the
/// framing or a client's C string) become spaces.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(text.iter().map(|&b| match b {
        b'\r' | b'\n' | 0 => b' ',
        b => b,
    }));
}

/// `+OK text` CRLF, or `+OK` CRLF when the text is empty.
pub fn ok(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 6);
    out.extend_from_slice(b"+OK");
    if !text.is_empty() {
        out.push(b' ');
        push_text(&mut out, text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `-ERR [code] text` CRLF; without a code `-ERR text` CRLF (RFC 2449 §8).
pub fn err(code: Option<&str>, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 24);
    out.extend_from_slice(b"-ERR");
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        push_text(&mut out, code.as_bytes());
        out.push(b']');
    }
    if !text.is_empty() {
        out.push(b' ');
        push_text(&mut out, text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An AUTH challenge: `+ base64` CRLF (RFC 5034 §4 `continue-req`; the
/// space is there even for an empty challenge, as Dovecot sends it).
pub fn continuation(base64: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(base64.len() + 4);
    out.extend_from_slice(b"+ ");
    push_text(&mut out, base64.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// The status line that opens a multi-line response: [`ok`].
pub fn multiline_start(text: &str) -> Vec<u8> {
    ok(text)
}

/// Appends one line of a multi-line response: dot-stuffed, CR and LF
/// inside made spaces, ended by CRLF.
pub fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    push_text(out, line);
    out.extend_from_slice(b"\r\n");
}

/// Appends `.` CRLF, the end of a multi-line response.
pub fn multiline_end(out: &mut Vec<u8>) {
    out.extend_from_slice(TERMINATOR);
}

/// A whole multi-line response: `+OK text`, the lines, `.`.
pub fn multiline<'a>(text: &str, lines: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = multiline_start(text);
    for line in lines {
        push_line(&mut out, line.as_bytes());
    }
    multiline_end(&mut out);
    out
}

/// The lines of a stored message, each without its line end (LF, and one
/// CR before it). A last line without a line end is a line when it is
/// not empty.
fn lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = message;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = if i > 0 && rest[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                let line = &rest[..end];
                rest = &rest[i + 1..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = &[];
                Some(line)
            }
        }
    })
}

/// Appends one message line in wire form.
fn push_message_line(out: &mut Vec<u8>, line: &[u8]) {
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

/// Room for the wire form of `len` bytes of message: CRs for LF-only
/// lines and the odd stuffed dot are guessed, not counted.
fn reserve_for(out: &mut Vec<u8>, len: usize) {
    out.reserve(len + len / 32 + 8);
}

/// A stored message as RETR sends it after `+OK N octets`: CRLF line
/// ends, dot-stuffed, ended by `.` CRLF.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    dot_stuff_into(&mut out, message);
    out
}

/// [`dot_stuff`], appending to `out` (one pass over the message, so a
/// session can put the status line and the message in one buffer).
pub fn dot_stuff_into(out: &mut Vec<u8>, message: &[u8]) {
    reserve_for(out, message.len());
    for line in lines(message) {
        push_message_line(out, line);
    }
    out.extend_from_slice(TERMINATOR);
}

/// The header and the first `n` body lines of a message as TOP sends them
/// (RFC 1939 §7): every header line, the empty line that ends the header,
/// then at most `n` lines, in the wire form of [`dot_stuff`]. A message
/// without an empty line is all header.
pub fn top(message: &[u8], n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    top_into(&mut out, message, n);
    out
}

/// [`top`], appending to `out`.
pub fn top_into(out: &mut Vec<u8>, message: &[u8], n: u32) {
    let mut in_body = false;
    let mut left = n;
    for line in lines(message) {
        if in_body {
            if left == 0 {
                break;
            }
            left -= 1;
        } else if line.is_empty() {
            in_body = true;
        }
        push_message_line(out, line);
    }
    out.extend_from_slice(TERMINATOR);
}

/// The size of a message with CRLF line ends (and a CRLF after a last
/// line without one), before dot-stuffing: the octets RETR sends between
/// its `+OK` line and the final `.` CRLF, less the stuffing dots.
pub fn wire_size(message: &[u8]) -> u64 {
    lines(message).map(|l| l.len() as u64 + 2).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::data::{DataDecoder, Progress};
    use proptest::prelude::*;

    /// The message with every line end CRLF, and a CRLF after a last line
    /// without one (what a client gets back after unstuffing).
    fn normalized(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0u8;
        for &b in message {
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            prev = b;
        }
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// What a client does: split at CRLF, stop at the `.` line, drop one
    /// leading dot of the others. Also returns the number of dots dropped.
    fn unstuff(wire: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut dots = 0;
        let mut rest = wire;
        loop {
            let i = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("every line ends with CRLF");
            let line = &rest[..i];
            rest = &rest[i + 2..];
            if line == b"." {
                assert!(rest.is_empty(), "data after the terminator");
                return (out, dots);
            }
            let line = match line.strip_prefix(b".") {
                Some(l) => {
                    dots += 1;
                    l
                }
                None => line,
            };
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn s(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn status_lines() {
        assert_eq!(ok(""), b"+OK\r\n");
        assert_eq!(ok(text::LOGGED_IN), b"+OK Logged in.\r\n");
        assert_eq!(
            ok(&text::retr_header(120)),
            b"+OK 120 octets\r\n".as_slice()
        );
        assert_eq!(err(None, ""), b"-ERR\r\n");
        assert_eq!(err(None, "x"), b"-ERR x\r\n");
        assert_eq!(
            err(Some(code::AUTH), text::AUTH_FAILED),
            b"-ERR [AUTH] Authentication failed.\r\n"
        );
        assert_eq!(
            err(Some(code::SYS_TEMP), text::SYNC_FAILED),
            b"-ERR [SYS/TEMP] Couldn't sync mailbox.\r\n"
        );
        assert_eq!(err(Some(code::IN_USE), ""), b"-ERR [IN-USE]\r\n");
        // No reply line can be split by what is put in it.
        assert_eq!(ok("a\r\nb\0"), b"+OK a  b \r\n");
        assert_eq!(err(None, "x\ny"), b"-ERR x y\r\n");
        assert_eq!(continuation(""), b"+ \r\n");
        assert_eq!(continuation("VXNlcm5hbWU6"), b"+ VXNlcm5hbWU6\r\n");
        assert_eq!(
            err(None, &text::unknown_command("foo")),
            b"-ERR Unknown command: FOO\r\n"
        );
        assert_eq!(text::no_such_message(9), "There's no message 9.");
        assert_eq!(text::message_expunged(3), "Message 3 expunged.");
        assert_eq!(ok(&text::stat(2, 320)), b"+OK 2 320\r\n");
        assert_eq!(
            text::too_many_userip_connections(10),
            "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"
        );
    }

    #[test]
    fn multiline_responses() {
        let list = multiline(&text::list_header(2), ["1 120", "2 200"]);
        assert_eq!(s(&list), "+OK 2 messages:\r\n1 120\r\n2 200\r\n.\r\n");
        let mut out = multiline_start("");
        push_line(&mut out, b".hidden");
        push_line(&mut out, b"a\r\nb");
        multiline_end(&mut out);
        assert_eq!(s(&out), "+OK\r\n..hidden\r\na  b\r\n.\r\n");
        assert_eq!(multiline("", []), b"+OK\r\n.\r\n");
    }

    #[test]
    fn dot_stuffing() {
        for (message, want) in [
            (&b""[..], ".\r\n"),
            (b"\n", "\r\n.\r\n"),
            (b"\r\n", "\r\n.\r\n"),
            (b".", "..\r\n.\r\n"),
            (b".\r\n", "..\r\n.\r\n"),
            (b"a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r\n..\r\n...x\r\n", "a\r\n...\r\n....x\r\n.\r\n"),
            (b"Subject: x\n\nbody\n", "Subject: x\r\n\r\nbody\r\n.\r\n"),
            (b"a\r\nb\nc\r\nd", "a\r\nb\r\nc\r\nd\r\n.\r\n"),
            (b"no newline", "no newline\r\n.\r\n"),
            (b"a\rb\r\n", "a\rb\r\n.\r\n"),
            (b"a\r", "a\r\r\n.\r\n"),
            (b"\r", "\r\r\n.\r\n"),
            (b"a\r\r\n", "a\r\r\n.\r\n"),
            (b"\n\n\n", "\r\n\r\n\r\n.\r\n"),
            (b"x\n.", "x\r\n..\r\n.\r\n"),
            (b" .not at start\n", " .not at start\r\n.\r\n"),
        ] {
            let wire = dot_stuff(message);
            assert_eq!(s(&wire), want, "{:?}", s(message));
            let (back, dots) = unstuff(&wire);
            assert_eq!(back, normalized(message), "{:?}", s(message));
            assert_eq!(
                wire_size(message),
                (wire.len() - dots - TERMINATOR.len()) as u64,
                "{:?}",
                s(message)
            );
            assert_eq!(wire_size(message), normalized(message).len() as u64);
        }
        // Appending keeps what is there: status line and message in one go.
        let mut out = ok(&text::retr_header(wire_size(b"a\n")));
        dot_stuff_into(&mut out, b"a\n");
        assert_eq!(s(&out), "+OK 3 octets\r\na\r\n.\r\n");
    }

    #[test]
    fn top_lines() {
        let m = b"From: a\nSubject: b\n\nline 1\n.line 2\nline 3\n";
        for (n, want) in [
            (0, "From: a\r\nSubject: b\r\n\r\n.\r\n"),
            (1, "From: a\r\nSubject: b\r\n\r\nline 1\r\n.\r\n"),
            (
                2,
                "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\n.\r\n",
            ),
            (
                3,
                "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n",
            ),
            (
                100,
                "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n",
            ),
        ] {
            assert_eq!(s(&top(m, n)), want, "TOP {n}");
        }
        assert_eq!(top(m, u32::MAX), dot_stuff(m));
        // No empty line: all of it is header, whatever n is.
        assert_eq!(s(&top(b"A: 1\r\nB: 2", 0)), "A: 1\r\nB: 2\r\n.\r\n");
        assert_eq!(s(&top(b"A: 1\r\nB: 2\r\n", 5)), "A: 1\r\nB: 2\r\n.\r\n");
        // The header/body boundary is the first empty line only; later
        // empty lines are body lines and count.
        assert_eq!(
            s(&top(b"A: 1\r\n\r\n\r\nx\r\n", 1)),
            "A: 1\r\n\r\n\r\n.\r\n"
        );
        // A last body line without a line end still counts, and gets CRLF.
        assert_eq!(s(&top(b"A: 1\n\nonly", 5)), "A: 1\r\n\r\nonly\r\n.\r\n");
        // An empty line first: no header at all.
        assert_eq!(s(&top(b"\nbody\nmore\n", 1)), "\r\nbody\r\n.\r\n");
        assert_eq!(s(&top(b"", 3)), ".\r\n");
        // A bare CR line is not the empty line.
        assert_eq!(s(&top(b"A\n\r\rB\n\nC\n", 0)), "A\r\n\r\rB\r\n\r\n.\r\n");
        let mut out = ok("");
        top_into(&mut out, m, 1);
        assert_eq!(
            s(&out),
            "+OK\r\nFrom: a\r\nSubject: b\r\n\r\nline 1\r\n.\r\n"
        );
    }

    /// Messages of `.`, CR, LF and a letter: where the tricky cases are.
    fn tricky() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a')],
            0..64,
        )
    }

    proptest! {
        #[test]
        fn stuffed_form(message in tricky()) {
            let wire = dot_stuff(&message);
            if message.is_empty() {
                prop_assert_eq!(&wire[..], b".\r\n");
            } else {
                prop_assert!(wire.ends_with(b"\r\n.\r\n"));
            }
            // No bare LF.
            for (i, &b) in wire.iter().enumerate() {
                if b == b'\n' {
                    prop_assert!(i > 0 && wire[i - 1] == b'\r');
                }
            }
            let (back, dots) = unstuff(&wire);
            prop_assert_eq!(&back, &normalized(&message));
            prop_assert_eq!(wire_size(&message), (wire.len() - dots - 3) as u64);
            prop_assert_eq!(wire_size(&message), back.len() as u64);
            // An SMTP DATA decoder reads the same message back, ending
            // exactly at our terminator.
            let mut d = DataDecoder::new(1 << 20);
            prop_assert_eq!(d.feed(&wire), Progress::Done(wire.len()));
            prop_assert!(!d.saw_bare_lf());
            prop_assert_eq!(d.into_message(), back);
        }

        #[test]
        fn top_is_a_prefix(message in tricky(), n in 0u32..8) {
            let wire = top(&message, n);
            let (back, _) = unstuff(&wire);
            let full = normalized(&message);
            prop_assert!(full.starts_with(&back));
            prop_assert!(back.is_empty() || back.ends_with(b"\r\n"));
            prop_assert_eq!(top(&message, u32::MAX), dot_stuff(&message));
        }
    }
}
