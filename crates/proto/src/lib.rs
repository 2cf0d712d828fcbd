//! # ironpost-proto: mail protocols without I/O
//!
//! Parsers and encoders for SMTP, POP3, IMAP and SASL that take bytes and
//! return a command, "need more bytes", or an error naming the fault; they
//! never touch a socket, so they can be fuzzed and re-fed in chunks.
//!
//! ## Layout
//! - [`smtp`]: SMTP commands, addresses, replies and the DATA stream.
//! - [`mime`]: messages as MIME part trees; ENVELOPE, BODYSTRUCTURE, `BODY[section]`, BINARY.
//! - [`pop3`]: POP3 command lines, commands, responses, RETR/TOP wire form, CAPA.
//! - [`imap`]: IMAP4rev1/rev2 command reader (literals, limits), commands, responses;
//!   SEARCH, SORT and THREAD evaluated on messages.
//! - [`sasl`]: SASL mechanisms (PLAIN, LOGIN, SCRAM), server side.

pub mod imap;
pub mod mime;
pub mod pop3;
pub mod sasl;
pub mod smtp;
