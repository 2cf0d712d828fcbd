//! A user's folders as Maildir++ lays them out, as Dovecot's
//! `maildir:~/Maildir` does: INBOX is the Maildir itself, every other
//! folder a Maildir in a subdirectory of it named `.` + the folder's
//! name, with `.` as the hierarchy delimiter (`Archive.2024` is
//! `.Archive.2024/`), names in modified UTF-7 on disk. Subscriptions are
//! in the `subscriptions` file, one name per line, as Dovecot keeps them
//! (UTF-8 names, INBOX included when subscribed).
//!
//! A name with `/`, a leading or doubled delimiter, or that would step out
//! of the Maildir, is refused; so is one that is too long.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ironpost_proto::imap::utf7;

/// The hierarchy delimiter.
pub const DELIMITER: char = '.';
/// The subscriptions file in the INBOX Maildir.
const SUBSCRIPTIONS: &str = "subscriptions";
/// Dovecot's own limit on a folder name's length.
const MAX_NAME: usize = 255;

/// The special uses given to folders by their names (RFC 6154), for the
/// names mailbox_autocreate creates and the usual names of clients.
pub fn special_use(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "drafts" => "\\Drafts",
        "sent" | "sent items" | "sent messages" => "\\Sent",
        "trash" | "deleted items" | "deleted messages" => "\\Trash",
        "junk" | "spam" => "\\Junk",
        "archive" | "archives" => "\\Archive",
        _ => return None,
    })
}

/// The file in a folder's directory with the special uses CREATE gave it
/// (RFC 6154 CREATE-SPECIAL-USE), one attribute per line.
const SPECIAL_USE: &str = "ironpost-special-use";

/// Why a name cannot be a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadName;

/// A user's folder tree.
#[derive(Debug, Clone)]
pub struct Folders {
    root: PathBuf,
    /// The INBOX is this mbox file (a system user's spool); the tree has
    /// no other folders, and `root` only keeps the subscriptions.
    mbox: Option<PathBuf>,
}

impl Folders {
    /// The tree whose INBOX is the Maildir at `root`.
    pub fn new(root: &Path) -> Folders {
        Folders {
            root: root.to_path_buf(),
            mbox: None,
        }
    }

    /// A tree of one folder, INBOX, the mbox file `inbox`; `state` keeps
    /// its subscriptions.
    pub fn with_mbox_inbox(inbox: &Path, state: &Path) -> Folders {
        Folders {
            root: state.to_path_buf(),
            mbox: Some(inbox.to_path_buf()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mbox file that is the INBOX, if it is one.
    pub fn mbox_inbox(&self) -> Option<&Path> {
        self.mbox.as_deref()
    }

    /// The directory of folder `name` (INBOX: the root; or the mbox file).
    pub fn path(&self, name: &str) -> Result<PathBuf, BadName> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok(self.mbox.clone().unwrap_or_else(|| self.root.clone()));
        }
        check_name(name)?;
        Ok(self.root.join(format!(".{}", utf7::encode(name))))
    }

    /// Whether folder `name` exists (INBOX always does).
    pub fn exists(&self, name: &str) -> bool {
        if self.mbox.is_some() {
            return name.eq_ignore_ascii_case("INBOX");
        }
        match self.path(name) {
            Ok(p) => p.join("cur").is_dir(),
            Err(_) => false,
        }
    }

    /// Every folder but INBOX, decoded, sorted.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        if self.mbox.is_some() {
            return Ok(out);
        }
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let file = entry.file_name();
            let Some(name) = file.to_str() else { continue };
            let Some(encoded) = name.strip_prefix('.') else {
                continue;
            };
            if encoded.is_empty() || encoded == "." {
                continue;
            }
            let Ok(decoded) = utf7::decode(encoded.as_bytes()) else {
                continue;
            };
            if check_name(&decoded).is_err() || !entry.path().join("cur").is_dir() {
                continue;
            }
            out.push(decoded);
        }
        out.sort();
        Ok(out)
    }

    /// Creates folder `name` (its parents are implied by the names, as
    /// Maildir++ has no directories for them).
    pub fn create(&self, name: &str) -> io::Result<()> {
        if self.mbox.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an mbox INBOX has no other folders here",
            ));
        }
        let path = self.path(name).map_err(|_| invalid())?;
        if path.join("cur").is_dir() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        fs::create_dir_all(&self.root)?;
        // Made in a temporary name, then renamed: never half a Maildir.
        let tmp = self.root.join(format!(
            ".ironpost-create.{}.{}",
            std::process::id(),
            crate::maillog::session_number()
        ));
        let made = (|| {
            fs::create_dir(&tmp)?;
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir(tmp.join(sub))?;
            }
            // Dovecot marks Maildir++ folders with this empty file.
            fs::File::create(tmp.join("maildirfolder"))?;
            fs::rename(&tmp, &path)
        })();
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made?;
        crate::durable::commit(&self.root)?;
        Ok(())
    }

    /// Deletes folder `name` and its messages (not its children).
    pub fn delete(&self, name: &str) -> io::Result<()> {
        let path = self.path(name).map_err(|_| invalid())?;
        if !path.join("cur").is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
        }
        // Renamed out of sight first, so nobody sees half a folder.
        let gone = self.root.join(format!(
            ".ironpost-deleted.{}.{}",
            std::process::id(),
            crate::maillog::session_number()
        ));
        fs::rename(&path, &gone)?;
        fs::remove_dir_all(&gone)?;
        crate::durable::commit(&self.root)?;
        Ok(())
    }

    /// Renames folder `from` and its children to `to`. Returns the
    /// (old, new) names of every folder renamed.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<Vec<(String, String)>> {
        if self.mbox.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an mbox INBOX has no other folders here",
            ));
        }
        let old_path = self.path(from).map_err(|_| invalid())?;
        let new_path = self.path(to).map_err(|_| invalid())?;
        if new_path.join("cur").is_dir() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        let prefix = format!("{from}{DELIMITER}");
        let mut moves = Vec::new();
        if old_path.join("cur").is_dir() {
            moves.push((from.to_string(), to.to_string()));
        }
        for child in self.list()? {
            if let Some(rest) = child.strip_prefix(&prefix) {
                let target = format!("{to}{DELIMITER}{rest}");
                if self.exists(&target) {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
                }
                moves.push((child.clone(), target));
            }
        }
        if moves.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such folder"));
        }
        for (a, b) in &moves {
            let (pa, pb) = (
                self.path(a).map_err(|_| invalid())?,
                self.path(b).map_err(|_| invalid())?,
            );
            fs::rename(&pa, &pb)?;
        }
        crate::durable::commit(&self.root)?;
        Ok(moves)
    }

    /// The special uses of folder `name`: those CREATE gave it, else the
    /// one its name says.
    pub fn special_uses(&self, name: &str) -> Vec<String> {
        if let Ok(p) = self.path(name)
            && !name.eq_ignore_ascii_case("INBOX")
            && let Ok(text) = fs::read_to_string(p.join(SPECIAL_USE))
        {
            return text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with('\\'))
                .map(String::from)
                .collect();
        }
        special_use(name)
            .map(|u| vec![u.to_string()])
            .unwrap_or_default()
    }

    /// Gives folder `name` these special uses (attributes with their
    /// backslash).
    pub fn set_special_uses(&self, name: &str, uses: &[String]) -> io::Result<()> {
        let path = self.path(name).map_err(|_| invalid())?;
        let mut text = String::new();
        for u in uses {
            text.push_str(u);
            text.push('\n');
        }
        fs::write(path.join(SPECIAL_USE), text)
    }

    /// The subscribed names.
    pub fn subscriptions(&self) -> io::Result<BTreeSet<String>> {
        match fs::read(self.root.join(SUBSCRIPTIONS)) {
            Ok(b) => Ok(String::from_utf8_lossy(&b)
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.is_empty() && !l.starts_with("V\t"))
                .map(|l| {
                    if l.eq_ignore_ascii_case("INBOX") {
                        "INBOX".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(e),
        }
    }

    /// Adds or removes `name` in the subscriptions.
    pub fn subscribe(&self, name: &str, on: bool) -> io::Result<()> {
        let mut subs = self.subscriptions()?;
        let changed = if on {
            subs.insert(name.to_string())
        } else {
            subs.remove(name)
        };
        if changed {
            self.save_subscriptions(&subs)?;
        }
        Ok(())
    }

    /// Replaces the subscriptions.
    pub fn save_subscriptions(&self, subs: &BTreeSet<String>) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let tmp = self
            .root
            .join(format!("{SUBSCRIPTIONS}.tmp.{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        for s in subs {
            f.write_all(s.as_bytes())?;
            f.write_all(b"\n")?;
        }
        f.sync_all()?;
        fs::rename(&tmp, self.root.join(SUBSCRIPTIONS))
    }
}

fn invalid() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "invalid folder name")
}

/// A folder name other than INBOX that Maildir++ can hold.
fn check_name(name: &str) -> Result<(), BadName> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.contains('/')
        || name.contains('\0')
        || name.contains('\r')
        || name.contains('\n')
        || name.starts_with(DELIMITER)
        || name.ends_with(DELIMITER)
        || name.contains("..")
        || name.starts_with('~')
    {
        return Err(BadName);
    }
    // The parts between delimiters may not be INBOX's children rule, but
    // a folder may not be named after our own temporary directories.
    if name.starts_with("ironpost-") {
        return Err(BadName);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_plus_plus_names_create_list_rename_delete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        crate::store::Maildir::open(&root, true).unwrap();
        let f = Folders::new(&root);
        assert_eq!(f.path("inbox").unwrap(), root);
        assert_eq!(f.path("Sent").unwrap(), root.join(".Sent"));
        assert_eq!(f.path("Entwürfe").unwrap(), root.join(".Entw&APw-rfe"));
        for bad in ["", "a/b", ".x", "x.", "a..b", "../x", "~x"] {
            assert_eq!(f.path(bad), Err(BadName), "{bad}");
        }
        f.create("Archive").unwrap();
        f.create("Archive.2024").unwrap();
        f.create("Entwürfe").unwrap();
        assert!(root.join(".Archive.2024/cur").is_dir());
        assert!(root.join(".Archive/maildirfolder").is_file());
        assert_eq!(
            f.create("Archive").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(f.list().unwrap(), ["Archive", "Archive.2024", "Entwürfe"]);
        let moved = f.rename("Archive", "Old").unwrap();
        assert_eq!(
            moved,
            [
                ("Archive".to_string(), "Old".to_string()),
                ("Archive.2024".to_string(), "Old.2024".to_string())
            ]
        );
        assert_eq!(f.list().unwrap(), ["Entwürfe", "Old", "Old.2024"]);
        f.delete("Old").unwrap();
        assert_eq!(f.list().unwrap(), ["Entwürfe", "Old.2024"]);
        assert_eq!(f.delete("Old").unwrap_err().kind(), io::ErrorKind::NotFound);
        // No temporary directory stays behind.
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("ironpost-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn subscriptions_are_kept_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = Folders::new(dir.path());
        f.subscribe("Sent", true).unwrap();
        f.subscribe("INBOX", true).unwrap();
        f.subscribe("Entwürfe", true).unwrap();
        f.subscribe("Sent", false).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(SUBSCRIPTIONS)).unwrap(),
            "Entwürfe\nINBOX\n"
        );
        let subs = f.subscriptions().unwrap();
        assert!(subs.contains("INBOX") && subs.contains("Entwürfe") && !subs.contains("Sent"));
    }
}
