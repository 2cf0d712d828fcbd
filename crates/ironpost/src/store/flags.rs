//! Message flags in Maildir file names, and the base name before them.
//!
//! A file in `cur/` is named `<base>:2,<flags>` (D. J. Bernstein's
//! Maildir spec, cr.yp.to/proto/maildir.html); a file in `new/` has no
//! info part yet. Some tools write `!` instead of `:` (file systems where
//! `:` is not allowed); both are read. The flags are letters in ASCII
//! order:
//!
//! | letter | meaning            | IMAP (RFC 9051 §2.3.2) |
//! |--------|--------------------|------------------------|
//! | `D`    | draft              | `\Draft`               |
//! | `F`    | flagged            | `\Flagged`             |
//! | `P`    | passed (forwarded) | —                      |
//! | `R`    | replied            | `\Answered`            |
//! | `S`    | seen               | `\Seen`                |
//! | `T`    | trashed            | `\Deleted`             |
//! | `a`..`z` | keywords 0..25, named in `dovecot-keywords` (Dovecot) | keywords |
//!
//! Dovecot extends the field to `<flags>[,<other fields>]` and leaves
//! whatever follows the comma alone when it changes flags; so does
//! [`with_flags`].

use std::fmt;

/// The two separators of the info part: the spec's `:2,` and the `!2,`
/// some tools use where `:` cannot be in a file name.
const INFO_SEPS: [&str; 2] = [":2,", "!2,"];

/// Splits a Maildir file name into its base name (what identifies the
/// message for its whole life) and its info part after `:2,` (or `!2,`),
/// if any.
pub fn split_info(name: &str) -> (&str, Option<&str>) {
    // The first `:2,` or `!2,` (a byte scan: this runs for every file of
    // every snapshot).
    let b = name.as_bytes();
    let at = (0..b.len().saturating_sub(2))
        .find(|&i| (b[i] == b':' || b[i] == b'!') && b[i + 1] == b'2' && b[i + 2] == b',');
    debug_assert_eq!(at, INFO_SEPS.iter().filter_map(|sep| name.find(sep)).min());
    match at {
        Some(i) => (&name[..i], Some(&name[i + 3..])),
        None => (name, None),
    }
}

/// The base name of a Maildir file name: everything before `:2,`/`!2,`.
pub fn base_name(name: &str) -> &str {
    split_info(name).0
}

/// The file name for `name`'s message with `flags`: `<base>:2,<flags>`,
/// keeping the separator `name` had (`:` for a name without info) and
/// anything after a comma in its info (Dovecot's extension fields).
pub fn with_flags(name: &str, flags: &Flags) -> String {
    let (base, info) = split_info(name);
    let sep = name.as_bytes().get(base.len()).copied().unwrap_or(b':');
    let rest = info
        .and_then(|i| i.find(',').map(|p| &i[p..]))
        .unwrap_or("");
    format!("{base}{}2,{flags}{rest}", sep as char)
}

/// A value of `,<key>=<digits>` in a base name (`S` for the stored size,
/// `W` for the size with CRLF line ends, as Dovecot names files).
pub fn name_field(base: &str, key: char) -> Option<u64> {
    base.split(',').skip(1).find_map(|field| {
        let value = field.strip_prefix(key)?.strip_prefix('=')?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value.parse().ok()
    })
}

/// The flags of one message, as its file name holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// `S`: `\Seen`.
    pub seen: bool,
    /// `R` (replied): `\Answered`.
    pub answered: bool,
    /// `F`: `\Flagged`.
    pub flagged: bool,
    /// `T` (trashed): `\Deleted`.
    pub deleted: bool,
    /// `D`: `\Draft`.
    pub draft: bool,
    /// `P` (passed: forwarded, resent, bounced). No IMAP system flag; kept
    /// so that changing other flags does not lose it.
    pub passed: bool,
    /// Keyword letters `a`..`z` (Dovecot: keyword N of `dovecot-keywords`
    /// is the letter `a` + N), sorted, each once.
    pub keywords: Vec<char>,
}

impl Flags {
    /// Flags from the letters of an info part (after `2,`; anything from
    /// a comma on is not flags). Letters the spec does not define are
    /// ignored.
    pub fn parse(letters: &str) -> Flags {
        let mut flags = Flags::default();
        for c in letters.chars().take_while(|&c| c != ',') {
            match c {
                'D' => flags.draft = true,
                'F' => flags.flagged = true,
                'P' => flags.passed = true,
                'R' => flags.answered = true,
                'S' => flags.seen = true,
                'T' => flags.deleted = true,
                'a'..='z' => flags.keywords.push(c),
                _ => {}
            }
        }
        flags.keywords.sort_unstable();
        flags.keywords.dedup();
        flags
    }

    /// The flags in a Maildir file name (none for a name without info, as
    /// in `new/`).
    pub fn from_file_name(name: &str) -> Flags {
        split_info(name).1.map(Flags::parse).unwrap_or_default()
    }
}

/// The letters, in ASCII order as the spec requires (`DFPRST`, then
/// keywords `a`..`z`).
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let system = [
            (self.draft, 'D'),
            (self.flagged, 'F'),
            (self.passed, 'P'),
            (self.answered, 'R'),
            (self.seen, 'S'),
            (self.deleted, 'T'),
        ];
        for (set, letter) in system {
            if set {
                f.write_str(letter.encode_utf8(&mut [0; 4]))?;
            }
        }
        let mut keywords: Vec<char> = self
            .keywords
            .iter()
            .copied()
            .filter(char::is_ascii_lowercase)
            .collect();
        keywords.sort_unstable();
        keywords.dedup();
        for k in keywords {
            f.write_str(k.encode_utf8(&mut [0; 4]))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_part_is_split_off() {
        assert_eq!(
            split_info("1.M2P3.h,S=5:2,FS"),
            ("1.M2P3.h,S=5", Some("FS"))
        );
        assert_eq!(split_info("1.M2P3.h,S=5!2,S"), ("1.M2P3.h,S=5", Some("S")));
        assert_eq!(split_info("1.M2P3.h:2,"), ("1.M2P3.h", Some("")));
        assert_eq!(split_info("1.M2P3.h"), ("1.M2P3.h", None));
        // Only `:2,` starts the info part.
        assert_eq!(split_info("a:1,b"), ("a:1,b", None));
        assert_eq!(base_name("x!2,S:2,T"), "x");
    }

    #[test]
    fn sizes_come_from_the_name() {
        let base = "1276528487.M364837P9451.kurkku,S=1355,W=1394";
        assert_eq!(name_field(base, 'S'), Some(1355));
        assert_eq!(name_field(base, 'W'), Some(1394));
        assert_eq!(name_field("1.M2.host", 'W'), None);
        assert_eq!(name_field("1.M2.host,W=", 'W'), None);
        assert_eq!(name_field("1.M2.host,W=1x", 'W'), None);
        assert_eq!(name_field("W=5.host", 'W'), None);
    }

    #[test]
    fn flags_round_trip_in_ascii_order() {
        let all = Flags {
            seen: true,
            answered: true,
            flagged: true,
            deleted: true,
            draft: true,
            passed: true,
            keywords: vec!['a', 'z'],
        };
        assert_eq!(all.to_string(), "DFPRSTaz");
        assert_eq!(Flags::parse("DFPRSTaz"), all);
        // Any order in, sorted out; duplicates and unknown letters go.
        let f = Flags::parse("zSbRSb?X");
        assert_eq!(f.to_string(), "RSbz");
        assert!(f.seen && f.answered && !f.flagged && !f.deleted && !f.draft);
        assert_eq!(f.keywords, vec!['b', 'z']);
        assert_eq!(Flags::parse("").to_string(), "");
        assert_eq!(Flags::parse("S,extra"), Flags::parse("S"));
        for letters in ["", "S", "RS", "DT", "Fab", "PRSTcdq"] {
            assert_eq!(Flags::parse(letters).to_string(), letters);
        }
        // Keywords given out of order are written sorted.
        let k = Flags {
            keywords: vec!['q', 'c', 'q'],
            ..Flags::default()
        };
        assert_eq!(k.to_string(), "cq");
    }

    #[test]
    fn flags_of_file_names() {
        assert!(Flags::from_file_name("1.M2.h,S=1:2,S").seen);
        assert_eq!(Flags::from_file_name("1.M2.h,S=1"), Flags::default());
        let seen = Flags::parse("S");
        assert_eq!(with_flags("1.M2.h,S=1", &seen), "1.M2.h,S=1:2,S");
        assert_eq!(
            with_flags("1.M2.h,S=1:2,RS", &Flags::parse("FS")),
            "1.M2.h,S=1:2,FS"
        );
        assert_eq!(with_flags("1.M2.h!2,R", &seen), "1.M2.h!2,S");
        // Dovecot: nothing after a comma in the info is touched.
        assert_eq!(
            with_flags("1.M2.h:2,S,x=1", &Flags::default()),
            "1.M2.h:2,,x=1"
        );
    }
}
