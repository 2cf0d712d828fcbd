//! Access restrictions (smtpd_check): the lists smtpd_client_restrictions,
//! smtpd_helo_restrictions, smtpd_sender_restrictions,
//! smtpd_relay_restrictions, smtpd_recipient_restrictions and
//! smtpd_data_restrictions, and the implicit unknown-recipient check.
//!
//! With smtpd_delay_reject = yes (the default, and the only mode here) the
//! client, HELO and sender lists are evaluated at RCPT time, then the relay
//! and recipient lists, as Postfix does. Each list is evaluated until a
//! restriction says permit (which ends that list) or reject/defer (which
//! ends the command). Reply texts are Postfix's, for example
//! `554 5.7.1 <x@y>: Relay access denied` and
//! `554 5.7.1 <r@example.test>: Recipient address rejected: Access denied`.
//!
//! Restrictions that need DNS (reject_unknown_*, reject_rbl_client, ...)
//! are refused when the configuration is loaded, naming the
//! restriction, rather than silently ignored.

use std::net::IpAddr;
use std::sync::Arc;

use ironpost_conf::value::{is_table_spec, split_list};
use ironpost_conf::{ConfError, Config, ErrorKind, Param, params};

use crate::maps::lists::NetworkList;
use crate::maps::{LookupError, Map, MapContext, MapList, split_extension};
use crate::resolve::{AddressClass, Resolver};

/// A reply to send when a restriction refuses: `554 5.7.1 text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReply {
    pub code: u16,
    pub status: String,
    pub text: String,
}

impl std::fmt::Display for CheckReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.code, self.status, self.text)
    }
}

/// What a restriction list decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing decided: go on (DUNNO, end of list).
    Dunno,
    Permit,
    /// Refuse with this reply (4xx or 5xx).
    Reject(CheckReply),
}

/// Side effects that access tables may ask for (HOLD, DISCARD, WARN,
/// PREPEND), collected for the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    pub hold: Option<String>,
    pub discard: Option<String>,
    pub warnings: Vec<String>,
    pub prepend: Vec<String>,
}

/// The stage a list runs at; it names the thing rejected in replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Client,
    Helo,
    Sender,
    Recipient,
    Data,
}

impl Stage {
    fn noun(self) -> &'static str {
        match self {
            Stage::Client => "Client host",
            Stage::Helo => "Helo command",
            Stage::Sender => "Sender address",
            Stage::Recipient => "Recipient address",
            Stage::Data => "Data command",
        }
    }
}

/// One restriction of a list.
#[derive(Debug)]
pub enum Restriction {
    Permit,
    Reject,
    Defer,
    DeferIfPermit,
    DeferIfReject,
    PermitMynetworks,
    PermitSaslAuthenticated,
    PermitAuthDestination,
    RejectUnauthDestination,
    DeferUnauthDestination,
    RejectUnauthPipelining,
    RejectNonFqdnSender,
    RejectNonFqdnRecipient,
    RejectNonFqdnHeloHostname,
    RejectInvalidHeloHostname,
    RejectUnlistedRecipient,
    RejectUnlistedSender,
    /// reject_sender_login_mismatch: both of the next two.
    RejectSenderLoginMismatch,
    RejectAuthenticatedSenderLoginMismatch,
    RejectUnauthenticatedSenderLoginMismatch,
    PermitInetInterfaces,
    CheckAccess {
        stage: Stage,
        table: Box<MapList>,
        spec: String,
    },
}

/// The lists of restrictions and everything they consult.
#[derive(Debug)]
pub struct Policy {
    pub client: Vec<Restriction>,
    pub helo: Vec<Restriction>,
    pub sender: Vec<Restriction>,
    pub relay: Vec<Restriction>,
    pub recipient: Vec<Restriction>,
    pub data: Vec<Restriction>,
    pub mynetworks: NetworkList,
    pub resolver: Arc<Resolver>,
    pub recipient_maps: RecipientMaps,
    /// smtpd_sender_login_maps; `None` when empty.
    pub sender_login_maps: Option<MapList>,
    pub reject_unlisted_recipient: bool,
    pub reject_unlisted_sender: bool,
    pub recipient_delimiter: String,
    pub parent_matches_access: bool,
    codes: Codes,
    /// Our own addresses (permit_inet_interfaces).
    pub own_addresses: Vec<IpAddr>,
}

#[derive(Debug, Clone)]
struct Codes {
    reject: u16,
    defer: u16,
    relay_reject: u16,
    access_reject: u16,
    access_defer: u16,
    non_fqdn: u16,
    unknown_local: u16,
    unknown_virtual_alias: u16,
    unknown_virtual_mailbox: u16,
    unknown_relay: u16,
}

/// The tables that say which recipients exist (for the implicit
/// reject_unlisted_recipient check).
#[derive(Debug, Default)]
pub struct RecipientMaps {
    /// local_recipient_maps; `None` when empty (every local name accepted).
    pub local: Option<MapList>,
    pub virtual_alias: MapList,
    pub virtual_mailbox: MapList,
    /// relay_recipient_maps; `None` when empty.
    pub relay: Option<MapList>,
}

/// What the checks know about the session and the command.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub client_addr: Option<IpAddr>,
    /// The client's host name, or "unknown".
    pub client_name: &'a str,
    pub helo: Option<&'a str>,
    /// The sender as given (before rewriting); `Some("")` for `<>`.
    pub sender: Option<&'a str>,
    /// The recipient as given (before rewriting).
    pub recipient: Option<&'a str>,
    pub sasl_username: Option<&'a str>,
    /// The client sent commands before our replies where it must wait.
    pub improper_pipelining: bool,
}

fn conf_err(p: &Param, value: &str, msg: String) -> ConfError {
    ConfError::new(ErrorKind::BadValue {
        value: value.to_string(),
        expected: msg,
    })
    .for_param(p.name)
}

/// Restrictions that exist in Postfix but are not available yet, and why.
const NOT_YET: &[(&str, &str)] = &[
    ("reject_unknown_sender_domain", "DNS-based restrictions"),
    ("reject_unknown_recipient_domain", "DNS-based restrictions"),
    ("reject_unknown_client_hostname", "DNS-based restrictions"),
    (
        "reject_unknown_reverse_client_hostname",
        "DNS-based restrictions",
    ),
    ("reject_unknown_helo_hostname", "DNS-based restrictions"),
    ("reject_rbl_client", "DNS-based restrictions"),
    ("reject_rhsbl_sender", "DNS-based restrictions"),
    ("reject_rhsbl_client", "DNS-based restrictions"),
    ("reject_rhsbl_helo", "DNS-based restrictions"),
    ("reject_rhsbl_recipient", "DNS-based restrictions"),
    ("permit_dnswl_client", "DNS-based restrictions"),
    ("permit_mx_backup", "DNS-based restrictions"),
    ("check_policy_service", "policy services"),
    ("reject_unverified_sender", "address verification"),
    ("reject_unverified_recipient", "address verification"),
];

/// Parses a restriction list parameter.
pub fn parse_restrictions(
    cfg: &Config,
    p: &'static Param,
    ctx: &MapContext,
) -> Result<Vec<Restriction>, ConfError> {
    let value = cfg.get_str(p)?;
    let stage_of = |name: &str| match name {
        "check_client_access" => Some(Stage::Client),
        "check_helo_access" => Some(Stage::Helo),
        "check_sender_access" => Some(Stage::Sender),
        "check_recipient_access" => Some(Stage::Recipient),
        _ => None,
    };
    let mut out = Vec::new();
    let mut items = split_list(&value).into_iter();
    while let Some(item) = items.next() {
        use Restriction::*;
        let r = match item.as_str() {
            "permit" => Permit,
            "reject" => Reject,
            "defer" => Defer,
            "defer_if_permit" => DeferIfPermit,
            "defer_if_reject" => DeferIfReject,
            "permit_mynetworks" => PermitMynetworks,
            "permit_sasl_authenticated" => PermitSaslAuthenticated,
            "permit_auth_destination" => PermitAuthDestination,
            "reject_unauth_destination" | "check_relay_domains" => RejectUnauthDestination,
            "defer_unauth_destination" => DeferUnauthDestination,
            "reject_unauth_pipelining" => RejectUnauthPipelining,
            "reject_non_fqdn_sender" => RejectNonFqdnSender,
            "reject_non_fqdn_recipient" => RejectNonFqdnRecipient,
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => {
                RejectNonFqdnHeloHostname
            }
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => RejectInvalidHeloHostname,
            "reject_unlisted_recipient" | "check_recipient_maps" => RejectUnlistedRecipient,
            "reject_unlisted_sender" => RejectUnlistedSender,
            "reject_sender_login_mismatch" => RejectSenderLoginMismatch,
            "reject_authenticated_sender_login_mismatch" => RejectAuthenticatedSenderLoginMismatch,
            "reject_unauthenticated_sender_login_mismatch" => {
                RejectUnauthenticatedSenderLoginMismatch
            }
            "permit_inet_interfaces" => PermitInetInterfaces,
            name if stage_of(name).is_some() => {
                let stage = stage_of(name).unwrap_or(Stage::Recipient);
                let Some(spec) = items.next() else {
                    return Err(conf_err(
                        p,
                        &value,
                        format!("{name} needs a table: {name} type:table"),
                    ));
                };
                if !is_table_spec(&spec) {
                    return Err(conf_err(
                        p,
                        &value,
                        format!("{name} needs a table (type:name), not \"{spec}\""),
                    ));
                }
                let map = Map::open(&spec, ctx).map_err(|e| conf_err(p, &value, e.to_string()))?;
                CheckAccess {
                    stage,
                    table: Box::new(MapList { maps: vec![map] }),
                    spec,
                }
            }
            name => {
                if let Some((_, why)) = NOT_YET.iter().find(|(n, _)| *n == name) {
                    return Err(conf_err(
                        p,
                        &value,
                        format!(
                            "restrictions that ironpost supports ({name} needs {why}, which is not implemented yet)"
                        ),
                    ));
                }
                return Err(conf_err(
                    p,
                    &value,
                    format!("restriction names (unknown restriction \"{name}\")"),
                ));
            }
        };
        out.push(r);
    }
    Ok(out)
}

fn code(cfg: &Config, p: &'static Param) -> Result<u16, ConfError> {
    Ok(cfg.get_int(p)? as u16)
}

impl Policy {
    /// Reads every restriction list and what they consult.
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        resolver: Arc<Resolver>,
        own_addresses: Vec<IpAddr>,
    ) -> Result<Policy, ConfError> {
        let mynetworks_value = cfg.get_str(params::MYNETWORKS)?;
        let mynetworks = NetworkList::new(&mynetworks_value, ctx)
            .map_err(|m| conf_err(params::MYNETWORKS, &mynetworks_value, m))?;
        let maps = |p: &'static Param| -> Result<Option<MapList>, ConfError> {
            let specs = cfg.get_maps(p)?;
            if specs.is_empty() {
                return Ok(None);
            }
            Ok(Some(MapList::open_all(&specs, ctx)))
        };
        let parent = cfg
            .get_list(params::PARENT_DOMAIN_MATCHES_SUBDOMAINS)?
            .iter()
            .any(|f| f == "smtpd_access_maps");
        let policy = Policy {
            client: parse_restrictions(cfg, params::SMTPD_CLIENT_RESTRICTIONS, ctx)?,
            helo: parse_restrictions(cfg, params::SMTPD_HELO_RESTRICTIONS, ctx)?,
            sender: parse_restrictions(cfg, params::SMTPD_SENDER_RESTRICTIONS, ctx)?,
            relay: parse_restrictions(cfg, params::SMTPD_RELAY_RESTRICTIONS, ctx)?,
            recipient: parse_restrictions(cfg, params::SMTPD_RECIPIENT_RESTRICTIONS, ctx)?,
            data: parse_restrictions(cfg, params::SMTPD_DATA_RESTRICTIONS, ctx)?,
            mynetworks,
            resolver,
            recipient_maps: RecipientMaps {
                local: maps(params::LOCAL_RECIPIENT_MAPS)?,
                virtual_alias: maps(params::VIRTUAL_ALIAS_MAPS)?.unwrap_or_default(),
                virtual_mailbox: maps(params::VIRTUAL_MAILBOX_MAPS)?.unwrap_or_default(),
                relay: maps(params::RELAY_RECIPIENT_MAPS)?,
            },
            sender_login_maps: maps(params::SMTPD_SENDER_LOGIN_MAPS)?,
            reject_unlisted_recipient: cfg.get_bool(params::SMTPD_REJECT_UNLISTED_RECIPIENT)?,
            reject_unlisted_sender: cfg.get_bool(params::SMTPD_REJECT_UNLISTED_SENDER)?,
            recipient_delimiter: cfg.get_str(params::RECIPIENT_DELIMITER)?,
            parent_matches_access: parent,
            codes: Codes {
                reject: code(cfg, params::REJECT_CODE)?,
                defer: code(cfg, params::DEFER_CODE)?,
                relay_reject: code(cfg, params::RELAY_DOMAINS_REJECT_CODE)?,
                access_reject: code(cfg, params::ACCESS_MAP_REJECT_CODE)?,
                access_defer: code(cfg, params::ACCESS_MAP_DEFER_CODE)?,
                non_fqdn: code(cfg, params::NON_FQDN_REJECT_CODE)?,
                unknown_local: code(cfg, params::UNKNOWN_LOCAL_RECIPIENT_REJECT_CODE)?,
                unknown_virtual_alias: code(cfg, params::UNKNOWN_VIRTUAL_ALIAS_REJECT_CODE)?,
                unknown_virtual_mailbox: code(cfg, params::UNKNOWN_VIRTUAL_MAILBOX_REJECT_CODE)?,
                unknown_relay: code(cfg, params::UNKNOWN_RELAY_RECIPIENT_REJECT_CODE)?,
            },
            own_addresses,
        };
        // No open relay by accident: as Postfix, insist that the relay or
        // the recipient list can refuse mail for other domains.
        let guards = |list: &[Restriction]| {
            list.iter().any(|r| {
                matches!(
                    r,
                    Restriction::RejectUnauthDestination
                        | Restriction::DeferUnauthDestination
                        | Restriction::Reject
                        | Restriction::Defer
                        | Restriction::DeferIfPermit
                )
            })
        };
        if !guards(&policy.relay) && !guards(&policy.recipient) {
            let value = cfg.get_str(params::SMTPD_RELAY_RESTRICTIONS)?;
            let mut e = conf_err(
                params::SMTPD_RELAY_RESTRICTIONS,
                &value,
                "at least one of reject_unauth_destination, defer_unauth_destination, reject or defer here or in smtpd_recipient_restrictions (this would be an open relay)".to_string(),
            );
            e.location = cfg.location_of(params::SMTPD_RELAY_RESTRICTIONS.name);
            return Err(e);
        }
        Ok(policy)
    }

    fn temp_failure(&self, e: LookupError) -> CheckReply {
        tracing::warn!("{e}");
        CheckReply {
            code: 451,
            status: "4.3.0".into(),
            text: "Temporary lookup failure".into(),
        }
    }

    /// The checks at RCPT time: client, HELO, sender, relay and recipient
    /// lists, then the unknown-recipient check.
    pub fn check_rcpt(&self, f: &Facts<'_>, actions: &mut Actions) -> Verdict {
        for (list, stage) in [
            (&self.client, Stage::Client),
            (&self.helo, Stage::Helo),
            (&self.sender, Stage::Sender),
            (&self.relay, Stage::Recipient),
            (&self.recipient, Stage::Recipient),
        ] {
            match self.run(list, stage, f, actions) {
                Ok(Verdict::Reject(r)) => return Verdict::Reject(r),
                Ok(_) => {}
                Err(e) => return Verdict::Reject(self.temp_failure(e)),
            }
        }
        if self.reject_unlisted_recipient {
            match self.unlisted_recipient(f) {
                Ok(Some(r)) => return Verdict::Reject(r),
                Ok(None) => {}
                Err(e) => return Verdict::Reject(self.temp_failure(e)),
            }
        }
        if self.reject_unlisted_sender {
            match self.unlisted_sender(f) {
                Ok(Some(r)) => return Verdict::Reject(r),
                Ok(None) => {}
                Err(e) => return Verdict::Reject(self.temp_failure(e)),
            }
        }
        Verdict::Permit
    }

    /// The owners of a sender address in smtpd_sender_login_maps.
    fn sender_owners(&self, sender: &str) -> Result<Option<Vec<String>>, LookupError> {
        let Some(maps) = &self.sender_login_maps else {
            return Ok(None);
        };
        let address = self.resolver.canonical(sender);
        let local = match address.rsplit_once('@') {
            Some((_, d)) => self.resolver.is_local_domain(d)?,
            None => true,
        };
        Ok(maps
            .find_address(&address, &self.recipient_delimiter, local)?
            .map(|found| {
                found
                    .value
                    .split([',', ' ', '\t'])
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect()
            }))
    }

    /// reject_sender_login_mismatch and its halves, as Postfix words them.
    fn sender_login_mismatch(
        &self,
        f: &Facts<'_>,
        check_auth: bool,
        check_unauth: bool,
    ) -> Result<Verdict, LookupError> {
        let Some(sender) = f.sender.filter(|s| !s.is_empty()) else {
            return Ok(Verdict::Dunno);
        };
        let reject = |why: String| {
            Verdict::Reject(CheckReply {
                code: 553,
                status: "5.7.1".into(),
                text: format!("<{sender}>: Sender address rejected: {why}"),
            })
        };
        match f.sasl_username {
            Some(login) if check_auth => {
                let owned = self
                    .sender_owners(sender)?
                    .is_some_and(|owners| owners.iter().any(|o| o.eq_ignore_ascii_case(login)));
                Ok(if owned {
                    Verdict::Dunno
                } else {
                    reject(format!("not owned by user {login}"))
                })
            }
            None if check_unauth => Ok(if self.sender_owners(sender)?.is_some() {
                reject("not logged in".into())
            } else {
                Verdict::Dunno
            }),
            _ => Ok(Verdict::Dunno),
        }
    }

    /// VRFY: whether the address exists where we are its final
    /// destination (Postfix applies only this check to VRFY).
    pub fn check_vrfy(&self, f: &Facts<'_>) -> Option<CheckReply> {
        match self.unlisted_recipient(f) {
            Ok(r) => r,
            Err(e) => Some(self.temp_failure(e)),
        }
    }

    /// The DATA restrictions.
    pub fn check_data(&self, f: &Facts<'_>, actions: &mut Actions) -> Verdict {
        match self.run(&self.data, Stage::Data, f, actions) {
            Ok(Verdict::Reject(r)) => Verdict::Reject(r),
            Ok(_) => Verdict::Permit,
            Err(e) => Verdict::Reject(self.temp_failure(e)),
        }
    }

    /// The subject of a stage's replies: `<address>`, `<host[ip]>`.
    fn subject(&self, stage: Stage, f: &Facts<'_>) -> String {
        match stage {
            Stage::Client | Stage::Data => format!(
                "<{}[{}]>",
                f.client_name,
                f.client_addr.map(|a| a.to_string()).unwrap_or_default()
            ),
            Stage::Helo => format!("<{}>", f.helo.unwrap_or("")),
            Stage::Sender => format!("<{}>", f.sender.unwrap_or("")),
            Stage::Recipient => format!("<{}>", f.recipient.unwrap_or("")),
        }
    }

    fn reply(
        &self,
        code: u16,
        default_status: &str,
        subject: &str,
        stage: Stage,
        text: &str,
    ) -> CheckReply {
        // "5.1.2 custom": an enhanced code at the start of the text wins.
        let (status, text) = match text.split_once(' ') {
            Some((s, rest)) if is_enhanced(s) && s.starts_with(&code.to_string()[..1]) => {
                (s.to_string(), rest)
            }
            _ if is_enhanced(text) && text.starts_with(&code.to_string()[..1]) => {
                (text.to_string(), "")
            }
            _ => (default_status.to_string(), text),
        };
        CheckReply {
            code,
            status,
            text: format!("{subject}: {} rejected: {text}", stage.noun()),
        }
    }

    fn run(
        &self,
        list: &[Restriction],
        stage: Stage,
        f: &Facts<'_>,
        actions: &mut Actions,
    ) -> Result<Verdict, LookupError> {
        for r in list {
            let v = self.one(r, stage, f, actions)?;
            if v != Verdict::Dunno {
                return Ok(v);
            }
        }
        Ok(Verdict::Dunno)
    }

    fn recipient_resolved(
        &self,
        f: &Facts<'_>,
    ) -> Result<Option<crate::resolve::Resolved>, LookupError> {
        match f.recipient {
            Some(r) => self.resolver.resolve(r),
            None => Ok(None),
        }
    }

    fn one(
        &self,
        r: &Restriction,
        stage: Stage,
        f: &Facts<'_>,
        actions: &mut Actions,
    ) -> Result<Verdict, LookupError> {
        use Restriction::*;
        let subject = self.subject(stage, f);
        let c = &self.codes;
        Ok(match r {
            Permit => Verdict::Permit,
            Reject => {
                Verdict::Reject(self.reply(c.reject, "5.7.1", &subject, stage, "Access denied"))
            }
            Defer => {
                Verdict::Reject(self.reply(c.defer, "4.7.1", &subject, stage, "Access denied"))
            }
            DeferIfPermit | DeferIfReject => Verdict::Dunno,
            PermitMynetworks => match f.client_addr {
                Some(ip) if self.mynetworks.matches(ip)? => Verdict::Permit,
                _ => Verdict::Dunno,
            },
            PermitInetInterfaces => match f.client_addr {
                Some(ip) if self.own_addresses.contains(&ip) || ip.is_loopback() => Verdict::Permit,
                _ => Verdict::Dunno,
            },
            PermitSaslAuthenticated => {
                if f.sasl_username.is_some() {
                    Verdict::Permit
                } else {
                    Verdict::Dunno
                }
            }
            PermitAuthDestination | RejectUnauthDestination | DeferUnauthDestination => {
                let Some(res) = self.recipient_resolved(f)? else {
                    return Ok(Verdict::Dunno);
                };
                let authorized = res.is_authorized_destination();
                match r {
                    PermitAuthDestination if authorized => Verdict::Permit,
                    RejectUnauthDestination if !authorized => Verdict::Reject(CheckReply {
                        code: c.relay_reject,
                        status: "5.7.1".into(),
                        text: format!("{subject}: Relay access denied"),
                    }),
                    DeferUnauthDestination if !authorized => Verdict::Reject(CheckReply {
                        code: 454,
                        status: "4.7.1".into(),
                        text: format!("{subject}: Relay access denied"),
                    }),
                    _ => Verdict::Dunno,
                }
            }
            RejectSenderLoginMismatch
            | RejectAuthenticatedSenderLoginMismatch
            | RejectUnauthenticatedSenderLoginMismatch => {
                let check_auth = !matches!(r, RejectUnauthenticatedSenderLoginMismatch);
                let check_unauth = !matches!(r, RejectAuthenticatedSenderLoginMismatch);
                self.sender_login_mismatch(f, check_auth, check_unauth)?
            }
            RejectUnauthPipelining => {
                if f.improper_pipelining {
                    Verdict::Reject(CheckReply {
                        code: 554,
                        status: "5.5.0".into(),
                        text: "Error: SMTP protocol synchronization".into(),
                    })
                } else {
                    Verdict::Dunno
                }
            }
            RejectNonFqdnSender | RejectNonFqdnRecipient => {
                let (addr, what) = if matches!(r, RejectNonFqdnSender) {
                    (f.sender, Stage::Sender)
                } else {
                    (f.recipient, Stage::Recipient)
                };
                match addr {
                    Some(a) if !a.is_empty() && !is_fqdn_address(a) => {
                        Verdict::Reject(CheckReply {
                            code: c.non_fqdn,
                            status: if c.non_fqdn >= 500 { "5.5.2" } else { "4.5.2" }.into(),
                            text: format!(
                                "<{a}>: {} rejected: need fully-qualified address",
                                what.noun()
                            ),
                        })
                    }
                    _ => Verdict::Dunno,
                }
            }
            RejectNonFqdnHeloHostname | RejectInvalidHeloHostname => match f.helo {
                Some(h) => {
                    let bad = if matches!(r, RejectInvalidHeloHostname) {
                        !is_valid_hostname(h)
                    } else {
                        !is_fqdn(h) && !h.starts_with('[')
                    };
                    if bad {
                        let why = if matches!(r, RejectInvalidHeloHostname) {
                            "Helo command rejected: Invalid name"
                        } else {
                            "Helo command rejected: need fully-qualified hostname"
                        };
                        let code = if matches!(r, RejectInvalidHeloHostname) {
                            501
                        } else {
                            c.non_fqdn
                        };
                        Verdict::Reject(CheckReply {
                            code,
                            status: if code >= 500 { "5.5.2" } else { "4.5.2" }.into(),
                            text: format!("<{h}>: {why}"),
                        })
                    } else {
                        Verdict::Dunno
                    }
                }
                None => Verdict::Dunno,
            },
            RejectUnlistedRecipient => self
                .unlisted_recipient(f)?
                .map_or(Verdict::Dunno, Verdict::Reject),
            RejectUnlistedSender => self
                .unlisted_sender(f)?
                .map_or(Verdict::Dunno, Verdict::Reject),
            CheckAccess {
                stage: which,
                table,
                spec: _,
            } => {
                let found = match which {
                    Stage::Client => self.access_client(table, f)?,
                    Stage::Helo => match f.helo {
                        Some(h) => self.access_domain(table, h.trim_end_matches('.'))?,
                        None => None,
                    },
                    Stage::Sender => match f.sender {
                        Some(s) => {
                            self.access_address(table, if s.is_empty() { "<>" } else { s })?
                        }
                        None => None,
                    },
                    _ => match f.recipient {
                        Some(rc) => self.access_address(table, rc)?,
                        None => None,
                    },
                };
                match found {
                    Some(action) => {
                        let subject = self.subject(*which, f);
                        self.action(&action, *which, &subject, f, actions)?
                    }
                    None => Verdict::Dunno,
                }
            }
        })
    }

    /// Applies an access table's result (access(5)).
    fn action(
        &self,
        value: &str,
        stage: Stage,
        subject: &str,
        f: &Facts<'_>,
        actions: &mut Actions,
    ) -> Result<Verdict, LookupError> {
        let value = value.trim();
        let (word, rest) = match value.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (value, ""),
        };
        let c = &self.codes;
        let upper = word.to_ascii_uppercase();
        Ok(match upper.as_str() {
            "OK" => Verdict::Permit,
            w if w.bytes().all(|b| b.is_ascii_digit()) && w.len() != 3 => Verdict::Permit,
            "DUNNO" => Verdict::Dunno,
            "REJECT" => {
                let text = if rest.is_empty() {
                    "Access denied"
                } else {
                    rest
                };
                Verdict::Reject(self.reply(c.access_reject, "5.7.1", subject, stage, text))
            }
            "DEFER" | "DEFER_IF_REJECT" | "DEFER_IF_PERMIT" => {
                let text = if rest.is_empty() {
                    "Access denied"
                } else {
                    rest
                };
                Verdict::Reject(self.reply(c.access_defer, "4.7.1", subject, stage, text))
            }
            w if w.len() == 3
                && (w.starts_with('4') || w.starts_with('5'))
                && w.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let code: u16 = w.parse().unwrap_or(554);
                let default = if code >= 500 { "5.7.1" } else { "4.7.1" };
                let text = if rest.is_empty() {
                    "Access denied"
                } else {
                    rest
                };
                Verdict::Reject(self.reply(code, default, subject, stage, text))
            }
            "HOLD" => {
                actions.hold = Some(rest.to_string());
                Verdict::Dunno
            }
            "DISCARD" => {
                actions.discard = Some(rest.to_string());
                Verdict::Permit
            }
            "WARN" => {
                actions.warnings.push(rest.to_string());
                Verdict::Dunno
            }
            "PREPEND" => {
                actions.prepend.push(rest.to_string());
                Verdict::Dunno
            }
            _ => {
                // A restriction list as the result ("permit_mynetworks, reject").
                let mut verdict = Verdict::Dunno;
                for name in split_list(value) {
                    let r = match name.as_str() {
                        "permit" => Restriction::Permit,
                        "reject" => Restriction::Reject,
                        "defer" => Restriction::Defer,
                        "permit_mynetworks" => Restriction::PermitMynetworks,
                        "permit_sasl_authenticated" => Restriction::PermitSaslAuthenticated,
                        "reject_unauth_destination" => Restriction::RejectUnauthDestination,
                        "defer_unauth_destination" => Restriction::DeferUnauthDestination,
                        "permit_auth_destination" => Restriction::PermitAuthDestination,
                        "reject_non_fqdn_sender" => Restriction::RejectNonFqdnSender,
                        "reject_non_fqdn_recipient" => Restriction::RejectNonFqdnRecipient,
                        "reject_unlisted_recipient" => Restriction::RejectUnlistedRecipient,
                        other => {
                            tracing::warn!(
                                "access table result \"{other}\" is not supported; ignored"
                            );
                            continue;
                        }
                    };
                    verdict = self.one(&r, stage, f, actions)?;
                    if verdict != Verdict::Dunno {
                        break;
                    }
                }
                verdict
            }
        })
    }

    fn access_client(&self, table: &MapList, f: &Facts<'_>) -> Result<Option<String>, LookupError> {
        if f.client_name != "unknown"
            && !f.client_name.is_empty()
            && let Some(v) = self.access_domain(table, f.client_name)?
        {
            return Ok(Some(v));
        }
        match f.client_addr {
            Some(ip) => table.find_ip(ip),
            None => Ok(None),
        }
    }

    /// A domain and its parents: `a.b.c`, then `b.c` and `c` (when parent
    /// domains match) or `.b.c` and `.c`.
    fn access_domain(&self, table: &MapList, domain: &str) -> Result<Option<String>, LookupError> {
        if let Some(v) = table.find(domain)? {
            return Ok(Some(v));
        }
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            if self.parent_matches_access
                && let Some(v) = table.find(parent)?
            {
                return Ok(Some(v));
            }
            if let Some(v) = table.find(&format!(".{parent}"))? {
                return Ok(Some(v));
            }
            rest = parent;
        }
        Ok(None)
    }

    /// access(5) order for an address: `user+ext@domain`, `user@domain`,
    /// the domain and its parents, `user+ext@`, `user@`.
    fn access_address(
        &self,
        table: &MapList,
        address: &str,
    ) -> Result<Option<String>, LookupError> {
        if let Some(v) = table.find(address)? {
            return Ok(Some(v));
        }
        let (local, domain) = match address.rfind('@') {
            Some(at) => (&address[..at], Some(&address[at + 1..])),
            None => (address, None),
        };
        let (user, ext) = split_extension(local, &self.recipient_delimiter);
        if let (Some(_), Some(d)) = (ext, domain)
            && let Some(v) = table.find(&format!("{user}@{d}"))?
        {
            return Ok(Some(v));
        }
        if let Some(d) = domain
            && let Some(v) = self.access_domain(table, d.trim_end_matches('.'))?
        {
            return Ok(Some(v));
        }
        if let Some(v) = table.find(&format!("{local}@"))? {
            return Ok(Some(v));
        }
        if ext.is_some()
            && let Some(v) = table.find(&format!("{user}@"))?
        {
            return Ok(Some(v));
        }
        Ok(None)
    }

    /// The implicit check: the recipient must exist where we are the final
    /// destination (or in relay_recipient_maps for relay domains).
    fn unlisted_recipient(&self, f: &Facts<'_>) -> Result<Option<CheckReply>, LookupError> {
        let Some(rcpt) = f.recipient else {
            return Ok(None);
        };
        self.unlisted(rcpt, Stage::Recipient)
    }

    fn unlisted_sender(&self, f: &Facts<'_>) -> Result<Option<CheckReply>, LookupError> {
        match f.sender {
            Some(s) if !s.is_empty() => self.unlisted(s, Stage::Sender),
            _ => Ok(None),
        }
    }

    fn unlisted(&self, address: &str, stage: Stage) -> Result<Option<CheckReply>, LookupError> {
        let Some(res) = self.resolver.resolve(address)? else {
            return Ok(None);
        };
        if res.routed {
            return Ok(None);
        }
        let m = &self.recipient_maps;
        let delim = &self.recipient_delimiter;
        // Virtual aliasing applies to every domain.
        if m.virtual_alias
            .find_address(&res.address, delim, false)?
            .is_some()
        {
            return Ok(None);
        }
        let c = &self.codes;
        let (code, table) = match res.class {
            AddressClass::Local => {
                let Some(local) = &m.local else {
                    return Ok(None);
                };
                if local.find_address(&res.address, delim, true)?.is_some() {
                    return Ok(None);
                }
                (c.unknown_local, "local recipient table")
            }
            AddressClass::VirtualAlias => (c.unknown_virtual_alias, "virtual alias table"),
            AddressClass::VirtualMailbox => {
                if m.virtual_mailbox
                    .find_address(&res.address, delim, false)?
                    .is_some()
                {
                    return Ok(None);
                }
                (c.unknown_virtual_mailbox, "virtual mailbox table")
            }
            AddressClass::Relay => match &m.relay {
                Some(relay) if relay.find_address(&res.address, delim, false)?.is_none() => {
                    (c.unknown_relay, "relay recipient table")
                }
                _ => return Ok(None),
            },
            AddressClass::Default => return Ok(None),
        };
        let status = if code >= 500 { "5.1.1" } else { "4.1.1" };
        let subject = format!("<{address}>");
        Ok(Some(CheckReply {
            code,
            status: status.into(),
            text: format!(
                "{subject}: {} rejected: User unknown in {table}",
                stage.noun()
            ),
        }))
    }
}

fn is_enhanced(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `user@host.domain` (RFC 5321 fully qualified), or an address literal.
pub fn is_fqdn_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((_, d)) => d.starts_with('[') || is_fqdn(d),
        None => false,
    }
}

fn is_fqdn(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    n.contains('.') && is_valid_hostname(n)
}

fn is_valid_hostname(name: &str) -> bool {
    if name.starts_with('[') && name.ends_with(']') {
        return true;
    }
    let n = name.trim_end_matches('.');
    !n.is_empty()
        && n.len() <= 255
        && n.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironpost_conf::{HostFacts, MainCf};
    use std::path::{Path, PathBuf};

    struct Fixture {
        _dir: tempfile::TempDir,
        policy: Policy,
    }

    fn fixture(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\njerry:x:1000:1000::/home/jerry:/bin/sh\n",
        )
        .unwrap();
        let aliases = dir.path().join("aliases");
        std::fs::write(&aliases, "postmaster root\n").unwrap();
        let text = format!(
            "myhostname = mail.example.test\nmydomain = example.test\nmydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\n\
             mynetworks = 127.0.0.0/8\nalias_maps = texthash:{}\n\
             virtual_mailbox_domains = virt.test\nvirtual_mailbox_maps = inline:{{ tom@virt.test=virt.test/tom/ }}\n\
             virtual_alias_maps = inline:{{ alias@virt.test=tom@virt.test }}\n{extra}",
            aliases.display()
        );
        let main = MainCf::parse(Path::new("main.cf"), &text).unwrap();
        let cfg = Config::from_main(
            main,
            PathBuf::from("/etc/ironpost"),
            false,
            &HostFacts::default(),
        );
        let ctx = MapContext {
            passwd_file: passwd,
            ..MapContext::default()
        };
        let resolver = Arc::new(Resolver::from_config(&cfg, &ctx, &[]).unwrap());
        let policy = Policy::from_config(&cfg, &ctx, resolver, vec![]).unwrap();
        Fixture { _dir: dir, policy }
    }

    fn rcpt(p: &Policy, client: &str, sender: &str, recipient: &str) -> String {
        let f = Facts {
            client_addr: Some(client.parse().unwrap()),
            client_name: "client.test",
            helo: Some("client.test"),
            sender: Some(sender),
            recipient: Some(recipient),
            ..Facts::default()
        };
        match p.check_rcpt(&f, &mut Actions::default()) {
            Verdict::Reject(r) => r.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn relay_control() {
        let fx = fixture("");
        let p = &fx.policy;
        // Inside mynetworks: anything goes.
        assert_eq!(rcpt(p, "127.0.0.1", "a@b.test", "x@remote.test"), "Permit");
        // Outside: only our own destinations.
        assert_eq!(
            rcpt(p, "192.0.2.9", "a@b.test", "x@remote.test"),
            "454 4.7.1 <x@remote.test>: Relay access denied"
        );
        assert_eq!(
            rcpt(p, "192.0.2.9", "a@b.test", "jerry@example.test"),
            "Permit"
        );
        assert_eq!(rcpt(p, "192.0.2.9", "a@b.test", "tom@virt.test"), "Permit");
        // Routing tricks never pass.
        for trick in [
            "x%remote.test@example.test",
            "remote.test!x@example.test",
            "\"x@remote.test\"@example.test",
            "x@remote.test@example.test",
            "x@remote.test.",
        ] {
            let got = rcpt(p, "192.0.2.9", "a@b.test", trick);
            assert!(got.contains("Relay access denied"), "{trick}: {got}");
        }
        let fx =
            fixture("smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n");
        assert_eq!(
            rcpt(&fx.policy, "192.0.2.9", "a@b.test", "x@remote.test"),
            "554 5.7.1 <x@remote.test>: Relay access denied"
        );
    }

    #[test]
    fn unknown_recipients() {
        let fx = fixture("");
        let p = &fx.policy;
        assert_eq!(
            rcpt(p, "127.0.0.1", "a@b.test", "nosuch@example.test"),
            "550 5.1.1 <nosuch@example.test>: Recipient address rejected: User unknown in local recipient table"
        );
        assert_eq!(
            rcpt(p, "127.0.0.1", "a@b.test", "postmaster@example.test"),
            "Permit"
        );
        assert_eq!(rcpt(p, "127.0.0.1", "a@b.test", "jerry"), "Permit");
        assert_eq!(
            rcpt(p, "127.0.0.1", "a@b.test", "nobody@virt.test"),
            "550 5.1.1 <nobody@virt.test>: Recipient address rejected: User unknown in virtual mailbox table"
        );
        assert_eq!(
            rcpt(p, "127.0.0.1", "a@b.test", "alias@virt.test"),
            "Permit"
        );
        let fx = fixture("unknown_local_recipient_reject_code = 450\n");
        assert_eq!(
            rcpt(&fx.policy, "127.0.0.1", "a@b.test", "nosuch@example.test"),
            "450 4.1.1 <nosuch@example.test>: Recipient address rejected: User unknown in local recipient table"
        );
    }

    #[test]
    fn access_tables_as_postfix_answers() {
        // Replies checked against Postfix 3.7 with the same table.
        let fx = fixture(
            "smtpd_recipient_restrictions = check_recipient_access inline:{ {r1@example.test=REJECT}, {r2@example.test=REJECT go away}, {r3@example.test=550 5.1.2 custom}, {r4@example.test=450 later}, {r5@example.test=DEFER}, {r7@example.test=OK}, {example.org=REJECT domain}, {user8@=REJECT localpart} }, check_sender_access inline:{ {bad@sender.test=REJECT} }, reject_non_fqdn_recipient\n\
             local_recipient_maps =\n",
        );
        let p = &fx.policy;
        for (to, want) in [
            (
                "r1@example.test",
                "554 5.7.1 <r1@example.test>: Recipient address rejected: Access denied",
            ),
            (
                "r2@example.test",
                "554 5.7.1 <r2@example.test>: Recipient address rejected: go away",
            ),
            (
                "r3@example.test",
                "550 5.1.2 <r3@example.test>: Recipient address rejected: custom",
            ),
            (
                "r4@example.test",
                "450 4.7.1 <r4@example.test>: Recipient address rejected: later",
            ),
            (
                "r5@example.test",
                "450 4.7.1 <r5@example.test>: Recipient address rejected: Access denied",
            ),
            (
                "x@sub.example.org",
                "554 5.7.1 <x@sub.example.org>: Recipient address rejected: domain",
            ),
            (
                "user8@example.test",
                "554 5.7.1 <user8@example.test>: Recipient address rejected: localpart",
            ),
            (
                "jerry",
                "504 5.5.2 <jerry>: Recipient address rejected: need fully-qualified address",
            ),
            ("r7@example.test", "Permit"),
        ] {
            assert_eq!(rcpt(p, "127.0.0.1", "a@b.test", to), want, "{to}");
        }
        assert_eq!(
            rcpt(p, "127.0.0.1", "bad@sender.test", "jerry@example.test"),
            "554 5.7.1 <bad@sender.test>: Sender address rejected: Access denied"
        );
    }

    #[test]
    fn client_and_helo_tables() {
        let fx = fixture(
            "smtpd_client_restrictions = check_client_access inline:{ {192.0.2=REJECT}, {bad.test=550 go away} }\n\
             smtpd_helo_restrictions = reject_invalid_helo_hostname\n",
        );
        assert_eq!(
            rcpt(&fx.policy, "192.0.2.7", "a@b.test", "jerry@example.test"),
            "554 5.7.1 <client.test[192.0.2.7]>: Client host rejected: Access denied"
        );
        let f = Facts {
            client_addr: Some("198.51.100.1".parse().unwrap()),
            client_name: "host.bad.test",
            helo: Some("bad_name!"),
            sender: Some("a@b.test"),
            recipient: Some("jerry@example.test"),
            ..Facts::default()
        };
        let Verdict::Reject(r) = fx.policy.check_rcpt(&f, &mut Actions::default()) else {
            panic!("client must be refused")
        };
        assert_eq!(
            r.to_string(),
            "550 5.7.1 <host.bad.test[198.51.100.1]>: Client host rejected: go away"
        );
    }

    #[test]
    fn configurations_that_would_relay_or_are_unknown_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let load = |extra: &str| {
            let text = format!("myhostname = mail.example.test\n{extra}");
            let main = MainCf::parse(Path::new("/etc/ironpost/main.cf"), &text).unwrap();
            let cfg = Config::from_main(
                main,
                PathBuf::from("/etc/ironpost"),
                false,
                &HostFacts::default(),
            );
            let ctx = MapContext::default();
            let resolver = Arc::new(Resolver::from_config(&cfg, &ctx, &[]).unwrap());
            Policy::from_config(&cfg, &ctx, resolver, vec![])
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let _ = dir;
        let e = load("smtpd_relay_restrictions = permit_mynetworks, permit\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("open relay"), "{e}");
        let e = load("smtpd_recipient_restrictions = reject_rbl_client zen.spamhaus.org\n")
            .unwrap_err();
        assert!(
            e.contains("reject_rbl_client needs DNS-based restrictions"),
            "{e}"
        );
        let e = load("smtpd_recipient_restrictions = no_such_thing\n").unwrap_err();
        assert!(e.contains("unknown restriction \"no_such_thing\""), "{e}");
        let e = load("smtpd_recipient_restrictions = check_recipient_access\n").unwrap_err();
        assert!(e.contains("needs a table"), "{e}");
    }
}
