//! `directory:` tables: the user directory (directory_url) as lookup
//! tables, so that it plugs into Postfix's parameters:
//!
//! ```text
//! virtual_mailbox_domains = directory:domains     # domain -> the domain
//! virtual_mailbox_maps = directory:mailboxes      # address -> example.com/jerry/
//! virtual_alias_maps = directory:aliases          # address -> target, target
//! smtpd_sender_login_maps = directory:senders     # address -> the logins that own it
//! ```
//!
//! Only enabled entries of enabled domains are found. The database is
//! opened at the first lookup, and again after a failure, so a directory
//! that was down starts answering as soon as it is back.

use crate::auth::directory::Directory;

use super::{LookupError, MapContext, OpenError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Domains,
    Mailboxes,
    Aliases,
    Senders,
}

/// One `directory:NAME` table.
#[derive(Debug)]
pub struct DirectoryTable {
    which: Which,
    url: String,
}

impl DirectoryTable {
    pub fn new(name: &str, ctx: &MapContext) -> Result<DirectoryTable, OpenError> {
        let which = match name.trim() {
            "domains" => Which::Domains,
            "mailboxes" => Which::Mailboxes,
            "aliases" => Which::Aliases,
            "senders" => Which::Senders,
            other => {
                return Err(OpenError::Invalid(format!(
                    "directory:{other}: unknown directory table (domains, mailboxes, aliases, senders)"
                )));
            }
        };
        if ctx.directory_url.is_empty() {
            return Err(OpenError::Invalid(format!(
                "directory:{}: directory_url is empty",
                name.trim()
            )));
        }
        Ok(DirectoryTable {
            which,
            url: ctx.directory_url.clone(),
        })
    }

    fn name(&self) -> &'static str {
        match self.which {
            Which::Domains => "directory:domains",
            Which::Mailboxes => "directory:mailboxes",
            Which::Aliases => "directory:aliases",
            Which::Senders => "directory:senders",
        }
    }

    /// `key` is already in lower case.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, LookupError> {
        let fail = |e: crate::sql::SqlError| {
            LookupError(format!("{} lookup error for \"{key}\": {e}", self.name()))
        };
        let is_address = key.contains('@');
        match self.which {
            Which::Domains if is_address || key.is_empty() => return Ok(None),
            Which::Mailboxes | Which::Senders if !is_address || key.starts_with('@') => {
                return Ok(None);
            }
            Which::Aliases if !is_address => return Ok(None),
            _ => {}
        }
        let dir = Directory::open(&self.url).map_err(fail)?;
        match self.which {
            Which::Domains => Ok(dir.has_domain(key).map_err(fail)?.then(|| key.to_string())),
            Which::Mailboxes => dir.maildir(key).map_err(fail),
            Which::Aliases => {
                let t = dir.alias_targets(key).map_err(fail)?;
                Ok((!t.is_empty()).then(|| t.join(", ")))
            }
            Which::Senders => {
                let s = dir.senders(key).map_err(fail)?;
                Ok((!s.is_empty()).then(|| s.join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Map, MapList};
    use super::*;
    use crate::auth::directory::password_fields;

    #[test]
    fn tables_over_a_sqlite_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}/directory.db", dir.path().display());
        let d = Directory::open(&url).unwrap();
        d.add_domain("Example.TEST").unwrap();
        let pw = password_fields("secret").unwrap();
        d.add_mailbox("Jerry@example.test", &pw, 0, None).unwrap();
        d.add_alias(
            "all@example.test",
            &["jerry@example.test".into(), "tom@elsewhere.example".into()],
        )
        .unwrap();
        d.add_alias("@example.test", &["jerry@example.test".into()])
            .unwrap();
        let ctx = MapContext {
            directory_url: url.clone(),
            ..MapContext::default()
        };
        let open = |s: &str| Map::open(s, &ctx).unwrap();
        let domains = open("directory:domains");
        assert_eq!(
            domains.lookup("EXAMPLE.test").unwrap().as_deref(),
            Some("example.test")
        );
        assert_eq!(domains.lookup("other.test").unwrap(), None);
        let mailboxes = open("directory:mailboxes");
        assert_eq!(
            mailboxes.lookup("jerry@example.test").unwrap().as_deref(),
            Some("example.test/jerry/")
        );
        assert_eq!(mailboxes.lookup("jerry").unwrap(), None);
        let aliases = MapList {
            maps: vec![open("directory:aliases")],
        };
        let f = aliases
            .find_address("all@example.test", "+", false)
            .unwrap()
            .unwrap();
        assert_eq!(f.value, "jerry@example.test, tom@elsewhere.example");
        // The catch-all.
        let f = aliases
            .find_address("anyone@example.test", "+", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.key.as_str(), f.value.as_str()),
            ("@example.test", "jerry@example.test")
        );
        let senders = open("directory:senders");
        assert_eq!(
            senders.lookup("jerry@example.test").unwrap().as_deref(),
            Some("jerry@example.test")
        );
        // A disabled domain hides everything in it, at once.
        d.set_domain_enabled("example.test", false).unwrap();
        assert_eq!(domains.lookup("example.test").unwrap(), None);
        assert_eq!(mailboxes.lookup("jerry@example.test").unwrap(), None);
        assert_eq!(aliases.find("all@example.test").unwrap(), None);
        d.set_domain_enabled("example.test", true).unwrap();
        d.set_mailbox_enabled("jerry@example.test", false).unwrap();
        assert_eq!(mailboxes.lookup("jerry@example.test").unwrap(), None);
        // Unknown names are refused when opening.
        assert!(Map::open("directory:users", &ctx).is_err());
    }

    #[test]
    fn a_directory_that_cannot_be_opened_is_a_temporary_failure() {
        // A plain file where a directory should be.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let ctx = MapContext {
            directory_url: format!("sqlite:{}/file/directory.db", dir.path().display()),
            ..MapContext::default()
        };
        let m = Map::open("directory:mailboxes", &ctx).unwrap();
        let e = m.lookup("jerry@example.test").unwrap_err();
        assert!(
            e.0.starts_with(
                "directory:mailboxes lookup error for \"jerry@example.test\": cannot create "
            ),
            "{e}"
        );
    }
}
