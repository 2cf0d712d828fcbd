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
//! The DNS-based restrictions ask [`Dns`] inline (it steps aside from the
//! tokio worker while it waits, see [`crate::bridge`]):
//! reject_unknown_sender_domain and reject_unknown_recipient_domain (no MX
//! and no address, or a null MX), reject_unknown_helo_hostname,
//! reject_rbl_client, reject_rhsbl_client/_sender/_helo/_recipient and
//! permit_dnswl_client ([`super::dnsbl`]). reject_unknown_client_hostname
//! and reject_unknown_reverse_client_hostname read the names found at
//! connect time ([`super::peer`]).
//!
//! A temporary DNS failure never rejects for good. As in Postfix,
//! reject_unknown_*_domain and reject_unknown_helo_hostname then do what
//! unknown_address_tempfail_action / unknown_helo_hostname_tempfail_action
//! say (default `$reject_tempfail_action` = defer_if_permit), the client
//! name restrictions reply 450, a block list that cannot be asked lists
//! nobody (the benefit of the doubt) and an allow list that cannot be
//! asked is defer_if_reject.
//!
//! defer_if_permit and defer_if_reject (the restrictions, the access table
//! actions and the tempfail actions) are remembered in [`Actions`] while
//! the lists run: a pending defer_if_permit turns the final permit into
//! its 450; a pending defer_if_reject turns a later 5xx reject of the same
//! stage into its 450.
//!
//! Restrictions that Postfix has and ironpost has not yet (NOT_YET) are
//! refused when the configuration is loaded, naming the restriction,
//! rather than silently ignored.

use std::net::IpAddr;
use std::sync::Arc;

use ironpost_conf::value::{is_table_spec, split_list};
use ironpost_conf::{ConfError, Config, ErrorKind, Param, params};

use super::dnsbl::{self, DnsList, Listing, TemplateFacts};
use super::peer::{self, NameStatus};
use crate::dns::{Dns, DnsError};
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
/// PREPEND), collected for the session, and the deferrals that wait for
/// the end of the evaluation (defer_if_permit, defer_if_reject).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    pub hold: Option<String>,
    pub discard: Option<String>,
    pub warnings: Vec<String>,
    pub prepend: Vec<String>,
    /// The reply if the request would be permitted (the first one asked).
    pub defer_if_permit: Option<CheckReply>,
    /// The reply if a later restriction of the same stage rejects.
    pub defer_if_reject: Option<CheckReply>,
    /// Lines for the mail log (`warning: ...`).
    pub log: Vec<String>,
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
    RejectUnknownClientHostname,
    RejectUnknownReverseClientHostname,
    RejectUnknownHeloHostname,
    RejectUnknownSenderDomain,
    RejectUnknownRecipientDomain,
    /// reject_rbl_client and the reject_rhsbl_* restrictions.
    RejectListed {
        what: Listed,
        list: DnsList,
    },
    PermitDnswlClient(DnsList),
}

/// What a DNS block list is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// reject_rbl_client: the client address.
    ClientAddress,
    /// reject_rhsbl_client: the (verified) client name.
    ClientName,
    /// reject_rhsbl_helo: the HELO name.
    Helo,
    /// reject_rhsbl_sender: the sender's domain.
    SenderDomain,
    /// reject_rhsbl_recipient: the recipient's domain.
    RecipientDomain,
}

/// What a reject-type restriction does when a lookup fails for now
/// (reject_tempfail_action and its finer settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempfailAction {
    /// Defer at once.
    Defer,
    /// Defer only if the request would otherwise be permitted.
    DeferIfPermit,
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
    /// The resolver of the DNS-based restrictions (and of the client name
    /// lookup at connect time).
    pub dns: Dns,
    /// unknown_address_tempfail_action.
    pub address_tempfail: TempfailAction,
    /// unknown_helo_hostname_tempfail_action.
    pub helo_tempfail: TempfailAction,
    /// default_rbl_reply, unexpanded.
    pub default_rbl_reply: String,
    /// rbl_reply_maps; `None` when empty.
    pub rbl_reply_maps: Option<MapList>,
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
    unknown_client: u16,
    unknown_address: u16,
    unknown_hostname: u16,
    maps_rbl: u16,
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
    /// The client's (verified) host name, or "unknown".
    pub client_name: &'a str,
    /// The client's name from its PTR record, unverified, or "unknown".
    pub reverse_client_name: &'a str,
    /// How the lookups of the two names ended.
    pub client_name_status: NameStatus,
    pub reverse_name_status: NameStatus,
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
    ("permit_mx_backup", "DNS-based restrictions"),
    ("reject_rhsbl_reverse_client", "DNS-based restrictions"),
    ("permit_rhswl_client", "DNS-based restrictions"),
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
    let listed_of = |name: &str| match name {
        "reject_rbl_client" => Some(Listed::ClientAddress),
        "reject_rhsbl_client" => Some(Listed::ClientName),
        "reject_rhsbl_helo" => Some(Listed::Helo),
        "reject_rhsbl_sender" => Some(Listed::SenderDomain),
        "reject_rhsbl_recipient" => Some(Listed::RecipientDomain),
        _ => None,
    };
    // The argument of a DNS list restriction: `domain[=d.d.d.d]`.
    let list_arg = |name: &str, items: &mut dyn Iterator<Item = String>| {
        let Some(arg) = items.next() else {
            return Err(conf_err(
                p,
                &value,
                format!("{name} needs a DNS list: {name} domain[=d.d.d.d]"),
            ));
        };
        DnsList::parse(&arg).map_err(|why| conf_err(p, &value, format!("after {name}, {why}")))
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
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                RejectUnknownClientHostname
            }
            "reject_unknown_reverse_client_hostname" => RejectUnknownReverseClientHostname,
            "reject_unknown_helo_hostname" | "reject_unknown_hostname" => RejectUnknownHeloHostname,
            "reject_unknown_sender_domain" => RejectUnknownSenderDomain,
            "reject_unknown_recipient_domain" => RejectUnknownRecipientDomain,
            "permit_dnswl_client" => {
                PermitDnswlClient(list_arg("permit_dnswl_client", &mut items)?)
            }
            name if listed_of(name).is_some() => RejectListed {
                what: listed_of(name).unwrap_or(Listed::ClientAddress),
                list: list_arg(name, &mut items)?,
            },
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
        dns: Dns,
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
        let tempfail = |p: &'static Param| -> Result<TempfailAction, ConfError> {
            Ok(match cfg.get_enum(p)?.as_str() {
                "defer" => TempfailAction::Defer,
                _ => TempfailAction::DeferIfPermit,
            })
        };
        // Read for its check; its value reaches the two finer settings
        // through their default ($reject_tempfail_action).
        tempfail(params::REJECT_TEMPFAIL_ACTION)?;
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
                unknown_client: code(cfg, params::UNKNOWN_CLIENT_REJECT_CODE)?,
                unknown_address: code(cfg, params::UNKNOWN_ADDRESS_REJECT_CODE)?,
                unknown_hostname: code(cfg, params::UNKNOWN_HOSTNAME_REJECT_CODE)?,
                maps_rbl: code(cfg, params::MAPS_RBL_REJECT_CODE)?,
            },
            own_addresses,
            dns,
            address_tempfail: tempfail(params::UNKNOWN_ADDRESS_TEMPFAIL_ACTION)?,
            helo_tempfail: tempfail(params::UNKNOWN_HELO_HOSTNAME_TEMPFAIL_ACTION)?,
            // A template of attributes, not of parameters: never expanded
            // against main.cf (postconf(5)).
            default_rbl_reply: cfg
                .raw(params::DEFAULT_RBL_REPLY.name)
                .unwrap_or_default()
                .to_string(),
            rbl_reply_maps: maps(params::RBL_REPLY_MAPS)?,
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
    /// lists, then the unknown-recipient check; a pending defer_if_permit
    /// turns the final permit into a deferral.
    pub fn check_rcpt(&self, f: &Facts<'_>, actions: &mut Actions) -> Verdict {
        match self.rcpt_stages(f, actions) {
            Ok(Some(r)) => Verdict::Reject(r),
            Ok(None) => match actions.defer_if_permit.take() {
                Some(r) => Verdict::Reject(r),
                None => Verdict::Permit,
            },
            Err(e) => Verdict::Reject(self.temp_failure(e)),
        }
    }

    /// The stages of RCPT; the reply when one refuses.
    fn rcpt_stages(
        &self,
        f: &Facts<'_>,
        actions: &mut Actions,
    ) -> Result<Option<CheckReply>, LookupError> {
        // Each stage has its own defer_if_reject (as Postfix's); relay and
        // recipient lists are one stage.
        for (lists, stage) in [
            (&[&self.client][..], Stage::Client),
            (&[&self.helo][..], Stage::Helo),
            (&[&self.sender][..], Stage::Sender),
            (&[&self.relay, &self.recipient][..], Stage::Recipient),
        ] {
            actions.defer_if_reject = None;
            for list in lists {
                if let Verdict::Reject(r) = self.run(list, stage, f, actions)? {
                    return Ok(Some(Self::unless_deferred(r, actions)));
                }
            }
        }
        if self.reject_unlisted_recipient
            && let Some(r) = self.unlisted_recipient(f)?
        {
            return Ok(Some(Self::unless_deferred(r, actions)));
        }
        if self.reject_unlisted_sender
            && let Some(r) = self.unlisted_sender(f)?
        {
            return Ok(Some(Self::unless_deferred(r, actions)));
        }
        Ok(None)
    }

    /// A reject, or the pending defer_if_reject's reply instead of a
    /// permanent one.
    fn unless_deferred(r: CheckReply, actions: &Actions) -> CheckReply {
        match &actions.defer_if_reject {
            Some(d) if r.code >= 500 => d.clone(),
            _ => r,
        }
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
            Ok(Verdict::Reject(r)) => Verdict::Reject(Self::unless_deferred(r, actions)),
            Ok(_) => match actions.defer_if_permit.take() {
                Some(r) => Verdict::Reject(r),
                None => Verdict::Permit,
            },
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
            DeferIfPermit => {
                let text = format!(
                    "{subject}: {} rejected: defer_if_permit requested",
                    stage.noun()
                );
                self.defer_if_permit(450, "4.7.0", text, actions)
            }
            DeferIfReject => {
                let text = format!(
                    "{subject}: {} rejected: defer_if_reject requested",
                    stage.noun()
                );
                self.defer_if_reject(450, "4.7.0", text, actions)
            }
            RejectUnknownClientHostname | RejectUnknownReverseClientHostname => {
                // RFC 7372 §3.3: X.7.25, reverse DNS validation failed
                // (Postfix 3.7 gives the reverse name check X.7.1).
                let (status, what, detail) = if matches!(r, RejectUnknownClientHostname) {
                    (f.client_name_status, "hostname", "7.25")
                } else {
                    (f.reverse_name_status, "reverse hostname", "7.1")
                };
                if status == NameStatus::Ok {
                    return Ok(Verdict::Dunno);
                }
                // Always 450 when the DNS failed for now.
                let code = if status.is_permanent() {
                    c.unknown_client
                } else {
                    450
                };
                Verdict::Reject(CheckReply {
                    code,
                    status: class_status(code, detail),
                    text: format!(
                        "Client host rejected: cannot find your {what}, [{}]",
                        f.client_addr.map(|a| a.to_string()).unwrap_or_default()
                    ),
                })
            }
            RejectUnknownHeloHostname => match f.helo {
                Some(h) if !h.starts_with('[') && !h.is_empty() => {
                    let name = h.trim_end_matches('.');
                    match self.host_exists(name) {
                        Existence::Exists | Existence::NullMx => Verdict::Dunno,
                        found => {
                            let text = format!("<{h}>: Helo command rejected: Host not found");
                            if found == Existence::Failed {
                                self.tempfail(self.helo_tempfail, "7.1", text, actions)
                            } else {
                                let code = c.unknown_hostname;
                                Verdict::Reject(CheckReply {
                                    code,
                                    status: class_status(code, "7.1"),
                                    text,
                                })
                            }
                        }
                    }
                }
                _ => Verdict::Dunno,
            },
            RejectUnknownSenderDomain => match f.sender {
                Some(s) if !s.is_empty() => self.unknown_domain(s, Stage::Sender, actions)?,
                _ => Verdict::Dunno,
            },
            RejectUnknownRecipientDomain => match f.recipient {
                Some(rc) if !rc.is_empty() => self.unknown_domain(rc, Stage::Recipient, actions)?,
                _ => Verdict::Dunno,
            },
            RejectListed { what, list } => self.listed(*what, list, f, actions),
            PermitDnswlClient(list) => {
                let Some(ip) = f.client_addr else {
                    return Ok(Verdict::Dunno);
                };
                match dnsbl::lookup(&self.dns, list, &list.address_query(ip)) {
                    Listing::Listed(_) => {
                        // Never a way around reject_unauth_destination.
                        if stage == Stage::Recipient
                            && let Some(res) = self.recipient_resolved(f)?
                            && !res.is_authorized_destination()
                        {
                            Verdict::Dunno
                        } else {
                            Verdict::Permit
                        }
                    }
                    Listing::NotListed => Verdict::Dunno,
                    Listing::Failed(why) => {
                        actions.log.push(format!(
                            "warning: {}: RBL lookup error: {why}",
                            list.address_query(ip)
                        ));
                        let text = format!("<{ip}>: Client host rejected: Service unavailable");
                        self.defer_if_reject(450, "4.7.1", text, actions)
                    }
                }
            }
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

    /// Remembers a reply for the end of the evaluation, if it permits
    /// (the first one asked wins).
    fn defer_if_permit(
        &self,
        code: u16,
        status: &str,
        text: String,
        actions: &mut Actions,
    ) -> Verdict {
        actions.defer_if_permit.get_or_insert(CheckReply {
            code,
            status: status.to_string(),
            text,
        });
        Verdict::Dunno
    }

    /// Remembers a reply for a later reject of this stage.
    fn defer_if_reject(
        &self,
        code: u16,
        status: &str,
        text: String,
        actions: &mut Actions,
    ) -> Verdict {
        actions.defer_if_reject.get_or_insert(CheckReply {
            code,
            status: status.to_string(),
            text,
        });
        Verdict::Dunno
    }

    /// A reject-type restriction whose lookup failed for now: 450 at once
    /// or when the request would be permitted.
    fn tempfail(
        &self,
        action: TempfailAction,
        detail: &str,
        text: String,
        actions: &mut Actions,
    ) -> Verdict {
        let status = format!("4.{detail}");
        match action {
            TempfailAction::Defer => Verdict::Reject(CheckReply {
                code: 450,
                status,
                text,
            }),
            TempfailAction::DeferIfPermit => self.defer_if_permit(450, &status, text, actions),
        }
    }

    /// Whether a host name has an address (A, AAAA) or an MX record.
    fn host_exists(&self, name: &str) -> Existence {
        let failed = match self.dns.addresses(name, true, true) {
            Ok(_) => return Existence::Exists,
            Err(DnsError::NotFound) => return Existence::NotFound,
            Err(e) => !e.is_permanent(),
        };
        match self.dns.mx(name) {
            Ok(mxs) if mxs.iter().any(|m| m.is_null()) => Existence::NullMx,
            Ok(_) => Existence::Exists,
            Err(DnsError::Failed(_)) => Existence::Failed,
            Err(_) if failed => Existence::Failed,
            Err(_) => Existence::NotFound,
        }
    }

    /// Whether a mail domain exists: an MX record (a null MX says it
    /// takes no mail), else an address (RFC 5321 §5.1 implicit MX).
    fn domain_exists(&self, domain: &str) -> Existence {
        let failed = match self.dns.mx(domain) {
            Ok(mxs) if mxs.iter().any(|m| m.is_null()) => return Existence::NullMx,
            Ok(_) => return Existence::Exists,
            Err(DnsError::NotFound) => return Existence::NotFound,
            Err(e) => !e.is_permanent(),
        };
        match self.dns.addresses(domain, true, true) {
            Ok(_) => Existence::Exists,
            Err(DnsError::Failed(_)) => Existence::Failed,
            Err(_) if failed => Existence::Failed,
            Err(_) => Existence::NotFound,
        }
    }

    /// reject_unknown_sender_domain and reject_unknown_recipient_domain:
    /// never for our own domains (local, virtual, relay) or an address
    /// literal.
    fn unknown_domain(
        &self,
        address: &str,
        stage: Stage,
        actions: &mut Actions,
    ) -> Result<Verdict, LookupError> {
        let Some(res) = self.resolver.resolve(address)? else {
            return Ok(Verdict::Dunno);
        };
        if res.class != AddressClass::Default || res.domain.starts_with('[') {
            return Ok(Verdict::Dunno);
        }
        let sender = stage == Stage::Sender;
        let noun = stage.noun();
        Ok(match self.domain_exists(&res.domain) {
            Existence::Exists => Verdict::Dunno,
            Existence::NullMx => {
                // RFC 7505 §4.2 (sender) and §4.1 (recipient).
                let (code, status) = if sender {
                    (550, "5.7.27")
                } else {
                    (556, "5.1.10")
                };
                Verdict::Reject(CheckReply {
                    code,
                    status: status.into(),
                    text: format!(
                        "<{address}>: {noun} rejected: Domain {} does not accept mail (nullMX)",
                        res.domain
                    ),
                })
            }
            found => {
                // RFC 3463: X.1.8 bad sender's system address, X.1.2 bad
                // destination system address.
                let detail = if sender { "1.8" } else { "1.2" };
                let text = format!("<{address}>: {noun} rejected: Domain not found");
                if found == Existence::Failed {
                    self.tempfail(self.address_tempfail, detail, text, actions)
                } else {
                    let code = self.codes.unknown_address;
                    Verdict::Reject(CheckReply {
                        code,
                        status: class_status(code, detail),
                        text,
                    })
                }
            }
        })
    }

    /// reject_rbl_client and reject_rhsbl_*: the reply when `list` lists
    /// what `what` names. A list that cannot be asked lists nobody.
    fn listed(
        &self,
        what: Listed,
        list: &DnsList,
        f: &Facts<'_>,
        actions: &mut Actions,
    ) -> Verdict {
        let domain_of = |address: Option<&str>| {
            address
                .and_then(|a| a.rsplit_once('@'))
                .map(|(_, d)| d.trim_end_matches('.'))
                .filter(|d| !d.is_empty() && !d.starts_with('['))
                .map(str::to_string)
        };
        let client_addr = f.client_addr.map(|a| a.to_string()).unwrap_or_default();
        // (query, $rbl_class, $rbl_what)
        let (query, class, shown) = match what {
            Listed::ClientAddress => match f.client_addr {
                Some(ip) => (list.address_query(ip), "Client host", client_addr.clone()),
                None => return Verdict::Dunno,
            },
            Listed::ClientName => {
                if f.client_name.is_empty() || f.client_name == peer::UNKNOWN {
                    return Verdict::Dunno;
                }
                (
                    list.name_query(f.client_name),
                    "Client host",
                    f.client_name.to_string(),
                )
            }
            Listed::Helo => match f.helo {
                Some(h) if !h.is_empty() && !h.starts_with('[') => {
                    (list.name_query(h), "Helo command", h.to_string())
                }
                _ => return Verdict::Dunno,
            },
            Listed::SenderDomain => match (f.sender, domain_of(f.sender)) {
                (Some(s), Some(d)) => (list.name_query(&d), "Sender address", s.to_string()),
                _ => return Verdict::Dunno,
            },
            Listed::RecipientDomain => match (f.recipient, domain_of(f.recipient)) {
                (Some(r), Some(d)) => (list.name_query(&d), "Recipient address", r.to_string()),
                _ => return Verdict::Dunno,
            },
        };
        let reason = match dnsbl::lookup(&self.dns, list, &query) {
            Listing::Listed(reason) => reason,
            Listing::NotListed => return Verdict::Dunno,
            Listing::Failed(why) => {
                // The benefit of the doubt, as Postfix gives it.
                actions
                    .log
                    .push(format!("warning: {query}: RBL lookup error: {why}"));
                return Verdict::Dunno;
            }
        };
        let template = match &self.rbl_reply_maps {
            Some(maps) => match maps.find(&list.domain) {
                Ok(Some(t)) => t,
                Ok(None) => self.default_rbl_reply.clone(),
                Err(e) => {
                    tracing::warn!("rbl_reply_maps: {e}");
                    self.default_rbl_reply.clone()
                }
            },
            None => self.default_rbl_reply.clone(),
        };
        let code = self.codes.maps_rbl;
        let text = dnsbl::expand_template(
            &template,
            &TemplateFacts {
                client_address: client_addr,
                client_name: f.client_name,
                reverse_client_name: f.reverse_client_name,
                helo_name: f.helo.unwrap_or(""),
                rbl_class: class,
                rbl_code: code,
                rbl_domain: &list.domain,
                rbl_reason: &reason,
                rbl_what: &shown,
                sender: f.sender.unwrap_or(""),
                recipient: f.recipient.unwrap_or(""),
            },
        );
        Verdict::Reject(template_reply(&text, code))
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
                let r = self.reply(c.access_defer, "4.7.1", subject, stage, text);
                match upper.as_str() {
                    "DEFER_IF_REJECT" => self.defer_if_reject(r.code, &r.status, r.text, actions),
                    "DEFER_IF_PERMIT" => self.defer_if_permit(r.code, &r.status, r.text, actions),
                    _ => Verdict::Reject(r),
                }
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
            "HOLD" | "DISCARD" => {
                // Postfix's log text: `<x@y>: Recipient address triggers
                // HOLD action`, or the table's own text after the subject.
                let text = if rest.is_empty() {
                    format!("{subject}: {} triggers {upper} action", stage.noun())
                } else {
                    format!("{subject}: {rest}")
                };
                if upper == "HOLD" {
                    actions.hold.get_or_insert(text);
                    Verdict::Dunno
                } else {
                    actions.discard.get_or_insert(text);
                    Verdict::Permit
                }
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

/// What the DNS says about a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existence {
    Exists,
    /// A null MX (RFC 7505): the domain exists and takes no mail.
    NullMx,
    NotFound,
    /// The DNS failed for now.
    Failed,
}

/// An enhanced status code of the reply code's class: `4.1.8` for 450,
/// `5.1.8` for 550.
fn class_status(code: u16, detail: &str) -> String {
    format!("{}.{detail}", if code >= 500 { 5 } else { 4 })
}

/// A reply from an expanded RBL template: `code [x.y.z] text`. A template
/// that does not start with a 4xx or 5xx code gets `code` in front.
fn template_reply(text: &str, code: u16) -> CheckReply {
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    let (code, rest) = match first.parse::<u16>() {
        Ok(n) if first.len() == 3 && (400..600).contains(&n) => (n, rest),
        _ => {
            tracing::warn!("RBL reply template does not start with a 4xx or 5xx code: {text:?}");
            (code, text)
        }
    };
    let class = if code >= 500 { "5" } else { "4" };
    let (status, rest) = match rest.split_once(' ') {
        Some((s, r)) if is_enhanced(s) && s.starts_with(class) => (s.to_string(), r),
        _ if is_enhanced(rest) && rest.starts_with(class) => (rest.to_string(), ""),
        _ => (format!("{class}.7.1"), rest),
    };
    CheckReply {
        code,
        status,
        text: rest.to_string(),
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
    use ironpost_testkit::dns::DnsServer;
    use std::path::{Path, PathBuf};

    /// A resolver that asks nobody: every lookup fails at once.
    fn no_dns() -> Dns {
        Dns::with_servers(Vec::new(), std::time::Duration::from_millis(100))
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        policy: Policy,
    }

    fn fixture(extra: &str) -> Fixture {
        fixture_with(extra, no_dns())
    }

    fn fixture_with(extra: &str, dns: Dns) -> Fixture {
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
        let policy = Policy::from_config(&cfg, &ctx, resolver, vec![], dns).unwrap();
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
            Policy::from_config(&cfg, &ctx, resolver, vec![], no_dns())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let _ = dir;
        let e = load("smtpd_relay_restrictions = permit_mynetworks, permit\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("open relay"), "{e}");
        let e = load("smtpd_recipient_restrictions = permit_mx_backup\n").unwrap_err();
        assert!(
            e.contains("permit_mx_backup needs DNS-based restrictions"),
            "{e}"
        );
        let e = load("smtpd_client_restrictions = reject_rbl_client\n").unwrap_err();
        assert!(
            e.contains("reject_rbl_client needs a DNS list: reject_rbl_client domain[=d.d.d.d]"),
            "{e}"
        );
        let e = load("smtpd_client_restrictions = permit_dnswl_client list.example=127.0.0\n")
            .unwrap_err();
        assert!(
            e.contains("after permit_dnswl_client, an answer filter like 127.0.0.2"),
            "{e}"
        );
        load(
            "smtpd_client_restrictions = reject_rbl_client zen.example=127.0.0.[2..11], \
             reject_rhsbl_client a.example, reject_rhsbl_helo a.example, \
             reject_rhsbl_sender a.example reject_rhsbl_recipient a.example, \
             permit_dnswl_client w.example, reject_unknown_client_hostname, \
             reject_unknown_reverse_client_hostname, reject_unknown_helo_hostname, \
             reject_unknown_sender_domain, reject_unknown_recipient_domain, \
             reject_unknown_client, reject_unknown_hostname\n",
        )
        .unwrap();
        let e = load("unknown_address_tempfail_action = later\n").unwrap_err();
        assert!(e.contains("unknown_address_tempfail_action"), "{e}");
        let e = load("smtpd_recipient_restrictions = no_such_thing\n").unwrap_err();
        assert!(e.contains("unknown restriction \"no_such_thing\""), "{e}");
        let e = load("smtpd_recipient_restrictions = check_recipient_access\n").unwrap_err();
        assert!(e.contains("needs a table"), "{e}");
    }

    const ZONE: &str = "
mx.example          MX    10 mail.mx.example
mail.mx.example     A     192.0.2.8
aonly.example       A     192.0.2.7
v6only.example      AAAA  2001:db8::7
nullmx.example      MX    0 .
broken.example      SERVFAIL
4.0.0.127.zen.example   A   127.0.0.2
4.0.0.127.zen.example   TXT \"listed at zen\"
6.0.0.127.zen.example   A   127.0.0.10
7.0.0.127.zen.example   SERVFAIL
8.0.0.127.dnswl.example A   127.0.10.0
7.0.0.127.dnswl.example SERVFAIL
bad.example.rhsbl.example      A 127.0.0.2
listed.example.rhsbl.example   A 127.0.0.2
";

    fn dns_fixture(server: &DnsServer, extra: &str) -> Fixture {
        let dns = Dns::with_servers(vec![server.addr], std::time::Duration::from_secs(2));
        fixture_with(extra, dns)
    }

    /// A check at RCPT time with these facts (HELO h.example, client
    /// unknown unless given).
    fn check(p: &Policy, f: Facts<'_>) -> String {
        let f = Facts {
            helo: f.helo.or(Some("h.example")),
            client_name: if f.client_name.is_empty() {
                "unknown"
            } else {
                f.client_name
            },
            reverse_client_name: if f.reverse_client_name.is_empty() {
                "unknown"
            } else {
                f.reverse_client_name
            },
            ..f
        };
        match p.check_rcpt(&f, &mut Actions::default()) {
            Verdict::Reject(r) => r.to_string(),
            other => format!("{other:?}"),
        }
    }

    fn from(client: &str, sender: &'static str, recipient: &'static str) -> Facts<'static> {
        Facts {
            client_addr: Some(client.parse().unwrap()),
            sender: Some(sender),
            recipient: Some(recipient),
            ..Facts::default()
        }
    }

    // The replies below were checked against Postfix 3.7 with the same
    // zone and restrictions.

    #[test]
    fn unknown_sender_and_recipient_domains() {
        let server = DnsServer::start(ZONE);
        let fx = dns_fixture(
            &server,
            "smtpd_sender_restrictions = reject_unknown_sender_domain\n\
             smtpd_recipient_restrictions = reject_unknown_recipient_domain\n",
        );
        let p = &fx.policy;
        let rcpt = "jerry@example.test";
        for (sender, want) in [
            (
                "x@nowhere.example",
                "450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found",
            ),
            (
                "x@Nullmx.Example",
                "550 5.7.27 <x@Nullmx.Example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)",
            ),
            // defer_if_permit, and nothing else rejects.
            (
                "x@broken.example",
                "450 4.1.8 <x@broken.example>: Sender address rejected: Domain not found",
            ),
            ("x@mx.example", "Permit"),
            ("x@aonly.example", "Permit"),
            ("x@v6only.example", "Permit"),
            // The null sender, our own domains and literals: never.
            ("", "Permit"),
            ("someone@example.test", "Permit"),
            ("someone@virt.test", "Permit"),
            ("someone", "Permit"),
            ("x@[192.0.2.1]", "Permit"),
        ] {
            assert_eq!(check(p, from("192.0.2.1", sender, rcpt)), want, "{sender}");
        }
        for (rcpt, want) in [
            (
                "x@nowhere.example",
                "450 4.1.2 <x@nowhere.example>: Recipient address rejected: Domain not found",
            ),
            (
                "x@nullmx.example",
                "556 5.1.10 <x@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX)",
            ),
            (
                "x@broken.example",
                "450 4.1.2 <x@broken.example>: Recipient address rejected: Domain not found",
            ),
            ("x@aonly.example", "Permit"),
        ] {
            // From mynetworks, so that relaying is allowed.
            assert_eq!(
                check(p, from("127.0.0.1", "a@mx.example", rcpt)),
                want,
                "{rcpt}"
            );
        }
        let fx = dns_fixture(
            &server,
            "smtpd_sender_restrictions = reject_unknown_sender_domain\n\
             unknown_address_reject_code = 550\n",
        );
        assert_eq!(
            check(
                &fx.policy,
                from("192.0.2.1", "x@nowhere.example", "jerry@example.test")
            ),
            "550 5.1.8 <x@nowhere.example>: Sender address rejected: Domain not found"
        );
    }

    #[test]
    fn temporary_failures_defer_if_permit_or_at_once() {
        let server = DnsServer::start(ZONE);
        let broken = || from("192.0.2.1", "x@broken.example", "jerry@example.test");
        // A later reject wins over defer_if_permit...
        let fx = dns_fixture(
            &server,
            "smtpd_sender_restrictions = reject_unknown_sender_domain\n\
             smtpd_recipient_restrictions = reject\n",
        );
        assert_eq!(
            check(&fx.policy, broken()),
            "554 5.7.1 <jerry@example.test>: Recipient address rejected: Access denied"
        );
        // ... but not over defer.
        let fx = dns_fixture(
            &server,
            "smtpd_sender_restrictions = reject_unknown_sender_domain\n\
             smtpd_recipient_restrictions = reject\n\
             reject_tempfail_action = defer\n",
        );
        assert_eq!(
            check(&fx.policy, broken()),
            "450 4.1.8 <x@broken.example>: Sender address rejected: Domain not found"
        );
        let fx = dns_fixture(
            &server,
            "smtpd_helo_restrictions = reject_unknown_helo_hostname\n",
        );
        let helo = |h: &'static str| Facts {
            helo: Some(h),
            ..from("192.0.2.1", "a@mx.example", "jerry@example.test")
        };
        let p = &fx.policy;
        assert_eq!(
            check(p, helo("nohost.example")),
            "450 4.7.1 <nohost.example>: Helo command rejected: Host not found"
        );
        assert_eq!(
            check(p, helo("broken.example")),
            "450 4.7.1 <broken.example>: Helo command rejected: Host not found"
        );
        for good in [
            "aonly.example",
            "mx.example",
            "nullmx.example",
            "[192.0.2.1]",
        ] {
            assert_eq!(check(p, helo(good)), "Permit", "{good}");
        }
        let fx = dns_fixture(
            &server,
            "smtpd_helo_restrictions = reject_unknown_helo_hostname\n\
             unknown_hostname_reject_code = 550\n",
        );
        assert_eq!(
            check(&fx.policy, helo("nohost.example")),
            "550 5.7.1 <nohost.example>: Helo command rejected: Host not found"
        );
    }

    #[test]
    fn client_names() {
        let fx = fixture(
            "smtpd_client_restrictions = reject_unknown_client_hostname\n\
             unknown_client_reject_code = 550\n",
        );
        let named = |name: &'static str, status, reverse_status| Facts {
            client_name: name,
            reverse_client_name: "ptr.example",
            client_name_status: status,
            reverse_name_status: reverse_status,
            ..from("192.0.2.1", "a@mx.example", "jerry@example.test")
        };
        use NameStatus::*;
        let p = &fx.policy;
        assert_eq!(check(p, named("ptr.example", Ok, Ok)), "Permit");
        assert_eq!(
            check(p, named("unknown", Forged, Ok)),
            "550 5.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]"
        );
        assert_eq!(
            check(p, named("unknown", Temporary, Temporary)),
            "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]"
        );
        let fx = fixture("smtpd_client_restrictions = reject_unknown_reverse_client_hostname\n");
        let p = &fx.policy;
        assert_eq!(check(p, named("unknown", Forged, Ok)), "Permit");
        assert_eq!(
            check(p, named("unknown", Permanent, Permanent)),
            "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]"
        );
    }

    #[test]
    fn block_lists() {
        let server = DnsServer::start(ZONE);
        let fx = dns_fixture(
            &server,
            "smtpd_client_restrictions = reject_rbl_client zen.example, reject_rhsbl_client rhsbl.example, \
             reject_rhsbl_helo rhsbl.example, reject_rhsbl_sender rhsbl.example, reject_rhsbl_recipient rhsbl.example\n",
        );
        let p = &fx.policy;
        let ok = || from("127.0.0.1", "a@mx.example", "x@aonly.example");
        assert_eq!(
            check(
                p,
                Facts {
                    client_addr: Some("127.0.0.4".parse().unwrap()),
                    ..ok()
                }
            ),
            "554 5.7.1 Service unavailable; Client host [127.0.0.4] blocked using zen.example; listed at zen"
        );
        assert_eq!(
            check(
                p,
                Facts {
                    client_addr: Some("127.0.0.6".parse().unwrap()),
                    ..ok()
                }
            ),
            "554 5.7.1 Service unavailable; Client host [127.0.0.6] blocked using zen.example"
        );
        // A list that cannot answer lists nobody; the mail log says so.
        let mut actions = Actions::default();
        let f = Facts {
            client_addr: Some("127.0.0.7".parse().unwrap()),
            helo: Some("h.example"),
            client_name: "unknown",
            ..ok()
        };
        assert_eq!(p.check_rcpt(&f, &mut actions), Verdict::Permit);
        assert_eq!(
            actions.log,
            [
                "warning: 7.0.0.127.zen.example: RBL lookup error: Host or domain name not found. Name service error for name=7.0.0.127.zen.example type=A: Host not found, try again"
            ]
        );
        assert_eq!(
            check(
                p,
                Facts {
                    client_name: "listed.example",
                    ..ok()
                }
            ),
            "554 5.7.1 Service unavailable; Client host [listed.example] blocked using rhsbl.example"
        );
        assert_eq!(
            check(
                p,
                Facts {
                    helo: Some("bad.example"),
                    ..ok()
                }
            ),
            "554 5.7.1 Service unavailable; Helo command [bad.example] blocked using rhsbl.example"
        );
        assert_eq!(
            check(
                p,
                Facts {
                    sender: Some("x@bad.example"),
                    ..ok()
                }
            ),
            "554 5.7.1 Service unavailable; Sender address [x@bad.example] blocked using rhsbl.example"
        );
        assert_eq!(
            check(
                p,
                Facts {
                    recipient: Some("x@bad.example"),
                    ..ok()
                }
            ),
            "554 5.7.1 Service unavailable; Recipient address [x@bad.example] blocked using rhsbl.example"
        );
        assert_eq!(check(p, ok()), "Permit");
        // A filter, maps_rbl_reject_code, and a reply of rbl_reply_maps.
        let fx = dns_fixture(
            &server,
            "smtpd_client_restrictions = reject_rbl_client zen.example=127.0.0.[2..9]\n\
             maps_rbl_reject_code = 550\n\
             rbl_reply_maps = inline:{ {zen.example=$$rbl_code 5.7.2 Go away $$client_address ($${rbl_reason?{$$rbl_reason}:{no reason}}) $$$$x} }\n",
        );
        assert_eq!(
            check(
                &fx.policy,
                Facts {
                    client_addr: Some("127.0.0.4".parse().unwrap()),
                    ..ok()
                }
            ),
            "550 5.7.2 Go away 127.0.0.4 (listed at zen) $x"
        );
        assert_eq!(
            check(
                &fx.policy,
                Facts {
                    client_addr: Some("127.0.0.6".parse().unwrap()),
                    ..ok()
                }
            ),
            "Permit"
        );
    }

    #[test]
    fn allow_lists_and_deferrals() {
        let server = DnsServer::start(ZONE);
        let fx = dns_fixture(
            &server,
            "smtpd_client_restrictions = permit_dnswl_client dnswl.example, reject\n",
        );
        let p = &fx.policy;
        let client = |ip: &str| from(ip, "a@mx.example", "jerry@example.test");
        assert_eq!(check(p, client("127.0.0.8")), "Permit");
        assert_eq!(
            check(p, client("127.0.0.9")),
            "554 5.7.1 <unknown[127.0.0.9]>: Client host rejected: Access denied"
        );
        // The allow list cannot answer: the reject of that stage defers.
        assert_eq!(
            check(p, client("127.0.0.7")),
            "450 4.7.1 <127.0.0.7>: Client host rejected: Service unavailable"
        );
        // ... but not a reject of a later stage.
        let fx = dns_fixture(
            &server,
            "smtpd_client_restrictions = permit_dnswl_client dnswl.example\n\
             smtpd_recipient_restrictions = reject\n",
        );
        assert_eq!(
            check(&fx.policy, client("127.0.0.7")),
            "554 5.7.1 <jerry@example.test>: Recipient address rejected: Access denied"
        );
        // Never a way around reject_unauth_destination.
        let fx = dns_fixture(
            &server,
            "smtpd_relay_restrictions = permit_dnswl_client dnswl.example, reject_unauth_destination\n",
        );
        assert_eq!(
            check(
                &fx.policy,
                from("127.0.0.8", "a@mx.example", "x@elsewhere.example")
            ),
            "554 5.7.1 <x@elsewhere.example>: Relay access denied"
        );
        assert_eq!(
            check(
                &fx.policy,
                from("127.0.0.8", "a@mx.example", "jerry@example.test")
            ),
            "Permit"
        );
        // The restrictions of the same names.
        let fx = fixture("smtpd_client_restrictions = defer_if_permit\n");
        assert_eq!(
            check(
                &fx.policy,
                Facts {
                    client_name: "client.example",
                    ..client("192.0.2.1")
                }
            ),
            "450 4.7.0 <client.example[192.0.2.1]>: Client host rejected: defer_if_permit requested"
        );
        let fx = fixture("smtpd_client_restrictions = defer_if_reject, reject\n");
        assert_eq!(
            check(&fx.policy, client("192.0.2.1")),
            "450 4.7.0 <unknown[192.0.2.1]>: Client host rejected: defer_if_reject requested"
        );
        let fx = fixture(
            "smtpd_client_restrictions = check_client_access inline:{ {192.0.2.1=DEFER_IF_PERMIT later} }\n",
        );
        assert_eq!(
            check(&fx.policy, client("192.0.2.1")),
            "450 4.7.1 <unknown[192.0.2.1]>: Client host rejected: later"
        );
    }
}
