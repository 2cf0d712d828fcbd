//! POP3 (RFC 1939) for a server, without I/O: command lines, commands,
//! responses, the wire form of messages, and the CAPA list (RFC 2449),
//! with STLS (RFC 2595), AUTH (RFC 5034) and UTF8 (RFC 6856). The texts
//! and the leniency are Dovecot 2.3's, so that clients and administrators
//! used to Dovecot see what they know.
//!
//! ## Layout
//! - [`line`](mod@line): cutting the input into lines (`LineBuffer`; CRLF or bare
//!   LF, length limit, over-long lines reported once); also for the
//!   client's SASL responses.
//! - [`command`]: `parse` a line into a [`Command`] or a [`CommandError`]
//!   worded as Dovecot words it.
//! - [`response`]: `+OK`/`-ERR` lines, AUTH continuations, multi-line
//!   responses, a stored message as RETR and TOP send it (`dot_stuff`,
//!   `top`) and its size (`wire_size`); Dovecot's texts by name
//!   (`response::text`) and the response codes (`response::code`).
//! - [`capabilities`] (here): the CAPA response.
//!
//! A session reads with [`LineBuffer::next_line`]`(`[`COMMAND_LINE_LIMIT`]`)`,
//! parses with [`parse`], checks the command against its state and
//! answers with [`response`]. What Dovecot does that the session repeats:
//! before login only CAPA, USER, PASS, AUTH, APOP, STLS and QUIT are known
//! (anything else: `-ERR Unknown command.`, and the third bad command in
//! a row ends the session); after login USER, PASS, AUTH, APOP and STLS
//! are unknown commands (`-ERR Unknown command: USER`, and the 21st bad
//! command in a row ends it).

pub mod command;
pub mod line;
pub mod response;

pub use command::{Command, CommandError, parse};
pub use line::{COMMAND_LINE_LIMIT, LineBuffer, SASL_LINE_LIMIT, TooLong};
pub use response::{dot_stuff, dot_stuff_into, top, top_into, wire_size};

/// RFC 2449 §6.7 EXPIRE: how long the server keeps retrieved messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expire {
    /// `EXPIRE NEVER`: kept until deleted.
    Never,
    /// `EXPIRE n`: deleted n days after retrieval (0: at the end of the
    /// session that retrieved them).
    Days(u32),
}

/// What [`capabilities`] lists. `Default` is Dovecot's list after login
/// (nothing optional).
///
/// Dovecot's choices, which the session can repeat: before login, `stls`
/// when TLS is configured and the connection is not yet under TLS; `user`
/// unless plaintext logins need TLS (disable_plaintext_auth) and the
/// connection is not secured (TLS, or from the local host or
/// login_trusted_networks); `sasl` the configured mechanisms less the
/// plaintext ones (PLAIN, LOGIN) in that same case; after login, none of
/// the three (Dovecot's pop3 process lists the fixed part only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapaOptions<'a> {
    /// `STLS` (RFC 2595 §4).
    pub stls: bool,
    /// `USER` (RFC 2449 §6.2): USER and PASS may be used now.
    pub user: bool,
    /// `SASL mech ...` (RFC 2449 §6.3, RFC 5034 §3), in this order; no
    /// line when empty (Dovecot then sends a bare `SASL`, which
    /// announces AUTH with no mechanism to use).
    pub sasl: &'a [&'a str],
    /// `UTF8` (RFC 6856 §2; Dovecot 2.3 does not offer it).
    pub utf8: bool,
    /// `UTF8 USER`: user names and passwords may be UTF-8 (with `utf8`).
    pub utf8_user: bool,
    /// `LANG` (RFC 6856 §3).
    pub lang: bool,
    /// `EXPIRE` (RFC 2449 §6.7; Dovecot does not send it).
    pub expire: Option<Expire>,
    /// `LOGIN-DELAY n` in seconds (RFC 2449 §6.5; Dovecot does not send
    /// it).
    pub login_delay: Option<u32>,
    /// `IMPLEMENTATION text` (RFC 2449 §6.9), last; RFC 2449 suggests it
    /// after login only.
    pub implementation: Option<&'a str>,
}

/// The fixed part of Dovecot's list (`POP3_CAPABILITY_REPLY` in
/// `src/pop3/pop3-capability.h`), in its order.
const FIXED: [&str; 6] = [
    "CAPA",
    "TOP",
    "UIDL",
    "RESP-CODES",
    "PIPELINING",
    "AUTH-RESP-CODE",
];

/// The whole CAPA response (RFC 2449 §5): `+OK`, one capability a line,
/// `.`. The order is Dovecot 2.3's (`cmd_capa` in
/// `src/pop3-login/client-authenticate.c`): the fixed part, then `STLS`,
/// `USER`, `SASL ...`; the capabilities Dovecot does not send come after
/// the fixed part (EXPIRE, LOGIN-DELAY, UTF8, LANG) and IMPLEMENTATION
/// last. For example, before TLS with PLAIN and LOGIN allowed:
///
/// ```text
/// +OK
/// CAPA
/// TOP
/// UIDL
/// RESP-CODES
/// PIPELINING
/// AUTH-RESP-CODE
/// STLS
/// USER
/// SASL PLAIN LOGIN
/// .
/// ```
pub fn capabilities(opts: &CapaOptions<'_>) -> Vec<u8> {
    let mut lines: Vec<String> = FIXED.iter().map(|c| c.to_string()).collect();
    match opts.expire {
        Some(Expire::Never) => lines.push("EXPIRE NEVER".into()),
        Some(Expire::Days(d)) => lines.push(format!("EXPIRE {d}")),
        None => {}
    }
    if let Some(secs) = opts.login_delay {
        lines.push(format!("LOGIN-DELAY {secs}"));
    }
    if opts.utf8 {
        lines.push(if opts.utf8_user { "UTF8 USER" } else { "UTF8" }.into());
    }
    if opts.lang {
        lines.push("LANG".into());
    }
    if opts.stls {
        lines.push("STLS".into());
    }
    if opts.user {
        lines.push("USER".into());
    }
    if !opts.sasl.is_empty() {
        lines.push(format!("SASL {}", opts.sasl.join(" ")));
    }
    if let Some(text) = opts.implementation.filter(|t| !t.is_empty()) {
        lines.push(format!("IMPLEMENTATION {text}"));
    }
    response::multiline("", lines.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipelined session read through the line buffer and the parser,
    /// fed in chunks of every size, gives the same commands and errors.
    #[test]
    fn pipelined_session_in_chunks() {
        let input: &[u8] = b"CAPA\r\nuser jerry\r\nPASS my secret \r\nSTAT\nLIST\r\n\
            RETR 1\r\nTOP 1 0\r\nretr x\r\nUIDL 2\r\nDELE 1\r\nFOO\r\nQUIT\r\n";
        let want: Vec<Result<Command, CommandError>> = vec![
            Ok(Command::Capa),
            Ok(Command::User("jerry".into())),
            Ok(Command::Pass("my secret ".into())),
            Ok(Command::Stat),
            Ok(Command::List(None)),
            Ok(Command::Retr(1)),
            Ok(Command::Top { msg: 1, lines: 0 }),
            Err(CommandError::InvalidNumber("x".into())),
            Ok(Command::Uidl(Some(2))),
            Ok(Command::Dele(1)),
            Err(CommandError::Unknown("FOO".into())),
            Ok(Command::Quit),
        ];
        for size in 1..=input.len() {
            let mut b = LineBuffer::new();
            let mut got = Vec::new();
            for chunk in input.chunks(size) {
                b.extend(chunk);
                while let Some(line) = b.next_line(COMMAND_LINE_LIMIT) {
                    got.push(parse(&line.unwrap()));
                }
            }
            assert_eq!(got, want, "chunks of {size}");
            assert!(!b.has_pending());
        }
    }

    fn capa(opts: CapaOptions<'_>) -> String {
        String::from_utf8(capabilities(&opts)).unwrap()
    }

    #[test]
    fn dovecot_lists() {
        let fixed = "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n";
        // After login.
        assert_eq!(capa(CapaOptions::default()), format!("{fixed}.\r\n"));
        // Before login on port 110 with TLS offered, plaintext allowed.
        assert_eq!(
            capa(CapaOptions {
                stls: true,
                user: true,
                sasl: &["PLAIN", "LOGIN"],
                ..CapaOptions::default()
            }),
            format!("{fixed}STLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n")
        );
        // Before TLS with disable_plaintext_auth: no USER, no plaintext
        // mechanisms.
        assert_eq!(
            capa(CapaOptions {
                stls: true,
                sasl: &["SCRAM-SHA-256"],
                ..CapaOptions::default()
            }),
            format!("{fixed}STLS\r\nSASL SCRAM-SHA-256\r\n.\r\n")
        );
        assert_eq!(
            capa(CapaOptions {
                stls: true,
                ..CapaOptions::default()
            }),
            format!("{fixed}STLS\r\n.\r\n")
        );
        // After STLS.
        assert_eq!(
            capa(CapaOptions {
                user: true,
                sasl: &["PLAIN", "LOGIN", "SCRAM-SHA-256-PLUS"],
                ..CapaOptions::default()
            }),
            format!("{fixed}USER\r\nSASL PLAIN LOGIN SCRAM-SHA-256-PLUS\r\n.\r\n")
        );
    }

    #[test]
    fn optional_capabilities() {
        let got = capa(CapaOptions {
            stls: true,
            user: true,
            sasl: &["PLAIN"],
            utf8: true,
            utf8_user: true,
            lang: true,
            expire: Some(Expire::Never),
            login_delay: Some(900),
            implementation: Some("ironpost"),
        });
        assert_eq!(
            got,
            "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n\
             EXPIRE NEVER\r\nLOGIN-DELAY 900\r\nUTF8 USER\r\nLANG\r\nSTLS\r\nUSER\r\n\
             SASL PLAIN\r\nIMPLEMENTATION ironpost\r\n.\r\n"
        );
        let got = capa(CapaOptions {
            utf8: true,
            expire: Some(Expire::Days(0)),
            implementation: Some(""),
            ..CapaOptions::default()
        });
        assert!(
            got.ends_with("AUTH-RESP-CODE\r\nEXPIRE 0\r\nUTF8\r\n.\r\n"),
            "{got}"
        );
        // An implementation text cannot break the list.
        let got = capa(CapaOptions {
            implementation: Some("x\r\n.\r\nSTLS"),
            ..CapaOptions::default()
        });
        assert!(got.ends_with("IMPLEMENTATION x  .  STLS\r\n.\r\n"), "{got}");
    }
}
