//! FETCH data items (RFC 9051 §6.4.5, RFC 3501 §6.4.5), with BINARY
//! (RFC 3516 §4.2) and MODSEQ (RFC 7162 §3.1.4).
//!
//! The macros ALL, FAST and FULL are expanded here, in the RFC's order:
//! ALL is FLAGS INTERNALDATE RFC822.SIZE ENVELOPE, FAST the first three,
//! FULL is ALL and BODY. A section is what the client asked for, and is
//! echoed back in the response (`BODY.PEEK[HEADER.FIELDS (From)]` is
//! answered as `BODY[HEADER.FIELDS (From)]`, the field names as sent).

use std::fmt;

use super::command::Fault;
use super::lexer::{INVALID, Lexer, MISSING, Res, is_atom_char};

/// One data item of FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    /// `RFC822.SIZE`.
    Rfc822Size,
    /// `RFC822`: as `BODY[]` (and sets \Seen), answered as `RFC822`.
    Rfc822,
    /// `RFC822.HEADER`: as `BODY.PEEK[HEADER]`, answered as `RFC822.HEADER`.
    Rfc822Header,
    /// `RFC822.TEXT`: as `BODY[TEXT]`, answered as `RFC822.TEXT`.
    Rfc822Text,
    /// `BODY` without a section: BODYSTRUCTURE without extension data.
    Body,
    BodyStructure,
    Uid,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        part: Vec<u32>,
    },
    /// `MODSEQ` (RFC 7162 §3.1.4.1).
    ModSeq,
}

impl FetchAttr {
    /// Whether fetching this sets `\Seen` (RFC 9051 §6.4.5: BODY[...],
    /// BINARY[...], RFC822, RFC822.TEXT).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { peek: false, .. }
                | FetchAttr::Binary { peek: false, .. }
        )
    }
}

/// `section-spec`: part numbers (`1.2.3`, empty for the whole message)
/// and what of that part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// `HEADER.FIELDS (..)` or, with `not`, `HEADER.FIELDS.NOT (..)`.
    HeaderFields {
        not: bool,
        fields: Vec<String>,
    },
    Text,
    /// `MIME`: the MIME header of a part (only after a part number).
    Mime,
}

/// `<offset.length>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub offset: u64,
    pub length: u64,
}

fn field_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if !name.is_empty() && name.bytes().all(is_atom_char) {
        f.write_str(name)
    } else {
        f.write_str("\"")?;
        for c in name.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

/// The spec between the brackets: `1.2.HEADER.FIELDS (DATE FROM)`.
impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.part.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        let Some(text) = &self.text else {
            return Ok(());
        };
        if !self.part.is_empty() {
            f.write_str(".")?;
        }
        match text {
            SectionText::Header => f.write_str("HEADER"),
            SectionText::Text => f.write_str("TEXT"),
            SectionText::Mime => f.write_str("MIME"),
            SectionText::HeaderFields { not, fields } => {
                f.write_str(if *not {
                    "HEADER.FIELDS.NOT ("
                } else {
                    "HEADER.FIELDS ("
                })?;
                for (i, name) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    field_name(f, name)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// The name of a fetch item: letters, digits and dots.
fn item_name(lx: &mut Lexer) -> Vec<u8> {
    let mut n = lx.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
    n.make_ascii_uppercase();
    n
}

/// Part numbers from the start of a spec (`1.2.` and what follows).
fn part_numbers(spec: &[u8]) -> Res<(Vec<u32>, &[u8])> {
    let mut part = Vec::new();
    let mut rest = spec;
    while rest.first().is_some_and(u8::is_ascii_digit) {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let num: u64 = rest[..n]
            .iter()
            .try_fold(0u64, |a, &d| {
                a.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or(Fault::Syntax("Invalid section."))?;
        match u32::try_from(num) {
            Ok(0) | Err(_) => return Err(Fault::Syntax("Invalid section.")),
            Ok(v) => part.push(v),
        }
        rest = &rest[n..];
        match rest.first() {
            None => break,
            Some(b'.') => {
                rest = &rest[1..];
                if rest.is_empty() {
                    return Err(Fault::Syntax("Invalid section."));
                }
            }
            Some(_) => return Err(Fault::Syntax("Invalid section.")),
        }
    }
    Ok((part, rest))
}

/// `section`: `[` [section-spec] `]`.
pub(crate) fn section(lx: &mut Lexer) -> Res<Section> {
    lx.expect(b'[')?;
    let spec = lx.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
    let (part, rest) = part_numbers(&spec)?;
    let name = rest.to_ascii_uppercase();
    let text = match name.as_slice() {
        b"" => None,
        b"HEADER" => Some(SectionText::Header),
        b"TEXT" => Some(SectionText::Text),
        b"MIME" if !part.is_empty() => Some(SectionText::Mime),
        b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
            lx.sp()?;
            let fields = lx.list(false, |lx| {
                lx.astring()
                    .map(|f| String::from_utf8_lossy(&f).into_owned())
            })?;
            Some(SectionText::HeaderFields {
                not: name.len() > 13,
                fields,
            })
        }
        _ => return Err(Fault::Syntax("Invalid section.")),
    };
    if !lx.eat(b']') {
        return Err(Fault::Syntax("Missing ']'."));
    }
    Ok(Section { part, text })
}

/// `section-binary`: `[` [section-part] `]`.
fn section_binary(lx: &mut Lexer) -> Res<Vec<u32>> {
    lx.expect(b'[')?;
    let spec = lx.take_while(|b| b.is_ascii_digit() || b == b'.');
    let (part, rest) = part_numbers(&spec)?;
    if !rest.is_empty() || !lx.eat(b']') {
        return Err(Fault::Syntax("Invalid section."));
    }
    Ok(part)
}

/// `partial`: `<` number64 `.` nz-number64 `>`, if one follows.
fn partial(lx: &mut Lexer) -> Res<Option<Partial>> {
    if !lx.eat(b'<') {
        return Ok(None);
    }
    let offset = lx.number64()?;
    lx.expect(b'.')?;
    let length = lx.number64()?;
    if length == 0 {
        return Err(Fault::Syntax("Invalid partial."));
    }
    lx.expect(b'>')?;
    Ok(Some(Partial { offset, length }))
}

/// One `fetch-att`.
pub(crate) fn fetch_att(lx: &mut Lexer) -> Res<FetchAttr> {
    let name = item_name(lx);
    let attr = match name.as_slice() {
        b"ENVELOPE" => FetchAttr::Envelope,
        b"FLAGS" => FetchAttr::Flags,
        b"INTERNALDATE" => FetchAttr::InternalDate,
        b"RFC822.SIZE" => FetchAttr::Rfc822Size,
        b"RFC822" => FetchAttr::Rfc822,
        b"RFC822.HEADER" => FetchAttr::Rfc822Header,
        b"RFC822.TEXT" => FetchAttr::Rfc822Text,
        b"BODYSTRUCTURE" => FetchAttr::BodyStructure,
        b"UID" => FetchAttr::Uid,
        b"MODSEQ" => FetchAttr::ModSeq,
        b"BODY" if lx.peek() != Some(b'[') => FetchAttr::Body,
        b"BODY" | b"BODY.PEEK" => {
            let section = section(lx)?;
            FetchAttr::BodySection {
                peek: name.len() > 4,
                section,
                partial: partial(lx)?,
            }
        }
        b"BINARY" | b"BINARY.PEEK" => {
            let part = section_binary(lx)?;
            FetchAttr::Binary {
                peek: name.len() > 6,
                part,
                partial: partial(lx)?,
            }
        }
        b"BINARY.SIZE" => FetchAttr::BinarySize {
            part: section_binary(lx)?,
        },
        b"" => return Err(if lx.at_end() { MISSING } else { INVALID }),
        _ => {
            return Err(Fault::UnknownArgument(
                String::from_utf8_lossy(&name).into_owned(),
            ));
        }
    };
    match lx.peek() {
        None | Some(b' ') | Some(b')') => Ok(attr),
        Some(_) => Err(INVALID),
    }
}

/// The items of FETCH: a macro, one item, or a parenthesised list.
pub(crate) fn fetch_items(lx: &mut Lexer) -> Res<Vec<FetchAttr>> {
    use FetchAttr::*;
    if lx.peek() == Some(b'(') {
        return lx.list(false, fetch_att);
    }
    if lx.eat_keyword(b"ALL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]);
    }
    if lx.eat_keyword(b"FAST") {
        return Ok(vec![Flags, InternalDate, Rfc822Size]);
    }
    if lx.eat_keyword(b"FULL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
    }
    Ok(vec![fetch_att(lx)?])
}

#[cfg(test)]
mod tests {
    use super::super::lexer::Part;
    use super::*;

    fn items(s: &str) -> Res<Vec<FetchAttr>> {
        let mut lx = Lexer::new(vec![Part::Text(s.as_bytes().to_vec())]);
        let r = fetch_items(&mut lx)?;
        if !lx.at_end() {
            return Err(Fault::Syntax("trailing"));
        }
        Ok(r)
    }

    fn body(
        peek: bool,
        part: &[u32],
        text: Option<SectionText>,
        partial: Option<(u64, u64)>,
    ) -> FetchAttr {
        FetchAttr::BodySection {
            peek,
            section: Section {
                part: part.to_vec(),
                text,
            },
            partial: partial.map(|(offset, length)| Partial { offset, length }),
        }
    }

    #[test]
    fn macros_and_simple_items() {
        use FetchAttr::*;
        assert_eq!(
            items("ALL").unwrap(),
            [Flags, InternalDate, Rfc822Size, Envelope]
        );
        assert_eq!(items("fast").unwrap(), [Flags, InternalDate, Rfc822Size]);
        assert_eq!(
            items("FULL").unwrap(),
            [Flags, InternalDate, Rfc822Size, Envelope, Body]
        );
        assert_eq!(items("FLAGS").unwrap(), [Flags]);
        assert_eq!(
            items("(UID RFC822.SIZE FLAGS BODYSTRUCTURE ENVELOPE INTERNALDATE MODSEQ RFC822 RFC822.HEADER RFC822.TEXT BODY)")
                .unwrap(),
            [Uid, Rfc822Size, Flags, BodyStructure, Envelope, InternalDate, ModSeq, Rfc822, Rfc822Header, Rfc822Text, Body]
        );
        assert!(items("(ALL)").is_err());
        assert!(items("()").is_err());
        assert_eq!(
            items("(FLAGS FOO)"),
            Err(Fault::UnknownArgument("FOO".into()))
        );
        assert!(items("FLAGSX").is_err());
        assert!(items("(FLAGS").is_err());
    }

    #[test]
    fn sections() {
        assert_eq!(items("BODY[]").unwrap(), [body(false, &[], None, None)]);
        assert_eq!(
            items("BODY.PEEK[]<0.2048>").unwrap(),
            [body(true, &[], None, Some((0, 2048)))]
        );
        assert_eq!(
            items("body.peek[1.2.3]").unwrap(),
            [body(true, &[1, 2, 3], None, None)]
        );
        assert_eq!(
            items("BODY[1.2.MIME]").unwrap(),
            [body(false, &[1, 2], Some(SectionText::Mime), None)]
        );
        assert_eq!(
            items("BODY[4.2.HEADER]<10.5>").unwrap(),
            [body(
                false,
                &[4, 2],
                Some(SectionText::Header),
                Some((10, 5))
            )]
        );
        assert_eq!(
            items("BODY[TEXT]").unwrap(),
            [body(false, &[], Some(SectionText::Text), None)]
        );
        let fields = items("BODY.PEEK[HEADER.FIELDS (DATE FROM \"X-Odd Name\")]").unwrap();
        assert_eq!(
            fields,
            [body(
                true,
                &[],
                Some(SectionText::HeaderFields {
                    not: false,
                    fields: vec!["DATE".into(), "FROM".into(), "X-Odd Name".into()]
                }),
                None
            )]
        );
        let FetchAttr::BodySection { section, .. } = &fields[0] else {
            unreachable!()
        };
        assert_eq!(
            section.to_string(),
            "HEADER.FIELDS (DATE FROM \"X-Odd Name\")"
        );
        let not = items("BODY[1.HEADER.FIELDS.NOT (Received)]").unwrap();
        let FetchAttr::BodySection { section, .. } = &not[0] else {
            unreachable!()
        };
        assert_eq!(section.to_string(), "1.HEADER.FIELDS.NOT (Received)");
        for bad in [
            "BODY[MIME]",
            "BODY[0]",
            "BODY[1.]",
            "BODY[1..2]",
            "BODY[FOO]",
            "BODY[HEADER.FIELDS]",
            "BODY[HEADER.FIELDS ()]",
            "BODY[1",
            "BODY[]<0.0>",
            "BODY[]<5>",
            "BODY.PEEK",
            "BODY[] ",
        ] {
            assert!(items(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_items() {
        assert_eq!(
            items("(BINARY[1] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[2] BINARY[])").unwrap(),
            [
                FetchAttr::Binary {
                    peek: false,
                    part: vec![1],
                    partial: None
                },
                FetchAttr::Binary {
                    peek: true,
                    part: vec![1, 2],
                    partial: Some(Partial {
                        offset: 0,
                        length: 100
                    })
                },
                FetchAttr::BinarySize { part: vec![2] },
                FetchAttr::Binary {
                    peek: false,
                    part: vec![],
                    partial: None
                },
            ]
        );
        assert!(items("BINARY[TEXT]").is_err());
        assert!(items("BINARY.SIZE[1]<0.5>").is_err());
        assert!(FetchAttr::Rfc822.sets_seen());
        assert!(!body(true, &[], None, None).sets_seen());
        assert!(body(false, &[], None, None).sets_seen());
    }
}
