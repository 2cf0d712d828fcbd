//! Authentication: stored passwords now; the user directory, system
//! accounts and the SASL server come with them.
//!
//! ## Layout
//! - [`password`]: password schemes in Dovecot's notation and crypt(3)
//!   strings; new passwords as `{ARGON2ID}`.
//! - [`directory`]: the user directory in SQL: domains, mailboxes,
//!   aliases.
//! - [`sasl`]: the server side of a SASL exchange (PLAIN, LOGIN, SCRAM),
//!   shared by SMTP, POP3 and IMAP.
//! - [`system`]: system accounts (passwd + shadow) and login names.
//! - [`throttle`]: failed-login delay and lockout per client address.

pub mod directory;
pub mod password;
pub mod sasl;
pub mod system;
pub mod throttle;
