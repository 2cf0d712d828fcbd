//! The SMTP server (smtpd): sessions with clients, access restrictions,
//! and the hand-over of accepted messages to cleanup and the queue.
//!
//! ## Layout
//! - [`check`]: access restrictions and the unknown-recipient check.
//! - [`session`]: one session with a client, from greeting to QUIT.

pub mod check;
pub mod session;
