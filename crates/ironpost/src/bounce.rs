//! Delivery status notifications (RFC 3464), in the form Postfix's bounce
//! daemon writes them: a multipart/report with a human-readable part, a
//! message/delivery-status part, and the returned message (or only its
//! headers for RET=HDRS, as text/rfc822-headers).
//!
//! A notification goes to the envelope sender from the null sender `<>`;
//! callers never send one for a message whose sender is `<>`.

use chrono::{DateTime, FixedOffset};

use crate::cleanup::{rfc5322_date, split};

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Delivery failed for good.
    Failure,
    /// Delivery is delayed (delay_warning_time).
    Delay,
}

/// One recipient in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The final recipient.
    pub address: String,
    /// RFC 3461 ORCPT when the client gave one, else the address as given.
    pub original: String,
    /// RFC 3463 status (5.1.1, 4.4.1, ...).
    pub status: String,
    /// What happened, from our side or the remote server's.
    pub diagnostic: String,
    /// When another server refused: its name and its reply (Remote-MTA and
    /// `Diagnostic-Code: smtp; ...`).
    pub remote: Option<(String, String)>,
}

/// Everything a notification needs.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub kind: Kind,
    pub queue_id: &'a str,
    /// The original envelope sender, who receives the notification.
    pub sender: &'a str,
    pub envid: Option<&'a str>,
    /// RET=HDRS returns only the headers.
    pub headers_only: bool,
    pub arrival: DateTime<FixedOffset>,
    pub now: DateTime<FixedOffset>,
    pub myhostname: &'a str,
    /// The domain of MAILER-DAEMON (myorigin).
    pub origin: &'a str,
    /// The ID the notification will have, for its Received and Message-Id.
    pub new_id: &'a str,
    pub recipients: &'a [Failed],
    /// The original message (CRLF).
    pub message: &'a [u8],
}

/// Wraps text so that lines stay within 78 columns, continuation lines
/// indented by four spaces, as Postfix's bounce does.
fn wrap(text: &str, first_prefix: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first_prefix);
    let mut first_word = true;
    for word in text.split_whitespace() {
        if !first_word && line.len() + 1 + word.len() > 78 {
            out.push_str(&line);
            out.push_str("\r\n");
            line = format!("    {word}");
        } else {
            if !first_word {
                line.push(' ');
            }
            line.push_str(word);
        }
        first_word = false;
    }
    out.push_str(&line);
    out.push_str("\r\n");
    out
}

/// Builds the notification message (headers and body, CRLF) for the
/// sender.
pub fn build(r: &Report<'_>) -> Vec<u8> {
    build_to(r, r.sender)
}

/// Builds the notification for `to` (the sender, or the postmaster for a
/// double bounce).
pub fn build_to(r: &Report<'_>, to: &str) -> Vec<u8> {
    let boundary = format!("{}.{}/{}", r.queue_id, r.now.timestamp(), r.myhostname);
    let (subject, intro, action) = match r.kind {
        Kind::Failure => (
            "Undelivered Mail Returned to Sender",
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. It's attached below.\r\n\
             \r\n\
             For further assistance, please send mail to postmaster.\r\n\
             \r\n\
             If you do so, please include this problem report. You can\r\n\
             delete your own text from the attached returned message.\r\n",
            "failed",
        ),
        Kind::Delay => (
            "Delayed Mail (still being retried)",
            "####################################################################\r\n\
             # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n\
             ####################################################################\r\n\
             \r\n\
             Your message could not be delivered for more than a while.\r\n\
             It will be retried until it is too old.\r\n\
             \r\n\
             For further assistance, please send mail to postmaster.\r\n\
             \r\n\
             If you do so, please include this problem report. You can\r\n\
             delete your own text from the attached returned message.\r\n",
            "delayed",
        ),
    };
    let mut m = String::new();
    m.push_str(&format!(
        "Received: by {} (ironpost)\r\n\tid {}; {}\r\n",
        r.myhostname,
        r.new_id,
        rfc5322_date(&r.now)
    ));
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(&r.now)));
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{}>\r\n",
        r.origin
    ));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("To: {to}\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n"
    ));
    m.push_str("Content-Transfer-Encoding: 8bit\r\n");
    m.push_str(&format!(
        "Message-Id: <{}.{}@{}>\r\n",
        r.now.format("%Y%m%d%H%M%S"),
        r.new_id,
        r.myhostname
    ));
    m.push_str("\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Description: Notification\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    m.push_str(&format!(
        "This is the mail system at host {}.\r\n\r\n",
        r.myhostname
    ));
    m.push_str(intro);
    m.push_str("\r\n                   The mail system\r\n\r\n");
    for f in r.recipients {
        m.push_str(&wrap(&f.diagnostic, &format!("<{}>: ", f.address)));
    }
    m.push_str("\r\n");

    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Description: Delivery report\r\n");
    m.push_str("Content-Type: message/delivery-status\r\n\r\n");
    m.push_str(&format!("Reporting-MTA: dns; {}\r\n", r.myhostname));
    if let Some(envid) = r.envid {
        m.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    m.push_str(&format!("X-Postfix-Queue-ID: {}\r\n", r.queue_id));
    m.push_str(&format!("X-Postfix-Sender: rfc822; {}\r\n", r.sender));
    m.push_str(&format!("Arrival-Date: {}\r\n", rfc5322_date(&r.arrival)));
    for f in r.recipients {
        m.push_str(&format!("\r\nFinal-Recipient: rfc822; {}\r\n", f.address));
        if !f.original.is_empty() {
            let orig = if f.original.contains(';') {
                f.original.clone()
            } else {
                format!("rfc822;{}", f.original)
            };
            m.push_str(&format!("Original-Recipient: {orig}\r\n"));
        }
        m.push_str(&format!("Action: {action}\r\n"));
        m.push_str(&format!("Status: {}\r\n", f.status));
        match &f.remote {
            Some((mta, reply)) => {
                m.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
                m.push_str(&wrap(reply, "Diagnostic-Code: smtp; "));
            }
            None => m.push_str(&wrap(&f.diagnostic, "Diagnostic-Code: X-Postfix; ")),
        }
    }
    m.push_str("\r\n");

    let mut out = m.into_bytes();
    let returned = format!("--{boundary}\r\n");
    out.extend_from_slice(returned.as_bytes());
    if r.headers_only {
        out.extend_from_slice(
            b"Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        out.extend_from_slice(format!("Return-Path: <{}>\r\n", r.sender).as_bytes());
        for h in split(r.message).headers {
            out.extend_from_slice(h);
            if !h.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    } else {
        out.extend_from_slice(
            b"Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        out.extend_from_slice(format!("Return-Path: <{}>\r\n", r.sender).as_bytes());
        out.extend_from_slice(r.message);
        if !r.message.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn report_shape() {
        let t = FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 22, 19, 37, 3)
            .unwrap();
        let failed = [Failed {
            remote: None,
            address: "someone@nonexistent.invalid".into(),
            original: "someone@nonexistent.invalid".into(),
            status: "5.4.4".into(),
            diagnostic: "Host or domain name not found. Name service error for name=nonexistent.invalid type=A: Host not found".into(),
        }];
        let r = Report {
            kind: Kind::Failure,
            queue_id: "455C798C060",
            sender: "jerry@example.test",
            envid: Some("envid123"),
            headers_only: false,
            arrival: t,
            now: t,
            myhostname: "mail.example.test",
            origin: "example.test",
            new_id: "4C2BE98C063",
            recipients: &failed,
            message: b"Subject: bounce test\r\n\r\nhello\r\n",
        };
        let text = String::from_utf8(build(&r)).unwrap();
        // The parts Postfix 3.7 wrote for the same failure.
        for want in [
            "From: Mail Delivery System <MAILER-DAEMON@example.test>\r\n",
            "Subject: Undelivered Mail Returned to Sender\r\n",
            "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"455C798C060.1795376223/mail.example.test\"\r\n",
            "<someone@nonexistent.invalid>: Host or domain name not found. Name service\r\n    error for name=nonexistent.invalid type=A: Host not found\r\n",
            "Reporting-MTA: dns; mail.example.test\r\nOriginal-Envelope-Id: envid123\r\nX-Postfix-Queue-ID: 455C798C060\r\nX-Postfix-Sender: rfc822; jerry@example.test\r\nArrival-Date: Sun, 22 Nov 2026 19:37:03 +0000 (UTC)\r\n",
            "Final-Recipient: rfc822; someone@nonexistent.invalid\r\nOriginal-Recipient: rfc822;someone@nonexistent.invalid\r\nAction: failed\r\nStatus: 5.4.4\r\nDiagnostic-Code: X-Postfix; Host or domain name not found. Name service error\r\n    for name=nonexistent.invalid type=A: Host not found\r\n",
            "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nReturn-Path: <jerry@example.test>\r\nSubject: bounce test\r\n\r\nhello\r\n",
            "\r\n--455C798C060.1795376223/mail.example.test--\r\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn headers_only() {
        let t = FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .unwrap();
        let failed = [Failed {
            remote: None,
            address: "a@b".into(),
            original: String::new(),
            status: "5.1.1".into(),
            diagnostic: "unknown user: \"a\"".into(),
        }];
        let r = Report {
            kind: Kind::Failure,
            queue_id: "A1",
            sender: "s@x",
            envid: None,
            headers_only: true,
            arrival: t,
            now: t,
            myhostname: "h.x",
            origin: "x",
            new_id: "B2",
            recipients: &failed,
            message: b"Subject: secret\r\n\r\nthe body\r\n",
        };
        let text = String::from_utf8(build(&r)).unwrap();
        assert!(text.contains("Content-Type: text/rfc822-headers"));
        assert!(text.contains("Subject: secret\r\n"));
        assert!(!text.contains("the body"));
        assert!(!text.contains("Original-Recipient"));
    }
}
