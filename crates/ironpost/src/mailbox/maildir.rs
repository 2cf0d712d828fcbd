//! Maildir delivery, as Postfix's local(8) and virtual(8) do it and as
//! Dovecot, mutt and every Maildir reader expect.
//!
//! ## Format
//! A Maildir is a directory with `tmp/`, `new/` and `cur/`; each message is
//! one file. Delivery (D. J. Bernstein's protocol, as Postfix does it):
//!
//! 1. create missing directories (mode 0700, owned by the recipient), as
//!    Postfix's `make_dirs()` does;
//! 2. create `tmp/<unique>` exclusively (mode 0600), write the message with
//!    LF line ends (the SMTP form has CRLF; Postfix and every Maildir tool
//!    store LF);
//! 3. hard-link it into `new/` (rename when the file system has no hard
//!    links), then commit the file and the new name to stable storage
//!    ([`crate::durable::commit`], shared with concurrent deliveries);
//!    only now is the message delivered;
//! 4. remove the `tmp/` name. On any error the `tmp/` file is removed too,
//!    so nothing is left behind and the caller can defer.
//!
//! The unique name follows Dovecot:
//! `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<wire size>`. `Q<n>` counts
//! deliveries in this process, so one process never repeats a name. `S=` is
//! the size of the stored (LF) file and `W=` the size with CRLF line ends
//! (RFC822.SIZE in IMAP, the POP3 size), both read by Dovecot from the name
//! without opening the file. In the host name `/` becomes `\057` and `:`
//! `\072` (the Maildir spec, Postfix, Dovecot), and `,` becomes `\054` so
//! that it cannot be taken for the start of `,S=`.
//!
//! Folders are Maildir++ (Courier, Dovecot's default layout): the folder
//! `Sent` is the Maildir `.Sent` inside the root, `Archive/2024` is
//! `.Archive.2024`; see [`folder_path`].
//!
//! ## Privileges
//! Postfix writes a Maildir with the recipient's uid and gid. ironpost runs
//! as root, so with `owner` given it checks, before it creates anything in
//! a directory, that the owner (with the owner's primary group only, as
//! Postfix's `set_eugid()` sets it) could write that directory. Directories
//! are opened once and used through their descriptors (`openat`, `mkdirat`,
//! `linkat`), so a symlink swapped in after the check is not followed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, linkat, unlinkat};

use super::context;

/// How many names to try when a name is already taken in `new/`.
const NAME_TRIES: usize = 10;

/// CRLF line ends to LF. A CR not followed by LF is kept.
pub fn to_lf(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while let Some(&b) = content.get(i) {
        if !(b == b'\r' && content.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// The size of `stored` (LF line ends) with CRLF line ends, counted as
/// Dovecot counts the virtual size: every LF not preceded by CR adds one.
pub fn wire_size(stored: &[u8]) -> u64 {
    let mut size = stored.len() as u64;
    let mut prev = 0u8;
    for &b in stored {
        if b == b'\n' && prev != b'\r' {
            size += 1;
        }
        prev = b;
    }
    size
}

/// The host name as it appears in Maildir file names: `/` → `\057`,
/// `:` → `\072`, `,` → `\054`.
pub fn escape_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c => out.push(c),
        }
    }
    out
}

/// The host name part of new file names (looked up once: it is in every
/// file name, and the host's name does not change under a running daemon).
fn hostname() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        if host.is_empty() {
            "localhost".to_string()
        } else {
            escape_host(&host)
        }
    })
    .clone()
}

/// A new unique file name: `<secs>.M<usecs>P<pid>Q<n>.<host>,S=..,W=..`.
fn unique_name(host: &str, size: usize, wire: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{host},S={size},W={wire}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    )
}

/// Could `owner` (uid, primary gid) create entries in the directory `st`?
/// The kernel's rule: the owner class if the uid matches, else the group
/// class if the gid matches, else others; write and search are needed.
fn owner_may_write(st: &nix::sys::stat::FileStat, (uid, gid): (u32, u32)) -> bool {
    if uid == 0 {
        return true;
    }
    let mode = st.st_mode;
    let needed = if st.st_uid == uid {
        0o300
    } else if st.st_gid == gid {
        0o030
    } else {
        0o003
    };
    mode & needed == needed
}

/// Refuses to write into `dir` when `owner` could not.
fn check_writable(dir: &OwnedFd, owner: Option<(u32, u32)>, path: &Path) -> io::Result<()> {
    let Some(owner) = owner else {
        return Ok(());
    };
    let st = fstat(dir).map_err(|e| context(format!("stat {}", path.display()), e.into()))?;
    if owner_may_write(&st, owner) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: not writable for uid/gid {}/{}",
                path.display(),
                owner.0,
                owner.1
            ),
        ))
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);

/// Opens the directory `path` (following symlinks, as the recipient's own
/// processes would), creating it and missing parents.
fn ensure_dir(path: &Path, owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(path)
    {
        Ok(f) => return Ok(OwnedFd::from(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(context(format!("open {}", path.display()), e)),
    }
    let Some(Component::Normal(name)) = path.components().next_back() else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no such directory", path.display()),
        ));
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent_fd = ensure_dir(parent, owner)?;
    subdir(&parent_fd, parent, name, owner)
}

/// Opens the directory `name` in `parent`, creating it (mode 0700, owned
/// by `owner`) when missing.
fn subdir(
    parent: &OwnedFd,
    parent_path: &Path,
    name: &OsStr,
    owner: Option<(u32, u32)>,
) -> io::Result<OwnedFd> {
    let path = parent_path.join(name);
    let open = |flags| {
        openat(parent, name, flags, Mode::empty())
            .map_err(|e| context(format!("open {}", path.display()), e.into()))
    };
    match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(context(format!("open {}", path.display()), e.into())),
    }
    check_writable(parent, owner, parent_path)?;
    match mkdirat(parent, name, Mode::S_IRWXU) {
        Ok(()) => {
            let fd = open(DIR_FLAGS | OFlag::O_NOFOLLOW)?;
            if let Some((uid, gid)) = owner {
                fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(|e| {
                    context(format!("change owner of {}", path.display()), e.into())
                })?;
            }
            Ok(fd)
        }
        // Made meanwhile by another delivery.
        Err(Errno::EEXIST) => open(DIR_FLAGS),
        Err(e) => Err(context(
            format!("create directory {}", path.display()),
            e.into(),
        )),
    }
}

/// Creates a Maildir's `tmp/ new/ cur/` (and the Maildir itself and its
/// missing parents), mode 0700, owned by `owner` when given.
pub fn create(maildir: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    let root = ensure_dir(maildir, owner)?;
    for sub in ["tmp", "new", "cur"] {
        subdir(&root, maildir, OsStr::new(sub), owner)?;
    }
    Ok(())
}

/// Delivers `message` (CRLF line ends) into `maildir/new/` and returns the
/// new file's path. Missing directories are created (mode 0700, owned by
/// `owner`). On error nothing is left in `tmp/` or `new/`.
pub fn deliver(maildir: &Path, message: &[u8], owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let data = to_lf(message);
    let wire = wire_size(&data);
    let host = hostname();

    let root = ensure_dir(maildir, owner)?;
    let tmp_path = maildir.join("tmp");
    let tmp = subdir(&root, maildir, OsStr::new("tmp"), owner)?;
    check_writable(&tmp, owner, &tmp_path)?;

    // Create the tmp/ file under a name nobody has.
    let mut tries = 0;
    let (name, fd) = loop {
        let name = unique_name(&host, data.len(), wire);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(&tmp, name.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR) {
            Ok(fd) => break (name, fd),
            Err(Errno::EEXIST) if tries < NAME_TRIES => tries += 1,
            Err(e) => {
                return Err(context(
                    format!("create maildir file {}", tmp_path.join(&name).display()),
                    e.into(),
                ));
            }
        }
    };

    let stored = Stored {
        data: &data,
        wire,
        host: &host,
    };
    let result = write_and_link(maildir, &root, &tmp, &name, File::from(fd), &stored, owner);
    // Whatever happened, the tmp/ name goes: after success the message is
    // in new/, after failure it must not stay behind.
    match unlinkat(&tmp, name.as_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => {
            tracing::warn!("remove {}: {}", tmp_path.join(&name).display(), e.desc());
        }
    }
    if result.is_ok() {
        // An IMAP session in IDLE on this folder reports it at once.
        crate::store::notify::changed(maildir);
    }
    result
}

/// The message as stored, and what its file names are made of.
struct Stored<'a> {
    /// LF line ends.
    data: &'a [u8],
    /// Size with CRLF line ends.
    wire: u64,
    /// Escaped host name.
    host: &'a str,
}

/// Steps 2 and 3: write and fsync the tmp/ file, link it into new/, fsync
/// new/.
fn write_and_link(
    maildir: &Path,
    root: &OwnedFd,
    tmp: &OwnedFd,
    name: &str,
    mut file: File,
    stored: &Stored<'_>,
    owner: Option<(u32, u32)>,
) -> io::Result<PathBuf> {
    let tmp_file = maildir.join("tmp").join(name);
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|e| context(format!("change owner of {}", tmp_file.display()), e))?;
    }
    // Made durable with new/ below (one commit for both).
    file.write_all(stored.data)
        .map_err(|e| context(format!("write maildir file {}", tmp_file.display()), e))?;
    drop(file);

    let new_path = maildir.join("new");
    let new = subdir(root, maildir, OsStr::new("new"), owner)?;
    subdir(root, maildir, OsStr::new("cur"), owner)?;
    check_writable(&new, owner, &new_path)?;

    let mut new_name = name.to_string();
    let mut tries = 0;
    loop {
        match link_or_rename(tmp, name, &new, &new_name) {
            Ok(()) => break,
            Err(Errno::EEXIST) if tries < NAME_TRIES => {
                tries += 1;
                new_name = unique_name(stored.host, stored.data.len(), stored.wire);
            }
            Err(e) => {
                return Err(context(
                    format!("link to {}", new_path.join(&new_name).display()),
                    e.into(),
                ));
            }
        }
    }
    if let Err(e) = crate::queue::sync_dir(&new_path) {
        // Not known to be on disk: take it back so that the retry after
        // the deferral does not deliver it twice.
        let _ = unlinkat(&new, new_name.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(context(format!("fsync {}", new_path.display()), e));
    }
    Ok(new_path.join(new_name))
}

/// Links `tmp/name` to `new/new_name`; where the file system has no hard
/// links, renames it without replacing anything.
fn link_or_rename(tmp: &OwnedFd, name: &str, new: &OwnedFd, new_name: &str) -> nix::Result<()> {
    match linkat(tmp, name, new, new_name, AtFlags::empty()) {
        Err(Errno::EPERM | Errno::EXDEV | Errno::EOPNOTSUPP | Errno::ENOSYS) => {
            rename_noreplace(tmp, name, new, new_name)
        }
        other => other,
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_noreplace(tmp: &OwnedFd, name: &str, new: &OwnedFd, new_name: &str) -> nix::Result<()> {
    use nix::fcntl::{RenameFlags, renameat2};
    renameat2(
        tmp.as_fd(),
        name,
        new.as_fd(),
        new_name,
        RenameFlags::RENAME_NOREPLACE,
    )
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_noreplace(tmp: &OwnedFd, name: &str, new: &OwnedFd, new_name: &str) -> nix::Result<()> {
    // No RENAME_NOREPLACE: check first (names are unique anyway).
    match nix::sys::stat::fstatat(new, new_name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Err(Errno::EEXIST),
        Err(Errno::ENOENT) => nix::fcntl::renameat(tmp, name, new, new_name),
        Err(e) => Err(e),
    }
}

/// The directory of a Maildir++ folder: `Sent` → `root/.Sent`,
/// `Archive/2024` → `root/.Archive.2024`, `INBOX` → `root`. `/` separates
/// levels; a name with an empty level, `.` or `..`, a `.` inside a level
/// (Maildir++'s own separator), a control character or a resulting file
/// name over 255 bytes is refused, so the result is always one directory
/// directly inside `root`.
pub fn folder_path(root: &Path, folder: &str) -> io::Result<PathBuf> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "bad mailbox folder name \"{}\": {why}",
                folder.escape_debug()
            ),
        )
    };
    if folder.eq_ignore_ascii_case("INBOX") {
        return Ok(root.to_path_buf());
    }
    let mut dir = String::with_capacity(folder.len() + 1);
    for part in folder.split('/') {
        if part.is_empty() {
            return Err(bad("empty level"));
        }
        if part.contains('.') {
            return Err(bad("\".\" in a level"));
        }
        if part.chars().any(char::is_control) {
            return Err(bad("control character"));
        }
        dir.push('.');
        dir.push_str(part);
    }
    if dir.len() > 255 {
        return Err(bad("too long"));
    }
    Ok(root.join(dir))
}

/// Creates the Maildir++ folder `folder` under `root` (its `tmp/ new/
/// cur/` and the empty `maildirfolder` file that marks a Maildir++
/// subfolder) and returns its path.
pub fn create_folder(root: &Path, folder: &str, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let path = folder_path(root, folder)?;
    create(&path, owner)?;
    if path != root {
        let marker = path.join("maildirfolder");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&marker)
        {
            Ok(f) => {
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                        .map_err(|e| context(format!("change owner of {}", marker.display()), e))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(context(format!("create {}", marker.display()), e)),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    /// The `,S=` and `,W=` values of a Maildir file name.
    fn sizes(name: &str) -> (u64, u64) {
        let s = name.split(",S=").nth(1).unwrap();
        let (s, w) = s.split_once(",W=").unwrap();
        (s.parse().unwrap(), w.parse().unwrap())
    }

    #[test]
    fn delivery_lands_in_new_as_lf_with_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        let msg = b"Subject: hi\r\n\r\nline one\r\nline two\r\n";
        let path = deliver(&md, msg, None).unwrap();
        assert_eq!(path.parent().unwrap(), md.join("new"));
        let stored = fs::read(&path).unwrap();
        assert_eq!(stored, b"Subject: hi\n\nline one\nline two\n");
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(sizes(&name), (stored.len() as u64, msg.len() as u64));
        assert_eq!(fs::metadata(&path).unwrap().len(), stored.len() as u64);
        // <secs>.M<usecs>P<pid>Q<n>.<host>,S=..,W=..
        let (secs, rest) = name.split_once(".M").unwrap();
        assert!(secs.parse::<u64>().is_ok(), "{name}");
        let (usecs, rest) = rest.split_once('P').unwrap();
        assert!(usecs.parse::<u32>().unwrap() < 1_000_000, "{name}");
        let (pid, rest) = rest.split_once('Q').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        let (q, host) = rest.split_once('.').unwrap();
        assert!(q.parse::<u64>().is_ok(), "{name}");
        assert!(host.starts_with(&hostname()), "{name}");
        assert!(!name.contains(':') && !name.contains('/'), "{name}");
        assert_eq!(count(&md.join("tmp")), 0);
        assert_eq!(count(&md.join("cur")), 0);
        for sub in ["", "tmp", "new", "cur"] {
            let mode = fs::metadata(md.join(sub)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn sizes_count_line_ends_as_dovecot_does() {
        let dir = tempfile::tempdir().unwrap();
        // Mixed: CRLF, bare LF, bare CR, no final line end.
        let msg = b"A: 1\r\nB: 2\n\r\nx\ry\r\nlast";
        let path = deliver(dir.path(), msg, None).unwrap();
        let stored = fs::read(&path).unwrap();
        assert_eq!(stored, b"A: 1\nB: 2\n\nx\ry\nlast");
        let name = path.file_name().unwrap().to_str().unwrap();
        // Four LFs, each one more byte on the wire.
        assert_eq!(sizes(name), (stored.len() as u64, stored.len() as u64 + 4));
        assert_eq!(wire_size(b"a\r\nb\n"), 6);
        assert_eq!(wire_size(b""), 0);
        assert_eq!(to_lf(b"\r\r\n\r"), b"\r\n\r");
    }

    #[test]
    fn host_names_are_escaped() {
        assert_eq!(
            escape_host("mx/1:2,3.example"),
            "mx\\0571\\0722\\0543.example"
        );
        assert_eq!(escape_host("plain.example"), "plain.example");
    }

    #[test]
    fn thousand_deliveries_thousand_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = std::collections::HashSet::new();
        for i in 0..1000 {
            let p = deliver(dir.path(), format!("n: {i}\r\n").as_bytes(), None).unwrap();
            assert!(names.insert(p));
        }
        assert_eq!(count(&dir.path().join("new")), 1000);
        assert_eq!(count(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn concurrent_deliveries_from_threads() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("m");
        std::thread::scope(|s| {
            for t in 0..4 {
                let md = &md;
                s.spawn(move || {
                    for i in 0..100 {
                        deliver(md, format!("t{t}: {i}\r\n").as_bytes(), None).unwrap();
                    }
                });
            }
        });
        assert_eq!(count(&md.join("new")), 400);
        assert_eq!(count(&md.join("tmp")), 0);
    }

    #[test]
    fn failed_delivery_leaves_nothing_in_tmp() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), None).unwrap();
        let new = dir.path().join("new");
        if is_root() {
            // Permissions do not stop root: make new/ a file, so the link
            // fails after the tmp/ file was written.
            fs::remove_dir(&new).unwrap();
            fs::write(&new, b"").unwrap();
            let err = deliver(dir.path(), b"x\r\n", None).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
        } else {
            fs::set_permissions(&new, fs::Permissions::from_mode(0o500)).unwrap();
            let err = deliver(dir.path(), b"x\r\n", None).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
            fs::set_permissions(&new, fs::Permissions::from_mode(0o700)).unwrap();
            assert_eq!(count(&new), 0);
        }
        assert_eq!(count(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn owner_gets_directories_and_file() {
        if !is_root() {
            eprintln!("skipped: needs root to give files away");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // The user's home, where the Maildir does not exist yet.
        std::os::unix::fs::chown(dir.path(), Some(65534), Some(65533)).unwrap();
        let md = dir.path().join("home/Maildir");
        let path = deliver(&md, b"x\r\n", Some((65534, 65533))).unwrap();
        for p in [
            md.join("tmp"),
            md.join("new"),
            md.join("cur"),
            md.clone(),
            path,
        ] {
            let m = fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (65534, 65533), "{}", p.display());
        }
    }

    #[test]
    fn owner_cannot_be_made_to_write_where_it_may_not() {
        if !is_root() {
            eprintln!("skipped: needs root to deliver for another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let nobody = Some((65534, 65534));
        std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        // The user's Maildir with new/ pointing into a root-only directory.
        let md = dir.path().join("Maildir");
        create(&md, nobody).unwrap();
        let secret = dir.path().join("secret");
        fs::create_dir(&secret).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o755)).unwrap();
        fs::remove_dir(md.join("new")).unwrap();
        std::os::unix::fs::symlink(&secret, md.join("new")).unwrap();
        let err = deliver(&md, b"x\r\n", nobody).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert_eq!(count(&secret), 0);
        assert_eq!(count(&md.join("tmp")), 0);
        // A Maildir to be created in a directory the user may not write.
        let err = deliver(&secret.join("Maildir"), b"x\r\n", nobody).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert_eq!(count(&secret), 0);
        // Group write permission is honoured.
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o770)).unwrap();
        std::os::unix::fs::chown(&secret, Some(0), Some(65534)).unwrap();
        deliver(&secret.join("Maildir"), b"x\r\n", nobody).unwrap();
    }

    #[test]
    fn python_reads_the_maildir() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        let one = b"Subject: one\r\n\r\nFrom me\r\nbody\r\n";
        let two = b"Subject: two\r\n\r\nno final newline";
        deliver(&md, one, None).unwrap();
        deliver(&md, two, None).unwrap();
        let script = "import mailbox, sys\n\
                      md = mailbox.Maildir(sys.argv[1], factory=None, create=False)\n\
                      for raw in sorted(md.get_bytes(k) for k in md.keys()):\n\
                      \x20   sys.stdout.buffer.write(raw + b'\\0')\n";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&md)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<&[u8]> = out
            .stdout
            .split(|&b| b == 0)
            .filter(|m| !m.is_empty())
            .collect();
        assert_eq!(got, vec![&to_lf(one)[..], &to_lf(two)[..]]);
    }

    #[test]
    fn folders() {
        let root = Path::new("/m");
        assert_eq!(folder_path(root, "Sent").unwrap(), Path::new("/m/.Sent"));
        assert_eq!(
            folder_path(root, "Archive/2024").unwrap(),
            Path::new("/m/.Archive.2024")
        );
        assert_eq!(folder_path(root, "INBOX").unwrap(), Path::new("/m"));
        assert_eq!(folder_path(root, "inbox").unwrap(), Path::new("/m"));
        assert_eq!(
            folder_path(root, "Über uns").unwrap(),
            Path::new("/m/.Über uns")
        );
        let long = "x".repeat(300);
        for bad in [
            "", "..", ".", "a/../b", "a//b", "/abs", "abs/", "a.b", "../x", "a\nb", "a\0b", &long,
        ] {
            let err = folder_path(root, bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn folder_is_created_and_delivered_to() {
        let dir = tempfile::tempdir().unwrap();
        let sent = create_folder(dir.path(), "Archive/2024", None).unwrap();
        assert_eq!(sent, dir.path().join(".Archive.2024"));
        assert!(sent.join("maildirfolder").is_file());
        assert!(sent.join("cur").is_dir());
        deliver(&sent, b"x\r\n", None).unwrap();
        assert_eq!(count(&sent.join("new")), 1);
        assert!(create_folder(dir.path(), "../evil", None).is_err());
    }
}
