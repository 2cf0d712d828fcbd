//! System accounts as login users: the passwd file says who exists, the
//! shadow file holds their password hashes (crypt(3) strings: yescrypt,
//! SHA-512, SHA-256, bcrypt, MD5), as saslauthd with MECH=shadow checks
//! them. Both paths are parameters (passwd_file, shadow_file).
//!
//! Login names follow Dovecot: a full address names a virtual user; a bare
//! name is a system account when there is one (and auth_system_users is
//! on), else it is completed with `@auth_default_realm`.

use std::io;
use std::path::{Path, PathBuf};

use ironpost_conf::{ConfError, Config, params};

use super::password;
use crate::sysuser;

/// Who a login name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A system account, by login name.
    System(String),
    /// A virtual user, by address (domain in lower case).
    Virtual(String),
}

/// Where logins are checked: system accounts, and virtual users in a
/// Dovecot passwd-file (auth_passwd_file) and in the user directory
/// (directory_url), searched in that order.
#[derive(Debug, Clone)]
pub struct SystemAuth {
    pub passwd_file: PathBuf,
    pub shadow_file: PathBuf,
    pub enabled: bool,
    pub default_realm: String,
    /// auth_passwd_file: virtual users in Dovecot's passwd-file form.
    pub users_file: Option<PathBuf>,
    /// directory_url: the user directory, when set.
    pub directory_url: Option<String>,
}

/// A virtual user's stored secrets.
struct VirtualEntry {
    /// Where it came from, for messages.
    source: String,
    password: String,
    /// SCRAM keys kept beside the password (the directory's).
    scram: Vec<String>,
}

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Accepted,
    /// Wrong password, unknown user, locked or password-less account: all
    /// look the same to the client.
    Refused,
    /// The check could not be made (unreadable file, damaged hash): a
    /// temporary failure.
    Unavailable(String),
}

impl SystemAuth {
    pub fn from_config(cfg: &Config) -> Result<SystemAuth, ConfError> {
        Ok(SystemAuth {
            passwd_file: PathBuf::from(cfg.get_str(params::PASSWD_FILE)?.trim()),
            shadow_file: PathBuf::from(cfg.get_str(params::SHADOW_FILE)?.trim()),
            enabled: cfg.get_bool(params::AUTH_SYSTEM_USERS)?,
            default_realm: cfg
                .get_str(params::AUTH_DEFAULT_REALM)?
                .trim()
                .to_lowercase(),
            users_file: Some(cfg.get_str(params::AUTH_PASSWD_FILE)?.trim().to_string())
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            directory_url: Some(cfg.get_str(params::DIRECTORY_URL)?.trim().to_string())
                .filter(|u| !u.is_empty()),
        })
    }

    /// Who `login` is.
    pub fn identify(&self, login: &str) -> io::Result<Identity> {
        let login = login.trim();
        if let Some((user, domain)) = login.rsplit_once('@') {
            return Ok(Identity::Virtual(format!(
                "{user}@{}",
                domain.to_lowercase()
            )));
        }
        if self.enabled && sysuser::lookup(&self.passwd_file, login)?.is_some() {
            return Ok(Identity::System(login.to_string()));
        }
        Ok(Identity::Virtual(if self.default_realm.is_empty() {
            login.to_string()
        } else {
            format!("{login}@{}", self.default_realm)
        }))
    }

    /// A virtual user's password entry: from auth_passwd_file, else from
    /// the directory (an enabled mailbox of an enabled domain).
    fn virtual_entry(&self, address: &str) -> Result<Option<VirtualEntry>, String> {
        if let Some(file) = &self.users_file {
            match passwd_file_lookup(file, address) {
                Ok(Some(stored)) => {
                    return Ok(Some(VirtualEntry {
                        source: file.display().to_string(),
                        password: stored,
                        scram: Vec::new(),
                    }));
                }
                Ok(None) => {}
                Err(e) => return Err(unreadable(file, &e)),
            }
        }
        if let Some(url) = &self.directory_url {
            let dir = super::directory::Directory::open(url).map_err(|e| e.to_string())?;
            if let Some(m) = dir.active_mailbox(address).map_err(|e| e.to_string())? {
                return Ok(Some(VirtualEntry {
                    source: dir.name().to_string(),
                    password: m.password,
                    scram: [m.scram_sha1, m.scram_sha256]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect(),
                }));
            }
        }
        Ok(None)
    }

    /// A virtual user's SCRAM keys for `hash` in Dovecot's form
    /// (`{SCRAM-SHA-256}...`), if stored: the password itself when it is
    /// stored so, or the keys kept beside it.
    pub fn scram_entry(
        &self,
        address: &str,
        hash: ironpost_proto::sasl::scram::ScramHash,
    ) -> Option<String> {
        let e = self.virtual_entry(address).ok().flatten()?;
        if e.password.starts_with('!') || e.password.starts_with('*') {
            return None;
        }
        let prefix = format!("{{{}}}", hash.scheme());
        std::iter::once(&e.password)
            .chain(e.scram.iter())
            .find(|s| s.to_ascii_uppercase().starts_with(&prefix))
            .cloned()
    }

    /// Checks a virtual user's password (auth_passwd_file, then the
    /// directory).
    pub fn check_virtual(&self, address: &str, password: &str) -> Check {
        let entry = match self.virtual_entry(address) {
            Ok(Some(e)) => e,
            Ok(None) => return Check::Refused,
            Err(e) => return Check::Unavailable(e),
        };
        let stored = entry.password;
        if stored.is_empty() || stored.starts_with('!') || stored.starts_with('*') {
            return Check::Refused;
        }
        match password::verify(&stored, password) {
            Ok(true) => Check::Accepted,
            Ok(false) => Check::Refused,
            Err(e) => Check::Unavailable(format!("{}: password of {address}: {e}", entry.source)),
        }
    }

    /// APOP (RFC 1939 §7): the digest must be MD5(timestamp + password),
    /// which only a password stored in plain text ({PLAIN}) can check.
    /// Anyone else is refused, as Dovecot refuses them.
    pub fn check_apop(&self, login: &str, timestamp: &str, digest: &str) -> Check {
        use md5::{Digest, Md5};
        use subtle::ConstantTimeEq;
        let address = match self.identify(login) {
            Ok(Identity::Virtual(a)) => a,
            Ok(Identity::System(_)) => return Check::Refused,
            Err(e) => return Check::Unavailable(e.to_string()),
        };
        let entry = match self.virtual_entry(&address) {
            Ok(Some(e)) => e,
            Ok(None) => return Check::Refused,
            Err(e) => return Check::Unavailable(e),
        };
        let Some(secret) = plaintext_secret(&entry.password) else {
            return Check::Refused;
        };
        let mut h = Md5::new();
        h.update(timestamp.as_bytes());
        h.update(secret.as_bytes());
        let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if bool::from(
            want.as_bytes()
                .ct_eq(digest.to_ascii_lowercase().as_bytes()),
        ) {
            Check::Accepted
        } else {
            Check::Refused
        }
    }

    /// Checks a system account's password against the shadow file.
    pub fn check(&self, user: &str, password: &str) -> Check {
        if !self.enabled {
            return Check::Refused;
        }
        match sysuser::lookup(&self.passwd_file, user) {
            Ok(Some(_)) => {}
            Ok(None) => return Check::Refused,
            Err(e) => return Check::Unavailable(unreadable(&self.passwd_file, &e)),
        }
        let hash = match shadow_hash(&self.shadow_file, user) {
            Ok(Some(h)) => h,
            Ok(None) => return Check::Refused,
            Err(e) => return Check::Unavailable(unreadable(&self.shadow_file, &e)),
        };
        // Locked (`!`, `*`, `!!`, `!$6$...`) or empty: no password login.
        if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
            return Check::Refused;
        }
        match password::verify(&hash, password) {
            Ok(true) => Check::Accepted,
            Ok(false) => Check::Refused,
            Err(e) => Check::Unavailable(format!(
                "{}: password of {user}: {e}",
                self.shadow_file.display()
            )),
        }
    }
}

fn unreadable(path: &Path, e: &io::Error) -> String {
    format!(
        "cannot read {}: {}",
        path.display(),
        ironpost_conf::io_reason(e)
    )
}

/// The password itself, when it is stored in plain text.
fn plaintext_secret(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix('{')?;
    let (scheme, data) = rest.split_once('}')?;
    matches!(
        scheme.to_ascii_uppercase().as_str(),
        "PLAIN" | "CLEAR" | "CLEARTEXT"
    )
    .then_some(data)
}

/// The second field of `user`'s line in a shadow file.
fn shadow_hash(shadow_file: &Path, user: &str) -> io::Result<Option<String>> {
    if user.is_empty() || user.contains(':') {
        return Ok(None);
    }
    let text = std::fs::read_to_string(shadow_file)?;
    Ok(text.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next() == Some(user)).then(|| f.next().unwrap_or("").to_string())
    }))
}

/// The stored password of `address` in a Dovecot passwd-file
/// (`user:password[:uid:gid:gecos:home:shell:extra]`, `#` comments). The
/// user part is compared as written, the domain without case.
pub fn passwd_file_lookup(path: &Path, address: &str) -> io::Result<Option<String>> {
    let want = normalize_address(address);
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().find_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            return None;
        }
        let mut f = line.splitn(3, ':');
        let user = f.next()?;
        let password = f.next().unwrap_or("");
        (normalize_address(user) == want).then(|| password.to_string())
    }))
}

fn normalize_address(a: &str) -> String {
    match a.rsplit_once('@') {
        Some((u, d)) => format!("{u}@{}", d.to_lowercase()),
        None => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, SystemAuth) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             jerry:x:1000:1000:Jerry:/home/jerry:/bin/sh\n\
             locked:x:1001:1001::/home/locked:/bin/sh\n\
             nopass:x:1002:1002::/home/nopass:/bin/sh\n",
        )
        .unwrap();
        // `mkpasswd -m md5crypt secret` (Debian's whois).
        std::fs::write(
            dir.path().join("shadow"),
            "root:*:19000:0:99999:7:::\n\
             jerry:$1$Hw5uNwuI$GNHItEaIGqmainPdk//LZ1:19000:0:99999:7:::\n\
             locked:!$1$Hw5uNwuI$GNHItEaIGqmainPdk//LZ1:19000:0:99999:7:::\n\
             nopass::19000:0:99999:7:::\n\
             ghost:$1$Hw5uNwuI$GNHItEaIGqmainPdk//LZ1:19000:0:99999:7:::\n",
        )
        .unwrap();
        let auth = SystemAuth {
            passwd_file: dir.path().join("passwd"),
            shadow_file: dir.path().join("shadow"),
            enabled: true,
            default_realm: "example.test".into(),
            users_file: Some(dir.path().join("users")),
            directory_url: None,
        };
        // `doveadm pw -s SSHA -p secret`.
        std::fs::write(
            dir.path().join("users"),
            "# virtual users\ntom@example.test:{SSHA}jA7vbWN5vNW4+043pIfPkUNWra+nxHPZ::::::\nann@example.test:!{SSHA}jA7vbWN5vNW4+043pIfPkUNWra+nxHPZ\n",
        )
        .unwrap();
        (dir, auth)
    }

    #[test]
    fn login_names() {
        let (_d, mut a) = fixture();
        assert_eq!(
            a.identify("jerry").unwrap(),
            Identity::System("jerry".into())
        );
        assert_eq!(
            a.identify("tom").unwrap(),
            Identity::Virtual("tom@example.test".into())
        );
        assert_eq!(
            a.identify("Tom@Example.TEST").unwrap(),
            Identity::Virtual("Tom@example.test".into())
        );
        a.enabled = false;
        assert_eq!(
            a.identify("jerry").unwrap(),
            Identity::Virtual("jerry@example.test".into())
        );
    }

    #[test]
    fn virtual_users_from_a_passwd_file() {
        let (_d, a) = fixture();
        assert_eq!(
            a.check_virtual("tom@example.test", "secret"),
            Check::Accepted
        );
        assert_eq!(
            a.check_virtual("tom@EXAMPLE.test", "secret"),
            Check::Accepted
        );
        assert_eq!(a.check_virtual("tom@example.test", "wrong"), Check::Refused);
        assert_eq!(
            a.check_virtual("ann@example.test", "secret"),
            Check::Refused
        );
        assert_eq!(
            a.check_virtual("nobody@example.test", "secret"),
            Check::Refused
        );
    }

    #[test]
    fn shadow_passwords() {
        let (_d, a) = fixture();
        assert_eq!(a.check("jerry", "secret"), Check::Accepted);
        assert_eq!(a.check("jerry", "wrong"), Check::Refused);
        assert_eq!(a.check("locked", "secret"), Check::Refused);
        assert_eq!(a.check("nopass", ""), Check::Refused);
        assert_eq!(a.check("root", "secret"), Check::Refused);
        // In shadow but not in passwd: not an account.
        assert_eq!(a.check("ghost", "secret"), Check::Refused);
        assert_eq!(a.check("nobody", "secret"), Check::Refused);
        let missing = SystemAuth {
            shadow_file: "/nonexistent/shadow".into(),
            ..a.clone()
        };
        assert!(
            matches!(missing.check("jerry", "secret"), Check::Unavailable(m) if m.contains("/nonexistent/shadow"))
        );
    }
}
