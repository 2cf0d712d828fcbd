//! The SMTP server (smtpd): sessions with clients, access restrictions,
//! and the hand-over of accepted messages to cleanup and the queue.
//!
//! ## Layout
//! - [`check`]: access restrictions and the unknown-recipient check.
//! - [`dnsbl`]: DNS block and allow lists for the restrictions.
//! - [`peer`]: the client's host name, looked up at connect time.
//! - [`session`]: one session with a client, from greeting to QUIT.

pub mod check;
pub mod dnsbl;
pub mod peer;
pub mod session;
