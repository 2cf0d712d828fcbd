//! imapd: IMAP4rev1 (RFC 3501) as Dovecot's imap-login and imap
//! processes serve it, over the Maildirs that local and virtual delivery
//! write, with the extensions listed in [`session`]'s capability list.
//!
//! ## Layout
//! - [`Imapd`]: one service's settings (an `imapd` line of master.cf,
//!   its `-o` overrides applied).
//! - [`session`]: one session: the states, every command, Dovecot's log
//!   lines.
//! - [`fetch`]: FETCH data items of one message.
//! - [`mailbox`]: a folder as the sessions of this process share it
//!   ([`mailbox::Folder`]) and as one session has reported it
//!   ([`mailbox::View`]).
//! - [`folders`]: a user's Maildir++ folders and subscriptions.

pub mod compress;
pub mod fetch;
pub mod folders;
pub mod mailbox;
pub mod session;
pub mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use ironpost_conf::{ConfError, Config, params};

use crate::login::Login;
use crate::maps::MapContext;
use crate::store::location::Location;

/// One IMAP service.
#[derive(Debug)]
pub struct Imapd {
    pub login: Login,
    pub idle_timeout: Duration,
    pub logout_format: String,
    pub max_line: usize,
    pub max_message: u64,
    pub max_userip: u32,
    pub autocreate: Vec<String>,
    pub location: Location,
}

impl Imapd {
    pub fn from_config(cfg: &Config, ctx: &MapContext) -> Result<Imapd, ConfError> {
        let login = Login::from_config(cfg, ctx, params::IMAP_TLS_WRAPPERMODE)?;
        let limit = cfg.get_size(params::MESSAGE_SIZE_LIMIT)?;
        Ok(Imapd {
            login,
            idle_timeout: cfg.get_time(params::IMAP_IDLE_TIMEOUT)?,
            logout_format: cfg.get_str(params::IMAP_LOGOUT_FORMAT)?.trim().to_string(),
            max_line: (cfg.get_size(params::IMAP_MAX_LINE_LENGTH)? as usize).max(8192),
            max_message: if limit == 0 { u64::MAX >> 1 } else { limit },
            max_userip: cfg.get_int(params::MAIL_MAX_USERIP_CONNECTIONS)?.max(0) as u32,
            autocreate: cfg.get_list(params::MAILBOX_AUTOCREATE)?,
            location: Location::from_config(cfg, ctx)?,
        })
    }
}

/// Open sessions per (user, client address), for
/// mail_max_userip_connections.
static USERIP: LazyLock<Mutex<HashMap<(String, IpAddr), u32>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A counted session of a user from an address; uncounted when dropped.
pub struct UserIp {
    key: (String, IpAddr),
}

impl UserIp {
    /// Counts one more session, unless `max` (non-zero) are open.
    pub fn take(user: &str, ip: IpAddr, max: u32) -> Option<UserIp> {
        let mut t = USERIP.lock().unwrap_or_else(|e| e.into_inner());
        let key = (user.to_string(), ip);
        let n = t.entry(key.clone()).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(UserIp { key })
    }
}

impl Drop for UserIp {
    fn drop(&mut self) {
        let mut t = USERIP.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.key);
            }
        }
    }
}
