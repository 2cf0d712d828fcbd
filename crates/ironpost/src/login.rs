//! What Dovecot's login processes (pop3-login, imap-login) share: the
//! greeting, TLS (`ssl`, the certificate), the plaintext rules
//! (disable_plaintext_auth, login_trusted_networks), the SASL
//! mechanisms, the accounts, and the failed-login throttle.

use std::net::IpAddr;
use std::sync::Arc;

use ironpost_conf::{ConfError, Config, ErrorKind, params};
use ironpost_proto::sasl::Mechanism;

use crate::auth::system::SystemAuth;
use crate::auth::throttle::Limits;
use crate::maps::MapContext;
use crate::maps::lists::NetworkList;

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

/// The login side of one POP3 or IMAP service.
#[derive(Debug)]
pub struct Login {
    pub greeting: String,
    pub syslog_name: String,
    pub ssl: Ssl,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS from the first byte (pop3s on 995, imaps on 993).
    pub wrapper: bool,
    pub disable_plaintext: bool,
    pub trusted: NetworkList,
    pub mechanisms: Vec<Mechanism>,
    /// `apop` in auth_mechanisms (POP3 only).
    pub apop: bool,
    pub accounts: Arc<SystemAuth>,
    pub limits: Limits,
}

pub(crate) fn bad(p: &ironpost_conf::Param, value: String, expected: &str) -> ConfError {
    ConfError::new(ErrorKind::BadValue {
        value,
        expected: expected.into(),
    })
    .for_param(p.name)
}

impl Login {
    /// The settings of a service whose wrapper-mode parameter is
    /// `wrapper_param` (pop3_tls_wrappermode, imap_tls_wrappermode).
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        wrapper_param: &'static ironpost_conf::Param,
    ) -> Result<Login, ConfError> {
        let s = |p| -> Result<String, ConfError> { Ok(cfg.get_str(p)?.trim().to_string()) };
        let ssl = match cfg.get_enum(params::SSL)?.as_str() {
            "no" => Ssl::No,
            "required" => Ssl::Required,
            _ => Ssl::Yes,
        };
        let wrapper = cfg.get_bool(wrapper_param)?;
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
                wrapper_param,
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
        Ok(Login {
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

    /// How the connection is protected, as Dovecot's Login line says it:
    /// `, TLS`, `, secured` (see [`Login::is_secured`]) or nothing.
    pub fn protection(&self, tls: bool, client: IpAddr, local: IpAddr) -> &'static str {
        if tls {
            ", TLS"
        } else if self.is_secured(client, local) {
            ", secured"
        } else {
            ""
        }
    }

    /// Dovecot's "secured" connection: from this very host (the client's
    /// address is the one it connected to) or from login_trusted_networks.
    pub fn is_secured(&self, client: IpAddr, local: IpAddr) -> bool {
        client == local || self.trusted.matches(client).unwrap_or(false)
    }
}
