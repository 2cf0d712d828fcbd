//! Final delivery: Postfix's local(8) and virtual(8) agents.
//!
//! ## Layout
//! - [`local`](self) (this file): a recipient in a local domain: aliases,
//!   `~/.forward`, then the user's mailbox (mbox in mail_spool_directory,
//!   `~/Mailbox`, or `~/Maildir/` per home_mailbox).
//! - [`virtual_agent`]: a recipient in a virtual mailbox domain: its
//!   mailbox under virtual_mailbox_base.
//! - [`pipe`]: delivery to a `|command`.
//!
//! Every delivery prepends `Return-Path:`, `X-Original-To:` and
//! `Delivered-To:` as Postfix does, and refuses a message that already has
//! `Delivered-To:` for the same recipient (a mail forwarding loop). Running
//! as root, files are created as, and commands run as, the recipient.
//!
//! Alias and `.forward` expansion is recursive within one delivery for
//! local addresses; other addresses are handed back to the queue manager,
//! which queues one forwarded message for them (`forwarded as ID`).

pub mod pipe;
pub mod virtual_agent;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ironpost_conf::{ConfError, Config, params};

use crate::mailbox::Mailbox;
use crate::maps::aliases::{self, AliasTarget};
use crate::maps::{MapContext, MapList, split_extension};
use crate::resolve::{AddressClass, Resolver};
use crate::sysuser::{self, SysUser};

/// How a delivery attempt ended, for one final destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Sent,
    Deferred,
    Bounced,
}

/// The result of delivering to one destination (an alias may have several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The address delivered to (`to=<...>` in the log).
    pub to: String,
    pub status: Status,
    /// The RFC 3463 status: 2.0.0, 4.x.x, 5.x.x.
    pub dsn: String,
    /// What happened, for the log and bounces: `delivered to maildir`.
    pub text: String,
    /// `local`, `virtual`, `none`, or for SMTP the peer:
    /// `mx.example.com[192.0.2.1]:25`.
    pub relay: String,
    /// The program that logs the outcome, when not implied by `relay`
    /// (the SMTP client's transport name: `smtp`, `relay`).
    pub program: Option<String>,
    /// For a failure reported by another server: its name and its reply,
    /// for the Remote-MTA and Diagnostic-Code fields of a bounce.
    pub remote: Option<(String, String)>,
}

impl Outcome {
    pub fn sent(to: &str, relay: &'static str, text: impl Into<String>) -> Outcome {
        Outcome {
            to: to.to_string(),
            status: Status::Sent,
            dsn: "2.0.0".into(),
            text: text.into(),
            relay: relay.into(),
            program: None,
            remote: None,
        }
    }

    pub fn failed(to: &str, relay: &'static str, dsn: &str, text: impl Into<String>) -> Outcome {
        let status = if dsn.starts_with('4') {
            Status::Deferred
        } else {
            Status::Bounced
        };
        Outcome {
            to: to.to_string(),
            status,
            dsn: dsn.to_string(),
            text: text.into(),
            relay: relay.into(),
            program: None,
            remote: None,
        }
    }
}

/// What a recipient's delivery produced: outcomes for the log and
/// addresses to forward in a new message.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub outcomes: Vec<Outcome>,
    /// Non-local addresses found in aliases or .forward files.
    pub forward: Vec<String>,
}

/// A message being delivered.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub queue_id: &'a str,
    /// The envelope sender (empty for `<>`).
    pub sender: &'a str,
    /// Headers and body, CRLF line ends.
    pub content: &'a [u8],
    pub arrival: SystemTime,
}

/// The settings of local and virtual delivery.
#[derive(Debug)]
pub struct Agents {
    pub resolver: Arc<Resolver>,
    pub alias_maps: MapList,
    pub recipient_delimiter: String,
    pub passwd_file: PathBuf,
    pub home_mailbox: String,
    pub mail_spool_directory: PathBuf,
    pub allow_mail_to_commands: Vec<String>,
    pub allow_mail_to_files: Vec<String>,
    pub command_time_limit: Duration,
    pub default_privs: String,
    pub virtual_mailbox_maps: MapList,
    pub virtual_mailbox_base: PathBuf,
    pub virtual_uid_maps: MapList,
    pub virtual_gid_maps: MapList,
    pub virtual_minimum_uid: u32,
    pub as_root: bool,
    /// The user directory (directory_url), for its users' quotas.
    pub directory_url: Option<String>,
}

/// Where an expansion came from: aliases, .forward or :include: (this
/// decides whether files and commands are allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Alias,
    Forward,
    Include,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Alias => "alias",
            Source::Forward => "forward",
            Source::Include => "include",
        }
    }
}

/// The longest chain of aliases followed.
const MAX_DEPTH: usize = 100;

impl Agents {
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        resolver: Arc<Resolver>,
    ) -> Result<Agents, ConfError> {
        let maps =
            |p| -> Result<MapList, ConfError> { Ok(MapList::open_all(&cfg.get_maps(p)?, ctx)) };
        Ok(Agents {
            resolver,
            alias_maps: maps(params::ALIAS_MAPS)?,
            recipient_delimiter: cfg.get_str(params::RECIPIENT_DELIMITER)?,
            passwd_file: ctx.passwd_file.clone(),
            home_mailbox: cfg.get_str(params::HOME_MAILBOX)?.trim().to_string(),
            mail_spool_directory: PathBuf::from(cfg.get_str(params::MAIL_SPOOL_DIRECTORY)?.trim()),
            allow_mail_to_commands: cfg.get_list(params::ALLOW_MAIL_TO_COMMANDS)?,
            allow_mail_to_files: cfg.get_list(params::ALLOW_MAIL_TO_FILES)?,
            command_time_limit: cfg.get_time(params::COMMAND_TIME_LIMIT)?,
            default_privs: cfg.get_str(params::DEFAULT_PRIVS)?.trim().to_string(),
            virtual_mailbox_maps: maps(params::VIRTUAL_MAILBOX_MAPS)?,
            virtual_mailbox_base: PathBuf::from(cfg.get_str(params::VIRTUAL_MAILBOX_BASE)?.trim()),
            virtual_uid_maps: maps(params::VIRTUAL_UID_MAPS)?,
            virtual_gid_maps: maps(params::VIRTUAL_GID_MAPS)?,
            virtual_minimum_uid: cfg.get_int(params::VIRTUAL_MINIMUM_UID)? as u32,
            as_root: sysuser::running_as_root(),
            directory_url: Some(cfg.get_str(params::DIRECTORY_URL)?.trim().to_string())
                .filter(|u| !u.is_empty()),
        })
    }

    /// Delivers to one local recipient: `address` is the resolved address,
    /// `original` the one the client gave.
    pub fn deliver_local(&self, msg: &Message<'_>, address: &str, original: &str) -> Delivered {
        let mut out = Delivered::default();
        let mut seen = HashSet::new();
        self.local_recipient(msg, address, original, 0, &mut seen, &mut out);
        out
    }

    fn local_recipient(
        &self,
        msg: &Message<'_>,
        address: &str,
        original: &str,
        depth: usize,
        seen: &mut HashSet<String>,
        out: &mut Delivered,
    ) {
        const RELAY: &str = "local";
        if depth > MAX_DEPTH {
            out.outcomes.push(Outcome::failed(
                address,
                RELAY,
                "5.4.6",
                "alias expansion loop or chain too long",
            ));
            return;
        }
        let (local_part, _) = crate::resolve::split_address(address);
        let local_part = aliases::fold_case(&crate::resolve::unquote_local(local_part));
        if !seen.insert(local_part.clone()) {
            // An alias that comes back to itself: the user already got it
            // or is being delivered to; nothing more to do.
            return;
        }
        if has_delivered_to(msg.content, address) {
            out.outcomes.push(Outcome::failed(
                address,
                RELAY,
                "5.4.6",
                format!("mail forwarding loop for {address}"),
            ));
            return;
        }
        let (user, ext) = split_extension(&local_part, &self.recipient_delimiter);
        // Aliases: the full local part, then without the extension.
        let alias = match self.alias_maps.find(&local_part) {
            Ok(Some(v)) => Some(v),
            Ok(None) if ext.is_some() => match self.alias_maps.find(user) {
                Ok(v) => v,
                Err(e) => {
                    out.outcomes
                        .push(Outcome::failed(address, RELAY, "4.3.0", e.to_string()));
                    return;
                }
            },
            Ok(None) => None,
            Err(e) => {
                out.outcomes
                    .push(Outcome::failed(address, RELAY, "4.3.0", e.to_string()));
                return;
            }
        };
        if let Some(value) = alias {
            match aliases::parse_alias_value(&value) {
                Ok(targets) => {
                    let owner = self.default_owner();
                    self.expand(
                        msg,
                        address,
                        original,
                        &targets,
                        Source::Alias,
                        owner.as_ref(),
                        depth,
                        seen,
                        out,
                    );
                }
                Err(why) => out.outcomes.push(Outcome::failed(
                    address,
                    RELAY,
                    "4.3.0",
                    format!("bad alias: {why}"),
                )),
            }
            return;
        }
        let account = match sysuser::lookup(&self.passwd_file, user) {
            Ok(Some(u)) => u,
            Ok(None) => {
                out.outcomes.push(Outcome::failed(
                    address,
                    RELAY,
                    "5.1.1",
                    format!("unknown user: \"{user}\""),
                ));
                return;
            }
            Err(e) => {
                out.outcomes.push(Outcome::failed(
                    address,
                    RELAY,
                    "4.3.0",
                    format!(
                        "cannot read {}: {}",
                        self.passwd_file.display(),
                        ironpost_conf::io_reason(&e)
                    ),
                ));
                return;
            }
        };
        // ~/.forward, when it belongs to the user. An empty one is as none:
        // the mail goes to the mailbox (Postfix's local(8) does the same).
        if let Some(targets) = self.forward_file(&account) {
            match targets {
                Ok(targets) if targets.is_empty() => {}
                Ok(targets) => {
                    self.expand(
                        msg,
                        address,
                        original,
                        &targets,
                        Source::Forward,
                        Some(&account),
                        depth,
                        seen,
                        out,
                    );
                    return;
                }
                Err(why) => {
                    out.outcomes.push(Outcome::failed(
                        address,
                        RELAY,
                        "4.3.0",
                        format!("bad .forward file: {why}"),
                    ));
                    return;
                }
            }
        }
        out.outcomes
            .push(self.to_mailbox(msg, address, original, &account));
    }

    fn default_owner(&self) -> Option<SysUser> {
        sysuser::lookup(&self.passwd_file, &self.default_privs)
            .ok()
            .flatten()
    }

    fn forward_file(&self, user: &SysUser) -> Option<Result<Vec<AliasTarget>, String>> {
        let path = user.home.join(".forward");
        let meta = std::fs::metadata(&path).ok()?;
        use std::os::unix::fs::MetadataExt;
        if self.as_root && meta.uid() != user.uid && meta.uid() != 0 {
            tracing::warn!("{}: not owned by {}; ignored", path.display(), user.name);
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        Some(aliases::parse_include_file(&text))
    }

    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        msg: &Message<'_>,
        address: &str,
        original: &str,
        targets: &[AliasTarget],
        source: Source,
        owner: Option<&SysUser>,
        depth: usize,
        seen: &mut HashSet<String>,
        out: &mut Delivered,
    ) {
        const RELAY: &str = "local";
        for t in targets {
            match t {
                AliasTarget::Address(a) => {
                    // `\user` in .forward: the user's own mailbox.
                    if let Some(own) = a.strip_prefix('\\') {
                        match sysuser::lookup(&self.passwd_file, own) {
                            Ok(Some(u)) => out
                                .outcomes
                                .push(self.to_mailbox(msg, address, original, &u)),
                            _ => out.outcomes.push(Outcome::failed(
                                address,
                                RELAY,
                                "5.1.1",
                                format!("unknown user: \"{own}\""),
                            )),
                        }
                        continue;
                    }
                    match self.resolver.resolve(a) {
                        Ok(Some(r)) if r.class == AddressClass::Local && !r.routed => {
                            self.local_recipient(msg, &r.address, original, depth + 1, seen, out);
                        }
                        Ok(Some(r)) => out.forward.push(r.address),
                        Ok(None) => out.outcomes.push(Outcome::failed(
                            address,
                            RELAY,
                            "5.1.3",
                            format!("bad address syntax: \"{a}\""),
                        )),
                        Err(e) => out.outcomes.push(Outcome::failed(
                            address,
                            RELAY,
                            "4.3.0",
                            e.to_string(),
                        )),
                    }
                }
                AliasTarget::File(path) => {
                    if !self.allow_mail_to_files.iter().any(|s| s == source.name()) {
                        out.outcomes.push(Outcome::failed(
                            address,
                            RELAY,
                            "5.7.1",
                            format!("mail to file is restricted: {path}"),
                        ));
                        continue;
                    }
                    let owner_ids = owner.filter(|_| self.as_root).map(|u| (u.uid, u.gid));
                    let content = self.with_delivery_headers(msg, address, original);
                    let mb = Mailbox::Mbox(PathBuf::from(path));
                    out.outcomes.push(
                        match mb.deliver(msg.sender, msg.arrival, &content, owner_ids) {
                            Ok(_) => {
                                Outcome::sent(address, RELAY, format!("delivered to file: {path}"))
                            }
                            Err(e) => Outcome::failed(
                                address,
                                RELAY,
                                "4.2.0",
                                format!(
                                    "cannot append to file {path}: {}",
                                    ironpost_conf::io_reason(&e)
                                ),
                            ),
                        },
                    );
                }
                AliasTarget::Command(cmd) => {
                    if !self
                        .allow_mail_to_commands
                        .iter()
                        .any(|s| s == source.name())
                    {
                        out.outcomes.push(Outcome::failed(
                            address,
                            RELAY,
                            "5.7.1",
                            format!("mail to command is restricted: {cmd}"),
                        ));
                        continue;
                    }
                    let content = self.with_delivery_headers(msg, address, original);
                    out.outcomes.push(pipe::deliver(
                        &pipe::Request {
                            command: cmd,
                            sender: msg.sender,
                            recipient: address,
                            original,
                            user: owner.filter(|_| self.as_root),
                            time_limit: self.command_time_limit,
                            arrival: msg.arrival,
                        },
                        &content,
                    ));
                }
                AliasTarget::Include(path) => {
                    if depth > MAX_DEPTH {
                        out.outcomes.push(Outcome::failed(
                            address,
                            RELAY,
                            "5.4.6",
                            ":include: nesting too deep",
                        ));
                        continue;
                    }
                    match std::fs::read_to_string(path) {
                        Ok(text) => match aliases::parse_include_file(&text) {
                            Ok(inner) => {
                                // Files and commands in an included list run
                                // as the list's owner, as Postfix does.
                                use std::os::unix::fs::MetadataExt;
                                let inc_owner = std::fs::metadata(path)
                                    .ok()
                                    .and_then(|m| self.user_by_uid(m.uid()))
                                    .or_else(|| owner.cloned());
                                self.expand(
                                    msg,
                                    address,
                                    original,
                                    &inner,
                                    Source::Include,
                                    inc_owner.as_ref(),
                                    depth + 1,
                                    seen,
                                    out,
                                );
                            }
                            Err(why) => out.outcomes.push(Outcome::failed(
                                address,
                                RELAY,
                                "4.3.0",
                                format!("bad :include: file {path}: {why}"),
                            )),
                        },
                        Err(e) => out.outcomes.push(Outcome::failed(
                            address,
                            RELAY,
                            "4.3.0",
                            format!(
                                "cannot open include file {path}: {}",
                                ironpost_conf::io_reason(&e)
                            ),
                        )),
                    }
                }
            }
        }
    }

    fn user_by_uid(&self, uid: u32) -> Option<SysUser> {
        let text = std::fs::read_to_string(&self.passwd_file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid) {
                sysuser::lookup(&self.passwd_file, f[0]).ok().flatten()
            } else {
                None
            }
        })
    }

    /// The user's mailbox, per home_mailbox.
    pub fn mailbox_of(&self, user: &SysUser) -> Mailbox {
        if self.home_mailbox.is_empty() {
            Mailbox::Mbox(self.mail_spool_directory.join(&user.name))
        } else {
            let path = user.home.join(&self.home_mailbox);
            if self.home_mailbox.ends_with('/') {
                Mailbox::Maildir(path)
            } else {
                Mailbox::Mbox(path)
            }
        }
    }

    fn to_mailbox(
        &self,
        msg: &Message<'_>,
        address: &str,
        original: &str,
        user: &SysUser,
    ) -> Outcome {
        const RELAY: &str = "local";
        let mailbox = self.mailbox_of(user);
        let content = self.with_delivery_headers(msg, address, original);
        let owner = self.as_root.then_some((user.uid, user.gid));
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
                    "cannot update mailbox {} for user {}. {}",
                    mailbox.path().display(),
                    user.name,
                    ironpost_conf::io_reason(&e)
                ),
            ),
        }
    }

    /// The message with Return-Path, X-Original-To and Delivered-To on top.
    pub fn with_delivery_headers(
        &self,
        msg: &Message<'_>,
        address: &str,
        original: &str,
    ) -> Vec<u8> {
        delivery_headers(msg, address, original)
    }
}

/// The message with Return-Path, X-Original-To and Delivered-To on top, as
/// local(8) and virtual(8) write them.
pub fn delivery_headers(msg: &Message<'_>, address: &str, original: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.content.len() + 200);
    out.extend_from_slice(format!("Return-Path: <{}>\r\n", msg.sender).as_bytes());
    out.extend_from_slice(format!("X-Original-To: {original}\r\n").as_bytes());
    out.extend_from_slice(format!("Delivered-To: {address}\r\n").as_bytes());
    out.extend_from_slice(msg.content);
    out
}

/// Whether the message already has `Delivered-To: address` (a loop).
pub fn has_delivered_to(content: &[u8], address: &str) -> bool {
    crate::cleanup::split(content).headers.iter().any(|h| {
        crate::cleanup::field_name(h) == "delivered-to" && {
            let v = &h[h.iter().position(|&c| c == b':').map_or(0, |p| p + 1)..];
            String::from_utf8_lossy(v)
                .trim()
                .eq_ignore_ascii_case(address)
        }
    })
}

/// Looks a path up relative to a base, refusing escapes with `..`.
pub fn under_base(base: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative.trim());
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    Some(base.join(rel))
}
