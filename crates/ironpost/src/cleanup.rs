//! cleanup(8): what is done to a message between its sender and the queue.
//!
//! - A `Received:` header goes on top, in Postfix's form.
//! - For local clients (Postfix's local_header_rewrite_clients) and for
//!   mail posted with sendmail, missing `Message-Id:`, `Date:` and `From:`
//!   headers are added at the end of the header section, as Postfix adds
//!   them (`Message-Id: <20261122192253.2B44F98C06F@mail.example.test>`).
//! - A header section larger than header_size_limit is cut there; the rest
//!   of the header lines are dropped, the body is kept.
//!
//! Messages are handled in their wire form: CRLF line ends, no dot
//! stuffing.

use chrono::{DateTime, FixedOffset};

/// What cleanup needs to know about the message's origin.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The queue ID the message will have.
    pub queue_id: &'a str,
    /// myhostname.
    pub myhostname: &'a str,
    /// mail_name.
    pub mail_name: &'a str,
    /// The envelope sender (empty for `<>`).
    pub sender: &'a str,
    /// The recipients as the client gave them (for `for <...>` when there is
    /// exactly one).
    pub recipients: &'a [String],
    pub received: ReceivedFrom<'a>,
    /// Add missing Message-Id, Date, From.
    pub add_missing_headers: bool,
    /// header_size_limit.
    pub header_size_limit: usize,
    /// The arrival time, in the local time zone
    /// (`chrono::Local::now().fixed_offset()`).
    pub now: DateTime<FixedOffset>,
}

/// Where the message came from, for the Received header.
#[derive(Debug, Clone)]
pub enum ReceivedFrom<'a> {
    /// An SMTP client.
    Smtp {
        /// The HELO/EHLO name, if any.
        helo: Option<&'a str>,
        /// The client's verified host name, or "unknown".
        client_name: &'a str,
        client_addr: &'a str,
        /// SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA.
        protocol: &'a str,
        /// `(using TLSv1.3 with cipher ...)` text, without parentheses.
        tls: Option<&'a str>,
        /// The SASL login name, for `(Authenticated sender: ...)`.
        auth: Option<&'a str>,
    },
    /// Posted on this machine by sendmail, with the poster's user ID.
    Local { uid: u32 },
}

/// The date in RFC 5322 form, as Postfix writes it:
/// `Sun, 22 Nov 2026 19:22:52 +0000 (UTC)`.
pub fn rfc5322_date(t: &DateTime<FixedOffset>) -> String {
    let base = t.format("%a, %e %b %Y %H:%M:%S %z").to_string();
    if t.offset().local_minus_utc() == 0 {
        format!("{base} (UTC)")
    } else {
        base
    }
}

/// The Received header, folded as Postfix's smtpd and pickup fold it:
/// `for <rcpt>; date` on the last line when there is one recipient, else
/// `id ID;` and the date on a line of its own.
pub fn received_header(o: &Origin<'_>) -> String {
    let date = rfc5322_date(&o.now);
    let (host, name, id) = (o.myhostname, o.mail_name, o.queue_id);
    let mut h = match &o.received {
        ReceivedFrom::Smtp {
            helo,
            client_name,
            client_addr,
            protocol,
            tls,
            auth,
        } => {
            let mut h = format!(
                "Received: from {} ({client_name} [{client_addr}])\r\n",
                helo.unwrap_or(client_name)
            );
            if let Some(tls) = tls {
                h.push_str(&format!("\t(using {tls})\r\n"));
            }
            if let Some(user) = auth {
                h.push_str(&format!("\t(Authenticated sender: {user})\r\n"));
            }
            h.push_str(&format!("\tby {host} ({name}) with {protocol} id {id}"));
            h
        }
        ReceivedFrom::Local { uid } => {
            format!("Received: by {host} ({name}, from userid {uid})\r\n\tid {id}")
        }
    };
    match (&o.received, o.recipients) {
        // Postfix's pickup path never names the recipient.
        (ReceivedFrom::Local { .. }, _) => h.push_str(&format!("; {date}\r\n")),
        (_, [one]) => h.push_str(&format!("\r\n\tfor <{one}>; {date}\r\n")),
        _ => h.push_str(&format!(";\r\n\t{date}\r\n")),
    }
    h
}

/// A header section and a body, split at the first empty line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<'a> {
    /// Header lines, each with its CRLF (folded lines joined with their
    /// continuations).
    pub headers: Vec<&'a [u8]>,
    /// Everything after the empty line (or the whole message when it has no
    /// header section).
    pub body: &'a [u8],
    /// Whether an empty line separated them.
    pub separator: bool,
}

/// Whether `line` starts a header field: a name of printable ASCII without
/// `:` or spaces, then `:` (RFC 5322 §2.2).
fn is_field_start(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|&&c| c > b' ' && c < 0x7f && c != b':')
        .count();
    name_len > 0 && line.get(name_len) == Some(&b':')
}

/// Splits a message into header fields and body. A first line that is not
/// a header field starts the body (there are no headers).
pub fn split(message: &[u8]) -> Split<'_> {
    let mut headers: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let rest = &message[pos..];
        let line_len = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| p + 2)
            .unwrap_or(rest.len());
        let line = &rest[..line_len];
        if line == b"\r\n" {
            return Split {
                headers,
                body: &message[pos + 2..],
                separator: true,
            };
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if continuation && !headers.is_empty() {
            let start = message.len() - rest.len() - headers.last().map_or(0, |h| h.len());
            let joined = &message[start..pos + line_len];
            *headers.last_mut().expect("checked non-empty") = joined;
        } else if is_field_start(line) {
            headers.push(line);
        } else {
            return Split {
                headers,
                body: &message[pos..],
                separator: false,
            };
        }
        pos += line_len;
    }
    Split {
        headers,
        body: &message[message.len()..],
        separator: false,
    }
}

/// The name of a header field, lower-cased.
pub fn field_name(header: &[u8]) -> String {
    let end = header.iter().position(|&c| c == b':').unwrap_or(0);
    String::from_utf8_lossy(&header[..end]).to_ascii_lowercase()
}

/// Whether a header with this (lower-case) name is present.
pub fn has_header(headers: &[&[u8]], name: &str) -> bool {
    headers.iter().any(|h| field_name(h) == name)
}

/// Counts Received headers (for the hop count limit).
pub fn hop_count(message: &[u8]) -> usize {
    split(message)
        .headers
        .iter()
        .filter(|h| field_name(h) == "received")
        .count()
}

/// The Message-ID of a message, if it has one (for the log).
pub fn message_id(message: &[u8]) -> Option<String> {
    split(message)
        .headers
        .iter()
        .find(|h| field_name(h) == "message-id")
        .map(|h| {
            let v = &h[h.iter().position(|&c| c == b':').unwrap_or(0) + 1..];
            String::from_utf8_lossy(v)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// Applies cleanup to a message in wire form and returns what is queued.
pub fn process(message: &[u8], o: &Origin<'_>) -> Vec<u8> {
    let parts = split(message);
    let mut out = Vec::with_capacity(message.len() + 512);
    out.extend_from_slice(received_header(o).as_bytes());
    let mut header_bytes = 0usize;
    let mut kept: Vec<&[u8]> = Vec::with_capacity(parts.headers.len());
    for h in &parts.headers {
        header_bytes += h.len();
        if header_bytes > o.header_size_limit {
            break;
        }
        kept.push(h);
    }
    for h in &kept {
        out.extend_from_slice(h);
        if !h.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if o.add_missing_headers {
        if !has_header(&kept, "message-id") {
            out.extend_from_slice(
                format!(
                    "Message-Id: <{}.{}@{}>\r\n",
                    o.now.format("%Y%m%d%H%M%S"),
                    o.queue_id,
                    o.myhostname
                )
                .as_bytes(),
            );
        }
        if !has_header(&kept, "date") {
            out.extend_from_slice(format!("Date: {}\r\n", rfc5322_date(&o.now)).as_bytes());
        }
        if !has_header(&kept, "from") {
            let from = if o.sender.is_empty() {
                format!("MAILER-DAEMON@{}", o.myhostname)
            } else {
                o.sender.to_string()
            };
            out.extend_from_slice(format!("From: {from}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(parts.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn origin<'a>(rcpts: &'a [String]) -> Origin<'a> {
        Origin {
            queue_id: "2B44F98C06F",
            myhostname: "mail.example.test",
            mail_name: "Postfix",
            sender: "root@example.test",
            recipients: rcpts,
            received: ReceivedFrom::Smtp {
                helo: Some("localhost"),
                client_name: "localhost",
                client_addr: "127.0.0.1",
                protocol: "ESMTP",
                tls: None,
                auth: None,
            },
            add_missing_headers: true,
            header_size_limit: 102400,
            now: FixedOffset::east_opt(0)
                .unwrap()
                .with_ymd_and_hms(2026, 11, 22, 19, 22, 52)
                .unwrap(),
        }
    }

    #[test]
    fn as_postfix_writes_the_tutorial_message() {
        // What Postfix 3.7 queued for the telnet session (its
        // timestamps put back to one second), with mail_name = Postfix so
        // the comparison is exact.
        let rcpts = vec!["jerry".to_string()];
        let got = process(
            b"Subject: How are you these days?\r\n\r\nAre you well?\r\n",
            &origin(&rcpts),
        );
        let want = "Received: from localhost (localhost [127.0.0.1])\r\n\
                    \tby mail.example.test (Postfix) with ESMTP id 2B44F98C06F\r\n\
                    \tfor <jerry>; Sun, 22 Nov 2026 19:22:52 +0000 (UTC)\r\n\
                    Subject: How are you these days?\r\n\
                    Message-Id: <20261122192252.2B44F98C06F@mail.example.test>\r\n\
                    Date: Sun, 22 Nov 2026 19:22:52 +0000 (UTC)\r\n\
                    From: root@example.test\r\n\
                    \r\n\
                    Are you well?\r\n";
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }

    #[test]
    fn split_forms() {
        let s = split(b"A: 1\r\nB: 2\r\n  more\r\n\r\nbody\r\n");
        assert_eq!(
            s.headers,
            vec![&b"A: 1\r\n"[..], &b"B: 2\r\n  more\r\n"[..]]
        );
        assert_eq!(s.body, b"body\r\n");
        assert!(s.separator);
        let s = split(b"no header here\r\nA: 1\r\n");
        assert!(s.headers.is_empty());
        assert_eq!(s.body, b"no header here\r\nA: 1\r\n");
        let s = split(b"A: 1\r\nnot a header\r\n");
        assert_eq!(s.headers.len(), 1);
        assert_eq!(s.body, b"not a header\r\n");
        let s = split(b"");
        assert!(s.headers.is_empty() && s.body.is_empty());
        let s = split(b"A: no final newline");
        assert_eq!(s.headers, vec![&b"A: no final newline"[..]]);
    }

    #[test]
    fn existing_headers_are_kept_and_several_recipients_have_no_for() {
        let rcpts = vec!["a@x".to_string(), "b@x".to_string()];
        let msg =
            b"From: a@b\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n";
        let got = String::from_utf8(process(msg, &origin(&rcpts))).unwrap();
        assert!(!got.contains("for <"), "{got}");
        assert_eq!(got.matches("Date:").count(), 1);
        assert_eq!(got.matches("From:").count(), 1);
        assert!(got.ends_with("Message-ID: <x@y>\r\n\r\nhi\r\n"), "{got}");
        assert_eq!(
            message_id(&process(msg, &origin(&rcpts))).as_deref(),
            Some("<x@y>")
        );
    }

    #[test]
    fn header_size_limit_cuts_headers_not_body() {
        let rcpts = vec!["a@x".to_string()];
        let mut o = origin(&rcpts);
        o.header_size_limit = 30;
        o.add_missing_headers = false;
        let got = process(
            b"Subject: aaaaaaaaaa\r\nX-Long: bbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\nbody\r\n",
            &o,
        );
        let text = String::from_utf8(got).unwrap();
        assert!(
            text.contains("Subject: aaaaaaaaaa\r\n\r\nbody\r\n"),
            "{text}"
        );
        assert!(!text.contains("X-Long"));
    }

    #[test]
    fn dates_in_other_zones() {
        let t = FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .unwrap();
        assert_eq!(rfc5322_date(&t), "Fri,  2 Jan 2026 03:04:05 +0100");
    }

    #[test]
    fn local_submission_received_line() {
        let rcpts = vec!["a@x".to_string()];
        let mut o = origin(&rcpts);
        o.received = ReceivedFrom::Local { uid: 1000 };
        let h = received_header(&o);
        assert_eq!(
            h,
            "Received: by mail.example.test (Postfix, from userid 1000)\r\n\tid 2B44F98C06F; Sun, 22 Nov 2026 19:22:52 +0000 (UTC)\r\n"
        );
    }
}
