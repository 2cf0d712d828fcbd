//! The index of one mailbox: what IMAP needs beyond the UID list and the
//! file names, kept in the data directory (`data_directory/index/<the
//! mailbox path, / as %2F>/`), never in the user's Maildir.
//!
//! For every message: its UID, its MODSEQ (RFC 7162: the mailbox's
//! modification sequence when the message last changed), where its file
//! is (`new/` or `cur/` and the name, which carries the flags), its sizes
//! and internal date, and a reference into the cache file. For the
//! mailbox: UIDVALIDITY, HIGHESTMODSEQ, and the UIDs expunged lately with
//! the MODSEQ of their expunge (for QRESYNC's `VANISHED (EARLIER)`).
//!
//! The UIDs themselves come from the store (`ironpost-uidlist`, shared with
//! POP3 and Dovecot's format): [`Index::apply`] takes a [`Snapshot`] and
//! brings the index in line, giving a new MODSEQ to every message that is
//! new, changed its flags, or went. An index whose UIDVALIDITY is not the
//! snapshot's is started afresh.
//!
//! ## Files
//! - `index`: the whole state at one moment, written to `index.tmp` and
//!   renamed over, checked by a checksum at its end.
//! - `log`: the changes since, appended one record at a time, each with
//!   its length and checksum. When it grows past half the size of `index`
//!   (64 KiB at least) both are compacted into a new `index`.
//! - `cache`: blobs the IMAP server computes once per message (ENVELOPE,
//!   BODYSTRUCTURE, ...), appended, each with its UID and checksum;
//!   rewritten without the dead ones at a compaction when they are more
//!   than half.
//!
//! Nothing here is synced: the index can always be rebuilt from the
//! mailbox. What must not happen after a crash is a MODSEQ going back
//! (a client that knows a higher one would miss changes). So a fresh
//! index starts at the current time in microseconds, and an index whose
//! log ends in a torn record, or that is found unreadable, jumps to that
//! too; a mailbox is never changed a million times a second.
//!
//! Formats (integers little-endian; `str` is a u16 length and UTF-8):
//! ```text
//! index:  "IPIDX\0\x01\n" u32 uidvalidity u64 highestmodseq u64 vanished_from
//!         u32 records u32 vanished
//!         record*  (u32 uid u64 modseq u8 sub str name u64 size u64 wire
//!                   i64 mtime_ns u64 cache_offset u32 cache_len)
//!         vanished* (u64 modseq u32 uid)   u64 checksum
//! log:    (u32 len u64 checksum payload)*   payload: u8 kind ...
//!           1 record (as above)   2 u32 uid u64 modseq (expunged)
//!           3 u32 uid u64 offset u32 len (cached)   4 u32 uidvalidity u64 modseq (reset)
//! cache:  (u32 len u64 checksum u32 uid blob)*
//! ```

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::flags::{Flags, split_info};
use super::maildir::Snapshot;

const MAGIC: &[u8; 8] = b"IPIDX\0\x01\n";
const INDEX: &str = "index";
const INDEX_TMP: &str = "index.tmp";
const LOG: &str = "log";
const CACHE: &str = "cache";
const CACHE_TMP: &str = "cache.tmp";

/// Expunges remembered for `VANISHED (EARLIER)`; older ones are
/// forgotten (`vanished_from` tells from where the list is whole).
const MAX_VANISHED: usize = 100_000;
/// The log is compacted into the index past this size at the least.
const MIN_COMPACT: u64 = 64 * 1024;
/// A cache blob larger than this is not kept.
pub const MAX_CACHE_BLOB: usize = 1 << 20;

const KIND_RECORD: u8 = 1;
const KIND_EXPUNGE: u8 = 2;
const KIND_CACHE: u8 = 3;
const KIND_RESET: u8 = 4;

/// Where a message file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    New,
    Cur,
}

/// One message in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    /// The MODSEQ of its last change (arrival, flags).
    pub modseq: u64,
    pub sub: Sub,
    /// The file name in `new/` or `cur/` (with the flags in its info).
    pub name: String,
    /// Stored bytes.
    pub size: u64,
    /// Bytes with CRLF line ends (RFC822.SIZE).
    pub wire_size: u64,
    /// INTERNALDATE: nanoseconds since the epoch (the file's mtime).
    pub mtime_ns: i64,
    /// Offset and length of the cached blob, if any.
    cache: Option<(u64, u32)>,
}

impl Record {
    /// The flags its file name carries.
    pub fn flags(&self) -> Flags {
        match self.sub {
            Sub::New => Flags::default(),
            Sub::Cur => Flags::from_file_name(&self.name),
        }
    }

    /// The internal date.
    pub fn internal_date(&self) -> SystemTime {
        if self.mtime_ns >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.mtime_ns as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.mtime_ns.unsigned_abs())
        }
    }

    /// The file's path relative to the Maildir.
    pub fn rel_path(&self) -> PathBuf {
        PathBuf::from(match self.sub {
            Sub::New => "new",
            Sub::Cur => "cur",
        })
        .join(&self.name)
    }

    /// The base name (before the flags).
    pub fn base(&self) -> &str {
        split_info(&self.name).0
    }
}

/// What [`Index::apply`] found changed, by UID (ascending).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The UIDVALIDITY changed: every earlier UID is void.
    pub reset: bool,
    pub new: Vec<u32>,
    pub expunged: Vec<u32>,
    /// Flags changed (the file was renamed by someone).
    pub flags: Vec<u32>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.reset && self.new.is_empty() && self.expunged.is_empty() && self.flags.is_empty()
    }
}

/// The index of one mailbox, in memory, with its files.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    uidvalidity: u32,
    highestmodseq: u64,
    /// Ascending UID.
    records: Vec<Record>,
    /// (modseq, uid) of expunges, ascending modseq.
    vanished: Vec<(u64, u32)>,
    /// Every expunge with a MODSEQ above this is in `vanished`.
    vanished_from: u64,
    log: Option<File>,
    log_len: u64,
    index_len: u64,
    cache: Option<File>,
    cache_len: u64,
    cache_live: u64,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a, 64 bits: catches torn and damaged records, not adversaries.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn mtime_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// `data_directory/<kind>/<path, / as %2F, % as %25>`: the state ironpost
/// keeps about a mailbox outside it.
pub fn state_dir(data_directory: &Path, kind: &str, mailbox: &Path) -> PathBuf {
    let mut name = String::new();
    for c in mailbox.to_string_lossy().chars() {
        match c {
            '/' => name.push_str("%2F"),
            '%' => name.push_str("%25"),
            c => name.push(c),
        }
    }
    data_directory.join(kind).join(name)
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        self.0.extend_from_slice(&(b.len() as u16).to_le_bytes());
        self.0.extend_from_slice(b);
    }
    fn record(&mut self, r: &Record) {
        self.u32(r.uid);
        self.u64(r.modseq);
        self.u8(match r.sub {
            Sub::New => 0,
            Sub::Cur => 1,
        });
        self.str(&r.name);
        self.u64(r.size);
        self.u64(r.wire_size);
        self.i64(r.mtime_ns);
        let (off, len) = r.cache.unwrap_or((0, 0));
        self.u64(off);
        self.u32(len);
    }
}

struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn record(&mut self) -> Option<Record> {
        let uid = self.u32()?;
        let modseq = self.u64()?;
        let sub = match self.u8()? {
            0 => Sub::New,
            1 => Sub::Cur,
            _ => return None,
        };
        let name = self.str()?;
        let size = self.u64()?;
        let wire_size = self.u64()?;
        let mtime_ns = self.i64()?;
        let off = self.u64()?;
        let len = self.u32()?;
        if uid == 0 || name.is_empty() || name.contains('/') {
            return None;
        }
        Some(Record {
            uid,
            modseq,
            sub,
            name,
            size,
            wire_size,
            mtime_ns,
            cache: (len > 0).then_some((off, len)),
        })
    }
}

/// A framed record: length, checksum, payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The next framed payload of `data` at `*at`; `None` at the end or at a
/// torn or damaged frame.
fn unframe<'a>(data: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = data.get(*at..)?;
    if rest.len() < 12 {
        return None;
    }
    let len = u32::from_le_bytes(rest[..4].try_into().ok()?) as usize;
    let sum = u64::from_le_bytes(rest[4..12].try_into().ok()?);
    let payload = rest.get(12..12 + len)?;
    if checksum(payload) != sum {
        return None;
    }
    *at += 12 + len;
    Some(payload)
}

fn context(what: String, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Index {
    /// Opens (or starts) the index in `dir`. Unreadable files are started
    /// afresh with a warning, never an error: the index is a cache.
    pub fn open(dir: &Path) -> io::Result<Index> {
        fs::create_dir_all(dir).map_err(|e| context(format!("create {}", dir.display()), e))?;
        let mut ix = Index {
            dir: dir.to_path_buf(),
            uidvalidity: 0,
            highestmodseq: now_micros(),
            records: Vec::new(),
            vanished: Vec::new(),
            vanished_from: 0,
            log: None,
            log_len: 0,
            index_len: 0,
            cache: None,
            cache_len: 0,
            cache_live: 0,
        };
        ix.vanished_from = ix.highestmodseq;
        let mut fresh = true;
        match fs::read(dir.join(INDEX)) {
            Ok(data) => match ix.load_index(&data) {
                Some(()) => {
                    fresh = false;
                    ix.index_len = data.len() as u64;
                }
                None => tracing::warn!(
                    "{}: index damaged, rebuilding it",
                    dir.join(INDEX).display()
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context(format!("read {}", dir.join(INDEX).display()), e)),
        }
        let log_path = dir.join(LOG);
        let log_data = match fs::read(&log_path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(context(format!("read {}", log_path.display()), e)),
        };
        let mut at = 0;
        if !fresh {
            while let Some(payload) = unframe(&log_data, &mut at) {
                if ix.replay(payload).is_none() {
                    break;
                }
            }
            if at < log_data.len() {
                // A torn or damaged tail: changes may be lost, so the
                // MODSEQ jumps past anything handed out before.
                tracing::warn!(
                    "{}: log damaged at byte {at}, later changes dropped",
                    log_path.display()
                );
                ix.highestmodseq = ix.highestmodseq.max(now_micros());
            }
        } else {
            at = 0;
        }
        let log = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&log_path)
            .map_err(|e| context(format!("open {}", log_path.display()), e))?;
        log.set_len(at as u64)
            .map_err(|e| context(format!("truncate {}", log_path.display()), e))?;
        ix.log_len = at as u64;
        ix.log = Some(log);
        let cache_path = dir.join(CACHE);
        let cache = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&cache_path)
            .map_err(|e| context(format!("open {}", cache_path.display()), e))?;
        if fresh {
            cache
                .set_len(0)
                .map_err(|e| context(format!("truncate {}", cache_path.display()), e))?;
        }
        ix.cache_len = cache.metadata()?.len();
        for r in &mut ix.records {
            if let Some((off, len)) = r.cache
                && off + 16 + u64::from(len) > ix.cache_len
            {
                r.cache = None;
            }
        }
        ix.cache_live = ix
            .records
            .iter()
            .filter_map(|r| r.cache.map(|(_, l)| u64::from(l) + 16))
            .sum();
        ix.cache = Some(cache);
        if fresh {
            ix.compact()?;
        }
        Ok(ix)
    }

    fn load_index(&mut self, data: &[u8]) -> Option<()> {
        if data.len() < MAGIC.len() + 8 || &data[..MAGIC.len()] != MAGIC {
            return None;
        }
        let (body, sum) = data.split_at(data.len() - 8);
        if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
            return None;
        }
        let mut d = Dec {
            b: &body[MAGIC.len()..],
        };
        let uidvalidity = d.u32()?;
        let highestmodseq = d.u64()?;
        let vanished_from = d.u64()?;
        let n = d.u32()? as usize;
        let nv = d.u32()? as usize;
        let mut records = Vec::with_capacity(n.min(d.b.len() / 40));
        for _ in 0..n {
            let r = d.record()?;
            if records.last().is_some_and(|l: &Record| l.uid >= r.uid) {
                return None;
            }
            records.push(r);
        }
        let mut vanished = Vec::with_capacity(nv.min(d.b.len() / 12));
        for _ in 0..nv {
            let m = d.u64()?;
            let u = d.u32()?;
            vanished.push((m, u));
        }
        if !d.b.is_empty() {
            return None;
        }
        self.uidvalidity = uidvalidity;
        self.highestmodseq = highestmodseq;
        self.vanished_from = vanished_from;
        self.records = records;
        self.vanished = vanished;
        Some(())
    }

    fn replay(&mut self, payload: &[u8]) -> Option<()> {
        let mut d = Dec { b: payload };
        match d.u8()? {
            KIND_RECORD => {
                let r = d.record()?;
                self.highestmodseq = self.highestmodseq.max(r.modseq);
                match self.records.binary_search_by_key(&r.uid, |x| x.uid) {
                    Ok(i) => self.records[i] = r,
                    Err(i) => self.records.insert(i, r),
                }
            }
            KIND_EXPUNGE => {
                let uid = d.u32()?;
                let modseq = d.u64()?;
                self.highestmodseq = self.highestmodseq.max(modseq);
                if let Ok(i) = self.records.binary_search_by_key(&uid, |x| x.uid) {
                    self.records.remove(i);
                    self.vanished.push((modseq, uid));
                }
            }
            KIND_CACHE => {
                let uid = d.u32()?;
                let off = d.u64()?;
                let len = d.u32()?;
                if let Ok(i) = self.records.binary_search_by_key(&uid, |x| x.uid) {
                    self.records[i].cache = Some((off, len));
                }
            }
            KIND_RESET => {
                let uidvalidity = d.u32()?;
                let modseq = d.u64()?;
                self.reset(uidvalidity, modseq);
            }
            _ => return None,
        }
        Some(())
    }

    fn reset(&mut self, uidvalidity: u32, modseq: u64) {
        self.uidvalidity = uidvalidity;
        self.records.clear();
        self.vanished.clear();
        self.highestmodseq = self.highestmodseq.max(modseq);
        self.vanished_from = self.highestmodseq;
    }

    pub fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    /// RFC 7162 HIGHESTMODSEQ.
    pub fn highestmodseq(&self) -> u64 {
        self.highestmodseq
    }

    /// The messages, ascending UID.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn get(&self, uid: u32) -> Option<&Record> {
        self.records
            .binary_search_by_key(&uid, |r| r.uid)
            .ok()
            .map(|i| &self.records[i])
    }

    /// The UIDs expunged with a MODSEQ above `modseq`, ascending; `None`
    /// when the index no longer remembers that far back (the caller then
    /// reports every UID it cannot find, as RFC 7162 §3.2.5.1 allows).
    pub fn vanished_since(&self, modseq: u64) -> Option<Vec<u32>> {
        if modseq < self.vanished_from {
            return None;
        }
        let start = self.vanished.partition_point(|&(m, _)| m <= modseq);
        let mut uids: Vec<u32> = self.vanished[start..].iter().map(|&(_, u)| u).collect();
        uids.sort_unstable();
        uids.dedup();
        Some(uids)
    }

    fn next_modseq(&mut self) -> u64 {
        self.highestmodseq += 1;
        self.highestmodseq
    }

    fn append_log(&mut self, payload: &[u8]) -> io::Result<()> {
        let framed = frame(payload);
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let at = self.log_len;
        if let Err(e) = log.write_all_at(&framed, at) {
            // A partial record is cut off again at the next open.
            return Err(context(
                format!("write {}", self.dir.join(LOG).display()),
                e,
            ));
        }
        self.log_len += framed.len() as u64;
        Ok(())
    }

    fn log_record(&mut self, r: &Record) -> io::Result<()> {
        let mut e = Enc(Vec::with_capacity(64 + r.name.len()));
        e.u8(KIND_RECORD);
        e.record(r);
        self.append_log(&e.0)
    }

    /// Brings the index in line with `snap` and tells what changed. Every
    /// message that is new, or whose flags changed, gets a new MODSEQ; so
    /// does every expunge.
    pub fn apply(&mut self, snap: &Snapshot) -> io::Result<Changes> {
        let mut changes = Changes::default();
        if snap.uidvalidity != self.uidvalidity {
            // A fresh index only learns its UIDVALIDITY.
            changes.reset = !self.records.is_empty() || self.uidvalidity != 0;
            let modseq = if changes.reset {
                now_micros()
            } else {
                self.highestmodseq
            };
            self.reset(snap.uidvalidity, modseq);
            let mut e = Enc(Vec::new());
            e.u8(KIND_RESET);
            e.u32(snap.uidvalidity);
            e.u64(self.highestmodseq);
            self.append_log(&e.0)?;
        }
        let old = std::mem::take(&mut self.records);
        let mut out: Vec<Record> = Vec::with_capacity(snap.messages.len());
        let mut logged: Vec<Vec<u8>> = Vec::new();
        let mut o = old.into_iter().peekable();
        for m in &snap.messages {
            // Records of UIDs the snapshot no longer has: expunged.
            while let Some(r) = o.next_if(|r| r.uid < m.uid) {
                let modseq = self.next_modseq();
                self.vanished.push((modseq, r.uid));
                changes.expunged.push(r.uid);
                let mut e = Enc(Vec::with_capacity(13));
                e.u8(KIND_EXPUNGE);
                e.u32(r.uid);
                e.u64(modseq);
                logged.push(e.0);
            }
            let sub = if m.recent { Sub::New } else { Sub::Cur };
            let name = m
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let known = o.next_if(|r| r.uid == m.uid);
            let record = match known {
                Some(mut r) => {
                    if r.sub == sub && r.name == name {
                        r
                    } else {
                        let before = r.flags();
                        r.sub = sub;
                        r.name = name;
                        if r.flags() != before {
                            r.modseq = self.next_modseq();
                            changes.flags.push(r.uid);
                        }
                        let mut e = Enc(Vec::new());
                        e.u8(KIND_RECORD);
                        e.record(&r);
                        logged.push(e.0);
                        r
                    }
                }
                None => {
                    let r = Record {
                        uid: m.uid,
                        modseq: self.next_modseq(),
                        sub,
                        name,
                        size: m.size,
                        wire_size: m.wire_size,
                        mtime_ns: mtime_ns(m.internal_date),
                        cache: None,
                    };
                    changes.new.push(r.uid);
                    let mut e = Enc(Vec::new());
                    e.u8(KIND_RECORD);
                    e.record(&r);
                    logged.push(e.0);
                    r
                }
            };
            out.push(record);
        }
        for r in o {
            let modseq = self.next_modseq();
            self.vanished.push((modseq, r.uid));
            changes.expunged.push(r.uid);
            let mut e = Enc(Vec::with_capacity(13));
            e.u8(KIND_EXPUNGE);
            e.u32(r.uid);
            e.u64(modseq);
            logged.push(e.0);
        }
        self.cache_live = out
            .iter()
            .filter_map(|r| r.cache.map(|(_, l)| u64::from(l) + 16))
            .sum();
        self.records = out;
        self.trim_vanished();
        for payload in logged {
            self.append_log(&payload)?;
        }
        self.maybe_compact()?;
        Ok(changes)
    }

    /// Records that ironpost itself renamed the file of `uid` (a STORE):
    /// its new place, and a new MODSEQ when the flags changed. Returns the
    /// message's MODSEQ.
    pub fn renamed(&mut self, uid: u32, sub: Sub, name: &str) -> io::Result<Option<u64>> {
        let Ok(i) = self.records.binary_search_by_key(&uid, |r| r.uid) else {
            return Ok(None);
        };
        let before = self.records[i].flags();
        self.records[i].sub = sub;
        self.records[i].name = name.to_string();
        if self.records[i].flags() != before {
            let m = self.next_modseq();
            self.records[i].modseq = m;
        }
        let r = self.records[i].clone();
        self.log_record(&r)?;
        self.maybe_compact()?;
        Ok(Some(r.modseq))
    }

    /// [`Index::renamed`] for many messages, logged with one write.
    pub fn renamed_many(&mut self, changes: &[(u32, Sub, &str)]) -> io::Result<Vec<Option<u64>>> {
        let mut out = Vec::with_capacity(changes.len());
        let mut log = Vec::with_capacity(changes.len() * 96);
        for &(uid, sub, name) in changes {
            let Ok(i) = self.records.binary_search_by_key(&uid, |r| r.uid) else {
                out.push(None);
                continue;
            };
            let before = self.records[i].flags();
            self.records[i].sub = sub;
            self.records[i].name = name.to_string();
            if self.records[i].flags() != before {
                let m = self.next_modseq();
                self.records[i].modseq = m;
            }
            let mut e = Enc(Vec::with_capacity(64 + name.len()));
            e.u8(KIND_RECORD);
            e.record(&self.records[i]);
            log.extend_from_slice(&frame(&e.0));
            out.push(Some(self.records[i].modseq));
        }
        if !log.is_empty()
            && let Some(f) = self.log.as_mut()
        {
            f.write_all_at(&log, self.log_len)
                .map_err(|e| context(format!("write {}", self.dir.join(LOG).display()), e))?;
            self.log_len += log.len() as u64;
        }
        self.maybe_compact()?;
        Ok(out)
    }

    /// Gives `uids` a new MODSEQ without a change of their own (RFC 7162:
    /// a STORE that set flags already set still counts as a change for
    /// the client's UNCHANGEDSINCE test). Returns the new MODSEQ.
    pub fn touch(&mut self, uids: &[u32]) -> io::Result<u64> {
        let m = self.next_modseq();
        for &uid in uids {
            if let Ok(i) = self.records.binary_search_by_key(&uid, |r| r.uid) {
                self.records[i].modseq = m;
                let r = self.records[i].clone();
                self.log_record(&r)?;
            }
        }
        self.maybe_compact()?;
        Ok(m)
    }

    /// The cached blob of `uid`, if one was stored and is intact.
    pub fn cached(&self, uid: u32) -> Option<Vec<u8>> {
        let (off, len) = self.get(uid)?.cache?;
        let cache = self.cache.as_ref()?;
        let mut buf = vec![0; 16 + len as usize];
        cache.read_exact_at(&mut buf, off).ok()?;
        let mut at = 0;
        let payload = unframe(&buf, &mut at)?;
        let (u, blob) = payload.split_at_checked(4)?;
        (u32::from_le_bytes(u.try_into().ok()?) == uid).then(|| blob.to_vec())
    }

    /// Stores the blob of `uid` (too large ones are not kept).
    pub fn set_cached(&mut self, uid: u32, blob: &[u8]) -> io::Result<()> {
        if blob.len() > MAX_CACHE_BLOB {
            return Ok(());
        }
        let Ok(i) = self.records.binary_search_by_key(&uid, |r| r.uid) else {
            return Ok(());
        };
        let mut payload = Vec::with_capacity(4 + blob.len());
        payload.extend_from_slice(&uid.to_le_bytes());
        payload.extend_from_slice(blob);
        let framed = frame(&payload);
        let Some(cache) = self.cache.as_ref() else {
            return Ok(());
        };
        let off = self.cache_len;
        cache
            .write_all_at(&framed, off)
            .map_err(|e| context(format!("write {}", self.dir.join(CACHE).display()), e))?;
        self.cache_len += framed.len() as u64;
        // The frame: 12 bytes of length and checksum, the UID, the blob.
        if let Some((_, old)) = self.records[i].cache {
            self.cache_live -= u64::from(old) + 16;
        }
        self.records[i].cache = Some((off, blob.len() as u32));
        self.cache_live += blob.len() as u64 + 16;
        let mut e = Enc(Vec::with_capacity(17));
        e.u8(KIND_CACHE);
        e.u32(uid);
        e.u64(off);
        e.u32(blob.len() as u32);
        self.append_log(&e.0)?;
        self.maybe_compact()
    }

    fn trim_vanished(&mut self) {
        if self.vanished.len() > MAX_VANISHED {
            let drop = self.vanished.len() - MAX_VANISHED;
            self.vanished_from = self.vanished[drop - 1].0;
            self.vanished.drain(..drop);
        }
    }

    fn maybe_compact(&mut self) -> io::Result<()> {
        if self.log_len > MIN_COMPACT.max(self.index_len / 2) {
            self.compact()?;
        }
        Ok(())
    }

    /// Writes the whole state as a new `index` and empties the log; the
    /// cache too when most of it is dead.
    pub fn compact(&mut self) -> io::Result<()> {
        if self.cache_len > 64 * 1024 && self.cache_live * 2 < self.cache_len {
            self.compact_cache()?;
        }
        let mut e = Enc(Vec::with_capacity(64 + self.records.len() * 80));
        e.0.extend_from_slice(MAGIC);
        e.u32(self.uidvalidity);
        e.u64(self.highestmodseq);
        e.u64(self.vanished_from);
        e.u32(self.records.len() as u32);
        e.u32(self.vanished.len() as u32);
        for r in &self.records {
            e.record(r);
        }
        for &(m, u) in &self.vanished {
            e.u64(m);
            e.u32(u);
        }
        let sum = checksum(&e.0);
        e.u64(sum);
        let tmp = self.dir.join(INDEX_TMP);
        let path = self.dir.join(INDEX);
        fs::write(&tmp, &e.0).map_err(|x| context(format!("write {}", tmp.display()), x))?;
        fs::rename(&tmp, &path).map_err(|x| context(format!("rename {}", path.display()), x))?;
        self.index_len = e.0.len() as u64;
        // Replaying the old log over the new index changes nothing, so a
        // crash before this truncation is harmless.
        if let Some(log) = &self.log {
            log.set_len(0)
                .map_err(|x| context(format!("truncate {}", self.dir.join(LOG).display()), x))?;
        }
        self.log_len = 0;
        Ok(())
    }

    fn compact_cache(&mut self) -> io::Result<()> {
        let mut blobs: HashMap<u32, Vec<u8>> = HashMap::new();
        for r in &self.records {
            if let Some(b) = self.cached(r.uid) {
                blobs.insert(r.uid, b);
            }
        }
        let tmp = self.dir.join(CACHE_TMP);
        let mut out = Vec::new();
        let mut places = HashMap::new();
        for r in &self.records {
            if let Some(b) = blobs.get(&r.uid) {
                let mut payload = Vec::with_capacity(4 + b.len());
                payload.extend_from_slice(&r.uid.to_le_bytes());
                payload.extend_from_slice(b);
                places.insert(r.uid, (out.len() as u64, b.len() as u32));
                out.extend_from_slice(&frame(&payload));
            }
        }
        fs::write(&tmp, &out).map_err(|x| context(format!("write {}", tmp.display()), x))?;
        let path = self.dir.join(CACHE);
        fs::rename(&tmp, &path).map_err(|x| context(format!("rename {}", path.display()), x))?;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|x| context(format!("open {}", path.display()), x))?;
        self.cache_len = f.seek(SeekFrom::End(0))?;
        self.cache = Some(f);
        for r in &mut self.records {
            r.cache = places.get(&r.uid).copied();
        }
        self.cache_live = self.cache_len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::maildir::Maildir;

    struct Fixture {
        _tmp: tempfile::TempDir,
        maildir: Maildir,
        state: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(tmp.path().join("Maildir"), true).unwrap();
        let state = state_dir(&tmp.path().join("data"), "index", maildir.path());
        Fixture {
            _tmp: tmp,
            maildir,
            state,
        }
    }

    fn deliver(f: &Fixture, n: u32) {
        let name = format!("1700000000.M{n}P1Q{n}.host,S=6");
        fs::write(f.maildir.path().join("new").join(name), b"hello\n").unwrap();
    }

    #[test]
    fn state_dirs_escape_the_path() {
        assert_eq!(
            state_dir(
                Path::new("/var/lib/ironpost"),
                "index",
                Path::new("/home/a%b/Maildir")
            ),
            Path::new("/var/lib/ironpost/index/%2Fhome%2Fa%25b%2FMaildir")
        );
    }

    #[test]
    fn new_changed_and_expunged_messages_get_modseqs() {
        let f = fixture();
        deliver(&f, 1);
        deliver(&f, 2);
        let mut ix = Index::open(&f.state).unwrap();
        let start = ix.highestmodseq();
        // A fresh index starts at the time, so it never goes below one
        // that was lost.
        assert!(start > 1_700_000_000_000_000, "{start}");
        let snap = f.maildir.snapshot().unwrap();
        let ch = ix.apply(&snap).unwrap();
        assert_eq!(ch.new, [1, 2]);
        assert!(!ch.reset && ch.expunged.is_empty() && ch.flags.is_empty());
        assert_eq!(ix.highestmodseq(), start + 2);
        assert_eq!(ix.get(2).unwrap().modseq, start + 2);
        assert_eq!(ix.get(1).unwrap().wire_size, 7);
        // Nothing changed: nothing to tell, no new MODSEQ.
        assert!(ix.apply(&f.maildir.snapshot().unwrap()).unwrap().is_empty());
        assert_eq!(ix.highestmodseq(), start + 2);
        // Someone else (mutt) sets \Seen on 1: a flag change.
        let snap = f.maildir.snapshot().unwrap();
        f.maildir
            .set_flags(snap.get(1).unwrap(), &Flags::parse("S"))
            .unwrap();
        let ch = ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        assert_eq!(ch.flags, [1]);
        assert!(ix.get(1).unwrap().flags().seen);
        assert_eq!(ix.get(1).unwrap().modseq, start + 3);
        assert_eq!(ix.get(2).unwrap().modseq, start + 2);
        // Moving 2 from new/ to cur/ without flags is no flag change.
        let snap = f.maildir.snapshot().unwrap();
        f.maildir.move_new_to_cur(&[snap.get(2).unwrap()]).unwrap();
        let ch = ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        assert!(ch.is_empty(), "{ch:?}");
        assert_eq!(ix.get(2).unwrap().sub, Sub::Cur);
        // Expunge 1, deliver 3.
        let snap = f.maildir.snapshot().unwrap();
        f.maildir.expunge(&[snap.get(1).unwrap()]).unwrap();
        deliver(&f, 3);
        let ch = ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        assert_eq!(
            (ch.new.as_slice(), ch.expunged.as_slice()),
            (&[3][..], &[1][..])
        );
        assert_eq!(ix.vanished_since(start + 3), Some(vec![1]));
        assert_eq!(ix.vanished_since(ix.highestmodseq()), Some(vec![]));
        assert_eq!(ix.vanished_since(start - 1), None);
        let uids: Vec<u32> = ix.records().iter().map(|r| r.uid).collect();
        assert_eq!(uids, [2, 3]);
    }

    #[test]
    fn the_state_survives_reopening_with_and_without_compaction() {
        let f = fixture();
        for n in 1..=3 {
            deliver(&f, n);
        }
        let (h, recs) = {
            let mut ix = Index::open(&f.state).unwrap();
            ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
            ix.set_cached(2, b"ENVELOPE of two").unwrap();
            let snap = f.maildir.snapshot().unwrap();
            let p = f
                .maildir
                .set_flags(snap.get(3).unwrap(), &Flags::parse("FS"))
                .unwrap();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let m = ix.renamed(3, Sub::Cur, &name).unwrap().unwrap();
            assert_eq!(m, ix.highestmodseq());
            (ix.highestmodseq(), ix.records().to_vec())
        };
        // From the index and the log.
        let ix = Index::open(&f.state).unwrap();
        assert_eq!(ix.highestmodseq(), h);
        assert_eq!(ix.records(), &recs[..]);
        assert_eq!(ix.cached(2).as_deref(), Some(&b"ENVELOPE of two"[..]));
        assert_eq!(ix.cached(1), None);
        assert!(ix.get(3).unwrap().flags().flagged);
        // The snapshot agrees: nothing to do.
        let mut ix = ix;
        assert!(ix.apply(&f.maildir.snapshot().unwrap()).unwrap().is_empty());
        // Compacted: the same, from the index alone.
        ix.compact().unwrap();
        assert_eq!(fs::metadata(f.state.join(LOG)).unwrap().len(), 0);
        drop(ix);
        let ix = Index::open(&f.state).unwrap();
        assert_eq!(ix.records(), &recs[..]);
        assert_eq!(ix.cached(2).as_deref(), Some(&b"ENVELOPE of two"[..]));
    }

    #[test]
    fn a_torn_log_or_a_damaged_index_never_takes_modseq_back() {
        let f = fixture();
        deliver(&f, 1);
        let h = {
            let mut ix = Index::open(&f.state).unwrap();
            ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
            ix.touch(&[1]).unwrap();
            ix.highestmodseq()
        };
        // Half a record at the end of the log (a crash while appending).
        let log = f.state.join(LOG);
        let len = fs::metadata(&log).unwrap().len();
        let mut data = fs::read(&log).unwrap();
        data.truncate(len as usize - 5);
        fs::write(&log, &data).unwrap();
        let ix = Index::open(&f.state).unwrap();
        assert!(ix.highestmodseq() >= h, "{} < {h}", ix.highestmodseq());
        assert!(ix.get(1).is_some());
        drop(ix);
        // The index file damaged: rebuilt from the mailbox, UIDs as the
        // UID list has them, MODSEQ still not lower.
        let mut data = fs::read(f.state.join(INDEX)).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(f.state.join(INDEX), &data).unwrap();
        let mut ix = Index::open(&f.state).unwrap();
        assert!(ix.records().is_empty());
        assert!(ix.highestmodseq() >= h);
        let ch = ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        assert_eq!(ch.new, [1]);
        assert!(!ch.reset);
        // What it remembers of expunges starts now.
        assert_eq!(ix.vanished_since(h - 1), None);
    }

    #[test]
    fn a_new_uidvalidity_starts_over() {
        let f = fixture();
        deliver(&f, 1);
        let mut ix = Index::open(&f.state).unwrap();
        ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        ix.set_cached(1, b"x").unwrap();
        let mut snap = f.maildir.snapshot().unwrap();
        snap.uidvalidity += 1;
        let ch = ix.apply(&snap).unwrap();
        assert!(ch.reset);
        assert_eq!(ch.new, [1]);
        assert_eq!(ix.uidvalidity(), snap.uidvalidity);
        assert_eq!(ix.cached(1), None);
        drop(ix);
        let ix = Index::open(&f.state).unwrap();
        assert_eq!(ix.uidvalidity(), snap.uidvalidity);
        assert_eq!(ix.records().len(), 1);
    }

    #[test]
    fn the_cache_is_compacted_when_mostly_dead() {
        let f = fixture();
        for n in 1..=4 {
            deliver(&f, n);
        }
        let mut ix = Index::open(&f.state).unwrap();
        ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        let big = vec![b'x'; 40 * 1024];
        for round in 0..4u8 {
            for uid in 1..=4 {
                let mut b = big.clone();
                b[0] = round;
                ix.set_cached(uid, &b).unwrap();
            }
        }
        ix.compact().unwrap();
        let len = fs::metadata(f.state.join(CACHE)).unwrap().len();
        assert_eq!(len, 4 * (40 * 1024 + 16));
        for uid in 1..=4 {
            assert_eq!(ix.cached(uid).unwrap()[0], 3);
        }
        // Too large: not kept, no error.
        ix.set_cached(1, &vec![0; MAX_CACHE_BLOB + 1]).unwrap();
        assert_eq!(ix.cached(1).unwrap()[0], 3);
        drop(ix);
        let ix = Index::open(&f.state).unwrap();
        assert_eq!(ix.cached(4).unwrap().len(), 40 * 1024);
    }

    #[test]
    fn damaged_cache_blobs_read_as_missing() {
        let f = fixture();
        deliver(&f, 1);
        let mut ix = Index::open(&f.state).unwrap();
        ix.apply(&f.maildir.snapshot().unwrap()).unwrap();
        ix.set_cached(1, b"blob").unwrap();
        drop(ix);
        let mut data = fs::read(f.state.join(CACHE)).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(f.state.join(CACHE), &data).unwrap();
        let ix = Index::open(&f.state).unwrap();
        assert_eq!(ix.cached(1), None);
        // Cut short: also missing, not an error.
        fs::write(f.state.join(CACHE), &data[..5]).unwrap();
        let ix2 = Index::open(&f.state).unwrap();
        assert_eq!(ix2.cached(1), None);
    }
}
