//! FETCH data items of one message (RFC 3501 §6.4.5, RFC 3516 BINARY,
//! RFC 7162 MODSEQ), from the index's record, the cached structure and,
//! when an item needs it, the message file.
//!
//! ENVELOPE, BODY and BODYSTRUCTURE are computed once per message and
//! kept in the index's cache (see [`Structure`]), so listing a folder
//! does not open its message files again.

use std::io;
use std::sync::{Arc, mpsc};

use chrono::TimeZone;
use ironpost_proto::imap::response::FetchResponse;
use ironpost_proto::imap::{DateTime, FetchAttr, Flag, Section, SectionText};
use ironpost_proto::mime;

use super::mailbox::{Folder, State};
use super::store::Store;
use crate::store::Message;
use crate::store::index::Sub;

/// ENVELOPE, BODY and BODYSTRUCTURE of a message, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub bodystructure: Vec<u8>,
}

impl Structure {
    pub fn of(raw: &[u8]) -> Structure {
        let msg = mime::Message::parse(raw);
        Structure {
            envelope: mime::envelope(raw),
            body: mime::body(&msg, false),
            bodystructure: mime::body(&msg, true),
        }
    }

    /// The cache blob: three length-prefixed parts.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            12 + self.envelope.len() + self.body.len() + self.bodystructure.len(),
        );
        for part in [&self.envelope, &self.body, &self.bodystructure] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    pub fn decode(blob: &[u8]) -> Option<Structure> {
        let mut at = 0;
        let mut part = || -> Option<Vec<u8>> {
            let len = u32::from_le_bytes(blob.get(at..at + 4)?.try_into().ok()?) as usize;
            let v = blob.get(at + 4..at + 4 + len)?.to_vec();
            at += 4 + len;
            Some(v)
        };
        let s = Structure {
            envelope: part()?,
            body: part()?,
            bodystructure: part()?,
        };
        Some(s)
    }
}

/// Whether any item needs the message's bytes (beyond the structure).
pub fn needs_content(items: &[FetchAttr]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Header
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { .. }
                | FetchAttr::Binary { .. }
                | FetchAttr::BinarySize { .. }
        )
    })
}

/// Whether any item needs the structure.
pub fn needs_structure(items: &[FetchAttr]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure
        )
    })
}

/// The counters of imap_logout_format.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub hdr_count: u64,
    pub hdr_bytes: u64,
    pub body_count: u64,
    pub body_bytes: u64,
}

/// What FETCH knows of one message.
pub struct Item<'a> {
    pub seq: u32,
    pub uid: u32,
    pub flags: &'a [Flag],
    pub recent: bool,
    pub internal_date: std::time::SystemTime,
    pub wire_size: u64,
    pub modseq: u64,
    pub structure: Option<&'a Structure>,
    pub raw: Option<&'a [u8]>,
}

/// A BINARY item failed: the tagged NO's code and text.
pub type BinaryFailure = mime::BinaryError;

/// INTERNALDATE in the server's time zone.
pub fn imap_date(t: std::time::SystemTime) -> DateTime {
    let secs = super::mailbox::unix_seconds(t);
    DateTime::from_timestamp(secs, zone_minutes(secs))
}

/// The server's offset from UTC at `secs`, in minutes.
pub fn zone_minutes(secs: i64) -> i16 {
    chrono::Local
        .timestamp_opt(secs, 0)
        .single()
        .map(|d| (d.offset().local_minus_utc() / 60) as i16)
        .unwrap_or(0)
}

fn mime_section(s: &Section) -> mime::Section {
    mime::Section {
        part: s.part.clone(),
        text: s.text.as_ref().map(|t| match t {
            SectionText::Header => mime::SectionText::Header,
            SectionText::Text => mime::SectionText::Text,
            SectionText::Mime => mime::SectionText::Mime,
            SectionText::HeaderFields { not: false, fields } => mime::SectionText::HeaderFields(
                fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
            ),
            SectionText::HeaderFields { not: true, fields } => mime::SectionText::HeaderFieldsNot(
                fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
            ),
        }),
    }
}

/// The FETCH response of one message; `uid` adds UID when the client did
/// not ask (UID FETCH). Errors of BINARY items are returned, the rest of
/// the response is still built.
#[cfg(test)]
pub fn respond(
    items: &[FetchAttr],
    m: &Item<'_>,
    uid: bool,
    modseq: bool,
    utf8: bool,
    stats: &mut Stats,
) -> (Vec<u8>, Option<BinaryFailure>) {
    let mut out = Vec::new();
    let failure = respond_into(&mut out, items, m, uid, modseq, utf8, stats);
    (out, failure)
}

/// [`respond`], the line appended to `out`.
pub fn respond_into(
    out: &mut Vec<u8>,
    items: &[FetchAttr],
    m: &Item<'_>,
    uid: bool,
    modseq: bool,
    utf8: bool,
    stats: &mut Stats,
) -> Option<BinaryFailure> {
    let mut r = FetchResponse::continuing(std::mem::take(out), m.seq).utf8(utf8);
    let mut failure = None;
    if uid && !items.contains(&FetchAttr::Uid) {
        r.uid(m.uid);
    }
    // Parsed only for the items that need the MIME structure.
    let parsed_cell: std::cell::OnceCell<Option<mime::Message<'_>>> = std::cell::OnceCell::new();
    let parsed = || {
        parsed_cell
            .get_or_init(|| m.raw.map(mime::Message::parse))
            .as_ref()
    };
    let mut body_counted = false;
    let mut hdr_counted = false;
    for item in items {
        match item {
            FetchAttr::Uid => {
                r.uid(m.uid);
            }
            FetchAttr::Flags => {
                let mut flags = m.flags.to_vec();
                if m.recent {
                    flags.push(Flag::Recent);
                }
                r.flags(&flags);
            }
            FetchAttr::InternalDate => {
                r.internal_date(&imap_date(m.internal_date));
            }
            FetchAttr::Rfc822Size => {
                r.rfc822_size(m.wire_size);
            }
            FetchAttr::ModSeq => {
                r.modseq(m.modseq);
            }
            FetchAttr::Envelope => {
                if let Some(s) = m.structure {
                    r.envelope(&s.envelope);
                }
            }
            FetchAttr::Body => {
                if let Some(s) = m.structure {
                    r.body(&s.body);
                }
            }
            FetchAttr::BodyStructure => {
                if let Some(s) = m.structure {
                    r.body_structure(&s.bodystructure);
                }
            }
            FetchAttr::Rfc822 => {
                let Some(raw) = m.raw else { continue };
                // Converted in one pass, the index's size as the guess.
                let len = r.rfc822_with(m.wire_size as usize, |out| crlf_into(out, raw));
                count(stats, item, len, &mut hdr_counted, &mut body_counted);
            }
            FetchAttr::BodySection {
                section: Section { part, text: None },
                partial,
                ..
            } if part.is_empty() => {
                // The whole message: no MIME parsing needed.
                let Some(raw) = m.raw else { continue };
                match partial {
                    Some(p) => {
                        let whole = crlf(raw);
                        let start = (p.offset as usize).min(whole.len());
                        let end = start.saturating_add(p.length as usize).min(whole.len());
                        let data = &whole[start..end];
                        count(stats, item, data.len(), &mut hdr_counted, &mut body_counted);
                        r.body_section(&Section::default(), Some(p.offset), Some(data));
                    }
                    None => {
                        // Converted straight into the response, in one
                        // pass: the index's size is the literal's length
                        // unless the file says otherwise.
                        let len = r.body_section_with(
                            &Section::default(),
                            None,
                            m.wire_size as usize,
                            |out| crlf_into(out, raw),
                        );
                        count(stats, item, len, &mut hdr_counted, &mut body_counted);
                    }
                }
            }
            FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                let Some(msg) = parsed() else { continue };
                let (name, text) = match item {
                    FetchAttr::Rfc822Header => ("RFC822.HEADER", Some(mime::SectionText::Header)),
                    _ => ("RFC822.TEXT", Some(mime::SectionText::Text)),
                };
                let data = mime::body_section(
                    msg,
                    &mime::Section {
                        part: Vec::new(),
                        text,
                    },
                    None,
                );
                count(stats, item, data.len(), &mut hdr_counted, &mut body_counted);
                r.rfc822(name, &data);
            }
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                let Some(msg) = parsed() else { continue };
                let p = partial.map(|p| mime::Partial {
                    start: p.offset,
                    count: p.length,
                });
                let data = mime::body_section(msg, &mime_section(section), p);
                count(stats, item, data.len(), &mut hdr_counted, &mut body_counted);
                r.body_section(section, partial.map(|p| p.offset), Some(&data));
            }
            FetchAttr::Binary { part, partial, .. } => {
                let Some(msg) = parsed() else { continue };
                let p = partial.map(|p| mime::Partial {
                    start: p.offset,
                    count: p.length,
                });
                match mime::binary_section(msg, part, false, p) {
                    Ok(b) => {
                        count(
                            stats,
                            item,
                            b.data.len(),
                            &mut hdr_counted,
                            &mut body_counted,
                        );
                        r.binary(part, partial.map(|p| p.offset), Some(&b.data));
                    }
                    Err(e) => failure = Some(e),
                }
            }
            FetchAttr::BinarySize { part } => {
                let Some(msg) = parsed() else { continue };
                match mime::binary_size(msg, part, false) {
                    Ok(n) => {
                        r.binary_size(part, n);
                    }
                    Err(e) => failure = Some(e),
                }
            }
        }
    }
    if modseq && !items.contains(&FetchAttr::ModSeq) {
        r.modseq(m.modseq);
    }
    *out = r.finish();
    failure
}

/// FETCH of the bodies of at least this many messages reads them ahead.
pub const READ_AHEAD_MIN: usize = 8;
/// Messages larger than this are not read ahead (the session reads them
/// when their turn comes).
const READ_AHEAD_MAX: u64 = 1 << 20;
/// The reader hands over messages in batches of about this many octets
/// (or [`BATCH_COUNT`] messages), at most [`BATCH_QUEUE`] batches ahead:
/// one wake-up per batch, not per message.
const BATCH_BYTES: usize = 256 * 1024;
const BATCH_COUNT: usize = 64;
const BATCH_QUEUE: usize = 4;

/// The index is looked up for this many messages at a time, under the
/// folder's lock.
const LOOKUP_COUNT: usize = 64;

type Read = Option<io::Result<Vec<u8>>>;

/// What the reader is to read for one message.
enum Plan {
    /// A Maildir file, by the name the index has.
    File {
        in_cur: bool,
        name: String,
        size: u64,
    },
    /// A message of another store.
    Message(Message),
}

/// The message files of one FETCH (or SEARCH), read in order on a thread
/// of their own while the session's thread builds and sends the responses
/// or matches the messages (open, read and close cost as much as the rest
/// together). The thread looks
/// the messages up in the folder's index itself, a few at a time, so
/// that the session starts sending after the first few, not after a walk
/// through all of them. It stops when the session stops taking, at the
/// end of the command.
pub struct ReadAhead {
    rx: mpsc::Receiver<Vec<Read>>,
    batch: std::vec::IntoIter<Read>,
}

impl ReadAhead {
    /// Reads the messages of `uids` in that order; `None` when no thread
    /// could be started.
    pub fn start(folder: &Arc<Folder>, uids: Vec<u32>) -> Option<ReadAhead> {
        let (tx, rx) = mpsc::sync_channel(BATCH_QUEUE);
        let folder = Arc::clone(folder);
        std::thread::Builder::new()
            .name("imap-read-ahead".into())
            .spawn(move || {
                let mut reader = folder.store.reader();
                let mut batch = Vec::with_capacity(BATCH_COUNT);
                let mut bytes = 0;
                for group in uids.chunks(LOOKUP_COUNT) {
                    let plans: Vec<Option<Plan>> = {
                        let st = folder.lock();
                        group.iter().map(|&uid| plan(&folder, &st, uid)).collect()
                    };
                    // The group's files, read together.
                    let files: Vec<(bool, &str, u64)> = plans
                        .iter()
                        .filter_map(|p| match p {
                            Some(Plan::File { in_cur, name, size }) => {
                                Some((*in_cur, name.as_str(), *size))
                            }
                            _ => None,
                        })
                        .collect();
                    let mut files = match &mut reader {
                        Some(r) if !files.is_empty() => r.read_many(&files),
                        _ => Vec::new(),
                    }
                    .into_iter();
                    for p in &plans {
                        let data = match p {
                            Some(Plan::File { .. }) => files.next().flatten().map(Ok),
                            Some(Plan::Message(m)) => Some(folder.store.read(m)),
                            None => None,
                        };
                        bytes += data.as_ref().map_or(0, |d| d.as_ref().map_or(0, Vec::len));
                        batch.push(data);
                        if bytes >= BATCH_BYTES || batch.len() >= BATCH_COUNT {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BATCH_COUNT));
                            bytes = 0;
                            if tx.send(full).is_err() {
                                return;
                            }
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
            })
            .ok()?;
        Some(ReadAhead {
            rx,
            batch: Vec::new().into_iter(),
        })
    }

    /// The next message's bytes, in the order given; `None` when the
    /// caller is to read it itself (not where the index said, too big to
    /// read ahead, or the reader stopped).
    pub fn take(&mut self) -> Read {
        loop {
            if let Some(r) = self.batch.next() {
                return r;
            }
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// What to read for `uid`, as the index has it; `None`: nothing (the
/// session reads it itself, or finds it gone).
fn plan(folder: &Folder, st: &State, uid: u32) -> Option<Plan> {
    let r = st.index.get(uid)?;
    if r.size > READ_AHEAD_MAX {
        return None;
    }
    match &folder.store {
        Store::Maildir(_) => Some(Plan::File {
            in_cur: r.sub == Sub::Cur,
            name: r.name.clone(),
            size: r.size,
        }),
        Store::Mbox(_) => {
            let mut m = st.message(uid)?.clone();
            m.path = folder.path.join(r.rel_path());
            Some(Plan::Message(m))
        }
    }
}

/// The stored message (LF or CRLF line ends, mixed) with CRLF line ends,
/// as IMAP sends it.
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crlf_into(&mut out, raw);
    out
}

/// Appends [`crlf`] of `raw` to `out`.
pub fn crlf_into(out: &mut Vec<u8>, raw: &[u8]) {
    out.reserve(raw.len() + raw.len() / 32);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', raw) {
        if i > 0 && raw[i - 1] == b'\r' {
            continue;
        }
        out.extend_from_slice(&raw[start..i]);
        out.extend_from_slice(b"\r\n");
        start = i + 1;
    }
    out.extend_from_slice(&raw[start..]);
}

/// Dovecot's fetch counters: a header-only item counts as a header fetch,
/// anything else as a body fetch; once per message each.
fn count(stats: &mut Stats, item: &FetchAttr, len: usize, hdr: &mut bool, body: &mut bool) {
    let header_only = match item {
        FetchAttr::Rfc822Header => true,
        FetchAttr::BodySection { section, .. } => matches!(
            section.text,
            Some(SectionText::Header) | Some(SectionText::HeaderFields { .. })
        ),
        _ => false,
    };
    if header_only {
        if !*hdr {
            stats.hdr_count += 1;
            *hdr = true;
        }
        stats.hdr_bytes += len as u64;
    } else {
        if !*body {
            stats.body_count += 1;
            *body = true;
        }
        stats.body_bytes += len as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Tom <tom@example.test>\nTo: jerry@example.test\nSubject: hi\nDate: Mon, 7 Feb 1994 21:52:25 -0800\n\nhello\nworld\n";

    #[test]
    fn read_ahead_gives_every_message_in_order_moved_gone_or_big() {
        use crate::imapd::store::Store;
        use crate::store::Flags;
        let dir = tempfile::tempdir().unwrap();
        let folder =
            Folder::open(&dir.path().join("Maildir"), &dir.path().join("data"), true).unwrap();
        let Store::Maildir(md) = &folder.store else {
            panic!("a Maildir folder")
        };
        let body = |i: usize| format!("Subject: {i}\n\nmessage {i}\n").into_bytes();
        // Enough for several batches and index lookups.
        for i in 0..150 {
            md.append(&body(i), &Flags::default(), None).unwrap();
        }
        let big = [b"Subject: big\n\n".to_vec(), vec![b'x'; 1 << 21]].concat();
        md.append(&big, &Flags::default(), None).unwrap();
        drop(folder.sync().unwrap());
        let snap = md.snapshot().unwrap();
        // After the index was brought in step: another program gives one
        // message a flag (its file is renamed) and expunges one.
        let seen = Flags {
            seen: true,
            ..Flags::default()
        };
        md.set_flags(&snap.messages[3], &seen).unwrap();
        md.expunge(&[&snap.messages[7]]).unwrap();

        let mut uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
        // And one UID the index does not have.
        uids.insert(5, 1_000_000);
        let mut ahead = ReadAhead::start(&folder, uids).unwrap();
        for i in 0..150 {
            if i == 5 {
                assert!(ahead.take().is_none(), "nothing to read at {i}");
            }
            match ahead.take() {
                // Not where the index says: the session looks for it.
                None if i == 3 || i == 7 => {}
                Some(Ok(data)) if i != 3 && i != 7 => assert_eq!(data, body(i)),
                other => panic!("message {i}: {other:?}"),
            }
        }
        // Too big to hold ahead: the session reads it itself.
        assert!(ahead.take().is_none());
        // And then the reader has ended.
        assert!(ahead.take().is_none());
        // The session's own read follows the renamed file and finds the
        // expunged one gone.
        assert_eq!(folder.store.read(&snap.messages[3]).unwrap(), body(3));
        let gone = folder.store.read(&snap.messages[7]).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn crlf_converts_bare_lfs_only() {
        assert_eq!(crlf(b""), b"");
        assert_eq!(crlf(b"a"), b"a");
        assert_eq!(crlf(b"\n"), b"\r\n");
        assert_eq!(crlf(b"ab\ncd\r\nef\n\ngh"), b"ab\r\ncd\r\nef\r\n\r\ngh");
        // Lines of every length around the eight-byte steps.
        for n in 0..40 {
            let line = "x".repeat(n);
            let lf = format!("{line}\n{line}\r\n{line}");
            let want = format!("{line}\r\n{line}\r\n{line}");
            assert_eq!(crlf(lf.as_bytes()), want.as_bytes(), "{n}");
        }
        assert_eq!(crlf(b"a\r\r\nb\rc\n"), b"a\r\r\nb\rc\r\n");
    }

    #[test]
    fn structure_survives_the_cache_blob() {
        let s = Structure::of(MSG);
        assert!(
            s.envelope
                .starts_with(b"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"hi\"")
        );
        assert!(s.bodystructure.starts_with(b"(\"text\" \"plain\""));
        assert_eq!(Structure::decode(&s.encode()), Some(s));
        assert_eq!(Structure::decode(b"\x05\0\0\0ab"), None);
    }

    #[test]
    fn items_in_the_clients_order_with_literals_and_crlf() {
        let s = Structure::of(MSG);
        let flags = [Flag::Seen];
        let m = Item {
            seq: 3,
            uid: 42,
            flags: &flags,
            recent: true,
            internal_date: std::time::UNIX_EPOCH,
            wire_size: MSG.len() as u64 + 6,
            modseq: 7,
            structure: Some(&s),
            raw: Some(MSG),
        };
        let items = [
            FetchAttr::Flags,
            FetchAttr::Rfc822Size,
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::Text),
                },
                partial: None,
            },
        ];
        let mut stats = Stats::default();
        let (out, err) = respond(&items, &m, true, false, false, &mut stats);
        assert!(err.is_none());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "* 3 FETCH (UID 42 FLAGS (\\Seen \\Recent) RFC822.SIZE {} BODY[TEXT] {{14}}\r\nhello\r\nworld\r\n)\r\n",
                MSG.len() + 6
            )
        );
        assert_eq!((stats.body_count, stats.body_bytes), (1, 14));
    }

    #[test]
    fn whole_message_literals_count_what_was_sent() {
        let s = Structure::of(MSG);
        let wire = crlf(MSG).len();
        // The index's size is only the literal's first guess: a file that
        // changed behind the index (another length, another number of
        // digits) is still sent with its own length.
        for guess in [wire, wire - 1, wire + 1, 7, 123_456_789] {
            let m = Item {
                seq: 1,
                uid: 5,
                flags: &[],
                recent: false,
                internal_date: std::time::UNIX_EPOCH,
                wire_size: guess as u64,
                modseq: 1,
                structure: Some(&s),
                raw: Some(MSG),
            };
            let items = [
                FetchAttr::Rfc822,
                FetchAttr::BodySection {
                    peek: true,
                    section: Section::default(),
                    partial: None,
                },
            ];
            let mut stats = Stats::default();
            let (out, err) = respond(&items, &m, false, false, false, &mut stats);
            assert!(err.is_none());
            let body = String::from_utf8(crlf(MSG)).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("* 1 FETCH (RFC822 {{{wire}}}\r\n{body} BODY[] {{{wire}}}\r\n{body})\r\n"),
                "guess {guess}"
            );
            assert_eq!(stats.body_bytes, 2 * wire as u64);
        }
    }
}
