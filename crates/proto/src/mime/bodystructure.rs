//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2) as Dovecot
//! 2.3 writes them.
//!
//! A single part is `(type subtype params id description encoding size`,
//! then for text/* the line count, for message/rfc822 the embedded
//! message's envelope, body structure and line count, then with
//! BODYSTRUCTURE `md5 disposition language location)`. A multipart is its
//! parts one after the other (no space between), then the subtype, then
//! with BODYSTRUCTURE `params disposition language location)`. `NIL`
//! stands for what is absent; parameters are a list or `NIL`; the
//! language is always a list.
//!
//! Case: everything is written as the message has it (`"TEXT" "PLAIN"
//! ("CHARSET" "US-ASCII")` stays so, as in RFC 3501's examples and in
//! Dovecot), except:
//! - message/rfc822 parts are always `"message" "rfc822"` (and
//!   message/global ones, when parsed, `"message" "global"`);
//! - the defaults are lower case: `"text" "plain" ("charset" "us-ascii")`
//!   without Content-Type, `"7bit"` without Content-Transfer-Encoding,
//!   `("charset" "us-ascii")` added after the parameters of a text part
//!   that has no charset;
//! - a message that is one text/plain part with only `charset=us-ascii`,
//!   no other MIME field than a 7bit encoding, is written with the
//!   defaults (`"text" "plain" ("charset" "us-ascii") NIL NIL "7bit"`),
//!   whatever the case of its fields: Dovecot's cache keeps only a flag
//!   for such messages and rebuilds the structure from it, so that is
//!   what it sends on every FETCH after the first one (the first one, from
//!   a fresh parse, keeps the case as written). We send the lasting form.
//!
//! Other Dovecot forms kept: a multipart without parts has one empty
//! `text/plain` part; a multipart or message past the parser's limits is
//! `"application" "octet-stream"` with its parameters; an invalid
//! Content-Type is `"" ""` with no parameters and no line count.

use super::envelope::write_envelope;
use super::fields::Param;
use super::parse::{Kind, Message, Part};
use super::quote::nstring;

/// BODY (`extended` false) or BODYSTRUCTURE (`extended` true) of a
/// message, as it goes on the wire.
pub fn body(message: &Message<'_>, extended: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, message.raw(), message.root(), extended, true);
    out
}

/// BODY or BODYSTRUCTURE of one part (its section as the root).
pub fn part_body(message: &Message<'_>, part: &Part, extended: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, message.raw(), part, extended, false);
    out
}

fn params(out: &mut Vec<u8>, list: &[Param]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, p) in list.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        nstring(out, Some(&p.name));
        out.push(b' ');
        nstring(out, Some(&p.value));
    }
    out.push(b')');
}

fn disposition(out: &mut Vec<u8>, part: &Part) {
    match &part.mime.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some((kind, list)) => {
            out.push(b'(');
            nstring(out, Some(kind));
            out.push(b' ');
            params(out, list);
            out.push(b')');
        }
    }
}

fn language(out: &mut Vec<u8>, part: &Part) {
    match &part.mime.language {
        None => out.extend_from_slice(b"NIL"),
        Some(tags) => {
            out.push(b'(');
            for (i, t) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                nstring(out, Some(t));
            }
            out.push(b')');
        }
    }
}

/// The message is one plain 7-bit US-ASCII text part (see the module doc).
fn plain_7bit(part: &Part) -> bool {
    let m = &part.mime;
    matches!(part.kind, Kind::Single)
        && m.media_type.eq_ignore_ascii_case(b"text")
        && m.subtype.eq_ignore_ascii_case(b"plain")
        && m.params.len() == 1
        && m.params[0].name.eq_ignore_ascii_case(b"charset")
        && m.params[0].value.eq_ignore_ascii_case(b"us-ascii")
        && m.encoding
            .as_deref()
            .is_none_or(|e| e.eq_ignore_ascii_case(b"7bit"))
        && m.id.is_none()
        && m.description.is_none()
        && m.md5.is_none()
        && m.disposition.is_none()
        && m.language.is_none()
        && m.location.is_none()
}

const EMPTY_TEXT: &[u8] = br#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0"#;

fn write(out: &mut Vec<u8>, raw: &[u8], part: &Part, extended: bool, top: bool) {
    let m = &part.mime;
    if let Kind::Multipart(children) = &part.kind {
        out.push(b'(');
        if children.is_empty() {
            out.extend_from_slice(EMPTY_TEXT);
            if extended {
                out.extend_from_slice(b" NIL NIL NIL NIL");
            }
            out.push(b')');
        }
        for c in children {
            write(out, raw, c, extended, false);
        }
        out.push(b' ');
        nstring(out, Some(&m.subtype));
        if extended {
            out.push(b' ');
            params(out, &m.params);
            out.push(b' ');
            disposition(out, part);
            out.push(b' ');
            language(out, part);
            out.push(b' ');
            nstring(out, m.location.as_deref());
        }
        out.push(b')');
        return;
    }
    out.push(b'(');
    if top && plain_7bit(part) {
        out.extend_from_slice(br#""text" "plain" ("charset" "us-ascii") NIL NIL "7bit" "#);
        out.extend_from_slice(part.body.octets.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(part.body.lines.to_string().as_bytes());
        if extended {
            out.extend_from_slice(b" NIL NIL NIL NIL");
        }
        out.push(b')');
        return;
    }
    match &part.kind {
        Kind::Message(_) if m.subtype.eq_ignore_ascii_case(b"global") => {
            out.extend_from_slice(br#""message" "global""#)
        }
        Kind::Message(_) => out.extend_from_slice(br#""message" "rfc822""#),
        _ if part.truncated => out.extend_from_slice(br#""application" "octet-stream""#),
        _ => {
            nstring(out, Some(&m.media_type));
            out.push(b' ');
            nstring(out, Some(&m.subtype));
        }
    }
    out.push(b' ');
    params(out, &m.params);
    out.push(b' ');
    nstring(out, m.id.as_deref());
    out.push(b' ');
    nstring(out, m.description.as_deref());
    out.push(b' ');
    nstring(out, Some(m.encoding.as_deref().unwrap_or(b"7bit")));
    out.push(b' ');
    out.extend_from_slice(part.body.octets.to_string().as_bytes());
    match &part.kind {
        Kind::Message(inner) => {
            out.push(b' ');
            write_envelope(out, &raw[inner.header.range()]);
            out.push(b' ');
            write(out, raw, inner, extended, false);
            out.push(b' ');
            out.extend_from_slice(part.body.lines.to_string().as_bytes());
        }
        _ if m.is_text() && !part.truncated => {
            out.push(b' ');
            out.extend_from_slice(part.body.lines.to_string().as_bytes());
        }
        _ => {}
    }
    if extended {
        out.push(b' ');
        nstring(out, m.md5.as_deref());
        out.push(b' ');
        disposition(out, part);
        out.push(b' ');
        language(out, part);
        out.push(b' ');
        nstring(out, m.location.as_deref());
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(m: &str, ext: bool) -> String {
        String::from_utf8(body(&Message::parse(m.as_bytes()), ext)).unwrap()
    }

    #[test]
    fn defaults() {
        assert_eq!(
            bs("Subject: x\n\nhello\n", false),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1)"#
        );
        assert_eq!(
            bs("Subject: x\n\nhello\n", true),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)"#
        );
    }

    #[test]
    fn rfc3501_examples() {
        // RFC 3501 §7.4.2's two examples, the sizes made to match.
        let line = "x".repeat(30) + "\r\n";
        let text = line.repeat(92);
        let m = format!(
            "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\nContent-ID: <a>\r\n\r\n{text}"
        );
        assert_eq!(
            bs(&m, false),
            r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") "<a>" NIL "7bit" 2944 92)"#
        );
        let m = "Content-Type: MULTIPART/MIXED; BOUNDARY=b\r\n\r\n--b\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\nContent-Transfer-Encoding: 7BIT\r\n\r\nx\r\n--b\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\nContent-ID: <960723163407.20117h@cac.washington.edu>\r\nContent-Description: Compiler diff\r\nContent-Transfer-Encoding: BASE64\r\n\r\neA==\r\n--b--\r\n";
        assert_eq!(
            bs(m, false),
            r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1 0)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4 0) "MIXED")"#
        );
    }
}
