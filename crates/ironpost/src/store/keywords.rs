//! IMAP keywords of a Maildir folder: Dovecot's `dovecot-keywords` file,
//! which names the keyword letters `a`..`z` of the file names.
//!
//! ```text
//! 0 $Forwarded
//! 1 Junk
//! ```
//! Line `N NAME`: letter `a` + N is keyword NAME. At most 26. The file is
//! Dovecot's, so a Maildir moved either way keeps its keywords; it is
//! replaced whole (temporary file, rename) when a keyword is added, and
//! never loses a letter once given. Names are compared without regard to
//! case (RFC 9051 §2.3.2).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The file's name in a Maildir folder.
pub const FILE: &str = "dovecot-keywords";

/// The letters' names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    /// Index N: the name of letter `a` + N (`None`: a gap in the file).
    names: Vec<Option<String>>,
}

impl Keywords {
    /// Reads the folder's file; none is no keywords. Lines that are not
    /// `N NAME` with N below 26 are skipped.
    pub fn load(folder: &Path) -> io::Result<Keywords> {
        let text = match fs::read(folder.join(FILE)) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Keywords::default()),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("read {}: {e}", folder.join(FILE).display()),
                ));
            }
        };
        Ok(Keywords::parse(&text))
    }

    pub fn parse(text: &str) -> Keywords {
        let mut k = Keywords::default();
        for line in text.lines() {
            let Some((n, name)) = line.split_once(' ') else {
                continue;
            };
            let (Ok(n), name) = (n.parse::<usize>(), name.trim()) else {
                continue;
            };
            if n >= 26 || name.is_empty() || k.letter(name).is_some() {
                continue;
            }
            if k.names.len() <= n {
                k.names.resize(n + 1, None);
            }
            k.names[n] = Some(name.to_string());
        }
        k
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if let Some(n) = n {
                s.push_str(&format!("{i} {n}\n"));
            }
        }
        s
    }

    /// The letter of keyword `name`, if it has one.
    pub fn letter(&self, name: &str) -> Option<char> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map(|i| (b'a' + i as u8) as char)
    }

    /// The name of `letter`.
    pub fn name(&self, letter: char) -> Option<&str> {
        let i = (letter as u32).checked_sub('a' as u32)? as usize;
        self.names.get(i)?.as_deref()
    }

    /// Every keyword name, in letter order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().flatten().map(String::as_str)
    }

    /// The letter of `name`, given a new one if it has none and one is
    /// free (`None`: all 26 are taken). True in the second place when
    /// the set changed and must be saved.
    pub fn letter_or_add(&mut self, name: &str) -> (Option<char>, bool) {
        if let Some(l) = self.letter(name) {
            return (Some(l), false);
        }
        let free = self
            .names
            .iter()
            .position(Option::is_none)
            .or((self.names.len() < 26).then_some(self.names.len()));
        let Some(i) = free else {
            return (None, false);
        };
        if i == self.names.len() {
            self.names.push(None);
        }
        self.names[i] = Some(name.to_string());
        (Some((b'a' + i as u8) as char), true)
    }

    /// Writes the folder's file (temporary file, rename), given to the
    /// folder's owner when running as root.
    pub fn save(&self, folder: &Path) -> io::Result<()> {
        let tmp: PathBuf = folder.join(format!("{FILE}.tmp"));
        let _ = fs::remove_file(&tmp);
        let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| ctx(&format!("create {}", tmp.display()), e))?;
        if nix::unistd::geteuid().is_root()
            && let Ok(m) = fs::metadata(folder)
            && m.uid() != 0
        {
            std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))
                .map_err(|e| ctx(&format!("change owner of {}", tmp.display()), e))?;
        }
        f.write_all(self.to_text().as_bytes())
            .map_err(|e| ctx(&format!("write {}", tmp.display()), e))?;
        drop(f);
        fs::rename(&tmp, folder.join(FILE))
            .map_err(|e| ctx(&format!("rename {}", tmp.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecots_file_is_read_and_written() {
        let k = Keywords::parse("0 $Forwarded\n1 Junk\n3 $MDNSent\nbad line\n30 Far\n");
        assert_eq!(k.letter("$forwarded"), Some('a'));
        assert_eq!(k.letter("JUNK"), Some('b'));
        assert_eq!(k.letter("$MDNSent"), Some('d'));
        assert_eq!(k.letter("Far"), None);
        assert_eq!(k.name('b'), Some("Junk"));
        assert_eq!(k.name('c'), None);
        assert_eq!(k.to_text(), "0 $Forwarded\n1 Junk\n3 $MDNSent\n");
        assert_eq!(
            k.names().collect::<Vec<_>>(),
            ["$Forwarded", "Junk", "$MDNSent"]
        );
    }

    #[test]
    fn new_keywords_take_free_letters_up_to_26() {
        let mut k = Keywords::parse("0 A\n2 C\n");
        assert_eq!(k.letter_or_add("a"), (Some('a'), false));
        assert_eq!(k.letter_or_add("B"), (Some('b'), true));
        assert_eq!(k.letter_or_add("D"), (Some('d'), true));
        for i in 4..26 {
            assert!(k.letter_or_add(&format!("K{i}")).0.is_some());
        }
        assert_eq!(k.letter_or_add("one too many"), (None, false));
        let dir = tempfile::tempdir().unwrap();
        k.save(dir.path()).unwrap();
        assert_eq!(Keywords::load(dir.path()).unwrap(), k);
        assert_eq!(
            Keywords::load(&dir.path().join("none")).unwrap(),
            Keywords::default()
        );
    }
}
