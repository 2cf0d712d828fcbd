//! # ironpost: the daemon and every command
//!
//! One binary does the whole job of a classic mail host. This library holds
//! every area as a module; `main.rs` only dispatches to [`cli`].
//!
//! ## Layout
//! - [`cli`]: the commands, under their own names and Postfix's
//!   (`postconf`, `postmap`, `postalias`, `newaliases`).
//! - [`auth`]: stored passwords (Dovecot's schemes, crypt(3)).
//! - [`bridge`]: async libraries (sqlx, the DNS resolver) called from
//!   synchronous code.
//! - [`bounce`]: delivery status notifications (RFC 3464).
//! - [`cleanup`]: Received header, missing headers, header size limit.
//! - [`dns`]: DNS lookups (MX, A/AAAA, PTR, TXT) behind a blocking interface.
//! - [`durable`]: group commit: one syncfs for concurrent writers.
//! - [`ctl`]: the control socket the commands use to reach the daemon.
//! - [`maps`]: lookup tables named `type:name` (hash, texthash, inline,
//!   static, cidr, regexp, pcre, unix) and the Postfix search orders.
//! - [`local`]: final delivery: local(8) (aliases, .forward, mailboxes,
//!   commands, files) and virtual(8).
//! - [`mailbox`]: Maildir and mbox writers.
//! - [`pop3d`]: the POP3 server (Dovecot's pop3-login and pop3).
//! - [`pickup`]: pickup(8): mail posted with sendmail, from `maildrop/`
//!   through cleanup into `incoming/`.
//! - [`qmgr`]: the queue manager: delivery, retries, bounces.
//! - [`maillog`]: the mail log, in Postfix's line shapes.
//! - [`queue`]: the mail queue: queue files, IDs, durable enqueueing.
//! - [`resolve`]: address rewriting and classes (what trivial-rewrite does).
//! - [`server`]: the daemon: listeners, queue manager, pickup, control
//!   socket, signals.
//! - [`smtp`]: the SMTP client: delivery to other hosts (MX, TLS,
//!   connection cache).
//! - [`smtpd`]: the SMTP server: sessions, restrictions.
//! - [`sql`]: SQL databases (SQLite, PostgreSQL, MySQL) behind a blocking
//!   interface, for the user directory and the SQL lookup tables.
//! - [`store`]: the mailbox store POP3 and IMAP read: Maildir UIDs, flags.
//! - [`tls`]: rustls server configuration, STARTTLS-capable connections.
//! - [`transport`]: which agent takes a recipient, and where to
//!   (transport_maps, relayhost, the *_transport parameters).
//! - [`virtual_alias`]: virtual_alias_maps applied to recipients before
//!   a message is queued, as cleanup(8) does.
//! - [`sysuser`]: system accounts from the passwd file.
//! - [`host`]: facts about the machine (host name, interface addresses) that
//!   configuration defaults are computed from.

pub mod auth;
pub mod bounce;
pub mod bridge;
pub mod cleanup;
pub mod cli;
pub mod ctl;
pub mod dns;
pub mod durable;
pub mod host;
pub mod imapd;
pub mod local;
pub mod login;
pub mod mailbox;
pub mod maillog;
pub mod maps;
pub mod pickup;
pub mod pop3d;
pub mod qmgr;
pub mod queue;
pub mod resolve;
pub mod server;
pub mod smtp;
pub mod smtpd;
pub mod sql;
pub mod store;
pub mod sysuser;
pub mod tls;
pub mod transport;
pub mod virtual_alias;
