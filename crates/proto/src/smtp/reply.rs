//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463,
//! RFC 2034), and the replies Postfix's smtpd sends, by name. The texts
//! were checked against Postfix 3.7's smtpd.

use std::fmt;

/// One reply: a code, an optional enhanced status code, and one or more
/// lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `2.0.0`, `5.1.1`; `None` for replies Postfix sends without one
    /// (greeting, HELO/EHLO, a few syntax errors).
    pub status: Option<String>,
    pub lines: Vec<String>,
    /// Close the connection after sending (421, 521).
    pub close: bool,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, status: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status.to_string()),
            lines: vec![text.into()],
            close: false,
        }
    }

    /// A one-line reply without an enhanced status code.
    pub fn plain(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: vec![text.into()],
            close: false,
        }
    }

    /// A multi-line reply without enhanced status codes (EHLO).
    pub fn multiline(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
            close: false,
        }
    }

    /// The same reply, closing the connection after it.
    pub fn and_close(mut self) -> Reply {
        self.close = true;
        self
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The first line as the log shows it: `550 5.1.1 <x@y>: ...`.
    pub fn text(&self) -> String {
        let first = self.lines.first().map(String::as_str).unwrap_or("");
        match &self.status {
            Some(s) => format!("{} {s} {first}", self.code),
            None => format!("{} {first}", self.code),
        }
    }

    /// The wire form: `250-line` for all but the last line, `250 line` for
    /// the last, each ended by CRLF; the status code on every line
    /// (RFC 2034 §4).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * self.lines.len().max(1));
        let n = self.lines.len().max(1);
        for i in 0..n {
            let line = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if let Some(s) = &self.status {
                out.extend_from_slice(s.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            // A reply line must not break the framing: no CR or LF inside.
            for b in line.bytes() {
                out.push(if b == b'\r' || b == b'\n' { b' ' } else { b });
            }
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

// The replies of a session, as Postfix's smtpd words them.

/// `220 banner` (RFC 5321 §4.3.1).
pub fn greeting(banner: &str) -> Reply {
    Reply::plain(220, banner)
}

/// `250 2.0.0 Ok`.
pub fn ok() -> Reply {
    Reply::new(250, "2.0.0", "Ok")
}

/// `250 2.1.0 Ok` after MAIL.
pub fn sender_ok() -> Reply {
    Reply::new(250, "2.1.0", "Ok")
}

/// `250 2.1.5 Ok` after RCPT.
pub fn recipient_ok() -> Reply {
    Reply::new(250, "2.1.5", "Ok")
}

/// `354 End data with <CR><LF>.<CR><LF>` (RFC 5321 §4.1.1.4).
pub fn start_data() -> Reply {
    Reply::plain(354, "End data with <CR><LF>.<CR><LF>")
}

/// `250 2.0.0 Ok: queued as ID`.
pub fn queued(id: &str) -> Reply {
    Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
}

/// `221 2.0.0 Bye` (RFC 5321 §4.1.1.10).
pub fn bye() -> Reply {
    Reply::new(221, "2.0.0", "Bye").and_close()
}

/// RFC 5321 §4.1.4: MAIL inside a transaction.
pub fn nested_mail() -> Reply {
    Reply::new(503, "5.5.1", "Error: nested MAIL command")
}

/// RCPT before MAIL.
pub fn need_mail() -> Reply {
    Reply::new(503, "5.5.1", "Error: need MAIL command")
}

/// DATA or BDAT before a recipient.
pub fn need_rcpt() -> Reply {
    Reply::new(503, "5.5.1", "Error: need RCPT command")
}

/// A command we do not know (RFC 5321 §4.2.4).
pub fn not_recognized() -> Reply {
    Reply::new(500, "5.5.2", "Error: command not recognized")
}

/// A command known but not offered here (STARTTLS without TLS).
pub fn not_implemented() -> Reply {
    Reply::new(502, "5.5.1", "Error: command not implemented")
}

/// AUTH when SASL is not enabled.
pub fn auth_not_enabled() -> Reply {
    Reply::new(503, "5.5.1", "Error: authentication not enabled")
}

pub fn syntax_helo() -> Reply {
    Reply::plain(501, "Syntax: HELO hostname")
}

pub fn syntax_ehlo() -> Reply {
    Reply::plain(501, "Syntax: EHLO hostname")
}

pub fn syntax_mail() -> Reply {
    Reply::new(501, "5.5.4", "Syntax: MAIL FROM:<address>")
}

pub fn syntax_rcpt() -> Reply {
    Reply::new(501, "5.5.4", "Syntax: RCPT TO:<address>")
}

pub fn syntax_rset() -> Reply {
    Reply::new(501, "5.5.4", "Syntax: RSET")
}

pub fn syntax_data() -> Reply {
    Reply::new(501, "5.5.4", "Syntax: DATA")
}

pub fn syntax_vrfy() -> Reply {
    Reply::new(501, "5.5.4", "Syntax: VRFY address [SMTPUTF8]")
}

pub fn syntax_etrn() -> Reply {
    Reply::plain(500, "Syntax: ETRN domain")
}

pub fn syntax_starttls() -> Reply {
    Reply::new(501, "5.5.4", "Syntax: STARTTLS")
}

/// A malformed BDAT cannot be skipped (its size is unknown): the
/// connection ends, as in Postfix.
pub fn syntax_bdat() -> Reply {
    Reply::new(521, "5.5.4", "Syntax: BDAT count [LAST]").and_close()
}

/// RFC 5321 §4.1.2 address syntax in MAIL.
pub fn bad_sender_syntax() -> Reply {
    Reply::new(501, "5.1.7", "Bad sender address syntax")
}

/// RFC 5321 §4.1.2 address syntax in RCPT.
pub fn bad_recipient_syntax() -> Reply {
    Reply::new(501, "5.1.3", "Bad recipient address syntax")
}

/// RFC 1870: SIZE=x with x not a number.
pub fn bad_size_syntax() -> Reply {
    Reply::new(501, "5.5.4", "Bad message size syntax")
}

/// RFC 1870 §6: declared size over the limit.
pub fn size_exceeds_limit() -> Reply {
    Reply::new(552, "5.3.4", "Message size exceeds fixed limit")
}

/// RFC 1870 §6: the message turned out larger than the limit.
pub fn message_too_big() -> Reply {
    Reply::new(552, "5.3.4", "Error: message file too big")
}

/// An ESMTP parameter we do not support (RFC 5321 §4.1.1.11: 555).
pub fn unsupported_option(option: &str) -> Reply {
    Reply::new(555, "5.5.4", format!("Unsupported option: {option}"))
}

/// RFC 3461 NOTIFY syntax.
pub fn bad_notify() -> Reply {
    Reply::new(501, "5.5.4", "Error: Bad NOTIFY parameter syntax")
}

/// RFC 3461 ORCPT syntax.
pub fn bad_orcpt() -> Reply {
    Reply::new(501, "5.5.4", "Error: Bad ORCPT parameter syntax")
}

/// RFC 3461 RET syntax.
pub fn bad_ret() -> Reply {
    Reply::new(501, "5.5.4", "Bad RET parameter syntax")
}

/// RFC 3461 ENVID syntax.
pub fn bad_envid() -> Reply {
    Reply::new(501, "5.5.4", "Bad ENVID parameter syntax")
}

/// RFC 5321 §4.5.3.1.8: too many recipients.
pub fn too_many_recipients() -> Reply {
    Reply::new(452, "4.5.3", "Error: too many recipients")
}

/// VRFY when disable_vrfy_command = yes.
pub fn vrfy_disabled() -> Reply {
    Reply::new(502, "5.5.1", "VRFY command is disabled")
}

/// RFC 5321 §3.8: the server gives up on a silent client.
pub fn timeout(host: &str) -> Reply {
    Reply::new(421, "4.4.2", format!("{host} Error: timeout exceeded")).and_close()
}

/// Too many errors from one client.
pub fn too_many_errors(host: &str) -> Reply {
    Reply::new(421, "4.7.0", format!("{host} Error: too many errors")).and_close()
}

/// The server is stopping or cannot serve now.
pub fn shutting_down(host: &str) -> Reply {
    Reply::new(
        421,
        "4.3.2",
        format!("{host} Service shutting down, closing transmission channel"),
    )
    .and_close()
}

/// Too many connections from one client.
pub fn too_many_connections(host: &str) -> Reply {
    Reply::new(421, "4.7.0", format!("{host} Error: too many connections")).and_close()
}

/// A bare LF in the message when such messages are refused.
pub fn bare_lf() -> Reply {
    Reply::new(550, "5.5.2", "Error: bare <LF> received")
}

/// Something on our side failed (a queue write): the client retries.
pub fn local_error() -> Reply {
    Reply::new(451, "4.3.0", "Error: queue file write error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(ok().encode(), b"250 2.0.0 Ok\r\n");
        assert_eq!(
            greeting("mail.example.test ESMTP ironpost").encode(),
            b"220 mail.example.test ESMTP ironpost\r\n"
        );
        let ehlo = Reply::multiline(
            250,
            vec![
                "mail.example.test".into(),
                "PIPELINING".into(),
                "CHUNKING".into(),
            ],
        );
        assert_eq!(
            ehlo.encode(),
            b"250-mail.example.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
        );
        let two = Reply {
            code: 214,
            status: Some("2.0.0".into()),
            lines: vec!["a".into(), "b".into()],
            close: false,
        };
        assert_eq!(two.encode(), b"214-2.0.0 a\r\n214 2.0.0 b\r\n");
        assert_eq!(
            Reply::plain(500, "x\r\nINJECTED").encode(),
            b"500 x  INJECTED\r\n"
        );
    }

    #[test]
    fn postfix_texts() {
        // As Postfix 3.7's smtpd sends them.
        for (r, want) in [
            (syntax_helo(), "501 Syntax: HELO hostname\r\n"),
            (nested_mail(), "503 5.5.1 Error: nested MAIL command\r\n"),
            (
                queued("35EC31BB80"),
                "250 2.0.0 Ok: queued as 35EC31BB80\r\n",
            ),
            (start_data(), "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (bye(), "221 2.0.0 Bye\r\n"),
            (syntax_mail(), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
            (
                bad_sender_syntax(),
                "501 5.1.7 Bad sender address syntax\r\n",
            ),
            (
                unsupported_option("FOO=bar"),
                "555 5.5.4 Unsupported option: FOO=bar\r\n",
            ),
            (
                size_exceeds_limit(),
                "552 5.3.4 Message size exceeds fixed limit\r\n",
            ),
            (syntax_etrn(), "500 Syntax: ETRN domain\r\n"),
            (syntax_bdat(), "521 5.5.4 Syntax: BDAT count [LAST]\r\n"),
        ] {
            assert_eq!(String::from_utf8(r.encode()).unwrap(), want);
        }
        assert!(bye().close && syntax_bdat().close && !ok().close);
    }
}
