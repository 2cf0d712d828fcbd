//! System accounts, read from the passwd file (Postfix's local(8) asks
//! getpwnam; we read the file named by the configuration, so tests can give
//! their own).

use std::io;
use std::path::{Path, PathBuf};

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: String,
}

/// The account called `name`, if any.
pub fn lookup(passwd_file: &Path, name: &str) -> io::Result<Option<SysUser>> {
    if name.is_empty() || name.contains(':') {
        return Ok(None);
    }
    let text = std::fs::read_to_string(passwd_file)?;
    Ok(text
        .lines()
        .find_map(|line| parse_line(line).filter(|u| u.name == name)))
}

fn parse_line(line: &str) -> Option<SysUser> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(SysUser {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
        shell: f[6].to_string(),
    })
}

/// Whether this process runs as root (and so delivers as each recipient).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        std::fs::write(&p, "root:x:0:0:root:/root:/bin/bash\nbroken line\njerry:x:1000:1001:Jerry:/home/jerry:/bin/sh\n").unwrap();
        let u = lookup(&p, "jerry").unwrap().unwrap();
        assert_eq!(
            (u.uid, u.gid, u.home.as_path()),
            (1000, 1001, Path::new("/home/jerry"))
        );
        assert!(lookup(&p, "tom").unwrap().is_none());
        assert!(lookup(&p, "").unwrap().is_none());
        assert!(lookup(Path::new("/nonexistent"), "x").is_err());
    }
}
