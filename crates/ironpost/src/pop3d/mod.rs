//! pop3d: POP3 (RFC 1939, RFC 2449, RFC 2595 STLS, RFC 5034 AUTH), as
//! Dovecot's pop3-login and pop3 processes serve it, over the mailboxes
//! that local and virtual delivery write.
//!
//! ## Layout
//! - [`Pop3d`]: one service's settings (a `pop3d` line of master.cf, its
//!   `-o` overrides applied): TLS, plaintext rules, mechanisms, where a
//!   user's mailbox is.
//! - [`session`]: one session: the AUTHORIZATION state (USER/PASS, APOP,
//!   AUTH, STLS, CAPA), then TRANSACTION (STAT, LIST, RETR, TOP, DELE,
//!   UIDL, RSET, NOOP), then UPDATE at QUIT.
//! - [`inbox`]: a user's INBOX as POP3 sees it: the messages of one
//!   moment, by number, over [`crate::store`].
//!
//! Mailboxes: where [`crate::store::location`] finds them.

pub mod inbox;
pub mod session;

use std::time::Duration;

use ironpost_conf::{ConfError, Config, params};

use crate::login::{Login, bad};
use crate::maps::MapContext;
use crate::store::location::Location;

/// One POP3 service.
#[derive(Debug)]
pub struct Pop3d {
    pub login: Login,
    pub idle_timeout: Duration,
    pub uidl_format: String,
    pub logout_format: String,
    pub location: Location,
}

impl Pop3d {
    pub fn from_config(cfg: &Config, ctx: &MapContext) -> Result<Pop3d, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        let login = Login::from_config(cfg, ctx, params::POP3_TLS_WRAPPERMODE)?;
        let uidl_format = s(params::POP3_UIDL_FORMAT)?;
        if let Err(why) = inbox::check_uidl_format(&uidl_format) {
            return Err(bad(params::POP3_UIDL_FORMAT, uidl_format, &why));
        }
        Ok(Pop3d {
            login,
            idle_timeout: cfg.get_time(params::POP3_IDLE_TIMEOUT)?,
            uidl_format,
            logout_format: s(params::POP3_LOGOUT_FORMAT)?,
            location: Location::from_config(cfg, ctx)?,
        })
    }
}
