//! Tokens of a command (RFC 9051 §9, RFC 3501 §9): the pieces the reader
//! assembles ([`Part`]), the literal header at the end of a line
//! ([`literal_header`]), and the cursor the command parsers read atoms,
//! strings, numbers and lists with (`Lexer`, crate-private).
//!
//! A command is text with literals in it: `A1 LOGIN {4}` CRLF `fred`
//! ` {6}` CRLF `secret` CRLF is the parts `Text("A1 LOGIN ")`,
//! `Literal("fred")`, `Text(" ")`, `Literal("secret")`, `Text("")`. The
//! reader strips the line ends and the `{n}` headers; the parts always
//! alternate, starting and ending with text.
//!
//! Character classes follow the ABNF, with the leniency noted on each
//! function: what clients send that the grammar does not allow, and that
//! cannot be mistaken for something else.

use super::command::Fault;

/// One piece of a command as the reader assembled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Command text between literals, without line ends or literal
    /// headers.
    Text(Vec<u8>),
    /// A literal's octets.
    Literal(Literal),
}

/// The octets of a literal and how they were announced.
#[derive(Clone, PartialEq, Eq)]
pub struct Literal {
    pub data: Vec<u8>,
    /// `~{n}`: a literal8 (RFC 3516 §4.4), which may hold NUL.
    pub binary: bool,
    /// `{n}` (the server sent a continuation) rather than `{n+}`.
    pub sync: bool,
}

impl std::fmt::Debug for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Literal({} octets{}{})",
            self.data.len(),
            if self.binary { ", binary" } else { "" },
            if self.sync { "" } else { ", non-sync" }
        )
    }
}

/// A literal announced at the end of a line: `{n}`, `{n+}`, `~{n}`,
/// `~{n+}` (RFC 9051 §4.3, RFC 7888 §3, RFC 3516 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralHeader {
    /// Offset of the header (its `~` or `{`) in the line.
    pub start: usize,
    /// The announced size; `None` when it does not fit 64 bits.
    pub size: Option<u64>,
    /// `+`: the client sends the octets without waiting.
    pub non_sync: bool,
    /// `~`: literal8.
    pub binary: bool,
}

/// The literal header that ends `line` (without its line end), if any.
/// The `{` may follow anything: a client that wrote `{n}` waits for a
/// continuation whatever came before, and the parser reports what is
/// wrong once the command is complete.
pub fn literal_header(line: &[u8]) -> Option<LiteralHeader> {
    let body = line.strip_suffix(b"}")?;
    let (body, non_sync) = match body.strip_suffix(b"+") {
        Some(b) => (b, true),
        None => (body, false),
    };
    let ndigits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if ndigits == 0 {
        return None;
    }
    let open = body.len() - ndigits;
    if open == 0 || body[open - 1] != b'{' {
        return None;
    }
    let brace = open - 1;
    let size = body[open..].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let binary = brace > 0 && line[brace - 1] == b'~';
    Some(LiteralHeader {
        start: if binary { brace - 1 } else { brace },
        size,
        non_sync,
        binary,
    })
}

/// Whether the reader is inside a quoted string, so that a `{` there is
/// not taken for a literal. Fed every octet of a line's text.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quoting {
    in_quote: bool,
    escaped: bool,
}

impl Quoting {
    pub fn step(&mut self, b: u8) {
        if self.in_quote {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_quote = false;
            }
        } else if b == b'"' {
            self.in_quote = true;
        }
    }

    pub fn in_quote(&self) -> bool {
        self.in_quote
    }
}

/// ATOM-CHAR: any CHAR except atom-specials (`(`, `)`, `{`, SP, CTL,
/// `%`, `*`, `"`, `\`, `]`).
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR (ATOM-CHAR and `]`), and, leniently, `%`, `*` and 8-bit
/// octets (unquoted UTF-8 user names, passwords with `*`): in an astring
/// they cannot mean anything else.
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b']' | b'%' | b'*') || b >= 0x80
}

/// list-char (ATOM-CHAR, list-wildcards, resp-specials), and 8-bit octets.
pub fn is_list_char(b: u8) -> bool {
    is_astring_char(b)
}

/// A tag: any ASTRING-CHAR except `+` (strictly: no wildcards, no 8-bit).
pub fn is_tag_char(b: u8) -> bool {
    (is_atom_char(b) || b == b']') && b != b'+'
}

/// The tag at the start of a command's text: the octets before the first
/// space, if there is a space and they are a valid tag.
pub fn tag_of(text: &[u8]) -> Option<String> {
    let end = text.iter().position(|&b| b == b' ')?;
    let tag = &text[..end];
    if tag.is_empty() || !tag.iter().all(|&b| is_tag_char(b)) {
        return None;
    }
    Some(String::from_utf8_lossy(tag).into_owned())
}

pub(crate) type Res<T> = Result<T, Fault>;

pub(crate) const INVALID: Fault = Fault::Syntax("Invalid arguments.");
pub(crate) const MISSING: Fault = Fault::Syntax("Missing arguments.");

/// Deepest nesting of parenthesised lists and NOT/OR a command may have
/// (search keys are parsed recursively).
pub(crate) const MAX_DEPTH: usize = 64;

/// A cursor over a complete command.
pub(crate) struct Lexer {
    parts: Vec<Part>,
    idx: usize,
    pos: usize,
}

impl Lexer {
    pub fn new(mut parts: Vec<Part>) -> Lexer {
        if !matches!(parts.first(), Some(Part::Text(_))) {
            parts.insert(0, Part::Text(Vec::new()));
        }
        Lexer {
            parts,
            idx: 0,
            pos: 0,
        }
    }

    /// The rest of the current text part.
    fn text(&self) -> &[u8] {
        match self.parts.get(self.idx) {
            Some(Part::Text(t)) => &t[self.pos.min(t.len())..],
            _ => &[],
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.text().first().copied()
    }

    pub fn bump(&mut self) {
        if !self.text().is_empty() {
            self.pos += 1;
        }
    }

    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The current text is used up and a literal comes next.
    pub fn at_literal(&self) -> bool {
        self.text().is_empty() && matches!(self.parts.get(self.idx + 1), Some(Part::Literal(_)))
    }

    /// Nothing is left.
    pub fn at_end(&self) -> bool {
        self.text().is_empty() && self.idx + 1 >= self.parts.len()
    }

    pub fn take_literal(&mut self) -> Option<Literal> {
        if !self.at_literal() {
            return None;
        }
        let lit = match &mut self.parts[self.idx + 1] {
            Part::Literal(l) => std::mem::replace(
                l,
                Literal {
                    data: Vec::new(),
                    binary: l.binary,
                    sync: l.sync,
                },
            ),
            Part::Text(_) => return None,
        };
        self.idx += 2;
        self.pos = 0;
        Some(lit)
    }

    /// Expects `b`; `Missing arguments.` at the end, `Invalid arguments.`
    /// otherwise.
    pub fn expect(&mut self, b: u8) -> Res<()> {
        if self.eat(b) {
            Ok(())
        } else if self.at_end() {
            Err(MISSING)
        } else {
            Err(INVALID)
        }
    }

    /// One or more spaces (strictly one; clients that double them are
    /// accepted).
    pub fn sp(&mut self) -> Res<()> {
        if self.skip_sp() {
            Ok(())
        } else if self.at_end() {
            Err(MISSING)
        } else {
            Err(INVALID)
        }
    }

    /// Skips spaces; whether there were any.
    pub fn skip_sp(&mut self) -> bool {
        let n = self.text().iter().take_while(|&&b| b == b' ').count();
        self.pos += n;
        n > 0
    }

    /// Whether a space and then something other than the end follow
    /// (without consuming anything).
    pub fn more_args(&self) -> bool {
        let t = self.text();
        let n = t.iter().take_while(|&&b| b == b' ').count();
        n > 0 && (n < t.len() || self.idx + 1 < self.parts.len())
    }

    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> Vec<u8> {
        let n = self.text().iter().take_while(|&&b| f(b)).count();
        let out = self.text()[..n].to_vec();
        self.pos += n;
        out
    }

    /// An upper-cased run of atom characters (maybe empty).
    pub fn keyword(&mut self) -> Vec<u8> {
        let mut k = self.take_while(is_atom_char);
        k.make_ascii_uppercase();
        k
    }

    /// Consumes `word` (case-insensitive) if it is the whole atom ahead.
    pub fn eat_keyword(&mut self, word: &[u8]) -> bool {
        let t = self.text();
        if t.len() >= word.len()
            && t[..word.len()].eq_ignore_ascii_case(word)
            && !t.get(word.len()).is_some_and(|&b| is_atom_char(b))
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// `atom`: one or more ATOM-CHARs.
    pub fn atom(&mut self) -> Res<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(if self.at_end() { MISSING } else { INVALID });
        }
        Ok(String::from_utf8_lossy(&a).into_owned())
    }

    /// `quoted`: DQUOTE *QUOTED-CHAR DQUOTE. A backslash may escape any
    /// octet (the grammar allows only `"` and `\`), and 8-bit octets are
    /// taken as they are (RFC 9051 allows UTF-8 here; RFC 3501 clients
    /// send it anyway).
    pub fn quoted(&mut self) -> Res<Vec<u8>> {
        if !self.eat(b'"') {
            return Err(INVALID);
        }
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(Fault::Syntax("Missing '\"'.")),
                Some(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        Some(b) => {
                            out.push(b);
                            self.bump();
                        }
                        None => return Err(Fault::Syntax("Missing '\"'.")),
                    }
                }
                Some(0) => return Err(Fault::Syntax("NUL in quoted string.")),
                Some(b) => {
                    out.push(b);
                    self.bump();
                }
            }
        }
    }

    /// `string`: quoted or literal.
    pub fn string(&mut self) -> Res<Vec<u8>> {
        if let Some(lit) = self.take_literal() {
            return Ok(lit.data);
        }
        match self.peek() {
            Some(b'"') => self.quoted(),
            None => Err(MISSING),
            Some(_) => Err(Fault::Syntax("Expected string.")),
        }
    }

    /// `astring`: 1*ASTRING-CHAR or string.
    pub fn astring(&mut self) -> Res<Vec<u8>> {
        if self.at_literal() || self.peek() == Some(b'"') {
            return self.string();
        }
        let a = self.take_while(is_astring_char);
        if a.is_empty() {
            return Err(if self.at_end() { MISSING } else { INVALID });
        }
        Ok(a)
    }

    /// `nstring`: NIL or string.
    pub fn nstring(&mut self) -> Res<Option<Vec<u8>>> {
        if self.eat_keyword(b"NIL") {
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// `list-mailbox`: 1*list-char or string.
    pub fn list_mailbox(&mut self) -> Res<Vec<u8>> {
        if self.at_literal() || self.peek() == Some(b'"') {
            return self.string();
        }
        let a = self.take_while(is_list_char);
        if a.is_empty() {
            return Err(if self.at_end() { MISSING } else { INVALID });
        }
        Ok(a)
    }

    fn digits(&mut self) -> Res<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            return Err(if self.at_end() {
                MISSING
            } else {
                Fault::Syntax("Expected number.")
            });
        }
        d.iter()
            .try_fold(0u64, |acc, &c| {
                acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            })
            .ok_or(Fault::Syntax("Number too large."))
    }

    /// `number`: a 32-bit unsigned number.
    pub fn number(&mut self) -> Res<u32> {
        u32::try_from(self.digits()?).map_err(|_| Fault::Syntax("Number too large."))
    }

    /// `nz-number`.
    pub fn nz_number(&mut self) -> Res<u32> {
        match self.number()? {
            0 => Err(Fault::Syntax("Expected non-zero number.")),
            n => Ok(n),
        }
    }

    /// `number64` (RFC 9051): 0 ..= 2^63-1.
    pub fn number64(&mut self) -> Res<u64> {
        let n = self.digits()?;
        if n > i64::MAX as u64 {
            return Err(Fault::Syntax("Number too large."));
        }
        Ok(n)
    }

    /// `mod-sequence-value` (RFC 7162 §7): 1 ..= 2^63-1.
    pub fn mod_seq(&mut self) -> Res<u64> {
        match self.number64()? {
            0 => Err(Fault::Syntax("Invalid modseq.")),
            n => Ok(n),
        }
    }

    /// `mod-sequence-valzer`: 0 ..= 2^63-1.
    pub fn mod_seq_zero(&mut self) -> Res<u64> {
        self.number64()
    }

    /// A parenthesised, space-separated list: `(` item *(SP item) `)`,
    /// maybe empty when `empty_ok`.
    pub fn list<T>(
        &mut self,
        empty_ok: bool,
        mut item: impl FnMut(&mut Lexer) -> Res<T>,
    ) -> Res<Vec<T>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        self.skip_sp();
        if self.eat(b')') {
            if !empty_ok {
                return Err(INVALID);
            }
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            let spaced = self.skip_sp();
            if self.eat(b')') {
                return Ok(out);
            }
            if !spaced {
                return Err(if self.at_end() {
                    Fault::Syntax("Missing ')'.")
                } else {
                    INVALID
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lx(parts: &[&[u8]]) -> Lexer {
        // Odd indexes are literals.
        Lexer::new(
            parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if i % 2 == 0 {
                        Part::Text(p.to_vec())
                    } else {
                        Part::Literal(Literal {
                            data: p.to_vec(),
                            binary: false,
                            sync: true,
                        })
                    }
                })
                .collect(),
        )
    }

    #[test]
    fn headers() {
        let h = literal_header(b"A1 LOGIN {5}").unwrap();
        assert_eq!(
            (h.start, h.size, h.non_sync, h.binary),
            (9, Some(5), false, false)
        );
        let h = literal_header(b"A APPEND x ~{12+}").unwrap();
        assert_eq!(
            (h.start, h.size, h.non_sync, h.binary),
            (11, Some(12), true, true)
        );
        let h = literal_header(b"{0}").unwrap();
        assert_eq!((h.start, h.size), (0, Some(0)));
        assert_eq!(
            literal_header(b"a {99999999999999999999999}").unwrap().size,
            None
        );
        assert_eq!(literal_header(b"a {}"), None);
        assert_eq!(literal_header(b"a {+}"), None);
        assert_eq!(literal_header(b"a {5"), None);
        assert_eq!(literal_header(b"a 5}"), None);
        assert_eq!(literal_header(b"a {-5}"), None);
        assert_eq!(literal_header(b"a {5++}"), None);
        assert_eq!(literal_header(b"}"), None);
    }

    #[test]
    fn quoting() {
        let mut q = Quoting::default();
        for &b in br#"a "b\"{3}"#.iter() {
            q.step(b);
        }
        assert!(q.in_quote());
        let mut q = Quoting::default();
        for &b in br#"a "b\\" {3}"#.iter() {
            q.step(b);
        }
        assert!(!q.in_quote());
    }

    #[test]
    fn strings() {
        let mut l = lx(&[br#"abc "q\"uo\\te" NIL "" {x"#]);
        assert_eq!(l.astring().unwrap(), b"abc");
        l.sp().unwrap();
        assert_eq!(l.astring().unwrap(), br#"q"uo\te"#);
        l.sp().unwrap();
        assert_eq!(l.nstring().unwrap(), None);
        l.sp().unwrap();
        assert_eq!(l.nstring().unwrap(), Some(vec![]));
        l.sp().unwrap();
        assert!(l.astring().is_err());

        let mut l = lx(&[b"LOGIN ", b"fr\red", b" ", b"", b""]);
        assert!(l.eat_keyword(b"login"));
        l.sp().unwrap();
        assert_eq!(l.astring().unwrap(), b"fr\red");
        l.sp().unwrap();
        assert_eq!(l.astring().unwrap(), b"");
        assert!(l.at_end());

        // NIL as a prefix of an atom is an atom.
        let mut l = lx(&[b"NILS"]);
        assert!(l.nstring().is_err());
        let mut l = lx(&[b"NILS"]);
        assert_eq!(l.astring().unwrap(), b"NILS");

        let mut l = lx(&[br#""unterminated"#]);
        assert_eq!(l.quoted(), Err(Fault::Syntax("Missing '\"'.")));
    }

    #[test]
    fn numbers() {
        let mut l = lx(&[b"0 4294967295 4294967296 9223372036854775807 9223372036854775808"]);
        assert_eq!(l.number(), Ok(0));
        l.sp().unwrap();
        assert_eq!(l.nz_number(), Ok(u32::MAX));
        l.sp().unwrap();
        assert!(l.number().is_err());
        l.sp().unwrap();
        assert_eq!(l.mod_seq(), Ok(i64::MAX as u64));
        l.sp().unwrap();
        assert!(l.number64().is_err());
    }

    #[test]
    fn lists() {
        let mut l = lx(&[b"(a b  c) () (a"]);
        assert_eq!(l.list(false, |l| l.atom()).unwrap(), ["a", "b", "c"]);
        l.sp().unwrap();
        assert_eq!(l.list(true, |l| l.atom()).unwrap(), Vec::<String>::new());
        l.sp().unwrap();
        assert_eq!(
            l.list(true, |l| l.atom()),
            Err(Fault::Syntax("Missing ')'."))
        );
    }
}
