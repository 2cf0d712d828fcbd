//! IMAP commands (RFC 9051 §6, RFC 3501 §6, and the extensions the
//! server offers) as a tree: [`Command`] is the tag and a [`CommandKind`].
//!
//! [`parse`] takes the [`Part`]s the reader assembled (text and literals)
//! and returns a command or a [`CommandError`] that carries the tag when
//! it could be read, and answers itself ([`CommandError::response`]) with
//! Dovecot's shape of text: `TAG BAD Error in IMAP command LOGIN: Invalid
//! arguments.`, `* BAD ...` when there is no tag (RFC 9051 §7.1.5).
//!
//! ## Which commands each state allows (RFC 9051 §3, §6)
//!
//! [`CommandKind::allowed_in`] is the one place this is decided:
//!
//! | state | commands |
//! |---|---|
//! | any (but logout) | CAPABILITY NOOP LOGOUT ID (RFC 2971 §3.1) |
//! | not authenticated | STARTTLS AUTHENTICATE LOGIN |
//! | authenticated | ENABLE (RFC 5161 §3.1: before any SELECT) |
//! | authenticated, selected | SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE STATUS APPEND IDLE GETQUOTA GETQUOTAROOT SETQUOTA COMPRESS |
//! | selected | CHECK CLOSE UNSELECT EXPUNGE, and SEARCH FETCH STORE COPY MOVE SORT THREAD with their UID forms, UID EXPUNGE |
//! | logout | none |
//!
//! What the parser is lenient about (beyond the grammar): runs of spaces
//! where one is expected and spaces at the end of a line; verbs and
//! keywords in any case; 8-bit octets and `%`/`*` in astring atoms;
//! any octet escaped by `\` in a quoted string, and 8-bit octets there
//! in rev1 mode; NUL in literals (only literal8 may hold it), and literal8
//! outside APPEND, taken as a literal; `ID ()`;
//! a one-digit day without its space in APPEND's date-time. Strict where
//! being lenient would change meaning: tags, sequence sets, flags,
//! mailbox names (modified UTF-7 that does not decode is refused, not
//! taken literally).

use std::fmt;

use super::datetime::DateTime;
use super::fetch::{FetchAttr, fetch_items};
use super::flag::Flag;
use super::lexer::{INVALID, Lexer, MISSING, Part, Quoting, Res, literal_header};
use super::lexer::{Literal, is_atom_char, is_tag_char};
use super::mailbox::{self, MailboxName};
use super::response::{Code, Status};
use super::search::{
    SearchKey, SearchReturn, SortCriterion, ThreadAlgorithm, charset, search_keys, search_return,
    sort_criteria, sp_sequence_set, thread_algorithm,
};
use super::sequence::SequenceSet;

/// A command: its tag and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub kind: CommandKind,
}

/// Octets that must stay out of logs (passwords, SASL initial
/// responses): `Debug` prints `<hidden>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// The session states of RFC 9051 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
    Logout,
}

/// Every command, by state (see the module's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    // Any state.
    Capability,
    Noop,
    Logout,
    /// `ID NIL` is `None`; `ID (...)` the pairs in order (RFC 2971 §3.1).
    Id(Option<Vec<(String, Option<String>)>>),

    // Not authenticated.
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (RFC 4959 SASL-IR):
    /// the mechanism upper-cased; the initial response still base64, `=`
    /// for an empty one.
    Authenticate {
        mechanism: String,
        initial: Option<Secret>,
    },
    /// `LOGIN user password`: the user name as UTF-8 (invalid sequences
    /// replaced, so it matches no account), the password's octets.
    Login {
        username: String,
        password: Secret,
    },

    // Authenticated.
    /// `ENABLE cap...` (RFC 5161), upper-cased.
    Enable(Vec<String>),
    Select {
        mailbox: MailboxName,
        params: SelectParams,
    },
    Examine {
        mailbox: MailboxName,
        params: SelectParams,
    },
    /// `CREATE name [(USE (\Sent ...))]` (RFC 6154 §3 CREATE-SPECIAL-USE):
    /// the attributes as written, with their backslash.
    Create {
        mailbox: MailboxName,
        special_use: Vec<String>,
    },
    Delete(MailboxName),
    Rename {
        from: MailboxName,
        to: MailboxName,
    },
    Subscribe(MailboxName),
    Unsubscribe(MailboxName),
    List(ListCommand),
    /// `LSUB reference pattern` (rev1): both decoded, not INBOX-folded.
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: MailboxName,
        items: Vec<StatusItem>,
    },
    /// One or more messages (MULTIAPPEND, RFC 3502).
    Append {
        mailbox: MailboxName,
        messages: Vec<AppendMessage>,
    },
    /// IDLE (RFC 2177): the session then reads lines until `DONE`.
    Idle,
    /// `GETQUOTA root` (RFC 9208).
    GetQuota(String),
    GetQuotaRoot(MailboxName),
    /// `SETQUOTA root (RESOURCE limit ...)`, resource names upper-cased.
    SetQuota {
        root: String,
        limits: Vec<(String, u64)>,
    },
    /// `COMPRESS mechanism` (RFC 4978), upper-cased.
    Compress(String),

    // Selected.
    /// rev1 only (RFC 9051 dropped it; answer as NOOP).
    Check,
    Close,
    Unselect,
    Expunge,
    /// `UID EXPUNGE set` (RFC 4315 §2.1).
    UidExpunge(SequenceSet),
    Search(SearchCommand),
    Fetch(FetchCommand),
    Store(StoreCommand),
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    /// RFC 6851.
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxName,
    },
    Sort(SortCommand),
    Thread(ThreadCommand),
}

/// SELECT and EXAMINE parameters (RFC 7162 §3.1.8, §3.2.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    pub condstore: bool,
    pub qresync: Option<Qresync>,
}

/// `QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub mod_seq: u64,
    pub known_uids: Option<SequenceSet>,
    /// The message sequence numbers and the UIDs they had.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// LIST, basic (RFC 9051 §6.3.9) or extended (RFC 5258, 5819, 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCommand {
    /// The reference name, decoded (may be empty).
    pub reference: String,
    /// One or more patterns, decoded, with their `*` and `%`.
    pub patterns: Vec<String>,
    pub select: ListSelect,
    pub returns: ListReturn,
    /// Written in the extended syntax (selection options, a pattern
    /// list, or RETURN): the responses follow RFC 5258.
    pub extended: bool,
}

/// LIST selection options (RFC 5258 §3.1, RFC 6154 §5.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST return options (RFC 5258 §3.2, RFC 5819, RFC 6154 §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    /// `STATUS (...)`.
    pub status: Option<Vec<StatusItem>>,
}

/// STATUS data items (RFC 9051 §6.3.11, RFC 3501, RFC 7162, RFC 8438,
/// RFC 7889, RFC 9208).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    /// RFC 8438 STATUS=SIZE.
    Size,
    /// rev1.
    Recent,
    /// RFC 7162 CONDSTORE.
    HighestModSeq,
    /// RFC 7889.
    AppendLimit,
    /// RFC 9208 §4.2.2 (QUOTA).
    DeletedStorage,
}

impl StatusItem {
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Deleted => "DELETED",
            StatusItem::Size => "SIZE",
            StatusItem::Recent => "RECENT",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::AppendLimit => "APPENDLIMIT",
            StatusItem::DeletedStorage => "DELETED-STORAGE",
        }
    }

    fn parse(word: &[u8]) -> Option<StatusItem> {
        Some(match word {
            b"MESSAGES" => StatusItem::Messages,
            b"UIDNEXT" => StatusItem::UidNext,
            b"UIDVALIDITY" => StatusItem::UidValidity,
            b"UNSEEN" => StatusItem::Unseen,
            b"DELETED" => StatusItem::Deleted,
            b"SIZE" => StatusItem::Size,
            b"RECENT" => StatusItem::Recent,
            b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            b"APPENDLIMIT" => StatusItem::AppendLimit,
            b"DELETED-STORAGE" => StatusItem::DeletedStorage,
            _ => return None,
        })
    }
}

/// One message of APPEND.
#[derive(Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date: Option<DateTime>,
    pub data: Vec<u8>,
    /// Sent as literal8 (`~{n}`, RFC 3516 §4.4): may hold NUL and
    /// binary content-transfer-encoding.
    pub binary: bool,
    /// Sent as `UTF8 (~{n})` (RFC 6855 §4): a message with UTF-8 headers.
    pub utf8: bool,
}

impl fmt::Debug for AppendMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendMessage")
            .field("flags", &self.flags)
            .field("date", &self.date)
            .field("size", &self.data.len())
            .field("binary", &self.binary)
            .field("utf8", &self.utf8)
            .finish()
    }
}

/// SEARCH and UID SEARCH (with ESEARCH's RETURN, RFC 4731).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    pub uid: bool,
    /// `None`: no RETURN (a `* SEARCH` answer in rev1). `Some(vec![])`:
    /// `RETURN ()`, which is ALL in an ESEARCH answer.
    pub returns: Option<Vec<SearchReturn>>,
    pub charset: Option<String>,
    pub key: SearchKey,
}

/// FETCH and UID FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCommand {
    pub uid: bool,
    pub set: SequenceSet,
    /// In the client's order, macros expanded.
    pub items: Vec<FetchAttr>,
    /// `(CHANGEDSINCE n)` (RFC 7162 §3.1.4.1).
    pub changed_since: Option<u64>,
    /// `VANISHED` (RFC 7162 §3.2.6; UID FETCH with CHANGEDSINCE only).
    pub vanished: bool,
}

/// FLAGS, +FLAGS or -FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// STORE and UID STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCommand {
    pub uid: bool,
    pub set: SequenceSet,
    /// `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3).
    pub unchanged_since: Option<u64>,
    pub mode: StoreMode,
    /// `.SILENT`.
    pub silent: bool,
    pub flags: Vec<Flag>,
}

/// SORT and UID SORT (RFC 5256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCommand {
    pub uid: bool,
    pub criteria: Vec<SortCriterion>,
    pub charset: String,
    pub key: SearchKey,
}

/// THREAD and UID THREAD (RFC 5256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCommand {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    pub charset: String,
    pub key: SearchKey,
}

impl CommandKind {
    /// The verb as written in logs and error texts (`UID FETCH`).
    pub fn name(&self) -> &'static str {
        use CommandKind::*;
        match self {
            Capability => "CAPABILITY",
            Noop => "NOOP",
            Logout => "LOGOUT",
            Id(_) => "ID",
            StartTls => "STARTTLS",
            Authenticate { .. } => "AUTHENTICATE",
            Login { .. } => "LOGIN",
            Enable(_) => "ENABLE",
            Select { .. } => "SELECT",
            Examine { .. } => "EXAMINE",
            Create { .. } => "CREATE",
            Delete(_) => "DELETE",
            Rename { .. } => "RENAME",
            Subscribe(_) => "SUBSCRIBE",
            Unsubscribe(_) => "UNSUBSCRIBE",
            List(_) => "LIST",
            Lsub { .. } => "LSUB",
            Namespace => "NAMESPACE",
            Status { .. } => "STATUS",
            Append { .. } => "APPEND",
            Idle => "IDLE",
            GetQuota(_) => "GETQUOTA",
            GetQuotaRoot(_) => "GETQUOTAROOT",
            SetQuota { .. } => "SETQUOTA",
            Compress(_) => "COMPRESS",
            Check => "CHECK",
            Close => "CLOSE",
            Unselect => "UNSELECT",
            Expunge => "EXPUNGE",
            UidExpunge(_) => "UID EXPUNGE",
            Search(c) if c.uid => "UID SEARCH",
            Search(_) => "SEARCH",
            Fetch(c) if c.uid => "UID FETCH",
            Fetch(_) => "FETCH",
            Store(c) if c.uid => "UID STORE",
            Store(_) => "STORE",
            Copy { uid: true, .. } => "UID COPY",
            Copy { .. } => "COPY",
            Move { uid: true, .. } => "UID MOVE",
            Move { .. } => "MOVE",
            Sort(c) if c.uid => "UID SORT",
            Sort(_) => "SORT",
            Thread(c) if c.uid => "UID THREAD",
            Thread(_) => "THREAD",
        }
    }

    /// Whether the command may be given in `state` (the module's table).
    /// A session answers a command its state does not allow with `BAD`
    /// (RFC 9051 §7.1.5), as Dovecot does.
    pub fn allowed_in(&self, state: State) -> bool {
        use CommandKind::*;
        use State::{Authenticated, NotAuthenticated, Selected};
        match self {
            Capability | Noop | Logout | Id(_) => state != State::Logout,
            StartTls | Authenticate { .. } | Login { .. } => state == NotAuthenticated,
            Enable(_) => state == Authenticated,
            Select { .. }
            | Examine { .. }
            | Create { .. }
            | Delete(_)
            | Rename { .. }
            | Subscribe(_)
            | Unsubscribe(_)
            | List(_)
            | Lsub { .. }
            | Namespace
            | Status { .. }
            | Append { .. }
            | Idle
            | GetQuota(_)
            | GetQuotaRoot(_)
            | SetQuota { .. }
            | Compress(_) => matches!(state, Authenticated | Selected),
            Check
            | Close
            | Unselect
            | Expunge
            | UidExpunge(_)
            | Search(_)
            | Fetch(_)
            | Store(_)
            | Copy { .. }
            | Move { .. }
            | Sort(_)
            | Thread(_) => state == Selected,
        }
    }
}

/// What is wrong with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No tag, or a tag with characters a tag cannot have: answered
    /// untagged.
    InvalidTag,
    /// A tag and nothing else.
    MissingCommand,
    UnknownCommand,
    /// The arguments do not parse; the text says how.
    Syntax(&'static str),
    /// A keyword (fetch item, search key, option) we do not know.
    UnknownArgument(String),
    /// Modified UTF-7 that does not decode (or, in UTF-8 mode, not UTF-8).
    InvalidMailboxName,
    /// The command's text (literals not counted) passed the line limit;
    /// the rest of the command is skipped.
    LineTooLong {
        limit: usize,
    },
    /// A literal over its limit (`message`: an APPEND message over the
    /// message size limit, `TOOBIG`). A synchronizing one was refused
    /// (the client does not send it); a non-synchronizing one is
    /// discarded with the rest of the command.
    LiteralTooBig {
        size: Option<u64>,
        limit: u64,
        message: bool,
    },
    /// LITERAL- (RFC 7888 §5): a non-synchronizing literal over 4096
    /// octets; discarded with the rest of the command.
    NonSyncLiteralTooBig {
        size: Option<u64>,
    },
}

/// A command that cannot be carried out as sent: the tag when it could
/// be read, the verb when known, and the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub tag: Option<String>,
    pub verb: Option<String>,
    pub fault: Fault,
}

impl CommandError {
    /// `NO` for a message over the size limit (an operational refusal,
    /// RFC 7889 §4), `BAD` for everything else.
    pub fn status(&self) -> Status {
        match self.fault {
            Fault::LiteralTooBig { message: true, .. } => Status::No,
            _ => Status::Bad,
        }
    }

    /// The response code to send, if any.
    pub fn code(&self) -> Option<Code> {
        match self.fault {
            Fault::LiteralTooBig { .. } | Fault::NonSyncLiteralTooBig { .. } => Some(Code::TooBig),
            _ => None,
        }
    }

    /// The text of the response: Dovecot's `Error in IMAP command VERB:
    /// detail` when the verb is known.
    pub fn text(&self) -> String {
        let detail: std::borrow::Cow<'_, str> = match &self.fault {
            Fault::InvalidTag => "Invalid tag.".into(),
            Fault::MissingCommand => "Missing command.".into(),
            Fault::UnknownCommand => "Unknown command.".into(),
            Fault::Syntax(s) => (*s).into(),
            Fault::UnknownArgument(a) => format!("Unknown argument {a}.").into(),
            Fault::InvalidMailboxName => "Mailbox name is not valid mUTF-7.".into(),
            Fault::LineTooLong { .. } => return "Command line too long.".into(),
            Fault::LiteralTooBig { message: true, .. } => {
                return "Mail size is larger than the maximum size allowed by server \
                        configuration."
                    .into();
            }
            Fault::LiteralTooBig { .. } => return "Literal too large.".into(),
            Fault::NonSyncLiteralTooBig { .. } => {
                return "Non-synchronizing literal larger than 4096 octets.".into();
            }
        };
        match &self.verb {
            Some(verb) => format!("Error in IMAP command {verb}: {detail}"),
            None => detail.into_owned(),
        }
    }

    /// The response Dovecot's login process gives before login: the same
    /// status and code, and for a command it cannot parse or does not know
    /// the one text [`LOGIN_ERROR_TEXT`] instead of the detail.
    pub fn response_before_login(&self) -> Vec<u8> {
        let text = match self.fault {
            Fault::UnknownCommand
            | Fault::Syntax(_)
            | Fault::UnknownArgument(_)
            | Fault::InvalidMailboxName
            | Fault::MissingCommand => LOGIN_ERROR_TEXT.to_string(),
            _ => self.text(),
        };
        let mut out = Vec::new();
        super::response::status(
            &mut out,
            self.tag.as_deref(),
            self.status(),
            self.code().as_ref(),
            &text,
        );
        out
    }

    /// The whole response line: `TAG BAD text` or `* BAD text`.
    pub fn response(&self) -> Vec<u8> {
        let mut out = Vec::new();
        super::response::status(
            &mut out,
            self.tag.as_deref(),
            self.status(),
            self.code().as_ref(),
            &self.text(),
        );
        out
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for CommandError {}

/// Dovecot's imap-login answer to any command it cannot use before login
/// (`a BAD Error in IMAP command received by server.`).
pub const LOGIN_ERROR_TEXT: &str = "Error in IMAP command received by server.";

/// What parsing depends on that the session changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Mailbox names are UTF-8 (UTF8=ACCEPT or IMAP4rev2 enabled), not
    /// modified UTF-7.
    pub utf8: bool,
}

/// Parses a complete command (the reader's parts).
pub fn parse(parts: Vec<Part>, opts: &ParseOptions) -> Result<Command, CommandError> {
    let mut lx = Lexer::new(parts);
    let tag = lx.take_while(is_tag_char);
    let tag = String::from_utf8_lossy(&tag).into_owned();
    let err = |tag: Option<&str>, verb: Option<&str>, fault| CommandError {
        tag: tag.map(str::to_string),
        verb: verb.map(str::to_string),
        fault,
    };
    if tag.is_empty() {
        return Err(err(None, None, Fault::InvalidTag));
    }
    if !lx.skip_sp() {
        return Err(if lx.at_end() {
            err(Some(&tag), None, Fault::MissingCommand)
        } else {
            err(None, None, Fault::InvalidTag)
        });
    }
    let verb = lx.keyword();
    if verb.is_empty() {
        return Err(err(Some(&tag), None, Fault::MissingCommand));
    }
    let mut name = String::from_utf8_lossy(&verb).into_owned();
    let kind = if verb == b"UID" {
        // UID's own verb joins it in errors: `UID FETCH`.
        if lx.sp().is_err() {
            return Err(err(
                Some(&tag),
                Some(&name),
                Fault::Syntax("Missing arguments."),
            ));
        }
        let sub = lx.keyword();
        name = format!("UID {}", String::from_utf8_lossy(&sub));
        parse_uid(&mut lx, &sub, opts)
    } else {
        parse_kind(&mut lx, &verb, opts)
    };
    let kind = kind.map_err(|f| err(Some(&tag), Some(&name), f))?;
    lx.skip_sp();
    if !lx.at_end() {
        return Err(err(
            Some(&tag),
            Some(&name),
            Fault::Syntax("Unexpected extra arguments."),
        ));
    }
    Ok(Command { tag, kind })
}

/// Parses a command as it came over the wire, literals inline
/// (`A1 LOGIN {4}` CRLF `fred` ...), without limits: for tests, fuzzing
/// and tools. The final line end may be left out.
pub fn parse_wire(wire: &[u8], opts: &ParseOptions) -> Result<Command, CommandError> {
    parse(split_wire(wire), opts)
}

/// Cuts wire octets into parts the way the reader does (without limits
/// and continuations).
pub(crate) fn split_wire(wire: &[u8]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = wire;
    loop {
        let mut q = Quoting::default();
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            if b == b'\n' {
                end = i;
                break;
            }
            q.step(b);
        }
        let mut line = &rest[..end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let after = (end + 1).min(rest.len());
        let header = (!q.in_quote() && end < rest.len())
            .then(|| literal_header(line))
            .flatten();
        match header {
            Some(h) => {
                parts.push(Part::Text(line[..h.start].to_vec()));
                let body = &rest[after..];
                let n = h
                    .size
                    .and_then(|s| usize::try_from(s).ok())
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                parts.push(Part::Literal(Literal {
                    data: body[..n].to_vec(),
                    binary: h.binary,
                    sync: !h.non_sync,
                }));
                rest = &body[n..];
            }
            None => {
                parts.push(Part::Text(line.to_vec()));
                return parts;
            }
        }
    }
}

fn mailbox(lx: &mut Lexer, opts: &ParseOptions) -> Res<MailboxName> {
    let raw = lx.astring()?;
    MailboxName::from_wire(&raw, opts.utf8).map_err(|_| Fault::InvalidMailboxName)
}

fn sp_mailbox(lx: &mut Lexer, opts: &ParseOptions) -> Res<MailboxName> {
    lx.sp()?;
    mailbox(lx, opts)
}

/// A reference name or pattern, decoded but not INBOX-folded.
fn name_text(raw: &[u8], opts: &ParseOptions) -> Res<String> {
    mailbox::decode(raw, opts.utf8).map_err(|_| Fault::InvalidMailboxName)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One `flag` (no `\*`, which is only for PERMANENTFLAGS).
fn flag(lx: &mut Lexer) -> Res<Flag> {
    let mut raw = Vec::new();
    if lx.eat(b'\\') {
        raw.push(b'\\');
    }
    raw.extend(lx.take_while(is_atom_char));
    match Flag::parse(&raw) {
        Some(Flag::Wildcard) | None => Err(Fault::Syntax("Invalid flag.")),
        Some(f) => Ok(f),
    }
}

fn flag_list(lx: &mut Lexer) -> Res<Vec<Flag>> {
    lx.list(true, flag)
}

/// Keywords (without arguments): `NOOP`, `CHECK`...
fn no_args(kind: CommandKind) -> Res<CommandKind> {
    Ok(kind)
}

fn parse_kind(lx: &mut Lexer, verb: &[u8], opts: &ParseOptions) -> Res<CommandKind> {
    use CommandKind::*;
    match verb {
        b"CAPABILITY" => no_args(Capability),
        b"NOOP" => no_args(Noop),
        b"LOGOUT" => no_args(Logout),
        b"STARTTLS" => no_args(StartTls),
        b"NAMESPACE" => no_args(Namespace),
        b"IDLE" => no_args(Idle),
        b"CHECK" => no_args(Check),
        b"CLOSE" => no_args(Close),
        b"UNSELECT" => no_args(Unselect),
        b"EXPUNGE" => no_args(Expunge),
        b"ID" => parse_id(lx),
        b"AUTHENTICATE" => {
            lx.sp()?;
            let mechanism = lx.atom()?.to_ascii_uppercase();
            let initial = if lx.more_args() {
                lx.sp()?;
                let ir = lx.take_while(|b| b > b' ' && b < 0x7f);
                if ir.is_empty() {
                    return Err(INVALID);
                }
                Some(Secret(ir))
            } else {
                None
            };
            Ok(Authenticate { mechanism, initial })
        }
        b"LOGIN" => {
            lx.sp()?;
            let username = lossy(&lx.astring()?);
            lx.sp()?;
            let password = Secret(lx.astring()?);
            Ok(Login { username, password })
        }
        b"ENABLE" => {
            let mut caps = Vec::new();
            loop {
                lx.sp()?;
                caps.push(lx.atom()?.to_ascii_uppercase());
                if !lx.more_args() {
                    break;
                }
            }
            Ok(Enable(caps))
        }
        b"SELECT" | b"EXAMINE" => {
            let mailbox = sp_mailbox(lx, opts)?;
            let params = if lx.more_args() {
                lx.sp()?;
                select_params(lx)?
            } else {
                SelectParams::default()
            };
            Ok(if verb == b"SELECT" {
                Select { mailbox, params }
            } else {
                Examine { mailbox, params }
            })
        }
        b"CREATE" => {
            let mailbox = sp_mailbox(lx, opts)?;
            let mut special_use = Vec::new();
            if lx.more_args() {
                lx.sp()?;
                lx.list(false, |lx| {
                    if !lx.eat_keyword(b"USE") {
                        let k = lx.keyword();
                        return Err(Fault::UnknownArgument(lossy(&k)));
                    }
                    lx.sp()?;
                    let uses = lx.list(true, |lx| {
                        lx.expect(b'\\')?;
                        Ok(format!("\\{}", lx.atom()?))
                    })?;
                    special_use.extend(uses);
                    Ok(())
                })?;
            }
            Ok(Create {
                mailbox,
                special_use,
            })
        }
        b"DELETE" => Ok(Delete(sp_mailbox(lx, opts)?)),
        b"RENAME" => {
            let from = sp_mailbox(lx, opts)?;
            let to = sp_mailbox(lx, opts)?;
            Ok(Rename { from, to })
        }
        b"SUBSCRIBE" => Ok(Subscribe(sp_mailbox(lx, opts)?)),
        b"UNSUBSCRIBE" => Ok(Unsubscribe(sp_mailbox(lx, opts)?)),
        b"LIST" => parse_list(lx, opts).map(List),
        b"LSUB" => {
            lx.sp()?;
            let reference = name_text(&lx.astring()?, opts)?;
            lx.sp()?;
            let pattern = name_text(&lx.list_mailbox()?, opts)?;
            Ok(Lsub { reference, pattern })
        }
        b"STATUS" => {
            let mailbox = sp_mailbox(lx, opts)?;
            lx.sp()?;
            let items = lx.list(false, status_item)?;
            Ok(Status { mailbox, items })
        }
        b"APPEND" => parse_append(lx, opts),
        b"GETQUOTA" => {
            lx.sp()?;
            Ok(GetQuota(lossy(&lx.astring()?)))
        }
        b"GETQUOTAROOT" => Ok(GetQuotaRoot(sp_mailbox(lx, opts)?)),
        b"SETQUOTA" => {
            lx.sp()?;
            let root = lossy(&lx.astring()?);
            lx.sp()?;
            let limits = lx.list(true, |lx| {
                let name = lx.atom()?.to_ascii_uppercase();
                lx.sp()?;
                Ok((name, lx.number64()?))
            })?;
            Ok(SetQuota { root, limits })
        }
        b"COMPRESS" => {
            lx.sp()?;
            Ok(Compress(lx.atom()?.to_ascii_uppercase()))
        }
        b"SEARCH" | b"FETCH" | b"STORE" | b"COPY" | b"MOVE" | b"SORT" | b"THREAD" => {
            parse_selected(lx, verb, false, opts)
        }
        _ => Err(Fault::UnknownCommand),
    }
}

fn parse_uid(lx: &mut Lexer, sub: &[u8], opts: &ParseOptions) -> Res<CommandKind> {
    match sub {
        b"EXPUNGE" => Ok(CommandKind::UidExpunge(sp_sequence_set(lx)?)),
        b"SEARCH" | b"FETCH" | b"STORE" | b"COPY" | b"MOVE" | b"SORT" | b"THREAD" => {
            parse_selected(lx, sub, true, opts)
        }
        b"" => Err(INVALID),
        _ => Err(Fault::UnknownCommand),
    }
}

/// The commands that have a UID form.
fn parse_selected(lx: &mut Lexer, verb: &[u8], uid: bool, opts: &ParseOptions) -> Res<CommandKind> {
    use CommandKind::*;
    match verb {
        b"SEARCH" => {
            lx.sp()?;
            let returns = search_return(lx)?;
            if returns.is_some() {
                lx.sp()?;
            }
            let charset = if lx.eat_keyword(b"CHARSET") {
                lx.sp()?;
                let c = lossy(&lx.astring()?);
                lx.sp()?;
                Some(c)
            } else {
                None
            };
            Ok(Search(SearchCommand {
                uid,
                returns,
                charset,
                key: search_keys(lx)?,
            }))
        }
        b"FETCH" => {
            let set = sp_sequence_set(lx)?;
            lx.sp()?;
            let items = fetch_items(lx)?;
            let (mut changed_since, mut vanished) = (None, false);
            if lx.more_args() {
                lx.sp()?;
                lx.list(false, |lx| {
                    match lx.keyword().as_slice() {
                        b"CHANGEDSINCE" => {
                            lx.sp()?;
                            changed_since = Some(lx.mod_seq()?);
                        }
                        b"VANISHED" => vanished = true,
                        b"" => return Err(INVALID),
                        k => return Err(Fault::UnknownArgument(lossy(k))),
                    }
                    Ok(())
                })?;
            }
            // RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE.
            if vanished && (!uid || changed_since.is_none()) {
                return Err(Fault::Syntax(
                    "VANISHED can only be used with UID FETCH and CHANGEDSINCE.",
                ));
            }
            Ok(Fetch(FetchCommand {
                uid,
                set,
                items,
                changed_since,
                vanished,
            }))
        }
        b"STORE" => {
            let set = sp_sequence_set(lx)?;
            lx.sp()?;
            let mut unchanged_since = None;
            if lx.peek() == Some(b'(') {
                lx.list(false, |lx| {
                    if !lx.eat_keyword(b"UNCHANGEDSINCE") {
                        return Err(Fault::UnknownArgument(lossy(&lx.keyword())));
                    }
                    lx.sp()?;
                    unchanged_since = Some(lx.mod_seq_zero()?);
                    Ok(())
                })?;
                lx.sp()?;
            }
            let mode = if lx.eat(b'+') {
                StoreMode::Add
            } else if lx.eat(b'-') {
                StoreMode::Remove
            } else {
                StoreMode::Replace
            };
            let silent = match lx.keyword().as_slice() {
                b"FLAGS" => false,
                b"FLAGS.SILENT" => true,
                b"" => return Err(if lx.at_end() { MISSING } else { INVALID }),
                k => return Err(Fault::UnknownArgument(lossy(k))),
            };
            lx.sp()?;
            let flags = if lx.peek() == Some(b'(') {
                flag_list(lx)?
            } else {
                let mut flags = vec![flag(lx)?];
                while lx.more_args() {
                    lx.sp()?;
                    flags.push(flag(lx)?);
                }
                flags
            };
            Ok(Store(StoreCommand {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            }))
        }
        b"COPY" | b"MOVE" => {
            let set = sp_sequence_set(lx)?;
            let mailbox = sp_mailbox(lx, opts)?;
            Ok(if verb == b"COPY" {
                Copy { uid, set, mailbox }
            } else {
                Move { uid, set, mailbox }
            })
        }
        b"SORT" => {
            lx.sp()?;
            let criteria = sort_criteria(lx)?;
            lx.sp()?;
            let charset = charset(lx)?;
            lx.sp()?;
            Ok(Sort(SortCommand {
                uid,
                criteria,
                charset,
                key: search_keys(lx)?,
            }))
        }
        b"THREAD" => {
            lx.sp()?;
            let algorithm = thread_algorithm(lx)?;
            lx.sp()?;
            let charset = charset(lx)?;
            lx.sp()?;
            Ok(Thread(ThreadCommand {
                uid,
                algorithm,
                charset,
                key: search_keys(lx)?,
            }))
        }
        _ => Err(Fault::UnknownCommand),
    }
}

fn parse_id(lx: &mut Lexer) -> Res<CommandKind> {
    lx.sp()?;
    if lx.eat_keyword(b"NIL") {
        return Ok(CommandKind::Id(None));
    }
    // RFC 2971 §4: at most 30 pairs, fields at most 30 octets, values at
    // most 1024; a server may refuse more, we only keep what is sent.
    let pairs = lx.list(true, |lx| {
        let key = lossy(&lx.string()?);
        lx.sp()?;
        let value = lx.nstring()?.map(|v| lossy(&v));
        Ok((key, value))
    })?;
    Ok(CommandKind::Id(Some(pairs)))
}

fn status_item(lx: &mut Lexer) -> Res<StatusItem> {
    let k = lx.keyword();
    if k.is_empty() {
        return Err(INVALID);
    }
    StatusItem::parse(&k).ok_or_else(|| Fault::UnknownArgument(lossy(&k)))
}

fn select_params(lx: &mut Lexer) -> Res<SelectParams> {
    let mut params = SelectParams::default();
    lx.list(false, |lx| {
        match lx.keyword().as_slice() {
            b"CONDSTORE" => params.condstore = true,
            b"QRESYNC" => {
                lx.sp()?;
                lx.expect(b'(')?;
                let uid_validity = lx.nz_number()?;
                lx.sp()?;
                let mod_seq = lx.mod_seq()?;
                let mut known_uids = None;
                let mut seq_match = None;
                if lx.more_args() {
                    lx.sp()?;
                    if lx.peek() != Some(b'(') {
                        known_uids = Some(known_set(lx)?);
                        if lx.more_args() {
                            lx.sp()?;
                        }
                    }
                    if lx.eat(b'(') {
                        let seqs = known_set(lx)?;
                        lx.sp()?;
                        let uids = known_set(lx)?;
                        lx.expect(b')')?;
                        seq_match = Some((seqs, uids));
                    }
                }
                lx.expect(b')')?;
                params.qresync = Some(Qresync {
                    uid_validity,
                    mod_seq,
                    known_uids,
                    seq_match,
                });
            }
            b"" => return Err(INVALID),
            k => return Err(Fault::UnknownArgument(lossy(k))),
        }
        Ok(())
    })?;
    Ok(params)
}

/// A sequence set in QRESYNC (no `$`).
fn known_set(lx: &mut Lexer) -> Res<SequenceSet> {
    let raw = lx.take_while(|b| b.is_ascii_digit() || matches!(b, b'*' | b':' | b','));
    SequenceSet::parse(&raw).ok_or(Fault::Syntax("Invalid messageset"))
}

fn parse_list(lx: &mut Lexer, opts: &ParseOptions) -> Res<ListCommand> {
    let mut cmd = ListCommand::default();
    lx.sp()?;
    if lx.peek() == Some(b'(') {
        cmd.extended = true;
        let sel = &mut cmd.select;
        lx.list(true, |lx| {
            match lx.keyword().as_slice() {
                b"SUBSCRIBED" => sel.subscribed = true,
                b"REMOTE" => sel.remote = true,
                b"RECURSIVEMATCH" => sel.recursive_match = true,
                b"SPECIAL-USE" => sel.special_use = true,
                b"" => return Err(INVALID),
                k => return Err(Fault::UnknownArgument(lossy(k))),
            }
            Ok(())
        })?;
        // RFC 5258 §3.1: RECURSIVEMATCH needs a base option.
        if sel.recursive_match && !sel.subscribed && !sel.special_use {
            return Err(Fault::Syntax(
                "RECURSIVEMATCH needs another selection option.",
            ));
        }
        lx.sp()?;
    }
    cmd.reference = name_text(&lx.astring()?, opts)?;
    lx.sp()?;
    if lx.peek() == Some(b'(') {
        cmd.extended = true;
        cmd.patterns = lx.list(false, |lx| name_text(&lx.list_mailbox()?, opts))?;
    } else {
        cmd.patterns = vec![name_text(&lx.list_mailbox()?, opts)?];
    }
    if lx.more_args() {
        lx.sp()?;
        if !lx.eat_keyword(b"RETURN") {
            return Err(Fault::UnknownArgument(lossy(&lx.keyword())));
        }
        cmd.extended = true;
        lx.sp()?;
        let ret = &mut cmd.returns;
        lx.list(true, |lx| {
            match lx.keyword().as_slice() {
                b"SUBSCRIBED" => ret.subscribed = true,
                b"CHILDREN" => ret.children = true,
                b"SPECIAL-USE" => ret.special_use = true,
                b"STATUS" => {
                    lx.sp()?;
                    ret.status = Some(lx.list(false, status_item)?);
                }
                b"" => return Err(INVALID),
                k => return Err(Fault::UnknownArgument(lossy(k))),
            }
            Ok(())
        })?;
    }
    Ok(cmd)
}

fn parse_append(lx: &mut Lexer, opts: &ParseOptions) -> Res<CommandKind> {
    let mailbox = sp_mailbox(lx, opts)?;
    lx.sp()?;
    let mut messages = Vec::new();
    loop {
        let mut flags = Vec::new();
        let mut date = None;
        if lx.peek() == Some(b'(') {
            flags = flag_list(lx)?;
            lx.sp()?;
        }
        if lx.peek() == Some(b'"') {
            let raw = lx.quoted()?;
            date = Some(DateTime::parse(&raw).ok_or(Fault::Syntax("Invalid date-time."))?);
            lx.sp()?;
        }
        let (lit, utf8) = if lx.eat_keyword(b"UTF8") {
            lx.sp()?;
            lx.expect(b'(')?;
            let lit = lx
                .take_literal()
                .ok_or(Fault::Syntax("Expected literal8."))?;
            lx.expect(b')')?;
            (lit, true)
        } else {
            match lx.take_literal() {
                Some(lit) => (lit, false),
                None if lx.at_end() => return Err(MISSING),
                None => return Err(Fault::Syntax("Expected literal.")),
            }
        };
        messages.push(AppendMessage {
            flags,
            date,
            binary: lit.binary,
            data: lit.data,
            utf8,
        });
        if !lx.more_args() {
            break;
        }
        lx.sp()?;
    }
    Ok(CommandKind::Append { mailbox, messages })
}
