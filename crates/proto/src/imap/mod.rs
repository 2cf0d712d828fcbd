//! IMAP for a server (IMAP4rev1, RFC 3501, and IMAP4rev2, RFC 9051),
//! without I/O: the command reader, the commands, and the responses,
//! with the extensions the server offers: LITERAL+ and LITERAL- (RFC
//! 7888), SASL-IR (4959), ID (2971), ENABLE (5161), UNSELECT (3691),
//! UIDPLUS (4315), MOVE (6851), IDLE (2177), NAMESPACE (2342), CHILDREN,
//! LIST-EXTENDED (5258), LIST-STATUS (5819), SPECIAL-USE and
//! CREATE-SPECIAL-USE (6154), ESEARCH (4731), SEARCHRES (5182),
//! CONDSTORE and QRESYNC (7162), QUOTA (9208), APPENDLIMIT (7889), SORT
//! and THREAD (5256), STATUS=SIZE (8438), UTF8=ACCEPT (6855), MULTIAPPEND
//! (3502), BINARY (3516), WITHIN (5032) and COMPRESS=DEFLATE (4978, the
//! command only: inflating and deflating is the session's).
//!
//! ## Layout
//! - [`reader`]: [`Reader`], the resumable command reader: bytes in, in
//!   any chunks; a command, "need more", "send a continuation now", or an
//!   error that already knows its reply. Limits on lines and literals,
//!   recovery after a refused command. Start here.
//! - [`command`]: the commands ([`Command`], [`CommandKind`]), their
//!   parser ([`parse`]), the state table ([`CommandKind::allowed_in`]),
//!   and [`CommandError`] with Dovecot's texts.
//! - [`lexer`]: the parts a command is assembled from, literal headers,
//!   and the token cursor of the parsers.
//! - [`fetch`], [`search`]: FETCH items and sections; search keys, sort
//!   criteria, thread algorithms.
//! - [`eval`]: SEARCH evaluated: whether a message ([`eval::Candidate`])
//!   matches a key tree, and how much of it the key needs to see.
//! - [`thread`]: SORT and THREAD evaluated (RFC 5256): sort orders,
//!   ORDEREDSUBJECT and REFERENCES threads, base subjects.
//! - [`sequence`]: sequence sets (`1:3,5:*`, `$`), resolved against the
//!   mailbox.
//! - [`flag`], [`mailbox`], [`datetime`]: flags, mailbox names (INBOX,
//!   modified UTF-7 or UTF-8), dates and date-times.
//! - [`utf7`]: modified UTF-7.
//! - [`response`]: status lines and every response code, untagged data,
//!   the FETCH response builder, string quoting and literals.
//! - [`capability`]: the CAPABILITY list.
//!
//! ENVELOPE and BODYSTRUCTURE are the MIME code's: the FETCH builder
//! takes them pre-encoded.
//!
//! ## A session's loop
//! Feed what the socket gives to [`Reader::feed`]; call [`Reader::next`]
//! until it says `None`; for each event: write `+ OK` for
//! [`reader::Event::Continue`] (or refuse it); answer
//! [`reader::Event::Error`] with its [`CommandError::response`]; for a
//! command, check [`CommandKind::allowed_in`] (BAD when not), run it,
//! answer with [`response`]. IDLE and AUTHENTICATE then read lines with
//! [`Reader::next_line`]; STARTTLS drops what is buffered
//! ([`Reader::discard_pending`]); COMPRESS takes it
//! ([`Reader::take_pending`]); ENABLE UTF8=ACCEPT or IMAP4rev2 turns on
//! UTF-8 mailbox names ([`Reader::set_utf8`]).

pub mod capability;
pub mod command;
pub mod datetime;
pub mod eval;
pub mod fetch;
pub mod flag;
pub mod lexer;
pub mod mailbox;
pub mod reader;
pub mod response;
pub mod search;
pub mod sequence;
pub mod thread;
pub mod utf7;

#[cfg(test)]
mod tests;

pub use capability::{Capabilities, capabilities};
pub use command::{
    AppendMessage, Command, CommandError, CommandKind, Fault, FetchCommand, ListCommand,
    ListReturn, ListSelect, ParseOptions, Qresync, SearchCommand, Secret, SelectParams,
    SortCommand, State, StatusItem, StoreCommand, StoreMode, ThreadCommand, parse, parse_wire,
};
pub use datetime::{Date, DateTime};
pub use fetch::{FetchAttr, Partial, Section, SectionText};
pub use flag::Flag;
pub use mailbox::MailboxName;
pub use reader::{Event, Limits, Reader};
pub use search::{SearchKey, SearchReturn, SortCriterion, SortKey, ThreadAlgorithm};
pub use sequence::{SeqNumber, SeqRange, SequenceSet};
