//! The command reader: bytes in, in any chunks; [`Event`]s out.
//!
//! A command is a line that may announce literals at its end (`{n}`,
//! `{n+}`, `~{n}`, `~{n+}`); each literal's octets follow the line end,
//! and the command goes on after them, up to a line end that announces
//! nothing (RFC 9051 §2.2.1, §4.3). [`Reader::next`] returns:
//!
//! - `None`: more bytes are needed ([`Reader::feed`] them);
//! - [`Event::Continue`]: a synchronizing literal was announced and is
//!   within the limits; the session writes a continuation request
//!   ([`super::response::LITERAL_CONTINUATION_LINE`], Dovecot's `+ OK`)
//!   now, or refuses it with [`Reader::refuse_literal`] and a tagged `NO`
//!   or `BAD` (RFC 9051 §4.3: the client then does not send it);
//! - [`Event::Command`]: a whole command, parsed;
//! - [`Event::Error`]: a command that cannot be carried out; the session
//!   writes [`CommandError::response`] (`TAG BAD ...`, or `* BAD ...`
//!   when no tag could be read, RFC 9051 §7.1.5). The reader has already
//!   recovered: it skips what is left of that command.
//!
//! ## Limits ([`Limits`])
//! - The text of a command (everything but literal octets; literal
//!   headers count) is at most `line` octets. Past that: `LineTooLong`
//!   at once (the tag in it when it was read), then the rest of the
//!   command is skipped up to its end, through any non-synchronizing
//!   literals in it; a synchronizing literal announced in the skipped
//!   part ends it (the client waits for a `+` that never comes, reads the
//!   tagged BAD and gives the command up).
//! - A literal is at most `literal` octets, or `message` octets when it
//!   is an APPEND message (a literal after the mailbox name: the message
//!   size limit, RFC 7889 APPENDLIMIT). Past that: `LiteralTooBig`, which
//!   answers `TAG NO [TOOBIG] ...` for a message and `TAG BAD [TOOBIG]
//!   ...` otherwise. A synchronizing literal is refused before the client
//!   sends it, so the next line is a new command; a non-synchronizing one
//!   is on its way and is read and discarded, with the rest of its command
//!   (RFC 7888 §4: the server reads and discards it, or closes the
//!   connection: a session that will not wait for a huge one closes).
//! - Without LITERAL+ (`literal_plus: false`: the server offers LITERAL-,
//!   RFC 7888 §5, as IMAP4rev2 requires), a non-synchronizing literal over
//!   4096 octets is `NonSyncLiteralTooBig` (`BAD [TOOBIG]`), discarded.
//!
//! ## Driving it
//!
//! ```
//! use ironpost_proto::imap::reader::{Event, Reader, Limits};
//! use ironpost_proto::imap::response::LITERAL_CONTINUATION_LINE;
//!
//! let mut reader = Reader::new(Limits::default());
//! let mut wire = Vec::new(); // what the session writes
//! let mut commands = Vec::new();
//! for chunk in [&b"a1 LOGIN {4}\r\n"[..], b"fred {6}\r\nsecret\r\na2 NOOP\r\n"] {
//!     reader.feed(chunk);
//!     for event in &mut reader {
//!         match event {
//!             Event::Continue(_) => wire.extend_from_slice(LITERAL_CONTINUATION_LINE),
//!             Event::Command(cmd) => commands.push(cmd.tag),
//!             Event::Error(e) => wire.extend_from_slice(&e.response()),
//!         }
//!     }
//! }
//! assert_eq!(wire, b"+ OK\r\n+ OK\r\n");
//! assert_eq!(commands, ["a1", "a2"]);
//! ```
//!
//! The reader parses only when asked: after a command that changes how
//! input is read, the session stops calling [`Reader::next`] and uses
//! [`Reader::next_line`] (the lines of AUTHENTICATE, and IDLE's `DONE`,
//! [`is_done`]), [`Reader::discard_pending`] (STARTTLS: nothing
//! pipelined after it may be used, RFC 9051 §6.2.1) or
//! [`Reader::take_pending`] (COMPRESS: what follows is compressed). Empty
//! lines between commands are ignored.

use std::collections::VecDeque;

use super::command::{CommandError, Fault, ParseOptions, parse};
use super::lexer::{Literal, Part, Quoting, is_atom_char, literal_header, tag_of};

/// RFC 7888 §5: the largest non-synchronizing literal LITERAL- allows.
pub const LITERAL_MINUS_MAX: u64 = 4096;

/// The reader's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The text of one command, literal octets not counted (RFC 7162 §4
    /// asks servers to take at least 8192).
    pub line: usize,
    /// A literal that is not an APPEND message.
    pub literal: u64,
    /// An APPEND message (message_size_limit).
    pub message: u64,
    /// LITERAL+ is offered: non-synchronizing literals up to the limits;
    /// otherwise LITERAL-: up to 4096 octets.
    pub literal_plus: bool,
}

impl Default for Limits {
    /// 64 KiB lines and literals, Postfix's message_size_limit default
    /// (10240000) for messages, LITERAL+.
    fn default() -> Limits {
        Limits {
            line: 64 * 1024,
            literal: 64 * 1024,
            message: 10_240_000,
            literal_plus: true,
        }
    }
}

/// A synchronizing literal the client waits to send. The session may
/// refuse it ([`Reader::refuse_literal`]) on what it knows here: a verb
/// its state does not allow (APPEND before login: `TAG BAD`), a message
/// over quota (`TAG NO [OVERQUOTA]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The command's tag, when it has a valid one.
    pub tag: Option<String>,
    /// The command's verb so far, upper-cased (`UID` for UID commands).
    pub verb: Option<String>,
    /// The announced size.
    pub size: u64,
    /// An APPEND message.
    pub message: bool,
}

/// What [`Reader::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Command(super::command::Command),
    /// Send a continuation request now (or refuse the literal).
    Continue(Continuation),
    Error(CommandError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading command text.
    Text,
    /// Reading a literal's octets.
    Literal { remaining: u64 },
    /// Discarding a refused non-synchronizing literal, then the rest of
    /// its command.
    Discard { remaining: u64 },
    /// Skipping the rest of a refused command up to its end.
    Skip,
}

/// How many octets of a skipped line are kept to see a literal header at
/// its end (`~{18446744073709551615+}` is 24).
const TAIL: usize = 32;

/// The resumable command reader (see the module doc).
#[derive(Debug)]
pub struct Reader {
    buf: Vec<u8>,
    pos: usize,
    limits: Limits,
    options: ParseOptions,
    state: State,
    /// The command so far (text and literals before the current text).
    parts: Vec<Part>,
    /// The current text segment.
    text: Vec<u8>,
    /// Text octets of the command so far.
    text_len: usize,
    quoting: Quoting,
    literal: Vec<u8>,
    literal_binary: bool,
    literal_sync: bool,
    /// The end of a skipped line.
    tail: VecDeque<u8>,
    /// `refuse_literal` applies (the last event was `Continue`).
    awaiting: bool,
    /// `next_line` is skipping the rest of an over-long line.
    line_discarding: bool,
}

impl Reader {
    pub fn new(limits: Limits) -> Reader {
        Reader {
            buf: Vec::new(),
            pos: 0,
            limits,
            options: ParseOptions::default(),
            state: State::Text,
            parts: Vec::new(),
            text: Vec::new(),
            text_len: 0,
            quoting: Quoting::default(),
            literal: Vec::new(),
            literal_binary: false,
            literal_sync: true,
            tail: VecDeque::new(),
            awaiting: false,
            line_discarding: false,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The limits may change between commands (after login, say).
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// After `ENABLE UTF8=ACCEPT` or `ENABLE IMAP4rev2`: mailbox names are
    /// UTF-8 from the next command on.
    pub fn set_utf8(&mut self, on: bool) {
        self.options.utf8 = on;
    }

    /// Appends bytes read from the client.
    pub fn feed(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read into without zeroing memory first (tokio's
    /// `read_buf`): at least `n` bytes of spare capacity; bytes appended
    /// to it are input.
    pub fn read_target(&mut self, n: usize) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(n);
        &mut self.buf
    }

    fn compact(&mut self) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos > 64 * 1024) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Whether bytes are buffered that no event has used yet.
    pub fn has_pending(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Whether a command has been partly read (for an idle timeout's log
    /// line: "in the middle of a command").
    pub fn in_command(&self) -> bool {
        self.state != State::Text || !self.parts.is_empty() || !self.text.is_empty()
    }

    /// Drops everything buffered and any command partly read (before a
    /// TLS handshake).
    pub fn discard_pending(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.reset_command();
        self.state = State::Text;
        self.line_discarding = false;
        self.awaiting = false;
    }

    /// Takes the bytes not yet used (after COMPRESS: they are compressed;
    /// the session inflates them and feeds the result back).
    pub fn take_pending(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.pos);
        self.buf.clear();
        self.pos = 0;
        rest
    }

    /// After [`Event::Continue`]: the session refuses the literal (and
    /// sends its tagged NO or BAD); the client will not send it, so the
    /// command is dropped and the next line is a new one. Does nothing at
    /// other times.
    pub fn refuse_literal(&mut self) {
        if self.awaiting {
            self.awaiting = false;
            self.reset_command();
            self.state = State::Text;
        }
    }

    fn reset_command(&mut self) {
        self.parts.clear();
        self.text.clear();
        self.text_len = 0;
        self.quoting = Quoting::default();
        self.literal = Vec::new();
    }

    /// The first text of the command so far.
    fn first_text(&self) -> &[u8] {
        match self.parts.first() {
            Some(Part::Text(t)) => t,
            _ => &self.text,
        }
    }

    fn current_tag(&self) -> Option<String> {
        tag_of(self.first_text())
    }

    fn current_verb(&self) -> Option<String> {
        let t = self.first_text();
        let start = t.iter().position(|&b| b == b' ')?;
        let rest = &t[start..];
        let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let verb = rest[..end].to_ascii_uppercase();
        (!verb.is_empty() && verb.iter().all(|&b| is_atom_char(b)))
            .then(|| String::from_utf8_lossy(&verb).into_owned())
    }

    /// Whether a literal starting at `header` in the current text is an
    /// APPEND message: the verb is APPEND and the mailbox came before it.
    fn is_message_literal(&self, header: usize) -> bool {
        if self.current_verb().is_none_or(|v| v != "APPEND") {
            return false;
        }
        if !self.parts.is_empty() {
            // An earlier literal was the mailbox or a message.
            return true;
        }
        // `tag APPEND mailbox ...` before the header: something after the
        // verb.
        let t = &self.text[..header];
        let mut words = t.split(|&b| b == b' ').filter(|w| !w.is_empty());
        words.nth(2).is_some()
    }

    fn error(&self, fault: Fault) -> Event {
        Event::Error(CommandError {
            tag: self.current_tag(),
            verb: self.current_verb(),
            fault,
        })
    }

    /// Reads command text up to a line end. `None`: more bytes needed;
    /// `Some(None)`: go on in the (new) state; `Some(Some(ev))`: an event.
    fn read_text(&mut self) -> Option<Option<Event>> {
        let limit = self.limits.line;
        let mut i = self.pos;
        let mut ended = false;
        while i < self.buf.len() {
            let b = self.buf[i];
            i += 1;
            if b == b'\n' {
                ended = true;
                break;
            }
            self.text.push(b);
            self.quoting.step(b);
            self.text_len += 1;
            // A CR one past the limit may be the line end's.
            if self.text_len > limit && !(b == b'\r' && self.text_len == limit + 1) {
                self.pos = i;
                let ev = self.error(Fault::LineTooLong { limit });
                self.state = State::Skip;
                // The end of what was read may be the start of a literal
                // header; keep the quoting state too: the skipped rest
                // continues both.
                self.tail.clear();
                let keep = self.text.len().saturating_sub(TAIL);
                self.tail.extend(&self.text[keep..]);
                self.parts.clear();
                self.text.clear();
                self.text_len = 0;
                return Some(Some(ev));
            }
        }
        self.pos = i;
        if !ended {
            return None;
        }
        if self.text.last() == Some(&b'\r') {
            self.text.pop();
            self.text_len -= 1;
        }
        let header = if self.quoting.in_quote() {
            None
        } else {
            literal_header(&self.text)
        };
        if let Some(h) = header {
            let size = h.size.unwrap_or(u64::MAX);
            let message = self.is_message_literal(h.start);
            let limit = if message {
                self.limits.message
            } else {
                self.limits.literal
            };
            let fault = if h.non_sync && !self.limits.literal_plus && size > LITERAL_MINUS_MAX {
                Some(Fault::NonSyncLiteralTooBig { size: h.size })
            } else if size > limit {
                Some(Fault::LiteralTooBig {
                    size: h.size,
                    limit,
                    message,
                })
            } else {
                None
            };
            if let Some(fault) = fault {
                let ev = self.error(fault);
                self.reset_command();
                self.state = if h.non_sync {
                    State::Discard { remaining: size }
                } else {
                    State::Text
                };
                return Some(Some(ev));
            }
            self.text.truncate(h.start);
            let tag = self.current_tag();
            let verb = self.current_verb();
            self.parts.push(Part::Text(std::mem::take(&mut self.text)));
            self.literal = Vec::with_capacity(usize::try_from(size.min(64 * 1024)).unwrap_or(0));
            self.literal_binary = h.binary;
            self.literal_sync = !h.non_sync;
            self.state = State::Literal { remaining: size };
            self.quoting = Quoting::default();
            if size == 0 {
                // Nothing to wait for in the Literal state.
                self.parts.push(Part::Literal(Literal {
                    data: Vec::new(),
                    binary: h.binary,
                    sync: !h.non_sync,
                }));
                self.state = State::Text;
            }
            if !h.non_sync {
                self.awaiting = true;
                return Some(Some(Event::Continue(Continuation {
                    tag,
                    verb,
                    size,
                    message,
                })));
            }
            return Some(None);
        }
        self.parts.push(Part::Text(std::mem::take(&mut self.text)));
        let parts = std::mem::take(&mut self.parts);
        self.reset_command();
        if matches!(parts.as_slice(), [Part::Text(t)] if t.is_empty()) {
            return Some(None);
        }
        Some(Some(match parse(parts, &self.options) {
            Ok(cmd) => Event::Command(cmd),
            Err(e) => Event::Error(e),
        }))
    }

    /// Skips to the end of the line, then decides what the line's end
    /// announced. `None`: more bytes needed.
    fn skip(&mut self) -> Option<()> {
        let mut i = self.pos;
        let mut ended = false;
        while i < self.buf.len() {
            let b = self.buf[i];
            i += 1;
            if b == b'\n' {
                ended = true;
                break;
            }
            self.quoting.step(b);
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(b);
        }
        self.pos = i;
        if !ended {
            return None;
        }
        if self.tail.back() == Some(&b'\r') {
            self.tail.pop_back();
        }
        let header = if self.quoting.in_quote() {
            None
        } else {
            literal_header(self.tail.make_contiguous())
        };
        self.tail.clear();
        self.quoting = Quoting::default();
        self.state = match header {
            Some(h) if h.non_sync => State::Discard {
                remaining: h.size.unwrap_or(u64::MAX),
            },
            _ => State::Text,
        };
        if self.state == (State::Discard { remaining: 0 }) {
            self.state = State::Skip;
        }
        Some(())
    }

    /// Skips the rest of an over-long raw line; whether it ended.
    fn skip_line_rest(&mut self) -> bool {
        match self.buf[self.pos..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                self.line_discarding = false;
                true
            }
            None => {
                self.pos = self.buf.len();
                false
            }
        }
    }

    /// A raw line, without its line end (CRLF, or a bare LF), of at most
    /// `limit` octets: an AUTHENTICATE response or IDLE's `DONE`. A line
    /// over the limit is `Err(LineTooLong)` once, and its rest is skipped.
    /// `None` when no whole line is buffered. Use it only between
    /// commands (after the command that asked for lines).
    pub fn next_line(&mut self, limit: usize) -> Option<Result<Vec<u8>, LineTooLong>> {
        if self.line_discarding && !self.skip_line_rest() {
            return None;
        }
        let pending = &self.buf[self.pos..];
        if pending.is_empty() {
            return None;
        }
        let window = &pending[..pending.len().min(limit.saturating_add(2))];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = if i > 0 && pending[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                let line = pending[..end].to_vec();
                self.pos += i + 1;
                if line.len() > limit {
                    return Some(Err(LineTooLong));
                }
                Some(Ok(line))
            }
            None if pending.len() >= limit.saturating_add(2) => {
                self.pos = self.buf.len();
                self.line_discarding = true;
                Some(Err(LineTooLong))
            }
            None => None,
        }
    }
}

/// Events from what is buffered: `for event in &mut reader` (or
/// `while let Some(event) = reader.next()`) uses up the input fed so far;
/// `None` means more bytes are needed, and later calls go on once they
/// are fed (the iterator is not fused).
impl Iterator for Reader {
    type Item = Event;

    /// The next event, or `None` when more bytes are needed (the
    /// iterator goes on once more are fed).
    fn next(&mut self) -> Option<Event> {
        self.awaiting = false;
        if self.line_discarding && !self.skip_line_rest() {
            return None;
        }
        loop {
            match self.state {
                State::Text => {
                    if let Some(ev) = self.read_text()? {
                        return Some(ev);
                    }
                }
                State::Literal { remaining } => {
                    let avail = &self.buf[self.pos..];
                    if avail.is_empty() {
                        return None;
                    }
                    let n = avail
                        .len()
                        .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    self.literal.extend_from_slice(&avail[..n]);
                    self.pos += n;
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::Literal { remaining };
                        return None;
                    }
                    self.parts.push(Part::Literal(Literal {
                        data: std::mem::take(&mut self.literal),
                        binary: self.literal_binary,
                        sync: self.literal_sync,
                    }));
                    self.quoting = Quoting::default();
                    self.state = State::Text;
                }
                State::Discard { remaining } => {
                    let avail = self.buf.len() - self.pos;
                    if avail == 0 {
                        return None;
                    }
                    let n = avail.min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    self.pos += n;
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::Discard { remaining };
                        return None;
                    }
                    self.quoting = Quoting::default();
                    self.tail.clear();
                    self.state = State::Skip;
                }
                State::Skip => self.skip()?,
            }
        }
    }
}

/// A raw line over its limit ([`Reader::next_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("line too long")
    }
}

impl std::error::Error for LineTooLong {}

/// Whether an IDLE line is `DONE` (RFC 2177 §3; any case, trailing
/// spaces allowed).
pub fn is_done(line: &[u8]) -> bool {
    let n = line.iter().rev().take_while(|&&b| b == b' ').count();
    line[..line.len() - n].eq_ignore_ascii_case(b"DONE")
}

/// Whether an AUTHENTICATE response is `*`, the client giving up (RFC
/// 9051 §6.2.2: answer `BAD`).
pub fn is_sasl_cancel(line: &[u8]) -> bool {
    line == b"*"
}
