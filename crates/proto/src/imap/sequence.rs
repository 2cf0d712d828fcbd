//! Sequence sets (RFC 9051 §9 `sequence-set`, RFC 3501 §9), with `*`
//! and the saved search result `$` (RFC 5182 §2.1).
//!
//! A set is what the client wrote: ranges in its order, `*` unresolved.
//! [`SequenceSet::resolve_seq`] and [`SequenceSet::resolve_uid`] turn it
//! into sorted, merged ranges against the mailbox. Per RFC 9051 §9
//! (`seq-number`): `*` is the largest number in use; a range may be
//! written either way round (`5:2` is `2:5`); a message sequence number
//! past the last message, which includes `*` in an empty mailbox, is an
//! error the server answers with BAD; a UID range always includes the
//! largest UID when it names `*` (`559:*` includes the last message even
//! when 559 is larger), and UIDs that no message has are simply not
//! there.
//!
//! [`compact`] writes numbers as the shortest set that keeps their order
//! (`1:3,5`), as COPYUID and APPENDUID need; `Display` writes a set as
//! it is.

use std::fmt;
use std::ops::RangeInclusive;

/// A `seq-number`: a number or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNumber {
    Value(u32),
    /// `*`: the largest number in use.
    Largest,
}

impl SeqNumber {
    fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNumber::Value(n) => n,
            SeqNumber::Largest => largest,
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNumber::Value(n) => write!(f, "{n}"),
            SeqNumber::Largest => f.write_str("*"),
        }
    }
}

/// One element of a set: `first:last`, or one number (`first == last`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub first: SeqNumber,
    pub last: SeqNumber,
}

impl fmt::Display for SeqRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

/// A `sequence-set`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SequenceSet {
    /// Numbers and ranges, as written.
    Ranges(Vec<SeqRange>),
    /// `$`: the result the last `SEARCH RETURN (SAVE)` saved (RFC 5182);
    /// the session keeps it.
    Saved,
}

/// Why a set does not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqError {
    /// A message sequence number, or `*`, in an empty mailbox.
    Empty,
    /// A message sequence number past the last message.
    OutOfRange(u32),
    /// `$`: the session substitutes its saved result.
    Saved,
}

impl fmt::Display for SeqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Dovecot's texts.
            SeqError::Empty => f.write_str("No messages in mailbox"),
            SeqError::OutOfRange(_) => f.write_str("Invalid messageset"),
            SeqError::Saved => f.write_str("No saved search result"),
        }
    }
}

impl std::error::Error for SeqError {}

fn number(s: &[u8]) -> Option<SeqNumber> {
    if s == b"*" {
        return Some(SeqNumber::Largest);
    }
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = s.iter().fold(0, |acc, &d| acc * 10 + u64::from(d - b'0'));
    match u32::try_from(n) {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(SeqNumber::Value(n)),
    }
}

/// Merges sorted ranges that touch or overlap.
fn merge(mut ranges: Vec<RangeInclusive<u32>>) -> Vec<RangeInclusive<u32>> {
    ranges.sort_by_key(|r| *r.start());
    let mut out: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if let Some(last) = out.last_mut()
            && u64::from(*r.start()) <= u64::from(*last.end()) + 1
        {
            if r.end() > last.end() {
                *last = *last.start()..=*r.end();
            }
            continue;
        }
        out.push(r);
    }
    out
}

impl SequenceSet {
    /// Parses `1:3,5,7:*` or `$`. Zero, empty elements and numbers past
    /// 2^32-1 are invalid.
    pub fn parse(s: &[u8]) -> Option<SequenceSet> {
        if s == b"$" {
            return Some(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        for elem in s.split(|&b| b == b',') {
            let mut it = elem.splitn(2, |&b| b == b':');
            let first = number(it.next()?)?;
            let last = match it.next() {
                Some(l) => number(l)?,
                None => first,
            };
            ranges.push(SeqRange { first, last });
        }
        Some(SequenceSet::Ranges(ranges))
    }

    /// One number.
    pub fn single(n: u32) -> SequenceSet {
        SequenceSet::Ranges(vec![SeqRange {
            first: SeqNumber::Value(n),
            last: SeqNumber::Value(n),
        }])
    }

    /// `first:last`.
    pub fn range(first: SeqNumber, last: SeqNumber) -> SequenceSet {
        SequenceSet::Ranges(vec![SeqRange { first, last }])
    }

    /// `1:*`.
    pub fn all() -> SequenceSet {
        SequenceSet::range(SeqNumber::Value(1), SeqNumber::Largest)
    }

    /// The set of these numbers (sorted, merged; 0 left out).
    pub fn from_numbers(nums: impl IntoIterator<Item = u32>) -> SequenceSet {
        let ranges = merge(nums.into_iter().filter(|&n| n > 0).map(|n| n..=n).collect());
        SequenceSet::Ranges(
            ranges
                .into_iter()
                .map(|r| SeqRange {
                    first: SeqNumber::Value(*r.start()),
                    last: SeqNumber::Value(*r.end()),
                })
                .collect(),
        )
    }

    pub fn is_saved(&self) -> bool {
        matches!(self, SequenceSet::Saved)
    }

    /// Whether `*` appears.
    pub fn uses_largest(&self) -> bool {
        match self {
            SequenceSet::Ranges(r) => r
                .iter()
                .any(|r| r.first == SeqNumber::Largest || r.last == SeqNumber::Largest),
            SequenceSet::Saved => false,
        }
    }

    fn ranges(&self) -> Result<&[SeqRange], SeqError> {
        match self {
            SequenceSet::Ranges(r) => Ok(r),
            SequenceSet::Saved => Err(SeqError::Saved),
        }
    }

    /// As message sequence numbers in a mailbox of `count` messages:
    /// sorted, merged ranges within `1..=count`. A number past `count`,
    /// or `*` when `count` is 0, is an error (RFC 9051 §9: BAD).
    pub fn resolve_seq(&self, count: u32) -> Result<Vec<RangeInclusive<u32>>, SeqError> {
        let ranges = self.ranges()?;
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            if count == 0 {
                return Err(match (r.first, r.last) {
                    (SeqNumber::Value(n), _) | (_, SeqNumber::Value(n)) => SeqError::OutOfRange(n),
                    _ => SeqError::Empty,
                });
            }
            let (a, b) = (r.first.resolve(count), r.last.resolve(count));
            if let Some(bad) = [a, b].into_iter().find(|&n| n > count) {
                return Err(SeqError::OutOfRange(bad));
            }
            out.push(a.min(b)..=a.max(b));
        }
        Ok(merge(out))
    }

    /// As UIDs, `*` being `max_uid`, the largest UID in use (0 for an
    /// empty mailbox, where every set is empty): sorted, merged ranges,
    /// which may name UIDs no message has.
    pub fn resolve_uid(&self, max_uid: u32) -> Result<Vec<RangeInclusive<u32>>, SeqError> {
        let ranges = self.ranges()?;
        if max_uid == 0 {
            return Ok(Vec::new());
        }
        Ok(merge(
            ranges
                .iter()
                .map(|r| {
                    let (a, b) = (r.first.resolve(max_uid), r.last.resolve(max_uid));
                    a.min(b)..=a.max(b)
                })
                .collect(),
        ))
    }

    /// Whether `n` is in the set, `*` being `largest` (`$` holds
    /// nothing).
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let Ok(ranges) = self.ranges() else {
            return false;
        };
        ranges.iter().any(|r| {
            let (a, b) = (r.first.resolve(largest), r.last.resolve(largest));
            (a.min(b)..=a.max(b)).contains(&n)
        })
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SequenceSet::Saved => f.write_str("$"),
            SequenceSet::Ranges(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// Numbers as a set in their order, ascending runs joined: `[1, 2, 3, 5,
/// 9, 8]` is `1:3,5,9,8` (COPYUID's two sets must pair up element by
/// element, RFC 4315 §3, so nothing is sorted). Empty for no numbers.
pub fn compact(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut j = i;
        while j + 1 < nums.len() && nums[j].checked_add(1) == Some(nums[j + 1]) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{start}:{}", nums[j]));
        } else {
            out.push_str(&start.to_string());
        }
        i = j + 1;
    }
    out
}

/// Sorted, merged ranges as a set: `1:3,5`.
pub fn compact_ranges(ranges: &[RangeInclusive<u32>]) -> String {
    let mut out = String::new();
    for r in ranges {
        if !out.is_empty() {
            out.push(',');
        }
        if r.start() == r.end() {
            out.push_str(&r.start().to_string());
        } else {
            out.push_str(&format!("{}:{}", r.start(), r.end()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parse_and_display() {
        for s in [
            "1",
            "1:3,5",
            "2,4:7,9,12:*",
            "*",
            "*:4",
            "5:1",
            "$",
            "4294967295",
        ] {
            assert_eq!(set(s).to_string(), s);
        }
        for bad in [
            "",
            "0",
            "1:0",
            ",1",
            "1,",
            "1::2",
            "a",
            "4294967296",
            "1:2:3",
            "$,1",
            "-1",
            " 1",
        ] {
            assert_eq!(SequenceSet::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn resolve_sequence_numbers() {
        assert_eq!(set("1:*").resolve_seq(5), Ok(vec![1..=5]));
        assert_eq!(set("*").resolve_seq(5), Ok(vec![5..=5]));
        assert_eq!(set("*:3").resolve_seq(5), Ok(vec![3..=5]));
        assert_eq!(set("4:2,1,5").resolve_seq(5), Ok(vec![1..=5]));
        assert_eq!(set("1,3,5").resolve_seq(5), Ok(vec![1..=1, 3..=3, 5..=5]));
        assert_eq!(set("2:6").resolve_seq(5), Err(SeqError::OutOfRange(6)));
        // RFC 9051 §9: `*` in an empty mailbox is an error for sequence
        // numbers, and so is any number.
        assert_eq!(set("1:*").resolve_seq(0), Err(SeqError::OutOfRange(1)));
        assert_eq!(set("*").resolve_seq(0), Err(SeqError::Empty));
        assert_eq!(set("$").resolve_seq(3), Err(SeqError::Saved));
    }

    #[test]
    fn resolve_uids() {
        // `559:*` includes the last message even past it.
        assert_eq!(set("559:*").resolve_uid(20), Ok(vec![20..=559]));
        assert_eq!(set("1:*").resolve_uid(20), Ok(vec![1..=20]));
        assert_eq!(set("30:40,1:2,3").resolve_uid(20), Ok(vec![1..=3, 30..=40]));
        // An empty mailbox has no UIDs: nothing, and no error.
        assert_eq!(set("1:*").resolve_uid(0), Ok(vec![]));
        assert_eq!(set("*").resolve_uid(0), Ok(vec![]));
        assert_eq!(
            set("4294967295").resolve_uid(7),
            Ok(vec![4294967295..=4294967295])
        );
        assert!(set("3:*").contains(7, 7));
        assert!(set("9:*").contains(7, 7));
        assert!(set("9:*").contains(8, 7));
        assert!(!set("9:*").contains(6, 7));
        assert!(!SequenceSet::Saved.contains(1, 1));
    }

    #[test]
    fn compact_forms() {
        assert_eq!(compact(&[1, 2, 3, 5]), "1:3,5");
        assert_eq!(compact(&[1, 2, 3, 5, 9, 8]), "1:3,5,9,8");
        assert_eq!(compact(&[]), "");
        assert_eq!(compact(&[7]), "7");
        assert_eq!(compact(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
        assert_eq!(
            SequenceSet::from_numbers([5, 1, 2, 3, 3, 0]).to_string(),
            "1:3,5"
        );
        assert_eq!(compact_ranges(&[1..=3, 5..=5]), "1:3,5");
    }
}
