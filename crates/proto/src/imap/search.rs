//! Search keys (RFC 3501 §6.4.4, RFC 9051 §6.4.4), with MODSEQ (RFC
//! 7162 §3.1.5), `$` (RFC 5182), WITHIN's OLDER/YOUNGER (RFC 5032), the
//! ESEARCH return options (RFC 4731 §3.1) and the sort criteria and
//! thread algorithms of SORT and THREAD (RFC 5256).
//!
//! Keys form a tree: a list of keys side by side is [`SearchKey::And`]
//! (at the top level and inside parentheses), NOT and OR take keys. A
//! search string is the astring's octets as UTF-8 (invalid sequences
//! replaced); a session that takes a CHARSET other than US-ASCII and
//! UTF-8 answers `NO [BADCHARSET (US-ASCII UTF-8)]` (RFC 9051 §6.4.4)
//! before looking at them. Nesting deeper than [`super::lexer`]'s limit
//! (64) is refused rather than recursed into.

use super::command::Fault;
use super::datetime::Date;
use super::lexer::{INVALID, Lexer, MAX_DEPTH, MISSING, Res, is_atom_char};
use super::sequence::SequenceSet;

/// One search key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    /// INTERNALDATE before the date (the server's time zone).
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    /// `HEADER field-name string` (an empty string: the field exists).
    Header(String, String),
    Keyword(String),
    Larger(u64),
    /// rev1: `\Recent` and not `\Seen`.
    New,
    Not(Box<SearchKey>),
    /// rev1: not `\Recent`.
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// Message sequence numbers (or `$`).
    SequenceSet(SequenceSet),
    /// All of these.
    And(Vec<SearchKey>),
    /// `MODSEQ ["entry" type] n` (RFC 7162 §3.1.5): a mod-sequence at
    /// least `modseq`.
    ModSeq {
        entry: Option<ModSeqEntry>,
        modseq: u64,
    },
    /// `OLDER n` (RFC 5032): INTERNALDATE more than n seconds ago.
    Older(u32),
    /// `YOUNGER n` (RFC 5032): INTERNALDATE at most n seconds ago.
    Younger(u32),
}

/// The metadata item of a MODSEQ key: `"/flags/\\Seen" priv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModSeqEntry {
    /// The entry name (`/flags/\Seen`), unquoted.
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Private,
    Shared,
    All,
}

/// ESEARCH's `RETURN (...)` options (RFC 4731 §3.1, RFC 5182 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    /// SEARCHRES: keep the result as `$`.
    Save,
}

/// A SORT criterion (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// A THREAD algorithm (RFC 5256 §3; REFS from RFC 5957's companion
/// draft, which Dovecot offers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
    Refs,
    /// Another algorithm name, upper-cased; the session answers NO.
    Other(String),
}

fn text(lx: &mut Lexer) -> Res<String> {
    lx.sp()?;
    let s = lx.astring()?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

/// `date`: date-text or DQUOTE date-text DQUOTE.
fn date(lx: &mut Lexer) -> Res<Date> {
    lx.sp()?;
    let raw = if lx.peek() == Some(b'"') {
        lx.quoted()?
    } else {
        lx.take_while(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    Date::parse(&raw).ok_or(Fault::Syntax("Invalid search date parameter."))
}

fn sequence_set(lx: &mut Lexer) -> Res<SequenceSet> {
    let raw = lx.take_while(|b| b.is_ascii_digit() || matches!(b, b'*' | b':' | b',' | b'$'));
    SequenceSet::parse(&raw).ok_or(Fault::Syntax("Invalid messageset"))
}

/// A sequence set after a space.
pub(crate) fn sp_sequence_set(lx: &mut Lexer) -> Res<SequenceSet> {
    lx.sp()?;
    if lx.at_end() {
        return Err(MISSING);
    }
    sequence_set(lx)
}

fn keyword_arg(lx: &mut Lexer) -> Res<String> {
    lx.sp()?;
    let k = lx.take_while(is_atom_char);
    if k.is_empty() {
        return Err(INVALID);
    }
    Ok(String::from_utf8_lossy(&k).into_owned())
}

/// One search key.
pub(crate) fn search_key(lx: &mut Lexer, depth: usize) -> Res<SearchKey> {
    use SearchKey::*;
    if depth > MAX_DEPTH {
        return Err(Fault::Syntax("Search keys nested too deeply."));
    }
    match lx.peek() {
        Some(b'(') => {
            let mut keys = lx.list(false, |lx| search_key(lx, depth + 1))?;
            return Ok(if keys.len() == 1 {
                keys.remove(0)
            } else {
                And(keys)
            });
        }
        Some(b'0'..=b'9' | b'*' | b'$') => return sequence_set(lx).map(SequenceSet),
        None => return Err(MISSING),
        _ => {}
    }
    let word = lx.keyword();
    Ok(match word.as_slice() {
        b"ALL" => All,
        b"ANSWERED" => Answered,
        b"BCC" => Bcc(text(lx)?),
        b"BEFORE" => Before(date(lx)?),
        b"BODY" => Body(text(lx)?),
        b"CC" => Cc(text(lx)?),
        b"DELETED" => Deleted,
        b"DRAFT" => Draft,
        b"FLAGGED" => Flagged,
        b"FROM" => From(text(lx)?),
        b"HEADER" => {
            let name = text(lx)?;
            Header(name, text(lx)?)
        }
        b"KEYWORD" => Keyword(keyword_arg(lx)?),
        b"LARGER" => {
            lx.sp()?;
            Larger(lx.number64()?)
        }
        b"NEW" => New,
        b"NOT" => {
            lx.sp()?;
            Not(Box::new(search_key(lx, depth + 1)?))
        }
        b"OLD" => Old,
        b"ON" => On(date(lx)?),
        b"OR" => {
            lx.sp()?;
            let a = search_key(lx, depth + 1)?;
            lx.sp()?;
            let b = search_key(lx, depth + 1)?;
            Or(Box::new(a), Box::new(b))
        }
        b"RECENT" => Recent,
        b"SEEN" => Seen,
        b"SENTBEFORE" => SentBefore(date(lx)?),
        b"SENTON" => SentOn(date(lx)?),
        b"SENTSINCE" => SentSince(date(lx)?),
        b"SINCE" => Since(date(lx)?),
        b"SMALLER" => {
            lx.sp()?;
            Smaller(lx.number64()?)
        }
        b"SUBJECT" => Subject(text(lx)?),
        b"TEXT" => Text(text(lx)?),
        b"TO" => To(text(lx)?),
        b"UID" => Uid(sp_sequence_set(lx)?),
        b"UNANSWERED" => Unanswered,
        b"UNDELETED" => Undeleted,
        b"UNDRAFT" => Undraft,
        b"UNFLAGGED" => Unflagged,
        b"UNKEYWORD" => Unkeyword(keyword_arg(lx)?),
        b"UNSEEN" => Unseen,
        b"MODSEQ" => {
            lx.sp()?;
            let entry = if lx.peek() == Some(b'"') {
                let name = String::from_utf8_lossy(&lx.quoted()?).into_owned();
                lx.sp()?;
                let kind = match lx.keyword().as_slice() {
                    b"PRIV" => EntryKind::Private,
                    b"SHARED" => EntryKind::Shared,
                    b"ALL" => EntryKind::All,
                    _ => return Err(INVALID),
                };
                lx.sp()?;
                Some(ModSeqEntry { name, kind })
            } else {
                None
            };
            ModSeq {
                entry,
                modseq: lx.mod_seq_zero()?,
            }
        }
        b"OLDER" => {
            lx.sp()?;
            Older(lx.nz_number()?)
        }
        b"YOUNGER" => {
            lx.sp()?;
            Younger(lx.nz_number()?)
        }
        b"" => return Err(INVALID),
        _ => {
            return Err(Fault::UnknownArgument(
                String::from_utf8_lossy(&word).into_owned(),
            ));
        }
    })
}

/// Keys up to the end of the command, starting at the first: one key,
/// or `And`.
pub(crate) fn search_keys(lx: &mut Lexer) -> Res<SearchKey> {
    let mut keys = vec![search_key(lx, 0)?];
    while lx.more_args() {
        lx.sp()?;
        keys.push(search_key(lx, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

/// `RETURN (...)`, if it comes next.
pub(crate) fn search_return(lx: &mut Lexer) -> Res<Option<Vec<SearchReturn>>> {
    if !lx.eat_keyword(b"RETURN") {
        return Ok(None);
    }
    lx.sp()?;
    let opts = lx.list(true, |lx| {
        Ok(match lx.keyword().as_slice() {
            b"MIN" => SearchReturn::Min,
            b"MAX" => SearchReturn::Max,
            b"ALL" => SearchReturn::All,
            b"COUNT" => SearchReturn::Count,
            b"SAVE" => SearchReturn::Save,
            b"" => return Err(INVALID),
            other => {
                return Err(Fault::UnknownArgument(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        })
    })?;
    Ok(Some(opts))
}

/// `sort-criteria`: `(` [REVERSE] key *(SP [REVERSE] key) `)`.
pub(crate) fn sort_criteria(lx: &mut Lexer) -> Res<Vec<SortCriterion>> {
    lx.list(false, |lx| {
        let reverse = lx.eat_keyword(b"REVERSE");
        if reverse {
            lx.sp()?;
        }
        let key = match lx.keyword().as_slice() {
            b"ARRIVAL" => SortKey::Arrival,
            b"CC" => SortKey::Cc,
            b"DATE" => SortKey::Date,
            b"FROM" => SortKey::From,
            b"SIZE" => SortKey::Size,
            b"SUBJECT" => SortKey::Subject,
            b"TO" => SortKey::To,
            b"DISPLAYFROM" => SortKey::DisplayFrom,
            b"DISPLAYTO" => SortKey::DisplayTo,
            b"" => return Err(INVALID),
            other => {
                return Err(Fault::UnknownArgument(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        };
        Ok(SortCriterion { reverse, key })
    })
}

pub(crate) fn thread_algorithm(lx: &mut Lexer) -> Res<ThreadAlgorithm> {
    let name = lx.keyword();
    Ok(match name.as_slice() {
        b"ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        b"REFERENCES" => ThreadAlgorithm::References,
        b"REFS" => ThreadAlgorithm::Refs,
        b"" => return Err(if lx.at_end() { MISSING } else { INVALID }),
        _ => ThreadAlgorithm::Other(String::from_utf8_lossy(&name).into_owned()),
    })
}

/// The charset of SORT and THREAD (required there): an astring.
pub(crate) fn charset(lx: &mut Lexer) -> Res<String> {
    Ok(String::from_utf8_lossy(&lx.astring()?).into_owned())
}
