//! # ironpost: the daemon and every command
//!
//! One binary does the whole job of a classic mail host. This library holds
//! every area as a module; `main.rs` only dispatches to [`cli`].
//!
//! ## Layout
//! - [`cli`]: the commands, under their own names and Postfix's
//!   (`postconf`, `postmap`, `postalias`, `newaliases`).
//! - [`bounce`]: delivery status notifications (RFC 3464).
//! - [`cleanup`]: Received header, missing headers, header size limit.
//! - [`maps`]: lookup tables named `type:name` (hash, texthash, inline,
//!   static, cidr, regexp, pcre, unix) and the Postfix search orders.
//! - [`local`]: final delivery: local(8) (aliases, .forward, mailboxes,
//!   commands, files) and virtual(8).
//! - [`mailbox`]: Maildir and mbox writers.
//! - [`qmgr`]: the queue manager: delivery, retries, bounces.
//! - [`maillog`]: the mail log, in Postfix's line shapes.
//! - [`queue`]: the mail queue: queue files, IDs, durable enqueueing.
//! - [`resolve`]: address rewriting and classes (what trivial-rewrite does).
//! - [`smtpd`]: the SMTP server: sessions, restrictions.
//! - [`sysuser`]: system accounts from the passwd file.
//! - [`host`]: facts about the machine (host name, interface addresses) that
//!   configuration defaults are computed from.

pub mod bounce;
pub mod cleanup;
pub mod cli;
pub mod host;
pub mod local;
pub mod mailbox;
pub mod maillog;
pub mod maps;
pub mod qmgr;
pub mod queue;
pub mod resolve;
pub mod smtpd;
pub mod sysuser;
