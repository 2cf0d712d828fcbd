//! What `BODY[section]<partial>` (RFC 3501 §6.4.5, RFC 9051 §6.4.5) and
//! `BINARY[section]`, `BINARY.SIZE[section]` (RFC 3516) return, as Dovecot
//! 2.3 returns them: the bytes with CRLF line ends, cut by `<start.count>`.
//!
//! Which part a number names (Dovecot's reading of RFC 3501 §6.4.5):
//! - the first number counts the parts of a multipart message; in a
//!   message that is not multipart, `1` is the message's body part (its
//!   `1.MIME` is the message header);
//! - below a message/rfc822 part, the numbers count the parts of the
//!   embedded message when it is multipart, else `1` is its body part;
//! - a part of a multipart that is not itself multipart or message is its
//!   own `1` (`2.1` is `2`), but a message's body part has no `1`;
//! - a part that does not exist is empty, not an error (Dovecot sends an
//!   empty literal).
//!
//! `HEADER`, `TEXT` and `HEADER.FIELDS[.NOT]` after a part number are those
//! of the message in a message/rfc822 part, and empty for other parts.
//! `HEADER.FIELDS` returns the matching fields in the message's order,
//! each ended by CRLF, then an empty line (always, even when the header
//! had none: Dovecot's answer when nothing is cached). `HEADER.FIELDS.NOT`
//! returns the other fields as stored, lines without a colon included, and
//! the header's empty line when it has one. Names match without regard to
//! case.
//!
//! In BODY[...] answers a NUL byte is sent as 0x80, as Dovecot does (IMAP4rev1
//! literals may not hold NUL); BINARY answers keep it.
//!
//! BINARY: the content with its Content-Transfer-Encoding undone: base64
//! and quoted-printable are decoded (a quoted-printable line end becomes
//! CRLF, trailing white space goes, `=XX` may be lower case); 7bit, 8bit,
//! binary and no encoding give the content as BODY does; any other
//! encoding is [`BinaryError::UnknownCte`]; broken encoded data is
//! [`BinaryError::Parse`] (Dovecot answers `NO [PARSE]`, or drops the
//! connection for a truncated base64 or quoted-printable end). A
//! multipart, or the whole message (`BINARY[]`, `BINARY[TEXT]`), comes
//! with every part in it decoded and each decoded part's
//! Content-Transfer-Encoding fields replaced by
//! `Content-Transfer-Encoding: binary` at the end of its header, as in
//! Dovecot; a message/rfc822 part is its embedded message converted so
//! (header and all), or, when it is itself encoded (which RFC 2046 §5.2.1
//! forbids), its stored bytes. [`Binary::literal8`] says whether Dovecot sends the answer as
//! `~{n}` (RFC 3516 literal8): when something in it was decoded from
//! base64 or quoted-printable, or when it holds a NUL.

use super::header::{content_len, fields};
use super::parse::{Kind, Message, Part};

/// What follows the part number in a section (RFC 3501 §6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS (name ...)`.
    HeaderFields(Vec<Vec<u8>>),
    /// `HEADER.FIELDS.NOT (name ...)`.
    HeaderFieldsNot(Vec<Vec<u8>>),
    /// `TEXT`.
    Text,
    /// `MIME` (only after a part number).
    Mime,
}

/// A section: part numbers (empty for the whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// `1.2.3` is `[1, 2, 3]`.
    pub part: Vec<u32>,
    /// `None` for the part itself (`BODY[]`, `BODY[1.2]`).
    pub text: Option<SectionText>,
}

/// `<start.count>`: the bytes from `start`, at most `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// The first octet (0-based).
    pub start: u64,
    /// At most this many octets.
    pub count: u64,
}

/// Why a BINARY fetch fails: the response code of the tagged `NO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryError {
    /// `NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding` (RFC 3516 §4.3).
    UnknownCte,
    /// `NO [PARSE] Invalid data in MIME part` (Dovecot's text).
    Parse,
}

impl BinaryError {
    /// The response code, as it goes between the brackets.
    pub fn code(self) -> &'static str {
        match self {
            BinaryError::UnknownCte => "UNKNOWN-CTE",
            BinaryError::Parse => "PARSE",
        }
    }

    /// Dovecot's text after the code.
    pub fn text(self) -> &'static str {
        match self {
            BinaryError::UnknownCte => "Unknown Content-Transfer-Encoding",
            BinaryError::Parse => "Invalid data in MIME part",
        }
    }
}

/// A BINARY answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// The content.
    pub data: Vec<u8>,
    /// Dovecot sends it as `~{n}` (see the module doc).
    pub literal8: bool,
}

/// How a part was reached: from whom its `1` is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    Top,
    Multipart,
    Message,
}

/// The part a part number names (see the module doc); `None` when there
/// is none or the number is empty.
pub fn find<'p>(root: &'p Part, numbers: &[u32]) -> Option<&'p Part> {
    let (&first, rest) = numbers.split_first()?;
    let (mut part, mut parent) = match &root.kind {
        Kind::Multipart(children) => (children.get(index(first)?)?, Parent::Multipart),
        _ if first == 1 => (root, Parent::Top),
        _ => return None,
    };
    for &n in rest {
        (part, parent) = match &part.kind {
            Kind::Multipart(children) => (children.get(index(n)?)?, Parent::Multipart),
            Kind::Message(inner) => match &inner.kind {
                Kind::Multipart(children) => (children.get(index(n)?)?, Parent::Multipart),
                _ if n == 1 => (inner.as_ref(), Parent::Message),
                _ => return None,
            },
            Kind::Single if n == 1 && parent == Parent::Multipart => (part, parent),
            Kind::Single => return None,
        };
    }
    Some(part)
}

fn index(n: u32) -> Option<usize> {
    (n as usize).checked_sub(1)
}

/// The bytes of `raw[range]` as sent: bare LF made CRLF, NUL made 0x80
/// when `nul` is set.
fn wire(out: &mut Vec<u8>, raw: &[u8], range: std::ops::Range<usize>, nul: bool) {
    let start = range.start;
    for i in range {
        match raw[i] {
            b'\n' if i == start || raw[i - 1] != b'\r' => out.extend_from_slice(b"\r\n"),
            0 if nul => out.push(0x80),
            b => out.push(b),
        }
    }
}

fn cut(mut data: Vec<u8>, partial: Option<Partial>) -> Vec<u8> {
    if let Some(p) = partial {
        let len = data.len() as u64;
        let start = p.start.min(len) as usize;
        let end = p.start.saturating_add(p.count).min(len) as usize;
        data.truncate(end);
        data.drain(..start);
    }
    data
}

/// What `BODY[section]<partial>` returns (see the module doc).
pub fn body_section(message: &Message<'_>, section: &Section, partial: Option<Partial>) -> Vec<u8> {
    let raw = message.raw();
    let root = message.root();
    let mut out = Vec::new();
    // the message whose HEADER/TEXT are meant, and the part itself
    let (part, msg) = if section.part.is_empty() {
        (Some(root), Some(root))
    } else {
        let p = find(root, &section.part);
        (p, p.and_then(|p| p.message()))
    };
    match (&section.text, part) {
        (_, None) => {}
        (None, Some(p)) if section.part.is_empty() => wire(
            &mut out,
            raw,
            p.header.start..p.body.end.max(p.header.end),
            true,
        ),
        (None, Some(p)) => wire(&mut out, raw, p.body.range(), true),
        (Some(SectionText::Mime), Some(p)) => wire(&mut out, raw, p.header.range(), true),
        (Some(SectionText::Header), _) => {
            if let Some(m) = msg {
                wire(&mut out, raw, m.header.range(), true);
            }
        }
        (Some(SectionText::Text), _) => {
            if let Some(m) = msg {
                wire(&mut out, raw, m.body.range(), true);
            }
        }
        (Some(SectionText::HeaderFields(names)), _) => {
            if let Some(m) = msg {
                header_fields(&mut out, raw, m, names, false);
            }
        }
        (Some(SectionText::HeaderFieldsNot(names)), _) => {
            if let Some(m) = msg {
                header_fields(&mut out, raw, m, names, true);
            }
        }
    }
    cut(out, partial)
}

fn header_fields(out: &mut Vec<u8>, raw: &[u8], m: &Part, names: &[Vec<u8>], not: bool) {
    let header = &raw[m.header.range()];
    let base = m.header.start;
    let mut used = 0;
    for f in fields(header) {
        let offset = f.raw.as_ptr() as usize - header.as_ptr() as usize;
        used = offset + f.raw.len();
        let listed = f.has_colon && names.iter().any(|n| n.eq_ignore_ascii_case(f.name));
        if listed == not {
            continue;
        }
        wire(out, raw, base + offset..base + used, true);
        if !not && content_len(f.raw) == f.raw.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    if not {
        wire(out, raw, base + used..m.header.end, true);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// Content-Transfer-Encodings as BINARY treats them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cte {
    Identity,
    Binary,
    Base64,
    QuotedPrintable,
}

fn cte(part: &Part) -> Result<Cte, BinaryError> {
    let Some(e) = part.mime.binary_encoding.as_deref() else {
        return Ok(Cte::Identity);
    };
    if e.eq_ignore_ascii_case(b"7bit") || e.eq_ignore_ascii_case(b"8bit") {
        Ok(Cte::Identity)
    } else if e.eq_ignore_ascii_case(b"binary") {
        Ok(Cte::Binary)
    } else if e.eq_ignore_ascii_case(b"base64") {
        Ok(Cte::Base64)
    } else if e.eq_ignore_ascii_case(b"quoted-printable") {
        Ok(Cte::QuotedPrintable)
    } else {
        Err(BinaryError::UnknownCte)
    }
}

/// What `BINARY[part]<partial>` returns; `part` empty is the whole
/// message, `text` the whole message without its header (`BINARY[TEXT]`,
/// which Dovecot accepts).
pub fn binary_section(
    message: &Message<'_>,
    part: &[u32],
    text: bool,
    partial: Option<Partial>,
) -> Result<Binary, BinaryError> {
    let b = binary(message, part, text)?;
    Ok(Binary {
        data: cut(b.data, partial),
        literal8: b.literal8,
    })
}

/// What `BINARY.SIZE[part]` returns: the size of [`binary_section`]'s
/// answer. (Dovecot miscounts some multiparts and fails for every part of
/// a message that has an unknown encoding anywhere; we count what BINARY
/// sends.)
pub fn binary_size(message: &Message<'_>, part: &[u32], text: bool) -> Result<u64, BinaryError> {
    Ok(binary(message, part, text)?.data.len() as u64)
}

fn binary(message: &Message<'_>, numbers: &[u32], text: bool) -> Result<Binary, BinaryError> {
    let raw = message.raw();
    let root = message.root();
    let mut out = Vec::new();
    if numbers.is_empty() {
        let decoded = convert(&mut out, raw, root, !text)?;
        return Ok(Binary {
            literal8: decoded || out.contains(&0),
            data: out,
        });
    }
    let Some(part) = find(root, numbers) else {
        return Ok(Binary {
            data: out,
            literal8: false,
        });
    };
    let literal8 = match &part.kind {
        Kind::Multipart(_) => convert(&mut out, raw, part, false)?,
        Kind::Message(inner) => match cte(part)? {
            Cte::Identity | Cte::Binary => convert(&mut out, raw, inner, true)?,
            _ => {
                wire(&mut out, raw, part.body.range(), false);
                false
            }
        },
        Kind::Single => {
            let c = cte(part)?;
            decode(&mut out, raw, part, c)?;
            matches!(c, Cte::Base64 | Cte::QuotedPrintable)
        }
    };
    Ok(Binary {
        literal8: literal8 || out.contains(&0),
        data: out,
    })
}

/// A part converted as BINARY gives a multipart (see the module doc);
/// true when something was decoded.
fn convert(
    out: &mut Vec<u8>,
    raw: &[u8],
    part: &Part,
    with_header: bool,
) -> Result<bool, BinaryError> {
    let mut decoded = false;
    let gap = part.header.end..part.body.start.max(part.header.end);
    match &part.kind {
        Kind::Multipart(children) => {
            if with_header {
                wire(out, raw, part.header.range(), false);
                wire(out, raw, gap, false);
            }
            let mut pos = part.body.start;
            for c in children {
                wire(out, raw, pos..c.header.start.max(pos), false);
                decoded |= convert(out, raw, c, true)?;
                pos = c.body.end.max(c.header.end);
            }
            wire(out, raw, pos..part.body.end.max(pos), false);
        }
        Kind::Message(inner) => {
            if with_header {
                wire(out, raw, part.header.range(), false);
                wire(out, raw, gap, false);
            }
            match cte(part)? {
                // the embedded message, converted in its turn
                Cte::Identity | Cte::Binary => {
                    decoded |= convert(out, raw, inner, true)?;
                    wire(
                        out,
                        raw,
                        inner.body.end.max(inner.header.end)..part.body.end.max(part.body.start),
                        false,
                    );
                }
                // an encoded message/rfc822 (RFC 2046 §5.2.1 forbids it) is
                // given as stored; Dovecot relabels it binary without
                // decoding it
                _ => wire(out, raw, part.body.range(), false),
            }
        }
        Kind::Single => {
            let c = cte(part)?;
            if with_header {
                if matches!(c, Cte::Base64 | Cte::QuotedPrintable) {
                    rewrite_header(out, raw, part);
                } else {
                    wire(out, raw, part.header.range(), false);
                }
                wire(out, raw, gap, false);
            }
            decode(out, raw, part, c)?;
            decoded = matches!(c, Cte::Base64 | Cte::QuotedPrintable);
        }
    }
    Ok(decoded)
}

/// A header without its Content-Transfer-Encoding fields and with
/// `Content-Transfer-Encoding: binary` at its end.
fn rewrite_header(out: &mut Vec<u8>, raw: &[u8], part: &Part) {
    let header = &raw[part.header.range()];
    let base = part.header.start;
    let mut used = 0;
    for f in fields(header) {
        let offset = f.raw.as_ptr() as usize - header.as_ptr() as usize;
        used = offset + f.raw.len();
        if f.has_colon && f.name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            continue;
        }
        wire(out, raw, base + offset..base + used, false);
        if content_len(f.raw) == f.raw.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
    wire(out, raw, base + used..part.header.end, false);
}

fn decode(out: &mut Vec<u8>, raw: &[u8], part: &Part, c: Cte) -> Result<(), BinaryError> {
    let body = &raw[part.body.range()];
    match c {
        Cte::Identity | Cte::Binary => {
            wire(out, raw, part.body.range(), false);
            Ok(())
        }
        Cte::Base64 => base64(out, body),
        Cte::QuotedPrintable => quoted_printable(out, body),
    }
}

/// RFC 2045 §6.8: white space and line ends are ignored; anything else
/// outside the alphabet, data after the padding or a missing padding is
/// an error.
fn base64(out: &mut Vec<u8>, data: &[u8]) -> Result<(), BinaryError> {
    let chars: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    if !chars.len().is_multiple_of(4) {
        return Err(BinaryError::Parse);
    }
    let quads = chars.len() / 4;
    for (q, quad) in chars.chunks(4).enumerate() {
        let mut bits = 0u32;
        let mut pad = 0;
        for (i, &b) in quad.iter().enumerate() {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if q + 1 == quads && i >= 2 => {
                    pad += 1;
                    0
                }
                _ => return Err(BinaryError::Parse),
            };
            if pad > 0 && b != b'=' {
                return Err(BinaryError::Parse);
            }
            bits = bits << 6 | u32::from(v);
        }
        let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// RFC 2045 §6.7, lines ended by CRLF.
fn quoted_printable(out: &mut Vec<u8>, data: &[u8]) -> Result<(), BinaryError> {
    let mut rest = data;
    while !rest.is_empty() {
        let len = super::header::line_len(rest);
        let line = &rest[..len];
        rest = &rest[len..];
        let has_eol = line.last() == Some(&b'\n');
        let mut text = &line[..content_len(line)];
        while let [t @ .., b' ' | b'\t'] = text {
            text = t;
        }
        let soft = text.last() == Some(&b'=');
        if soft {
            if !has_eol {
                return Err(BinaryError::Parse);
            }
            text = &text[..text.len() - 1];
        }
        let mut i = 0;
        while i < text.len() {
            if text[i] == b'=' {
                let (Some(h), Some(l)) = (
                    text.get(i + 1).and_then(|&b| hex(b)),
                    text.get(i + 2).and_then(|&b| hex(b)),
                ) else {
                    return Err(BinaryError::Parse);
                };
                out.push(h << 4 | l);
                i += 3;
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        if has_eol && !soft {
            out.extend_from_slice(b"\r\n");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(part: &[u32], text: Option<SectionText>) -> Section {
        Section {
            part: part.to_vec(),
            text,
        }
    }

    #[test]
    fn decoders() {
        let mut v = Vec::new();
        base64(&mut v, b"aGVs bG8=\r\naGk=").unwrap_err();
        v.clear();
        base64(&mut v, b"aGVs bG8=\r\n").unwrap();
        assert_eq!(v, b"hello");
        assert_eq!(base64(&mut Vec::new(), b"aGk"), Err(BinaryError::Parse));
        assert_eq!(base64(&mut Vec::new(), b"bad !!"), Err(BinaryError::Parse));
        v.clear();
        quoted_printable(&mut v, b"a=\nb =\n\nc\t \nd=3d=4A=4a\n=\n").unwrap();
        assert_eq!(v, b"ab \r\nc\r\nd=JJ\r\n");
        assert_eq!(
            quoted_printable(&mut Vec::new(), b"bad=ZZ\n"),
            Err(BinaryError::Parse)
        );
        assert_eq!(
            quoted_printable(&mut Vec::new(), b"last="),
            Err(BinaryError::Parse)
        );
    }

    #[test]
    fn partial_and_missing_parts() {
        let m = Message::parse(b"Subject: s\n\nbody\n");
        assert_eq!(
            body_section(
                &m,
                &sec(&[], None),
                Some(Partial {
                    start: 0,
                    count: 10
                })
            ),
            b"Subject: s"
        );
        assert_eq!(
            body_section(
                &m,
                &sec(&[], None),
                Some(Partial {
                    start: 100,
                    count: 5
                })
            ),
            b""
        );
        assert_eq!(body_section(&m, &sec(&[1], None), None), b"body\r\n");
        assert_eq!(body_section(&m, &sec(&[1, 1], None), None), b"");
        assert_eq!(body_section(&m, &sec(&[2], None), None), b"");
        assert_eq!(
            body_section(&m, &sec(&[1], Some(SectionText::Mime)), None),
            b"Subject: s\r\n\r\n"
        );
    }
}
