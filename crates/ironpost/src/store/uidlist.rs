//! The UID list file: which UID each message of a Maildir has, in the text
//! format of Dovecot's `dovecot-uidlist` (version 3; Dovecot's
//! documentation, "Maildir Mailbox Format", "IMAP UID mapping").
//!
//! ```text
//! 3 V1700000000 N4 G5d41402abc4b2a76b9719d911017c592
//! 1 :1700000000.M123456P4242Q1.mx.example,S=1355,W=1394
//! 3 W2481 S2424 :1700000321.hand-made
//! ```
//!
//! The header: the format version `3`, `V` the UIDVALIDITY, `N` the UID
//! the next new message gets, `G` the mailbox GUID (128 bits in hex);
//! other fields may follow and their order does not matter. Then one line
//! per message, in ascending UID order: the UID, optional extension fields
//! (`W` size with CRLF line ends, `S` stored size, each only when the file
//! name has no `,W=`/`,S=`; Dovecot also writes `G` message GUID, `M`
//! modseq, `P` POP3 UIDL, `O` POP3 order, kept here as they are), then
//! ` :` and the file name. Dovecot writes the last known file name,
//! flags included; only its base name (before `:2,`) identifies the
//! message, and that is what ironpost writes.
//!
//! Version 1 (Courier's `courierimapuiddb` layout, Dovecot 1.0:
//! `1 <uidvalidity> <nextuid>`, lines `<uid> <file name>`) is read too.

use std::fmt::Write as _;

use super::flags::base_name;

/// One message in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub uid: u32,
    /// The base name of the message's file.
    pub base: String,
    /// `W`: size with CRLF line ends, when the file name does not say.
    pub wire: Option<u64>,
    /// `S`: stored size, when the file name does not say.
    pub size: Option<u64>,
    /// Other extension fields (`G`, `M`, `P`, `O`, ...) as read.
    pub extra: Vec<String>,
}

impl Entry {
    pub fn new(uid: u32, base: &str) -> Entry {
        Entry {
            uid,
            base: base.to_string(),
            wire: None,
            size: None,
            extra: Vec::new(),
        }
    }

    /// Dovecot's `P` field: the POP3 UIDL a message had before (kept by
    /// migrations from Courier or another POP3 server).
    pub fn pop3_uidl(&self) -> Option<&str> {
        self.extra
            .iter()
            .find_map(|f| f.strip_prefix('P'))
            .filter(|u| !u.is_empty())
    }
}

/// The whole list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UidList {
    pub uidvalidity: u32,
    /// The UID the next new message gets; above every UID ever given.
    pub next_uid: u32,
    /// The mailbox GUID, 32 hex digits.
    pub guid: String,
    /// In ascending UID order.
    pub entries: Vec<Entry>,
}

/// Why a list cannot be read: the line (1 is the header) and the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt {
    pub line: usize,
    pub what: String,
    /// The UIDVALIDITY of a list whose header could be read, so that a
    /// rebuilt list gets a different one.
    pub uidvalidity: Option<u32>,
}

impl UidList {
    /// An empty list with a new GUID.
    pub fn new(uidvalidity: u32) -> UidList {
        UidList {
            uidvalidity,
            next_uid: 1,
            guid: new_guid(),
            entries: Vec::new(),
        }
    }

    /// Reads a list; any bad line makes the whole list corrupt.
    pub fn parse(text: &[u8]) -> Result<UidList, Corrupt> {
        parse(text, &mut None)
    }

    /// Reads a list, skipping bad message lines (returned); only a bad
    /// header is fatal. For another program's list, where keeping most
    /// UIDs beats renumbering everything: the skipped messages get new
    /// UIDs above `next_uid`, so no UID is given twice.
    pub fn parse_lenient(text: &[u8]) -> Result<(UidList, Vec<Corrupt>), Corrupt> {
        let mut skipped = Some(Vec::new());
        let list = parse(text, &mut skipped)?;
        Ok((list, skipped.unwrap_or_default()))
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.entries.len() * 64);
        let _ = writeln!(
            out,
            "3 V{} N{} G{}",
            self.uidvalidity, self.next_uid, self.guid
        );
        for e in &self.entries {
            let _ = write!(out, "{}", e.uid);
            if let Some(w) = e.wire {
                let _ = write!(out, " W{w}");
            }
            if let Some(s) = e.size {
                let _ = write!(out, " S{s}");
            }
            for f in &e.extra {
                let _ = write!(out, " {f}");
            }
            let _ = writeln!(out, " :{}", e.base);
        }
        out
    }
}

/// 128 random bits in hex (the mailbox GUID of the header).
fn new_guid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No random source: time and pid are unique enough for a label.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b[..8].copy_from_slice(&now.as_nanos().to_le_bytes()[..8]);
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn parse(text: &[u8], skipped: &mut Option<Vec<Corrupt>>) -> Result<UidList, Corrupt> {
    let mut lines = text.split(|&b| b == b'\n').enumerate();
    let bad = |line: usize, what: &str, uidvalidity: Option<u32>| Corrupt {
        line,
        what: what.to_string(),
        uidvalidity,
    };
    let header = match lines.next() {
        Some((_, h)) if !h.is_empty() => h,
        _ => return Err(bad(1, "empty file", None)),
    };
    let header = std::str::from_utf8(header).map_err(|_| bad(1, "header is not UTF-8", None))?;
    // Whatever else is wrong, a `V` field tells the UIDVALIDITY to stay
    // above.
    let loose_v = header
        .split(' ')
        .find_map(|f| f.strip_prefix('V')?.parse::<u32>().ok());
    let mut fields = header.split(' ').filter(|f| !f.is_empty());
    let version = fields.next().unwrap_or("");
    let (mut uidvalidity, mut next_uid, mut guid) = (None, None, None);
    match version {
        "3" => {
            for f in fields {
                let (key, value) = f.split_at(f.chars().next().map_or(0, char::len_utf8));
                match key {
                    "V" => uidvalidity = value.parse::<u32>().ok(),
                    "N" => next_uid = value.parse::<u32>().ok(),
                    "G" => guid = Some(value.to_string()),
                    _ => {}
                }
            }
        }
        "1" => {
            uidvalidity = fields.next().and_then(|v| v.parse::<u32>().ok());
            next_uid = fields.next().and_then(|v| v.parse::<u32>().ok());
        }
        _ => return Err(bad(1, "unknown version (not 1 or 3)", loose_v)),
    }
    let uidvalidity = match uidvalidity {
        Some(v) if v > 0 => v,
        _ => return Err(bad(1, "no UIDVALIDITY (V)", loose_v)),
    };
    let next_uid = match next_uid {
        Some(n) if n > 0 => n,
        _ => return Err(bad(1, "no next UID (N)", Some(uidvalidity))),
    };
    let guid = guid
        .filter(|g| g.len() == 32 && g.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(new_guid);

    let mut list = UidList {
        uidvalidity,
        next_uid,
        guid,
        entries: Vec::new(),
    };
    let mut bases = std::collections::HashSet::new();
    let total = text.split(|&b| b == b'\n').count();
    for (i, raw) in lines {
        let n = i + 1;
        // The last "line" is what follows the final LF: nothing.
        if raw.is_empty() && n == total {
            break;
        }
        let entry = std::str::from_utf8(raw)
            .map_err(|_| "not UTF-8")
            .and_then(|line| parse_entry(line, version))
            .and_then(|e| {
                if list.entries.last().is_some_and(|last| last.uid >= e.uid) {
                    Err("UID not above the line before")
                } else if bases.contains(&e.base) {
                    Err("file listed twice")
                } else {
                    Ok(e)
                }
            });
        match entry {
            Ok(e) => {
                bases.insert(e.base.clone());
                list.entries.push(e);
            }
            Err(what) => match skipped {
                Some(list) => list.push(bad(n, what, Some(uidvalidity))),
                None => return Err(bad(n, what, Some(uidvalidity))),
            },
        }
    }
    // A UID at or above N (hand edits, another program): the next new
    // one is still above every UID listed.
    if let Some(last) = list.entries.last() {
        match last.uid.checked_add(1) {
            Some(above) => list.next_uid = list.next_uid.max(above),
            None => list.next_uid = u32::MAX,
        }
    }
    Ok(list)
}

/// One message line (without its LF).
fn parse_entry(line: &str, version: &str) -> Result<Entry, &'static str> {
    let (uid, mut rest) = line.split_once(' ').ok_or("no file name")?;
    let uid: u32 = match uid.parse() {
        Ok(u) if u > 0 && uid.bytes().all(|b| b.is_ascii_digit()) => u,
        _ => return Err("bad UID"),
    };
    let mut entry = Entry::new(uid, "");
    let name = if version == "1" {
        rest
    } else {
        loop {
            rest = rest.trim_start_matches(' ');
            if let Some(name) = rest.strip_prefix(':') {
                break name;
            }
            if rest.is_empty() {
                return Err("no file name");
            }
            let (field, after) = rest.split_once(' ').unwrap_or((rest, ""));
            rest = after;
            let number = |v: &str| -> Result<u64, &'static str> {
                match v.parse() {
                    Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                    _ => Err("bad size field"),
                }
            };
            if let Some(v) = field.strip_prefix('W') {
                entry.wire = Some(number(v)?);
            } else if let Some(v) = field.strip_prefix('S') {
                entry.size = Some(number(v)?);
            } else {
                entry.extra.push(field.to_string());
            }
        }
    };
    let base = base_name(name);
    if base.is_empty() || base.contains(['/', '\0', '\r']) {
        return Err("bad file name");
    }
    entry.base = base.to_string();
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT: &str = "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n\
                           25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394:2,\n\
                           25017 W2481 :1276533073.M242911P3632.kurkku:2,F\n";

    #[test]
    fn reads_dovecot_documentation_example() {
        let list = UidList::parse(DOVECOT.as_bytes()).unwrap();
        assert_eq!(list.uidvalidity, 1275660208);
        assert_eq!(list.next_uid, 25022);
        assert_eq!(list.guid, "3085f01b7f11094c501100008c4a11c1");
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.entries[0].uid, 25006);
        assert_eq!(
            list.entries[0].base,
            "1276528487.M364837P9451.kurkku,S=1355,W=1394"
        );
        assert_eq!(list.entries[0].wire, None);
        assert_eq!(list.entries[1].uid, 25017);
        assert_eq!(list.entries[1].base, "1276533073.M242911P3632.kurkku");
        assert_eq!(list.entries[1].wire, Some(2481));
    }

    #[test]
    fn writes_and_reads_back() {
        let mut list = UidList::parse(DOVECOT.as_bytes()).unwrap();
        list.entries[1].size = Some(2424);
        list.entries.push(Entry {
            uid: 25021,
            base: "1.x".into(),
            wire: None,
            size: None,
            extra: vec!["P4f2a.uidl".into(), "M7".into()],
        });
        let text = list.to_text();
        assert_eq!(
            text,
            "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n\
             25006 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n\
             25017 W2481 S2424 :1276533073.M242911P3632.kurkku\n\
             25021 P4f2a.uidl M7 :1.x\n"
        );
        let back = UidList::parse(text.as_bytes()).unwrap();
        assert_eq!(back, list);
        assert_eq!(back.entries[2].pop3_uidl(), Some("4f2a.uidl"));
        assert_eq!(back.entries[0].pop3_uidl(), None);
    }

    #[test]
    fn header_fields_in_any_order_and_unknown_ones() {
        let list = UidList::parse(b"3 N7 X1 Gzz V9\n").unwrap();
        assert_eq!((list.uidvalidity, list.next_uid), (9, 7));
        // A bad GUID is replaced by a new one.
        assert_eq!(list.guid.len(), 32);
        assert!(list.entries.is_empty());
    }

    #[test]
    fn version_one() {
        let list = UidList::parse(b"1 1100000000 12\n3 1100000001.1234_1.host:2,S\n").unwrap();
        assert_eq!((list.uidvalidity, list.next_uid), (1100000000, 12));
        assert_eq!(list.entries[0].uid, 3);
        assert_eq!(list.entries[0].base, "1100000001.1234_1.host");
    }

    #[test]
    fn next_uid_stays_above_listed_uids() {
        let list = UidList::parse(b"3 V5 N2\n7 :a\n").unwrap();
        assert_eq!(list.next_uid, 8);
    }

    #[test]
    fn corruption_names_the_line() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"", 1, "empty file"),
            (b"2 V1 N1\n", 1, "unknown version"),
            (b"3 N1\n", 1, "no UIDVALIDITY"),
            (b"3 V0 N1\n", 1, "no UIDVALIDITY"),
            (b"3 V1\n", 1, "no next UID"),
            (b"3 V1 N9\n1 :a\nx :b\n", 3, "bad UID"),
            (b"3 V1 N9\n0 :a\n", 2, "bad UID"),
            (b"3 V1 N9\n1 a\n", 2, "no file name"),
            (b"3 V1 N9\n1 Wx :a\n", 2, "bad size field"),
            (b"3 V1 N9\n2 :a\n1 :b\n", 3, "UID not above"),
            (b"3 V1 N9\n1 :a\n2 :a:2,S\n", 3, "file listed twice"),
            (b"3 V1 N9\n1 :../x\n", 2, "bad file name"),
            (b"3 V1 N9\n1 :\n", 2, "bad file name"),
            (b"3 V1 N9\n\n1 :a\n", 2, "no file name"),
            (b"3 V1 N9\n1 :\xff\n", 2, "not UTF-8"),
        ];
        for &(text, line, what) in cases {
            let err = UidList::parse(text).unwrap_err();
            assert_eq!(
                err.line,
                line,
                "{:?}: {err:?}",
                String::from_utf8_lossy(text)
            );
            assert!(err.what.starts_with(what), "{err:?}");
        }
        let err = UidList::parse(b"3 V77 N9\nbad\n").unwrap_err();
        assert_eq!(err.uidvalidity, Some(77));
    }

    #[test]
    fn lenient_reading_skips_bad_lines_only() {
        let (list, skipped) = UidList::parse_lenient(b"3 V5 N20\n1 :a\nzz\n4 :b\n3 :c\n").unwrap();
        assert_eq!(
            list.entries.iter().map(|e| e.uid).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert_eq!(list.next_uid, 20);
        assert_eq!(
            skipped.iter().map(|c| c.line).collect::<Vec<_>>(),
            vec![3, 5]
        );
        assert!(UidList::parse_lenient(b"x\n").is_err());
    }
}
