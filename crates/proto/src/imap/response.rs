//! Server responses (RFC 9051 §7, RFC 3501 §7, and the extensions'):
//! status lines with their response codes, untagged data, FETCH
//! responses, continuation requests, and the string forms they are made
//! of.
//!
//! Every function appends whole lines (ended by CRLF) to a `Vec<u8>`, so
//! a session can gather a command's responses in one buffer and write it
//! once.
//!
//! ## Strings
//! [`string`] quotes when it can and sends a literal when it must: when
//! the octets hold CR, LF or NUL, 8-bit octets (in rev1 mode; with
//! UTF8=ACCEPT or IMAP4rev2 valid UTF-8 may be quoted, RFC 6855 §3), or
//! are longer than [`QUOTED_MAX`]. [`astring`] also writes an atom when
//! the octets are one. Mailbox names are always quoted (or a literal),
//! as Dovecot writes them. Server-to-client literals are always the
//! synchronizing form `{n}` (RFC 7888 §3 is for clients only); binary
//! data with NUL goes as literal8 `~{n}` (RFC 3516 §4.3).
//!
//! ## Texts
//! A status text never breaks the line: CR, LF and NUL become spaces.

use std::fmt;

use super::command::StatusItem;
use super::datetime::DateTime;
use super::fetch::Section;
use super::flag::Flag;
use super::lexer::is_atom_char;
use super::mailbox::{self, MailboxName};
use super::sequence;

/// The longest string sent quoted; longer ones are literals.
pub const QUOTED_MAX: usize = 1024;

/// The text of the continuation request for a literal: Dovecot's `+ OK`
/// (RFC 9051 §7.5's example says `+ Ready for literal data`; clients
/// look only at the `+`).
pub const LITERAL_CONTINUATION: &str = "OK";

/// `+ OK` CRLF, ready to write.
pub const LITERAL_CONTINUATION_LINE: &[u8] = b"+ OK\r\n";

/// The kind of a status response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    /// Untagged only: the greeting of a pre-authenticated connection.
    PreAuth,
    /// Untagged only: the server is closing the connection.
    Bye,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::PreAuth => "PREAUTH",
            Status::Bye => "BYE",
        }
    }
}

/// Response codes (RFC 9051 §7.1, RFC 5530, and the extensions').
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    /// `BADCHARSET (US-ASCII UTF-8)`; empty: bare `BADCHARSET`.
    BadCharset(Vec<String>),
    /// `CAPABILITY ...`: the capability list (see [`super::capability`]).
    Capability(String),
    Parse,
    PermanentFlags(Vec<Flag>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    /// RFC 4315: `APPENDUID uidvalidity uid-set`.
    AppendUid {
        uid_validity: u32,
        uids: String,
    },
    /// RFC 4315: `COPYUID uidvalidity source-set dest-set`.
    CopyUid {
        uid_validity: u32,
        source: String,
        dest: String,
    },
    /// RFC 4315.
    UidNotSticky,
    /// RFC 7162.
    HighestModSeq(u64),
    /// RFC 7162: the mailbox has no mod-sequences.
    NoModSeq,
    /// RFC 7162: `MODIFIED set` (STORE with UNCHANGEDSINCE).
    Modified(String),
    /// RFC 7162 §3.2.11: the previous mailbox is closed (QRESYNC).
    Closed,
    // RFC 5530.
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    Nonexistent,
    /// RFC 4469 / RFC 7888 / RFC 7889: too big to accept.
    TooBig,
    /// RFC 4978: COMPRESS while compression is on.
    CompressionActive,
    /// RFC 9051: DELETE of a mailbox with children.
    HasChildren,
    /// RFC 3516: a content-transfer-encoding BINARY cannot decode.
    UnknownCte,
    /// RFC 5182: `$` used when nothing was saved.
    NotSaved,
    /// Another code: the atom and its optional text.
    Other(String, Option<String>),
}

impl Code {
    /// `APPENDUID` for these UIDs (compacted in order).
    pub fn append_uid(uid_validity: u32, uids: &[u32]) -> Code {
        Code::AppendUid {
            uid_validity,
            uids: sequence::compact(uids),
        }
    }

    /// `COPYUID`: `source[i]` became `dest[i]`.
    pub fn copy_uid(uid_validity: u32, source: &[u32], dest: &[u32]) -> Code {
        Code::CopyUid {
            uid_validity,
            source: sequence::compact(source),
            dest: sequence::compact(dest),
        }
    }
}

fn flag_list(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_str().as_bytes());
    }
    out.push(b')');
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Code::*;
        let word = match self {
            Alert => "ALERT",
            BadCharset(list) if list.is_empty() => "BADCHARSET",
            BadCharset(list) => return write!(f, "BADCHARSET ({})", list.join(" ")),
            Capability(caps) => return write!(f, "CAPABILITY {caps}"),
            Parse => "PARSE",
            PermanentFlags(flags) => {
                let mut v = Vec::new();
                flag_list(&mut v, flags);
                return write!(f, "PERMANENTFLAGS {}", String::from_utf8_lossy(&v));
            }
            ReadOnly => "READ-ONLY",
            ReadWrite => "READ-WRITE",
            TryCreate => "TRYCREATE",
            UidNext(n) => return write!(f, "UIDNEXT {n}"),
            UidValidity(n) => return write!(f, "UIDVALIDITY {n}"),
            Unseen(n) => return write!(f, "UNSEEN {n}"),
            AppendUid { uid_validity, uids } => {
                return write!(f, "APPENDUID {uid_validity} {uids}");
            }
            CopyUid {
                uid_validity,
                source,
                dest,
            } => return write!(f, "COPYUID {uid_validity} {source} {dest}"),
            UidNotSticky => "UIDNOTSTICKY",
            HighestModSeq(n) => return write!(f, "HIGHESTMODSEQ {n}"),
            NoModSeq => "NOMODSEQ",
            Modified(set) => return write!(f, "MODIFIED {set}"),
            Closed => "CLOSED",
            Unavailable => "UNAVAILABLE",
            AuthenticationFailed => "AUTHENTICATIONFAILED",
            AuthorizationFailed => "AUTHORIZATIONFAILED",
            Expired => "EXPIRED",
            PrivacyRequired => "PRIVACYREQUIRED",
            ContactAdmin => "CONTACTADMIN",
            NoPerm => "NOPERM",
            InUse => "INUSE",
            ExpungeIssued => "EXPUNGEISSUED",
            Corruption => "CORRUPTION",
            ServerBug => "SERVERBUG",
            ClientBug => "CLIENTBUG",
            Cannot => "CANNOT",
            Limit => "LIMIT",
            OverQuota => "OVERQUOTA",
            AlreadyExists => "ALREADYEXISTS",
            Nonexistent => "NONEXISTENT",
            TooBig => "TOOBIG",
            CompressionActive => "COMPRESSIONACTIVE",
            HasChildren => "HASCHILDREN",
            UnknownCte => "UNKNOWN-CTE",
            NotSaved => "NOTSAVED",
            Other(atom, None) => return f.write_str(atom),
            Other(atom, Some(text)) => return write!(f, "{atom} {text}"),
        };
        f.write_str(word)
    }
}

/// Appends text for a status line: CR, LF and NUL become spaces, and
/// `]` in a code's text cannot end the code early.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(text.iter().map(|&b| match b {
        b'\r' | b'\n' | 0 => b' ',
        b => b,
    }));
}

/// A status response: `TAG OK [CODE] text` or, without a tag,
/// `* BYE text` (RFC 9051 §7.1). An empty text is left out.
pub fn status(
    out: &mut Vec<u8>,
    tag: Option<&str>,
    status: Status,
    code: Option<&Code>,
    text: &str,
) {
    out.extend_from_slice(tag.unwrap_or("*").as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_str().as_bytes());
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        let code = code.to_string();
        push_text(out, code.replace(']', " ").as_bytes());
        out.push(b']');
    }
    if !text.is_empty() {
        out.push(b' ');
        push_text(out, text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `TAG status [code] text`.
pub fn tagged(out: &mut Vec<u8>, tag: &str, st: Status, code: Option<&Code>, text: &str) {
    status(out, Some(tag), st, code, text);
}

/// `* status [code] text`.
pub fn untagged(out: &mut Vec<u8>, st: Status, code: Option<&Code>, text: &str) {
    status(out, None, st, code, text);
}

/// A continuation request: `+ text` CRLF (a SASL challenge is its base64
/// text; an empty challenge is `+ `).
pub fn continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    push_text(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn quotable(s: &[u8], utf8: bool) -> bool {
    s.len() <= QUOTED_MAX
        && s.iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && (b < 0x80 || utf8))
        && (!utf8 || s.is_ascii() || std::str::from_utf8(s).is_ok())
}

/// `"..."` with `"` and `\` escaped. The caller makes sure the octets may
/// be quoted (see [`string`]).
pub fn quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `{n}` CRLF and the octets.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// `{n}` CRLF and the octets `write` appends, `n` being how many it
/// appended. `expected` is written first; when `write` appends another
/// number of octets, the count is put right afterwards (the data moved
/// over by the difference in digits). For data made on the fly (line
/// ends converted) in one pass, without counting it first. Returns `n`.
pub fn literal_with(out: &mut Vec<u8>, expected: usize, write: impl FnOnce(&mut Vec<u8>)) -> usize {
    let head = out.len();
    out.push(b'{');
    push_decimal(out, expected);
    out.extend_from_slice(b"}\r\n");
    let start = out.len();
    out.reserve(expected);
    write(out);
    let len = out.len() - start;
    if len != expected {
        let mut count = Vec::with_capacity(24);
        count.push(b'{');
        push_decimal(&mut count, len);
        count.extend_from_slice(b"}\r\n");
        out.splice(head..start, count);
    }
    len
}

/// `n` in decimal digits.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `~{n}` CRLF and the octets (RFC 3516 §4.3).
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// `string`: quoted when it can be, a literal otherwise.
pub fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if quotable(s, utf8) {
        quoted(out, s);
    } else {
        literal(out, s);
    }
}

/// `astring`: an atom when the octets are one (and not `NIL`, which a
/// reader could take for nothing), else [`string`].
pub fn astring(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if !s.is_empty()
        && s.iter().all(|&b| is_atom_char(b) || b == b']')
        && !s.eq_ignore_ascii_case(b"NIL")
    {
        out.extend_from_slice(s);
    } else {
        string(out, s, utf8);
    }
}

/// `nstring`: NIL or [`string`].
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s, utf8),
    }
}

/// A mailbox name: modified UTF-7 (or UTF-8 when `utf8`), quoted.
pub fn mailbox_name(out: &mut Vec<u8>, name: &MailboxName, utf8: bool) {
    string(out, name.to_wire(utf8).as_bytes(), utf8);
}

fn line_start(out: &mut Vec<u8>, what: &str) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(what.as_bytes());
}

fn crlf(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// `* CAPABILITY caps`.
pub fn capability(out: &mut Vec<u8>, caps: &str) {
    line_start(out, "CAPABILITY ");
    push_text(out, caps.as_bytes());
    crlf(out);
}

/// `* n EXISTS`.
pub fn exists(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes());
}

/// `* n RECENT` (rev1 only).
pub fn recent(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(format!("* {n} RECENT\r\n").as_bytes());
}

/// `* seq EXPUNGE`.
pub fn expunge(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
}

/// `* VANISHED [(EARLIER)] uids` (RFC 7162 §3.2.10); `uids` sorted and
/// merged. Nothing is written for no UIDs.
pub fn vanished(out: &mut Vec<u8>, earlier: bool, uids: &[std::ops::RangeInclusive<u32>]) {
    if uids.is_empty() {
        return;
    }
    line_start(
        out,
        if earlier {
            "VANISHED (EARLIER) "
        } else {
            "VANISHED "
        },
    );
    out.extend_from_slice(sequence::compact_ranges(uids).as_bytes());
    crlf(out);
}

/// `* FLAGS (...)`.
pub fn flags(out: &mut Vec<u8>, flags: &[Flag]) {
    line_start(out, "FLAGS ");
    flag_list(out, flags);
    crlf(out);
}

/// Mailbox attributes of LIST and LSUB (RFC 9051 §7.3.1, RFC 5258,
/// RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxAttr {
    NoInferiors,
    NoSelect,
    Marked,
    Unmarked,
    NonExistent,
    Subscribed,
    Remote,
    HasChildren,
    HasNoChildren,
    // RFC 6154 special use.
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    /// RFC 8457.
    Important,
    /// Another, with its backslash.
    Other(String),
}

impl MailboxAttr {
    pub fn as_str(&self) -> &str {
        use MailboxAttr::*;
        match self {
            NoInferiors => "\\Noinferiors",
            NoSelect => "\\Noselect",
            Marked => "\\Marked",
            Unmarked => "\\Unmarked",
            NonExistent => "\\NonExistent",
            Subscribed => "\\Subscribed",
            Remote => "\\Remote",
            HasChildren => "\\HasChildren",
            HasNoChildren => "\\HasNoChildren",
            All => "\\All",
            Archive => "\\Archive",
            Drafts => "\\Drafts",
            Flagged => "\\Flagged",
            Junk => "\\Junk",
            Sent => "\\Sent",
            Trash => "\\Trash",
            Important => "\\Important",
            Other(s) => s,
        }
    }

    /// The special-use attribute named by CREATE's USE (`\Sent`), if it
    /// is one.
    pub fn special_use(name: &str) -> Option<MailboxAttr> {
        use MailboxAttr::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "\\all" => All,
            "\\archive" => Archive,
            "\\drafts" => Drafts,
            "\\flagged" => Flagged,
            "\\junk" => Junk,
            "\\sent" => Sent,
            "\\trash" => Trash,
            "\\important" => Important,
            _ => return None,
        })
    }
}

/// One LIST (or LSUB) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem<'a> {
    pub attributes: &'a [MailboxAttr],
    /// The hierarchy delimiter; `None` for a flat namespace (NIL).
    pub delimiter: Option<char>,
    pub name: &'a MailboxName,
    /// `("CHILDINFO" ("SUBSCRIBED"))` (RFC 5258 §3.5).
    pub child_info_subscribed: bool,
    /// `("OLDNAME" ("name"))` (RFC 9051 §7.3.1, after RENAME).
    pub old_name: Option<&'a MailboxName>,
}

fn delimiter(out: &mut Vec<u8>, d: Option<char>) {
    match d {
        None => out.extend_from_slice(b"NIL"),
        Some(c) => {
            let mut b = [0; 4];
            quoted(out, c.encode_utf8(&mut b).as_bytes());
        }
    }
}

/// `* LIST (attrs) "/" "name" [extended data]`; `verb` is `LIST` or
/// `LSUB`.
pub fn list(out: &mut Vec<u8>, verb: &str, item: &ListItem<'_>, utf8: bool) {
    line_start(out, verb);
    out.extend_from_slice(b" (");
    for (i, a) in item.attributes.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(a.as_str().as_bytes());
    }
    out.extend_from_slice(b") ");
    delimiter(out, item.delimiter);
    out.push(b' ');
    mailbox_name(out, item.name, utf8);
    let mut ext: Vec<Vec<u8>> = Vec::new();
    if item.child_info_subscribed {
        ext.push(b"\"CHILDINFO\" (\"SUBSCRIBED\")".to_vec());
    }
    if let Some(old) = item.old_name {
        let mut v = b"\"OLDNAME\" (".to_vec();
        mailbox_name(&mut v, old, utf8);
        v.push(b')');
        ext.push(v);
    }
    if !ext.is_empty() {
        out.extend_from_slice(b" (");
        out.extend_from_slice(&ext.join(&b' '));
        out.push(b')');
    }
    crlf(out);
}

/// `* STATUS "name" (ITEM n ...)`.
pub fn status_data(out: &mut Vec<u8>, name: &MailboxName, items: &[(StatusItem, u64)], utf8: bool) {
    line_start(out, "STATUS ");
    mailbox_name(out, name, utf8);
    out.extend_from_slice(b" (");
    for (i, (item, n)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{} {n}", item.as_str()).as_bytes());
    }
    out.push(b')');
    crlf(out);
}

fn numbers(out: &mut Vec<u8>, nums: &[u32]) {
    for n in nums {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
}

/// `* SEARCH 2 3 6 [(MODSEQ n)]` (RFC 9051 §7.3.5 in rev1, RFC 7162
/// §3.1.5).
pub fn search(out: &mut Vec<u8>, nums: &[u32], modseq: Option<u64>) {
    line_start(out, "SEARCH");
    numbers(out, nums);
    if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    crlf(out);
}

/// `* SORT 2 3 6 [(MODSEQ n)]` (RFC 5256 §4, RFC 7162 §3.1.5).
pub fn sort(out: &mut Vec<u8>, nums: &[u32], modseq: Option<u64>) {
    line_start(out, "SORT");
    numbers(out, nums);
    if let Some(m) = modseq.filter(|_| !nums.is_empty()) {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    crlf(out);
}

/// An ESEARCH response (RFC 4731 §3.1, RFC 9051 §7.3.4); what is `None`
/// is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Esearch<'a> {
    /// The tag of the command, `(TAG "a1")`.
    pub tag: Option<&'a str>,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub count: Option<u32>,
    /// ALL, as sorted, merged ranges (left out when empty, RFC 4731).
    pub all: Option<&'a [std::ops::RangeInclusive<u32>]>,
    pub modseq: Option<u64>,
}

/// `* ESEARCH (TAG "a") UID MIN 1 MAX 9 COUNT 3 ALL 1,5,9 MODSEQ n`.
pub fn esearch(out: &mut Vec<u8>, e: &Esearch<'_>) {
    line_start(out, "ESEARCH");
    if let Some(tag) = e.tag {
        out.extend_from_slice(b" (TAG ");
        quoted(out, tag.as_bytes());
        out.push(b')');
    }
    if e.uid {
        out.extend_from_slice(b" UID");
    }
    if let Some(n) = e.min {
        out.extend_from_slice(format!(" MIN {n}").as_bytes());
    }
    if let Some(n) = e.max {
        out.extend_from_slice(format!(" MAX {n}").as_bytes());
    }
    if let Some(n) = e.count {
        out.extend_from_slice(format!(" COUNT {n}").as_bytes());
    }
    if let Some(all) = e.all.filter(|a| !a.is_empty()) {
        out.extend_from_slice(b" ALL ");
        out.extend_from_slice(sequence::compact_ranges(all).as_bytes());
    }
    if let Some(m) = e.modseq {
        out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
    crlf(out);
}

/// A node of a THREAD response (RFC 5256 §4): a message, or a dummy
/// parent (`id: None`) that holds siblings whose parent is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadNode {
    pub id: Option<u32>,
    pub children: Vec<ThreadNode>,
}

/// `* THREAD (2)(3 6 (4 23)(44 7 96))`: one parenthesised thread a root;
/// a chain of single children is written flat, several children each in
/// parentheses. Written without recursion, so deep threads are safe.
pub fn thread(out: &mut Vec<u8>, roots: &[ThreadNode]) {
    enum Step<'a> {
        Open(&'a ThreadNode),
        Close,
    }
    line_start(out, "THREAD ");
    let mut stack: Vec<Step<'_>> = Vec::new();
    for root in roots.iter().rev() {
        stack.push(Step::Close);
        stack.push(Step::Open(root));
    }
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Close => {
                out.push(b')');
                continue;
            }
            Step::Open(node) => node,
        };
        out.push(b'(');
        let mut cur = node;
        let mut wrote = false;
        loop {
            if let Some(id) = cur.id {
                if wrote {
                    out.push(b' ');
                }
                out.extend_from_slice(id.to_string().as_bytes());
                wrote = true;
            }
            match cur.children.len() {
                0 => break,
                1 => cur = &cur.children[0],
                _ => {
                    if wrote {
                        out.push(b' ');
                    }
                    for child in cur.children.iter().rev() {
                        stack.push(Step::Close);
                        stack.push(Step::Open(child));
                    }
                    break;
                }
            }
        }
    }
    // An empty result is `* THREAD` without the space.
    if roots.is_empty() {
        out.pop();
    }
    crlf(out);
}

/// `* ENABLED cap ...` (RFC 5161 §3.2).
pub fn enabled(out: &mut Vec<u8>, caps: &[&str]) {
    line_start(out, "ENABLED");
    for c in caps {
        out.push(b' ');
        out.extend_from_slice(c.as_bytes());
    }
    crlf(out);
}

/// One namespace: its prefix and delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<char>,
}

fn namespaces(out: &mut Vec<u8>, list: &[Namespace<'_>], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for ns in list {
        out.push(b'(');
        string(out, mailbox::encode(ns.prefix, utf8).as_bytes(), utf8);
        out.push(b' ');
        delimiter(out, ns.delimiter);
        out.push(b')');
    }
    out.push(b')');
}

/// `* NAMESPACE (("" "/")) NIL NIL` (RFC 2342 §5, RFC 9051 §7.3.10).
pub fn namespace(
    out: &mut Vec<u8>,
    personal: &[Namespace<'_>],
    other: &[Namespace<'_>],
    shared: &[Namespace<'_>],
    utf8: bool,
) {
    line_start(out, "NAMESPACE ");
    namespaces(out, personal, utf8);
    out.push(b' ');
    namespaces(out, other, utf8);
    out.push(b' ');
    namespaces(out, shared, utf8);
    crlf(out);
}

/// `* ID ("name" "ironpost" ...)` or `* ID NIL` (RFC 2971 §3.2).
pub fn id(out: &mut Vec<u8>, fields: Option<&[(&str, Option<&str>)]>) {
    line_start(out, "ID ");
    match fields {
        None => out.extend_from_slice(b"NIL"),
        Some([]) => out.extend_from_slice(b"NIL"),
        Some(fields) => {
            out.push(b'(');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, k.as_bytes(), false);
                out.push(b' ');
                nstring(out, v.map(str::as_bytes), false);
            }
            out.push(b')');
        }
    }
    crlf(out);
}

/// One resource of a QUOTA response: name, usage, limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaResource<'a> {
    pub name: &'a str,
    pub usage: u64,
    pub limit: u64,
}

/// `* QUOTA "root" (STORAGE 10 512)` (RFC 9208 §5.1).
pub fn quota(out: &mut Vec<u8>, root: &str, resources: &[QuotaResource<'_>]) {
    line_start(out, "QUOTA ");
    string(out, root.as_bytes(), false);
    out.extend_from_slice(b" (");
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{} {} {}", r.name, r.usage, r.limit).as_bytes());
    }
    out.push(b')');
    crlf(out);
}

/// `* QUOTAROOT "INBOX" "root" ...` (RFC 9208 §5.2).
pub fn quotaroot(out: &mut Vec<u8>, name: &MailboxName, roots: &[&str], utf8: bool) {
    line_start(out, "QUOTAROOT ");
    mailbox_name(out, name, utf8);
    for r in roots {
        out.push(b' ');
        string(out, r.as_bytes(), utf8);
    }
    crlf(out);
}

/// A FETCH response for one message, items written in the order the
/// builder's methods are called (the caller follows the client's order,
/// and adds UID for UID FETCH, RFC 9051 §6.4.9). ENVELOPE, BODY and
/// BODYSTRUCTURE come pre-encoded from the MIME code.
///
/// ```
/// # use ironpost_proto::imap::response::FetchResponse;
/// # use ironpost_proto::imap::Flag;
/// let mut f = FetchResponse::new(12);
/// f.uid(4827313).flags(&[Flag::Seen]).rfc822_size(44827);
/// assert_eq!(f.finish(), b"* 12 FETCH (UID 4827313 FLAGS (\\Seen) RFC822.SIZE 44827)\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct FetchResponse {
    buf: Vec<u8>,
    items: usize,
    utf8: bool,
}

impl FetchResponse {
    /// `* seq FETCH (`.
    pub fn new(seq: u32) -> FetchResponse {
        FetchResponse::continuing(Vec::new(), seq)
    }

    /// `* seq FETCH (` appended to `buf`, which [`FetchResponse::finish`]
    /// gives back with the whole line after what it held: many lines are
    /// built in one buffer without a copy each.
    pub fn continuing(mut buf: Vec<u8>, seq: u32) -> FetchResponse {
        buf.extend_from_slice(b"* ");
        buf.extend_from_slice(seq.to_string().as_bytes());
        buf.extend_from_slice(b" FETCH (");
        FetchResponse {
            buf,
            items: 0,
            utf8: false,
        }
    }

    /// Strings may be quoted UTF-8 (UTF8=ACCEPT or IMAP4rev2 enabled).
    pub fn utf8(mut self, on: bool) -> FetchResponse {
        self.utf8 = on;
        self
    }

    fn item(&mut self, name: &[u8]) -> &mut Vec<u8> {
        if self.items > 0 {
            self.buf.push(b' ');
        }
        self.items += 1;
        self.buf.extend_from_slice(name);
        &mut self.buf
    }

    pub fn uid(&mut self, uid: u32) -> &mut FetchResponse {
        self.item(format!("UID {uid}").as_bytes());
        self
    }

    pub fn flags(&mut self, flags: &[Flag]) -> &mut FetchResponse {
        let buf = self.item(b"FLAGS ");
        flag_list(buf, flags);
        self
    }

    pub fn internal_date(&mut self, date: &DateTime) -> &mut FetchResponse {
        let buf = self.item(b"INTERNALDATE ");
        quoted(buf, date.to_string().as_bytes());
        self
    }

    pub fn rfc822_size(&mut self, size: u64) -> &mut FetchResponse {
        self.item(format!("RFC822.SIZE {size}").as_bytes());
        self
    }

    /// `MODSEQ (n)` (RFC 7162 §3.1.4.1).
    pub fn modseq(&mut self, modseq: u64) -> &mut FetchResponse {
        self.item(format!("MODSEQ ({modseq})").as_bytes());
        self
    }

    /// `ENVELOPE (...)`, the parenthesised list as the MIME code wrote it.
    pub fn envelope(&mut self, encoded: &[u8]) -> &mut FetchResponse {
        self.item(b"ENVELOPE ").extend_from_slice(encoded);
        self
    }

    /// `BODYSTRUCTURE (...)`, pre-encoded.
    pub fn body_structure(&mut self, encoded: &[u8]) -> &mut FetchResponse {
        self.item(b"BODYSTRUCTURE ").extend_from_slice(encoded);
        self
    }

    /// `BODY (...)` (the structure without extension data), pre-encoded.
    pub fn body(&mut self, encoded: &[u8]) -> &mut FetchResponse {
        self.item(b"BODY ").extend_from_slice(encoded);
        self
    }

    /// `BODY[section]<origin> data`: always a literal, NIL when the data
    /// does not exist. `origin` is the partial's offset when one was
    /// asked for (RFC 9051 §7.5.2).
    pub fn body_section(
        &mut self,
        section: &Section,
        origin: Option<u64>,
        data: Option<&[u8]>,
    ) -> &mut FetchResponse {
        let buf = self.item(section_name(section, origin).as_bytes());
        match data {
            Some(d) => literal(buf, d),
            None => buf.extend_from_slice(b"NIL"),
        }
        self
    }

    /// `BODY[section]<origin>` and a literal of the octets that `write`
    /// appends to the buffer it is given: for data made on the fly (line
    /// ends converted) without a copy of its own. `expected` is the
    /// length it is thought to be ([`literal_with`]). Returns the length.
    pub fn body_section_with(
        &mut self,
        section: &Section,
        origin: Option<u64>,
        expected: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        let buf = self.item(section_name(section, origin).as_bytes());
        literal_with(buf, expected, write)
    }

    /// `RFC822 data` as [`FetchResponse::body_section_with`] writes it.
    pub fn rfc822_with(&mut self, expected: usize, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let buf = self.item(b"RFC822 ");
        literal_with(buf, expected, write)
    }

    /// `RFC822 data`, `RFC822.HEADER data`, `RFC822.TEXT data`: `name`
    /// is one of those.
    pub fn rfc822(&mut self, name: &str, data: &[u8]) -> &mut FetchResponse {
        let buf = self.item(format!("{name} ").as_bytes());
        literal(buf, data);
        self
    }

    /// `BINARY[part]<origin> data` (RFC 3516 §4.3): literal8 when the
    /// data holds NUL, a literal otherwise; NIL when absent.
    pub fn binary(
        &mut self,
        part: &[u32],
        origin: Option<u64>,
        data: Option<&[u8]>,
    ) -> &mut FetchResponse {
        let mut name = format!("BINARY[{}]", part_string(part));
        if let Some(o) = origin {
            name.push_str(&format!("<{o}>"));
        }
        name.push(' ');
        let buf = self.item(name.as_bytes());
        match data {
            Some(d) if d.contains(&0) => literal8(buf, d),
            Some(d) => literal(buf, d),
            None => buf.extend_from_slice(b"NIL"),
        }
        self
    }

    /// `BINARY.SIZE[part] n`.
    pub fn binary_size(&mut self, part: &[u32], size: u64) -> &mut FetchResponse {
        self.item(format!("BINARY.SIZE[{}] {size}", part_string(part)).as_bytes());
        self
    }

    /// Any other item: `name value`, the value pre-encoded.
    pub fn raw(&mut self, name: &str, value: &[u8]) -> &mut FetchResponse {
        let buf = self.item(name.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(value);
        self
    }

    /// Whether a string item would be quoted as UTF-8.
    pub fn is_utf8(&self) -> bool {
        self.utf8
    }

    /// The whole line: `... )` CRLF.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b")\r\n");
        self.buf
    }

    /// Appends the whole line to `out`.
    pub fn finish_into(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.finish());
    }
}

/// `BODY[section]<origin> `, the name of a body section item.
fn section_name(section: &Section, origin: Option<u64>) -> String {
    match origin {
        Some(o) => format!("BODY[{section}]<{o}> "),
        None => format!("BODY[{section}] "),
    }
}

fn part_string(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::super::fetch::SectionText;
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            s(|o| tagged(
                o,
                "a1",
                Status::Ok,
                Some(&Code::ReadWrite),
                "Select completed (0.001 + 0.000 secs)."
            )),
            "a1 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"
        );
        assert_eq!(
            s(|o| untagged(o, Status::Bye, None, "Logging out")),
            "* BYE Logging out\r\n"
        );
        assert_eq!(
            s(|o| untagged(
                o,
                Status::Ok,
                Some(&Code::UidValidity(3857529045)),
                "UIDs valid"
            )),
            "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
        );
        assert_eq!(
            s(|o| tagged(
                o,
                "A003",
                Status::Ok,
                Some(&Code::append_uid(38505, &[3955])),
                "APPEND completed"
            )),
            "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
        );
        assert_eq!(
            s(|o| tagged(
                o,
                "A004",
                Status::Ok,
                Some(&Code::copy_uid(
                    38505,
                    &[304, 319, 320, 321],
                    &[3956, 3957, 3958, 3959]
                )),
                "Done"
            )),
            "A004 OK [COPYUID 38505 304,319:321 3956:3959] Done\r\n"
        );
        assert_eq!(
            s(|o| untagged(
                o,
                Status::Ok,
                Some(&Code::PermanentFlags(vec![
                    Flag::Deleted,
                    Flag::Seen,
                    Flag::Wildcard
                ])),
                "Limited"
            )),
            "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
        );
        assert_eq!(
            s(|o| tagged(
                o,
                "t",
                Status::No,
                Some(&Code::BadCharset(vec!["US-ASCII".into(), "UTF-8".into()])),
                "x"
            )),
            "t NO [BADCHARSET (US-ASCII UTF-8)] x\r\n"
        );
        // Texts and codes cannot break the line.
        assert_eq!(
            s(|o| tagged(
                o,
                "t",
                Status::No,
                Some(&Code::Other("X".into(), Some("a]b".into()))),
                "bad\r\nA2 OK"
            )),
            "t NO [X a b] bad  A2 OK\r\n"
        );
        let mut caps = Vec::new();
        continuation(&mut caps, "");
        assert_eq!(caps, b"+ \r\n");
        assert_eq!(LITERAL_CONTINUATION_LINE, b"+ OK\r\n");
        for (code, text) in [
            (Code::Alert, "ALERT"),
            (Code::Parse, "PARSE"),
            (Code::ReadOnly, "READ-ONLY"),
            (Code::TryCreate, "TRYCREATE"),
            (Code::UidNext(4392), "UIDNEXT 4392"),
            (Code::Unseen(12), "UNSEEN 12"),
            (Code::UidNotSticky, "UIDNOTSTICKY"),
            (
                Code::HighestModSeq(715194045007),
                "HIGHESTMODSEQ 715194045007",
            ),
            (Code::NoModSeq, "NOMODSEQ"),
            (Code::Modified("7,9".into()), "MODIFIED 7,9"),
            (Code::Closed, "CLOSED"),
            (Code::Cannot, "CANNOT"),
            (Code::Limit, "LIMIT"),
            (Code::OverQuota, "OVERQUOTA"),
            (Code::TooBig, "TOOBIG"),
            (Code::ServerBug, "SERVERBUG"),
            (Code::Nonexistent, "NONEXISTENT"),
            (Code::AlreadyExists, "ALREADYEXISTS"),
            (Code::InUse, "INUSE"),
            (Code::ExpungeIssued, "EXPUNGEISSUED"),
            (Code::Corruption, "CORRUPTION"),
            (Code::ClientBug, "CLIENTBUG"),
            (Code::NoPerm, "NOPERM"),
            (Code::AuthenticationFailed, "AUTHENTICATIONFAILED"),
            (Code::AuthorizationFailed, "AUTHORIZATIONFAILED"),
            (Code::Expired, "EXPIRED"),
            (Code::PrivacyRequired, "PRIVACYREQUIRED"),
            (Code::ContactAdmin, "CONTACTADMIN"),
            (Code::Unavailable, "UNAVAILABLE"),
            (Code::CompressionActive, "COMPRESSIONACTIVE"),
            (Code::HasChildren, "HASCHILDREN"),
            (Code::UnknownCte, "UNKNOWN-CTE"),
            (Code::NotSaved, "NOTSAVED"),
            (Code::BadCharset(vec![]), "BADCHARSET"),
            (
                Code::Capability("IMAP4rev1 IDLE".into()),
                "CAPABILITY IMAP4rev1 IDLE",
            ),
        ] {
            assert_eq!(code.to_string(), text);
        }
    }

    #[test]
    fn strings() {
        assert_eq!(s(|o| string(o, b"hello world", false)), "\"hello world\"");
        assert_eq!(s(|o| string(o, br#"a"b\c"#, false)), r#""a\"b\\c""#);
        assert_eq!(s(|o| string(o, b"a\r\nb", false)), "{4}\r\na\r\nb");
        assert_eq!(s(|o| string(o, b"nul\0", false)), "{4}\r\nnul\0");
        assert_eq!(
            s(|o| string(o, "caf\u{e9}".as_bytes(), false)),
            "{5}\r\ncaf\u{e9}"
        );
        assert_eq!(
            s(|o| string(o, "caf\u{e9}".as_bytes(), true)),
            "\"caf\u{e9}\""
        );
        // Not UTF-8: a literal even in UTF-8 mode.
        let mut out = Vec::new();
        string(&mut out, b"\xff", true);
        assert_eq!(out, b"{1}\r\n\xff");
        let long = vec![b'a'; QUOTED_MAX + 1];
        assert!(s(|o| string(o, &long, false)).starts_with("{1025}\r\n"));
        assert_eq!(s(|o| astring(o, b"INBOX", false)), "INBOX");
        assert_eq!(s(|o| astring(o, b"a]b", false)), "a]b");
        assert_eq!(s(|o| astring(o, b"NIL", false)), "\"NIL\"");
        assert_eq!(s(|o| astring(o, b"", false)), "\"\"");
        assert_eq!(s(|o| astring(o, b"a b", false)), "\"a b\"");
        assert_eq!(s(|o| astring(o, b"a*", false)), "\"a*\"");
        assert_eq!(s(|o| nstring(o, None, false)), "NIL");
        assert_eq!(s(|o| nstring(o, Some(b"NIL"), false)), "\"NIL\"");
        let mut out = Vec::new();
        literal8(&mut out, b"\0\x01");
        assert_eq!(out, b"~{2}\r\n\0\x01");
        assert_eq!(
            s(|o| mailbox_name(o, &MailboxName::new("Entw\u{fc}rfe"), false)),
            "\"Entw&APw-rfe\""
        );
        assert_eq!(
            s(|o| mailbox_name(o, &MailboxName::new("Entw\u{fc}rfe"), true)),
            "\"Entw\u{fc}rfe\""
        );
    }

    #[test]
    fn untagged_data() {
        assert_eq!(s(|o| exists(o, 172)), "* 172 EXISTS\r\n");
        assert_eq!(s(|o| recent(o, 1)), "* 1 RECENT\r\n");
        assert_eq!(s(|o| expunge(o, 44)), "* 44 EXPUNGE\r\n");
        assert_eq!(
            s(|o| vanished(o, true, &[41..=41, 43..=116, 118..=118])),
            "* VANISHED (EARLIER) 41,43:116,118\r\n"
        );
        assert_eq!(
            s(|o| vanished(o, false, &[405..=410])),
            "* VANISHED 405:410\r\n"
        );
        assert_eq!(s(|o| vanished(o, false, &[])), "");
        assert_eq!(
            s(|o| flags(
                o,
                &[
                    Flag::Answered,
                    Flag::Flagged,
                    Flag::Deleted,
                    Flag::Seen,
                    Flag::Draft
                ]
            )),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        );
        assert_eq!(
            s(|o| capability(o, "IMAP4rev1 IDLE")),
            "* CAPABILITY IMAP4rev1 IDLE\r\n"
        );
        let inbox = MailboxName::new("INBOX");
        assert_eq!(
            s(|o| list(
                o,
                "LIST",
                &ListItem {
                    attributes: &[MailboxAttr::HasNoChildren],
                    delimiter: Some('/'),
                    name: &inbox,
                    child_info_subscribed: false,
                    old_name: None
                },
                false
            )),
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
        );
        let sent = MailboxName::new("Gesendete Objekte");
        let old = MailboxName::new("Sent");
        assert_eq!(
            s(|o| list(
                o,
                "LIST",
                &ListItem {
                    attributes: &[MailboxAttr::HasChildren, MailboxAttr::Sent],
                    delimiter: Some('\\'),
                    name: &sent,
                    child_info_subscribed: true,
                    old_name: Some(&old)
                },
                false
            )),
            "* LIST (\\HasChildren \\Sent) \"\\\\\" \"Gesendete Objekte\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Sent\"))\r\n"
        );
        assert_eq!(
            s(|o| list(
                o,
                "LSUB",
                &ListItem {
                    attributes: &[],
                    delimiter: None,
                    name: &inbox,
                    child_info_subscribed: false,
                    old_name: None
                },
                false
            )),
            "* LSUB () NIL \"INBOX\"\r\n"
        );
        assert_eq!(
            s(|o| status_data(
                o,
                &MailboxName::new("blurdybloop"),
                &[(StatusItem::Messages, 231), (StatusItem::UidNext, 44292)],
                false
            )),
            "* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292)\r\n"
        );
        assert_eq!(
            s(|o| search(o, &[2, 84, 882], None)),
            "* SEARCH 2 84 882\r\n"
        );
        assert_eq!(s(|o| search(o, &[], Some(5))), "* SEARCH\r\n");
        assert_eq!(
            s(|o| search(o, &[2, 5, 6, 7, 11, 12, 18, 19, 20, 23], Some(917162500))),
            "* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n"
        );
        assert_eq!(s(|o| sort(o, &[2, 84, 882], None)), "* SORT 2 84 882\r\n");
        assert_eq!(
            s(|o| esearch(
                o,
                &Esearch {
                    tag: Some("A285"),
                    uid: true,
                    min: Some(7),
                    max: Some(3800),
                    ..Default::default()
                }
            )),
            "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n"
        );
        assert_eq!(
            s(|o| esearch(
                o,
                &Esearch {
                    tag: Some("A283"),
                    all: Some(&[2..=2, 10..=11]),
                    ..Default::default()
                }
            )),
            "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"
        );
        assert_eq!(
            s(|o| esearch(
                o,
                &Esearch {
                    tag: Some("a"),
                    count: Some(0),
                    all: Some(&[]),
                    ..Default::default()
                }
            )),
            "* ESEARCH (TAG \"a\") COUNT 0\r\n"
        );
        assert_eq!(
            s(|o| enabled(o, &["CONDSTORE", "QRESYNC"])),
            "* ENABLED CONDSTORE QRESYNC\r\n"
        );
        assert_eq!(s(|o| enabled(o, &[])), "* ENABLED\r\n");
        assert_eq!(
            s(|o| namespace(
                o,
                &[Namespace {
                    prefix: "",
                    delimiter: Some('/')
                }],
                &[],
                &[],
                false
            )),
            "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
        );
        assert_eq!(
            s(|o| namespace(
                o,
                &[Namespace {
                    prefix: "",
                    delimiter: Some('.')
                }],
                &[Namespace {
                    prefix: "~",
                    delimiter: Some('.')
                }],
                &[
                    Namespace {
                        prefix: "#shared.",
                        delimiter: Some('.')
                    },
                    Namespace {
                        prefix: "#flat",
                        delimiter: None
                    }
                ],
                false
            )),
            "* NAMESPACE ((\"\" \".\")) ((\"~\" \".\")) ((\"#shared.\" \".\")(\"#flat\" NIL))\r\n"
        );
        assert_eq!(
            s(|o| id(o, Some(&[("name", Some("ironpost")), ("version", None)]))),
            "* ID (\"name\" \"ironpost\" \"version\" NIL)\r\n"
        );
        assert_eq!(s(|o| id(o, None)), "* ID NIL\r\n");
        assert_eq!(
            s(|o| quota(
                o,
                "",
                &[QuotaResource {
                    name: "STORAGE",
                    usage: 10,
                    limit: 512
                }]
            )),
            "* QUOTA \"\" (STORAGE 10 512)\r\n"
        );
        assert_eq!(
            s(|o| quotaroot(o, &inbox, &[""], false)),
            "* QUOTAROOT \"INBOX\" \"\"\r\n"
        );
        assert_eq!(
            s(|o| quotaroot(o, &inbox, &[], false)),
            "* QUOTAROOT \"INBOX\"\r\n"
        );
    }

    fn node(id: u32, children: Vec<ThreadNode>) -> ThreadNode {
        ThreadNode {
            id: Some(id),
            children,
        }
    }

    #[test]
    fn threads() {
        // RFC 5256 §4's example: (2)(3 6 (4 23)(44 7 96)).
        let roots = vec![
            node(2, vec![]),
            node(
                3,
                vec![node(
                    6,
                    vec![
                        node(4, vec![node(23, vec![])]),
                        node(44, vec![node(7, vec![node(96, vec![])])]),
                    ],
                )],
            ),
        ];
        assert_eq!(
            s(|o| thread(o, &roots)),
            "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
        );
        // A dummy parent: ((3)(5)).
        let dummy = vec![ThreadNode {
            id: None,
            children: vec![node(3, vec![]), node(5, vec![])],
        }];
        assert_eq!(s(|o| thread(o, &dummy)), "* THREAD ((3)(5))\r\n");
        assert_eq!(s(|o| thread(o, &[])), "* THREAD\r\n");
        // Deep branching is written without recursion (5000 levels; the
        // tree's own drop is recursive, so not deeper here).
        let mut deep = node(5000, vec![]);
        for i in (1..5000).rev() {
            deep = node(i, vec![deep, node(u32::MAX, vec![])]);
        }
        let out = s(|o| thread(o, std::slice::from_ref(&deep)));
        assert!(out.starts_with("* THREAD (1 (2 (3 (4 "));
        assert!(out.contains(" (4999 (5000)(4294967295))(4294967295))(4294967295)"));
        assert!(out.ends_with("(4294967295))\r\n"));
    }

    #[test]
    fn fetch_responses() {
        let mut f = FetchResponse::new(12);
        f.flags(&[Flag::Seen])
            .internal_date(&DateTime::parse(b"17-Jul-1996 02:44:25 -0700").unwrap())
            .rfc822_size(4286)
            .envelope(b"(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" NIL NIL NIL NIL NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\")")
            .uid(4);
        assert_eq!(
            String::from_utf8(f.finish()).unwrap(),
            "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" NIL NIL NIL NIL NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\") UID 4)\r\n"
        );
        let mut f = FetchResponse::new(1);
        let fields = Section {
            part: vec![],
            text: Some(SectionText::HeaderFields {
                not: false,
                fields: vec!["DATE".into(), "FROM".into()],
            }),
        };
        f.uid(7)
            .body_section(&fields, None, Some(b"Date: x\r\n\r\n"))
            .body_section(&Section::default(), Some(0), Some(b"abc"))
            .body_section(
                &Section {
                    part: vec![9],
                    text: None,
                },
                None,
                None,
            )
            .modseq(12121231000);
        assert_eq!(
            String::from_utf8(f.finish()).unwrap(),
            "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (DATE FROM)] {11}\r\nDate: x\r\n\r\n BODY[]<0> {3}\r\nabc BODY[9] NIL MODSEQ (12121231000))\r\n"
        );
        let mut f = FetchResponse::new(3);
        f.binary(&[1, 2], None, Some(b"a\0b"))
            .binary(&[], Some(5), Some(b"x"))
            .binary_size(&[1], 2048)
            .rfc822("RFC822.HEADER", b"A: b\r\n\r\n")
            .raw("X-GUID", b"\"abc\"");
        let mut out = Vec::new();
        f.finish_into(&mut out);
        assert_eq!(
            out,
            b"* 3 FETCH (BINARY[1.2] ~{3}\r\na\0b BINARY[]<5> {1}\r\nx BINARY.SIZE[1] 2048 RFC822.HEADER {8}\r\nA: b\r\n\r\n X-GUID \"abc\")\r\n"
        );
        assert_eq!(FetchResponse::new(1).finish(), b"* 1 FETCH ()\r\n");
    }
}
