//! One folder as the IMAP sessions of this process share it
//! ([`Folder`]: the Maildir, its index and keywords, one per folder
//! whatever the number of sessions), and what one session has been told
//! about it ([`View`]: the messages by sequence number, their flags as
//! last reported, what is still to report).
//!
//! Every change goes through the folder's lock: a session's STORE,
//! EXPUNGE, APPEND or COPY, and [`Folder::sync`], which takes a Maildir
//! snapshot and brings the index in line (deliveries, other programs,
//! POP3). After a change the folder's watchers are told
//! ([`crate::store::notify`]), so sessions in IDLE report it at once.
//! For an mbox INBOX, [`Folder::write_back`] writes the flags sessions
//! changed into the file's headers (see `super::store`); a [`View`] that
//! is dropped (another SELECT, the end of the connection) has it done in
//! the background.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ironpost_proto::imap::Flag;

use super::fetch::Structure;
use super::store::{Stamp, Store};
use crate::store::flags::Flags;
use crate::store::index::{self, Index, Sub};
use crate::store::keywords::Keywords;
use crate::store::notify;
use crate::store::{Maildir, Mbox, Message, Snapshot};

/// The shared state of one folder.
pub struct Folder {
    pub path: PathBuf,
    pub store: Store,
    /// Where `dovecot-keywords` is: the Maildir, or for an mbox the
    /// index's directory.
    keywords_dir: PathBuf,
    state: Mutex<State>,
    /// A background sync is on its way ([`Folder::sync_soon`]).
    sync_due: AtomicBool,
    /// Flag changes answered and in the index whose files are not renamed
    /// yet (see [`Folder::defer_renames`]).
    renames: Mutex<Vec<(Message, Flags)>>,
    renames_due: AtomicBool,
    /// Held while those renames are done.
    renaming: Mutex<()>,
    /// When the last of them were done.
    renamed_at: Mutex<Option<Instant>>,
}

pub struct State {
    pub index: Index,
    pub keywords: Keywords,
    /// Where the keywords file is.
    keywords_dir: PathBuf,
    /// The last snapshot (for reads, copies and renames by UID).
    pub snapshot: Arc<Snapshot>,
    /// The folder's stamp before the last snapshot.
    token: Option<Stamp>,
    /// ENVELOPE and BODYSTRUCTURE of messages fetched lately, decoded
    /// (the index's cache holds them all, encoded, on disk).
    structures: HashMap<u32, Arc<Structure>>,
}

/// How long after a change a background sync waits ([`Folder::sync_soon`]).
const SYNC_DELAY: std::time::Duration = std::time::Duration::from_millis(60);

/// How many decoded structures a folder keeps in memory.
const STRUCTURES: usize = 200_000;

type Table = HashMap<PathBuf, Weak<Folder>>;
static OPEN: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(HashMap::new()));
/// Folders used lately stay open although no session holds them, so that
/// the next STATUS, SELECT or login finds the index and the scan of the
/// Maildir in memory instead of reading both again.
static KEPT: LazyLock<Mutex<VecDeque<Arc<Folder>>>> = LazyLock::new(|| Mutex::new(VecDeque::new()));
/// How many.
const KEEP: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Folder {
    /// The shared state of the folder at `path`, opened (and created
    /// when `create`) if no session has it open.
    pub fn open(path: &Path, data_directory: &Path, create: bool) -> io::Result<Arc<Folder>> {
        Folder::open_as(path, data_directory, create, false)
    }

    /// [`Folder::open`] of the mbox file `path` (a system user's INBOX).
    pub fn open_mbox(path: &Path, data_directory: &Path) -> io::Result<Arc<Folder>> {
        Folder::open_as(path, data_directory, false, true)
    }

    fn open_as(
        path: &Path,
        data_directory: &Path,
        create: bool,
        mbox: bool,
    ) -> io::Result<Arc<Folder>> {
        let mut t = lock(&OPEN);
        if let Some(f) = t.get(path).and_then(Weak::upgrade) {
            keep(&f);
            return Ok(f);
        }
        let index_dir = index::state_dir(data_directory, "index", path);
        let (store, keywords_dir) = if mbox {
            let m = Mbox::open(path, &index::state_dir(data_directory, "mbox", path))?;
            (Store::Mbox(m), index_dir.clone())
        } else {
            (
                Store::Maildir(Maildir::open(path, create)?),
                path.to_path_buf(),
            )
        };
        let index = Index::open(&index_dir)?;
        let keywords = Keywords::load(&keywords_dir)?;
        let snapshot = Arc::new(Snapshot {
            uidvalidity: 0,
            uidnext: 1,
            messages: Vec::new(),
        });
        let f = Arc::new(Folder {
            path: path.to_path_buf(),
            store,
            keywords_dir: keywords_dir.clone(),
            sync_due: AtomicBool::new(false),
            renames: Mutex::new(Vec::new()),
            renames_due: AtomicBool::new(false),
            renaming: Mutex::new(()),
            renamed_at: Mutex::new(None),
            state: Mutex::new(State {
                index,
                keywords,
                keywords_dir,
                snapshot,
                token: None,
                structures: HashMap::new(),
            }),
        });
        t.retain(|_, w| w.strong_count() > 0);
        t.insert(path.to_path_buf(), Arc::downgrade(&f));
        keep(&f);
        Ok(f)
    }

    /// After a change made by a session: a snapshot in the background
    /// once the directories have settled, so that the next SELECT or
    /// STATUS finds the folder in step with its files instead of reading
    /// them again while the client waits.
    pub fn sync_soon(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.sync_due.swap(true, Ordering::AcqRel) {
            return;
        }
        let f = self.clone();
        rt.spawn(async move {
            tokio::time::sleep(SYNC_DELAY).await;
            f.sync_due.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(move || {
                // After deferred renames, the directories' mtimes are let
                // settle first: a scan of a directory changed a moment
                // ago is not trusted by the next one, which would read it
                // all again.
                f.settle_quietly();
                let since = lock(&f.renamed_at).map(|t| t.elapsed());
                if let Some(since) = since
                    && since < SYNC_DELAY
                {
                    std::thread::sleep(SYNC_DELAY - since);
                }
                drop(f.sync())
            })
            .await;
        });
    }

    /// Flag changes of a STORE, already in the index (which names each
    /// file as it will be) and answered: the files are renamed after the
    /// answer, by [`Folder::settle_soon`], and before anything else looks
    /// at them. Given under the state's lock, so that a sync, which
    /// settles first under the same lock, never sees the index ahead of
    /// the files. Ten thousand renames take the kernel 100 ms and more;
    /// the client need not wait for them.
    pub fn defer_renames(&self, changes: Vec<(Message, Flags)>) {
        if changes.is_empty() {
            return;
        }
        let mut r = lock(&self.renames);
        r.extend(changes);
        self.renames_due.store(true, Ordering::Release);
    }

    /// Whether renames wait or are being done ([`Folder::defer_renames`]).
    pub fn renames_due(&self) -> bool {
        self.renames_due.load(Ordering::Acquire)
    }

    /// Does the renames that wait, or waits for those being done; when it
    /// returns, the files are named as the index says (or gone, or moved
    /// by another program: the next sync tells).
    pub fn settle(&self) -> io::Result<()> {
        if !self.renames_due() {
            return Ok(());
        }
        let _renaming = lock(&self.renaming);
        loop {
            let todo = {
                let mut r = lock(&self.renames);
                if r.is_empty() {
                    self.renames_due.store(false, Ordering::Release);
                    return Ok(());
                }
                std::mem::take(&mut *r)
            };
            let pairs: Vec<(&Message, Flags)> = todo.iter().map(|(m, f)| (m, f.clone())).collect();
            let done = self.store.set_flags_many(&pairs);
            *lock(&self.renamed_at) = Some(Instant::now());
            // On an error the files keep the names they have, and the
            // next sync takes the flags from them, as for a change by
            // another program.
            done?;
        }
    }

    /// The state, locked, with no deferred renames left or under way:
    /// for a session that renames files itself, which must not race
    /// with them (the same file renamed twice at once would keep the
    /// older flags).
    pub fn lock_settled(&self) -> MutexGuard<'_, State> {
        let st = self.lock();
        self.settle_quietly();
        st
    }

    /// [`Folder::settle`], an error logged.
    fn settle_quietly(&self) {
        if let Err(e) = self.settle() {
            tracing::warn!("{}: renaming for new flags: {e}", self.path.display());
        }
    }

    /// [`Folder::settle`] on a blocking thread, now.
    pub fn settle_soon(self: &Arc<Self>) {
        if !self.renames_due() {
            return;
        }
        let f = self.clone();
        let settle = move || f.settle_quietly();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(settle)),
            Err(_) => settle(),
        }
    }

    /// Forgets the folder at `path` (deleted or renamed): the next open
    /// starts afresh.
    pub fn forget(path: &Path) {
        lock(&KEPT).retain(|f| f.path != path);
        lock(&OPEN).remove(path);
    }

    /// The state, locked.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes a snapshot and brings the index in line; tells the watchers
    /// when something changed. Returns the locked state.
    pub fn sync(&self) -> io::Result<MutexGuard<'_, State>> {
        let mut st = self.lock();
        self.settle_quietly();
        let token = self.store.stamp();
        if token.is_some() && token == st.token {
            // Nothing changed on disk since the last snapshot.
            return Ok(st);
        }
        let state = &mut *st;
        let (snap, new_keywords) = self.store.snapshot(&state.index, &mut state.keywords)?;
        if new_keywords {
            state.keywords.save(&self.keywords_dir)?;
        }
        let changes = st.index.apply(&snap)?;
        st.snapshot = Arc::new(snap);
        st.token = token;
        st.keywords = Keywords::load(&self.keywords_dir).unwrap_or_else(|_| st.keywords.clone());
        if !changes.is_empty() {
            notify::changed(&self.path);
        }
        Ok(st)
    }

    /// For an mbox: writes the flags sessions changed into the file's
    /// headers ([`Store::write_back`]), after a sync (so that a change
    /// another program made to the headers meanwhile wins). Sessions are
    /// told nothing: no flag changes by it.
    pub fn write_back(&self) -> io::Result<()> {
        {
            let st = self.lock();
            if !self.store.needs_write_back(&st.index, &st.keywords) {
                return Ok(());
            }
        }
        let mut st = self.sync()?;
        let state = &mut *st;
        let n = self.store.write_back(&mut state.index, &state.keywords)?;
        drop(st);
        if n > 0 {
            drop(self.sync()?);
        }
        Ok(())
    }
}

/// Puts `f` first among the folders kept open.
fn keep(f: &Arc<Folder>) {
    let mut k = lock(&KEPT);
    if k.front().is_some_and(|x| Arc::ptr_eq(x, f)) {
        return;
    }
    k.retain(|x| !Arc::ptr_eq(x, f));
    k.push_front(f.clone());
    k.truncate(KEEP);
}

impl State {
    /// The cached structure of `uid`, from memory or the index's cache.
    pub fn structure(&mut self, uid: u32) -> Option<Arc<Structure>> {
        if let Some(s) = self.structures.get(&uid) {
            return Some(s.clone());
        }
        let s = Arc::new(Structure::decode(&self.index.cached(uid)?)?);
        self.remember(uid, &s);
        Some(s)
    }

    /// Stores the structure of `uid` in memory and in the index's cache.
    pub fn set_structure(&mut self, uid: u32, s: &Arc<Structure>) {
        // A cache that cannot be written is only slower.
        let _ = self.index.set_cached(uid, &s.encode());
        self.remember(uid, s);
    }

    fn remember(&mut self, uid: u32, s: &Arc<Structure>) {
        if self.structures.len() >= STRUCTURES {
            self.structures.clear();
        }
        self.structures.insert(uid, s.clone());
    }

    /// The snapshot's message of `uid`.
    pub fn message(&self, uid: u32) -> Option<&Message> {
        self.snapshot.get(uid)
    }

    /// IMAP flags of a record (no \Recent).
    pub fn flags_of(&self, flags: &Flags) -> Vec<Flag> {
        to_imap(flags, &self.keywords)
    }

    /// The keywords defined in this folder, for FLAGS and PERMANENTFLAGS.
    pub fn keyword_flags(&self) -> Vec<Flag> {
        self.keywords
            .names()
            .map(|n| Flag::Keyword(n.to_string()))
            .collect()
    }

    /// Maildir flags for IMAP flags, new keywords given letters (saved in
    /// `path`'s keywords file). Keywords past the 26 letters are dropped.
    pub fn to_maildir(&mut self, flags: &[Flag], keep: &Flags) -> io::Result<Flags> {
        let mut out = Flags {
            passed: keep.passed,
            ..Flags::default()
        };
        let mut added = false;
        for f in flags {
            match f {
                Flag::Seen => out.seen = true,
                Flag::Answered => out.answered = true,
                Flag::Flagged => out.flagged = true,
                Flag::Deleted => out.deleted = true,
                Flag::Draft => out.draft = true,
                Flag::Keyword(k) => {
                    let (letter, new) = self.keywords.letter_or_add(k);
                    added |= new;
                    if let Some(l) = letter
                        && !out.keywords.contains(&l)
                    {
                        out.keywords.push(l);
                    }
                }
                Flag::Recent | Flag::Extension(_) | Flag::Wildcard => {}
            }
        }
        out.keywords.sort_unstable();
        if added {
            self.keywords.save(&self.keywords_dir)?;
        }
        Ok(out)
    }
}

/// IMAP flags of Maildir flags.
pub fn to_imap(flags: &Flags, keywords: &Keywords) -> Vec<Flag> {
    let mut out = Vec::with_capacity(4);
    if flags.seen {
        out.push(Flag::Seen);
    }
    if flags.answered {
        out.push(Flag::Answered);
    }
    if flags.flagged {
        out.push(Flag::Flagged);
    }
    if flags.deleted {
        out.push(Flag::Deleted);
    }
    if flags.draft {
        out.push(Flag::Draft);
    }
    for &l in &flags.keywords {
        if let Some(name) = keywords.name(l) {
            out.push(Flag::Keyword(name.to_string()));
        }
    }
    out
}

/// The INTERNALDATE of a record, seconds since the epoch.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// One message as a session knows it.
#[derive(Debug, Clone)]
pub struct Known {
    pub uid: u32,
    /// The MODSEQ whose flags the session last reported.
    pub modseq: u64,
    pub recent: bool,
}

/// What [`View::refresh`] found to report.
#[derive(Debug, Default)]
pub struct Update {
    /// Sequence numbers to announce as expunged, in the order to send
    /// them (each as it is at its turn).
    pub expunged: Vec<u32>,
    /// UIDs expunged (for VANISHED).
    pub vanished: Vec<u32>,
    /// The new EXISTS, when it changed.
    pub exists: Option<u32>,
    pub recent: Option<u32>,
    /// Messages whose flags changed: (seq, uid).
    pub flags: Vec<(u32, u32)>,
    /// New keywords appeared: FLAGS and PERMANENTFLAGS again.
    pub keywords: bool,
    /// The UIDVALIDITY changed: the session must end.
    pub reset: bool,
}

/// What one session has been told about its selected folder.
pub struct View {
    pub folder: Arc<Folder>,
    pub watch: notify::Watch,
    pub read_only: bool,
    pub uidvalidity: u32,
    /// By sequence number (index 0 is message 1), ascending UID.
    pub msgs: Vec<Known>,
    /// Keyword count last reported in FLAGS.
    pub keyword_count: usize,
    /// The index's HIGHESTMODSEQ at the last refresh: while it stays, the
    /// folder did not change.
    seen_modseq: u64,
    /// Expunges found but not reported yet.
    pending: bool,
    /// UIDs this session added to the folder (APPEND, COPY, MOVE) and
    /// has not seen yet, ascending (new UIDs only grow): \Recent for it
    /// when it does (RFC 3501 §6.3.11, §6.4.7), as no other session can
    /// have seen them first.
    pub added: Vec<u32>,
}

impl Drop for View {
    /// A session that leaves its mbox folder (another SELECT, the end of
    /// the connection) has its flag changes written into the file; in
    /// the background (CLOSE, UNSELECT, LOGOUT and CHECK did it already).
    /// The renames a last STORE left are done now: a connection that
    /// ends, or a server that stops, leaves none behind.
    fn drop(&mut self) {
        self.folder.settle_quietly();
        let folder = self.folder.clone();
        let pending = {
            let st = folder.lock();
            folder.store.needs_write_back(&st.index, &st.keywords)
        };
        if !pending {
            return;
        }
        let write = move || {
            if let Err(e) = folder.write_back() {
                tracing::warn!("{}: writing flags back: {e}", folder.path.display());
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(write)),
            Err(_) => write(),
        }
    }
}

impl View {
    /// Opens the view of a folder (SELECT/EXAMINE): every message, those
    /// in `new/` recent (and moved to `cur/` unless read-only).
    pub fn open(folder: Arc<Folder>, read_only: bool) -> io::Result<View> {
        let watch = notify::watch(&folder.path);
        let mut v = View {
            folder,
            watch,
            read_only,
            uidvalidity: 0,
            msgs: Vec::new(),
            keyword_count: 0,
            seen_modseq: 0,
            pending: false,
            added: Vec::new(),
        };
        v.watch.receiver.mark_unchanged();
        let folder = v.folder.clone();
        let mut st = folder.sync()?;
        v.uidvalidity = st.index.uidvalidity();
        v.seen_modseq = st.index.highestmodseq();
        v.keyword_count = st.keywords.names().count();
        let recent: Vec<u32> = st
            .index
            .records()
            .iter()
            .filter(|r| r.sub == Sub::New)
            .map(|r| r.uid)
            .collect();
        v.msgs = st
            .index
            .records()
            .iter()
            .map(|r| Known {
                uid: r.uid,
                modseq: r.modseq,
                recent: r.sub == Sub::New,
            })
            .collect();
        if !read_only && !recent.is_empty() {
            take_in(&folder, &mut st, &recent)?;
            drop(st);
            folder.sync_soon();
        }
        // Our own change: sessions already watching see the new MODSEQs.
        Ok(v)
    }

    pub fn exists(&self) -> u32 {
        self.msgs.len() as u32
    }

    pub fn recent(&self) -> u32 {
        self.msgs.iter().filter(|m| m.recent).count() as u32
    }

    pub fn max_uid(&self) -> u32 {
        self.msgs.last().map(|m| m.uid).unwrap_or(0)
    }

    /// The sequence number of `uid`.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Syncs the folder and tells what the session has to report. With
    /// `expunges` false (during FETCH, STORE, SEARCH), expunged messages
    /// stay in the view, to be reported later; new messages and flag
    /// changes are always taken in.
    pub fn refresh(&mut self, expunges: bool, rescan: bool) -> io::Result<Update> {
        let folder = self.folder.clone();
        let mut st = if rescan {
            folder.sync()?
        } else {
            folder.lock()
        };
        let mut up = Update::default();
        if st.index.uidvalidity() != self.uidvalidity {
            up.reset = true;
            return Ok(up);
        }
        let kw = st.keywords.names().count();
        if !self.pending && kw == self.keyword_count && st.index.highestmodseq() == self.seen_modseq
        {
            return Ok(up);
        }
        if kw != self.keyword_count {
            self.keyword_count = kw;
            up.keywords = true;
        }
        let records = st.index.records();
        let before = self.msgs.len();
        // Expunged: known UIDs the index no longer has.
        let mut gone = Vec::new();
        for (i, k) in self.msgs.iter().enumerate() {
            if st.index.get(k.uid).is_none() {
                gone.push(i);
            }
        }
        self.pending = !expunges && !gone.is_empty();
        if expunges && !gone.is_empty() {
            // Highest first: the numbers of those still to send do not
            // move.
            for &i in gone.iter().rev() {
                up.expunged.push(i as u32 + 1);
                up.vanished.push(self.msgs[i].uid);
            }
            up.vanished.reverse();
            let mut keep = gone.iter().peekable();
            let mut i = 0;
            self.msgs.retain(|_| {
                let drop = keep.peek().is_some_and(|&&g| g == i);
                if drop {
                    keep.next();
                }
                i += 1;
                !drop
            });
        }
        // Flag changes.
        for (i, k) in self.msgs.iter_mut().enumerate() {
            if let Some(r) = st.index.get(k.uid)
                && r.modseq != k.modseq
            {
                k.modseq = r.modseq;
                up.flags.push((i as u32 + 1, k.uid));
            }
        }
        // New messages.
        let max = self.msgs.last().map(|m| m.uid).unwrap_or(0);
        let start = records.partition_point(|r| r.uid <= max);
        let mut fresh_recent = Vec::new();
        for r in &records[start..] {
            let recent = r.sub == Sub::New;
            if recent {
                fresh_recent.push(r.uid);
            }
            self.msgs.push(Known {
                uid: r.uid,
                modseq: r.modseq,
                recent: recent || self.added.binary_search(&r.uid).is_ok(),
            });
        }
        let last = self.msgs.last().map_or(0, |m| m.uid);
        self.added.retain(|&u| u > last);
        let added = self.msgs.len() + up.expunged.len() != before;
        // EXPUNGE already lowers the count: EXISTS only for new ones.
        if added {
            up.exists = Some(self.exists());
        }
        if added {
            up.recent = Some(self.recent());
        }
        self.seen_modseq = st.index.highestmodseq();
        if !self.read_only && !fresh_recent.is_empty() {
            take_in(&folder, &mut st, &fresh_recent)?;
            // Our own move is no flag change to report.
            for k in self.msgs.iter_mut() {
                if let Some(r) = st.index.get(k.uid) {
                    k.modseq = k.modseq.max(r.modseq);
                }
            }
        }
        Ok(up)
    }
}

/// Moves `uids` from `new/` to `cur/`: they have been seen by a session
/// (IMAP's \Recent is this session's only).
fn take_in(folder: &Folder, st: &mut State, uids: &[u32]) -> io::Result<()> {
    let snap = st.snapshot.clone();
    let msgs: Vec<&Message> = uids.iter().filter_map(|&u| snap.get(u)).collect();
    // Not while deferred renames of the same files may be under way.
    folder.settle_quietly();
    let paths = folder.store.move_new_to_cur(&msgs)?;
    let names: Vec<(u32, String)> = msgs
        .iter()
        .zip(paths)
        .filter_map(|(m, p)| Some((m.uid, p?.file_name()?.to_str()?.to_string())))
        .collect();
    let renames: Vec<(u32, Sub, &str)> = names
        .iter()
        .map(|(u, n)| (*u, Sub::Cur, n.as_str()))
        .collect();
    st.index.renamed_many(&renames)?;
    // The snapshot's paths are stale now; reads follow moved files.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STORE as the session does it: the index names the files as they
    /// will be, the renames wait.
    fn store_seen(folder: &Folder, uids: &[u32]) {
        let mut st = folder.lock();
        let Store::Maildir(md) = &folder.store else {
            panic!("a Maildir folder")
        };
        let seen = Flags {
            seen: true,
            ..Flags::default()
        };
        let mut deferred = Vec::new();
        let mut names = Vec::new();
        for &uid in uids {
            let mut m = st.message(uid).unwrap().clone();
            m.path = folder.path.join(st.index.get(uid).unwrap().rel_path());
            let target = md.flag_target(&m, &seen);
            names.push((
                uid,
                target.file_name().unwrap().to_str().unwrap().to_string(),
            ));
            deferred.push((m, seen.clone()));
        }
        let renames: Vec<(u32, Sub, &str)> = names
            .iter()
            .map(|(u, n)| (*u, Sub::Cur, n.as_str()))
            .collect();
        st.index.renamed_many(&renames).unwrap();
        folder.defer_renames(deferred);
    }

    fn seen_on_disk(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("cur"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_str().unwrap().ends_with(":2,S")
            })
            .count()
    }

    #[test]
    fn deferred_renames_are_done_before_a_sync_so_no_flag_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Maildir");
        let folder = Folder::open(&path, &dir.path().join("data"), true).unwrap();
        let Store::Maildir(md) = &folder.store else {
            panic!("a Maildir folder")
        };
        for i in 0..5 {
            md.append(
                format!("Subject: {i}\n\nbody\n").as_bytes(),
                &Flags::default(),
                None,
            )
            .unwrap();
        }
        drop(folder.sync().unwrap());
        let uids: Vec<u32> = folder
            .lock()
            .index
            .records()
            .iter()
            .map(|r| r.uid)
            .collect();
        assert_eq!(uids.len(), 5);

        store_seen(&folder, &uids[..3]);
        // Answered, not yet on disk.
        assert!(folder.renames_due());
        assert_eq!(seen_on_disk(&path), 0);
        // A sync (another session's NOOP, SELECT, a background sync) does
        // the renames first: the index keeps the new flags.
        let st = folder.sync().unwrap();
        assert!(!folder.renames_due());
        for &u in &uids[..3] {
            assert!(st.index.get(u).unwrap().flags().seen, "UID {u}");
        }
        for &u in &uids[3..] {
            assert!(!st.index.get(u).unwrap().flags().seen, "UID {u}");
        }
        drop(st);
        assert_eq!(seen_on_disk(&path), 3);

        // From the background, as after an answer.
        store_seen(&folder, &uids[3..]);
        let f = folder.clone();
        std::thread::spawn(move || f.settle().unwrap())
            .join()
            .unwrap();
        assert!(!folder.renames_due());
        assert_eq!(seen_on_disk(&path), 5);
        let st = folder.sync().unwrap();
        assert!(st.index.records().iter().all(|r| r.flags().seen));
    }
}
