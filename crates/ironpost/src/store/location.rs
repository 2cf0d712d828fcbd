//! Where a user's mail is: the INBOX (and, for IMAP, the root of the
//! folders) of a user who logged in, found as delivery finds it.
//!
//! A virtual user's is what virtual_mailbox_maps says under
//! virtual_mailbox_base (as virtual(8) delivers); a system user's is
//! mail_location when set (Dovecot's `maildir:~/Maildir`), else where
//! local(8) delivers: home_mailbox (`Maildir/` in the home directory) or
//! mail_spool_directory/USER.

use std::path::PathBuf;

use ironpost_conf::{ConfError, Config, params};

use crate::auth::system::Identity;
use crate::maps::{LookupError, MapContext, MapList};

/// Where users' mailboxes are.
#[derive(Debug)]
pub struct Location {
    pub virtual_mailbox_maps: MapList,
    pub virtual_mailbox_base: PathBuf,
    pub recipient_delimiter: String,
    /// Dovecot's mail_location for system users; empty: Postfix's places.
    pub mail_location: String,
    pub home_mailbox: String,
    pub mail_spool_directory: PathBuf,
    pub passwd_file: PathBuf,
    /// Where the UIDs of mbox mailboxes are kept.
    pub data_directory: PathBuf,
}

/// A user's INBOX on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxPath {
    Maildir(PathBuf),
    Mbox(PathBuf),
}

impl Location {
    pub fn from_config(cfg: &Config, ctx: &MapContext) -> Result<Location, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        Ok(Location {
            virtual_mailbox_maps: MapList::open_all(
                &cfg.get_maps(params::VIRTUAL_MAILBOX_MAPS)?,
                ctx,
            ),
            virtual_mailbox_base: PathBuf::from(s(params::VIRTUAL_MAILBOX_BASE)?),
            recipient_delimiter: s(params::RECIPIENT_DELIMITER)?,
            mail_location: s(params::MAIL_LOCATION)?,
            home_mailbox: s(params::HOME_MAILBOX)?,
            mail_spool_directory: PathBuf::from(s(params::MAIL_SPOOL_DIRECTORY)?),
            passwd_file: PathBuf::from(s(params::PASSWD_FILE)?),
            data_directory: PathBuf::from(s(params::DATA_DIRECTORY)?),
        })
    }

    /// The INBOX of a user who logged in; `None`: the user has none (a
    /// virtual user missing from virtual_mailbox_maps).
    pub fn inbox(&self, who: &Identity) -> Result<Option<MailboxPath>, LookupError> {
        match who {
            Identity::Virtual(address) => {
                let Some(found) = self.virtual_mailbox_maps.find_address(
                    address,
                    &self.recipient_delimiter,
                    false,
                )?
                else {
                    return Ok(None);
                };
                let Some(path) = crate::local::under_base(&self.virtual_mailbox_base, &found.value)
                else {
                    return Err(LookupError(format!(
                        "bad mailbox path \"{}\" in virtual_mailbox_maps",
                        found.value
                    )));
                };
                Ok(Some(if found.value.trim().ends_with('/') {
                    MailboxPath::Maildir(path)
                } else {
                    MailboxPath::Mbox(path)
                }))
            }
            Identity::System(user) => {
                let home = crate::sysuser::lookup(&self.passwd_file, user)
                    .map_err(|e| LookupError(format!("{}: {e}", self.passwd_file.display())))?
                    .map(|u| u.home)
                    .unwrap_or_default();
                let tilde = |p: &str| -> PathBuf {
                    match p.strip_prefix("~/") {
                        Some(rest) => home.join(rest),
                        None if p == "~" => home.clone(),
                        None => PathBuf::from(p.replace("%u", user)),
                    }
                };
                if !self.mail_location.is_empty() {
                    // `maildir:~/Maildir`, `mbox:~/mail:INBOX=/var/mail/%u`.
                    let (kind, rest) = self
                        .mail_location
                        .split_once(':')
                        .unwrap_or(("maildir", &self.mail_location));
                    let mut parts = rest.split(':');
                    let root = parts.next().unwrap_or("");
                    let inbox = parts.find_map(|p| p.strip_prefix("INBOX="));
                    return Ok(Some(match kind {
                        "mbox" => MailboxPath::Mbox(match inbox {
                            Some(i) => tilde(i),
                            None => tilde(root).join("inbox"),
                        }),
                        _ => MailboxPath::Maildir(tilde(root)),
                    }));
                }
                if !self.home_mailbox.is_empty() {
                    let p = home.join(&self.home_mailbox);
                    return Ok(Some(if self.home_mailbox.ends_with('/') {
                        MailboxPath::Maildir(p)
                    } else {
                        MailboxPath::Mbox(p)
                    }));
                }
                Ok(Some(MailboxPath::Mbox(
                    self.mail_spool_directory.join(user),
                )))
            }
        }
    }
}
