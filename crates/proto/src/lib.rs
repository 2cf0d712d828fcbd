//! # ironpost-proto: mail protocols without I/O
//!
//! Parsers and encoders for SMTP, POP3, IMAP and SASL that take bytes and
//! return a command, "need more bytes", or an error naming the fault; they
//! never touch a socket, so they can be fuzzed and re-fed in chunks.
//!
//! ## Layout
//! - [`smtp`]: SMTP commands, addresses, replies and the DATA stream.
//! - [`sasl`]: SASL mechanisms (PLAIN, LOGIN, SCRAM), server side.

pub mod sasl;
pub mod smtp;
