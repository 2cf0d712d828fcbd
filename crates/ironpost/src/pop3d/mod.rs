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
//! Mailboxes: a virtual user's is what virtual_mailbox_maps says under
//! virtual_mailbox_base (as virtual(8) delivers); a system user's is
//! mail_location when set (Dovecot's `maildir:~/Maildir`), else where
//! local(8) delivers: home_mailbox (`Maildir/` in the home directory) or
//! mail_spool_directory/USER.

pub mod inbox;
pub mod session;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ironpost_conf::{ConfError, Config, ErrorKind, params};
use ironpost_proto::sasl::Mechanism;

use crate::auth::system::{Identity, SystemAuth};
use crate::auth::throttle::Limits;
use crate::maps::lists::NetworkList;
use crate::maps::{LookupError, MapContext, MapList};

/// Dovecot's `ssl` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ssl {
    /// No TLS.
    No,
    /// TLS offered (STLS; implicit on a wrapper-mode service).
    Yes,
    /// TLS required before any login, even from trusted networks.
    Required,
}

/// One POP3 service.
#[derive(Debug)]
pub struct Pop3d {
    pub greeting: String,
    pub syslog_name: String,
    pub ssl: Ssl,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS from the first byte (pop3s, port 995).
    pub wrapper: bool,
    pub disable_plaintext: bool,
    pub trusted: NetworkList,
    pub mechanisms: Vec<Mechanism>,
    pub apop: bool,
    pub accounts: Arc<SystemAuth>,
    pub limits: Limits,
    pub idle_timeout: Duration,
    pub uidl_format: String,
    pub logout_format: String,
    pub location: Location,
}

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
    fn from_config(cfg: &Config, ctx: &MapContext) -> Result<Location, ConfError> {
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

fn bad(p: &ironpost_conf::Param, value: String, expected: &str) -> ConfError {
    ConfError::new(ErrorKind::BadValue {
        value,
        expected: expected.into(),
    })
    .for_param(p.name)
}

impl Pop3d {
    pub fn from_config(cfg: &Config, ctx: &MapContext) -> Result<Pop3d, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        let ssl = match cfg.get_enum(params::SSL)?.as_str() {
            "no" => Ssl::No,
            "required" => Ssl::Required,
            _ => Ssl::Yes,
        };
        let wrapper = cfg.get_bool(params::POP3_TLS_WRAPPERMODE)?;
        let tls = if ssl == Ssl::No {
            None
        } else {
            let (cert, key) = (s(params::SSL_CERT)?, s(params::SSL_KEY)?);
            if cert.is_empty() || key.is_empty() {
                None
            } else {
                Some(
                    crate::tls::server_config(cert.as_ref(), key.as_ref()).map_err(|e| {
                        ConfError::new(ErrorKind::Io(format!("ssl_cert/ssl_key: {e}")))
                    })?,
                )
            }
        };
        if wrapper && tls.is_none() {
            return Err(bad(
                params::POP3_TLS_WRAPPERMODE,
                "yes".into(),
                "a certificate (ssl_cert, ssl_key) and ssl = yes or required",
            ));
        }
        let trusted_value = cfg.get_str(params::LOGIN_TRUSTED_NETWORKS)?;
        let trusted = NetworkList::new(&trusted_value, ctx)
            .map_err(|m| bad(params::LOGIN_TRUSTED_NETWORKS, trusted_value.clone(), &m))?;
        let mut mechanisms = Vec::new();
        let mut apop = false;
        for w in cfg.get_list(params::AUTH_MECHANISMS)? {
            if w.eq_ignore_ascii_case("apop") {
                apop = true;
            } else if let Some(m) = Mechanism::parse(&w)
                && !mechanisms.contains(&m)
            {
                mechanisms.push(m);
            }
        }
        let uidl_format = s(params::POP3_UIDL_FORMAT)?;
        if let Err(why) = inbox::check_uidl_format(&uidl_format) {
            return Err(bad(params::POP3_UIDL_FORMAT, uidl_format, &why));
        }
        Ok(Pop3d {
            greeting: s(params::LOGIN_GREETING)?,
            syslog_name: s(params::SYSLOG_NAME)?,
            ssl,
            tls,
            wrapper,
            disable_plaintext: cfg.get_bool(params::DISABLE_PLAINTEXT_AUTH)?,
            trusted,
            mechanisms,
            apop,
            accounts: Arc::new(SystemAuth::from_config(cfg)?),
            limits: Limits::from_config(cfg)?,
            idle_timeout: cfg.get_time(params::POP3_IDLE_TIMEOUT)?,
            uidl_format,
            logout_format: s(params::POP3_LOGOUT_FORMAT)?,
            location: Location::from_config(cfg, ctx)?,
        })
    }

    /// Whether a plaintext password may be sent on this connection
    /// (Dovecot's rule): under TLS; or, unless ssl = required, with
    /// disable_plaintext_auth = no, or on a secured connection.
    pub fn plaintext_allowed(&self, secure: bool, client: IpAddr, local: IpAddr) -> bool {
        if secure {
            return true;
        }
        if self.ssl == Ssl::Required {
            return false;
        }
        !self.disable_plaintext || self.is_secured(client, local)
    }

    /// Dovecot's "secured" connection: from this very host (the client's
    /// address is the one it connected to) or from login_trusted_networks.
    pub fn is_secured(&self, client: IpAddr, local: IpAddr) -> bool {
        client == local || self.trusted.matches(client).unwrap_or(false)
    }
}
