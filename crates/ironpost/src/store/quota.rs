//! Storage quotas: the limit of a user of the directory (`ironpost user
//! quota`, bytes, 0 for none) and what a user's Maildir++ tree holds now
//! (every folder's messages, by their stored sizes: the `,S=` of a file
//! name when it has one, else the file's size), as Dovecot's quota counts
//! it. IMAP's QUOTA, APPEND and COPY and virtual delivery check them.

use std::fs;
use std::io;
use std::path::Path;

use super::flags::{base_name, name_field};

/// The quota of `address` in the directory at `url`; `None` when the
/// address has none there (0 there is no limit either).
pub fn limit(url: Option<&str>, address: &str) -> Result<Option<u64>, String> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let dir = crate::auth::directory::Directory::open(url).map_err(|e| e.to_string())?;
    // Through the directory's cache: virtual delivery asks for every
    // message (`ironpost user quota` drops the cache).
    let mb = dir.active_mailbox(address).map_err(|e| e.to_string())?;
    Ok(mb.map(|m| m.quota).filter(|&q| q > 0))
}

/// Bytes stored in the Maildir at `root` and its Maildir++ folders.
pub fn usage(root: &Path) -> io::Result<u64> {
    let mut total = folder_usage(root)?;
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') && name != "." && name != ".." && entry.path().join("cur").is_dir()
        {
            total += folder_usage(&entry.path())?;
        }
    }
    Ok(total)
}

fn folder_usage(folder: &Path) -> io::Result<u64> {
    let mut total = 0;
    for sub in ["cur", "new"] {
        let rd = match fs::read_dir(folder.join(sub)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            total += match name_field(base_name(name), 'S') {
                Some(s) => s,
                None => match entry.metadata() {
                    Ok(m) if m.is_file() => m.len(),
                    // Gone meanwhile, or not a message.
                    _ => 0,
                },
            };
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_every_folder_by_stored_size() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        for sub in ["cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        fs::write(root.join("new/1.M1.host,S=100,W=104"), vec![b'x'; 3]).unwrap();
        fs::write(root.join("cur/2.M2.host:2,S"), vec![b'x'; 50]).unwrap();
        fs::write(root.join(".Sent/cur/3.M3.host,S=1000:2,S"), b"").unwrap();
        // Not counted: tmp/, dot files, folders without cur/.
        fs::write(root.join("tmp/4.M4.host,S=99999"), b"").unwrap();
        fs::write(root.join("cur/.hidden"), vec![b'x'; 7]).unwrap();
        fs::create_dir_all(root.join(".junk-without-cur")).unwrap();
        assert_eq!(usage(&root).unwrap(), 100 + 50 + 1000);
        assert_eq!(usage(&dir.path().join("none")).unwrap(), 0);
    }
}
