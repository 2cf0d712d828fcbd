//! SEARCH evaluated: whether one message matches a [`SearchKey`] tree
//! (RFC 3501 §6.4.4, RFC 9051 §6.4.4, MODSEQ from RFC 7162 §3.1.5, `$`
//! from RFC 5182, OLDER/YOUNGER from RFC 5032), without I/O.
//!
//! The session fills a [`Candidate`] per message from its index, asks
//! [`needs`] first to know whether it must load the header or the whole
//! message, and calls [`matches()`].
//!
//! ## Text keys, as Dovecot reads them
//! FROM, TO, CC, BCC, SUBJECT, HEADER, BODY and TEXT are substring
//! matches without regard to case (both sides lower-cased with Unicode's
//! mapping) on decoded text:
//! - header values are unfolded and their RFC 2047 encoded words decoded
//!   (B and Q, adjacent words of one charset joined before decoding);
//!   8-bit bytes outside encoded words are UTF-8, or windows-1252 when not
//!   valid UTF-8;
//! - address fields (FROM, TO, CC, BCC, and HEADER on an address field)
//!   also match `display name <local@domain>` for each address, the name
//!   decoded;
//! - BODY looks in every text part (and message/* part that is not an
//!   embedded message), with its Content-Transfer-Encoding undone and its
//!   charset converted, and in the headers of embedded messages; TEXT is
//!   the header or the body;
//! - an empty string matches every message; `HEADER name ""` matches when
//!   the field is there.
//!
//! Charsets are converted with mail-parser's decoders (single-byte
//! charsets, UTF-7, UTF-16); UTF-8 and unknown charsets are read as
//! UTF-8. Undecodable bytes become U+FFFD; nothing here panics on any
//! message.
//!
//! ## Dates
//! BEFORE, ON and SINCE take the INTERNALDATE's calendar day in the
//! server's zone ([`Context::tz_offset`]); SENTBEFORE, SENTON and
//! SENTSINCE the date written in the Date: field (its time and zone
//! ignored, RFC 3501 §6.4.4), or the INTERNALDATE's day when there is no
//! Date: field that parses (as Dovecot does). [`parse_date`] reads RFC 5322
//! dates leniently.

use std::cell::OnceCell;

use super::datetime::{Date, DateTime};
use super::flag::Flag;
use super::search::SearchKey;
use super::sequence::SequenceSet;
use crate::mime::header::{fields, unfold};
use crate::mime::{Address, Kind, Message, Part, addresses};

/// What one message offers a search: the session fills it from its index.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    /// System flags and keywords as the session reports them (no \Recent).
    pub flags: &'a [Flag],
    pub recent: bool,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internal_date: i64,
    /// RFC822.SIZE (CRLF line ends).
    pub size: u64,
    pub modseq: u64,
    /// The stored message (LF or CRLF line ends, possibly damaged), when
    /// `needs(key)` said so; `None` otherwise.
    pub raw: Option<&'a [u8]>,
}

/// What the whole mailbox offers a search.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Number of messages in the mailbox (for `*` in sequence sets).
    pub max_seq: u32,
    /// Highest UID in the mailbox (for `*` in UID sets).
    pub max_uid: u32,
    /// The saved search result `$` (RFC 5182), as UIDs in ascending order
    /// (as SEARCH finds them); None = empty.
    pub saved: Option<&'a [u32]>,
    /// "Now", seconds since the epoch (OLDER/YOUNGER).
    pub now: i64,
    /// The server's time zone offset in seconds east of UTC (BEFORE/ON/SINCE
    /// compare the INTERNALDATE's date in this zone; SENTBEFORE/SENTON/
    /// SENTSINCE compare the Date: header's own date, ignoring its time and
    /// zone, as RFC 3501 says).
    pub tz_offset: i32,
}

/// How much of a message a search key looks at.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Needs {
    /// Flags, sizes, dates and numbers from the index only.
    Nothing,
    /// The header (through the empty line that ends it).
    Header,
    /// The whole message.
    Full,
}

/// How much of the message `key` looks at (the session then loads only the
/// header or the whole file).
pub fn needs(key: &SearchKey) -> Needs {
    use SearchKey::*;
    match key {
        // an empty string matches everything: nothing to load
        Bcc(s) | Cc(s) | From(s) | Subject(s) | To(s) if s.is_empty() => Needs::Nothing,
        Body(s) | Text(s) if s.is_empty() => Needs::Nothing,
        Bcc(_) | Cc(_) | From(_) | Subject(_) | To(_) | Header(..) => Needs::Header,
        SentBefore(_) | SentOn(_) | SentSince(_) => Needs::Header,
        Body(_) | Text(_) => Needs::Full,
        Not(k) => needs(k),
        Or(a, b) => needs(a).max(needs(b)),
        And(keys) => keys.iter().map(needs).max().unwrap_or(Needs::Nothing),
        _ => Needs::Nothing,
    }
}

/// Whether the message `m` matches `key` in the mailbox `cx`.
pub fn matches(key: &SearchKey, m: &Candidate<'_>, cx: &Context<'_>) -> bool {
    let ev = Eval {
        m,
        cx,
        header: OnceCell::new(),
        header_text: OnceCell::new(),
        body_text: OnceCell::new(),
    };
    ev.eval(key)
}

/// One message being evaluated, with what was decoded so far.
struct Eval<'s> {
    m: &'s Candidate<'s>,
    cx: &'s Context<'s>,
    /// The header bytes.
    header: OnceCell<&'s [u8]>,
    /// The whole header decoded and lower-cased (TEXT).
    header_text: OnceCell<String>,
    /// Every text part decoded and lower-cased (BODY, TEXT).
    body_text: OnceCell<String>,
}

impl<'s> Eval<'s> {
    fn eval(&self, key: &SearchKey) -> bool {
        use SearchKey::*;
        let m = self.m;
        match key {
            All => true,
            Answered => self.has(&Flag::Answered),
            Deleted => self.has(&Flag::Deleted),
            Draft => self.has(&Flag::Draft),
            Flagged => self.has(&Flag::Flagged),
            Seen => self.has(&Flag::Seen),
            Unanswered => !self.has(&Flag::Answered),
            Undeleted => !self.has(&Flag::Deleted),
            Undraft => !self.has(&Flag::Draft),
            Unflagged => !self.has(&Flag::Flagged),
            Unseen => !self.has(&Flag::Seen),
            Keyword(k) => self.has_keyword(k),
            Unkeyword(k) => !self.has_keyword(k),
            Recent => m.recent,
            New => m.recent && !self.has(&Flag::Seen),
            Old => !m.recent,
            Larger(n) => m.size > *n,
            Smaller(n) => m.size < *n,
            Before(d) => self.internal_day() < *d,
            On(d) => self.internal_day() == *d,
            Since(d) => self.internal_day() >= *d,
            SentBefore(d) => self.sent_day() < *d,
            SentOn(d) => self.sent_day() == *d,
            SentSince(d) => self.sent_day() >= *d,
            // RFC 5032 §3: OLDER is "older than" the interval, YOUNGER "younger
            // than" it; the two partition the mailbox.
            Older(n) => m.internal_date < self.cx.now.saturating_sub(i64::from(*n)),
            Younger(n) => m.internal_date >= self.cx.now.saturating_sub(i64::from(*n)),
            ModSeq { modseq, .. } => m.modseq >= *modseq,
            Uid(set) => self.in_set(set, m.uid, self.cx.max_uid),
            SequenceSet(set) => self.in_set(set, m.seq, self.cx.max_seq),
            Not(k) => !self.eval(k),
            Or(a, b) => self.eval(a) || self.eval(b),
            And(keys) => keys.iter().all(|k| self.eval(k)),
            From(s) => self.address_field(b"from", s),
            To(s) => self.address_field(b"to", s),
            Cc(s) => self.address_field(b"cc", s),
            Bcc(s) => self.address_field(b"bcc", s),
            Subject(s) => self.field(b"subject", s),
            Header(name, s) => self.header_key(name, s),
            Body(s) => s.is_empty() || self.body_text().contains(&fold(s)),
            Text(s) => {
                if s.is_empty() {
                    return true;
                }
                let needle = fold(s);
                self.header_text().contains(&needle) || self.body_text().contains(&needle)
            }
        }
    }

    fn has(&self, flag: &Flag) -> bool {
        self.m.flags.iter().any(|f| f == flag)
    }

    fn has_keyword(&self, k: &str) -> bool {
        self.m
            .flags
            .iter()
            .any(|f| matches!(f, Flag::Keyword(x) if x.eq_ignore_ascii_case(k)))
    }

    /// `$` is the saved result, as UIDs, in either context (RFC 5182 §2.1).
    fn in_set(&self, set: &SequenceSet, n: u32, largest: u32) -> bool {
        if set.is_saved() {
            let Some(saved) = self.cx.saved else {
                return false;
            };
            return saved.binary_search(&self.m.uid).is_ok();
        }
        set.contains(n, largest)
    }

    fn internal_day(&self) -> Date {
        let local = self
            .m
            .internal_date
            .saturating_add(i64::from(self.cx.tz_offset));
        Date::from_days(local.div_euclid(86400))
    }

    fn sent_day(&self) -> Date {
        match last_field(self.header(), b"date").and_then(parse_date) {
            Some(dt) => dt.date,
            None => self.internal_day(),
        }
    }

    fn header(&self) -> &'s [u8] {
        self.header.get_or_init(|| {
            let raw = self.m.raw.unwrap_or(&[]);
            &raw[..header_len(raw)]
        })
    }

    fn header_text(&self) -> &str {
        self.header_text.get_or_init(|| {
            let mut out = String::new();
            header_text(&mut out, self.header());
            fold(&out)
        })
    }

    fn body_text(&self) -> &str {
        self.body_text.get_or_init(|| {
            let Some(raw) = self.m.raw else {
                return String::new();
            };
            let msg = Message::parse(raw);
            let mut out = String::new();
            body_text(&mut out, &msg);
            fold(&out)
        })
    }

    /// SUBJECT and the like: any field of that name, decoded.
    fn field(&self, name: &[u8], s: &str) -> bool {
        if s.is_empty() {
            return true;
        }
        let needle = fold(s);
        fields(self.header())
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .any(|f| fold(&decode_header(f.value)).contains(&needle))
    }

    /// FROM, TO, CC, BCC: the decoded value, or an address written as
    /// `name <local@domain>`.
    fn address_field(&self, name: &[u8], s: &str) -> bool {
        if s.is_empty() {
            return true;
        }
        let needle = fold(s);
        fields(self.header())
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .any(|f| {
                fold(&decode_header(f.value)).contains(&needle)
                    || fold(&address_text(&addresses(f.value))).contains(&needle)
            })
    }

    fn header_key(&self, name: &str, s: &str) -> bool {
        let name = name.as_bytes();
        if s.is_empty() {
            return fields(self.header()).any(|f| f.name.eq_ignore_ascii_case(name));
        }
        if is_address_field(name) {
            self.address_field(name, s)
        } else {
            self.field(name, s)
        }
    }
}

fn is_address_field(name: &[u8]) -> bool {
    [
        &b"from"[..],
        b"to",
        b"cc",
        b"bcc",
        b"sender",
        b"reply-to",
        b"resent-from",
        b"resent-to",
        b"resent-cc",
        b"resent-bcc",
        b"resent-sender",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

/// Case folding for comparisons: Unicode lower case (a simplification of
/// i;unicode-casemap, RFC 5051, without its decomposition).
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// The length of the header at the start of `raw`, with the empty line
/// that ends it (all of `raw` when there is none).
pub(crate) fn header_len(raw: &[u8]) -> usize {
    let mut pos = 0;
    while pos < raw.len() {
        let rest = &raw[pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..len];
        pos += len;
        if line == b"\n" || line == b"\r\n" {
            return pos;
        }
    }
    raw.len()
}

/// The value of the last field named `name` (any case).
pub(crate) fn last_field<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    fields(header)
        .filter(|f| f.has_colon && f.name.eq_ignore_ascii_case(name))
        .last()
        .map(|f| f.value)
}

/// Every address of every field named `name`, in order.
pub(crate) fn address_list(header: &[u8], name: &[u8]) -> Vec<Address> {
    fields(header)
        .filter(|f| f.has_colon && f.name.eq_ignore_ascii_case(name))
        .flat_map(|f| addresses(f.value))
        .collect()
}

/// Addresses as people write them: `name <local@domain>, ...`, names
/// decoded, Dovecot's fillers for missing parts left out.
fn address_text(list: &[Address]) -> String {
    use crate::mime::envelope::{MISSING_DOMAIN, MISSING_MAILBOX};
    let mut out = String::new();
    for a in list {
        if !out.is_empty() {
            out.push_str(", ");
        }
        if let Some(name) = &a.name {
            out.push_str(&decode_header(name));
            out.push(' ');
        }
        let mailbox = a.mailbox.as_deref().filter(|m| *m != MISSING_MAILBOX);
        let host = a.host.as_deref().filter(|h| *h != MISSING_DOMAIN);
        match (mailbox, host) {
            (Some(m), Some(h)) => {
                out.push('<');
                out.push_str(&text_8bit(m));
                out.push('@');
                out.push_str(&text_8bit(h));
                out.push('>');
            }
            (Some(m), None) => out.push_str(&text_8bit(m)),
            (None, Some(h)) => {
                out.push('@');
                out.push_str(&text_8bit(h));
            }
            (None, None) => {}
        }
    }
    out
}

/// The whole header as text: `Name: decoded value` lines.
fn header_text(out: &mut String, header: &[u8]) {
    for f in fields(header) {
        out.push_str(&text_8bit(f.name));
        if f.has_colon {
            out.push_str(": ");
            out.push_str(&decode_header(f.value));
        }
        out.push('\n');
    }
}

/// The decoded text of every text part of a message, and of the headers
/// of the messages it embeds. Walks the part tree without recursion.
fn body_text(out: &mut String, msg: &Message<'_>) {
    let raw = msg.raw();
    let mut stack: Vec<&Part> = vec![msg.root()];
    while let Some(part) = stack.pop() {
        match &part.kind {
            Kind::Multipart(children) if !children.is_empty() => {
                stack.extend(children.iter().rev());
            }
            Kind::Multipart(_) => {
                // no boundary, or one that never comes: the body as text
                let body = raw.get(part.body.range()).unwrap_or(&[]);
                out.push_str(&text_8bit(body));
                out.push('\n');
            }
            Kind::Message(inner) => {
                header_text(out, raw.get(inner.header.range()).unwrap_or(&[]));
                stack.push(inner);
            }
            Kind::Single => {
                let Some((is_text, charset)) = text_part(part, raw) else {
                    continue;
                };
                if !is_text {
                    continue;
                }
                let body = raw.get(part.body.range()).unwrap_or(&[]);
                let decoded = decode_cte(part.mime.binary_encoding.as_deref(), body);
                out.push_str(&decode_charset(charset.as_deref(), &decoded));
                out.push('\n');
            }
        }
    }
}

/// Whether a single part is text to search, and its charset.
fn text_part(part: &Part, raw: &[u8]) -> Option<(bool, Option<Vec<u8>>)> {
    if part.is_mime {
        let m = &part.mime;
        let texty =
            m.is_text() || m.media_type.is_empty() || m.media_type.eq_ignore_ascii_case(b"message");
        return Some((texty, m.param(b"charset").map(<[u8]>::to_vec)));
    }
    // Not a MIME message (no MIME-Version or Content-Type): text, with the
    // charset of a Content-Type field if one is there anyway.
    let header = raw.get(part.header.range()).unwrap_or(&[]);
    let charset = fields(header)
        .find(|f| f.has_colon && f.name.eq_ignore_ascii_case(b"content-type"))
        .and_then(|f| crate::mime::fields::content_type(f.value))
        .and_then(|(_, _, params)| {
            params
                .into_iter()
                .find(|p| p.name.eq_ignore_ascii_case(b"charset"))
                .map(|p| p.value)
        });
    Some((true, charset))
}

/// A body with its Content-Transfer-Encoding undone, leniently: what
/// does not decode is skipped (base64) or kept (quoted-printable).
pub(crate) fn decode_cte(encoding: Option<&[u8]>, body: &[u8]) -> Vec<u8> {
    let enc: Vec<u8> = encoding
        .unwrap_or(b"")
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if enc.eq_ignore_ascii_case(b"base64") {
        base64_lenient(body)
    } else if enc.eq_ignore_ascii_case(b"quoted-printable") {
        qp_lenient(body, false)
    } else {
        body.to_vec()
    }
}

fn b64_value(b: u8) -> Option<u8> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// Base64 with everything outside the alphabet skipped; stops at `=`
/// only at the end of a quantum (RFC 2045 §6.8 "ignored" characters).
fn base64_lenient(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
    let mut bits = 0u32;
    let mut n = 0;
    for &b in data {
        if b == b'=' {
            // padding: flush what is complete and start again
            match n {
                2 => out.push((bits >> 4) as u8),
                3 => {
                    out.push((bits >> 10) as u8);
                    out.push((bits >> 2) as u8);
                }
                _ => {}
            }
            bits = 0;
            n = 0;
            continue;
        }
        let Some(v) = b64_value(b) else { continue };
        bits = bits << 6 | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(bits >> 16) as u8, (bits >> 8) as u8, bits as u8]);
            bits = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((bits >> 4) as u8),
        3 => {
            out.push((bits >> 10) as u8);
            out.push((bits >> 2) as u8);
        }
        _ => {}
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045 §6.7; `_` is a space in encoded words, RFC
/// 2047 §4.2); a broken `=` sequence is kept as written.
fn qp_lenient(data: &[u8], word: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'=' {
            if let (Some(h), Some(l)) = (
                data.get(i + 1).and_then(|&b| hex(b)),
                data.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            // a soft line break: `=`, maybe white space, then the line end
            let mut j = i + 1;
            while j < data.len() && matches!(data[j], b' ' | b'\t') {
                j += 1;
            }
            if data.get(j) == Some(&b'\r') && data.get(j + 1) == Some(&b'\n') {
                i = j + 2;
                continue;
            }
            if data.get(j) == Some(&b'\n') {
                i = j + 1;
                continue;
            }
            out.push(b);
            i += 1;
        } else if word && b == b'_' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// Bytes in a charset as UTF-8: mail-parser's decoders; UTF-8 and
/// unknown charsets read as UTF-8, US-ASCII as UTF-8 when valid (8-bit
/// text mislabelled so is common) and windows-1252 otherwise. Lossy.
pub(crate) fn decode_charset(charset: Option<&[u8]>, bytes: &[u8]) -> String {
    let charset = charset.unwrap_or(b"us-ascii");
    // RFC 2231 §5 language suffix of an encoded word: `utf-8*en`.
    let charset = charset.split(|&b| b == b'*').next().unwrap_or(b"");
    let charset: Vec<u8> = charset
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'"' | b' ' | b'\t'))
        .collect();
    if charset.eq_ignore_ascii_case(b"utf-8") || charset.eq_ignore_ascii_case(b"utf8") {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let ascii = [&b"us-ascii"[..], b"ascii", b"ansi_x3.4-1968", b""]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&charset));
    if ascii {
        return text_8bit(bytes);
    }
    match mail_parser::decoders::charsets::map::charset_decoder(&charset) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// 8-bit text of unknown charset: UTF-8 when valid, else windows-1252.
fn text_8bit(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => match mail_parser::decoders::charsets::map::charset_decoder(b"windows-1252") {
            Some(decode) => decode(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

/// The longest encoded word decoded.
const MAX_ENCODED_WORD: usize = 2000;

/// An encoded word `=?charset?B|Q?text?=` at `s[i..]`: the charset, the
/// decoded bytes, and the offset after it.
fn encoded_word(s: &[u8], i: usize) -> Option<(&[u8], Vec<u8>, usize)> {
    let rest = s.get(i..)?.strip_prefix(b"=?")?;
    // RFC 2047 §2 allows 75 characters; longer words exist, but a bound
    // keeps a header full of `=?` linear
    let rest = &rest[..rest.len().min(MAX_ENCODED_WORD)];
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    if charset.is_empty() || charset.iter().any(|&b| b <= b' ' || b >= 0x7f) {
        return None;
    }
    let rest = &rest[q1 + 1..];
    let (&enc, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b"?")?;
    let end = rest.windows(2).position(|w| w == b"?=")?;
    let text = &rest[..end];
    if text
        .iter()
        .any(|&b| b == b' ' || b == b'\t' || b == b'\n' || b == b'\r')
    {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => base64_lenient(text),
        b'Q' | b'q' => qp_lenient(text, true),
        _ => return None,
    };
    // "=?" + charset + "?" + enc + "?" + text + "?="
    let len = 2 + q1 + 1 + 1 + 1 + end + 2;
    Some((charset, bytes, i + len))
}

/// A header value as people read it: unfolded, RFC 2047 encoded words
/// decoded (white space between adjacent encoded words dropped, and the
/// bytes of adjacent words in one charset joined before decoding, so a
/// character split between words survives), other 8-bit bytes as UTF-8
/// or windows-1252.
pub(crate) fn decode_header(value: &[u8]) -> String {
    let s = unfold(value);
    let mut out = String::with_capacity(s.len());
    // the encoded words not yet decoded: charset and bytes
    let mut pending: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut plain_start = 0;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'='
            && s.get(i + 1) == Some(&b'?')
            && let Some((charset, bytes, end)) = encoded_word(&s, i)
        {
            let between = &s[plain_start..i];
            let adjacent = pending.is_some() && between.iter().all(|&b| b == b' ' || b == b'\t');
            match &mut pending {
                Some((cs, buf)) if adjacent && cs.eq_ignore_ascii_case(charset) => {
                    buf.extend_from_slice(&bytes);
                }
                _ => {
                    if let Some((cs, buf)) = pending.take() {
                        out.push_str(&decode_charset(Some(&cs), &buf));
                    }
                    if !adjacent {
                        out.push_str(&text_8bit(between));
                    }
                    pending = Some((charset.to_vec(), bytes));
                }
            }
            i = end;
            plain_start = end;
            continue;
        }
        i += 1;
    }
    if let Some((cs, buf)) = pending.take() {
        out.push_str(&decode_charset(Some(&cs), &buf));
    }
    out.push_str(&text_8bit(&s[plain_start..]));
    out
}

/// An RFC 5322 date-time (§3.3, with the obsolete forms of §4.3: two- and
/// three-digit years, named zones, no seconds), read leniently: comments
/// and the day of the week are skipped, a missing time is midnight and a
/// missing or unknown zone is UTC. `None` when no valid date is there.
pub fn parse_date(value: &[u8]) -> Option<DateTime> {
    let s = unfold(value);
    // comments out, commas as white space
    let mut clean = Vec::with_capacity(s.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for &b in &s {
        if depth > 0 {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'(' {
                depth += 1;
            } else if b == b')' {
                depth -= 1;
            }
            continue;
        }
        match b {
            b'(' => {
                depth = 1;
                clean.push(b' ');
            }
            b',' => clean.push(b' '),
            _ => clean.push(b),
        }
    }
    let tokens: Vec<&[u8]> = clean
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    let mut t = tokens.as_slice();
    // the day of the week (no day name starts like a month name)
    if let [first, rest @ ..] = t
        && first.iter().all(u8::is_ascii_alphabetic)
        && month(first).is_none()
    {
        t = rest;
    }
    // RFC 5322 `day month year [time [zone]]`, or asctime's `month day
    // time year [zone]` (as some old software writes it)
    let (day, month, year_tok, time, zone_tok) = match t {
        [m, d, time, y, rest @ ..] if month(m).is_some() && time.contains(&b':') => {
            (d, month(m)?, *y, Some(*time), rest.first())
        }
        [d, m, y, rest @ ..] => (d, month(m)?, *y, rest.first().copied(), rest.get(1)),
        _ => return None,
    };
    let day = number(day)?;
    let mut year = number(year_tok)?;
    if year_tok.len() <= 2 {
        // RFC 5322 §4.3
        year += if year < 50 { 2000 } else { 1900 };
    } else if year_tok.len() == 3 {
        year += 1900;
    }
    let date = Date::new(u16::try_from(year).ok()?, month, u8::try_from(day).ok()?)?;
    let (mut hour, mut minute, mut second, mut zone) = (0, 0, 0, 0i16);
    if let Some(time) = time {
        let mut parts = time.split(|&b| b == b':');
        let h = number(parts.next()?)?;
        let m = number(parts.next()?)?;
        let sec = match parts.next() {
            Some(p) => number(p)?,
            None => 0,
        };
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        (hour, minute, second) = (h as u8, m as u8, sec as u8);
        if let Some(z) = zone_tok {
            zone = parse_zone(z).unwrap_or(0);
        }
    }
    Some(DateTime {
        date,
        hour,
        minute,
        second,
        zone,
    })
}

fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

fn month(s: &[u8]) -> Option<u8> {
    const MONTHS: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let head = s.get(..3)?;
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(head))
        .map(|i| i as u8 + 1)
}

/// `+hhmm`, `-hhmm`, or a zone name of RFC 5322 §4.3 (military zones
/// and unknown names are UTC, as §4.3 says).
fn parse_zone(z: &[u8]) -> Option<i16> {
    if let [sign @ (b'+' | b'-'), digits @ ..] = z {
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = |i: usize| i16::from(digits[i] - b'0');
        let (h, m) = (v(0) * 10 + v(1), v(2) * 10 + v(3));
        if m > 59 {
            return None;
        }
        let minutes = h * 60 + m;
        return Some(if *sign == b'-' { -minutes } else { minutes });
    }
    let upper = z.to_ascii_uppercase();
    Some(match upper.as_slice() {
        b"EDT" => -4 * 60,
        b"EST" | b"CDT" => -5 * 60,
        b"CST" | b"MDT" => -6 * 60,
        b"MST" | b"PDT" => -7 * 60,
        b"PST" => -8 * 60,
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::{CommandKind, ParseOptions, SearchCommand, parse_wire};
    use proptest::prelude::*;

    /// The key of `SEARCH <keys>`.
    fn key(keys: &str) -> SearchKey {
        let wire = format!("a SEARCH {keys}");
        match parse_wire(wire.as_bytes(), &ParseOptions::default()) {
            Ok(c) => match c.kind {
                CommandKind::Search(SearchCommand { key, .. }) => key,
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{keys}: {e:?}"),
        }
    }

    const SIMPLE: &str = "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r
To: \"Keith Moore\" <moore@cs.utk.edu>, friends: a@b.example, d@e.example;\r
Cc: =?UTF-8?B?5pel5pys6Kqe?= <jp@example.jp>\r
Bcc: hidden@example.org\r
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r
 =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\r
Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r
Message-ID: <B27397-0100000@cac.washington.edu>\r
X-Custom: Hello\r
 World\r
X-Empty:\r
MIME-Version: 1.0\r
Content-Type: text/plain; charset=iso-8859-1\r
Content-Transfer-Encoding: quoted-printable\r
\r
Caf=E9 cr=E8me, soft=\r
 break here.\r
";

    const MULTIPART: &str = "From: Bob <bob@example.com>
To: alice@example.com
Subject: Re: [list] =?utf-8?q?caf=C3=A9?= report
Date: Tue, 1 Mar 2022 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

preamble mentions preamblword
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

w5xiZXJncsO2w59lIGF1cyBLw7ZsbgpzZWNvbmQgbGluZQ==
--outer
Content-Type: text/html; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

<p>Price: 5=80 only</p>
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

c2VjcmV0d29yZA==
--outer
Content-Type: message/rfc822

From: inner@example.net
Subject: Inner subject

inner body text
--outer--
epilogue mentions epilogword
";

    fn cand(raw: &str) -> Candidate<'_> {
        Candidate {
            seq: 1,
            uid: 10,
            flags: &[],
            recent: false,
            internal_date: 0,
            size: raw.len() as u64,
            modseq: 1,
            raw: Some(raw.as_bytes()),
        }
    }

    fn cx() -> Context<'static> {
        Context {
            max_seq: 5,
            max_uid: 50,
            saved: None,
            now: 0,
            tz_offset: 0,
        }
    }

    #[track_caller]
    fn check(m: &Candidate<'_>, keys: &str, want: bool) {
        let k = key(keys);
        assert_eq!(matches(&k, m, &cx()), want, "{keys}");
        // what `needs` asks for is enough
        let partial = match needs(&k) {
            Needs::Nothing => None,
            Needs::Header => m.raw.map(|r| &r[..header_len(r)]),
            Needs::Full => m.raw,
        };
        let m2 = Candidate { raw: partial, ..*m };
        assert_eq!(matches(&k, &m2, &cx()), want, "{keys} with {:?}", needs(&k));
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_header(
                b"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="
            ),
            "If you can read this you understand the example."
        );
        // RFC 2047 §8's examples
        assert_eq!(decode_header(b"(=?ISO-8859-1?Q?a?=)"), "(a)");
        assert_eq!(decode_header(b"(=?ISO-8859-1?Q?a?= b)"), "(a b)");
        assert_eq!(
            decode_header(b"(=?ISO-8859-1?Q?a?=  \r\n   =?ISO-8859-1?Q?b?=)"),
            "(ab)"
        );
        assert_eq!(decode_header(b"(=?ISO-8859-1?Q?a_b?=)"), "(a b)");
        assert_eq!(
            decode_header(b"=?US-ASCII*EN?Q?Keith_Moore?="),
            "Keith Moore"
        );
        // a character split over two words of one charset
        assert_eq!(decode_header(b"=?utf-8?q?caf=C3?= =?utf-8?q?=A9?="), "café");
        // not encoded words: kept as written
        assert_eq!(decode_header(b"=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
        assert_eq!(decode_header(b"a =?utf-8?q?b c?="), "a =?utf-8?q?b c?=");
        assert_eq!(decode_header(b"=?"), "=?");
        // a header full of `=?` that never closes stays linear and intact
        let long = "=?a?q?aaaa".repeat(20_000);
        assert_eq!(decode_header(long.as_bytes()), long);
        // 8-bit bytes: UTF-8, or windows-1252 when not valid UTF-8
        assert_eq!(decode_header("Grüße".as_bytes()), "Grüße");
        assert_eq!(decode_header(b"Gr\xfc\xdfe \x80"), "Grüße €");
        assert_eq!(decode_header(b"=?koi8-r?b?8NLJ18XU?="), "Привет");
        assert_eq!(decode_header(b"=?bogus?q?=FF?="), "\u{fffd}");
    }

    #[test]
    fn transfer_encodings_and_charsets() {
        assert_eq!(base64_lenient(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(base64_lenient(b"aGVsbG8"), b"hello");
        assert_eq!(base64_lenient(b"aGV s*bG8!"), b"hello");
        assert_eq!(base64_lenient(b"aGU=bGxv"), b"hello");
        assert_eq!(
            qp_lenient(b"a=3Db=\r\nc=\nd= \r\ne=zz", false),
            b"a=bcde=zz"
        );
        assert_eq!(decode_cte(Some(b"BASE64"), b"Zm9v"), b"foo");
        assert_eq!(decode_cte(Some(b"7bit"), b"Zm9v"), b"Zm9v");
        assert_eq!(decode_charset(Some(b"iso-8859-1"), b"caf\xe9"), "café");
        assert_eq!(
            decode_charset(Some(b"\"UTF-8\""), "café".as_bytes()),
            "café"
        );
        assert_eq!(decode_charset(Some(b"us-ascii"), b"caf\xe9"), "café");
        assert_eq!(
            decode_charset(Some(b"x-unknown"), b"caf\xe9"),
            "caf\u{fffd}"
        );
        assert_eq!(decode_charset(Some(b"windows-1252"), b"5\x80"), "5€");
        // charsets that are not ASCII-compatible
        assert_eq!(decode_charset(Some(b"UTF-16LE"), b"h\0i\0"), "hi");
        assert_eq!(decode_charset(Some(b"utf-7"), b"caf+AOk-"), "café");
        assert_eq!(decode_header(b"=?utf-7?q?caf+AOk-?="), "café");
    }

    #[test]
    fn header_keys() {
        let m = cand(SIMPLE);
        check(&m, "FROM andré", true);
        check(&m, "FROM \"ANDRÉ PIRARD\"", true);
        check(&m, "FROM pirard@vm1", true);
        check(&m, "FROM \"Pirard <PIRARD@\"", true);
        check(&m, "FROM moore", false);
        check(&m, "TO \"keith moore\"", true);
        check(&m, "TO d@e.example", true);
        check(&m, "TO friends", true);
        check(&m, "CC 日本語", true);
        check(&m, "CC JP@EXAMPLE", true);
        check(&m, "BCC hidden", true);
        check(&m, "BCC pirard", false);
        check(&m, "SUBJECT \"you understand\"", true);
        check(&m, "SUBJECT SWYgeW91", false);
        check(&m, "SUBJECT \"\"", true);
        check(&m, "HEADER X-Custom \"hello world\"", true);
        check(&m, "HEADER x-custom hello", true);
        check(&m, "HEADER X-Custom bye", false);
        check(&m, "HEADER X-Empty \"\"", true);
        check(&m, "HEADER X-Missing \"\"", false);
        check(&m, "HEADER Message-ID B27397", true);
        check(&m, "HEADER From andré", true);
        check(&m, "HEADER SUBJECT example.", true);
        // a header key does not look into the body
        check(&m, "SUBJECT café", false);
    }

    #[test]
    fn body_and_text() {
        let m = cand(SIMPLE);
        check(&m, "BODY \"CAFÉ CRÈME\"", true);
        check(&m, "BODY \"soft break here\"", true);
        check(&m, "BODY Caf=E9", false);
        check(&m, "BODY pirard", false);
        check(&m, "TEXT pirard", true);
        check(&m, "TEXT crème", true);
        check(&m, "TEXT \"x-custom: hello world\"", true);
        check(&m, "TEXT nowhere", false);
        check(&m, "BODY \"\"", true);
        check(&m, "TEXT \"\"", true);

        let m = cand(MULTIPART);
        check(&m, "BODY übergröße", true);
        check(&m, "BODY KÖLN", true);
        check(&m, "BODY \"second line\"", true);
        check(&m, "BODY 5€", true);
        check(&m, "BODY secretword", false);
        check(&m, "BODY \"inner subject\"", true);
        check(&m, "BODY \"inner body\"", true);
        check(&m, "BODY preamblword", false);
        check(&m, "BODY epilogword", false);
        check(&m, "SUBJECT \"[list] café\"", true);
        check(&m, "SUBJECT inner", false);
        check(&m, "TEXT \"inner subject\"", true);
        check(&m, "FROM bob", true);
        check(&m, "FROM inner", false);

        // a multipart whose boundary never comes is searched as text
        let m = cand("Content-Type: multipart/mixed; boundary=zz\n\nplain words\n");
        check(&m, "BODY \"plain words\"", true);
    }

    #[test]
    fn damaged_messages() {
        // LF only, no empty line: all header; 8-bit latin-1 subject
        let raw = "Subject: Gr\u{fc}\u{df}e\nFrom: broken <<<@@\n";
        let m = cand(raw);
        check(&m, "SUBJECT grüße", true);
        check(&m, "FROM broken", true);
        check(&m, "BODY grüße", false);
        let raw = b"Subject: caf\xe9\n\nbody \xe9t\xe9\n";
        let m = Candidate {
            raw: Some(raw),
            ..cand("")
        };
        check(&m, "SUBJECT café", true);
        check(&m, "BODY été", true);
        // no raw message where one was needed: nothing but "" matches
        let m = Candidate {
            raw: None,
            ..cand("")
        };
        assert!(!matches(&key("SUBJECT x"), &m, &cx()));
        assert!(matches(&key("SUBJECT \"\""), &m, &cx()));
        assert!(!matches(&key("HEADER subject \"\""), &m, &cx()));
    }

    #[test]
    fn flags() {
        let flags = [
            Flag::Seen,
            Flag::Flagged,
            Flag::Keyword("$Forwarded".into()),
        ];
        let m = Candidate {
            flags: &flags,
            ..cand("")
        };
        for (k, want) in [
            ("SEEN", true),
            ("UNSEEN", false),
            ("FLAGGED", true),
            ("UNFLAGGED", false),
            ("ANSWERED", false),
            ("UNANSWERED", true),
            ("DELETED", false),
            ("UNDELETED", true),
            ("DRAFT", false),
            ("UNDRAFT", true),
            ("KEYWORD $forwarded", true),
            ("KEYWORD $FORWARDED", true),
            ("UNKEYWORD $Forwarded", false),
            ("KEYWORD $Junk", false),
            ("UNKEYWORD $Junk", true),
            ("RECENT", false),
            ("OLD", true),
            ("NEW", false),
        ] {
            check(&m, k, want);
        }
        let recent = Candidate {
            recent: true,
            ..cand("")
        };
        check(&recent, "NEW", true);
        check(&recent, "RECENT", true);
        check(&recent, "OLD", false);
        let seen_recent = Candidate { recent: true, ..m };
        check(&seen_recent, "NEW", false);
    }

    #[test]
    fn sizes_numbers_and_modseq() {
        let m = Candidate {
            size: 100,
            seq: 3,
            uid: 30,
            modseq: 7,
            ..cand("")
        };
        check(&m, "LARGER 99", true);
        check(&m, "LARGER 100", false);
        check(&m, "SMALLER 101", true);
        check(&m, "SMALLER 100", false);
        check(&m, "MODSEQ 7", true);
        check(&m, "MODSEQ 8", false);
        check(&m, "MODSEQ \"/flags/\\\\draft\" all 6", true);
        check(&m, "3", true);
        check(&m, "1:2,4:*", false);
        check(&m, "5:3", true);
        check(&m, "*", false);
        check(&m, "UID 30", true);
        check(&m, "UID 1:29,31:*", false);
        check(&m, "UID 40:*", false);
        check(&m, "UID *:25", true);
        let last = Candidate {
            seq: 5,
            uid: 50,
            ..cand("")
        };
        check(&last, "*", true);
        check(&last, "UID 60:*", true);
        // `$`: the saved UIDs, in UID and sequence context
        let saved = [10, 30, 45];
        let cx = Context {
            saved: Some(&saved),
            ..cx()
        };
        assert!(matches(&key("$"), &m, &cx));
        assert!(matches(&key("UID $"), &m, &cx));
        assert!(!matches(&key("UID $"), &last, &cx));
        assert!(!matches(&key("$"), &m, &super::tests::cx()));
    }

    #[test]
    fn dates() {
        let sent = parse_date(b"Mon, 7 Feb 1994 21:52:25 -0800 (PST)").unwrap();
        assert_eq!(sent.date, Date::new(1994, 2, 7).unwrap());
        let t = sent.timestamp();
        let m = Candidate {
            internal_date: t,
            ..cand(SIMPLE)
        };
        let at = |tz: i32| Context {
            tz_offset: tz,
            ..cx()
        };
        let pst = at(-8 * 3600);
        let utc = at(0);
        // the internal date is 8-Feb-1994 05:52:25 UTC
        assert!(matches(&key("ON 7-Feb-1994"), &m, &pst));
        assert!(!matches(&key("ON 7-Feb-1994"), &m, &utc));
        assert!(matches(&key("ON 8-Feb-1994"), &m, &utc));
        assert!(matches(&key("BEFORE 8-Feb-1994"), &m, &pst));
        assert!(!matches(&key("BEFORE 8-Feb-1994"), &m, &utc));
        assert!(matches(&key("SINCE 8-Feb-1994"), &m, &utc));
        assert!(!matches(&key("SINCE 9-Feb-1994"), &m, &utc));
        // the Date: field's own date, whatever the server's zone
        for cx in [&pst, &utc] {
            assert!(matches(&key("SENTON 7-Feb-1994"), &m, cx));
            assert!(matches(&key("SENTBEFORE 8-Feb-1994"), &m, cx));
            assert!(!matches(&key("SENTBEFORE 7-Feb-1994"), &m, cx));
            assert!(matches(&key("SENTSINCE 7-Feb-1994"), &m, cx));
            assert!(!matches(&key("SENTSINCE 8-Feb-1994"), &m, cx));
        }
        // no Date: the internal date's day in the server's zone
        let nodate = Candidate {
            internal_date: t,
            ..cand("Subject: x\r\n\r\n")
        };
        assert!(matches(&key("SENTON 8-Feb-1994"), &nodate, &utc));
        assert!(matches(&key("SENTON 7-Feb-1994"), &nodate, &pst));
        let bad = Candidate {
            internal_date: t,
            ..cand("Date: yesterday\r\n\r\n")
        };
        assert!(matches(&key("SENTON 8-Feb-1994"), &bad, &utc));
        // OLDER / YOUNGER
        let cx = Context {
            now: t + 100,
            ..utc
        };
        assert!(!matches(&key("OLDER 100"), &m, &cx));
        assert!(matches(&key("YOUNGER 100"), &m, &cx));
        assert!(matches(&key("OLDER 99"), &m, &cx));
        assert!(!matches(&key("YOUNGER 99"), &m, &cx));
    }

    #[test]
    fn date_parsing() {
        let p = |s: &str| parse_date(s.as_bytes()).map(|d| (d.to_string(), d.timestamp()));
        assert_eq!(
            p("Tue, 1 Mar 2022 10:00:00 +0000").unwrap().0,
            "01-Mar-2022 10:00:00 +0000"
        );
        assert_eq!(
            p("1 Mar 22 10:00 EST").unwrap().0,
            "01-Mar-2022 10:00:00 -0500"
        );
        assert_eq!(
            p("1 Mar 99 10:00:01 GMT").unwrap().0,
            "01-Mar-1999 10:00:01 +0000"
        );
        assert_eq!(
            p("1 Mar 103 10:00:01 Z").unwrap().0,
            "01-Mar-2003 10:00:01 +0000"
        );
        assert_eq!(
            p("Thu,\r\n 13 Feb 1969 23:32:54 -0330 (Newfoundland Time)")
                .unwrap()
                .0,
            "13-Feb-1969 23:32:54 -0330"
        );
        assert_eq!(
            p("13 February 1969").unwrap().0,
            "13-Feb-1969 00:00:00 +0000"
        );
        assert_eq!(
            p("Wed Dec  2 18:35:19 2026").unwrap().0,
            "02-Dec-2026 18:35:19 +0000"
        );
        assert_eq!(
            p("Dec 2 18:35:19 2026 -0100").unwrap().0,
            "02-Dec-2026 18:35:19 -0100"
        );
        assert_eq!(
            p("Monday, 02 Dec 2026").unwrap().0,
            "02-Dec-2026 00:00:00 +0000"
        );
        assert_eq!(p("31 Feb 2020 10:00:00 +0000"), None);
        assert_eq!(p("1 Mar 2022 25:00:00 +0000"), None);
        assert_eq!(p("garbage"), None);
        assert_eq!(p(""), None);
        assert_eq!(
            p("Tue, 1 Mar 2022 10:00:00 +0100").unwrap().1 + 3600,
            p("Tue, 1 Mar 2022 10:00:00 +0000").unwrap().1
        );
    }

    #[test]
    fn not_or_and() {
        let flags = [Flag::Seen];
        let m = Candidate {
            flags: &flags,
            size: 100,
            ..cand(SIMPLE)
        };
        check(&m, "NOT SEEN", false);
        check(&m, "NOT NOT SEEN", true);
        check(&m, "OR DELETED SEEN", true);
        check(&m, "OR DELETED DRAFT", false);
        check(&m, "OR DELETED (SEEN LARGER 200)", false);
        check(&m, "OR DELETED (SEEN LARGER 50)", true);
        check(&m, "NOT OR DELETED NOT SEEN", true);
        check(&m, "SEEN FROM pirard NOT BODY crème", false);
        check(&m, "SEEN FROM pirard NOT BODY absent", true);
        check(&m, "OR (FROM nobody) (OR TO nobody BODY crème)", true);
        check(&m, "ALL", true);
    }

    #[test]
    fn what_keys_need() {
        assert_eq!(needs(&key("SEEN LARGER 5 UID 1:*")), Needs::Nothing);
        assert_eq!(needs(&key("SEEN FROM x")), Needs::Header);
        assert_eq!(needs(&key("SENTON 1-Jan-2000")), Needs::Header);
        assert_eq!(needs(&key("HEADER X-Y \"\"")), Needs::Header);
        assert_eq!(needs(&key("OR SEEN NOT BODY x")), Needs::Full);
        assert_eq!(needs(&key("(FROM x (TEXT y))")), Needs::Full);
        assert_eq!(needs(&key("BODY \"\" SUBJECT \"\"")), Needs::Nothing);
    }

    fn any_key() -> impl Strategy<Value = SearchKey> {
        let text = "[a-zA-Z0-9 é=?_]{0,6}";
        let leaf = prop_oneof![
            text.prop_map(SearchKey::From),
            text.prop_map(SearchKey::To),
            text.prop_map(SearchKey::Subject),
            text.prop_map(SearchKey::Body),
            text.prop_map(SearchKey::Text),
            (text, text).prop_map(|(a, b)| SearchKey::Header(a, b)),
            Just(SearchKey::SentOn(Date::new(2020, 1, 1).unwrap())),
            Just(SearchKey::Seen),
            any::<u32>().prop_map(SearchKey::Older),
        ];
        leaf.prop_recursive(4, 16, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
                proptest::collection::vec(inner, 0..3).prop_map(SearchKey::And),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..400), k in any_key(),
                        now in any::<i64>(), date in any::<i64>(), tz in any::<i32>()) {
            let m = Candidate { raw: Some(&raw), internal_date: date, ..cand("") };
            let cx = Context { now, tz_offset: tz, ..cx() };
            let a = matches(&k, &m, &cx);
            // NOT is the complement
            prop_assert_eq!(matches(&SearchKey::Not(Box::new(k.clone())), &m, &cx), !a);
        }

        #[test]
        fn mime_like_input_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("Content-Type: multipart/mixed; boundary=b\n".to_string()),
                    Just("Content-Transfer-Encoding: base64\n".to_string()),
                    Just("Content-Transfer-Encoding: quoted-printable\n".to_string()),
                    Just("Content-Type: message/rfc822\n".to_string()),
                    Just("Content-Type: text/plain; charset=utf-16\n".to_string()),
                    Just("Subject: =?utf-8?b?w6k=?= =?utf-7?q?+AOk-?=\n".to_string()),
                    Just("\n".to_string()),
                    Just("--b\n".to_string()),
                    Just("--b--\n".to_string()),
                    Just("=E9=\n".to_string()),
                    "[a-z=?]{0,12}\n",
                ],
                0..30,
            ),
            needle in "[a-z]{0,3}",
        ) {
            let raw = parts.concat();
            let m = cand(&raw);
            for k in [SearchKey::Body(needle.clone()), SearchKey::Text(needle.clone()),
                      SearchKey::Subject(needle.clone())] {
                let _ = matches(&k, &m, &cx());
            }
        }
    }
}
