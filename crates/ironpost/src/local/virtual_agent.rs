//! virtual(8): delivery to mailboxes of virtual mailbox domains.
//!
//! virtual_mailbox_maps gives, for `user@domain` (or `@domain` as a catch
//! all), a path relative to virtual_mailbox_base; a trailing `/` means
//! Maildir, anything else an mbox file. Running as root, the mailbox
//! belongs to the user and group from virtual_uid_maps and
//! virtual_gid_maps (`static:5000` in the tutorials), which must be at
//! least virtual_minimum_uid.

use super::{Agents, Message, Outcome, under_base};
use crate::mailbox::Mailbox;

const RELAY: &str = "virtual";

impl Agents {
    /// Delivers to a recipient in a virtual mailbox domain.
    pub fn deliver_virtual(&self, msg: &Message<'_>, address: &str, original: &str) -> Outcome {
        if super::has_delivered_to(msg.content, address) {
            return Outcome::failed(
                address,
                RELAY,
                "5.4.6",
                format!("mail forwarding loop for {address}"),
            );
        }
        let found =
            match self
                .virtual_mailbox_maps
                .find_address(address, &self.recipient_delimiter, false)
            {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Outcome::failed(
                        address,
                        RELAY,
                        "5.1.1",
                        format!("unknown user: \"{address}\""),
                    );
                }
                Err(e) => return Outcome::failed(address, RELAY, "4.3.0", e.to_string()),
            };
        if self.virtual_mailbox_base.as_os_str().is_empty() {
            return Outcome::failed(address, RELAY, "4.3.5", "virtual_mailbox_base is not set");
        }
        let Some(path) = under_base(&self.virtual_mailbox_base, &found.value) else {
            return Outcome::failed(
                address,
                RELAY,
                "4.3.5",
                format!(
                    "bad mailbox path \"{}\" in {}",
                    found.value, "virtual_mailbox_maps"
                ),
            );
        };
        let owner = if self.as_root {
            match self.virtual_owner(address) {
                Ok(ids) => Some(ids),
                Err(o) => return *o,
            }
        } else {
            None
        };
        let mailbox = if found.value.trim().ends_with('/') {
            Mailbox::Maildir(path)
        } else {
            Mailbox::Mbox(path)
        };
        let content = super::delivery_headers(msg, address, original);
        if let Mailbox::Maildir(root) = &mailbox
            && let Some(o) = self.over_quota(address, root, content.len() as u64)
        {
            return o;
        }
        let what = match mailbox {
            Mailbox::Maildir(_) => "maildir",
            Mailbox::Mbox(_) => "mailbox",
        };
        match mailbox.deliver(msg.sender, msg.arrival, &content, owner) {
            Ok(_) => Outcome::sent(address, RELAY, format!("delivered to {what}")),
            Err(e) => Outcome::failed(
                address,
                RELAY,
                "4.2.0",
                format!(
                    "cannot update mailbox {}: {}",
                    mailbox.path().display(),
                    ironpost_conf::io_reason(&e)
                ),
            ),
        }
    }

    /// Refuses a message that would take a directory user past the quota
    /// (`ironpost user quota`), as Dovecot's LDA does: 5.2.2, bounced.
    fn over_quota(&self, address: &str, root: &std::path::Path, size: u64) -> Option<Outcome> {
        let user = strip_extension(address, &self.recipient_delimiter);
        let limit = match crate::store::quota::limit(self.directory_url.as_deref(), &user) {
            Ok(Some(l)) => l,
            Ok(None) => return None,
            Err(e) => {
                return Some(Outcome::failed(
                    address,
                    RELAY,
                    "4.3.0",
                    format!("user directory: {e}"),
                ));
            }
        };
        let used = match crate::store::quota::usage(root) {
            Ok(u) => u,
            Err(e) => {
                return Some(Outcome::failed(
                    address,
                    RELAY,
                    "4.2.0",
                    format!(
                        "cannot read mailbox {}: {}",
                        root.display(),
                        ironpost_conf::io_reason(&e)
                    ),
                ));
            }
        };
        (used.saturating_add(size) > limit).then(|| {
            Outcome::failed(
                address,
                RELAY,
                "5.2.2",
                format!("Quota exceeded (mailbox for user is full): {used} of {limit} bytes used"),
            )
        })
    }

    /// The uid and gid a virtual mailbox belongs to.
    fn virtual_owner(&self, address: &str) -> Result<(u32, u32), Box<Outcome>> {
        let id = |maps: &crate::maps::MapList, what: &str| -> Result<u32, Box<Outcome>> {
            match maps.find_address(address, &self.recipient_delimiter, false) {
                Ok(Some(f)) => f.value.trim().parse::<u32>().map_err(|_| {
                    Box::new(Outcome::failed(
                        address,
                        RELAY,
                        "4.3.5",
                        format!("bad {what} \"{}\"", f.value),
                    ))
                }),
                Ok(None) => Err(Box::new(Outcome::failed(
                    address,
                    RELAY,
                    "4.3.5",
                    format!("no {what} for {address}"),
                ))),
                Err(e) => Err(Box::new(Outcome::failed(
                    address,
                    RELAY,
                    "4.3.0",
                    e.to_string(),
                ))),
            }
        };
        let uid = id(&self.virtual_uid_maps, "virtual_uid_maps user ID")?;
        let gid = id(&self.virtual_gid_maps, "virtual_gid_maps group ID")?;
        if uid < self.virtual_minimum_uid {
            return Err(Box::new(Outcome::failed(
                address,
                RELAY,
                "4.3.5",
                format!(
                    "user ID {uid} is below virtual_minimum_uid {}",
                    self.virtual_minimum_uid
                ),
            )));
        }
        Ok((uid, gid))
    }
}

/// `user+ext@domain` without `+ext` (any of the delimiter characters).
fn strip_extension(address: &str, delimiters: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let base = match local.find(|c| delimiters.contains(c)) {
        Some(i) if !delimiters.is_empty() && i > 0 => &local[..i],
        _ => local,
    };
    if domain.is_empty() {
        base.to_string()
    } else {
        format!("{base}@{domain}")
    }
}
