//! The SMTP server (smtpd): sessions with clients, access restrictions,
//! and the hand-over of accepted messages to cleanup and the queue.
//!
//! ## Layout
//! - [`check`]: access restrictions and the unknown-recipient check.

pub mod check;
