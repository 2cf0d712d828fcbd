//! The message-structure part of IMAP FETCH, without I/O: a stored
//! message parsed into its MIME parts, and from it ENVELOPE, BODY,
//! BODYSTRUCTURE, `BODY[section]<partial>`, `BINARY[section]` and
//! `BINARY.SIZE[section]` exactly as Dovecot 2.3 sends them (Thunderbird,
//! Apple Mail, Outlook and mutt are used to Dovecot's answers).
//!
//! ## Layout
//! - [`parse`]: [`Message::parse`] builds the part tree ([`Part`]: byte
//!   ranges of each header and body in the stored message, wire sizes and
//!   line counts, the MIME fields), with limits on nesting and parts.
//! - [`header`]: header fields as stored (names, values, folding).
//! - [`fields`]: the values of Content-Type, Content-Disposition and
//!   Content-Language, parameters with RFC 2231 continuations.
//! - [`envelope`](mod@envelope): [`envelope()`] (ENVELOPE) and the address lists.
//! - [`bodystructure`](mod@bodystructure): [`body()`] (BODY and BODYSTRUCTURE).
//! - [`section`]: [`body_section`], [`binary_section`], [`binary_size`]
//!   and the [`Section`] a FETCH names.
//! - `quote` (private): IMAP strings, quoted or literal, and Dovecot's
//!   form for subjects and display names. The IMAP response encoder has
//!   its own; they should be unified.
//!
//! The stored message may have LF or CRLF line ends, mixed, 8-bit bytes
//! and any damage; nothing here fails on it. What goes on the wire has
//! CRLF line ends and the sizes count them so.
//!
//! ## Choices (Dovecot's, unless said)
//! - Case: kept as written for types, subtypes, parameter names and
//!   values, encodings and dispositions; the defaults are lower case;
//!   message/rfc822 parts are `"message" "rfc822"`; a message that is one
//!   plain US-ASCII 7bit text part is written with the defaults (Dovecot's
//!   lasting answer, see [`bodystructure`]).
//! - Parameters: raw values, unquoted; RFC 2231 sections joined but not
//!   decoded (`name*` keeps `charset'lang'%XX`), see [`fields`].
//! - White space: values unfolded (line ends removed, the white space
//!   kept), leading white space after the colon skipped, trailing kept;
//!   the subject and display names in Dovecot's "for humans" form.
//! - Encoded words (RFC 2047) are left encoded everywhere, as IMAP says
//!   (RFC 3501 §7.4.2: clients decode them).
//! - No third-party parser: mail-parser decodes and normalises, and the
//!   exact raw bytes are what IMAP needs.

pub mod bodystructure;
pub mod envelope;
pub mod fields;
pub mod header;
pub mod parse;
mod quote;
pub mod section;

pub use bodystructure::{body, part_body};
pub use envelope::{Address, addresses, envelope};
pub use fields::Param;
pub use parse::{Kind, Message, Mime, ParseOptions, Part, Span};
pub use section::{
    Binary, BinaryError, Partial, Section, SectionText, binary_section, binary_size, body_section,
    find,
};

#[cfg(test)]
mod tests;
