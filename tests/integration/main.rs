//! Integration tests: the `ironpost` binary and its library driven the way
//! users drive them, and compared against the real Postfix tools where the
//! behaviour must match. One test binary, so the link step is paid once.

mod common;
mod delivery;
mod directory;
mod dns;
mod imap;
mod imap_mbox_flags;
mod passwords;
mod pop3;
mod postconf;
mod postconf_vs_postfix;
mod postmap;
mod queuetools;
mod relay;
mod smtp;
mod smtp_auth;
mod smtp_tls;
mod smtpd_dns;
mod tables_vs_postfix;
