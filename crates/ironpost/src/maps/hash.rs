//! `hash:` tables: a source file and the indexed file `NAME.db` that
//! postmap (or postalias, newaliases) builds next to it.
//!
//! The indexed file is a format of our own (not Berkeley DB), made to open
//! fast and to be read with positioned reads, never loaded whole. All
//! integers are little-endian.
//!
//! ```text
//! header, 64 bytes:
//!   magic "IRONPOST-HASH-DB" (16) | version u32 | flags u32
//!   slot_count u64 (a power of two) | record_count u64
//!   slots_offset u64 | records_offset u64 | file_len u64
//! slots: slot_count × 16 bytes: key hash u64 | record offset u64 (0 = empty)
//! records, in source order: key_len u32 | value_len u32 | key | value
//! ```
//!
//! Slots are an open-addressing table (linear probing, load factor at most
//! one half) over the FNV-1a hash of the key, so a lookup costs a stat and
//! two or three small reads. The file is written to a temporary name,
//! fsync'd and renamed into place, so readers see the old table or the new
//! one, never half of one. A reader notices a rebuilt table at its next
//! lookup (the file's inode or mtime changed) and reopens it.
//!
//! A missing or unreadable `.db` is a temporary lookup failure with Postfix's
//! wording, never "not found". When the source is newer than the index by
//! more than 100 seconds, lookups log Postfix's warning `database X.db is
//! older than source file X` and go on with the index, as Postfix does.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::LookupError;

const MAGIC: &[u8; 16] = b"IRONPOST-HASH-DB";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 64;
const SLOT_LEN: u64 = 16;
/// Slots read at once while probing.
const PROBE_BATCH: usize = 8;
/// Postfix warns about a stale index only when the source changed more than
/// this long ago (dict_db.c), to leave time for a postmap run under way.
const STALE_GRACE: Duration = Duration::from_secs(100);

/// The indexed file's name for a source file: `NAME.db`.
pub fn db_path(source: &Path) -> PathBuf {
    let mut p = source.as_os_str().to_owned();
    p.push(".db");
    PathBuf::from(p)
}

fn fnv1a(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Writes the indexed file for `entries` at `db`, atomically and durably.
/// Keys must be unique (the caller resolves duplicates).
pub fn write_index(db: &Path, entries: &[(String, String)]) -> io::Result<()> {
    let slot_count = (entries.len() * 2).max(8).next_power_of_two() as u64;
    let slots_offset = HEADER_LEN;
    let records_offset = slots_offset + slot_count * SLOT_LEN;

    let mut records: Vec<u8> = Vec::new();
    let mut slots = vec![(0u64, 0u64); slot_count as usize];
    for (key, value) in entries {
        let offset = records_offset + records.len() as u64;
        let too_long = || io::Error::new(io::ErrorKind::InvalidInput, "entry too long");
        records.extend_from_slice(
            &u32::try_from(key.len())
                .map_err(|_| too_long())?
                .to_le_bytes(),
        );
        records.extend_from_slice(
            &u32::try_from(value.len())
                .map_err(|_| too_long())?
                .to_le_bytes(),
        );
        records.extend_from_slice(key.as_bytes());
        records.extend_from_slice(value.as_bytes());
        let h = fnv1a(key.as_bytes());
        let mut i = (h & (slot_count - 1)) as usize;
        while slots[i].1 != 0 {
            i = (i + 1) & (slot_count as usize - 1);
        }
        slots[i] = (h, offset);
    }
    let file_len = records_offset + records.len() as u64;

    let mut out = Vec::with_capacity(file_len as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [
        slot_count,
        entries.len() as u64,
        slots_offset,
        records_offset,
        file_len,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.resize(HEADER_LEN as usize, 0);
    for (h, off) in &slots {
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
    }
    out.extend_from_slice(&records);

    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = db
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, db)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An opened indexed file.
#[derive(Debug)]
struct Db {
    file: File,
    /// Identity of the file when opened, to notice a rebuild.
    ino: u64,
    mtime: (i64, i64),
    slot_count: u64,
    slots_offset: u64,
    records_offset: u64,
    record_count: u64,
    len: u64,
}

impl Db {
    fn open(path: &Path) -> io::Result<Db> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let mut header = [0u8; HEADER_LEN as usize];
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an ironpost hash table: {why}"),
            )
        };
        file.read_exact_at(&mut header, 0)
            .map_err(|_| bad("too short"))?;
        if &header[..16] != MAGIC {
            return Err(bad("bad magic number"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(header[o..o + 4].try_into().unwrap_or_default());
        let u64_at = |o: usize| u64::from_le_bytes(header[o..o + 8].try_into().unwrap_or_default());
        if u32_at(16) != VERSION {
            return Err(bad("unknown version"));
        }
        let db = Db {
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            slot_count: u64_at(24),
            record_count: u64_at(32),
            slots_offset: u64_at(40),
            records_offset: u64_at(48),
            len: u64_at(56),
            file,
        };
        let slots_end = db
            .slot_count
            .checked_mul(SLOT_LEN)
            .and_then(|n| n.checked_add(db.slots_offset));
        if !db.slot_count.is_power_of_two()
            || db.len != meta.len()
            || slots_end != Some(db.records_offset)
            || db.records_offset > db.len
        {
            return Err(bad("inconsistent header (truncated or damaged file)"));
        }
        Ok(db)
    }

    fn same_file(&self, meta: &std::fs::Metadata) -> bool {
        self.ino == meta.ino()
            && self.mtime == (meta.mtime(), meta.mtime_nsec())
            && self.len == meta.len()
    }

    fn read(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "record outside the file",
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// The record at `offset`: (key, value).
    fn record(&self, offset: u64, want_value: bool) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
        if offset < self.records_offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad record offset",
            ));
        }
        let head = self.read(offset, 8)?;
        let klen = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
        let vlen = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        let key = self.read(offset + 8, klen)?;
        let value = if want_value {
            Some(self.read(offset + 8 + klen, vlen)?)
        } else {
            None
        };
        Ok((key, value))
    }

    fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let h = fnv1a(key);
        let mask = self.slot_count - 1;
        let mut i = h & mask;
        let mut probed = 0u64;
        while probed < self.slot_count {
            let n = (PROBE_BATCH as u64)
                .min(self.slot_count - i)
                .min(self.slot_count - probed);
            let buf = self.read(self.slots_offset + i * SLOT_LEN, n * SLOT_LEN)?;
            for slot in buf.chunks_exact(SLOT_LEN as usize) {
                let sh = u64::from_le_bytes(slot[..8].try_into().unwrap_or_default());
                let off = u64::from_le_bytes(slot[8..].try_into().unwrap_or_default());
                if off == 0 {
                    return Ok(None);
                }
                if sh == h {
                    let (k, _) = self.record(off, false)?;
                    if k == key {
                        let (_, v) = self.record(off, true)?;
                        return Ok(v);
                    }
                }
            }
            probed += n;
            i = (i + n) & mask;
        }
        Ok(None)
    }

    fn entries(&self) -> io::Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(self.record_count.min(1 << 20) as usize);
        let mut offset = self.records_offset;
        while offset < self.len {
            let (k, v) = self.record(offset, true)?;
            let v = v.unwrap_or_default();
            offset += 8 + k.len() as u64 + v.len() as u64;
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }
}

/// Every entry of an indexed file, in source order (for `postmap -s`).
pub fn read_entries(db: &Path) -> io::Result<Vec<(String, String)>> {
    Db::open(db)?.entries()
}

/// A `hash:` table, opened lazily and reopened when the index is rebuilt.
#[derive(Debug)]
pub struct HashTable {
    spec: String,
    source: PathBuf,
    db_path: PathBuf,
    /// The open index and when its identity was last checked.
    db: Mutex<Option<(Arc<Db>, std::time::Instant)>>,
    recheck: std::time::Duration,
}

/// How often an open index checks whether its file was replaced.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl HashTable {
    /// `spec` is the whole `hash:NAME`, `name` the source file's path.
    pub fn new(spec: &str, name: &str) -> HashTable {
        let source = PathBuf::from(name.trim());
        HashTable {
            spec: spec.to_string(),
            db_path: db_path(&source),
            source,
            db: Mutex::new(None),
            recheck: RECHECK,
        }
    }

    /// The same table, checking its file on every lookup (for tests).
    #[cfg(test)]
    fn checking_always(mut self) -> HashTable {
        self.recheck = std::time::Duration::ZERO;
        self
    }

    fn unavailable(&self, what: &str, e: &io::Error) -> LookupError {
        LookupError(format!(
            "{} is unavailable. {what} {}: {}",
            self.spec,
            self.db_path.display(),
            ironpost_conf::io_reason(e)
        ))
    }

    /// The open index, reopened if the file was replaced since. The file's
    /// identity is checked at most every [`RECHECK`] (1 s), so a table rebuilt by
    /// postmap is used within that time without a stat per lookup.
    fn current(&self) -> Result<Arc<Db>, LookupError> {
        let now = std::time::Instant::now();
        {
            let guard = self.db.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((db, checked)) = guard.as_ref()
                && now.duration_since(*checked) < self.recheck
            {
                return Ok(db.clone());
            }
        }
        let meta =
            std::fs::metadata(&self.db_path).map_err(|e| self.unavailable("open database", &e))?;
        let mut guard = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((db, checked)) = guard.as_mut()
            && db.same_file(&meta)
        {
            *checked = now;
            return Ok(db.clone());
        }
        let db =
            Arc::new(Db::open(&self.db_path).map_err(|e| self.unavailable("open database", &e))?);
        self.warn_if_stale(&meta);
        *guard = Some((db.clone(), now));
        Ok(db)
    }

    fn warn_if_stale(&self, db_meta: &std::fs::Metadata) {
        let (Ok(src), Ok(db_mtime)) = (std::fs::metadata(&self.source), db_meta.modified()) else {
            return;
        };
        let Ok(src_mtime) = src.modified() else {
            return;
        };
        let settled = SystemTime::now()
            .checked_sub(STALE_GRACE)
            .is_some_and(|limit| src_mtime < limit);
        if src_mtime > db_mtime && settled {
            tracing::warn!(
                "database {} is older than source file {}",
                self.db_path.display(),
                self.source.display()
            );
        }
    }

    /// Looks up a key already folded to lower case.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, LookupError> {
        let db = self.current()?;
        let value = db
            .get(key.as_bytes())
            .map_err(|e| self.unavailable("read database", &e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every entry, in source order.
    pub fn entries(&self) -> Result<Vec<(String, String)>, LookupError> {
        self.current()?
            .entries()
            .map_err(|e| self.unavailable("read database", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("user{i}@example.com"), format!("value {i}")))
            .collect()
    }

    #[test]
    fn write_then_look_up_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("virtual");
        std::fs::write(&source, "").unwrap();
        for n in [0usize, 1, 7, 8, 9, 1000] {
            let entries = pairs(n);
            write_index(&db_path(&source), &entries).unwrap();
            let t = HashTable::new(
                &format!("hash:{}", source.display()),
                source.to_str().unwrap(),
            );
            for (k, v) in &entries {
                assert_eq!(
                    t.lookup(k).unwrap().as_deref(),
                    Some(v.as_str()),
                    "n={n} {k}"
                );
            }
            assert_eq!(t.lookup("absent@example.com").unwrap(), None);
            assert_eq!(t.lookup("").unwrap(), None);
            assert_eq!(t.entries().unwrap(), entries);
        }
    }

    #[test]
    fn missing_index_is_a_temporary_failure_with_postfix_wording() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("aliases");
        let spec = format!("hash:{}", source.display());
        let t = HashTable::new(&spec, source.to_str().unwrap()).checking_always();
        let err = t.lookup("root").unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "{spec} is unavailable. open database {}.db: No such file or directory",
                source.display()
            )
        );
        // Building the index makes the same table work, without reopening it.
        write_index(&db_path(&source), &[("root".into(), "jerry".into())]).unwrap();
        assert_eq!(t.lookup("root").unwrap().as_deref(), Some("jerry"));
        // A rebuild is noticed.
        write_index(&db_path(&source), &[("root".into(), "tom".into())]).unwrap();
        assert_eq!(t.lookup("root").unwrap().as_deref(), Some("tom"));
    }

    #[test]
    fn a_rebuilt_table_is_used_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("virtual");
        write_index(&db_path(&source), &[("a".into(), "one".into())]).unwrap();
        let t = HashTable::new("hash:virtual", source.to_str().unwrap());
        assert_eq!(t.lookup("a").unwrap().as_deref(), Some("one"));
        write_index(&db_path(&source), &[("a".into(), "two".into())]).unwrap();
        let start = std::time::Instant::now();
        while t.lookup("a").unwrap().as_deref() != Some("two") {
            assert!(
                start.elapsed() < RECHECK * 3,
                "the rebuilt table was never used"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("t");
        let db = db_path(&source);
        write_index(&db, &pairs(50)).unwrap();
        let good = std::fs::read(&db).unwrap();
        let t = HashTable::new("hash:t", source.to_str().unwrap()).checking_always();
        // Truncations and bit flips anywhere: lookups answer or fail, never panic.
        for cut in [0, 10, 63, 64, 100, good.len() - 1] {
            std::fs::write(&db, &good[..cut]).unwrap();
            assert!(t.lookup("user1@example.com").is_err(), "cut {cut}");
        }
        for pos in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[pos] ^= 0xff;
            std::fs::write(&db, &bad).unwrap();
            let _ = t.lookup("user1@example.com");
            let _ = t.entries();
        }
        std::fs::write(
            &db,
            b"not a database at all, but long enough to hold a header of sixty-four bytes",
        )
        .unwrap();
        let err = t.lookup("x").unwrap_err();
        assert!(err.0.contains("not an ironpost hash table"), "{}", err.0);
    }
}
