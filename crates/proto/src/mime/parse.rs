//! A message as a tree of MIME parts (RFC 2045, RFC 2046), with the byte
//! ranges of every header and body in the stored message, the MIME
//! fields BODYSTRUCTURE needs, and the sizes IMAP reports.
//!
//! The stored message is left as it is: LF or CRLF line ends (mixed, too),
//! 8-bit bytes, NULs. Sizes are those of the wire form, where every bare LF
//! is a CRLF ([`Span::octets`]); a bare CR stays one byte, as in Dovecot.
//!
//! # How the parts are cut (Dovecot 2.3's reading, checked against it)
//! - A header ends at the first empty line; a message without one is all
//!   header (a first line without a colon does not end it: a text with no
//!   header at all is read as a header up to its first empty line).
//! - A boundary line is a line that starts with `--` and the boundary of
//!   an enclosing multipart (only a prefix: `--b` followed by anything,
//!   white space or not). When several enclosing boundaries match, the
//!   longest wins, and of equal ones the innermost. `--b--` at the start of
//!   a line closes the multipart; its boundary is then no longer looked for.
//! - The line end before a boundary line belongs to the boundary: a body
//!   ends before it. When that line end is the last one of a header (the
//!   part has no empty line before the boundary, or its empty line is that
//!   line end), the header ends before it instead and the bodies of the
//!   message/rfc822 parts around that header end at the boundary line,
//!   counting the line end; so does a body whose last line was a boundary
//!   line (an empty epilogue).
//! - A multipart without a boundary parameter has no parts; one whose
//!   boundary never appears neither (BODYSTRUCTURE then shows an empty
//!   text/plain part, as Dovecot does).
//! - message/rfc822 bodies are messages, whatever their
//!   Content-Transfer-Encoding; message/global ones are not, as in
//!   Dovecot 2.3 (see [`ParseOptions::message_global`]).
//! - Children of multipart/digest default to message/rfc822.
//! - The MIME fields of a message's own header count only when it has
//!   MIME-Version or Content-Type (Dovecot's rule); a part of a multipart
//!   always has them. Content-Type, Content-Transfer-Encoding, Content-ID,
//!   Content-Description, Content-Language, Content-Location and
//!   Content-MD5 are taken from their first field, Content-Disposition from
//!   its last; a field that is there but empty is `""` (`("" NIL)` for a
//!   disposition), not `NIL`. BINARY decodes by the last
//!   Content-Transfer-Encoding field, and also in a message without
//!   MIME-Version or Content-Type.
//!
//! # Limits
//! Parts nested deeper than [`ParseOptions::max_depth`] and parts past
//! [`ParseOptions::max_parts`] are not looked into: a multipart or message
//! there is one opaque part (shown as application/octet-stream with its
//! parameters, as Dovecot does past its own limit of the same size), and
//! the boundaries of a multipart that has reached the limit are read as
//! part of its last part. Parsing is one pass over the lines; each line
//! that starts with `--` is compared with the open boundaries.

use super::fields::{self, Param};
use super::header::{self, content_len, line_len};

/// Limits and choices of the parser. `Default` is Dovecot 2.3's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Nesting depth (multipart parts and message/rfc822 bodies) below
    /// which nothing more is parsed (100).
    pub max_depth: usize,
    /// Number of parts after which nothing more is split (10000).
    pub max_parts: usize,
    /// Parse message/global (RFC 6532) bodies as messages, as IMAP4rev2
    /// (RFC 9051 §7.5.2) expects; Dovecot 2.3 does not (false).
    pub message_global: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_depth: 100,
            max_parts: 10_000,
            message_global: false,
        }
    }
}

/// A byte range of the stored message with its wire size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte in the stored message.
    pub start: usize,
    /// Offset after the last byte.
    pub end: usize,
    /// Size on the wire: the bytes, with each bare LF counted as CRLF.
    pub octets: u64,
    /// Number of line ends (LF) in the range.
    pub lines: u64,
}

impl Span {
    /// The range as `start..end`.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// The MIME fields of a part, as BODYSTRUCTURE shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mime {
    /// Type as written (`""` when the Content-Type is not valid; `text`
    /// when there is none, `message` in a digest).
    pub media_type: Vec<u8>,
    /// Subtype as written.
    pub subtype: Vec<u8>,
    /// Parameters in BODYSTRUCTURE order (see [`super::fields`]), with
    /// `charset=us-ascii` added to a text part that has no charset.
    pub params: Vec<Param>,
    /// Whether the header had a Content-Type field (valid or not).
    pub has_content_type: bool,
    /// Content-Transfer-Encoding token as written; `None` when absent or
    /// not a token (BODYSTRUCTURE then says `7bit`).
    pub encoding: Option<Vec<u8>>,
    /// Content-Transfer-Encoding as BINARY reads it: the last field's
    /// value (a token, or the whole value when it is not one), even where
    /// BODYSTRUCTURE ignores the MIME fields.
    pub binary_encoding: Option<Vec<u8>>,
    /// Content-ID, unfolded, as written.
    pub id: Option<Vec<u8>>,
    /// Content-Description, unfolded, encoded words left as they are.
    pub description: Option<Vec<u8>>,
    /// Content-MD5, unfolded.
    pub md5: Option<Vec<u8>>,
    /// Content-Disposition: type (as written) and parameters.
    pub disposition: Option<(Vec<u8>, Vec<Param>)>,
    /// Content-Language tags.
    pub language: Option<Vec<Vec<u8>>>,
    /// Content-Location, unfolded.
    pub location: Option<Vec<u8>>,
}

impl Mime {
    fn default_for(default: DefaultType) -> Mime {
        let (media_type, subtype, params) = match default {
            DefaultType::Text => (b"text".to_vec(), b"plain".to_vec(), us_ascii()),
            DefaultType::Message => (b"message".to_vec(), b"rfc822".to_vec(), Vec::new()),
        };
        Mime {
            media_type,
            subtype,
            params,
            has_content_type: false,
            encoding: None,
            binary_encoding: None,
            id: None,
            description: None,
            md5: None,
            disposition: None,
            language: None,
            location: None,
        }
    }

    /// The type is `text` (any case).
    pub fn is_text(&self) -> bool {
        self.media_type.eq_ignore_ascii_case(b"text")
    }

    /// The type is `multipart`.
    pub fn is_multipart(&self) -> bool {
        self.media_type.eq_ignore_ascii_case(b"multipart")
    }

    /// The value of the first parameter with this name (any case).
    pub fn param(&self, name: &[u8]) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_slice())
    }
}

fn us_ascii() -> Vec<Param> {
    vec![Param {
        name: b"charset".to_vec(),
        value: b"us-ascii".to_vec(),
    }]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefaultType {
    Text,
    Message,
}

/// What a part holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A body that is not parsed further (text, image, application, ...,
    /// and multiparts or messages past the limits).
    Single,
    /// message/rfc822: the embedded message, whose header and body lie in
    /// this part's body.
    Message(Box<Part>),
    /// The parts of a multipart, in order (maybe none).
    Multipart(Vec<Part>),
}

/// One part: a message (the root, or one embedded in message/rfc822) or a
/// part of a multipart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The header (a message's header, or a part's MIME header), with the
    /// empty line that ends it when there is one.
    pub header: Span,
    /// The body.
    pub body: Span,
    /// The parsed MIME fields.
    pub mime: Mime,
    /// Whether the MIME fields of the header count (see the module doc):
    /// when false, `mime` holds the defaults.
    pub is_mime: bool,
    /// What the body holds.
    pub kind: Kind,
    /// Set when the part was not looked into because of a limit.
    pub truncated: bool,
}

impl Part {
    /// The parts of a multipart (empty for other parts).
    pub fn children(&self) -> &[Part] {
        match &self.kind {
            Kind::Multipart(c) => c,
            _ => &[],
        }
    }

    /// The embedded message of a message/rfc822 part.
    pub fn message(&self) -> Option<&Part> {
        match &self.kind {
            Kind::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// A parsed message: the stored bytes and the part tree over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    raw: &'a [u8],
    root: Part,
    parts: usize,
}

impl<'a> Message<'a> {
    /// Parses with Dovecot's limits.
    pub fn parse(raw: &'a [u8]) -> Message<'a> {
        Message::parse_with(raw, ParseOptions::default())
    }

    /// Parses with the given limits and choices.
    pub fn parse_with(raw: &'a [u8], options: ParseOptions) -> Message<'a> {
        let mut p = Parser {
            raw,
            pos: 0,
            lf: 0,
            bare: 0,
            prev_eol: 0,
            last: Last::None,
            stack: Vec::new(),
            parts: 1,
            options,
        };
        let (root, _) = p.part(0, DefaultType::Text, false);
        Message {
            raw,
            root,
            parts: p.parts,
        }
    }

    /// The stored bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The root part (the message itself).
    pub fn root(&self) -> &Part {
        &self.root
    }

    /// The number of parts parsed (the root included).
    pub fn part_count(&self) -> usize {
        self.parts
    }

    /// RFC822.SIZE: the size of the whole message on the wire.
    pub fn size(&self) -> u64 {
        self.root.header.octets + self.root.body.octets
    }

    /// The bytes of a span.
    pub fn bytes(&self, span: &Span) -> &'a [u8] {
        &self.raw[span.range()]
    }
}

/// A position with the counts of line ends before it.
#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    lf: u64,
    bare: u64,
}

fn span(a: Mark, b: Mark) -> Span {
    if b.pos <= a.pos {
        return Span {
            start: a.pos,
            end: a.pos,
            octets: 0,
            lines: 0,
        };
    }
    Span {
        start: a.pos,
        end: b.pos,
        octets: (b.pos - a.pos) as u64 + (b.bare - a.bare),
        lines: b.lf - a.lf,
    }
}

/// What the last line read was: the owner of the line end before a
/// boundary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    /// A header line of the part at this depth (its empty line included).
    Header(usize),
    /// A body line (of a single part, a preamble or an epilogue).
    Body,
    /// A boundary line.
    Boundary,
}

/// How a part ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Eof,
    Boundary {
        /// Index in the boundary stack.
        index: usize,
        close: bool,
        /// Where the bodies end.
        body_end: Mark,
        /// A header that must end before the line end: (depth, end).
        cut: Option<(usize, Mark)>,
    },
}

struct OpenBoundary {
    boundary: Vec<u8>,
    /// The multipart has as many parts as it may: its boundaries are body.
    full: bool,
}

struct Parser<'a> {
    raw: &'a [u8],
    /// Start of the next line.
    pos: usize,
    lf: u64,
    bare: u64,
    /// Length of the line end of the last line read (0, 1 or 2).
    prev_eol: usize,
    last: Last,
    stack: Vec<OpenBoundary>,
    parts: usize,
    options: ParseOptions,
}

impl<'a> Parser<'a> {
    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            lf: self.lf,
            bare: self.bare,
        }
    }

    /// The position before the line end of the last line read.
    fn before_eol(&self) -> Mark {
        match self.prev_eol {
            0 => self.mark(),
            1 => Mark {
                pos: self.pos - 1,
                lf: self.lf - 1,
                bare: self.bare - 1,
            },
            _ => Mark {
                pos: self.pos - 2,
                lf: self.lf - 1,
                bare: self.bare,
            },
        }
    }

    /// The next line, or `None` at the end.
    fn peek(&self) -> Option<&'a [u8]> {
        if self.pos >= self.raw.len() {
            return None;
        }
        let rest = &self.raw[self.pos..];
        Some(&rest[..line_len(rest)])
    }

    fn consume(&mut self, line: &[u8], last: Last) {
        self.pos += line.len();
        self.prev_eol = line.len() - content_len(line);
        if self.prev_eol > 0 {
            self.lf += 1;
            if self.prev_eol == 1 {
                self.bare += 1;
            }
        }
        self.last = last;
    }

    /// The open boundary this line starts with: (index, close).
    fn boundary(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        let mut best: Option<(usize, usize)> = None;
        for (i, b) in self.stack.iter().enumerate() {
            if b.full || !rest.starts_with(&b.boundary) {
                continue;
            }
            if best.is_none_or(|(_, len)| b.boundary.len() >= len) {
                best = Some((i, b.boundary.len()));
            }
        }
        let (index, len) = best?;
        Some((index, rest[len..].starts_with(b"--")))
    }

    /// How the parts end at a boundary line at the current position.
    fn end_at(&self, index: usize, close: bool) -> End {
        let here = self.mark();
        let (body_end, cut) = match self.last {
            Last::Body => (self.before_eol(), None),
            Last::Header(depth) => (here, Some((depth, self.before_eol()))),
            Last::Boundary | Last::None => (here, None),
        };
        End::Boundary {
            index,
            close,
            body_end,
            cut,
        }
    }

    /// Reads body lines up to a boundary line or the end.
    fn body_lines(&mut self) -> End {
        while let Some(line) = self.peek() {
            if line.starts_with(b"--")
                && let Some((index, close)) = self.boundary(line)
            {
                return self.end_at(index, close);
            }
            self.consume(line, Last::Body);
        }
        End::Eof
    }

    /// Parses one part from the current position.
    fn part(&mut self, depth: usize, default: DefaultType, in_multipart: bool) -> (Part, End) {
        let start = self.mark();
        let mut early = None;
        while let Some(line) = self.peek() {
            if line.starts_with(b"--")
                && let Some((index, close)) = self.boundary(line)
            {
                early = Some(self.end_at(index, close));
                break;
            }
            self.consume(line, Last::Header(depth));
            if content_len(line) == 0 {
                break;
            }
        }
        let header_end = self.mark();
        let (mime, is_mime) =
            read_mime(&self.raw[start.pos..header_end.pos], default, in_multipart);
        let message = mime.media_type.eq_ignore_ascii_case(b"message")
            && (mime.subtype.eq_ignore_ascii_case(b"rfc822")
                || (self.options.message_global && mime.subtype.eq_ignore_ascii_case(b"global")));
        let multipart = mime.is_multipart();
        let too_deep = depth + 1 >= self.options.max_depth || self.parts >= self.options.max_parts;
        let mut truncated = false;
        let (kind, end) = if let Some(end) = early {
            // the header ran into a boundary line: no body
            let kind = if message && !too_deep {
                self.parts += 1;
                Kind::Message(Box::new(empty_part(header_end)))
            } else if multipart && !too_deep {
                Kind::Multipart(Vec::new())
            } else {
                truncated = message || multipart;
                Kind::Single
            };
            (kind, end)
        } else if (message || multipart) && too_deep {
            truncated = true;
            (Kind::Single, self.body_lines())
        } else if message {
            self.parts += 1;
            let (inner, end) = self.part(depth + 1, DefaultType::Text, false);
            (Kind::Message(Box::new(inner)), end)
        } else if multipart {
            let digest = mime.subtype.eq_ignore_ascii_case(b"digest");
            match mime.param(b"boundary") {
                Some(b) if !b.is_empty() => {
                    let b = b.to_vec();
                    self.multipart(depth, b, digest)
                }
                _ => (Kind::Multipart(Vec::new()), self.body_lines()),
            }
        } else {
            (Kind::Single, self.body_lines())
        };
        let (header, body, end) = match end {
            End::Eof => (
                span(start, header_end),
                span(header_end, self.mark()),
                End::Eof,
            ),
            End::Boundary {
                index,
                close,
                body_end,
                cut: Some((d, cut_end)),
            } if d == depth => (
                span(start, cut_end),
                span(body_end, body_end),
                End::Boundary {
                    index,
                    close,
                    body_end,
                    cut: None,
                },
            ),
            End::Boundary { body_end, .. } => {
                (span(start, header_end), span(header_end, body_end), end)
            }
        };
        (
            Part {
                header,
                body,
                mime,
                is_mime,
                kind,
                truncated,
            },
            end,
        )
    }

    /// The parts of a multipart whose header has been read.
    fn multipart(&mut self, depth: usize, boundary: Vec<u8>, digest: bool) -> (Kind, End) {
        let k = self.stack.len();
        self.stack.push(OpenBoundary {
            boundary,
            full: false,
        });
        let default = if digest {
            DefaultType::Message
        } else {
            DefaultType::Text
        };
        let mut children = Vec::new();
        let mut end = self.body_lines(); // the preamble
        while let End::Boundary { index, close, .. } = end {
            if index != k {
                break; // an enclosing boundary: this multipart has no end line
            }
            if let Some(line) = self.peek() {
                self.consume(line, Last::Boundary);
            }
            if close {
                self.stack.truncate(k);
                end = self.body_lines(); // the epilogue
                break;
            }
            if self.parts >= self.options.max_parts {
                self.stack[k].full = true;
            }
            self.parts += 1;
            let (child, e) = self.part(depth + 1, default, true);
            children.push(child);
            end = e;
        }
        self.stack.truncate(k);
        (Kind::Multipart(children), end)
    }
}

fn empty_part(at: Mark) -> Part {
    Part {
        header: span(at, at),
        body: span(at, at),
        mime: Mime::default_for(DefaultType::Text),
        is_mime: false,
        kind: Kind::Single,
        truncated: false,
    }
}
/// The MIME fields of a header (see the module doc for which count).
fn read_mime<'h>(header: &'h [u8], default: DefaultType, in_multipart: bool) -> (Mime, bool) {
    let mut mime = Mime::default_for(default);
    let mut is_mime = in_multipart;
    let mut ct: Option<&'h [u8]> = None;
    let mut last_cte = None;
    let (mut cte, mut id, mut desc, mut md5, mut lang, mut loc, mut disp) =
        (ct, ct, ct, ct, ct, ct, ct);
    for f in header::fields(header) {
        if !f.has_colon {
            continue;
        }
        let first = |slot: &mut Option<&'h [u8]>, v: &'h [u8]| {
            if slot.is_none() {
                *slot = Some(v);
            }
        };
        let lower = f.name.to_ascii_lowercase();
        match lower.as_slice() {
            b"mime-version" => is_mime = true,
            b"content-type" => {
                is_mime = true;
                first(&mut ct, f.value);
            }
            b"content-transfer-encoding" => {
                first(&mut cte, f.value);
                last_cte = Some(f.value);
            }
            b"content-id" => first(&mut id, f.value),
            b"content-description" => first(&mut desc, f.value),
            b"content-md5" => first(&mut md5, f.value),
            b"content-language" => first(&mut lang, f.value),
            b"content-location" => first(&mut loc, f.value),
            b"content-disposition" => disp = Some(f.value),
            _ => {}
        }
    }
    // BINARY follows the last field, and a value that is not a token is
    // an unknown encoding there (Dovecot)
    mime.binary_encoding = last_cte.and_then(|v| {
        let t = header::unfold(v);
        let t = t.trim_ascii();
        if t.is_empty() {
            None
        } else {
            Some(
                cte_token(v)
                    .filter(|k| k.len() == t.len())
                    .unwrap_or_else(|| t.to_vec()),
            )
        }
    });
    if !is_mime {
        return (mime, false);
    }
    if let Some(v) = ct {
        mime.has_content_type = true;
        let (t, s, p) = fields::content_type(v).unwrap_or_default();
        mime.media_type = t;
        mime.subtype = s;
        mime.params = p;
        if mime.is_text() && mime.param(b"charset").is_none() {
            mime.params.extend(us_ascii());
        }
    }
    mime.encoding = cte.and_then(cte_token);
    mime.id = id.map(header::unfold);
    mime.description = desc.map(header::unfold);
    mime.md5 = md5.map(header::unfold);
    mime.location = loc.map(header::unfold);
    mime.language = lang.and_then(fields::languages);
    mime.disposition = disp.map(fields::disposition);
    (mime, true)
}

/// The token of a Content-Transfer-Encoding value (`None` when it is not
/// one token, e.g. quoted).
fn cte_token(value: &[u8]) -> Option<Vec<u8>> {
    let v = header::unfold(value);
    let mut s = v.as_slice();
    while let [b, rest @ ..] = s {
        if *b != b' ' && *b != b'\t' {
            break;
        }
        s = rest;
    }
    let n = s
        .iter()
        .position(|&b| !(b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)))
        .unwrap_or(s.len());
    if n == 0 {
        return None;
    }
    Some(s[..n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(m: &Message<'a>, s: &Span) -> &'a [u8] {
        m.bytes(s)
    }

    #[test]
    fn wire_sizes_of_lf_files() {
        let m = Message::parse(b"Subject: a\n\nline 1\nline 2\n");
        assert_eq!(m.size(), 12 + 2 + 16);
        assert_eq!((m.root().body.octets, m.root().body.lines), (16, 2));
        let m = Message::parse(b"A: b\r\n\r\nx\ry\nz");
        assert_eq!((m.root().body.octets, m.root().body.lines), (6, 1));
    }

    #[test]
    fn line_end_before_a_boundary() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\nContent-Type: text/plain\n--b\nContent-Type: message/rfc822\n\nFrom: a@b\n--b--\n";
        let m = Message::parse(raw);
        let c = m.root().children();
        assert_eq!(c.len(), 3);
        assert_eq!(text(&m, &c[0].body), b"one");
        // a header cut by the boundary ends before the line end
        assert_eq!(text(&m, &c[1].header), b"Content-Type: text/plain");
        assert_eq!(c[1].body.octets, 0);
        // and the message/rfc822 around such a header counts it
        assert_eq!(text(&m, &c[2].body), b"From: a@b\n");
        assert_eq!(text(&m, &c[2].message().unwrap().header), b"From: a@b");
    }

    #[test]
    fn longest_boundary_wins_and_close_pops() {
        let raw = b"Content-Type: multipart/mixed; boundary=abcdef\n\n--abcdef\nContent-Type: multipart/mixed; boundary=abc\n\n--abc\n\none\n--abcdefX\n\ntwo\n--abc--\n--abcdef--\n";
        let m = Message::parse(raw);
        let c = m.root().children();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].children().len(), 1);
        assert_eq!(text(&m, &c[1].body), b"two\n--abc--");
    }

    #[test]
    fn defaults_and_mime_rules() {
        let m = Message::parse(
            b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: s\n\nx\n--d--\n",
        );
        let c = &m.root().children()[0];
        assert!(c.message().is_some());
        // no MIME-Version nor Content-Type: the Content-* fields do not count
        let m = Message::parse(b"Content-ID: <a@b>\n\nx\n");
        assert!(!m.root().is_mime);
        assert_eq!(m.root().mime.id, None);
        let m = Message::parse(b"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\nx\n");
        assert!(m.root().children().is_empty());
    }
}
