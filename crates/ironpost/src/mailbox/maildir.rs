//! Maildir delivery, as Postfix's local(8) and virtual(8) do it and as
//! Dovecot, mutt and every Maildir reader expect.
//!
//! The message is written to `tmp/` under a unique name, fsync'd, then
//! linked into `new/` and the directory fsync'd; only then is the delivery
//! done. Files hold LF line ends (the SMTP form has CRLF). Names follow
//! Dovecot's convention: `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<size
//! with CRLF>`, so a reader knows the stored size and the size on the wire
//! without opening the file. `/` and `:` in the host name are written as
//! `\057` and `\072`.
//!
//! Folders are Maildir++: `Sent` is `.Sent`, `Archive/2024` is
//! `.Archive.2024`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// CRLF line ends to LF.
pub fn to_lf(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if content[i] == b'\r' && content.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(content[i]);
        i += 1;
    }
    out
}

fn hostname() -> String {
    let h = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string());
    h.replace('/', "\\057").replace(':', "\\072")
}

fn unique_base() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hostname()
    )
}

/// Creates `dir` (mode 0700) and its missing parents, owned by `owner`
/// when given.
fn make_dir(dir: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        make_dir(parent, owner)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Creates a Maildir's `tmp/ new/ cur/`.
pub fn create(maildir: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        make_dir(&maildir.join(sub), owner)?;
    }
    Ok(())
}

/// Delivers `message` (CRLF line ends) into `maildir/new/` and returns the
/// file's path.
pub fn deliver(maildir: &Path, message: &[u8], owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    create(maildir, owner)?;
    let data = to_lf(message);
    let wire_size = message.len();
    let name = format!("{},S={},W={}", unique_base(), data.len(), wire_size);
    let tmp = maildir.join("tmp").join(&name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        f.write_all(&data)?;
        f.sync_all()?;
        let new = maildir.join("new").join(&name);
        fs::hard_link(&tmp, &new)?;
        File::open(maildir.join("new"))?.sync_all()?;
        Ok(new)
    })();
    // Whatever happened, nothing stays in tmp/.
    let _ = fs::remove_file(&tmp);
    result
}

/// The directory of a Maildir++ folder (`Sent` → `.Sent`, `a/b` → `.a.b`).
/// Names that could leave the Maildir are refused.
pub fn folder_path(root: &Path, folder: &str) -> io::Result<PathBuf> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad folder name \"{folder}\""),
        )
    };
    if folder.eq_ignore_ascii_case("INBOX") {
        return Ok(root.to_path_buf());
    }
    let parts: Vec<&str> = folder.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('.') || p.contains('\0'))
    {
        return Err(bad());
    }
    Ok(root.join(format!(".{}", parts.join("."))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_lands_in_new_with_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        let msg = b"Subject: hi\r\n\r\nline one\r\nline two\r\n";
        let path = deliver(&md, msg, None).unwrap();
        assert_eq!(path.parent().unwrap(), md.join("new"));
        let stored = fs::read(&path).unwrap();
        assert_eq!(stored, b"Subject: hi\n\nline one\nline two\n");
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.ends_with(&format!(",S={},W={}", stored.len(), msg.len())),
            "{name}"
        );
        assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);
        assert!(md.join("cur").is_dir());
    }

    #[test]
    fn many_deliveries_have_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..1000 {
            deliver(dir.path(), b"x\r\n", None).unwrap();
        }
        assert_eq!(fs::read_dir(dir.path().join("new")).unwrap().count(), 1000);
    }

    #[test]
    fn a_failed_delivery_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), None).unwrap();
        // new/ is a file: the link into it fails, even for root.
        fs::remove_dir(dir.path().join("new")).unwrap();
        fs::write(dir.path().join("new"), b"").unwrap();
        assert!(deliver(dir.path(), b"x\r\n", None).is_err());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
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
        for bad in ["", "..", "a/../b", "a//b", "/abs", "a.b"] {
            assert!(folder_path(root, bad).is_err(), "{bad}");
        }
    }
}
